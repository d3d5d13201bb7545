"""`artlens federate`: help without Flower, clear errors for a missing extra and an unreachable server."""

import subprocess
import sys

import pytest
from feature_collections import make_feature_collection

from artlens.errors import ArtlensError
from artlens.federated.config import FederatedConfig
from artlens.settings import with_changes


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
    config = with_changes(FederatedConfig(strategy="fedprox", features=("content", "style"), secagg=True,
                                          dp_epsilon=4.0), {"training__head__hidden": (64, 32)})
    flat = config.to_run_config()
    assert all(isinstance(v, (bool, int, float, str)) for v in flat.values())
    assert FederatedConfig.from_run_config(flat) == config


def test_cli_defaults_are_the_config_defaults_and_the_paper_settings():
    from artlens.cli import federate_cmd as cmd
    from artlens.federated.config import ServerSettings

    defaults = FederatedConfig()
    training = defaults.training
    assert (defaults.local_epochs, defaults.rounds, training.lr, training.batch_size) == (10, 50, 1e-3, 32)
    shown = {"strategy": defaults.strategy, "rounds": defaults.rounds, "local_epochs": defaults.local_epochs,
             "label": defaults.label, "lr": training.lr, "batch_size": training.batch_size,
             "proximal_mu": defaults.proximal_mu, "server_lr": defaults.server_lr, "dp_epsilon": defaults.dp_epsilon,
             "dp_delta": defaults.dp_delta, "dp_clip": defaults.dp_clip, "secagg": defaults.secagg,
             "min_clients": defaults.min_clients, "round_timeout": defaults.round_timeout, "seed": training.seed,
             "virtual_styles": defaults.virtual_styles, "reduce": training.head.reduce_dims,
             "features": defaults.features, "monitor": ServerSettings().monitor}
    for name, value in shown.items():
        option = cmd.option(name)
        assert option.default is None, name  # not given: the dataclass keeps its default
        assert f"(default: {cmd._shown(value)})" in option.help, name
    assert cmd._shown(defaults.features) == "content,style"


def test_simulate_flags_reach_the_federation_config(tmp_path, monkeypatch):
    pytest.importorskip("flwr")
    from artlens.cli import main
    from artlens.federated import simulation

    coll = make_feature_collection(tmp_path / "c", per_class=4, extractors=("colour-hist",))
    coll.close()
    seen = {}

    def fake(root, settings, partition, institutions, save, cpus, verbose, reporter):
        seen.update(config=settings.federation, partition=partition, institutions=institutions, out=settings.out,
                    save=save)
        raise ArtlensError("stop here", "")

    monkeypatch.setattr(simulation, "simulate", fake)
    code = main(["federate", "simulate", "--collection", str(tmp_path / "c"), "--partition", "dirichlet:0.3", "--institutions", "4",
                 "--strategy", "fedprox", "--rounds", "3", "--local-epochs", "2", "--lr", "0.01", "--batch-size", "16",
                 "--proximal-mu", "0.1", "--dp-epsilon", "4", "--no-virtual-styles", "--features", "colour-hist",
                 "--out", str(tmp_path / "h.pt"), "--no-save"])
    assert code == 2
    config = seen["config"]
    assert (config.strategy, config.rounds, config.local_epochs, config.training.lr,
            config.training.batch_size) == ("fedprox", 3, 2, 0.01, 16)
    assert config.proximal_mu == 0.1 and config.dp_epsilon == 4 and not config.virtual_styles
    assert config.features == ("colour-hist",)
    assert (seen["partition"], seen["institutions"], seen["save"]) == ("dirichlet:0.3", 4, False)
    assert seen["out"] == str(tmp_path / "h.pt")


