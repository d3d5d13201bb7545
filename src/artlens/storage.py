"""How a collection folder changes without ever being half changed: the generation pointer, the
one-writer lock, durable renames, and the named write boundaries that crash tests kill at.

A writer stages every new artifact (an index folder, the head file, the settings) beside the live
one (``index/.content.new-7``), fsynced; then writes the pointer ``generation.json`` naming the new
generation and every artifact's stamp (written last, fsynced: the commit); then renames the staged
artifacts over the live ones, keeping the replaced versions (``index/.content.old-5``) until the next
commit. A reader opens the artifacts the pointer names, checking each one's stamp, from the live
path, the staged one (a commit being applied, or cut short by a crash) or the kept old one (a commit
made after the reader opened). A crash before the pointer leaves the previous generation; a crash
after it is rolled forward by the next writer, which also removes stale temporaries.

Writers hold an advisory lock on ``COLLECTION/.lock`` (``fcntl.flock``), which also records who holds
it; readers never take it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from artlens.errors import CollectionError
from artlens.files import write_json

POINTER = "generation.json"
LOCK_FILE = ".lock"
POINTER_FORMAT = 1

# -- fault injection ------------------------------------------------------------------------------
# The command line reads ARTLENS_CRASH_AT (its only reader) and hands it to `inject_faults`: "list"
# prints every boundary a run passes (`artlens-boundary NAME#N` on stderr); "NAME" or "NAME#N" kills
# the process with SIGKILL at that boundary (at its N-th pass), as a power cut would.
_fault: str | None = None
_passes: Counter = Counter()


def inject_faults(spec: str | None) -> None:
    global _fault
    _fault = spec or None
    _passes.clear()


def boundary(name: str) -> None:
    """A point between two durable writes: where a crash test may kill the process."""
    if _fault is None:
        return
    _passes[name] += 1
    if _fault == "list":
        print(f"artlens-boundary {name}#{_passes[name]}", file=sys.stderr, flush=True)
    elif _fault in (name, f"{name}#{_passes[name]}"):
        os.kill(os.getpid(), signal.SIGKILL)


# -- durable file operations ----------------------------------------------------------------------
def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal_folder(folder: str | Path) -> None:
    """Make a freshly written folder durable and readable by all: files 0644, folders 0755, every
    file and the folder itself fsynced."""
    folder = Path(folder)
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_dir():
            path.chmod(0o755)
            fsync_dir(path)
        else:
            path.chmod(0o644)
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    folder.chmod(0o755)
    fsync_dir(folder)


def durable_rename(src: Path, dst: Path) -> None:
    os.rename(src, dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# -- artifacts and the generation pointer ---------------------------------------------------------
def staged_path(root: Path, rel: str, generation: int) -> Path:
    """Where generation ``generation`` stages the artifact ``rel`` before its commit."""
    return _beside(root / rel, f"new-{generation}")


def retired_path(root: Path, rel: str, generation: int) -> Path:
    """Where the version of ``rel`` written by ``generation`` is kept once replaced."""
    return _beside(root / rel, f"old-{generation}")


def _beside(live: Path, tag: str) -> Path:
    return live.with_name(f".{live.stem}.{tag}{live.suffix}")


def temporary_names(live: Path) -> tuple[str, ...]:
    """Name prefixes of every temporary that can sit beside the artifact ``live``."""
    return (f".{live.stem}.new-", f".{live.stem}.old-", f".{live.stem}.tmp-", f".{live.name}.tmp-")


@dataclass
class Generation:
    """The committed state: its number and, per artifact (a path relative to the collection), the
    generation that wrote it and, for files, the SHA-256 of their content."""

    number: int = 0
    artifacts: dict[str, dict] = field(default_factory=dict)
    committed_at: float = 0.0
    exists: bool = False  # False: a collection from before generations (its live files are the state)

    def as_dict(self) -> dict:
        return {"format": POINTER_FORMAT, "generation": self.number, "committed_at": self.committed_at,
                "artifacts": self.artifacts}


def pointer_signature(root: Path) -> tuple | None:
    """Changes whenever a new generation is committed (a cheap stat, for servers that poll)."""
    try:
        st = os.stat(Path(root) / POINTER)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def read_generation(root: Path) -> Generation:
    path = Path(root) / POINTER
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return Generation()
    except (OSError, ValueError) as exc:
        raise CollectionError(f"cannot read the generation pointer {path}: {exc}",
                              "restore it from a backup, or remove it to fall back to the live files") from None
    if data.get("format") != POINTER_FORMAT:
        raise CollectionError(f"{path} has format {data.get('format')!r}, this artlens reads {POINTER_FORMAT}",
                              "upgrade artlens (pip install -U artlens)")
    return Generation(int(data["generation"]), dict(data.get("artifacts", {})), float(data.get("committed_at", 0)), True)


def write_generation(root: Path, generation: Generation) -> None:
    """The commit point: the pointer replaced atomically and durably."""
    write_json(generation.as_dict(), Path(root) / POINTER)
    fsync_dir(root)


def stamp_matches(path: Path, record: dict) -> bool:
    """Whether ``path`` holds the version of an artifact that ``record`` names (the settings, which
    people edit by hand, are not checked)."""
    try:
        if record["kind"] == "dir":
            data = json.loads((path / "manifest.json").read_text())
            return int(data.get("generation", 0)) == int(record["generation"])
        if record["kind"] == "file":
            return sha256_of(path) == record["sha256"]
        return path.exists()
    except (OSError, ValueError):
        return False


class StaleGeneration(CollectionError):
    """The generation a reader opened is gone: newer ones were committed since."""


def locate(root: Path, rel: str, record: dict, generation: int) -> Path | None:
    """The path holding the version of ``rel`` that ``record`` (of the reader's ``generation``)
    names: the staged one (a commit being applied, or cut short by a crash), the live one, or a kept
    replaced one (a commit made after the reader opened). None when the artifact is gone altogether
    (removed by hand); StaleGeneration when only newer versions are left."""
    live = root / rel
    staged = staged_path(root, rel, record["generation"])
    retired = sorted(live.parent.glob(f".{live.stem}.old-*{live.suffix}")) if live.parent.is_dir() else []
    candidates = [staged, live, *retired]
    for path in candidates:
        if path.exists() and stamp_matches(path, record):
            return path
    if not any(p.exists() for p in candidates):
        return None
    if read_generation(root).number == generation and live.exists():
        return live  # replaced by hand since the commit (no writer did it): what is there now counts
    raise StaleGeneration(f"{live} changed while it was being read (a newer generation was committed)",
                          "run the command again")


def load_artifact(root: Path, rel: str, record: dict | None, loader, generation: int, attempts: int = 5):
    """``loader(path)`` on the version of ``rel`` that ``record`` names, checked again after loading
    (a rename during the load is retried); without a record (no generations yet), on the live path."""
    if record is None:
        return loader(root / rel) if (root / rel).exists() else None
    for _ in range(attempts):
        path = locate(root, rel, record, generation)
        if path is None:
            return None
        try:
            value = loader(path)
        except Exception:
            if path.exists():
                raise
            continue  # renamed away while it was read (a commit being applied): look again
        if stamp_matches(path, record) or path == root / rel:
            return value
    raise StaleGeneration(f"{root / rel} kept changing while it was being read", "run the command again")


# -- the writer lock ------------------------------------------------------------------------------
def _command_line() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if name in ("__main__.py", "-m", "-c"):
        name = "artlens"
    line = " ".join([name, *sys.argv[1:]])
    return line if len(line) <= 160 else line[:157] + "..."


class WriterLock:
    """The collection's one-writer lock; re-entrant within the object that holds it."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / LOCK_FILE
        self._fd: int | None = None
        self.depth = 0

    @property
    def held(self) -> bool:
        return self.depth > 0

    def holder(self) -> str:
        """Who holds the lock, as the holder recorded it."""
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        if not info.get("pid"):
            return "another process"
        since = time.strftime("%H:%M:%S", time.localtime(info.get("since", 0)))
        return f"process {info['pid']} ({info.get('command', '?')}, since {since})"

    def acquire(self, wait: bool = False, notice=None) -> bool:
        """Take the lock, waiting for its holder when ``wait`` (``notice`` says so first); without
        ``wait`` a held lock is a one-line error naming the process that holds it."""
        if self.depth:
            self.depth += 1
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise CollectionError(f"{self.root} is read-only: nothing can be written to it",
                                      "ingest or train into a writable copy of the collection") from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = self.holder()
            if not wait:
                os.close(fd)
                raise CollectionError(f"{self.root} is being written by {who}",
                                      "wait for it to finish, or pass --wait to start when it has") from None
            if notice:
                notice(f"waiting for {who} to finish writing {self.root}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        info = json.dumps({"pid": os.getpid(), "command": _command_line(), "since": time.time()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        self._fd, self.depth = fd, 1
        return True

    def try_acquire(self) -> bool:
        """Take the lock if it is free now (and the folder writable); never waits, never raises."""
        if self.depth:
            self.depth += 1
            return True
        try:
            return self.acquire(wait=False)
        except (CollectionError, OSError):
            return False

    def release(self) -> None:
        if not self.depth:
            return
        self.depth -= 1
        if self.depth == 0 and self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None


def is_read_only(root: Path) -> bool:
    """Whether this process cannot write the collection folder (a read-only mount, no permission)."""
    root = Path(root)
    if not os.access(root, os.W_OK):
        return True
    catalog = root / "catalog.sqlite"
    return catalog.exists() and not os.access(catalog, os.W_OK)
