"""`artlens serve`: the web page and REST API over a collection."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from artlens.cli import app, collection_option, default_collection

console = Console(stderr=True)
# ApiSettings' default, written out: importing artlens.api here would load the whole service for
# every command's --help (tests/test_api.py checks that they agree, and that the help names the
# variables ApiSettings.from_env reads).
DEFAULT_UPLOAD_MB = 20


def announce(url: str, to: Console | None = None, page: str = "") -> None:
    """Say where the page (``url`` + ``page``) and the API reference (``url`` + ``docs``) are."""
    out = to or console
    out.print(f"\n[bold green]artlens is serving[/] at [bold]{url}{page}[/]", soft_wrap=True)
    out.print(f"API docs at {url}docs · Ctrl+C stops it", soft_wrap=True, style="dim")


@app.command()
def serve(
    collection: Path = collection_option(),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface, e.g. to try it on a phone)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    registry: Path = typer.Option(None, "--registry", help="Copyright registry for /api/copyright/check "
                                                           "(default: $ARTLENS_REGISTRY)."),
    free: Path = typer.Option(None, "--free", help="Collection of free-to-use works offered as alternatives "
                                                   "(default: $ARTLENS_FREE, else the served one)."),
    thumbnails: Path = typer.Option(None, "--thumbnails", help="Thumbnail cache folder (default: COLLECTION/thumbnails)."),
    max_upload_mb: int = typer.Option(None, "--max-upload-mb", help=f"Largest upload accepted, in MiB (default: {DEFAULT_UPLOAD_MB})."),
    threads: int = typer.Option(1, "--threads", help="CPU threads per request (1 serves concurrent requests best)."),
    profiles: Path = typer.Option(None, "--profiles", help="Artist profile file that \"Find an artist\" and "
                                                           "/api/artists search (from `artlens artists publish`/`merge`; "
                                                           "default: $ARTLENS_ARTIST_PROFILES, else "
                                                           "COLLECTION/artists/profiles.json; re-read when it changes)."),
    head: Path = typer.Option(None, "--head", help="Head the artist profiles were made with, which embeds uploaded "
                                                   "references (default: $ARTLENS_ARTIST_HEAD, else the "
                                                   "collection's own head)."),
    member: Path = typer.Option(None, "--member", help="MEMBER.toml: make this server a federation member, searched by "
                                "portals under /api/federation/ (see docs/federation.md)."),
):
    """Serve the web page and REST API of a collection (search by image, text, artwork or liked works;
    find an artist from published style profiles, see --profiles). The study served at /study is
    $ARTLENS_STUDY, else COLLECTION/study."""
    from artlens.api import ApiSettings, create_app
    from artlens.api.server import serve_app
    from artlens.collection import Collection
    from artlens.errors import ArtlensError

    if not 0 <= port <= 65535:
        raise ArtlensError(f"port {port} is out of range", "use a port between 1 and 65535 (0: any free one), e.g. --port 8000")
    coll = Collection.open(collection or default_collection())
    if profiles is not None:  # a wrong file or head is a one-line error now, not a failing page later
        from artlens.artists.locate import load_head_for
        from artlens.artists.profiles import ProfileSet

        load_head_for(ProfileSet.load(profiles), head, coll.root)
    elif head is not None:
        from artlens.models import load_head

        load_head(head)
    member_settings = None
    if member is not None:  # a malformed MEMBER.toml is a one-line error before anything loads
        from artlens.federation import load_member_settings

        member_settings = load_member_settings(member)
    settings = ApiSettings.from_env(
        coll.root, thumbnail_dir=thumbnails, max_upload_bytes=max_upload_mb * 2**20 if max_upload_mb else None,
        copyright_registry=registry, copyright_free=free, artist_profiles=profiles, artist_head=head)
    console.print(f"Loading {coll.root} ({len(coll.catalog)} artworks)...")
    app = create_app(settings, collection=coll, warm_up=False)
    if member_settings is not None:
        from artlens.api.routes.federation import install_member
        from artlens.federation import Member
        from artlens.progress import Reporter

        service = app.state.service
        install_member(app, Member.open(coll, member_settings, Reporter(progress=False), thumbnails=service.thumbnails,
                                        facets=lambda: service.facets()["facets"]))
        console.print(f"Federation member {member_settings.name!r} on head {app.state.member.head_id}")
    app.state.service.warm_up()  # here, so a collection that needs rebuilding is a one-line error
    serve_app(app, host, port, on_ready=announce, threads=threads)
