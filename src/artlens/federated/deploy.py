"""A real deployment with Flower's deployment runtime: the server runs a SuperLink and submits the
artlens Flower app to it (``flwr run``); each institution runs a SuperNode next to its own collection.
They talk over HTTP(S) on one port of the server (TLS optional; plain HTTP always allowed on loopback).

:func:`serve` and :func:`join` are the two use cases (``artlens federate server`` / ``client``); the
processes they start are stopped by id (``processes.Launched``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import tomli_w

from artlens.collection import Collection
from artlens.errors import ArtlensError
from artlens.federated.config import Endpoint, ServerSettings, loopback
from artlens.federated.processes import Launched, wait_ready
from artlens.federated.server_app import ERROR_FILE, read_error
from artlens.files import write_text
from artlens.progress import QUIET, Reporter

APP_NAME = "artlens-federation"


def flower_env(flwr_home: str | Path | None = None) -> dict[str, str]:
    """Environment of the Flower processes: this Python's scripts first on PATH (Flower starts
    ``flower-superexec`` by name), no per-run dependency installation, a private FLWR_HOME."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    if flwr_home is not None:
        env["FLWR_HOME"] = str(flwr_home)
    return env


def executable(name: str) -> str:
    found = shutil.which(name, path=flower_env()["PATH"])
    if found is None:
        raise ArtlensError(f"{name} is not installed", 'install Flower with: pip install "artlens[federated]"')
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ArtlensError(f"{address!r} is not a HOST:PORT address", "pass e.g. --server 127.0.0.1:9093")
    return host.strip("[]"), int(port)


def reachable(address: str, timeout: float = 3.0) -> bool:
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until_reachable(address: str, timeout: float, what: str, log: Path | None = None) -> None:
    wait_ready(lambda: reachable(address, 1.0), f"{what} on {address}", timeout, log=log, every=0.3)


# -- files ----------------------------------------------------------------------------------------
def write_flower_app(folder: str | Path, settings: ServerSettings) -> Path:
    """A Flower app folder whose components are artlens' apps and whose run config is ``settings``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = settings.to_run_config()
    pyproject = {
        "project": {"name": APP_NAME, "version": "1.0.0", "description": "artlens federated head training",
                    "license": "Apache-2.0", "dependencies": []},
        "tool": {"flwr": {"app": {"publisher": "artlens",
                                  "components": {"serverapp": "artlens.federated.server_app:app",
                                                 "clientapp": "artlens.federated.client_app:app"},
                                  "config": config}}},
    }
    write_text(tomli_w.dumps(pyproject), folder / "pyproject.toml")
    return folder


def write_flower_home(folder: str | Path, address: str, insecure: bool, root_certificates: str = "") -> Path:
    """A private Flower configuration naming the SuperLink as the default connection."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    connection: dict = {"address": address, "insecure": insecure}
    if root_certificates:
        connection["root-certificates"] = str(Path(root_certificates).resolve())
    write_text(tomli_w.dumps({"superlink": {"default": "artlens", "artlens": connection}}), folder / "config.toml")
    return folder


def superlink_args(host: str, port: int, insecure: bool = True, certificates: tuple[str, str, str] | None = None) -> list[str]:
    args = [executable("flower-superlink"), "--disable-runtime-dependency-installation", "--host", host, "--port", str(port)]
    if insecure:
        args.append("--insecure")
    elif certificates:
        ca, cert, key = certificates
        args += ["--ssl-ca-certfile", ca, "--ssl-certfile", cert, "--ssl-keyfile", key]
    else:
        raise ArtlensError("a server without --insecure needs TLS certificates",
                           "pass --tls-ca CA --tls-cert CERT --tls-key KEY, or --insecure on a trusted network")
    return args


def supernode_args(server: str, collection: str, institution: str, runtime_port: int, partition: str = "",
                   features: str = "", insecure: bool = True, root_certificates: str = "",
                   max_wait: float | None = None, device: str = "") -> list[str]:
    node_config = f'collection="{Path(collection).resolve()}" institution="{institution}"'
    if partition:
        node_config += f' partition="{Path(partition).resolve()}"'
    if features:
        node_config += f' features="{features}"'
    if device:
        node_config += f' device="{device}"'
    args = [executable("flower-supernode"), "--superlink", server, "--node-config", node_config,
            "--host", "127.0.0.1", "--port", str(runtime_port)]
    if insecure:
        args.append("--insecure")
    elif root_certificates:
        args += ["--root-certificates", str(Path(root_certificates).resolve())]
    if max_wait is not None:
        args += ["--max-wait-time", str(max_wait)]
    return args


def run_args(app_dir: Path) -> list[str]:
    return [executable("flwr"), "run", str(app_dir), "artlens", "--stream"]


