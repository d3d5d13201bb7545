"""A real deployment: `artlens federate server` and three `artlens federate client` processes on
127.0.0.1; one client is killed mid-round and the others finish the run. The test stops exactly the
processes it started (and what they spawned), by process id. Slow: Flower starts a process per message."""

import json
import signal
import sys
import time

import pytest
from feature_collections import make_feature_collection

from artlens.federated.partition import by_column

pytest.importorskip("flwr")
pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float, what: str, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def text(path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def test_server_and_three_clients_finish_without_a_killed_client(tmp_path):
    from artlens.federated import deploy, processes

    coll = make_feature_collection(tmp_path / "c", ("baroque", "cubism", "impressionism"), per_class=24,
                                   extractors=("colour-hist",))
    md5s = coll.catalog.md5s()
    part = by_column({md5s[i]: v for i, v in coll.catalog.column("style").items()}, "style")
    coll.close()
    keys = part.write_institution_files(tmp_path / "keys")
    port = deploy.free_port()
    address = f"127.0.0.1:{port}"
    run_dir, logs = tmp_path / "run", tmp_path / "logs"
    artlens = [sys.executable, "-m", "artlens", "federate"]
    env = deploy.flower_env()
    launched = processes.Launched()
    seen: set[int] = set()
    try:
        launched.start("server", artlens + [
            "server", "--port", str(port), "--institutions", "3", "--rounds", "2", "--local-epochs", "1",
            "--strategy", "fedavg", "--features", "colour-hist", "--round-timeout", "90", "--wait", "300",
            "--run-dir", str(run_dir), "--eval-collection", str(tmp_path / "c")], logs, env)
        wait_for(lambda: deploy.reachable(address, 1.0), 120, "the server to listen")
        for name in part.names:
            launched.start(name, artlens + ["client", "--collection", str(tmp_path / "c"), "--institution", name,
                                            "--server", address, "--partition", str(keys[name])], logs, env)
        victim = part.names[-1]
        # mid-round: the victim has received its first training message
        wait_for(lambda: "Receiving: train message" in text(launched.logs[victim]), 600, "the first round")
        for pids in launched.pids().values():
            seen.update(pids)
        victim_pids = launched.pids()[victim]
        for pid in reversed(victim_pids):  # the SuperNode and what it runs, then the client command
            processes.send_signal(pid, signal.SIGKILL)
        server = launched.processes["server"]
        wait_for(lambda: server.poll() is not None, 900, "the run to finish", step=2.0)
        run_log = text(run_dir / "logs" / "run.log")
        assert server.returncode == 0, text(launched.logs["server"])[-3000:] + run_log[-3000:]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert [r["round"] for r in metrics["rounds"]] == [1, 2]
        assert all(r["test_map"] is not None for r in metrics["rounds"]) and metrics["map"] is not None
        assert set(metrics["institutions"]) == set(part.names)
        assert "Received 2 results" in run_log  # the rounds went on with the two live institutions
        assert (run_dir / "head.pt").exists()
    finally:
        for pids in launched.pids().values():
            seen.update(pids)
        launched.stop()
    still = [pid for pid in seen if processes.alive(pid)]
    assert not still, f"processes left running: {still}"
