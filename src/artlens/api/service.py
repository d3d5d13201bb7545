"""What the routes call: one collection, its search engine, facets and thumbnails, and the optional
annotation, copyright and artist services, shared by every request of an app."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from artlens import __version__
from artlens.api.answers import annotation_answer, copyright_answer
from artlens.api.artists import ArtistFinder
from artlens.api.errors import ApiError
from artlens.api.facets import FacetIndex
from artlens.api.limits import EncodingQueue
from artlens.api.protocols import (
    Annotator,
    CopyrightChecker,
    open_annotator,
    open_copyright_checker,
)
from artlens.api.settings import ApiSettings
from artlens.api.uploads import UploadedImage, UploadRef, decode_or_422
from artlens.collection import Collection
from artlens.errors import ArtlensError
from artlens.features import ImageExtractor, TextExtractor
from artlens.recommend import recommend
from artlens.search import SearchEngine, SearchResult
from artlens.search.filters import check_columns
from artlens.thumbnails import ThumbnailCache

log = logging.getLogger("artlens.api")


class _LRU:
    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class QueryEngine(SearchEngine):
    """The search engine with a memory of recent query vectors (moving a weight slider re-ranks
    without re-encoding the upload) and a bound on how many uploads are encoded at once."""

    def __init__(self, collection: Collection, cache_size: int = 128, encoding: EncodingQueue | None = None):
        super().__init__(collection)
        self._cache = _LRU(cache_size)
        self._encoding = encoding or EncodingQueue()

    def image_vectors(self, image) -> dict[str, np.ndarray]:
        if not isinstance(image, (UploadedImage, UploadRef)):
            return super().image_vectors(image)
        key = ("image", image.md5)
        vectors = self._cache.get(key)
        if vectors is None and isinstance(image, UploadRef):
            raise ApiError(404, "that upload is no longer remembered by the server", "send the image again")
        if vectors is None:
            decoded = decode_or_422(image)
            with self._encoding.slot():
                vectors = super().image_vectors(decoded)
            self._cache.put(key, vectors)
        return vectors

    def resolve_filters(self, filters: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
        """Unknown columns are errors; values are kept: ArtService expanded them through its facet
        index (any case, as in the CLI), and a value that matches nothing answers no results."""
        check_columns(self.collection.catalog, filters)
        return {c: list(v) for c, v in filters.items()}

    def text_vectors(self, text: str) -> dict[str, np.ndarray]:
        key = ("text", text)
        vectors = self._cache.get(key)
        if vectors is None:
            vectors = super().text_vectors(text)
            self._cache.put(key, vectors)
        return vectors


class _Generations:
    """Which service answers new requests: a cheap check of the collection's generation pointer per
    request, and the next generation opened (indexes loaded) by the first request that sees it."""

    def __init__(self, first: "ArtService"):
        self.live = first
        self._lock = threading.Lock()
        self._failed: tuple = (None, 0.0)  # a generation that could not be opened, and when

    def current(self) -> "ArtService":
        live = self.live
        signature = live.collection.signature()
        failed, at = self._failed
        if signature == live._signature or (signature == failed and time.monotonic() - at < 0.5) \
                or not self._lock.acquire(blocking=False):
            return live  # unchanged, recently failed, or being opened by another request meanwhile
        try:
            live = self.live
            if signature != live._signature:
                collection = Collection.open(live.collection.location, read_only=live.collection.read_only)
                collection.load_indexes()
                successor = ArtService(live.settings, collection, *live._given, previous=live)
                successor.facet_index.facets()
                self.live = successor
                log.info("serving generation %d of %s", collection.generation, collection.root)
        except ArtlensError as exc:  # e.g. a commit that another one replaced while it was opened: next time
            self._failed = (signature, time.monotonic())
            log.warning("could not open the new generation of %s: %s", live.collection.root, exc.message)
        finally:
            self._lock.release()
        return self.live


def thumbnail_url(artwork_id: int, size: str | None = None) -> str:
    return f"/api/artworks/{artwork_id}/thumbnail" + (f"?size={size}" if size else "")


def free_thumbnail_url(artwork_id: int) -> str:
    """A thumbnail of a work of the copyright check's free collection, when it is not the served one."""
    return f"/api/copyright/free/{artwork_id}/thumbnail"


