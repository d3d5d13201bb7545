"""A real deployment with Flower's deployment runtime: the server runs a SuperLink and submits the
artlens Flower app to it (``flwr run``); each institution runs a SuperNode next to its own collection.
They talk over HTTP(S) on one port of the server (TLS optional; ``--insecure`` for localhost).

Every process started here is remembered by id with the processes it spawned (Flower starts
``flower-superexec`` children), and :meth:`Launched.stop` ends exactly those, by id.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from artlens.errors import ArtlensError
from artlens.federated.coordinator import ServerSettings

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


def wait_until_reachable(address: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not reachable(address, 1.0):
        if time.monotonic() > deadline:
            raise ArtlensError(f"{what} did not start listening on {address} within {timeout:.0f} s",
                               "see its log in the run folder")
        time.sleep(0.3)


# -- files ----------------------------------------------------------------------------------------
def write_flower_app(folder: str | Path, settings: ServerSettings) -> Path:
    """A Flower app folder whose components are artlens' apps and whose run config is ``settings``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in settings.to_run_config().items()}
    pyproject = {
        "project": {"name": APP_NAME, "version": "1.0.0", "description": "artlens federated head training",
                    "license": "Apache-2.0", "dependencies": []},
        "tool": {"flwr": {"app": {"publisher": "artlens",
                                  "components": {"serverapp": "artlens.federated.server_app:app",
                                                 "clientapp": "artlens.federated.client_app:app"},
                                  "config": config}}},
    }
    (folder / "pyproject.toml").write_text(tomli_w.dumps(pyproject))
    return folder


def write_flower_home(folder: str | Path, address: str, insecure: bool, root_certificates: str = "") -> Path:
    """A private Flower configuration naming the SuperLink as the default connection."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    connection: dict = {"address": address, "insecure": insecure}
    if root_certificates:
        connection["root-certificates"] = str(Path(root_certificates).resolve())
    (folder / "config.toml").write_text(tomli_w.dumps({"superlink": {"default": "artlens", "artlens": connection}}))
    return folder


# -- processes ------------------------------------------------------------------------------------
def _process_table() -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, process group)} of every process (read from /proc; empty where there is none)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
        except (OSError, IndexError, ValueError):
            continue
    return table


def _children(pid: int) -> list[int]:
    """Ids of the processes descended from ``pid``."""
    table = _process_table()
    out, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, (parent, _) in table.items() if parent == current]
        out += kids
        frontier += kids
    return out


def _family(pid: int) -> list[int]:
    """``pid``, its descendants and every process still in the process group it leads. Each process is
    started here in a new session, so its group holds only what it spawned, including children that
    outlived it and were re-parented (Flower's ``flower-superexec`` and ``flwr-clientapp``)."""
    table = _process_table()
    out, frontier = [pid], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, (parent, _) in table.items() if parent == current and p not in out]
        out += kids
        frontier += kids
    return out + [p for p, (_, group) in table.items() if group == pid and p not in out]


@dataclass
class Launched:
    """The processes one command started: stop them (and what they spawned) by id."""

    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, name: str, args: list[str], log_dir: Path, env: dict[str, str]) -> subprocess.Popen:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"{name}.log"
        handle = open(log, "ab")
        proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        handle.close()
        self.processes[name] = proc
        self.logs[name] = log
        return proc

    def start_foreground(self, name: str, args: list[str], env: dict[str, str],
                         on_line: Callable[[str], None] | None = None) -> subprocess.Popen:
        """A process whose output goes to this terminal (its own session: Ctrl+C reaches us, and we stop it).
        With ``on_line``, its output passes through this process and each line is handed to ``on_line``
        (which returns False for a line not to show)."""
        if on_line is None:
            proc = subprocess.Popen(args, env=env, start_new_session=True)
        else:
            proc = subprocess.Popen(args, env=env, start_new_session=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
            threading.Thread(target=_relay, args=(proc.stdout, on_line), daemon=True).start()
        self.processes[name] = proc
        return proc

    def pids(self) -> dict[str, list[int]]:
        """Each started process with the ids of what it spawned, as of now."""
        return {name: [p.pid] + _children(p.pid) for name, p in self.processes.items() if p.poll() is None}

    def stop(self, name: str | None = None, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
        """End one started process (or all), its descendants and what is left of its process group, by
        process id (also once the process itself has exited: its children may live on)."""
        names = [name] if name else list(self.processes)
        targets: list[int] = []
        for key in names:
            proc = self.processes.get(key)
            if proc is not None:
                targets += [p for p in _family(proc.pid) if p != proc.pid or proc.poll() is None]
        for pid in targets:
            _signal(pid, sig)
        deadline = time.monotonic() + grace
        for pid in targets:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                _signal(pid, signal.SIGKILL)
        for key in names:
            proc = self.processes.get(key)
            if proc is not None:
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass


def _relay(stream, on_line: Callable[[str], None]) -> None:
    for line in stream:
        if on_line(line) is not False:
            sys.stderr.write(line)
            sys.stderr.flush()


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


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
                   max_wait: float | None = None) -> list[str]:
    node_config = f'collection="{Path(collection).resolve()}" institution="{institution}"'
    if partition:
        node_config += f' partition="{Path(partition).resolve()}"'
    if features:
        node_config += f' features="{features}"'
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
