"""A federation member: one institution's collection answering searches by query vectors, in the
space of the head all members share. Only the columns of ``expose`` leave it (never paths or MD5s),
stored vectors only when ``share_liked_vectors`` allows them, and no image ever arrives.

A query carries the head's embedding (``learned``) and the raw vectors of pretrained extractors,
keyed by extractor id, so that the member projects them with its own PCA and searches its own
indexes; it answers hits with their mixed and per-aspect scores."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from artlens import __version__
from artlens.collection import LEARNED_ASPECT, Collection
from artlens.errors import ArtlensError
from artlens.features import create_extractor
from artlens.federation.config import MemberSettings
from artlens.federation.errors import FederationError
from artlens.federation.wire import (
    PROTOCOL,
    decode_vector,
    decode_vectors,
    encode_vector,
)
from artlens.models import load_head
from artlens.progress import QUIET, Reporter
from artlens.search import SearchEngine
from artlens.search.filters import resolve_filters
from artlens.thumbnails import ThumbnailCache

MAX_K = 1000
MAX_IDS = 1000


def use_head(collection: Collection, head, reporter: Reporter = QUIET) -> str:
    """Make ``head`` the collection's ``learned`` aspect, indexing every artwork with it unless that is
    done already, and extracting the features it reads that are missing. A collection without a head
    of its own keeps it (saved as its head); one with another head of its own keeps that file and
    gets the federation's head in memory. Returns what was done."""
    own = collection.head() if collection.head_file().exists() else None
    if own is not None and own.id == head.id:
        try:
            index = collection.index(LEARNED_ASPECT)
            if len(index) == len(collection.catalog):
                return "indexed"
        except ArtlensError:
            pass
    collection.ensure_features([s.extractor for s in head.config.inputs], reporter=reporter,
                               reason="the federation's head reads")
    if own is not None and own.id != head.id:
        reporter.notice(f"{collection.root} has a head of its own ({own.id}); it stays in {collection.head_file()}, "
                        f"and the federation's head {head.id} is applied in memory")
        collection.attach_head(head)
        return "attached"
    count = collection.attach_head(head, persist=True)
    reporter.notice(f"indexed {count} artworks of {collection.root} with the federation's head {head.id}")
    return "indexed now"