class ArtService:
    """Everything a request needs, for one generation of the collection. ``current()`` is the
    service of the newest committed generation: an ingest or a new head shows up on the next
    request, and every request runs on one generation from start to end."""

    def __init__(self, settings: ApiSettings, collection: Collection | None = None,
                 annotator: Annotator | None = None, copyright_checker: CopyrightChecker | None = None,
                 previous: "ArtService | None" = None):
        self.settings = settings
        self.collection = collection or Collection.open(settings.collection)
        # Feature extraction uses every core: bound how many requests run it at once and wait (all generations).
        self.encoding = previous.encoding if previous else EncodingQueue(settings.max_concurrent_encodes,
                                                                         settings.max_queued_encodes)
        self.engine = QueryEngine(self.collection, settings.query_cache_size, self.encoding)
        self.facet_index = FacetIndex(self.collection.catalog, self.collection.config.text_columns,
                                      settings.facet_max_values, settings.facet_top)
        self._given = (annotator, copyright_checker)
        self._annotator = annotator
        self._copyright_checker = copyright_checker
        self._opening = threading.Lock()
        self._signature = self.collection.signature()
        if previous is not None:  # what does not depend on the generation carries over
            self.thumbnails, self.artists = previous.thumbnails, previous.artists
            self._free, self._root = previous._free, previous._root
            return
        thumbnails = settings.resolved_thumbnail_dir()
        if self.collection.read_only and not settings.thumbnail_dir:  # nothing is written into it
            thumbnails = Path(tempfile.mkdtemp(prefix="artlens-thumbnails-"))
        self.thumbnails = ThumbnailCache(thumbnails, self.collection.config.max_pixels)
        self.artists = ArtistFinder(Path(self.collection.root), settings.artist_profiles, settings.artist_head)
        self._free: Collection | None = None
        self._root = _Generations(self)

    def current(self) -> "ArtService":
        """The service of the collection's newest committed generation (this one until a writer
        commits another; then the next request opens it, while requests under way finish on theirs)."""
        return self._root.current()

    def warm_up(self) -> None:
        """Load indexes and models now rather than on the first request."""
        self.collection.load_indexes()
        ids = self.collection.catalog.ids()
        aspects = self.engine.aspects
        if ids and aspects:
            self.engine.search(artwork_id=ids[0], k=1)
        extractors = [self.collection.extractor(a) for a in aspects if a in self.collection.config.aspects]
        if any(isinstance(e, ImageExtractor) for e in extractors):
            self.engine.image_vectors(Image.new("RGB", (64, 64), (128, 128, 128)))
        if any(isinstance(e, TextExtractor) for e in extractors):
            self.engine.text_vectors("warm up")
        self.facet_index.facets()
        for name, opener in (("annotation", self.annotator), ("copyright checks", self.copyright_checker)):
            try:
                opener()
            except ArtlensError as exc:
                log.warning("%s unavailable: %s (%s)", name, exc.message, exc.hint)

    # -- search ---------------------------------------------------------------------------------
    def search(self, *, image: UploadedImage | UploadRef | None = None, text: str | None = None, artwork_id: int | None = None,
               liked: Sequence[int] | None = None, k: int | None = None, aspect: str | None = None,
               weights: Mapping[str, float] | None = None, filters: Mapping[str, Sequence[str]] | None = None,
               fast: bool = False) -> dict:
        start = time.perf_counter()
        s = self.settings
        k = s.default_k if k is None else k
        if not 1 <= k <= s.max_k:
            raise ApiError(422, f"k must be between 1 and {s.max_k}, got {k}", f"ask for at most {s.max_k} results")
        given = [name for name, v in (("image", image), ("text", text), ("id", artwork_id), ("liked", liked)) if v is not None]
        if len(given) != 1:
            raise ApiError(422, "give exactly one query: image, text, id or liked" +
                           (f" (got {', '.join(given)})" if given else ""),
                           "send an image upload, a text, an artwork id, or liked artwork ids")
        if not self.engine.aspects:
            raise ApiError(409, "this collection has no indexes yet", "run `artlens ingest` on it first")
        if filters:
            filters = self.facet_index.expand(filters)
        if artwork_id is not None and self.collection.catalog.get(artwork_id) is None:
            raise ApiError(404, f"no artwork with id {artwork_id}", "use an id from /api/search results")
        if liked is not None:
            liked = self._known_liked(liked)
            weights = {aspect: 1.0} if aspect else weights
            result = recommend(self.engine, liked, k, weights=weights, filters=filters,
                               group_column=s.diversity_column or None, max_share=s.diversity_share, fast=fast)
        else:
            result = self.engine.search(image=image, text=text, artwork_id=artwork_id, k=k, aspect=aspect,
                                        weights=weights, filters=filters, fast=fast)
        return self._response(result, image, start)

    def _known_liked(self, liked: Sequence[int]) -> list[int]:
        if not liked:
            raise ApiError(422, "the liked list is empty", "like at least one artwork")
        if len(liked) > self.settings.max_liked:
            raise ApiError(422, f"too many liked artworks ({len(liked)}; at most {self.settings.max_liked})",
                           "send the most recent ones")
        known = [i for i in dict.fromkeys(liked) if self.collection.catalog.get(i) is not None]
        if not known:
            raise ApiError(404, f"none of the liked ids {list(liked)[:10]} is in this collection",
                           "use ids from /api/search results")
        return known

    def _response(self, result: SearchResult, image, start: float) -> dict:
        query = dict(result.query)
        if image is not None:
            query = {"image": "upload", "upload_id": image.md5}
        hits = [{"id": h.id, "score": round(h.score, 6), "aspects": {a: round(v, 6) for a, v in h.aspects.items()},
                 "metadata": h.metadata, "thumbnail": thumbnail_url(h.id)} for h in result.hits]
        query_aspects = sorted({a for h in result.hits for a in h.aspects} | set(result.weights))
        return {"query": query, "results": hits, "facets": self.facet_index.counts(h.metadata for h in result.hits),
                "weights": {a: round(w, 6) for a, w in result.weights.items()}, "aspects": query_aspects,
                "took_ms": round((time.perf_counter() - start) * 1000, 2)}

    # -- artworks -------------------------------------------------------------------------------
    def artwork(self, artwork_id: int) -> dict:
        art = self.collection.catalog.get(artwork_id)
        if art is None:
            raise ApiError(404, f"no artwork with id {artwork_id}", "use an id from /api/search results")
        aspects = [a for a in self.engine.aspects if artwork_id in self.collection.index(a).ids()]
        return {"id": art.id, "md5": art.md5, "width": art.width, "height": art.height, "size_bytes": art.size_bytes,
                "metadata": art.metadata, "aspects": aspects, "thumbnail": thumbnail_url(art.id),
                "image": thumbnail_url(art.id, "large")}

    def browse(self, offset: int, limit: int, filters: Mapping[str, Sequence[str]] | None = None,
               seed: int | None = None) -> dict:
        """A page of the collection (optionally filtered; shuffled by ``seed``), for browsing."""
        catalog = self.collection.catalog
        if filters:
            unknown = set(filters) - set(catalog.metadata_columns())
            if unknown:
                raise ApiError(422, f"unknown filter column(s) {sorted(unknown)}",
                               f"columns of this collection: {', '.join(catalog.metadata_columns())}")
            ids = catalog.filter_ids(self.facet_index.expand(filters))
        else:
            ids = catalog.ids()
        if seed is not None:
            ids = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
        page = ids[offset : offset + limit]
        arts = catalog.get_many(page)
        return {"total": len(ids), "offset": offset,
                "results": [{"id": i, "metadata": arts[i].metadata, "thumbnail": thumbnail_url(i)} for i in page if i in arts]}

    def thumbnail(self, artwork_id: int, size: str, collection: Collection | None = None) -> tuple[Path, str]:
        """(cached thumbnail file, ETag) of an artwork of the served collection (or of ``collection``);
        the file name comes from the catalog's MD5, never the request."""
        collection = collection or self.collection
        pixels = self.settings.thumbnail_sizes.get(size)
        if pixels is None:
            raise ApiError(422, f"unknown thumbnail size {size!r}", f"use one of: {', '.join(self.settings.thumbnail_sizes)}")
        art = collection.catalog.get(artwork_id)
        if art is None:
            where = "" if collection is self.collection else " of free works"
            raise ApiError(404, f"no artwork with id {artwork_id} in the collection{where}",
                           "use an id from /api/search or /api/copyright/check results")
        path = self.thumbnails.ensure(art.md5, art.path, pixels)
        if path is None:
            raise ApiError(404, f"the image of artwork {artwork_id} is no longer readable",
                           "re-run `artlens ingest` on the collection's folder")
        return path, f'"{art.md5}-{pixels}"'

    def free_thumbnail(self, artwork_id: int, size: str) -> tuple[Path, str]:
        """Like :meth:`thumbnail`, for a work of the copyright check's free collection."""
        return self.thumbnail(artwork_id, size, self.free_collection())

    # -- collection -----------------------------------------------------------------------------
    def facets(self) -> dict:
        return {"artworks": len(self.collection.catalog),
                "facets": [{"column": f.column, "kind": f.kind, "values": f.as_list()} for f in self.facet_index.facets().values()]}

    def health(self) -> dict:
        return {"status": "ok", "artworks": len(self.collection.catalog), "aspects": self.engine.aspects,
                "version": __version__}

    def stats(self) -> dict:
        info = self.collection.stats()
        s = self.settings
        config = self.collection.config
        return {
            "collection": self.collection.root.resolve().name,
            "artworks": info["artworks"], "skipped": info["skipped"], "aspects": self.engine.aspects,
            "default_weights": {a: w for a, w in config.weights.items() if a in config.aspects},
            "indexes": info["indexes"], "extractors": info["extractors"],
            "metadata_columns": info["metadata_columns"], "text_columns": list(config.text_columns),
            "features": self.features(),
            "limits": {"max_upload_bytes": s.max_upload_bytes, "max_upload_pixels": s.max_upload_pixels,
                       "max_k": s.max_k, "default_k": s.default_k, "max_liked": s.max_liked},
        }

    # -- optional services ----------------------------------------------------------------------
    def features(self) -> dict[str, bool]:
        """Which optional services answer here, so that the page calls only those."""
        return {"annotation": self._available(self.annotator), "copyright": self._available(self.copyright_checker),
                "artists": self._available(lambda: self.artists.current(required=False))}

    def _available(self, opener: Callable[[], object]) -> bool:
        try:
            return opener() is not None
        except (ArtlensError, ApiError):
            return False

    def _free_is_served(self) -> bool:
        """Whether copyright alternatives come from the served collection (so they have thumbnails here)."""
        free = self.settings.copyright_free
        return free is None or Path(free).resolve() == Path(self.settings.collection).resolve()

    def free_collection(self) -> Collection:
        """The collection free alternatives come from: the served one unless ``copyright_free`` names another."""
        if self._free_is_served():
            return self.collection
        with self._opening:
            if self._free is None:
                self._free = Collection.open(self.settings.copyright_free)
        return self._free

    def annotator(self) -> Annotator:
        """The given annotator, else the collection's (an error says why a collection has none)."""
        if self._annotator is None:
            with self._opening:
                if self._annotator is None:
                    self._annotator = open_annotator(self.collection)
        return self._annotator

    def copyright_checker(self) -> CopyrightChecker | None:
        """The given checker, else one on the configured registry; None when no registry is configured."""
        if self._copyright_checker is not None or self.settings.copyright_registry is None:
            return self._copyright_checker
        free = self.free_collection()
        with self._opening:
            if self._copyright_checker is None:
                self._copyright_checker = open_copyright_checker(self.settings.copyright_registry, free,
                                                                 self.settings.max_alternatives)
        return self._copyright_checker

    def require_annotator(self) -> Annotator:
        try:
            return self.annotator()
        except ArtlensError as exc:  # e.g. the collection has no label columns or no indexes yet
            raise ApiError(501, f"annotation is not available: {exc.message}", exc.hint) from None

    def require_copyright_checker(self) -> CopyrightChecker:
        try:
            checker = self.copyright_checker()
        except ArtlensError as exc:
            raise ApiError(501, f"copyright checking is not available: {exc.message}", exc.hint) from None
        if checker is None:
            raise ApiError(501, "copyright checking is not set up on this server",
                           "start it with `artlens serve --registry PATH` (a registry made by `artlens registry add`)")
        return checker

    def annotate(self, upload: UploadedImage, top: int) -> dict:
        annotator = self.require_annotator()
        image = decode_or_422(upload)
        with self.encoding.slot():
            predictions = annotator.annotate_image(image, top)
        return annotation_answer(predictions)

    def check_copyright(self, upload: UploadedImage, k: int, fast: bool = False) -> dict:
        checker = self.require_copyright_checker()
        image = decode_or_422(upload)
        with self.encoding.slot():
            result = checker.check_images([image], ["upload"], [upload.md5], fast=fast)[0]
        return copyright_answer(result, k, thumbnail_url if self._free_is_served() else free_thumbnail_url)
