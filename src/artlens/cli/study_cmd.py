"""`artlens study create|simulate|analyse|serve`: the human-vs-machine similarity study."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from artlens.cli import (
    app,
    collection_option,
    default_collection,
    host_option,
    json_option,
    make_console,
    open_collection,
    port_option,
    print_json,
)
from artlens.cli.serve_cmd import tls_option

study_app = typer.Typer(help="Human-vs-machine similarity study: which two of five artworks are most alike?",
                        no_args_is_help=True)
app.add_typer(study_app, name="study")

STUDY_HELP = "Study folder (default: $ARTLENS_STUDY, else COLLECTION/study)."


def study_option():
    return typer.Option(None, "--study", help=STUDY_HELP, show_default=False)


def resolve_study(study: Path | None, collection: Path | None) -> Path:
    if study:
        return study
    if os.environ.get("ARTLENS_STUDY"):
        return Path(os.environ["ARTLENS_STUDY"])
    return (collection or default_collection()) / "study"


def _open(study_dir: Path, collection: Path | None):
    from artlens.collection import Collection
    from artlens.study import Study

    study = Study.load(study_dir)
    return study, Collection.open(collection or study.collection)


@study_app.command("create")
def create(
    group_by: str = typer.Option(..., "--group-by", help="Label column: the artworks of a question share its value."),
    groups: int = typer.Option(20, "--groups", help="Number of questions (groups of artworks)."),
    size: int = typer.Option(5, "--size", help="Artworks per question (the paper: 5, so 10 pairs)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draw."),
    out: Path = typer.Option(None, "--out", "-o", help="Study folder (default: COLLECTION/study)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the questions of an existing study; its "
                                                              "answers are moved aside to answers.<time>.jsonl."),
    collection: Path = collection_option(),
    as_json: bool = json_option("Print one JSON object: study, collection, group_by, size, seed, questions, groups, "
                                "replaced_answers."),
):
    """Draw seeded questions of SIZE artworks, each within one value of --group-by, and save the study.
    `artlens serve` then shows it at /study (or `artlens study serve --study DIR`)."""
    from artlens.study import create_study

    coll = open_collection(collection)
    study = create_study(coll, group_by, groups, size, seed, out, overwrite)
    n_groups = len({q.group for q in study.questions})
    if as_json:
        print_json({"study": str(study.root), "collection": str(study.collection), "group_by": group_by, "size": size,
                    "seed": seed, "questions": len(study.questions), "groups": n_groups,
                    "replaced_answers": str(study.replaced_answers) if study.replaced_answers else None})
        return
    console = make_console()
    if study.replaced_answers:
        console.print(f"answers of the replaced study moved to {study.replaced_answers}")
    console.print(f"{len(study.questions)} questions of {size} artworks by {group_by!r} "
                  f"({n_groups} groups) written to {study.root}", markup=False)


@study_app.command("simulate")
def simulate(
    rule: str = typer.Option(..., "--rule", help="Method the simulated participants follow, e.g. gram, cosine, gramcos, "
                                                 "content, style, colour, mix."),
    participants: int = typer.Option(10, "--participants", help="How many simulated participants."),
    noise: float = typer.Option(0.0, "--noise", help="Chance that a participant picks a pair at random instead."),
    seed: int = typer.Option(0, "--seed"),
    layer: str = typer.Option("block4", "--layer", help="Backbone layer of the Gram / Cosine / Gram·Cosine matrices."),
    study: Path = study_option(),
    collection: Path = collection_option("Collection (default: the one the study was drawn from)."),
    as_json: bool = json_option("Print one JSON object: answers (how many were appended), answers_path, rule, "
                                "participants, noise, seed."),
):
    """Append answers of simulated participants who follow a known method (to try the analysis)."""
    from artlens.study.methods import study_vectors
    from artlens.study.simulate import simulate_answers

    s, coll = _open(resolve_study(study, collection), collection)
    mv = study_vectors(coll, s, layer)
    n = simulate_answers(s, mv, rule, participants, noise, seed)
    if as_json:
        print_json({"answers": n, "answers_path": str(s.answers_path), "rule": rule, "participants": participants,
                    "noise": noise, "seed": seed})
        return
    make_console().print(f"{n} simulated answers appended to {s.answers_path}", markup=False)


@study_app.command("analyse")
def analyse(
    layer: str = typer.Option("block4", "--layer", help="Backbone layer of the Gram / Cosine / Gram·Cosine matrices."),
    holdout: float = typer.Option(0.5, "--holdout", help="Share of answered questions held out to test learned weights."),
    seed: int = typer.Option(0, "--seed", help="Seed of the train / held-out split of questions."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for analysis.md, analysis.json, cumulative.png "
                                                       "(default: STUDY/analysis)."),
    extract: bool = typer.Option(True, "--extract/--no-extract",
                                 help="Compute missing style matrices of the study's artworks."),
    as_json: bool = json_option("Print the analysis as one JSON object (with learned_weights)."),
    study: Path = study_option(),
    collection: Path = collection_option("Collection (default: the one the study was drawn from)."),
):
    """Per group and overall: majority pair, Ps(x) and Agree(x) of the Gram, Cosine and Gram·Cosine
    matrices and of every aspect of the collection; questions ranked by difficulty; cumulative curves;
    and aspect weights fitted to the human majority, scored on held-out questions."""
    from artlens.errors import ArtlensError
    from artlens.reports.study import fmt, write_analysis
    from artlens.study import AnswerLog
    from artlens.study.analysis import analyse as run_analysis
    from artlens.study.methods import study_vectors
    from artlens.study.weights import fit_weights

    s, coll = _open(resolve_study(study, collection), collection)
    answers = AnswerLog(s.answers_path).read()
    if not answers:
        raise ArtlensError(f"no answers yet in {s.answers_path}",
                           "collect some at /study (artlens serve), or try: artlens study simulate --rule gram")
    mv = study_vectors(coll, s, layer, extract)
    result = run_analysis(s, answers, mv, layer)
    weights = fit_weights(s, answers, mv, holdout, seed)
    paths = write_analysis(result, weights, out or s.root / "analysis")
    if as_json:
        print_json({**result, "learned_weights": weights})
        return
    from rich.table import Table

    table = Table("method", "Ps", "Agree", "questions", title=f"{result['answered_questions']} questions, "
                  f"{result['participants']} participants, consensus {fmt(result['overall']['consensus'])}")
    for m, r in sorted(result["overall"]["methods"].items(), key=lambda kv: -kv[1]["agree"]):
        table.add_row(result["methods"][m], fmt(r["ps"]), fmt(r["agree"]), str(r["questions"]))
    console = make_console()
    console.print(table)
    if "skipped" in weights:
        console.print(f"learned weights: skipped ({weights['skipped']})")
    else:
        b, a = weights["before"], weights["after"]
        console.print(f"learned weights {a['weights']}: held-out Agree {b['heldout']['agree']:.3f} -> "
                      f"{a['heldout']['agree']:.3f} ({weights['heldout_questions']} questions)")
    console.print(f"written: {', '.join(str(p) for p in paths.values())}")


@study_app.command("serve")
def serve(
    study: Path = study_option(),
    collection: Path = collection_option("Collection (default: the one the study was drawn from)."),
    host: str = host_option(),
    port: int = port_option(),
    tokens: Path = typer.Option(None, "--tokens", help="File of hashed API tokens (see `artlens serve --help`). "
                                                       "Participants answer with the token the study issues them."),
    ssl_certfile: Path = tls_option("certfile"),
    ssl_keyfile: Path = tls_option("keyfile"),
):
    """Serve the study page at /study (with the search page and API of its collection). Each
    participant is issued an id and a token by the server, and answers only as itself."""
    from artlens.api import ApiSettings, create_app
    from artlens.api.security import AccessSettings
    from artlens.api.server import serve_app
    from artlens.cli.serve_cmd import announce, warn_if_exposed

    s, coll = _open(resolve_study(study, collection), collection)
    app_ = create_app(ApiSettings(collection=coll.root, access=AccessSettings(tokens=tokens)), collection=coll,
                      warm_up=False)
    app_.state.service.warm_up()  # here, so a collection that needs rebuilding is a one-line error
    app_.state.study_dir = s.root
    warn_if_exposed(host, tokens is not None, ssl_certfile is not None)
    tls = {"ssl_certfile": str(ssl_certfile), "ssl_keyfile": str(ssl_keyfile)} if ssl_certfile or ssl_keyfile else {}
    serve_app(app_, host, port, on_ready=lambda url: announce(url, page="study"), **tls)
