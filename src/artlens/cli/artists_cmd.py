"""`artlens artists publish|merge|search` and `artlens eval artists`: finding artists by style from
published profiles only."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Column, Table

from artlens.artists.profiles import ProfileConfig
from artlens.artists.search import DEFAULT_ARTISTS
from artlens.cli import (
    app,
    collection_option,
    default_collection,
    env_path,
    eval_app,
    json_option,
    make_console,
    open_collection,
    print_json,
    quiet_option,
)
from artlens.progress import Reporter

D = ProfileConfig()  # the defaults, for the help texts

artists_app = typer.Typer(help="Publish artists' style profiles (no works leave) and find artists by style.",
                          no_args_is_help=True)
app.add_typer(artists_app, name="artists")


def parse_epsilons(values: list[str] | None) -> list[float]:
    from artlens.errors import ArtlensError

    out = []
    for value in values or []:
        for part in str(value).split(","):
            if part.strip():
                try:
                    out.append(float(part))
                except ValueError as exc:
                    raise ArtlensError(f"epsilon {part!r} is not a number", "pass e.g. --epsilon 8") from exc
    return out


@artists_app.command("publish")
def publish(
    artist_column: str = typer.Option(..., "--artist-column", help="Metadata column naming each work's artist."),
    out: Path = typer.Option(..., "--out", "-o", help="Profile file to write (JSON)."),
    head: Path = typer.Option(None, "--head", help="Head file whose learned space the profiles live in (the federated "
                                                   "head when there is one); default: the collection's own head."),
    epsilon: float = typer.Option(None, "--epsilon", help="Differential privacy per profile: one prototype, the mean "
                                                          "of the artist's works through the Gaussian mechanism."),
    delta: float = typer.Option(None, "--delta", help=f"DP delta (default {D.delta:g})."),
    max_prototypes: int = typer.Option(None, "--max-prototypes",
                                       help=f"Most prototypes per artist (default {D.max_prototypes})."),
    works_per_prototype: int = typer.Option(None, "--works-per-prototype",
                                            help=f"One prototype per this many works (default {D.works_per_prototype})."),
    collection: Path = collection_option(),
    as_json: bool = json_option("Print one JSON object: profiles, head, artists, works, prototypes, epsilon, delta."),
    quiet: bool = quiet_option(),
):
    """Compute each artist's style profile from the collection's works and write a profile file.

    A profile is a few prototypes in the head's learned space (spherical k-means of the artist's
    works, one per --works-per-prototype works, at most --max-prototypes), the works behind each and
    the total. The file records the head's id and holds no image, path, file name or per-work vector.
    """
    from artlens.artists.publish import publish_profiles
    from artlens.models import load_head
    from artlens.settings import with_changes

    config = with_changes(ProfileConfig(), {"epsilon": epsilon, "delta": delta, "max_prototypes": max_prototypes,
                                            "works_per_prototype": works_per_prototype})
    coll = open_collection(collection)
    summary = publish_profiles(coll, artist_column, out, load_head(head) if head is not None else None, config,
                               Reporter(not quiet))
    if as_json:
        print_json(summary)
        return
    make_console().print(f"  published {summary['artists']} artist profiles ({summary['prototypes']} prototypes, "
                  f"{summary['works']} works) in the space of head {summary['head']}"
                  + (f", DP epsilon {config.epsilon:g}, delta {config.delta:g}" if config.epsilon is not None else "")
                  + f" -> {out}")


@artists_app.command("merge")
def merge(
    files: list[Path] = typer.Argument(..., help="Profile files from several institutions (same head)."),
    out: Path = typer.Option(..., "--out", "-o", help="Merged profile file to write."),
    max_prototypes: int = typer.Option(None, "--max-prototypes", help="Most prototypes per merged artist "
                                                                      "(default: the inputs' largest cap)."),
    as_json: bool = json_option("Print one JSON object: profiles, head, merged (the input files), artists, "
                                "prototypes."),
):
    """Merge profile files made with the same head; an artist in several files is combined by counts.

    Each file records the publications it holds; a file given twice, a file together with a merge
    that already holds it, or an artist's profile found in two files is refused (its works would
    count twice).
    """
    from artlens.artists.publish import merge_profile_files

    summary = merge_profile_files(files, out, max_prototypes)
    if as_json:
        print_json(summary)
        return
    make_console().print(f"  merged {len(files)} files: {summary['artists']} artists -> {out}", markup=False)


@artists_app.command("search")
def search(
    like: list[Path] = typer.Option(None, "--like", help="A reference image; the FILE arguments after it are further "
                                                       "references (--like a.jpg b.jpg c.jpg), and --like may repeat. "
                                                       "References combine."),
    files: list[Path] = typer.Argument(None, metavar="FILE...", show_default=False,
                                       help="Further reference images, after --like FILE."),
    text: list[str] = typer.Option(None, "--text", "-t", help="A reference text (needs a head with a text input)."),
    profiles: Path = typer.Option(..., "--profiles", help="Profile file from `artlens artists publish`/`merge`."),
    k: int = typer.Option(DEFAULT_ARTISTS, "-k", "--k", help="Number of artists."),
    head: Path = typer.Option(None, "--head", help="The head the profiles were made with (default: $ARTLENS_ARTIST_HEAD, "
                                                   "else the collection's head)."),
    collection: Path = collection_option("Collection whose head embeds the references when --head is not given."),
    as_json: bool = json_option("Print one JSON object: references, head, results (artist, score, works, matches: "
                                "reference, prototype, similarity, prototype_works)."),
):
    """Rank artists by how well their style profile matches the references: --like FILE, then any
    further FILEs (artlens artists search --like a.jpg b.jpg c.jpg --profiles all.json), and/or --text.

    Each reference is scored against an artist's prototypes (a soft maximum weighted by the works
    behind each); an artist's score is the mean over the references, so the best artists fit every
    reference. Each result shows which prototype matched each reference best.
    """
    from artlens.artists.locate import load_head_for
    from artlens.artists.profiles import ProfileSet
    from artlens.artists.search import ArtistSearch
    from artlens.errors import ArtlensError

    like, more, text = list(like or []), list(files or []), list(text or [])
    if more and not like:
        raise ArtlensError(f"unexpected argument {more[0]}: reference images follow --like",
                           f"write --like {' '.join(str(p) for p in more)}")
    like += more
    if not like and not text:
        raise ArtlensError("give at least one reference", "use --like FILE [FILE...] or --text \"...\"")
    for path in like:
        if not path.is_file():
            raise ArtlensError(f"reference image {path} does not exist", "check the path given to --like")
    profile_set = ProfileSet.load(profiles)
    head = head or env_path("ARTLENS_ARTIST_HEAD")
    model = load_head_for(profile_set, head, collection or default_collection())
    result = ArtistSearch(profile_set, model).search([str(p) for p in like], text, k, labels=[p.name for p in like])
    if as_json:
        print_json(result.as_dict())
        return
    refs = [r.get("name") or r.get("text", "")[:30] for r in result.references]
    table = Table("#", "artist", "score", "works", *[f"ref {i + 1}: {r}" for i, r in enumerate(refs)],
                  title=f"artists for {len(refs)} reference(s)")
    for rank, match in enumerate(result.results, 1):
        table.add_row(str(rank), match.artist, f"{match.score:.3f}", str(match.works),
                      *[f"proto {m.prototype} ({m.prototype_works} works) {m.similarity:.3f}" for m in match.matches])
    make_console().print(table)


@eval_app.command("artists")
def eval_artists(
    artist_column: str = typer.Option(..., "--artist-column", help="Metadata column naming each work's artist."),
    head: Path = typer.Option(None, "--head", help="Head file (default: the collection's own head)."),
    split: str = typer.Option("test", "--split", help="Which artworks query: test (the head's stored split: works it "
                                                      "never saw; a head without one: the stratified seeded split), "
                                                      "val, train or all."),
    epsilon: list[str] = typer.Option(["8"], "--epsilon", help="DP epsilons to evaluate (repeatable or 1,2,8)."),
    dp_repeats: int = typer.Option(5, "--dp-repeats", help="Noise draws averaged per epsilon."),
    max_prototypes: int = typer.Option(None, "--max-prototypes",
                                       help=f"Most prototypes per artist (default {D.max_prototypes})."),
    queries: str = typer.Option("image+text", "--queries", help="What a query artwork is embedded from: image+text "
                                                               "(all the head's inputs), image (a customer's picture: "
                                                               "no text) or text (its description alone)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Also score pretrained profiles and "
                                                                            "nearest-artwork voting over pretrained features."),
    collection: Path = collection_option(),
    as_json: bool = json_option("Print one JSON object: methods{name: top1, top3, mrr, ...}, n_queries, n_artists, "
                                "split, head."),
    quiet: bool = quiet_option("No progress bar."),
):
    """Leave-one-artwork-out artist retrieval: each query artwork is held out, its artist's profile
    rebuilt without it; top-1, top-3 and MRR of profiles, DP profiles, pretrained profiles and
    nearest-artwork voting over all works (the upper bound that needs the portfolios)."""
    from artlens.artists.evaluate import evaluate_artists
    from artlens.artists.publish import collection_head
    from artlens.errors import ArtlensError
    from artlens.models import load_head
    from artlens.settings import with_changes

    if dp_repeats < 1:
        raise ArtlensError(f"--dp-repeats must be at least 1, got {dp_repeats}", "pass e.g. --dp-repeats 5")
    coll = open_collection(collection)
    model = collection_head(coll, load_head(head) if head is not None else None)
    config = with_changes(ProfileConfig(), {"max_prototypes": max_prototypes})
    result = evaluate_artists(coll, artist_column, model, split, parse_epsilons(epsilon), config, dp_repeats,
                              baselines, queries=queries, reporter=Reporter(not quiet))
    if as_json:
        print_json(result)
        return
    # method names differ only at their ends (pretrained-nearest-artwork[-vote10]): folded when the
    # terminal is narrow, never cut to the same ellipsis; a space's long description goes below
    spaces = {m.get("space", "") for m in result["methods"].values()}
    details = [s for s in sorted(spaces) if ":" in s]
    table = Table(Column("method", overflow="fold"), "top-1", "top-3", "MRR", Column("space", overflow="fold"),
                  title=f"artist retrieval by {artist_column!r}: {result['n_queries']} queries ({result['split']}), "
                        f"{result['n_artists']} artists, head {result['head']}",
                  caption="; ".join(details) or None)
    for name, m in result["methods"].items():
        table.add_row(name, f"{m['top1']:.3f}", f"{m['top3']:.3f}", f"{m['mrr']:.3f}", m.get("space", "").split(":")[0])
    make_console().print(table)
