"""`artlens demo`: the main job on an embedded default collection."""

from __future__ import annotations

from pathlib import Path

import typer

from artlens.cli import app, host_option, make_console, port_option, quiet_option
from artlens.demo.generate import DEMO_PICTURES
from artlens.progress import Reporter


@app.command()
def demo(
    out: Path = typer.Option(Path("artlens-demo"), "--out", "-o", help="Folder for the demo pictures and collection "
                             "(made in the working folder; delete it when done)."),
    n: int = typer.Option(DEMO_PICTURES, "--n", help="Number of pictures to draw."),
    seed: int = typer.Option(0, "--seed", help="Seed of the picture generator."),
    quiet: bool = quiet_option(),
    host: str = host_option("Address the web page listens on (0.0.0.0: every interface)."),
    port: int = port_option("Port of the web page."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Stop after the example searches (scripts, CI)."),
    registry: Path = typer.Option(None, "--registry", help="Copyright registry the page checks uploads against "
                                  "(made by `artlens registry add`)."),
):
    """Draw a demo art collection (seeded, no downloads), ingest and index it, run example searches, and
    serve the web page on localhost (Ctrl+C stops it)."""
    from artlens.cli.search_cmd import print_hits
    from artlens.collection import Collection
    from artlens.demo.generate import check_demo_settings, generate_demo_collection
    from artlens.search import SearchEngine

    check_demo_settings(n)
    console = make_console()
    if not no_serve:
        from artlens.api.server import bind

        bind(host, port).close()  # a taken port fails now, with a hint, not after a minute of drawing
    console.print(f"[bold]1. Drawing {n} pictures[/] into {out / 'pictures'}")
    labels = generate_demo_collection(out / "pictures", n=n, seed=seed, reporter=Reporter(not quiet))
    console.print(f"[bold]2. Ingesting and indexing[/] into {out / 'collection'}")
    coll = Collection.open(out / "collection", create=True)
    summary = coll.ingest(labels.parent, labels, reporter=Reporter(not quiet))
    console.print(f"   {len(coll.catalog)} artworks; indexes: {summary['indexes']}")
    engine = SearchEngine(coll)

    first = coll.catalog.get(coll.catalog.ids()[0])
    meta = first.metadata
    console.print(f"\n[bold]3. Search by image[/]: {Path(first.path).name} ({meta.get('style')} {meta.get('subject')} "
                  f"by {meta.get('artist')}), mixed aspects")
    print_hits(engine.search(image=first.path, k=5), console)

    query = "blue waves over a landscape"
    console.print(f"\n[bold]4. Search by text[/]: {query!r}")
    print_hits(engine.search(text=query, k=5), console)

    console.print(f"\n[bold]5. Search by style[/]: works whose style is closest to artwork {first.id} ({meta.get('style')})")
    print_hits(engine.search(artwork_id=first.id, aspect="style", k=5), console)
    where = out.resolve()
    console.print(f"\nThe demo is in {where}: pictures in {where / 'pictures'}, the collection in "
                  f"{where / 'collection'} (delete the folder when done; running the demo again reuses it).",
                  markup=False, highlight=False)
    console.print(f"Try it yourself: artlens search --collection {out / 'collection'} --text \"dotted portrait\"",
                  markup=False, highlight=False)
    if no_serve:
        return
    from artlens.api import ApiSettings, create_app
    from artlens.api.server import serve_app
    from artlens.cli.serve_cmd import announce

    console.print("\n[bold]6. Serving the web page[/]: search by upload, text or artwork, weigh aspects, filter, like...")
    app = create_app(ApiSettings(collection=coll.root, copyright_registry=registry), collection=coll, warm_up=False)
    app.state.service.warm_up()
    serve_app(app, host, port, on_ready=lambda url: announce(url, console))
