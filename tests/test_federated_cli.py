"""`artlens federate`: help without Flower, clear errors for a missing extra and an unreachable server."""

import subprocess
import sys

import pytest

from artlens.errors import ArtlensError
from artlens.federated.config import FederatedConfig
from artlens.federated.synthetic import make_feature_collection


def test_the_cli_does_not_import_flower_until_a_federate_command_runs():
    code = ("import sys; from artlens.cli import main; main(['--help']); "
            "assert 'flwr' not in sys.modules, 'flwr imported by artlens --help'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "federate" in result.stdout


def test_missing_flower_names_the_extra(monkeypatch):
    import importlib.util

    from artlens.cli import federate_cmd

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flwr" else real(name, *a))
    with pytest.raises(ArtlensError) as info:
        federate_cmd.require_flower()
    assert 'pip install "artlens[federated]"' in info.value.hint


def test_unreachable_server_is_an_error_naming_the_institution(tmp_path, capsys):
    pytest.importorskip("flwr")
    from artlens.cli import main
    from artlens.federated.deploy import free_port

    coll = make_feature_collection(tmp_path / "c", per_class=3, extractors=("colour-hist",))
    coll.close()
    code = main(["federate", "client", "--collection", str(tmp_path / "c"), "--institution", "Musée Test",
                 "--server", f"127.0.0.1:{free_port()}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Musée Test" in err and "cannot reach" in err and "artlens federate server" in err


def test_bad_settings_are_explained(tmp_path, capsys):
    from artlens.cli import main

    with pytest.raises(ArtlensError, match="unknown strategy"):
        FederatedConfig(strategy="fedsgd")
    with pytest.raises(ArtlensError, match="epsilon"):
        FederatedConfig(dp_epsilon=-1)
    pytest.importorskip("flwr")
    coll = make_feature_collection(tmp_path / "c", per_class=4, extractors=("colour-hist",))
    coll.close()
    code = main(["federate", "simulate", "--collection", str(tmp_path / "c"), "--partition", "genre",
                 "--features", "colour-hist", "--run-dir", str(tmp_path / "run")])
    assert code == 2 and "cannot partition by 'genre'" in capsys.readouterr().err


def test_run_config_round_trip():
    config = FederatedConfig(strategy="fedprox", features=("content", "style"), hidden=(64, 32), secagg=True,
                             dp_epsilon=4.0)
    flat = config.to_run_config()
    assert all(isinstance(v, (bool, int, float, str)) for v in flat.values())
    assert FederatedConfig.from_run_config(flat) == config
