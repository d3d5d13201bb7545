"""The command line's grammar, in-process: usage errors, --version, -h, --json, short flags, wide tables.
`.ci/run` repeats the usage, --help, --version and --json checks in a fresh base install."""

from __future__ import annotations

import json

import click
import pytest
import typer

from artlens.cli import app, main, make_console, package_version

# every short flag has one meaning: the long option it stands for
SHORT_FLAGS = {"-c": "--collection", "-k": "--k", "-l": "--label", "-o": "--out", "-q": "--quiet", "-i": "--image",
               "-t": "--text", "-a": "--aspect", "-w": "--weights", "-f": "--filter", "-h": "--help"}
SERVERS = {("demo",), ("serve",), ("study", "serve")}  # they serve a web page, not a result


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _commands(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


@pytest.mark.parametrize("args, message", [
    (["serch", "--text", "x"], "No such command 'serch'"),
    (["search", "--kk", "3"], "--kk"),
    (["eval", "retreival"], "No such command 'retreival'"),
    (["study", "simulate", "-p", "5"], "-p"),  # a short flag of the old grammar
    (["search", "-k", "many"], "'many' is not a valid integer"),
])
def test_a_usage_error_is_clicks_short_message_and_exit_2(args, message, capsys):
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and not out
    assert message in err and "Usage: artlens" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 5
    assert err.count("Did you mean") <= 1  # typer's suggestion, not click's as well


def test_version_comes_from_the_package_metadata(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"artlens {package_version()}"
    assert package_version() != ""


@pytest.mark.parametrize("args", [["-h"], ["--help"], ["eval", "-h"], ["search", "-h"], ["study", "create", "-h"]])
def test_h_is_help_everywhere(args, capsys):
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "Usage:" in out


def test_root_help_explains_the_short_flags_and_label_versus_labels(capsys):
    code, out, _ = run_cli(capsys, "--help")
    text = " ".join(out.split())
    assert code == 0 and "-c/--collection" in text and "--labels (no short flag)" in text


def test_short_flags_have_one_meaning():
    root = typer.main.get_command(app)
    wrong = []
    for path, command in _commands(root):
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            shorts = [o for o in param.opts if len(o) == 2 and o[0] == "-" and o[1] != "-"]
            longs = [o for o in param.opts if o.startswith("--")]
            for short in shorts:
                if SHORT_FLAGS.get(short) not in longs:
                    wrong.append(f"artlens {' '.join(path)}: {short} for {', '.join(longs)}")
    assert not wrong, wrong


def test_every_command_with_a_result_has_json():
    root = typer.main.get_command(app)
    lacking = []
    for path, command in _commands(root):
        if path in SERVERS or hasattr(command, "commands"):
            continue
        if not any("--json" in getattr(p, "opts", ()) for p in command.params):
            lacking.append(" ".join(path))
    assert not lacking, lacking


def test_json_output_is_one_object_and_nothing_else(tiny_collection, capsys):
    code, out, _ = run_cli(capsys, "stats", "--collection", tiny_collection.root, "--json")
    assert code == 0 and json.loads(out)["artworks"] == 12
    code, out, _ = run_cli(capsys, "search", "--text", "red dots", "-k", 2, "-c", tiny_collection.root, "--json")
    assert code == 0 and len(json.loads(out)["results"]) == 2


def test_study_commands_print_json(tiny_collection, tmp_path, capsys):
    study = tmp_path / "study"
    code, out, _ = run_cli(capsys, "study", "create", "-c", tiny_collection.root, "--group-by", "style",
                           "--groups", 2, "--size", 3, "-o", study, "--json")
    created = json.loads(out)
    assert code == 0 and created["questions"] == 2 and created["study"] == str(study)


def test_tables_do_not_wrap_at_80_columns_when_piped(monkeypatch, capsys):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert make_console().width > 200  # capsys: stdout is not a terminal
    monkeypatch.setenv("COLUMNS", "100")  # unless told how wide
    assert make_console().width == 100


def test_demo_with_no_pictures_is_a_one_line_error(tmp_path, capsys):
    code, out, err = run_cli(capsys, "demo", "--n", 0, "--no-serve", "--out", tmp_path / "demo")
    assert code == 2 and not out and err.startswith("error:") and "Traceback" not in err
    assert not (tmp_path / "demo").exists()
