"""The ``artlens`` command line. Each command group lives in its own module and registers itself on
``app``; :func:`main` turns :class:`ArtlensError` into a one-line message and exit code 2, and a
mistyped command or option into click's usage error (exit 2) with every typer release we support."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from artlens.errors import ArtlensError

GRAMMAR = """\
Short flags mean the same in every command: -c/--collection, -k/--k (how many results), \
-l/--label (a metadata column, e.g. style), -o/--out, -q/--quiet, -i/--image, -t/--text, \
-a/--aspect, -w/--weights, -f/--filter, -h/--help.

--label names a metadata column of the collection; --labels (no short flag) is a metadata CSV file \
(`artlens ingest DIR --labels FILE.csv`).

Every command that produces a result takes --json: one JSON object on stdout (JSON Lines for a \
stream of results); progress and notices go to stderr.
"""

app = typer.Typer(
    name="artlens",
    help="Artwork similarity search, recommendation and copyright checks that keep images at home.",
    epilog=GRAMMAR,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
eval_app = typer.Typer(help="Measure retrieval, annotation, hashing and copyright quality.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

COLLECTION_HELP = ("Collection folder, or postgresql://USER@HOST:PORT/DB?schema=NAME "
                   "(default: $ARTLENS_COLLECTION or ./artlens-collection).")


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("artlens")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        print(f"artlens {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    pass  # the options of `artlens` itself; the help text is the app's


def default_collection() -> Path:
    return env_path("ARTLENS_COLLECTION") or Path("artlens-collection")


def env_path(variable: str) -> Path | None:
    """A path named by an environment variable, None when unset or empty: the one place the command
    line reads the environment (the server's settings read theirs in ``ApiSettings.from_env``)."""
    value = os.environ.get(variable, "")
    return Path(value) if value else None


def comma_list(text: str | None, flag: str, cast=str, example: str = "") -> tuple | None:
    """``"16,32,64"`` -> ``(16, 32, 64)`` (None when not given); a value ``cast`` refuses is an error
    naming ``flag``."""
    if text is None:
        return None
    from artlens.errors import ArtlensError

    try:
        return tuple(cast(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise ArtlensError(f"bad {flag} {text!r}", f"give a comma-separated list, e.g. {flag} {example}") from None


def collection_option(help: str = COLLECTION_HELP):
    return typer.Option(None, "--collection", "-c", help=help, show_default=False)


def json_option(help: str = "Print the result as one JSON object."):
    return typer.Option(False, "--json", help=help)


def quiet_option(help: str = "No progress bars."):
    return typer.Option(False, "--quiet", "-q", help=help)


DEFAULT_HOST = "127.0.0.1"  # this machine only: serving further is a choice (docs/serving.md)
DEFAULT_PORT = 8000


def host_option(help: str = "Address to listen on (0.0.0.0: every interface)."):
    return typer.Option(DEFAULT_HOST, "--host", help=help)


def port_option(help: str = "Port to listen on."):
    return typer.Option(DEFAULT_PORT, "--port", help=help)


def device_option(what: str):
    """``--device``: where torch runs (resolved by ``artlens.devices.resolve_device``)."""
    return typer.Option(None, "--device", metavar="auto|cpu|cuda[:N]",
                        help=f"Device to {what}: auto (a GPU when torch sees one, else the CPU), cpu, cuda or "
                        "cuda:N (default: auto).")


def open_collection(path: Path | None, create: bool = False):
    from artlens.collection import Collection

    return Collection.open(path or default_collection(), create=create)


def print_json(payload) -> None:
    """One result as one JSON object on stdout (numpy values included)."""
    import json

    from artlens.files import jsonable

    print(json.dumps(payload, indent=2, default=jsonable))


def print_json_line(payload) -> None:
    """One result of a stream as one line of JSON Lines on stdout."""
    import json

    from artlens.files import jsonable

    print(json.dumps(payload, default=jsonable), flush=True)


def make_console(stderr: bool = False):
    """A rich console for tables and messages. Piped or redirected, it does not wrap at 80 columns
    (unless $COLUMNS says how wide): a table keeps one row per line and long values in full, for grep
    and for files."""
    from rich.console import Console

    out = Console(stderr=stderr)
    if out.is_terminal or os.environ.get("COLUMNS"):
        return out
    return Console(stderr=stderr, width=10_000, soft_wrap=True)


def _register_commands() -> None:
    """Import every ``*_cmd``/``*_cmds`` module of this package: each registers its commands on ``app``."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.endswith(("_cmd", "_cmds")):
            importlib.import_module(f"{__name__}.{info.name}")


_register_commands()


def _click_exception_types() -> tuple[type[BaseException], ...]:
    """Click's exception base as the installed typer raises it: typer < 0.26 uses click itself,
    0.26 and later a copy of click inside typer (``typer.BadParameter`` derives from either)."""
    types = [c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"]
    try:
        import click

        types.append(click.ClickException)
    except ImportError:  # pragma: no cover - typer with its own click and no click installed
        pass
    return tuple(dict.fromkeys(types))


def _one_suggestion(exc) -> None:
    """typer and click >= 8.4 both suggest close commands for an unknown one: keep typer's."""
    if "Did you mean" in str(getattr(exc, "message", "")) and getattr(exc, "possibilities", None):
        exc.possibilities = None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    click_errors = _click_exception_types()
    if os.environ.get("ARTLENS_CRASH_AT"):  # crash tests: kill this process at a named write boundary
        from artlens.storage import inject_faults

        inject_faults(os.environ["ARTLENS_CRASH_AT"])
    try:
        result = app(args=argv, prog_name="artlens", standalone_mode=False)
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
    except click_errors as exc:  # usage errors: an unknown command or option, a bad value
        _one_suggestion(exc)
        exc.show()
        return exc.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
