"""The federation's two files, read through :mod:`artlens.settings`:

``MEMBER.toml`` (one institution's server, ``artlens serve --member``)::

    name = "Musée X"
    head = "federation-head.pt"          # the head that defines the shared space
    tokens_sha256 = ["9f86d08..."]       # SHA-256 of each accepted bearer token (`artlens member token`)
    expose = ["title", "artist", "date", "style"]
    thumbnails = true
    thumbnail_px = 320
    share_liked_vectors = false

``MEMBERS.toml`` (the portal, ``artlens portal --members``)::

    [[member]]
    name = "Musée X"
    url = "https://search.musee-x.example/"
    token = "..."

A missing name or url, a malformed token hash or a head file that is not there is a one-line error
naming the file and the field. Relative paths are read from the file's folder.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from artlens.errors import ArtlensError
from artlens.settings import from_dict

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Columns that identify files, never exposed whatever MEMBER.toml says.
NEVER_EXPOSED = frozenset({"path", "file", "filename", "md5", "url", "image"})


@dataclass(frozen=True)
class MemberSettings:
    """What one institution's server shares with the federation (``MEMBER.toml``)."""

    name: str
    head: Path
    tokens_sha256: tuple[str, ...] = ()
    expose: tuple[str, ...] = ()  # metadata columns that may leave; nothing else does
    thumbnails: bool = True
    thumbnail_px: int = 320
    share_liked_vectors: bool = False  # stored vectors of liked works, for recommendations across members

    def accepts(self, token: str | None) -> bool:
        """Whether ``token`` hashes to one of ``tokens_sha256`` (compared in constant time)."""
        if not token:
            return False
        digest = token_sha256(token)
        return any(secrets.compare_digest(digest, h) for h in self.tokens_sha256)


@dataclass(frozen=True)
class MemberEntry:
    """One member as the portal reaches it."""

    name: str
    url: str
    token: str = ""

    @property
    def base(self) -> str:
        return self.url.rstrip("/") + "/"


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """(a new random bearer token, its SHA-256 for ``tokens_sha256``)."""
    token = secrets.token_urlsafe(32)
    return token, token_sha256(token)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ArtlensError(f"no file at {path}", "check the path, or write the file (see docs/federation.md)")
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ArtlensError(f"{path}: not valid TOML ({exc})", "fix the file (see docs/federation.md)") from None


def _required_text(data: dict, key: str, where: str, hint: str) -> None:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        what = "is missing" if value is None else "must be a non-empty string"
        raise ArtlensError(f"{where}: {key} {what}", hint)


def load_member_settings(path: str | Path) -> MemberSettings:
    """``MEMBER.toml``; the head path is resolved against the file's folder and must exist."""
    path = Path(path)
    data = _read(path)
    _required_text(data, "name", str(path), 'write the institution\'s display name, e.g. name = "Musée X"')
    _required_text(data, "head", str(path), 'write the path of the federation\'s head file, e.g. head = "head.pt"')
    settings = from_dict(MemberSettings, data, str(path))
    head = Path(settings.head)  # settings keep a path as the text written
    head = head if head.is_absolute() else path.parent / head
    if not head.is_file():
        raise ArtlensError(f"{path}: head: no head file at {head}",
                           "point head at the file `artlens federate` wrote (head.pt in its run folder)")
    for i, digest in enumerate(settings.tokens_sha256):
        if not _SHA256.match(digest):
            raise ArtlensError(f"{path}: tokens_sha256[{i}]: {digest[:16]!r}… is not a hex SHA-256 (64 characters 0-9a-f)",
                               "make a token and its hash with `artlens member token`")
    if not settings.tokens_sha256:
        raise ArtlensError(f"{path}: tokens_sha256 is empty, so no portal could search this member",
                           "make a token with `artlens member token` and add its hash")
    if leaking := sorted({c for c in settings.expose if c.lower() in NEVER_EXPOSED}):
        raise ArtlensError(f"{path}: expose: {', '.join(leaking)} identify files and never leave a member",
                           "expose descriptive columns only, e.g. title, artist, date, style")
    if settings.thumbnail_px < 16 or settings.thumbnail_px > 1024:
        raise ArtlensError(f"{path}: thumbnail_px: {settings.thumbnail_px} is outside 16..1024",
                           "small thumbnails are enough for a results page, e.g. thumbnail_px = 320")
    return MemberSettings(name=settings.name.strip(), head=head, tokens_sha256=settings.tokens_sha256,
                          expose=tuple(dict.fromkeys(settings.expose)), thumbnails=settings.thumbnails,
                          thumbnail_px=settings.thumbnail_px, share_liked_vectors=settings.share_liked_vectors)


def load_members(path: str | Path) -> list[MemberEntry]:
    """The ``[[member]]`` entries of ``MEMBERS.toml``: each with a name, an http(s) url and a token."""
    path = Path(path)
    data = _read(path)
    if unknown := sorted(set(data) - {"member"}):
        raise ArtlensError(f"{path}: unknown setting(s) {', '.join(unknown)}", "MEMBERS.toml holds only [[member]] tables")
    entries = data.get("member")
    if not isinstance(entries, list) or not entries:
        raise ArtlensError(f"{path}: member: no [[member]] entries",
                           'list each member as [[member]] with name = "...", url = "http://...", token = "..."')
    members: list[MemberEntry] = []
    for i, entry in enumerate(entries):
        where = f"{path}: member[{i}]"
        if not isinstance(entry, dict):
            raise ArtlensError(f"{where}: expected a table", "write each member as a [[member]] table")
        _required_text(entry, "name", where, 'give every member a name, e.g. name = "Musée X"')
        _required_text(entry, "url", where, 'give every member the address of its server, e.g. url = "http://127.0.0.1:8001"')
        _required_text(entry, "token", where, "give every member the token it accepts (made by `artlens member token` there)")
        member = from_dict(MemberEntry, entry, where)
        if not re.match(r"^https?://[^/\s]+", member.url):
            raise ArtlensError(f"{where}: url: {member.url!r} is not an http(s) address",
                               'write it as url = "https://host:port/"')
        members.append(MemberEntry(member.name.strip(), member.url.strip(), member.token.strip()))
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ArtlensError(f"{path}: member: the name(s) {', '.join(twice)} appear more than once",
                           "give every member its own name")
    return members