class Member:
    """The use case behind ``/api/federation/*`` on a member's server. ``facets`` gives the
    collection's facets as the API computes them ([{column, kind, values}]); only exposed columns
    leave."""

    def __init__(self, collection: Collection, settings: MemberSettings, head, thumbnails: ThumbnailCache | None = None,
                 facets: Callable[[], list[dict]] | None = None, candidates: int = 200):
        self.collection = collection
        self.settings = settings
        self.head = head
        self.engine = SearchEngine(collection, candidates)
        self.thumbnails = thumbnails or ThumbnailCache(Path(collection.root) / "thumbnails", collection.config.max_pixels)
        self._facets = facets
        self.expose = tuple(settings.expose)

    @classmethod
    def open(cls, collection: Collection, settings: MemberSettings, reporter: Reporter = QUIET, **kwargs) -> Member:
        """A member over ``collection``, indexed with the head of ``settings`` first (see :func:`use_head`)."""
        head = load_head(settings.head)
        use_head(collection, head, reporter)
        return cls(collection, settings, head, **kwargs)

    @property
    def head_id(self) -> str:
        return self.head.id

    # -- what a portal may see ----------------------------------------------------------------------
    def shown(self, metadata: Mapping[str, str]) -> dict[str, str]:
        return {c: metadata[c] for c in self.expose if c in metadata}

    def aspects(self) -> dict[str, dict]:
        """Indexed aspects and what feeds them: an extractor (by name and versioned id) or the head."""
        out = {}
        for aspect in self.engine.aspects:
            if aspect == LEARNED_ASPECT and aspect not in self.collection.config.aspects:
                out[aspect] = {"head_id": self.head_id, "modality": "image"}
                continue
            ex = self.collection.extractor(aspect)
            out[aspect] = {"extractor": ex.name, "extractor_id": ex.id, "modality": ex.modality}
        return out

    def facets(self) -> list[dict]:
        facets = self._facets() if self._facets else []
        return [f for f in facets if f["column"] in self.expose]

    def info(self) -> dict:
        s = self.settings
        return {"protocol": PROTOCOL, "name": s.name, "head_id": self.head_id, "artworks": len(self.collection.catalog),
                "aspects": self.aspects(), "facets": self.facets(), "expose": list(self.expose),
                "thumbnails": s.thumbnails, "thumbnail_px": s.thumbnail_px,
                "share_liked_vectors": s.share_liked_vectors, "version": __version__}

    def check_head(self, request: Mapping) -> None:
        asked = request.get("head_id")
        if asked != self.head_id:
            raise FederationError(409, f"this member searches the space of head {self.head_id}, the query names {asked!r}",
                                  "give the portal the same head file as the members (--head), or update this member's head")

    # -- search ---------------------------------------------------------------------------------
    def query_vectors(self, request: Mapping) -> dict[str, np.ndarray]:
        """The query's vectors in this member's indexes: the head's embedding for ``learned``, and each
        pretrained aspect's raw vector (keyed by its extractor's id) projected with this member's PCA."""
        vectors: dict[str, np.ndarray] = {}
        aspects = self.engine.aspects
        if request.get("learned") is not None and LEARNED_ASPECT in aspects:
            vectors[LEARNED_ASPECT] = self._project(LEARNED_ASPECT, decode_vector(request["learned"], "learned"))
        raw = decode_vectors(request.get("raw") or {}, "raw")
        for aspect in aspects:
            if aspect in self.collection.config.aspects:
                ex_id = self.collection.extractor(aspect).id
                if ex_id in raw:
                    vectors[aspect] = self._project(aspect, raw[ex_id])
        return vectors

    def _project(self, aspect: str, vector: np.ndarray) -> np.ndarray:
        index = self.collection.index(aspect)
        if vector.shape[0] != index.manifest.raw_dim:
            raise FederationError(422, f"the {aspect} vector has {vector.shape[0]} values, this member's index takes "
                                       f"{index.manifest.raw_dim}", "encode the query with the extractor named in /info")
        return index.project(vector)[0]

    def search(self, request: Mapping) -> dict:
        """Hits for a query: ``head_id``, ``k``, ``weights`` (aspect -> weight), query vectors
        (``learned``, ``raw``), optional ``filters`` (exposed columns only), ``exclude`` (ids) and ``fast``."""
        start = time.perf_counter()
        self.check_head(request)
        k = _integer(request.get("k", 10), "k", 1, MAX_K)
        weights = request.get("weights") or {}
        if not isinstance(weights, dict) or not all(_finite(w) and w >= 0 for w in weights.values()):
            raise FederationError(422, "weights must be an object of numbers >= 0", 'send e.g. {"learned": 1.0}')
        try:
            vectors = self.query_vectors(request)
        except FederationError:
            raise
        except ArtlensError as exc:
            raise FederationError(422, exc.message, exc.hint) from None
        chosen = {a: float(w) for a, w in weights.items() if a in vectors and w > 0}
        answer = {"name": self.settings.name, "head_id": self.head_id, "results": [], "count": 0,
                  "aspects": sorted(vectors)}
        allowed = self._allowed(request.get("filters"))
        if chosen and (allowed is None or allowed):
            exclude = {int(i) for i in _ids(request.get("exclude") or [], "exclude")}
            total = sum(chosen.values())
            ranked = self.engine.rank(vectors, {a: w / total for a, w in chosen.items()}, k, allowed, exclude,
                                      fast=bool(request.get("fast")))
            arts = self.collection.catalog.get_many([r[0] for r in ranked])
            answer["results"] = [{"id": i, "score": round(s, 6), "aspects": {a: round(v, 6) for a, v in per.items()},
                                  "metadata": self.shown(arts[i].metadata)} for i, s, per in ranked if i in arts]
            answer["count"] = len(answer["results"])
        answer["took_ms"] = round((time.perf_counter() - start) * 1000, 2)
        return answer

    def _allowed(self, filters) -> list[int] | None:
        """Ids the filters allow (None: no filters). A filter on a column this member does not expose
        is refused: answering it would reveal what the column holds."""
        if not filters:
            return None
        if not isinstance(filters, dict) or not all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                                                    for v in filters.values()):
            raise FederationError(422, "filters must be an object of lists of strings", 'send e.g. {"style": ["Baroque"]}')
        hidden = sorted(set(filters) - set(self.expose))
        if hidden:
            raise FederationError(422, f"column(s) {', '.join(hidden)} are not exposed by {self.settings.name}",
                                  f"filter by exposed columns only: {', '.join(self.expose) or 'none'}")
        if set(filters) - set(self.collection.catalog.metadata_columns()):
            return []  # exposed but absent here: nothing matches
        return self.collection.catalog.filter_ids(resolve_filters(self.collection.catalog, filters, strict=False))

    # -- artworks -------------------------------------------------------------------------------
    def vectors(self, request: Mapping) -> dict:
        """Stored vectors of artworks (the head's embedding and each pretrained extractor's raw vector),
        for recommendations from liked works across members: only when ``share_liked_vectors`` is on."""
        if not self.settings.share_liked_vectors:
            raise FederationError(403, f"{self.settings.name} does not share the vectors of its artworks",
                                  "set share_liked_vectors = true in its MEMBER.toml to allow recommendations from them")
        self.check_head(request)
        ids = [int(i) for i in _ids(request.get("ids") or [], "ids")]
        out: dict[str, dict] = {str(i): {"raw": {}} for i in ids if self.collection.catalog.get(i) is not None}
        present = [int(i) for i in out]
        if LEARNED_ASPECT in self.engine.aspects and present:
            index = self.collection.index(LEARNED_ASPECT)
            known = [i for i in present if i in set(index.ids().tolist())]
            if known:
                for i, v in zip(known, index.vectors(known)):
                    out[str(i)]["learned"] = encode_vector(v)
        for name in self.collection.config.extractor_names():
            extractor = create_extractor(name)
            have, raw = self.collection.raw_vectors(name, present)
            for i, v in zip(have.tolist(), raw):
                out[str(i)]["raw"][extractor.id] = encode_vector(v)
        return {"name": self.settings.name, "head_id": self.head_id, "vectors": out,
                "missing": [int(i) for i in ids if str(i) not in out]}

    def artwork(self, artwork_id: int) -> dict:
        art = self.collection.catalog.get(artwork_id)
        if art is None:
            raise FederationError(404, f"no artwork {artwork_id} at {self.settings.name}", "use an id from its search hits")
        return {"id": art.id, "metadata": self.shown(art.metadata), "thumbnail": self.settings.thumbnails}

    def browse(self, offset: int, limit: int, seed: int | None = None, filters: dict | None = None) -> dict:
        allowed = self._allowed(filters)
        ids = self.collection.catalog.ids() if allowed is None else allowed
        if seed is not None:
            ids = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
        page = ids[offset: offset + limit]
        arts = self.collection.catalog.get_many(page)
        return {"total": len(ids), "offset": offset,
                "results": [{"id": i, "metadata": self.shown(arts[i].metadata)} for i in page if i in arts]}

    def thumbnail(self, artwork_id: int) -> tuple[Path, str]:
        """(JPEG file, ETag) of an artwork's small thumbnail, when the member offers thumbnails."""
        if not self.settings.thumbnails:
            raise FederationError(404, f"{self.settings.name} does not offer thumbnails", "show the hit without a picture")
        art = self.collection.catalog.get(artwork_id)
        if art is None:
            raise FederationError(404, f"no artwork {artwork_id} at {self.settings.name}", "use an id from its search hits")
        path = self.thumbnails.ensure(art.md5, art.path, self.settings.thumbnail_px)
        if path is None:
            raise FederationError(404, f"the image of artwork {artwork_id} is no longer readable", "re-ingest the collection")
        return path, f'"{art.id}-{self.settings.thumbnail_px}-{path.stat().st_mtime_ns}"'


