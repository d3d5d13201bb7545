"""`artlens registry ...` (protected and free-to-use works), `artlens copyright check` and
`artlens eval copyright`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from artlens.cli import (
    app,
    comma_list,
    device_option,
    env_path,
    eval_app,
    json_option,
    make_console,
    print_json,
    print_json_line,
    quiet_option,
)
from artlens.copyright.config import (
    CVAE_WARNING,
    DETECTORS,
    CopyrightConfig,
    CVAEConfig,
    RobustConfig,
)
from artlens.copyright.evaluate import CopyrightEvalConfig
from artlens.progress import Reporter

registry_app = typer.Typer(help="Manage a registry of protected (or free-to-use) works and their owners.",
                           no_args_is_help=True)
copyright_app = typer.Typer(help="Check images against a copyright registry.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")
app.add_typer(copyright_app, name="copyright")

err = make_console(stderr=True)


def default_registry() -> Path:
    return env_path("ARTLENS_REGISTRY") or Path("artlens-registry")


def registry_option():
    return typer.Option(None, "--registry", show_default=False,
                        help="Registry folder (default: $ARTLENS_REGISTRY or ./artlens-registry).")


def _config_changes(detectors: str | None, views: int | None, epochs: int | None, cvae_epochs: int | None,
                    head: str | None = None, threshold: float | None = None) -> dict:
    """The options given, as :func:`artlens.settings.with_changes` takes them (None: not given). Checked
    here, before any registry is opened or created."""
    from artlens.copyright.config import HEADS, check_threshold
    from artlens.errors import ArtlensError

    check_threshold(threshold)
    if head is not None and head not in HEADS:
        raise ArtlensError(f"unknown head {head!r}", f"use --head {' or --head '.join(HEADS)}")
    chosen = comma_list(detectors, "--detectors", example="robust,cvae") or None
    if chosen and set(chosen) - set(DETECTORS):
        raise ArtlensError(f"unknown detectors {sorted(set(chosen) - set(DETECTORS))}",
                           f"choose from: {', '.join(DETECTORS)}")
    if chosen and "cvae" in chosen:
        err.print(f"warning: {CVAE_WARNING}")
    return {"detectors": chosen, "robust__views": views, "robust__epochs": epochs, "cvae__epochs": cvae_epochs,
            "robust__head": head, "robust__threshold": threshold,
            "robust__calibrate": False if threshold is not None else None}


def _require_general_head(registry: Path | None, changes: dict, adding: bool = False) -> None:
    """A registry that is to be built with the general head needs it; say how to build it, before
    anything is written. ``adding``: a registry whose robust detector exists keeps its own copy."""
    import json

    from artlens.copyright.general import load_general

    folder = (registry or default_registry()) / "copyright"
    if adding and (folder / "manifest.json").is_file():
        try:
            if "robust" in json.loads((folder / "manifest.json").read_text()).get("detectors", {}):
                return
        except (OSError, ValueError):
            return  # opening the registry reports it
    head = changes.get("robust__head")
    if head is None:
        stored = folder / "config.toml"
        head = CopyrightConfig.load(stored).robust.head if stored.is_file() else RobustConfig.head
    if head == "general" and "robust" in (changes.get("detectors") or ("robust",)):
        load_general()


def _open(path: Path | None, create: bool = False, changes: dict | None = None, allow_rebuild: bool = False):
    from artlens.copyright.registry import CopyrightRegistry

    return CopyrightRegistry.open(path or default_registry(), create=create, allow_rebuild=allow_rebuild,
                                  changes=changes)


DETECTORS_HELP = (f"Detectors to train, comma-separated: robust, cvae (the paper's VAE, a comparison: slow, accepts "
                  f"look-alikes) (default: {','.join(CopyrightConfig.detectors)}).")
HEAD_HELP = (f"Robust detector's head: general (built once per machine by `artlens registry general-head`; the "
             f"registry only encodes and calibrates) or "
             f"registry (trained on the registry's works from the general one: slower) (default: {RobustConfig.head}).")
THRESHOLD_HELP = ("Fixed operating threshold of the robust detector, in (0, 1] (default: calibrated to "
                  f"{RobustConfig.target_precision:.0%} precision on held-out works).")
VIEWS_HELP = f"Edited views per work for the robust descriptor (default {RobustConfig.views})."
EPOCHS_HELP = f"Training epochs of the robust projection head (default {RobustConfig.epochs})."
CVAE_EPOCHS_HELP = f"Training epochs of the paper's CVAE (default {CVAEConfig.epochs})."
QUIET_HELP = "No progress output."


@registry_app.command("add")
def registry_add(
    folder: Path = typer.Argument(..., help="Folder of images to register (searched recursively)."),
    owner: str = typer.Option(..., "--owner", help="Who holds the rights to these works."),
    licence: str = typer.Option(None, "--licence", help="Licence of these works, e.g. 'all rights reserved', CC0, "
                                "CC-BY-4.0 (default: the work's licence so far, else 'all rights reserved')."),
    labels: Path = typer.Option(None, "--labels", help="Metadata CSV (title, artist, ...) with a path column."),
    registry: Path = registry_option(),
    no_train: bool = typer.Option(False, "--no-train", help="Do not train detectors now (`artlens registry train` later)."),
    detectors: str = typer.Option(None, "--detectors", "--detector", help=DETECTORS_HELP),
    head: str = typer.Option(None, "--head", help=HEAD_HELP),
    threshold: float = typer.Option(None, "--threshold", help=THRESHOLD_HELP),
    views: int = typer.Option(None, "--views", help=VIEWS_HELP),
    epochs: int = typer.Option(None, "--epochs", help=EPOCHS_HELP),
    cvae_epochs: int = typer.Option(None, "--cvae-epochs", help=CVAE_EPOCHS_HELP),
    as_json: bool = json_option("Print the report as one JSON object."),
    device: str = device_option("extract the works' features and edited views on"),
    quiet: bool = quiet_option(QUIET_HELP),
):
    """Register a folder of works under an owner and licence (a free-to-use collection is a registry
    with a free licence). Re-running is incremental; new works are indexed in the trained detectors."""
    from artlens.copyright.registry import check_image_folder
    from artlens.devices import device_name

    check_image_folder(folder)  # before anything is created
    device = device_name(device)
    changes = _config_changes(detectors, views, epochs, cvae_epochs, head, threshold)
    if not no_train:
        _require_general_head(registry, changes, adding=True)
    reg = _open(registry, create=True, changes=changes)
    summary = reg.add(folder, owner, licence, labels, train=not no_train, reporter=Reporter(not quiet), device=device)
    if as_json:
        print_json(summary)
        return
    r = summary["ingest"]
    out = make_console()
    out.print(f"[bold]{reg.root}[/]: {r['added']} new, {r['updated']} changed, {r['unchanged']} unchanged, "
              f"{len(r['skipped'])} skipped; {summary['works']} works registered")
    for item in r["skipped"][:20]:
        out.print(f"  skipped {item['path']}: {item['reason']}")
    for name, info in summary.get("trained", {}).items():
        out.print(f"  trained {name}: {info['descriptor_id']}" +
                  (f", threshold {info['threshold']:.3f}" if "threshold" in info else ""))


@registry_app.command("remove")
def registry_remove(
    owner: str = typer.Option(..., "--owner", help="Owner whose works are removed."),
    registry: Path = registry_option(),
    as_json: bool = json_option("Print what was removed as one JSON object."),
    quiet: bool = quiet_option(QUIET_HELP),
):
    """Remove every work of an owner from the registry and its detectors."""
    reg = _open(registry)
    n = reg.remove_owner(owner, reporter=Reporter(not quiet))
    if as_json:
        print_json({"registry": str(reg.root), "owner": owner, "removed": n, "works": len(reg)})
        return
    make_console().print(f"removed {n} works of {owner!r}; {len(reg)} remain")


@registry_app.command("update")
def registry_update(
    owner: str = typer.Option(..., "--owner", help="Owner whose works are updated."),
    new_owner: str = typer.Option(None, "--new-owner", help="New owner name."),
    licence: str = typer.Option(None, "--licence", help="New licence of all the owner's works."),
    registry: Path = registry_option(),
    as_json: bool = json_option("Print what was updated as one JSON object."),
):
    """Rename an owner or change the licence of all their works."""
    from artlens.errors import ArtlensError

    if not new_owner and licence is None:
        raise ArtlensError("nothing to update", "pass --new-owner NAME and/or --licence LICENCE")
    reg = _open(registry)
    n = reg.update_owner(owner, new_owner, licence)
    if as_json:
        print_json({"registry": str(reg.root), "owner": owner, "new_owner": new_owner, "licence": licence,
                     "updated": n})
        return
    make_console().print(f"updated {n} works of {owner!r}")


@registry_app.command("list")
def registry_list(
    registry: Path = registry_option(),
    as_json: bool = json_option("Print owners and detectors as one JSON object."),
):
    """Owners, their number of works and licences, and the trained detectors."""
    reg = _open(registry)
    info = {"registry": str(reg.root), "works": len(reg), "owners": reg.owners(), "detectors": reg.trained()}
    if as_json:
        print_json(info)
        return
    table = Table("owner", "works", "licences", title=f"{reg.root}: {len(reg)} works, detectors: "
                  f"{', '.join(info['detectors']) or 'none trained'}")
    for owner, entry in info["owners"].items():
        table.add_row(owner, str(entry["works"]), ", ".join(f"{k} ({v})" for k, v in entry["licences"].items()))
    make_console().print(table)


@registry_app.command("train")
def registry_train(
    registry: Path = registry_option(),
    detectors: str = typer.Option(None, "--detectors", "--detector", help=DETECTORS_HELP),
    head: str = typer.Option(None, "--head", help=HEAD_HELP),
    threshold: float = typer.Option(None, "--threshold", help=THRESHOLD_HELP),
    views: int = typer.Option(None, "--views", help=VIEWS_HELP),
    epochs: int = typer.Option(None, "--epochs", help=EPOCHS_HELP),
    cvae_epochs: int = typer.Option(None, "--cvae-epochs", help=CVAE_EPOCHS_HELP),
    as_json: bool = json_option("Print what was trained as one JSON object."),
    device: str = device_option("extract the works' features and edited views on"),
    quiet: bool = quiet_option(QUIET_HELP),
):
    """(Re)build the registry's detectors: with the general head, re-encode and recalibrate (fast); with
    `--head registry`, fine-tune a head on the registry's works. Also upgrades a registry made by an older
    artlens or another version."""
    from artlens.devices import device_name

    device = device_name(device)  # before anything is opened
    changes = _config_changes(detectors, views, epochs, cvae_epochs, head, threshold)
    _require_general_head(registry, changes)
    reg = _open(registry, changes=changes, allow_rebuild=True)
    report = reg.train(changes["detectors"], reporter=Reporter(not quiet), device=device)
    if as_json:
        print_json({"registry": str(reg.root), "trained": report})
        return
    for name, info in report.items():
        make_console().print(f"trained {name} on {info['works']} works in {info['seconds']} s: {info['descriptor_id']}" +
                  (f", threshold {info['threshold']:.3f}" if "threshold" in info else ""))


@registry_app.command("general-head")
def registry_general_head(
    out: Path = typer.Option(None, "--out", help="Where to write the head (default: the user cache, "
                             "~/.cache/artlens/copyright/, or $ARTLENS_CACHE/copyright/, where `--head general` "
                             "looks for it)."),
    pictures: int = typer.Option(None, "--pictures", min=8, help="Demo pictures drawn for training (default: "
                                 "the recipe's, 600)."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Training epochs (default: the recipe's, 200)."),
    images: Path = typer.Option(None, "--images", help="Train on a seeded sample of the images in this folder "
                                "(pictures that are NOT registered, e.g. a public-domain collection) instead of "
                                "artlens's own demo pictures: closer to the works a registry holds."),
    as_json: bool = json_option("Print the head's record as one JSON object."),
    device: str = device_option("compute the pictures' views and train the head on"),
    quiet: bool = quiet_option(QUIET_HELP),
):
    """Build the general copy head once per machine: artlens draws its own pictures (they carry no
    licence), edits them, and trains a head that `--head general` registries use without training."""
    from artlens.copyright.general import GeneralHeadConfig, build_general
    from artlens.devices import device_name
    from artlens.settings import with_changes

    device = device_name(device)
    base = GeneralHeadConfig()
    config = with_changes(base, {"pictures": pictures, "images": None if images is None else str(images.resolve()),
                                 "calibration_pictures": None if pictures is None else max(4, pictures // 5),
                                 "head__epochs": epochs})
    record = build_general(config, out=out, reporter=Reporter(not quiet), device=device)
    if as_json:
        print_json(record)
        return
    make_console().print(f"general copy head {record['fingerprint']} written to {record['path']} "
                         f"(own threshold {record['calibration']['threshold']:.3f}; "
                         f"{sum(record['timings'].values()):.0f} s)")


@copyright_app.command("check")
def copyright_check(
    files: list[Path] = typer.Argument(..., help="Image files or folders to check."),
    registry: Path = registry_option(),
    free: Path = typer.Option(None, "--free", help="Free-to-use collection to suggest alternatives from "
                              "(default: $ARTLENS_FREE, if set)."),
    detector: str = typer.Option(None, "--detector", help="robust or cvae (the KOLAA paper's keys); default: the "
                                 "registry's first trained detector (robust, unless changed)."),
    alternatives: int = typer.Option(None, "--alternatives", min=0, help="Number of free alternatives per file "
                                     f"(default: the registry's setting, {CopyrightConfig.alternatives} unless changed)."),
    fast: bool = typer.Option(False, "--fast", help="Robust detector only: score just the works whose binary "
                              "codes are nearest in Hamming distance, then re-rank them with the float "
                              "descriptor (same threshold; for very large registries)."),
    shortlist: int = typer.Option(None, "--shortlist", min=1, help="Works re-ranked in --fast mode (default: the "
                                  f"registry's setting, {RobustConfig.shortlist} unless changed)."),
    as_json: bool = json_option("One JSON object per file and line."),
):
    """Is each image a registered work (even cropped, recompressed, recoloured, screenshotted)? Prints
    the verdict, owner, matched work, score and stage, and free alternatives. Exits 2 if any file failed."""
    from artlens.collection import Collection
    from artlens.copyright.check import ERROR, REGISTERED, CopyrightChecker, image_files
    from artlens.errors import ArtlensError

    if detector not in (None, *DETECTORS):
        raise ArtlensError(f"unknown detector {detector!r}", f"use --detector {' or --detector '.join(DETECTORS)}")
    paths = image_files(files)
    reg = _open(registry)
    free_path = free or env_path("ARTLENS_FREE")
    free_collection = Collection.open(free_path) if free_path else None
    checker = CopyrightChecker(reg, free_collection, detector=detector, alternatives=alternatives, fast=fast,
                               shortlist=shortlist)
    failed = 0
    out = make_console()
    for result in checker.check_files(paths):
        if result.verdict == ERROR:
            failed += 1
            err.print(f"error: {escape(str(result.error))}")
        if as_json:
            print_json_line(result.as_dict())
            continue
        if result.verdict == REGISTERED:
            out.print(f"[bold red]registered[/] {escape(str(result.file))}: work {result.work_id} "
                      f"({escape(Path(result.work_path).name)}) of {escape(str(result.owner))} "
                      f"{_licence(result.licence)}, score {result.score:.3f}, stage {result.stage}")
        elif result.verdict != ERROR:
            closest = "" if result.work_id is None else \
                f"closest registered work {result.work_id} ({escape(Path(result.work_path).name)}), "
            out.print(f"[green]not registered[/] {escape(str(result.file))}: {closest}score {result.score:.3f} "
                      f"< {result.threshold:.3f} (below the threshold)")
        for alt in result.alternatives:
            out.print(f"    alternative {alt.score:.3f} {escape(str(alt.path))} {_licence(alt.licence)}")
    if failed:
        err.print(f"{failed} of {len(paths)} files could not be checked")
        raise typer.Exit(2)


def _licence(licence: str | None) -> str:
    """``[licence]``, escaped: rich would take ``[all rights reserved]`` for a style tag and drop it."""
    return escape(f"[{licence or 'licence unknown'}]")


@eval_app.command("copyright")
def eval_copyright(
    distractors: Path = typer.Option(..., "--distractors", help="Folder of images that are NOT registered."),
    registry: Path = registry_option(),
    per_work: int = typer.Option(None, "--per-work", help="Edited copies per registered work (at least 1; default: "
                                 f"{CopyrightEvalConfig.per_work})."),
    n_distractors: int = typer.Option(None, "--n-distractors", help="How many distractor images to use at most; "
                                      f"each is queried as it is and edited once (default: "
                                      f"{CopyrightEvalConfig.n_distractors})."),
    seed: int = typer.Option(None, "--seed", help=f"Seed of the edits (default: {CopyrightEvalConfig.seed})."),
    fast: bool = typer.Option(False, "--fast", help="Also score the robust detector's fast mode (binary "
                              "shortlist, then float re-ranking) and its agreement with the exact search."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for report.md, report.json and PNG figures "
                             "(precision-recall curves, recall per edit family)."),
    as_json: bool = json_option("Print one JSON object with every method's metrics."),
    quiet: bool = quiet_option(QUIET_HELP),
):
    """Edited-copy benchmark on a registry: µAP, recall at 90/99 % precision, top-1, false positives on
    the distractors (each unedited and edited once) and recall per edit family, for every trained
    detector and raw pooled features."""
    from artlens.copyright.evaluate import evaluate_folder
    from artlens.settings import with_changes

    config = with_changes(CopyrightEvalConfig(), {"per_work": per_work, "n_distractors": n_distractors, "seed": seed})
    reg = _open(registry)
    result = evaluate_folder(reg, distractors, config, Reporter(not quiet), fast)
    if out is not None:
        from artlens.reports.copyright import write_copyright_report

        write_copyright_report(result, out)
        err.print(f"report written to {out / 'report.md'}")
    if as_json:
        print_json({**result, "methods": {name: {k: v for k, v in m.items() if k != "pr_curve"}
                                          for name, m in result["methods"].items()}})
        return
    table = Table("method", "µAP", "R@P90", "R@P99", "top-1", "recall@op", "FP@op unedited", "FP@op edited",
                  title=f"{result['works']} works, {result['copies']} edited copies, {result['distractors']} "
                        f"distractors (each unedited and edited once)")
    for method, m in result["methods"].items():
        op = m.get("recall")
        table.add_row(method, f"{m['micro_ap']:.4f}", f"{m['recall@p90']:.4f}", f"{m['recall@p99']:.4f}",
                      f"{m['top1_on_copies']:.4f}", "-" if op is None else f"{op:.4f}",
                      str(m.get("false_positives_on_unedited_distractors", "-")),
                      str(m.get("false_positives_on_edited_distractors", "-")))
    make_console().print(table)
