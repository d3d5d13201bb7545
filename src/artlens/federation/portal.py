"""The portal: one search over every member of a federation, without pooling anything. A query is
encoded here (:mod:`artlens.federation.query`); its vectors go to every member in parallel, each
with its own deadline; the hits come back with their scores, which one shared space makes
comparable, and are merged by score, each marked with its institution. A member that is down,
slow, refuses the token or answers garbage never fails the search: the answer says, member by
member, who answered (``ok``, ``timeout``, ``unreachable``, ``unauthorized``, ``error``).

Hits get portal ids that name their member: ``slot * 2**32 + member's id``, the slot derived from
the member's name (so liked works keep pointing at the same artworks when MEMBERS.toml is
reordered)."""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from artlens import __version__
from artlens.collection import LEARNED_ASPECT
from artlens.config import CollectionConfig
from artlens.errors import ArtlensError
from artlens.federation.config import MemberEntry
from artlens.federation.errors import FederationError
from artlens.federation.query import QueryEncoder, QueryVectors, default_extractors
from artlens.federation.wire import (
    ARTWORKS,
    BROWSE,
    INFO,
    PREFIX,
    PROTOCOL,
    SEARCH,
    VECTORS,
    decode_vectors,
)
from artlens.search.filters import decade_of

STATUSES = ("ok", "timeout", "unreachable", "unauthorized", "error")
ID_BITS = 32
SLOT_BITS = 20  # portal ids stay below 2**52: exact in JavaScript numbers


@dataclass
class Reply:
    """One exchange with a member: its status, how long it took, and the decoded answer."""

    status: str
    ms: float
    data: object = None
    detail: str | None = None
    http_status: int | None = None


@dataclass
class MemberStatus:
    name: str
    status: str
    ms: float
    count: int = 0
    detail: str | None = None

    def as_dict(self) -> dict:
        out = {"name": self.name, "status": self.status, "ms": round(self.ms, 1), "count": self.count}
        if self.detail:
            out["detail"] = self.detail
        return out


def slot_of(name: str) -> int:
    return zlib.crc32(name.encode("utf-8")) % (2**SLOT_BITS - 1) + 1


