"""A collection directory: catalog, feature cache, per-aspect indexes, heads, and its settings.

    COLLECTION/
      collection.toml     settings (CollectionConfig)
      generation.json     the committed generation: which version of every index and head is current
      catalog.sqlite      artworks, files, metadata, skipped files
      features.sqlite     cached vectors by extractor id and content key
      index/<aspect>/     FAISS index + PCA + manifest per aspect
      heads/              learned heads
      .lock               the writer lock (who holds it)

Writers (ingest, train, index updates) take the collection's lock and commit everything they
change as one new generation (:mod:`artlens.storage`): a crash at any point leaves the previous
generation working, and the next writer finishes or undoes what the crash cut short. A reader opens
the last committed generation and sees it whole, catalog included, however long it reads and
whatever a writer does meanwhile. A collection this process cannot write (a read-only mount) is
opened read-only: it searches and serves, and nothing is written to it.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Protocol

import numpy as np

from artlens.catalog.db import Catalog
from artlens.catalog.ingest import ingest_folder
from artlens.config import AspectConfig, CollectionConfig
from artlens.devices import device_name
from artlens.errors import ArtlensError, CollectionError
from artlens.features import Extractor, ImageExtractor, create_extractor, distributed
from artlens.features.cache import FeatureCache
from artlens.features.extract import (
    ExtractionReport,
    artwork_text,
    extract_images,
    extract_texts,
    text_key,
)
from artlens.index import AspectIndex
from artlens.index.chunks import Chunks
from artlens.models import load_head
from artlens.models.inputs import embed_features, gather_features
from artlens.postgres import (
    is_postgres,
)
from artlens.progress import QUIET, Reporter
from artlens.storage import (
    Generation,
    WriterLock,
    boundary,
    durable_rename,
    fsync_dir,
    is_read_only,
    load_artifact,
    locate,
    pointer_signature,
    read_generation,
    remove,
    retired_path,
    sha256_of,
    staged_path,
    write_generation,
)

DEFAULT_COLLECTION = Path("artlens-collection")
LEARNED_ASPECT = "learned"  # the aspect whose vectors come from a trained head over several extractors
SETTINGS = "collection.toml"
HEAD = f"heads/{LEARNED_ASPECT}.pt"
# Temporaries a cut-short writer can leave: staged and replaced versions, atomic-write temporaries.
_INDEX_TEMPORARY = re.compile(r"^\.+[^.]+\.(?:new|old|tmp)-")
_HEAD_TEMPORARY = re.compile(rf"^\.+{LEARNED_ASPECT}\.(?:[a-z]+\.)?(?:new|old|tmp)-")
_ROOT_TEMPORARY = re.compile(r"^\.+(?:collection|generation)\.(?:new|old|tmp)-")


class WriterLockLike(Protocol):
    """The one-writer lock a writing scope holds: the folder's file lock (``storage.WriterLock``) or
    the database's advisory lock (``postgres.AdvisoryLock``). A lock held elsewhere is a one-line
    error naming its holder, or with ``wait`` a wait (``notice`` says so first)."""

    def acquire(self, wait: bool = False, notice=None) -> bool: ...

    def release(self) -> None: ...


class Collection:
    # what `writing` says when the collection cannot be written: (after the location, the hint)
    READ_ONLY = ("is read-only", "ingest or train into a writable copy of the collection")

    def __init__(self, root: str | Path, config: CollectionConfig, read_only: bool | None = None,
                 reporter: Reporter = QUIET, state: Generation | None = None):
        self.root = Path(root)
        self.config = config
        self.read_only = is_read_only(self.root) if read_only is None else read_only
        self.lock: WriterLockLike = WriterLock(self.root)
        self.state = state or read_generation(self.root)  # the generation this object reads
        self.catalog = Catalog(self.root / "catalog.sqlite", read_only=self.read_only)
        self._reading()
        self.cache = FeatureCache(self.root / "features.sqlite", read_only=self.read_only)
        self._indexes: dict[str, AspectIndex] = {}
        self._head = None
        self._present: dict[str, bool] = {}
        self._depth = 0  # nesting of `writing` scopes
        self._publish = False  # whether the open writing scope makes its catalog changes visible
        self._staged: dict[str, dict] = {}  # artifacts staged for the pending generation
        if self.read_only:
            reporter.notice(f"{self.root} is read-only: searching and serving only, nothing is written to it "
                            "(features computed meanwhile are kept in memory)")

    @classmethod
    def open(cls, root: str | Path, create: bool = False, config: CollectionConfig | None = None,
             read_only: bool | None = None, reporter: Reporter = QUIET) -> "Collection":
        """Open a collection at its last committed generation; with ``create`` make it (and its
        settings) if it does not exist. ``read_only`` (default: whether this process can write the
        folder) opens it without writing anything. A ``postgresql://`` URL opens the collection in
        that database's schema (:class:`PostgresCollection`)."""
        if is_postgres(root):
            from artlens.collection.postgres import PostgresCollection  # it builds on this class

            return PostgresCollection.open_location(root, create, config, read_only, reporter)
        root = Path(root)
        settings = root / SETTINGS
        if not settings.exists():
            if not create:
                raise CollectionError(
                    f"no artlens collection at {root}",
                    "create one with `artlens ingest DIR --collection PATH`, or pass --collection",
                )
            root.mkdir(parents=True, exist_ok=True)
            (config or CollectionConfig()).save(settings)
        state = read_generation(root)
        return cls(root, _load_settings(root, state), read_only, reporter, state)

    @property
    def location(self) -> str:
        """Where the collection is, as a --collection value names it."""
        return str(self.root)

    def signature(self):
        """Changes whenever a new generation is committed (cheap, for servers that poll)."""
        return pointer_signature(self.root)

    # -- generations: one writer, committed atomically ------------------------------------------
    @property
    def generation(self) -> int:
        """The committed generation this object reads (0: none committed yet)."""
        return self.state.number

    @property
    def published(self) -> int:
        """The generation whose catalog this object shows (the last that made catalog changes visible)."""
        return int(self.state.artifacts.get("catalog", {}).get("generation", 0))

    @contextmanager
    def writing(self, wait: bool = False, reporter: Reporter = QUIET, publish: bool = False) -> Iterator["Collection"]:
        """Hold the collection's writer lock and commit what the block changes as one generation when
        it ends (nested scopes commit with the outermost). A lock held by another process is a
        one-line error naming it, or with ``wait`` a wait (said in a notice). ``publish``: the block
        brings the indexes in line with the catalog, so its catalog changes become visible with it.
        The one writer context of every backend: ``lock`` (``WriterLockLike``), ``_transaction`` and
        the ``_begin`` / ``_commit`` / ``_abandon`` steps are what a backend brings."""
        if self._depth:
            self._depth += 1
            if publish and not self._publish:
                self._publish = True
                self._publishing()
            try:
                yield self
            finally:
                self._depth -= 1
            return
        if self.read_only:
            what, hint = self.READ_ONLY
            raise CollectionError(f"{self.location} {what}: nothing can be written to it", hint)
        self.lock.acquire(wait, reporter.notice)
        self._depth, self._publish = 1, publish
        try:
            with self._transaction():
                self._begin()
                yield self
                self._commit()
        except BaseException:
            self._abandon()
            raise
        finally:
            self._depth, self._publish = 0, False
            self.lock.release()
            self._reading()

    def _transaction(self) -> AbstractContextManager:
        """What a writing scope's steps run in (a folder commits through its generations instead)."""
        return nullcontext()

    def _publishing(self) -> None:
        """A nested scope publishes: the writer reads the catalog's pending rows from now on."""
        self.catalog.pin(None)

    def _reading(self) -> None:
        """Outside writing scopes: read the published catalog; rows written straight into it (not by
        a writer of this collection) belong to it at once, as before generations."""
        self.catalog.pin(self.published)
        self.catalog.pending_generation = self.published

    def _begin(self) -> None:
        """Under the lock: finish or undo what a cut-short writer left, and start from the last
        committed generation (another process may have committed since this object opened)."""
        latest = read_generation(self.root)
        self._recover(latest)
        if latest.as_dict() != self.state.as_dict():
            self.state = latest
            self.config = _load_settings(self.root, latest)
            self._indexes.clear()
            self._head = None
        self._present.clear()
        self._staged = {}
        self.catalog.pending_generation = self.state.number + 1
        self.catalog.pin(None if self._publish else self.published)

    def _recover(self, latest: Generation) -> None:
        for rel, record in latest.artifacts.items():
            if record.get("generation") == latest.number and rel != "catalog":
                self._apply(rel, latest.number)  # a commit cut short after its pointer: roll forward
        self._remove_temporaries(keep=latest.number)

    def _stage(self, rel: str, write, kind: str) -> Path:
        """Write a new version of the artifact ``rel`` for the pending generation (``write(path)``)."""
        number = self.state.number + 1
        path = staged_path(self.root, rel, number)
        remove(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
        fsync_dir(path.parent)  # its name is durable before the pointer names it
        record = {"kind": kind, "generation": number}
        if kind == "file":
            record["sha256"] = sha256_of(path)
        self._staged[rel] = record
        self._present.pop(rel, None)
        boundary("staged")
        return path

    def _stage_index(self, aspect: str, index: AspectIndex) -> None:
        index.manifest.generation = self.state.number + 1
        self._stage(f"index/{aspect}", index.write, "dir")
        self._indexes[aspect] = index

    def _commit(self) -> None:
        number = self.state.number + 1
        publish = self._publish and self.catalog.pending_changes(self.published)
        if not self._staged and not publish:
            return
        boundary("commit")
        artifacts = dict(self.state.artifacts) if self.state.exists else self._adopt_live()
        artifacts.update(self._staged)
        if publish:
            artifacts["catalog"] = {"kind": "catalog", "generation": number}
        before = self.published
        write_generation(self.root, Generation(number, artifacts, time.time(), True))
        boundary("committed")
        self.state = read_generation(self.root)
        for rel in self._staged:
            self._apply(rel, number)
        self._staged = {}
        if publish:
            self.catalog.purge(before)
            boundary("purged")
        self._remove_temporaries(keep=number)

    def _adopt_live(self) -> dict[str, dict]:
        """Records of the live artifacts of a collection from before generations (its first commit)."""
        artifacts: dict[str, dict] = {}
        index = self.root / "index"
        for folder in sorted(index.iterdir()) if index.is_dir() else []:
            if not folder.name.startswith(".") and (folder / "manifest.json").exists():
                generation = AspectIndex.load(folder).manifest.generation
                artifacts[f"index/{folder.name}"] = {"kind": "dir", "generation": generation}
        if (self.root / HEAD).is_file():
            artifacts[HEAD] = {"kind": "file", "generation": 0, "sha256": sha256_of(self.root / HEAD)}
        return artifacts

    def _apply(self, rel: str, number: int) -> None:
        """Rename the version of ``rel`` staged by generation ``number`` over the live one, keeping
        the replaced version for readers of the previous generation. Idempotent."""
        staged = staged_path(self.root, rel, number)
        if not staged.exists():
            return
        live = self.root / rel
        boundary("apply")
        if live.exists():
            retired = retired_path(self.root, rel, number)
            remove(retired)
            durable_rename(live, retired)
            boundary("retired")
        durable_rename(staged, live)

    def _abandon(self) -> None:
        """A writing scope failed before its commit: remove what it staged, forget what it loaded."""
        for rel, record in self._staged.items():
            remove(staged_path(self.root, rel, record["generation"]))
        self._staged = {}
        self._indexes.clear()
        self._head = None
        self._present.clear()

    def _remove_temporaries(self, keep: int) -> None:
        """Stale temporaries of cut-short writes; the versions replaced by generation ``keep`` stay
        (readers of the generation before may still open them)."""
        kept = re.compile(rf"\.old-{keep}(?:\.|$)")
        places = [(self.root / "index", _INDEX_TEMPORARY), (self.root / "heads", _HEAD_TEMPORARY),
                  (self.root, _ROOT_TEMPORARY)]
        for folder, pattern in places:
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if pattern.match(entry.name) and not kept.search(entry.name):
                    remove(entry)
        boundary("cleaned")

    def _record(self, rel: str) -> dict | None:
        return self.state.artifacts.get(rel) if self.state.exists else None

    def _artifact_present(self, rel: str) -> bool:
        if rel not in self._present:
            record = self._record(rel)
            if rel in self._staged:
                present = True
            elif record is None:
                live = self.root / rel
                present = (live / "manifest.json").exists() if rel.startswith("index/") else live.is_file()
            else:
                present = locate(self.root, rel, record, self.state.number) is not None
            self._present[rel] = present
        return self._present[rel]

    def _load(self, rel: str, loader):
        if rel in self._staged:  # this writer's own pending version
            return loader(staged_path(self.root, rel, self._staged[rel]["generation"]))
        return load_artifact(self.root, rel, self._record(rel), loader, self.state.number)

    def set_extractors(self, choices: dict[str, str]) -> None:
        """Point aspects at other extractors; their indexes are rebuilt on the next update (the
        settings are committed with it)."""
        aspects = dict(self.config.aspects)
        for aspect, name in choices.items():
            create_extractor(name)
            old = aspects.get(aspect)
            pca = old.pca_dims if old else None
            aspects[aspect] = dataclasses.replace(old, extractor=name) if old else AspectConfig(name, pca)
        with self.writing():
            self.config = dataclasses.replace(self.config, aspects=aspects)
            self._stage(SETTINGS, self.config.save, "settings")
            for aspect in choices:
                self._indexes.pop(aspect, None)

    def close(self) -> None:
        self.catalog.close()
        self.cache.close()

    # -- extractors and features ----------------------------------------------------------------
    def extractor(self, aspect: str) -> Extractor:
        if aspect not in self.config.aspects:
            raise CollectionError(f"unknown aspect {aspect!r}", f"this collection has: {', '.join(self.config.aspects)}")
        return create_extractor(self.config.aspects[aspect].extractor)

    def texts(self) -> dict[int, str]:
        """The text of every artwork that has some, from the configured text columns."""
        by_id: dict[int, dict[str, str]] = {}
        for column in self.config.text_columns:
            for artwork_id, value in self.catalog.column(column).items():
                by_id.setdefault(artwork_id, {})[column] = value
        return {i: t for i, meta in by_id.items() if (t := artwork_text(meta, self.config.text_columns))}

    def extract(self, extractor_names: list[str] | None = None, reporter: Reporter = QUIET,
                device: str | None = None, ray: str | None = None) -> ExtractionReport:
        """Compute every missing feature of the configured (or given) extractors. ``device``: where
        the extractors run (``artlens.devices``; default auto); ``ray``: decode and extract images on
        the Ray cluster at this address (``auto``: see ``artlens.features.distributed.connect``)."""
        names = extractor_names or self.config.extractor_names() + self._head_extractors()
        for name in names:
            create_extractor(name)  # fail early on unknown names
        device = device_name(device)
        runner = None
        if ray is not None:  # imports Ray (the `ray` extra) only now
            distributed.connect(ray)
            runner = distributed.RayRunner()
        report = ExtractionReport()
        items = [(md5, path) for _, md5, path in self.catalog.iter_artworks()]
        image_names = [n for n in names if isinstance(create_extractor(n), ImageExtractor)]
        extract_images(items, image_names, self.cache, self.config.batch_size, self.config.max_pixels,
                       self.config.crop_letterbox, reporter, report, device=device, runner=runner)
        text_names = [n for n in names if n not in image_names]
        if text_names:
            extract_texts(list(self.texts().values()), text_names, self.cache, reporter=reporter, report=report,
                          device=device)
        return report

    def ensure_features(self, extractor_names: list[str], ids: list[int] | None = None, reporter: Reporter = QUIET,
                        reason: str = "") -> ExtractionReport | None:
        """Compute the features of ``extractor_names`` that artworks (all by default) lack, from the
        catalogued image files (or texts), cached like any other; None when nothing was missing.
        ``reason`` (e.g. "the head reads") starts the one-line notice printed before extracting."""
        md5s = self.catalog.md5s()
        ids = sorted(md5s) if ids is None else [int(i) for i in ids if int(i) in md5s]
        texts = None
        lacking_images: dict[str, set[str]] = {}
        lacking_texts: dict[str, list[str]] = {}
        for name in dict.fromkeys(extractor_names):
            extractor = create_extractor(name)
            have = self.cache.keys(extractor.id)
            if extractor.modality == "text":
                texts = self.texts() if texts is None else texts
                todo = {text_key(texts[i]): texts[i] for i in ids if i in texts and text_key(texts[i]) not in have}
                if todo:
                    lacking_texts[name] = list(todo.values())
            elif todo := {md5s[i] for i in ids if md5s[i] not in have}:
                lacking_images[name] = todo
        if not lacking_images and not lacking_texts:
            return None
        counts = {**{n: len(v) for n, v in lacking_images.items()}, **{n: len(v) for n, v in lacking_texts.items()}}
        what = ", ".join(f"{n} ({c} artwork{'s' if c != 1 else ''})" for n, c in counts.items())
        reporter.notice(f"{reason or 'computing'} features not extracted in {self.root} yet: {what}; "
                        "extracting them once (cached for next time)")
        report = ExtractionReport()
        if lacking_images:
            wanted = set().union(*lacking_images.values())
            items = [(md5, path) for _, md5, path in self.catalog.iter_artworks() if md5 in wanted]
            extract_images(items, list(lacking_images), self.cache, self.config.batch_size, self.config.max_pixels,
                           self.config.crop_letterbox, reporter, report)
        for name, todo in lacking_texts.items():
            extract_texts(todo, [name], self.cache, reporter=reporter, report=report)
        if report.failed:
            path, why = report.failed[0]
            reporter.notice(f"{len(report.failed)} image file(s) could not be read, e.g. {why}")
        return report

    def raw_vectors(self, extractor_name: str, ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cached vectors of an extractor for artworks (all by default): (ids that have one, vectors)."""
        extractor = create_extractor(extractor_name)
        md5s = self.catalog.md5s()
        ids = sorted(md5s) if ids is None else [int(i) for i in ids]
        if extractor.modality == "text":
            texts = self.texts()
            ids = [i for i in ids if i in texts]
            keys = [text_key(texts[i]) for i in ids]
        else:
            ids = [i for i in ids if i in md5s]
            keys = [md5s[i] for i in ids]
        vectors, found = self.cache.get(extractor.id, keys)
        return np.asarray(ids, dtype=np.int64)[found], vectors

    def cached_ids(self, extractor_name: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids of the artworks that have a cached vector of an extractor, their cache keys), in the
        order of ``raw_vectors``, without reading a vector."""
        extractor = create_extractor(extractor_name)
        md5s = self.catalog.md5s()
        if extractor.modality == "text":
            texts = self.texts()
            pairs = [(i, text_key(texts[i])) for i in sorted(md5s) if i in texts]
        else:
            pairs = [(i, md5s[i]) for i in sorted(md5s)]
        cached = self.cache.keys(extractor.id)
        pairs = [(i, key) for i, key in pairs if key in cached]
        return (np.asarray([i for i, _ in pairs], dtype=np.int64),
                np.asarray([key for _, key in pairs], dtype=object))

    def vector_chunks(self, extractor_name: str, ids: np.ndarray, keys: np.ndarray) -> Chunks:
        """The cached vectors of ``ids`` (with their ``keys``, from ``cached_ids``) read from the cache
        ``index.pq_add_batch`` at a time, each time the result is called (and those of some rows, by
        ``take``): what an index is built from without holding every vector."""
        return _CachedVectors(self.cache, create_extractor(extractor_name).id, ids, keys,
                              max(1, int(self.config.index.pq_add_batch)))

    def ingest(self, folder: str | Path, labels: str | Path | None = None, features: bool = True,
               reindex: bool = False, reporter: Reporter = QUIET, wait: bool = False,
               device: str | None = None, ray: str | None = None) -> dict:
        """Catalog a folder (and its metadata CSV), then extract missing features and bring every index
        up to date: the one ingest that the CLI, the API, the demo and the registries run. Returns the
        report as ``artlens ingest --json`` prints it. Holds the writer lock (``wait``: queue behind
        another writer) and commits catalog and indexes as one generation. ``device`` and ``ray``: where
        features are extracted (see ``extract``)."""
        with self.writing(wait, reporter, publish=True):
            report = ingest_folder(self.catalog, folder, labels, self.config.max_pixels, reporter=reporter)
            summary: dict = {"ingest": report.as_dict()}
            if features:
                extraction = self.extract(reporter=reporter, device=device, ray=ray)
                summary["features"] = {"computed": extraction.computed, "failed": [
                    {"md5": m, "reason": r} for m, r in extraction.failed], "seconds": round(extraction.seconds, 2)}
                summary["indexes"] = self.update_indexes(rebuild=reindex)
        return summary

    # -- indexes --------------------------------------------------------------------------------
    def index_dir(self, aspect: str) -> Path:
        return self.root / "index" / aspect

    def indexed_aspects(self) -> list[str]:
        aspects = [a for a in self.config.aspects if a in self._indexes or self._artifact_present(f"index/{a}")]
        learned = LEARNED_ASPECT in self._indexes or (
            self._artifact_present(HEAD) and self._artifact_present(f"index/{LEARNED_ASPECT}"))
        return aspects + [LEARNED_ASPECT] if learned and LEARNED_ASPECT not in aspects else aspects

    def _load_index(self, aspect: str, expected_id: str) -> AspectIndex:
        index = self._load(f"index/{aspect}", lambda path: AspectIndex.load(path, expected_id, self.config.index))
        if index is None:
            raise CollectionError(f"no index at {self.index_dir(aspect)}",
                                  "run `artlens ingest DIR --collection PATH` to build it")
        return index

    def index(self, aspect: str) -> AspectIndex:
        if aspect == LEARNED_ASPECT and aspect not in self._indexes and aspect not in self.config.aspects:
            head = self.head()
            if head is None:
                raise CollectionError("this collection has no learned head",
                                      "train one: artlens train --collection PATH --label COLUMN (or pass --head FILE)")
            self._indexes[aspect] = self._load_index(aspect, head.id)
        if aspect not in self._indexes:
            extractor = self.extractor(aspect)
            self._indexes[aspect] = self._load_index(aspect, extractor.id)
        return self._indexes[aspect]

    def load_indexes(self) -> list[str]:
        """Load every index (and the head) now, e.g. before serving: later requests read nothing
        from disk. Returns the indexed aspects."""
        aspects = self.indexed_aspects()
        for aspect in aspects:
            self.index(aspect)
        return aspects

    def fast_index(self, aspect: str, reporter: Reporter = QUIET) -> AspectIndex:
        """The aspect's index with the binary codes of fast search. Codes missing from an index built
        before they existed are made now from its stored vectors and saved with it (as a new
        generation, when no other writer is at work; else they are kept in memory)."""
        if not self.config.index.hash_bits:
            raise CollectionError(
                "fast search needs binary codes, and this collection has index.hash_bits = 0",
                "set hash_bits (e.g. 128) under [index] in collection.toml, or search without --fast",
            )
        index = self.index(aspect)
        if index.codes is None and index.add_codes(self.config.index.hash_bits) and self._artifact_present(f"index/{aspect}"):
            self._keep_codes(aspect, index, reporter)
        return index

    def _keep_codes(self, aspect: str, index: AspectIndex, reporter: Reporter) -> None:
        if self._depth:
            self._stage_index(aspect, index)
            return
        why = "the collection is read-only" if self.read_only else "another process is writing the collection"
        if not self.read_only and self.lock.try_acquire():
            try:
                if read_generation(self.root).as_dict() != self.state.as_dict():
                    why = "the collection changed since it was opened"
                else:
                    self._depth = 1
                    self._stage_index(aspect, index)
                    self._commit()
                    return
            except OSError as exc:
                why = str(exc)
                self._abandon()
                self._indexes[aspect] = index
            finally:
                self._depth = 0
                self.lock.release()
                self._reading()
        reporter.notice(f"the fast-search codes of {aspect} are kept in memory only ({why})")

    def update_indexes(self, rebuild: bool = False, aspects: list[str] | None = None, wait: bool = False) -> dict[str, int]:
        """Bring every aspect's index in line with the catalog and cache; returns counts per aspect.
        Commits the new indexes, and the catalog as they show it, as one generation. The cached
        vectors are read in batches (``vector_chunks``): an ivf or ivfpq build, and every update,
        holds one batch of them at a time."""
        counts: dict[str, int] = {}
        with self.writing(wait, publish=True):
            if (aspects is None or LEARNED_ASPECT in aspects) and self._artifact_present(HEAD):
                counts[LEARNED_ASPECT] = self._update_learned(rebuild)
            for aspect in [a for a in aspects or list(self.config.aspects) if a in self.config.aspects]:
                spec = self.config.aspects[aspect]
                extractor = create_extractor(spec.extractor)
                ids, keys = self.cached_ids(spec.extractor)
                if len(ids) == 0:
                    counts[aspect] = 0
                    continue
                index = None
                if not rebuild and self._artifact_present(f"index/{aspect}") and aspect != "text":
                    try:  # a fresh copy: the loaded one may be serving this process's readers meanwhile
                        index = self._load(f"index/{aspect}",
                                           lambda path: AspectIndex.load(path, extractor.id, self.config.index))
                    except CollectionError:
                        index = None
                if index is not None:
                    present = set(index.ids().tolist())
                    wanted = set(ids.tolist())
                    removed, added = present - wanted, wanted - present
                    refit = index.components is not None and len(wanted) >= 2 * index.manifest.pca_fitted_on
                    if (removed and index.manifest.kind in ("hnsw", "ivf")) or refit:  # approximate indexes cannot drop vectors in place
                        index = None
                    elif not removed and not added:  # unchanged: nothing to commit
                        self._indexes.setdefault(aspect, index)
                        counts[aspect] = len(index)
                        continue
                    else:
                        index.remove(sorted(removed))
                        mask = np.isin(ids, sorted(added))
                        for batch_ids, raw in self.vector_chunks(spec.extractor, ids[mask], keys[mask])():
                            index.add(batch_ids, raw)
                if index is None:
                    index = AspectIndex.build_chunks(aspect, spec.extractor, extractor.id,
                                                     self.vector_chunks(spec.extractor, ids, keys), len(ids),
                                                     extractor.dim, spec.pca_dims, self.config.index)
                self._stage_index(aspect, index)
                counts[aspect] = len(index)
        return counts

    # -- learned head ---------------------------------------------------------------------------
    def head_file(self) -> Path:
        return self.root / "heads" / f"{LEARNED_ASPECT}.pt"

    def head(self):
        """The head behind the ``learned`` aspect: one attached with :meth:`attach_head`, else the
        collection's ``heads/learned.pt`` (the version of its generation), else None."""
        if self._head is None and self._artifact_present(HEAD):
            self._head = self._load(HEAD, load_head)
        return self._head

    def _update_learned(self, rebuild: bool) -> int:
        """Re-embed the collection with its head, unless its index already holds every artwork."""
        head = self.head()
        if not rebuild and self._artifact_present(f"index/{LEARNED_ASPECT}"):
            try:
                index = self.index(LEARNED_ASPECT)
            except CollectionError:
                index = None
            if index is not None and set(index.ids().tolist()) == set(self.catalog.ids()):
                return len(index)
        return self.attach_head(head, persist=True, save_head=False)

    def learned_vectors(self, head, ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings by ``head`` of the artworks (all by default) that have its input features.
        Fails when the head was trained on other extractors or its features are not extracted here."""
        features = gather_features(self, head.config.inputs, ids)
        return features.ids, embed_features(head, features)

    def attach_head(self, head, persist: bool = False, save_head: bool = True) -> int:
        """Make ``head`` the ``learned`` aspect: embed and index every artwork. In memory only (a head
        from elsewhere, ``--head FILE``), or with ``persist`` saved as the collection's own head and
        index. Returns the number of artworks indexed."""
        if persist:
            with self.writing():  # the head and its index commit together
                ids, vectors = self.learned_vectors(head)
                index = AspectIndex.build(LEARNED_ASPECT, head.kind, head.id, ids, vectors, None, self.config.index)
                if save_head:
                    self._stage(HEAD, head.save, "file")
                self._stage_index(LEARNED_ASPECT, index)
                self._head = head
            return len(index)
        ids, vectors = self.learned_vectors(head)
        index = AspectIndex.build(LEARNED_ASPECT, head.kind, head.id, ids, vectors, None, self.config.index)
        self._head = head
        self._indexes[LEARNED_ASPECT] = index
        return len(index)

    def _head_extractors(self) -> list[str]:
        head = self.head() if self._artifact_present(HEAD) else None
        return [s.extractor for s in head.config.inputs if s.extractor not in self.config.extractor_names()] if head else []

    # -- summary --------------------------------------------------------------------------------
    def stats(self) -> dict:
        extractors = {}
        for name in self.config.extractor_names():
            ex = create_extractor(name)
            extractors[name] = {"id": ex.id, "aspect": ex.aspect, "dim": ex.dim, "cached": self.cache.count(ex.id)}
        indexes = {}
        for aspect in self.indexed_aspects():
            index = self.index(aspect)
            m = index.manifest
            indexes[aspect] = {"extractor": m.extractor_id, "count": m.count, **index.describe()}
        columns = self.catalog.metadata_columns()
        return {
            "collection": str(self.root),
            "generation": self.generation,
            "read_only": self.read_only,
            "artworks": len(self.catalog),
            "skipped": len(self.catalog.skipped()),
            "files": len(self.catalog.file_states()),
            "extractors": extractors,
            "indexes": indexes,
            "metadata_columns": columns,
            "heads": sorted(p.stem for p in (self.root / "heads").glob("*.pt")) if (self.root / "heads").exists() else [],
        }


@dataclasses.dataclass
class _CachedVectors:
    """``Chunks`` over a feature cache (see ``Collection.vector_chunks``)."""

    cache: FeatureCache
    extractor_id: str
    ids: np.ndarray
    keys: np.ndarray
    batch: int

    def __call__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self.take(np.arange(len(self.ids)))

    def take(self, rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The (ids, vectors) batches of the given rows, in their order (rows whose vector is gone left out)."""
        for start in range(0, len(rows), self.batch):
            part = rows[start : start + self.batch]
            vectors, found = self.cache.get(self.extractor_id, self.keys[part].tolist())
            if found.any():
                yield self.ids[part][found], vectors


def _load_settings(root: Path, state: Generation) -> CollectionConfig:
    """The settings of generation ``state``: staged by it and not yet renamed in, else the live file."""
    record = state.artifacts.get(SETTINGS)
    if record is not None:
        staged = staged_path(Path(root), SETTINGS, record["generation"])
        if staged.exists():
            try:
                return CollectionConfig.load(staged)
            except (ArtlensError, OSError):  # renamed in meanwhile
                pass
    return CollectionConfig.load(Path(root) / SETTINGS)
