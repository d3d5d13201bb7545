"""`artlens ingest`, `artlens stats`, `artlens collection copy` and `artlens index rebuild`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from artlens.cli import (
    app,
    collection_option,
    default_collection,
    device_option,
    json_option,
    make_console,
    open_collection,
    print_json,
    quiet_option,
)
from artlens.progress import Reporter


def _check_extractor_choices(items: list[str]) -> None:
    """Validate --extractor aspect=name pairs before anything is created or changed."""
    from artlens.config import ASPECTS
    from artlens.errors import ArtlensError
    from artlens.features import create_extractor

    for item in items:
        aspect, _, name = item.partition("=")
        if not name or aspect not in ASPECTS:
            raise ArtlensError(f"bad --extractor {item!r}", f"write aspect=extractor with aspect one of {', '.join(ASPECTS)}")
        create_extractor(name)  # raises with the list of known extractors


def _entries_before_creating(root: Path) -> set[Path] | None:
    """What the folder held before this run makes a collection in it; None when it is one already
    (or a database: a failed first ingest there leaves the schema its transaction did not write)."""
    from artlens.postgres import is_postgres

    if is_postgres(root) or (root / "collection.toml").exists():
        return None
    return set(root.iterdir()) if root.is_dir() else set()


def _remove_created(root: Path, before: set[Path]) -> None:
    """Undo a new collection that a failed first ingest left empty: what this run created goes,
    anything the folder held before stays (and so does the folder then)."""
    import shutil

    for entry in set(root.iterdir()) - before:
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    if not before:
        root.rmdir()


@app.command()
def ingest(
    folder: Path = typer.Argument(..., help="Folder of artwork images (searched recursively)."),
    labels: Path = typer.Option(None, "--labels", help="Metadata CSV: SemArt, WikiArt-style, or any CSV with a path "
                                "column (a file; --label elsewhere names one of its columns)."),
    collection: Path = collection_option(),
    no_features: bool = typer.Option(False, "--no-features", help="Only catalog the files; skip features and indexes."),
    reindex: bool = typer.Option(False, "--reindex", help="Rebuild every index from the feature cache."),
    extractors: list[str] = typer.Option(
        None, "--extractor",
        help="Set an aspect's extractor, e.g. style=gramcos-block3 (repeatable; see `artlens stats`).",
    ),
    as_json: bool = json_option("Print the ingest report as one JSON object: ingest, features, indexes."),
    wait: bool = typer.Option(False, "--wait", help="When another process is writing the collection, wait for it "
                              "to finish (default: stop with an error naming it)."),
    device: str = device_option("extract features on"),
    ray: str = typer.Option(None, "--ray", metavar="auto|ADDRESS",
                            help="Decode and extract on a Ray cluster: auto ($RAY_ADDRESS, else a Ray on this "
                            "machine) or the head's HOST:PORT (needs the ray extra; see docs/distributed.md)."),
    quiet: bool = quiet_option(),
):
    """Add a folder of images (and metadata) to a collection, extract features and index them.

    Re-running is incremental: only new or changed files are read, removed files are dropped, and an
    interrupted run resumes. Corrupt or unreadable files are skipped and listed in the report. One
    process writes a collection at a time; searches and servers keep reading the previous state
    until the new one is complete.
    """
    from artlens.catalog.ingest import check_ingest_inputs
    from artlens.devices import device_name
    from artlens.errors import ArtlensError

    if extractors:
        _check_extractor_choices(extractors)
    check_ingest_inputs(folder)
    device = device_name(device)
    if ray is not None and not no_features:
        from artlens.features import distributed

        distributed.connect(ray)  # before anything is created: an unreachable cluster changes nothing
    root = collection or default_collection()
    created = _entries_before_creating(root)
    coll = open_collection(root, create=True)
    reporter = Reporter(not quiet)
    try:
        with coll.writing(wait=wait, reporter=reporter):  # new extractors commit with their indexes
            if extractors:
                coll.set_extractors(dict(e.split("=", 1) for e in extractors))
            summary = coll.ingest(folder, labels, features=not no_features, reindex=reindex, reporter=reporter,
                                  device=device, ray=None if no_features else ray)
    except ArtlensError:
        if created is not None and len(coll.catalog) == 0:
            coll.close()
            _remove_created(root, created)
        raise
    if as_json:
        print_json(summary)
        return
    r = summary["ingest"]
    out = make_console()
    out.print(
        f"[bold]{coll.location}[/]: {r['added']} new, {r['updated']} changed, {r['unchanged']} unchanged, "
        f"{r['duplicates']} duplicate files, {r['removed']} removed, {len(r['skipped'])} skipped"
    )
    for item in r["skipped"][:20]:
        out.print(f"  skipped {item['path']}: {item['reason']}", markup=False)
    if len(r["skipped"]) > 20:
        out.print(f"  ... and {len(r['skipped']) - 20} more (see `artlens stats --json`)")
    for note in r["notes"]:
        out.print(f"  {labels}: {note}", markup=False)
    if r["missing_from_csv"]:
        out.print(f"  {len(r['missing_from_csv'])} CSV rows name files that do not exist, e.g. {r['missing_from_csv'][0]}",
                  markup=False)
    if "indexes" in summary:
        out.print("  indexed: " + ", ".join(f"{a} {n}" for a, n in summary["indexes"].items()))
        for item in summary["features"]["failed"][:5]:
            out.print(f"  features failed: {item['reason']}", markup=False)


@app.command()
def stats(
    collection: Path = collection_option(),
    as_json: bool = json_option("Print one JSON object: artworks, files, skipped, skipped_files, extractors, indexes "
                                "(kind, vectors, dim, bytes_on_disk, memory_bytes each), metadata_columns, heads "
                                "(values in full)."),
):
    """Show what a collection holds: artworks, skipped files, extractors, indexes and metadata."""
    coll = open_collection(collection)
    info = coll.stats()
    if as_json:
        info["skipped_files"] = [{"path": p, "reason": r} for p, r in coll.catalog.skipped()]
        print_json(info)
        return
    out = make_console()
    out.print(f"[bold]{info['collection']}[/]: {info['artworks']} artworks from {info['files']} files, {info['skipped']} skipped")
    table = Table("extractor", "id", "aspect", "dim", "cached")
    for name, e in info["extractors"].items():
        table.add_row(name, e["id"], e["aspect"], str(e["dim"]), str(e["cached"]))
    out.print(table)
    table = Table("aspect index", "extractor", "kind", "dim", "count", "on disk", "memory")
    for aspect, i in info["indexes"].items():
        table.add_row(aspect, i["extractor"], i["kind"], str(i["dim"]), str(i["count"]),
                      _size(i["bytes_on_disk"]), _size(i["memory_bytes"]))
    out.print(table)
    for column in info["metadata_columns"]:
        facets = coll.catalog.facet_counts(column, limit=6)
        out.print(f"  {column}: " + ", ".join(f"{v[:30]} ({n})" for v, n in facets))


def _size(n: int | None) -> str:
    """Bytes for people: 12.3 MB (decimal units); "-" when unknown."""
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


collection_app = typer.Typer(help="Move collections between folders and PostgreSQL databases.", no_args_is_help=True)
app.add_typer(collection_app, name="collection")
index_app = typer.Typer(help="Maintain a collection's indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@collection_app.command("copy")
def collection_copy(
    source: Path = typer.Argument(..., help="Collection to copy: a folder or a postgresql:// URL."),
    target: Path = typer.Argument(..., help="New or empty collection to copy it into: a folder or a postgresql:// URL "
                                  "(postgresql://USER@HOST:PORT/DB?schema=NAME)."),
    queries: int = typer.Option(200, "--queries", help="Artworks whose searches are compared after the copy."),
    as_json: bool = json_option("Print one JSON object: source, target, artworks, generation, aspects "
                                "(count, queries, overlap), same."),
    quiet: bool = quiet_option(),
):
    """Copy a collection into another backend (folder -> PostgreSQL, or back): catalog, features,
    settings, head and indexes as they are; then check that searches give the same results
    (top-10 overlap per aspect, on --queries of its artworks)."""
    from artlens.collection import copy_collection

    report = copy_collection(source, target, Reporter(not quiet), queries=queries)
    if as_json:
        print_json(report)
    else:
        out = make_console()
        out.print(f"[bold]{report['target']}[/]: {report['artworks']} artworks copied from {report['source']}", soft_wrap=True)
        for aspect, check in report["aspects"].items():
            out.print(f"  {aspect}: {check['count']} vectors, top-10 overlap {check['overlap']:.3f} on {check['queries']} searches")
        out.print("  searches give the same results" if report["same"] else
                  "  [bold yellow]searches differ[/] (an approximate index: compare with `artlens eval retrieval`)")


@index_app.command("rebuild")
def index_rebuild(
    collection: Path = collection_option(),
    aspects: str = typer.Option(None, "--aspects", help="Comma-separated aspects to rebuild (default: all)."),
    wait: bool = typer.Option(False, "--wait", help="When another process is writing the collection, wait for it "
                              "to finish (default: stop with an error naming it)."),
    as_json: bool = json_option("Print one JSON object: collection, generation, indexes (count per aspect)."),
):
    """Rebuild indexes from the feature cache: the PCA and hashing transforms refitted on a sample of
    today's works (an ingest adds new works with the stored ones), new vectors and codes written."""
    from artlens.cli import comma_list

    coll = open_collection(collection)
    counts = coll.update_indexes(rebuild=True, aspects=list(comma_list(aspects, "--aspects", example="content,style"))
                                 if aspects else None, wait=wait)
    report = {"collection": coll.location, "generation": coll.generation, "indexes": counts}
    if as_json:
        print_json(report)
        return
    make_console().print(f"[bold]{coll.location}[/]: rebuilt " + ", ".join(f"{a} {n}" for a, n in counts.items()),
                         soft_wrap=True)