class Portal:
    """Fan-out search over ``members``. ``head``: the federation's head (embeds image queries for
    the ``learned`` aspect; without it only pretrained aspects are searched). ``timeout``: seconds
    each member has to answer. ``weights``: the default mix of an image or artwork query.
    ``observer``: called with every exchange (member, method, url, request bytes, status, response
    bytes), to inspect what travels."""

    def __init__(self, members: Sequence[MemberEntry], head=None, timeout: float = 2.0,
                 weights: Mapping[str, float] | None = None, info_ttl: float = 60.0,
                 observer: Callable[[dict], None] | None = None, encoder: QueryEncoder | None = None,
                 thumbnail_cache: int = 512):
        if timeout <= 0 or not math.isfinite(timeout):
            raise ArtlensError(f"timeout must be a positive number of seconds, got {timeout}", "e.g. --timeout 2.0")
        self.members = list(members)
        self.by_slot: dict[int, MemberEntry] = {}
        for m in self.members:
            slot = slot_of(m.name)
            if slot in self.by_slot:
                raise ArtlensError(f"members {self.by_slot[slot].name!r} and {m.name!r} get the same portal id slot",
                                   "rename one of them slightly in MEMBERS.toml")
            self.by_slot[slot] = m
        self.encoder = encoder or QueryEncoder(head)
        self.timeout = float(timeout)
        self.weights = dict(weights) if weights is not None else {LEARNED_ASPECT: 1.0}
        self.info_ttl = info_ttl
        self.observer = observer
        self.infos: dict[str, dict] = {}
        self.info_replies: dict[str, Reply] = {}
        self._info_at = -math.inf
        self._refreshing: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None
        self._client_loop = None
        self._thumbs: OrderedDict[int, bytes] = OrderedDict()
        self._thumb_cache = thumbnail_cache

    # -- ids ------------------------------------------------------------------------------------
    def portal_id(self, member: MemberEntry, local_id: int) -> int:
        return (slot_of(member.name) << ID_BITS) | int(local_id)

    def member_of(self, portal_id: int) -> tuple[MemberEntry, int]:
        member = self.by_slot.get(int(portal_id) >> ID_BITS)
        if member is None:
            raise FederationError(404, f"artwork {portal_id} is not from a member of this portal",
                                  "use an id from this portal's search results")
        return member, int(portal_id) & (2**ID_BITS - 1)

    # -- talking to members ---------------------------------------------------------------------
    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), limits=limits, trust_env=False)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        if self._client is not None and self._client_loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None

    async def call(self, member: MemberEntry, method: str, endpoint: str, json: dict | None = None,
                   params: dict | None = None, binary: bool = False, timeout: float | None = None) -> Reply:
        """One request to a member's federation endpoint, within ``timeout`` (default: the portal's)
        from start to last byte; every failure becomes a status, never an exception."""
        timeout = self.timeout if timeout is None else timeout
        start = time.perf_counter()
        headers = {"Authorization": f"Bearer {member.token}"} if member.token else {}

        def ms() -> float:
            return (time.perf_counter() - start) * 1000

        try:
            response = await asyncio.wait_for(self.client().request(
                method, member.base + PREFIX + endpoint, json=json, params=params, headers=headers), timeout)
        except (TimeoutError, httpx.TimeoutException):
            return Reply("timeout", ms(), detail=f"did not answer within {timeout:g} s")
        except httpx.HTTPError as exc:
            return Reply("unreachable", ms(), detail=f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__)
        if self.observer is not None:
            self.observer({"member": member.name, "method": method, "url": str(response.request.url),
                           "request": response.request.content, "status": response.status_code,
                           "response": response.content})
        elapsed = ms()
        if response.status_code != 200:
            try:
                why = response.json().get("error")
            except (ValueError, AttributeError):
                why = None
            why = why if isinstance(why, str) else response.reason_phrase
            status = "unauthorized" if response.status_code == 401 else "error"
            return Reply(status, elapsed, detail=f"HTTP {response.status_code}: {why}"[:300],
                         http_status=response.status_code)
        if binary:
            return Reply("ok", elapsed, response.content, http_status=200)
        try:
            data = response.json()
        except ValueError:
            return Reply("error", elapsed, detail="answered something that is not JSON", http_status=200)
        return Reply("ok", elapsed, data, http_status=200)

    # -- members' infos -------------------------------------------------------------------------
    async def refresh(self) -> dict[str, Reply]:
        """Ask every member for its info (in parallel); keep the last good one of each."""
        replies = await asyncio.gather(*(self.call(m, "GET", INFO) for m in self.members))
        for member, reply in zip(self.members, replies):
            if reply.status == "ok" and not _is_info(reply.data):
                reply = Reply("error", reply.ms, detail="its info is not an artlens member's info")
            if reply.status == "ok":
                self.infos[member.name] = reply.data
            self.info_replies[member.name] = reply
        self._info_at = time.monotonic()
        return dict(zip((m.name for m in self.members), replies))

    async def ensure_infos(self) -> None:
        """Infos before the first search; later, a refresh in the background when they are stale."""
        if self._info_at == -math.inf:
            await self.refresh()
        elif time.monotonic() - self._info_at > self.info_ttl and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.get_running_loop().create_task(self.refresh())

    def head_id(self) -> str | None:
        """The space the federation searches: the portal's head, else the head most members report."""
        if self.encoder.head_id is not None:
            return self.encoder.head_id
        heads = Counter(info["head_id"] for info in self.infos.values())
        return heads.most_common(1)[0][0] if heads else None

    def _on_other_head(self, member: MemberEntry) -> str | None:
        info = self.infos.get(member.name)
        expected = self.head_id()
        if info is not None and expected is not None and info["head_id"] != expected:
            return f"on head {info['head_id']}, the federation searches {expected}: skipped"
        return None

    def member_aspects(self) -> dict[str, dict]:
        """Every aspect some member on the federation's head indexes, with what feeds it."""
        out: dict[str, dict] = {}
        for member in self.members:
            if (info := self.infos.get(member.name)) is not None and not self._on_other_head(member):
                for aspect, spec in info["aspects"].items():
                    out.setdefault(aspect, spec)
        return out

    def extractor_names(self) -> list[str]:
        """The extractors whose raw vectors the members' pretrained aspects take."""
        names = [spec["extractor"] for spec in self.member_aspects().values() if spec.get("extractor")]
        return list(dict.fromkeys(names)) if self.infos else default_extractors()

    # -- queries ----------------------------------------------------------------------------------
    def encode_image(self, image) -> QueryVectors:
        return self.encoder.image(image, self.extractor_names())

    def encode_text(self, text: str) -> QueryVectors:
        return self.encoder.text(text, self.extractor_names())

    def query_aspects(self, query: QueryVectors) -> list[str]:
        """Aspects the members can rank this query by."""
        aspects = self.member_aspects()
        out = [a for a, spec in aspects.items() if spec.get("extractor_id") in query.raw]
        if query.learned is not None and (LEARNED_ASPECT in aspects or not self.infos):
            out.append(LEARNED_ASPECT)
        return sorted(out)

    def resolve_weights(self, query: QueryVectors, weights: Mapping[str, float] | None = None,
                        aspect: str | None = None) -> dict[str, float]:
        """The mix every member ranks by (normalised to sum 1): ``aspect`` alone, else ``weights``,
        else the portal's default (the shared head's aspect), else the collection default."""
        usable = self.query_aspects(query)
        if aspect is not None:
            if aspect not in usable:
                raise ArtlensError(f"aspect {aspect!r} cannot answer this query in this federation",
                                   f"aspects available for it: {', '.join(usable) or 'none'}")
            return {aspect: 1.0}
        if weights:
            known = set(usable) | set(self.member_aspects()) | {LEARNED_ASPECT} | set(CollectionConfig().aspects)
            if unknown := sorted(set(weights) - known):
                raise ArtlensError(f"unknown aspect(s) in weights: {unknown}", f"aspects of this federation: {', '.join(usable)}")
            chosen = {a: float(w) for a, w in weights.items() if a in usable and w > 0}
            if not chosen:
                raise ArtlensError("no aspect with a positive weight can answer this query",
                                   f"aspects available for it: {', '.join(usable) or 'none'}")
        else:
            chosen = {a: w for a, w in self.weights.items() if a in usable and w > 0}
            if not chosen and query.modality != "text":
                chosen = {a: w for a, w in CollectionConfig().weights.items() if a in usable and w > 0}
            if not chosen:
                chosen = {a: 1.0 for a in usable}
        if not chosen:
            raise ArtlensError("no member can answer this query", "check the members with `artlens portal --check`")
        total = sum(chosen.values())
        return {a: w / total for a, w in chosen.items()}

    async def artworks_query(self, portal_ids: Sequence[int]) -> tuple[QueryVectors, dict[str, list[int]], list[str]]:
        """The query of liked works (or one work, "more like this") from any members: their stored
        vectors where the member shares them, else their thumbnails encoded here. Returns (query,
        local ids to leave out per member, notes on works that could not be used)."""
        by_member: dict[str, list[int]] = {}
        for pid in dict.fromkeys(int(i) for i in portal_ids):
            member, local = self.member_of(pid)
            by_member.setdefault(member.name, []).append(local)
        members = {m.name: m for m in self.members}
        await self.ensure_infos()
        head_id = self.head_id()
        parts = await asyncio.gather(*(self._works_vectors(members[name], ids, head_id) for name, ids in by_member.items()))
        queries = [q for found, _ in parts for q in found]
        notes = [n for _, member_notes in parts for n in member_notes]
        if not queries:
            raise FederationError(409, "none of these works can drive a search: " + "; ".join(notes),
                                  "like works of members that share vectors or thumbnails, or search by image")
        return QueryVectors.mean(queries), by_member, notes

    async def _works_vectors(self, member: MemberEntry, ids: list[int], head_id: str | None) -> tuple[list[QueryVectors], list[str]]:
        info = self.infos.get(member.name, {})
        if info.get("share_liked_vectors", True):
            reply = await self.call(member, "POST", VECTORS, json={"protocol": PROTOCOL, "head_id": head_id, "ids": ids})
            if reply.status == "ok":
                try:
                    found = [QueryVectors("artworks", decode_vectors(v.get("raw") or {}),
                                          decode_vectors({"v": v["learned"]})["v"] if v.get("learned") else None)
                             for v in reply.data["vectors"].values()]
                    return found, [f"{len(ids) - len(found)} work(s) of {member.name} are gone"] if len(found) < len(ids) else []
                except (ArtlensError, KeyError, TypeError, AttributeError):
                    return [], [f"{member.name} answered garbage vectors"]
            if reply.http_status != 403:
                return [], [f"{member.name}: {reply.detail or reply.status}"]
        if not info.get("thumbnails", False):
            return [], [f"{member.name} shares neither vectors nor thumbnails"]
        found, notes = [], []
        for local in ids:
            reply = await self.call(member, "GET", f"{ARTWORKS}/{local}/thumbnail", binary=True)
            if reply.status != "ok":
                notes.append(f"{member.name}: {reply.detail or reply.status}")
                continue
            try:
                found.append(await asyncio.to_thread(self.encode_image, reply.data))
            except ArtlensError:
                notes.append(f"{member.name} sent a thumbnail that cannot be decoded")
        return found, notes

    # -- search ---------------------------------------------------------------------------------
    async def search(self, query: QueryVectors, k: int = 10, weights: Mapping[str, float] | None = None,
                     aspect: str | None = None, filters: Mapping[str, Sequence[str]] | None = None,
                     exclude: Mapping[str, Sequence[int]] | None = None, fast: bool = False,
                     described: dict | None = None) -> dict:
        """Top-``k`` over every member: ``results`` (id, score, aspects, institution, metadata, ...)
        and ``members`` (name, status, ms, count). ``described``: the ``query`` of the answer."""
        start = time.perf_counter()
        await self.ensure_infos()
        try:
            chosen = self.resolve_weights(query, weights, aspect)
        except ArtlensError:
            if self.member_aspects():
                raise
            chosen = {}  # no member on the federation's head has answered yet: the statuses say why
        base = {"protocol": PROTOCOL, "head_id": self.head_id(), "k": int(k), "weights": chosen, "fast": bool(fast),
                **query.payload()}
        filters = {c: list(v) for c, v in (filters or {}).items()}

        async def ask(member: MemberEntry) -> tuple[MemberStatus, list[dict]]:
            if why := self._on_other_head(member):
                return MemberStatus(member.name, "error", 0.0, detail=why), []
            info = self.infos.get(member.name)
            if filters and info is not None and (hidden := sorted(set(filters) - set(info["expose"]))):
                return MemberStatus(member.name, "ok", 0.0, detail=f"offers no {', '.join(hidden)} to filter by"), []
            payload = {**base, "filters": filters or None, "exclude": list((exclude or {}).get(member.name, []))}
            reply = await self.call(member, "POST", SEARCH, json=payload)
            if reply.status != "ok":
                return MemberStatus(member.name, reply.status, reply.ms, detail=reply.detail), []
            try:
                hits = _checked_hits(reply.data, k)
            except ValueError as exc:
                return MemberStatus(member.name, "error", reply.ms, detail=f"answered garbage: {exc}"), []
            thumbs = bool((info or {}).get("thumbnails"))
            out = [{"id": self.portal_id(member, h["id"]), "score": h["score"], "aspects": h["aspects"],
                    "institution": member.name, "member_id": h["id"], "metadata": h["metadata"],
                    "thumbnail": f"/api/artworks/{self.portal_id(member, h['id'])}/thumbnail" if thumbs else None}
                   for h in hits]
            return MemberStatus(member.name, "ok", reply.ms, len(out)), out

        answers = await asyncio.gather(*(ask(m) for m in self.members))
        hits = sorted((h for _, found in answers for h in found), key=lambda h: (-h["score"], h["institution"], h["member_id"]))
        statuses = [s.as_dict() for s, _ in answers]
        answered = sum(s["status"] == "ok" for s in statuses)
        return {"query": described or {"kind": query.modality}, "results": hits[:k], "members": statuses,
                "answered": answered, "asked": len(statuses), "timeout_s": self.timeout,
                "line": members_line(statuses, self.timeout), "facets": self.result_facets(hits[:k]),
                "weights": {a: round(w, 6) for a, w in chosen.items()}, "aspects": self.query_aspects(query),
                "head_id": base["head_id"], "took_ms": round((time.perf_counter() - start) * 1000, 2)}

    # -- facets, artworks, thumbnails -------------------------------------------------------------
    def facets(self) -> list[dict]:
        """The union of the members' exposed facets, counts summed over members."""
        merged: dict[str, dict] = {}
        for member in self.members:
            for facet in (self.infos.get(member.name) or {}).get("facets", []):
                entry = merged.setdefault(facet["column"], {"column": facet["column"], "kind": facet["kind"], "counts": Counter()})
                if facet["kind"] == "decades":
                    entry["kind"] = "decades"
                for v in facet["values"]:
                    entry["counts"][v["value"]] += int(v["count"])
        out = []
        for entry in merged.values():
            counts = entry.pop("counts")
            order = sorted(counts.items()) if entry["kind"] == "decades" else sorted(counts.items(), key=lambda vc: (-vc[1], vc[0]))
            out.append({**entry, "values": [{"value": v, "count": n} for v, n in order]})
        return sorted(out, key=lambda f: f["column"])

    def result_facets(self, hits: Sequence[dict]) -> dict[str, list[dict]]:
        kinds = {f["column"]: f["kind"] for f in self.facets()}
        tallies: dict[str, Counter] = {c: Counter() for c in kinds}
        for hit in hits:
            for column, kind in kinds.items():
                if (value := hit["metadata"].get(column)) is not None:
                    tallies[column][decade_of(value) if kind == "decades" else value] += 1
        return {c: [{"value": v, "count": n} for v, n in sorted(t.items(), key=lambda vc: (-vc[1], vc[0])) if v]
                for c, t in tallies.items() if t}

    async def artwork(self, portal_id: int) -> dict:
        member, local = self.member_of(portal_id)
        reply = await self.call(member, "GET", f"{ARTWORKS}/{local}")
        if reply.status != "ok" or not isinstance(reply.data, dict) or not isinstance(reply.data.get("metadata"), dict):
            status = 404 if reply.http_status == 404 else 502
            raise FederationError(status, f"{member.name} did not describe artwork {local} ({reply.detail or 'garbage'})",
                                  "try again later")
        thumb = f"/api/artworks/{portal_id}/thumbnail" if reply.data.get("thumbnail") else None
        return {"id": portal_id, "institution": member.name, "member_id": local,
                "metadata": {str(k): str(v) for k, v in reply.data["metadata"].items()},
                "thumbnail": thumb, "image": thumb, "aspects": []}

    async def thumbnail(self, portal_id: int) -> bytes:
        """An artwork's small JPEG thumbnail from its member, kept in memory for the next request."""
        if (data := self._thumbs.get(portal_id)) is not None:
            self._thumbs.move_to_end(portal_id)
            return data
        member, local = self.member_of(portal_id)
        reply = await self.call(member, "GET", f"{ARTWORKS}/{local}/thumbnail", binary=True)
        if reply.status != "ok" or not reply.data.startswith(b"\xff\xd8"):
            raise FederationError(404, f"{member.name} has no thumbnail of artwork {local} for this portal",
                                  reply.detail or "the member sent something that is not a JPEG")
        self._thumbs[portal_id] = reply.data
        while len(self._thumbs) > self._thumb_cache:
            self._thumbs.popitem(last=False)
        return reply.data

    async def browse(self, offset: int, limit: int, seed: int | None = None,
                     filters: Mapping[str, Sequence[str]] | None = None) -> dict:
        """A page of the federation: each member's page of the same position, interleaved."""
        await self.ensure_infos()
        n = len(self.members)
        params = {"offset": offset // n, "limit": -(-limit // n)}
        if seed is not None:
            params["seed"] = seed
        body = {"filters": {c: list(v) for c, v in filters.items()}} if filters else {}

        async def page(member: MemberEntry):
            if self._on_other_head(member):
                return member, None
            info = self.infos.get(member.name)
            if filters and info is not None and set(filters) - set(info["expose"]):
                return member, {"total": 0, "results": []}
            reply = await self.call(member, "POST", BROWSE, json={**params, **body})
            ok = reply.status == "ok" and isinstance(reply.data, dict) and isinstance(reply.data.get("results"), list)
            return member, reply.data if ok else None

        pages = await asyncio.gather(*(page(m) for m in self.members))
        columns = [[{"id": self.portal_id(m, r["id"]), "institution": m.name, "metadata": r.get("metadata", {}),
                     "thumbnail": f"/api/artworks/{self.portal_id(m, r['id'])}/thumbnail"
                     if (self.infos.get(m.name) or {}).get("thumbnails") else None}
                    for r in p["results"] if isinstance(r, dict) and isinstance(r.get("id"), int)] for m, p in pages if p]
        mixed = [c[i] for i in range(max((len(c) for c in columns), default=0)) for c in columns if i < len(c)]
        total = sum(int(p.get("total", 0)) for _, p in pages if p)
        return {"total": total, "offset": offset, "results": mixed[:limit]}

    # -- checks ---------------------------------------------------------------------------------
    async def check(self) -> list[dict]:
        """Every member's info endpoint: reachable, token accepted, head matches, artworks, latency."""
        replies = await self.refresh()
        expected = self.head_id()
        rows = []
        for member in self.members:
            reply = replies[member.name]
            info = reply.data if reply.status == "ok" else None
            head = info["head_id"] if info else None
            row = {"name": member.name, "url": member.url, "reachable": reply.status not in ("unreachable", "timeout"),
                   "token_accepted": None if reply.status in ("unreachable", "timeout") else reply.status == "ok",
                   "head_id": head, "head_matches": None if head is None else head == expected,
                   "artworks": info["artworks"] if info else None, "ms": round(reply.ms, 1),
                   "status": reply.status, "detail": reply.detail}
            if info and head != expected:
                row.update(status="error", detail=f"on head {head}, the federation searches {expected}: skipped in searches")
            rows.append(row)
        return rows

    def stats(self) -> dict:
        return {"members": [{"name": m.name, "artworks": (self.infos.get(m.name) or {}).get("artworks"),
                             "status": self.info_replies[m.name].status if m.name in self.info_replies else "unknown"}
                            for m in self.members],
                "head_id": self.head_id(), "timeout_s": self.timeout, "version": __version__}


def members_line(statuses: Sequence[Mapping], timeout: float) -> str:
    """"3 of 4 institutions answered; Musée X did not answer within 2 s"."""
    ok = [s for s in statuses if s["status"] == "ok"]
    line = f"{len(ok)} of {len(statuses)} institution{'s' if len(statuses) != 1 else ''} answered"
    reasons = {"timeout": f"did not answer within {timeout:g} s", "unreachable": "could not be reached",
               "unauthorized": "refused the portal's token", "error": "answered with an error"}
    missing = [f"{s['name']} {reasons.get(s['status'], s['status'])}" for s in statuses if s["status"] != "ok"]
    return line + ("; " + "; ".join(missing) if missing else "")


def _is_info(data) -> bool:
    return (isinstance(data, dict) and isinstance(data.get("head_id"), str) and isinstance(data.get("aspects"), dict)
            and isinstance(data.get("facets", []), list) and isinstance(data.get("expose", []), list)
            and isinstance(data.get("artworks", 0), int))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _checked_hits(data, k: int) -> list[dict]:
    """A member's hits, or ValueError saying what is wrong with them."""
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ValueError("no results list")
    hits = data["results"]
    if len(hits) > k:
        raise ValueError(f"{len(hits)} hits for k={k}")
    for hit in hits:
        if not isinstance(hit, dict):
            raise ValueError("a hit is not an object")
        if not isinstance(hit.get("id"), int) or isinstance(hit["id"], bool) or not 0 <= hit["id"] < 2**ID_BITS:
            raise ValueError(f"bad id {hit.get('id')!r}")
        if not _finite(hit.get("score")) or abs(hit["score"]) > 1.001:
            raise ValueError(f"bad score {hit.get('score')!r}")
        aspects, meta = hit.get("aspects"), hit.get("metadata")
        if not isinstance(aspects, dict) or not all(isinstance(a, str) and _finite(v) for a, v in aspects.items()):
            raise ValueError("bad aspect scores")
        if not isinstance(meta, dict) or not all(isinstance(c, str) and isinstance(v, str) for c, v in meta.items()):
            raise ValueError("bad metadata")
    return hits
