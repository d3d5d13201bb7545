"""`artlens serve`: the web page and REST API over a collection; `artlens token`: mint an API token."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from artlens.cli import (
    app,
    collection_option,
    default_collection,
    host_option,
    json_option,
    port_option,
    print_json,
)

console = Console(stderr=True)
# ApiSettings' default, written out: importing artlens.api here would load the whole service for
# every command's --help (tests/test_api.py checks that they agree, and that the help names the
# variables ApiSettings.from_env reads).
DEFAULT_UPLOAD_MB = 20
# AccessSettings' defaults, written out for the same reason (checked by tests/test_security.py).
DEFAULT_RATE_LIMIT = 20.0
DEFAULT_RATE_BURST = 200
TOKENS_HELP = ("File of hashed API tokens (SHA-256 hex and a name a line; add one with `artlens token`). "
               "Writes need a token; reads too with --private. Default: no tokens.")


def announce(url: str, to: Console | None = None, page: str = "") -> None:
    """Say where the page (``url`` + ``page``) and the API reference (``url`` + ``docs``) are."""
    out = to or console
    out.print(f"\n[bold green]artlens is serving[/] at [bold]{url}{page}[/]", soft_wrap=True)
    if "://0.0.0.0:" in url or "://[::]:" in url:
        out.print("(every interface: open it with this machine's address or name)", style="dim")
    out.print(f"API docs at {url}docs · Ctrl+C stops it", soft_wrap=True, style="dim")


def warn_if_exposed(host: str, tokens: bool, tls: bool, to: Console | None = None) -> None:
    """A warning on stderr when ``host`` faces a network without tokens or without TLS."""
    from artlens.api.server import exposure_warning

    warning = exposure_warning(host, tokens, tls)
    if warning:
        (to or console).print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)


def tls_option(kind: str):
    return typer.Option(None, f"--ssl-{kind}", help=f"PEM {'certificate' if kind == 'certfile' else 'private key'} "
                                                    "to serve HTTPS (with the other --ssl- option).")


@app.command()
def serve(
    collection: Path = collection_option(),
    host: str = host_option("Address to listen on (0.0.0.0: every interface, e.g. to try it on a phone)."),
    port: int = port_option(),
    registry: Path = typer.Option(None, "--registry", help="Copyright registry for /api/copyright/check "
                                                           "(default: $ARTLENS_REGISTRY)."),
    free: Path = typer.Option(None, "--free", help="Collection of free-to-use works offered as alternatives "
                                                   "(default: $ARTLENS_FREE, else the served one)."),
    thumbnails: Path = typer.Option(None, "--thumbnails", help="Thumbnail cache folder (default: COLLECTION/thumbnails)."),
    max_upload_mb: int = typer.Option(None, "--max-upload-mb", help=f"Largest upload accepted, in MiB (default: {DEFAULT_UPLOAD_MB})."),
    threads: int = typer.Option(1, "--threads", help="CPU threads per request (1 serves concurrent requests best)."),
    workers: int = typer.Option(1, "--workers", help="Server processes sharing the port (e.g. one per core); each "
                                "reads the collection on its own (a postgresql:// one from the database)."),
    profiles: Path = typer.Option(None, "--profiles", help="Artist profile file that \"Find an artist\" and "
                                                           "/api/artists search (from `artlens artists publish`/`merge`; "
                                                           "default: $ARTLENS_ARTIST_PROFILES, else "
                                                           "COLLECTION/artists/profiles.json; re-read when it changes)."),
    head: Path = typer.Option(None, "--head", help="Head the artist profiles were made with, which embeds uploaded "
                                                   "references (default: $ARTLENS_ARTIST_HEAD, else the "
                                                   "collection's own head)."),
    tokens: Path = typer.Option(None, "--tokens", help=TOKENS_HELP),
    private: bool = typer.Option(None, "--private/--public", help="Whether reads (search, artworks, ...) need a "
                                                                  "token too (default: public; needs --tokens)."),
    rate_limit: float = typer.Option(None, "--rate-limit", help="Requests per second per client, sustained; more answer "
                                                                f"429 with Retry-After (0: no limit; default: {DEFAULT_RATE_LIMIT:g})."),
    rate_burst: int = typer.Option(None, "--rate-burst", help=f"Requests a client may send at once (default: {DEFAULT_RATE_BURST})."),
    cors_origin: list[str] = typer.Option(None, "--cors-origin", help="Origin whose pages may call this API, e.g. "
                                                                     "https://museum.example (repeatable; default: "
                                                                     "same origin only)."),
    frame_ancestor: list[str] = typer.Option(None, "--frame-ancestor", help="Site that may show the page in a frame "
                                                                           "(repeatable; default: none)."),
    ssl_certfile: Path = tls_option("certfile"),
    ssl_keyfile: Path = tls_option("keyfile"),
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
    from artlens.settings import with_changes

    if not 0 <= port <= 65535:
        raise ArtlensError(f"port {port} is out of range", "use a port between 1 and 65535 (0: any free one), e.g. --port 8000")
    if workers < 1:
        raise ArtlensError(f"--workers {workers}: at least one worker", "e.g. --workers 2 (one per core)")
    if workers > 1 and member is not None:
        raise ArtlensError("a federation member serves from one process", "leave out --workers, or --member")
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
    settings = with_changes(settings, {"access__tokens": tokens, "access__private": private,
                                       "access__rate_limit": rate_limit, "access__rate_burst": rate_burst,
                                       "access__cors_origins": tuple(cors_origin) if cors_origin else None,
                                       "access__frame_ancestors": tuple(frame_ancestor) if frame_ancestor else None})
    console.print(f"Loading {coll.location} ({len(coll.catalog)} artworks)...")
    if workers > 1:
        from artlens.api.server import CollectionApp, serve_workers

        coll.load_indexes()  # here, so a collection that needs rebuilding is a one-line error
        warn_if_exposed(host, tokens is not None, ssl_certfile is not None)
        location = coll.location
        coll.close()
        console.print(f"Starting {workers} workers...")
        serve_workers(CollectionApp(settings, location, threads), workers, host, port, on_ready=announce,
                      ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                      ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)
        return
    app = create_app(settings, collection=coll, warm_up=False)
    if member_settings is not None:
        from artlens.api.routes.federation import install_member
        from artlens.progress import Reporter

        member = install_member(app, member_settings, Reporter(progress=False))
        console.print(f"Federation member {member_settings.name!r} on head {member.head_id}")
    app.state.service.warm_up()  # here, so a collection that needs rebuilding is a one-line error
    warn_if_exposed(host, tokens is not None, ssl_certfile is not None)
    tls = {"ssl_certfile": str(ssl_certfile), "ssl_keyfile": str(ssl_keyfile)} if ssl_certfile or ssl_keyfile else {}
    serve_app(app, host, port, on_ready=announce, threads=threads, **tls)


@app.command()
def token(
    tokens: Path = typer.Option(..., "--tokens", help="Tokens file to add the new token's hash to (made if missing)."),
    name: str = typer.Option(..., "--name", help="Name of the token, for logs and rate limits (e.g. who holds it)."),
    as_json: bool = json_option("Print one JSON object: name, token, sha256, tokens."),
):
    """Mint an API token for `artlens serve --tokens FILE` (and the federation portal): its SHA-256 is
    added to FILE and the token printed, once: the server keeps only the hash. Revoke a token by
    deleting its line (servers re-read the file)."""
    from artlens.api.security import add_token, hash_token

    minted = add_token(tokens, name)
    if as_json:
        print_json({"name": name, "token": minted, "sha256": hash_token(minted), "tokens": str(tokens)})
        return
    print(minted)
    console.print(f"token {name!r} added to {tokens}; it is shown only now: give it to its holder "
                  "(Authorization: Bearer TOKEN, or sign in on the page)", markup=False, soft_wrap=True)
