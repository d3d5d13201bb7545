"""The processes one command starts (Flower's SuperLink, SuperNode and ``flwr run``), remembered by
id with the processes they spawned (Flower starts ``flower-superexec`` children), so that
:meth:`Launched.stop` ends exactly those, by id, never by name; and the wait for a starting process
to be ready (``wait_ready``: a port that listens, an artlens server that answers its health check)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from artlens.errors import ArtlensError


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
            send_signal(pid, sig)
        deadline = time.monotonic() + grace
        for pid in targets:
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                send_signal(pid, signal.SIGKILL)
        for key in names:
            proc = self.processes.get(key)
            if proc is not None:
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass


def wait_ready(ready: Callable[[], bool], what: str, timeout: float, process: subprocess.Popen | None = None,
               log: Path | None = None, every: float = 0.5) -> None:
    """Wait until ``ready()`` holds for ``what`` (e.g. "the member at URL"), which is starting: an
    ArtlensError when its ``process`` exits first or ``timeout`` seconds pass, with the last lines of
    its ``log``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and process.poll() is not None:
            raise ArtlensError(f"{what} exited with code {process.returncode} while starting{_log_tail(log)}",
                               f"see its log{f': {log}' if log else ''}")
        if time.monotonic() > deadline:
            raise ArtlensError(f"{what} was not ready within {timeout:.0f} s{_log_tail(log)}",
                               f"see its log{f': {log}' if log else ''}")
        time.sleep(every)


def answers_health(url: str, timeout: float = 2.0) -> bool:
    """Whether the artlens server at ``url`` (``serve``, ``serve --member``, ``portal``) answers its
    health check (``GET api/health``)."""
    try:
        return httpx.get(url.rstrip("/") + "/api/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _log_tail(log: Path | None, lines: int = 3) -> str:
    try:
        tail = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()][-lines:]
    except (AttributeError, OSError):
        return ""
    return f" (its log ends: {' | '.join(tail)})" if tail else ""


def _relay(stream, on_line: Callable[[str], None]) -> None:
    for line in stream:
        if on_line(line) is not False:
            sys.stderr.write(line)
            sys.stderr.flush()


def send_signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False
