"""The ``artlens`` command line. Each command group lives in its own module and registers itself on
``app``; :func:`main` turns :class:`ArtlensError` into a one-line message and exit code 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from artlens.errors import ArtlensError

app = typer.Typer(
    name="artlens",
    help="Artwork similarity search, recommendation and copyright checks that keep images at home.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
eval_app = typer.Typer(help="Measure retrieval, annotation, hashing and copyright quality.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

COLLECTION_HELP = "Collection folder (default: $ARTLENS_COLLECTION or ./artlens-collection)."


def default_collection() -> Path:
    return Path(os.environ.get("ARTLENS_COLLECTION", "artlens-collection"))


def collection_option(help: str = COLLECTION_HELP):
    return typer.Option(None, "--collection", "-c", help=help, show_default=False)


def open_collection(path: Path | None, create: bool = False):
    from artlens.collection import Collection

    return Collection.open(path or default_collection(), create=create)


def _register_commands() -> None:
    """Import every ``*_cmd``/``*_cmds`` module of this package: each registers its commands on ``app``."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.endswith(("_cmd", "_cmds")):
            importlib.import_module(f"{__name__}.{info.name}")


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        result = app(args=argv, standalone_mode=False)
    except ArtlensError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted: what was done so far is kept; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