# -- the server ---------------------------------------------------------------------------------
def serve(settings: ServerSettings, endpoint: Endpoint = Endpoint(), reporter: Reporter = QUIET) -> dict:
    """Run a federation's server until its run ends: a SuperLink on the endpoint and the artlens server
    app submitted to it (``flwr run``), with its logs in ``RUN_DIR/logs``. Returns the run's summary
    (metrics.json); the server app's own error (naming the institutions) when it failed."""
    settings = settings.with_run_dir()
    run_dir = Path(settings.run_dir)
    address = endpoint.address
    if reachable(address, 1.0):
        raise ArtlensError(f"port {endpoint.port} on {endpoint.host} is already in use", "choose another --port")
    (run_dir / ERROR_FILE).unlink(missing_ok=True)  # an earlier run's error is not this run's
    started = time.time()
    app_dir = write_flower_app(run_dir / "app", settings)
    home = write_flower_home(run_dir / "flwr-home", address, endpoint.plain, endpoint.tls_ca)
    env = flower_env(home)
    launched = Launched()
    try:
        launched.start("superlink", superlink_args(endpoint.host, endpoint.port, endpoint.plain, endpoint.certificates),
                       run_dir / "logs", env)
        wait_until_reachable(address, 60, "the Flower SuperLink", launched.logs["superlink"])
        waiting = settings.institutions or settings.federation.min_clients
        reporter.notice(f"artlens federation server on {address}: waiting for {waiting} institution(s)\n"
                        f"  they join with: artlens federate client --collection PATH --institution NAME --server "
                        f"{address}\n  logs in {run_dir / 'logs'}")
        run = launched.start("run", run_args(app_dir), run_dir / "logs", env)
        code = run.wait()
        logs = f"{launched.logs['run']} and {launched.logs['superlink']}"
        failure = read_error(run_dir)
        if failure is not None:
            raise ArtlensError(failure.message, (f"{failure.hint}; " if failure.hint else "") + f"logs: {logs}")
        metrics = run_dir / "metrics.json"
        if code != 0 or not metrics.exists() or metrics.stat().st_mtime < started - 1:
            why = f"`flwr run` exited with code {code}" if code != 0 else "the server app wrote no metrics.json"
            raise ArtlensError(f"the federated run failed: {why}", f"see {logs}")
        return json.loads(metrics.read_text())
    except KeyboardInterrupt:
        reporter.notice("stopping the server")
        raise
    finally:
        launched.stop()


# -- an institution -----------------------------------------------------------------------------
class Leave(Exception):
    """SIGTERM reached the institution's client: it left the federation."""


class SupernodeWatch:
    """Reads the SuperNode's log lines: did it receive the final head, did it give up reconnecting?"""

    def __init__(self):
        self.gave_up = threading.Event()
        self.got_result = False

    def __call__(self, line: str) -> bool:
        """Whether to show the line: not what the SuperNode prints while it is stopped after giving up."""
        if self.gave_up.is_set():
            return False
        if "Receiving: query.result" in line:
            self.got_result = True
        if "Giving up reconnection" in line:
            self.gave_up.set()
        return True


def join(collection: str | Path, institution: str, server: str, partition: str = "", features: str = "",
         insecure: bool = False, root_certificates: str = "", max_wait: float | None = None,
         reporter: Reporter = QUIET, device: str = "") -> None:
    """Take part in a federation as ``institution`` until it finishes: a SuperNode next to the collection
    trains when the server asks (on ``device``; empty: the run's ``training.device``) and sends back only
    weights and aggregate statistics; its log goes to stderr. Raises :class:`Leave` on SIGTERM and
    KeyboardInterrupt on Ctrl+C (its processes stopped)."""
    opened = Collection.open(collection)  # fails here, with what to do, if there is none
    collection = opened.root
    opened.close()
    host, _ = split_address(server)
    plain = insecure or (not root_certificates and loopback(host))
    if not plain and not root_certificates:
        raise ArtlensError(f"institution {institution!r}: {server} is not on this machine and no TLS "
                           "certificate was given", "pass --root-certificates CA.crt, or --insecure on a trusted network")
    if not reachable(server, 5.0):
        raise ArtlensError(f"institution {institution!r} cannot reach the federation server at {server}",
                           "start it with `artlens federate server` there, or check --server, the port and the "
                           "firewall; the other institutions are not affected")
    launched = Launched()
    args = supernode_args(server, str(collection), institution, free_port(),
                          str(Path(partition).resolve()) if partition else "", features, plain,
                          root_certificates, max_wait, device)
    reporter.notice(f"{institution} joined the federation at {server} with {collection}; Ctrl+C leaves")
    seen = SupernodeWatch()
    previous = signal.signal(signal.SIGTERM, _leave)  # SIGTERM stops the SuperNode and its children too
    try:
        supernode = launched.start_foreground("supernode", args, flower_env(), seen)
        # the SuperNode does not exit once it gives up reconnecting: watch for that as well as for its exit
        while supernode.poll() is None and not seen.gave_up.wait(0.5):
            pass
        code = supernode.poll()
    except (KeyboardInterrupt, Leave):
        reporter.notice(f"{institution} leaves the federation")
        raise
    finally:
        launched.stop(grace=5.0)  # the SuperNode and what it left behind (flower-superexec, flwr-clientapp)
        signal.signal(signal.SIGTERM, previous)
    if seen.got_result:
        reporter.notice(f"{institution}: the federation finished (the server sent its final head) and the server "
                        "is gone; the client ends")
        return
    why = (f"lost the server at {server} and gave up reconnecting" if seen.gave_up.is_set()
           else f"stopped (exit code {code})")
    raise ArtlensError(f"institution {institution!r}: the Flower SuperNode {why} before the federation finished",
                       "check that the server is running and reachable, then start the client again"
                       + ("" if max_wait is None else " (a larger --max-wait rides out longer outages)"))


def _leave(signum, frame):
    raise Leave()