def test_the_flower_app_config_carries_every_setting(tmp_path):
    import tomllib

    pytest.importorskip("flwr")
    from artlens.federated.config import ServerSettings
    from artlens.federated.deploy import write_flower_app

    config = with_changes(FederatedConfig(strategy="fedadam", rounds=7, local_epochs=3, secagg=True, dp_epsilon=8.0,
                                          virtual_styles=False, features=("colour-hist",)),
                          {"training__lr": 5e-4, "training__batch_size": 64})
    settings = ServerSettings(config, str(tmp_path / "run"), str(tmp_path / "h.pt"), str(tmp_path / "eval"),
                              institutions=3, wait_seconds=30.0, monitor="val-loss")
    app = write_flower_app(tmp_path / "app", settings)
    run_config = tomllib.loads((app / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    assert run_config["local-epochs"] == 3 and run_config["rounds"] == 7
    assert ServerSettings.from_run_config(run_config) == settings
    # keys left out of an app config take the defaults
    assert ServerSettings.from_run_config({}).federation == FederatedConfig()


def test_tls_is_optional_but_never_silently_off():
    pytest.importorskip("flwr")
    from artlens.federated.config import loopback
    from artlens.federated.deploy import superlink_args, supernode_args

    assert "--insecure" in superlink_args("127.0.0.1", 9093, insecure=True)
    with pytest.raises(ArtlensError, match="TLS certificates"):
        superlink_args("0.0.0.0", 9093, insecure=False)
    secure = superlink_args("0.0.0.0", 9093, insecure=False, certificates=("ca.crt", "server.pem", "server.key"))
    assert "--insecure" not in secure
    assert secure[secure.index("--ssl-ca-certfile") + 1] == "ca.crt" and "--ssl-keyfile" in secure
    node = supernode_args("gallery.example:9093", "/tmp/c", "Musée", 9100, insecure=False, root_certificates="ca.crt")
    assert "--insecure" not in node and "--root-certificates" in node
    assert loopback("127.0.0.1") and loopback("localhost") and not loopback("10.0.0.5")


def test_client_refuses_a_remote_server_without_tls(tmp_path, capsys):
    pytest.importorskip("flwr")
    from artlens.cli import main

    coll = make_feature_collection(tmp_path / "c", per_class=3, extractors=("colour-hist",))
    coll.close()
    code = main(["federate", "client", "--collection", str(tmp_path / "c"), "--institution", "Remote Gallery",
                 "--server", "10.255.255.1:9093"])
    err = capsys.readouterr().err
    assert code == 2 and "Remote Gallery" in err and "--root-certificates" in err


class FakeProcess:
    def __init__(self, code: int = 0):
        self.code = code

    def wait(self):
        return self.code


def fake_launched(on_run):
    """A stand-in for deploy.Launched whose `flwr run` only calls ``on_run`` and exits with code 0."""
    from pathlib import Path

    class Launched:
        def __init__(self):
            self.logs: dict[str, Path] = {}

        def start(self, name, args, log_dir, env):
            self.logs[name] = Path(log_dir) / f"{name}.log"
            if name == "run":
                on_run()
            return FakeProcess(0)

        def stop(self, *a, **k):
            pass

    return Launched


def test_the_server_reports_the_server_apps_own_error_not_an_exit_code(tmp_path, capsys, monkeypatch):
    pytest.importorskip("flwr")
    from artlens.cli import main
    from artlens.federated import deploy
    from artlens.federated.server_app import record_error

    run_dir = tmp_path / "run"
    failure = ArtlensError("only 0 institution(s) connected within 5 s; 2 expected",
                           "start their clients with `artlens federate client`")
    monkeypatch.setattr(deploy, "Launched", fake_launched(lambda: record_error(run_dir, failure)))
    monkeypatch.setattr(deploy, "reachable", lambda *a, **k: False)
    monkeypatch.setattr(deploy, "wait_until_reachable", lambda *a, **k: None)
    code = main(["federate", "server", "--port", "1", "--wait", "5", "--run-dir", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 2
    assert "only 0 institution(s) connected within 5 s" in err and "artlens federate client" in err
    assert "exit code" not in err

    # no error recorded and no metrics: a failure, said without a misleading exit code
    monkeypatch.setattr(deploy, "Launched", fake_launched(lambda: None))
    code = main(["federate", "server", "--port", "1", "--run-dir", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 2 and "wrote no metrics.json" in err and "exit code 0" not in err


def test_the_kept_round_line_says_why_it_has_no_scores():
    from artlens.cli.federate_cmd import kept_line

    bare = kept_line({"kept_round": 2, "map": None, "accuracy": None, "epsilon": None})
    assert bare.startswith("kept round 2: not scored") and "--eval-collection" in bare
    assert "mAP ," not in bare
    scored = kept_line({"kept_round": 3, "map": 0.5, "accuracy": 0.25, "epsilon": 1.5, "delta": 1e-5})
    assert scored == "kept round 3: test mAP 0.5000, accuracy 0.2500, epsilon 1.50 (delta 1e-05)"


def test_stopping_ends_children_that_outlived_their_parent(tmp_path):
    import time

    from artlens.federated import processes

    launched = processes.Launched()
    pid_file = tmp_path / "orphan.pid"
    # the shell exits at once; its `sleep` is re-parented but stays in the group the shell leads
    proc = launched.start("parent", ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; exit 0"], tmp_path, {})
    proc.wait(timeout=10)
    while not pid_file.read_text().strip():
        time.sleep(0.05)
    orphan = int(pid_file.read_text())
    assert processes.alive(orphan)
    launched.stop(grace=5.0)
    assert not processes.alive(orphan)


def test_a_client_whose_supernode_gave_up_stops_it_and_says_so(tmp_path, capsys, monkeypatch):
    import sys

    pytest.importorskip("flwr")
    from artlens.cli import main
    from artlens.federated import deploy, processes

    coll = make_feature_collection(tmp_path / "c", per_class=3, extractors=("colour-hist",))
    coll.close()
    pid_file = tmp_path / "supernode.pid"
    # a SuperNode that gives up reconnecting and then hangs, as Flower's does
    script = (f"import os, sys, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
              "print('WARNING: Giving up reconnection after 10.00 seconds and 6 tries.', flush=True); time.sleep(60)")
    monkeypatch.setattr(deploy, "reachable", lambda *a, **k: True)
    monkeypatch.setattr(deploy, "supernode_args", lambda *a, **k: [sys.executable, "-c", script])
    code = main(["federate", "client", "--collection", str(tmp_path / "c"), "--institution", "Musée Test",
                 "--server", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Musée Test" in err and "gave up reconnecting" in err
    assert not processes.alive(int(pid_file.read_text()))