class LiveMember:
    """A member that follows its collection's committed generations, as the API's own service does:
    works an ingest adds (or an index rebuild changes) are searched by the next federated query,
    without a restart, and each request runs on one generation from start to end. ``current`` gives
    the collection of the newest generation (the API service's); the shared head is applied to it in
    memory when its own learned index does not already hold every artwork."""

    def __init__(self, member: Member, current: Callable[[], Collection]):
        self.settings = member.settings
        self._member = member
        self._current = current
        self._lock = threading.Lock()

    @property
    def head_id(self) -> str:
        return self._member.head_id

    def member(self) -> Member:
        """The member over the newest committed generation."""
        member, collection = self._member, self._current()
        if collection is member.collection:
            return member
        with self._lock:
            member = self._member
            if collection is not member.collection:
                if not _indexed_with(collection, member.head):
                    collection.attach_head(member.head)  # in memory: serving never writes the collection
                member = Member(collection, member.settings, member.head, member.thumbnails, member._facets,
                                member.engine.candidates)
                self._member = member
        return member


def _indexed_with(collection: Collection, head) -> bool:
    """Whether the collection's learned index is ``head``'s and holds every artwork."""
    try:
        index = collection.index(LEARNED_ASPECT)
    except ArtlensError:
        return False
    return index.manifest.extractor_id == head.id and len(index) == len(collection.catalog)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _integer(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FederationError(422, f"{name} must be an integer between {low} and {high}, got {value!r}", f"send e.g. {name}=10")
    return value


def _ids(values, name: str) -> Sequence[int]:
    if not isinstance(values, list) or len(values) > MAX_IDS or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 2**63 for i in values):
        raise FederationError(422, f"{name} must be a list of at most {MAX_IDS} artwork ids", f"send e.g. {name}: [1, 2]")
    return values
