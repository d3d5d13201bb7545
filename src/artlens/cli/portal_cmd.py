"""`artlens portal`: the web page and REST API over a federation of member servers, and
`artlens portal --check`; `federated_search` is `artlens search --members`."""

from __future__ import annotations

from pathlib import Path

import typer

from artlens.cli import app, host_option, json_option, make_console, port_option, print_json


def _settings(members: Path, **given):
    from artlens.api.settings import PortalSettings
    from artlens.settings import with_changes

    return with_changes(PortalSettings(members=members), given)


def open_portal(members: Path, head: Path | None, timeout: float | None):
    """The portal of MEMBERS.toml (errors name the file and field), with the head if given."""
    from artlens.federation import Portal, load_members
    from artlens.models import load_head

    entries = load_members(members)
    settings = _settings(members, head=head, timeout=timeout)
    return Portal(entries, head=load_head(head) if head is not None else None, timeout=settings.timeout), settings


def print_check(rows: list[dict]) -> None:
    from rich.table import Table

    yes = {True: "yes", False: "NO", None: "-"}
    table = Table(title="members")
    for col in ["member", "url", "reachable", "token accepted", "head matches", "artworks", "ms", "status"]:
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["url"], yes[r["reachable"]], yes[r["token_accepted"]], yes[r["head_matches"]],
                      "-" if r["artworks"] is None else str(r["artworks"]), f"{r['ms']:.0f}",
                      r["status"] + (f": {r['detail']}" if r["detail"] else ""))
    make_console().print(table)


@app.command()
def portal(
    members: Path = typer.Option(..., "--members", help="MEMBERS.toml: one \\[\\[member]] table per member, with name, url, token."),
    head: Path = typer.Option(None, "--head", help="The federation's head file, which embeds image queries for the "
                              "shared `learned` aspect (without it: the pretrained aspects only)."),
    host: str = host_option(),
    port: int = port_option(),
    timeout: float = typer.Option(None, "--timeout", help="Seconds each member has to answer (default: 2.0)."),
    title: str = typer.Option(None, "--title", help="Name shown on the page (default: artlens federation)."),
    check: bool = typer.Option(False, "--check", help="Call every member's info endpoint, print a table (reachable, "
                               "token accepted, head matches, artworks, latency) and exit: 1 if a member fails."),
    as_json: bool = json_option("With --check: print one JSON object {members: [...]}."),
    threads: int = typer.Option(1, "--threads", help="CPU threads for encoding queries."),
):
    """Serve the web page and REST API over every member of a federation: a query is encoded here,
    its vectors go to the members in parallel, their hits come back merged by score."""
    import asyncio

    from artlens.errors import ArtlensError

    if not 0 <= port <= 65535:
        raise ArtlensError(f"port {port} is out of range", "use a port between 1 and 65535, e.g. --port 8000")
    gateway, settings = open_portal(members, head, timeout)
    if check:
        async def run():
            try:
                return await gateway.check()
            finally:
                await gateway.aclose()

        rows = asyncio.run(run())
        if as_json:
            print_json({"members": rows})
        else:
            print_check(rows)
        if not all(r["status"] == "ok" for r in rows):
            raise typer.Exit(1)
        return
    from artlens.api.portal import create_portal_app
    from artlens.api.server import serve_app
    from artlens.cli.serve_cmd import announce
    from artlens.settings import with_changes

    settings = with_changes(settings, {"title": title})
    typer.echo(f"Portal over {len(gateway.members)} members: {', '.join(m.name for m in gateway.members)}", err=True)
    serve_app(create_portal_app(settings, gateway), host, port, on_ready=announce, threads=threads)


def federated_search(members: Path, head: Path | None, timeout: float | None, image: Path | None, text: str | None,
                     k: int, aspect: str | None, weights: dict | None, filters: dict | None, fast: bool) -> dict:
    """`artlens search --members`: the portal's search from a terminal, answered as the portal's API answers."""
    import asyncio

    from artlens.errors import ArtlensError

    if (image is None) == (text is None):
        raise ArtlensError("a search across members takes one of --image FILE or --text TEXT",
                           "artwork ids belong to one member: search it with --collection, or like works on the portal's page")
    gateway, _ = open_portal(members, head, timeout)

    async def run() -> dict:
        try:
            await gateway.ensure_infos()
            if image is not None:
                query, described = await asyncio.to_thread(gateway.encode_image, str(image)), {"image": str(image)}
            else:
                query, described = await asyncio.to_thread(gateway.encode_text, text), {"text": text}
            return await gateway.search(query, k, weights=weights, aspect=aspect, filters=filters, fast=fast,
                                        described=described)
        finally:
            await gateway.aclose()

    return asyncio.run(run())


def print_federated(answer: dict) -> None:
    from rich.table import Table

    aspects = sorted({a for h in answer["results"] for a in h["aspects"]})
    table = Table(title=f"weights: {', '.join(f'{a}={w:.2f}' for a, w in answer['weights'].items())}")
    for col in ["#", "institution", "id", "score", *aspects, "artwork"]:
        table.add_column(col, overflow="fold")
    for rank, hit in enumerate(answer["results"], 1):
        label = " · ".join(hit["metadata"][c] for c in ("title", "artist", "style", "date") if c in hit["metadata"])[:60]
        table.add_row(str(rank), hit["institution"], str(hit["member_id"]), f"{hit['score']:.3f}",
                      *[f"{hit['aspects'][a]:.3f}" if a in hit["aspects"] else "-" for a in aspects], label)
    make_console().print(table)
    typer.echo(answer["line"], err=True)
