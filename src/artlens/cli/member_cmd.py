"""`artlens member token`: a bearer token for a portal, and the hash a member lists in MEMBER.toml."""

from __future__ import annotations

import typer

from artlens.cli import app, json_option, print_json

member_app = typer.Typer(help="A federation member's files: tokens for the portals that may search it.",
                         no_args_is_help=True)
app.add_typer(member_app, name="member")


@member_app.command("token")
def token(as_json: bool = json_option("Print one JSON object: token, sha256.")):
    """Make a new bearer token. Give the token to the portal (MEMBERS.toml `token`) and put its
    SHA-256 in this member's MEMBER.toml `tokens_sha256`; the member never stores the token itself."""
    from artlens.federation import new_token

    secret, digest = new_token()
    if as_json:
        print_json({"token": secret, "sha256": digest})
        return
    print(f"token   {secret}")
    print(f"sha256  {digest}")
    typer.echo("Give the token to the portal (MEMBERS.toml: token = \"...\"); add the sha256 to "
               "MEMBER.toml: tokens_sha256 = [\"...\"].", err=True)
