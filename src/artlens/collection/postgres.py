"""A collection in one schema of a PostgreSQL database: the folder collection's use cases over
:mod:`artlens.postgres`'s catalog, feature cache and indexes, one transaction per writing scope."""


from __future__ import annotations

import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from artlens.collection.folder import (
    HEAD,
    LEARNED_ASPECT,
    SETTINGS,
    Collection,
)
from artlens.config import CollectionConfig
from artlens.errors import CollectionError
from artlens.features import create_extractor
from artlens.index import AspectIndex
from artlens.postgres import (
    AdvisoryLock,
    PgAspectIndex,
    PgCatalog,
    PgFeatureCache,
    Store,
    side_folder,
)
from artlens.progress import QUIET, Reporter
from artlens.storage import (
    Generation,
    boundary,
)


class PostgresCollection(Collection):
    """A collection in one schema of a PostgreSQL database (:mod:`artlens.postgres`): the same
    use cases as a folder collection. A writer holds the collection's advisory lock and makes its
    catalog, index, settings and head changes in one transaction: readers (other processes
    included) see the last commit whole, and the next generation as soon as it commits. Feature
    batches commit on their own, as the folder backend's do. ``root`` is a local folder for what
    stays beside the data (thumbnails, probe caches); ``location`` is the URL (without password)."""

    READ_ONLY = ("is opened read-only", "open it without read-only to ingest or train")

    def __init__(self, store: Store, config: CollectionConfig, read_only: bool = False, reporter: Reporter = QUIET):
        self.store = store
        self.root = side_folder(store.location)
        self.config = config
        self.read_only = read_only
        self.lock = AdvisoryLock(store)
        self.catalog = PgCatalog(store, read_only=read_only)
        self.cache = PgFeatureCache(store, read_only=read_only)
        self.state = Generation(store.generation(), {}, 0.0, True)
        self._indexes: dict[str, AspectIndex] = {}
        self._head = None
        self._present: dict[str, bool] = {}
        self._depth = 0
        self._publish = False
        self._staged: dict[str, dict] = {}
        self._changed = False
        if read_only:
            reporter.notice(f"{store.location} is opened read-only: searching and serving only")

    @classmethod
    def open_location(cls, location, create: bool = False, config: CollectionConfig | None = None,
                      read_only: bool | None = None, reporter: Reporter = QUIET) -> "PostgresCollection":
        store = Store.open(location, create=create, read_only=bool(read_only))
        try:
            data = store.artifact(SETTINGS)
            if data is None:
                if not create:
                    raise CollectionError(f"no artlens collection at {store.location}",
                                          f"create one with `artlens ingest DIR --collection '{store.location}'`")
                config = config or CollectionConfig()
                store.put_artifact(SETTINGS, _settings_bytes(config), 0)
            return cls(store, _settings_from(data) if data is not None else config, bool(read_only), reporter)
        except BaseException:
            store.close()
            raise

    @property
    def location(self) -> str:
        return str(self.store.location)

    def signature(self):
        return self.store.generation()

    @property
    def published(self) -> int:
        return self.state.number

    def _transaction(self) -> AbstractContextManager:
        return self.store.conn.transaction()  # catalog, indexes, settings and head commit together

    def _publishing(self) -> None:
        pass  # the transaction shows the writer its own rows

    def _reading(self) -> None:
        pass

    def _begin(self) -> None:
        latest = self.store.generation()
        if latest != self.state.number:  # another process committed since this object opened
            self.state = Generation(latest, {}, 0.0, True)
            self.config = _settings_from(self.store.artifact(SETTINGS))
            self._indexes.clear()
            self._head = None
        self._present.clear()
        self._staged = {}
        self._changed = False
        self.catalog.changed = False
        self.catalog.pending_generation = self.state.number + 1

    def _commit(self) -> None:
        if not self._staged and not self._changed and not self.catalog.changed:
            return
        number = self.state.number + 1
        boundary("commit")
        self.store.set_generation(number)
        self.store.drop_retired(before=number - 1)  # inside the transaction: readers of the last commit keep theirs
        self.state = Generation(number, {}, time.time(), True)
        self._staged = {}

    def _abandon(self) -> None:
        self._staged = {}
        self._indexes.clear()
        self._head = None
        self._present.clear()
        self.state = Generation(self.store.generation(), {}, 0.0, True)

    def _stage(self, rel: str, write, kind: str) -> Path:
        """Store a new version of the artifact ``rel`` (the settings, a head) as a row."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(rel).name
            write(path)
            self.store.put_artifact(rel, path.read_bytes(), self.state.number + 1)
        self._staged[rel] = {"kind": kind, "generation": self.state.number + 1}
        self._present.pop(rel, None)
        return Path(rel)

    def _stage_index(self, aspect: str, index: AspectIndex) -> None:
        if not isinstance(index, PgAspectIndex):  # e.g. a head's index built in memory
            index = PgAspectIndex.from_vectors(self.store, index, self._new_table_generation(), self.config.index)
        old = PgAspectIndex.load(self.store, aspect)
        index.manifest.generation = self.state.number + 1
        index.record()
        if old is not None and old.table != index.table:
            self.store.retire(old.table, self.state.number + 1)
        self._staged[f"index/{aspect}"] = {"kind": "table", "generation": self.state.number + 1}
        self._indexes[aspect] = index
        self._present.pop(f"index/{aspect}", None)

    def _new_table_generation(self) -> int:
        return self.state.number + 1

    def _artifact_present(self, rel: str) -> bool:
        if rel not in self._present:
            if rel.startswith("index/"):
                present = self.store.conn.execute("SELECT 1 FROM indexes WHERE aspect = %s",
                                                  (rel.split("/", 1)[1],)).fetchone() is not None
            else:
                present = self.store.artifact(rel) is not None
            self._present[rel] = present
        return self._present[rel]

    def _load(self, rel: str, loader):
        data = self.store.artifact(rel)
        if data is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(rel).name
            path.write_bytes(data)
            return loader(path)

    def _load_index(self, aspect: str, expected_id: str) -> AspectIndex:
        index = PgAspectIndex.load(self.store, aspect, expected_id, self.config.index)
        if index is None:
            raise CollectionError(f"no {aspect} index in {self.location}",
                                  f"run `artlens ingest DIR --collection '{self.location}'` to build it")
        return index

    def close(self) -> None:
        self.store.close()

    def fast_index(self, aspect: str, reporter: Reporter = QUIET) -> AspectIndex:
        if not self.config.index.hash_bits:
            raise CollectionError(
                "fast search needs binary codes, and this collection has index.hash_bits = 0",
                "set hash_bits (e.g. 128) in the collection's settings, or search without --fast")
        index = self.index(aspect)
        if index.hasher is None and isinstance(index, PgAspectIndex):
            reporter.notice(f"the {aspect} index has no fast-search codes: search without --fast, or rebuild it "
                            f"(artlens index rebuild --collection '{self.location}')")
        return index

    def update_indexes(self, rebuild: bool = False, aspects: list[str] | None = None, wait: bool = False) -> dict[str, int]:
        """Bring every aspect's table in line with the catalog and cache: new works projected with the
        stored transforms, removed ones deleted; ``rebuild`` refits the transforms on a sample and
        writes new tables. One transaction (with the catalog, for an ingest)."""
        counts: dict[str, int] = {}
        with self.writing(wait, publish=True):
            if (aspects is None or LEARNED_ASPECT in aspects) and self._artifact_present(HEAD):
                counts[LEARNED_ASPECT] = self._update_learned(rebuild)
            for aspect in [a for a in aspects or list(self.config.aspects) if a in self.config.aspects]:
                spec = self.config.aspects[aspect]
                extractor = create_extractor(spec.extractor)
                ids, raw = self.raw_vectors(spec.extractor)
                index = None
                if not rebuild and self._artifact_present(f"index/{aspect}"):
                    try:
                        index = PgAspectIndex.load(self.store, aspect, extractor.id, self.config.index)
                    except CollectionError:
                        index = None
                if len(ids) == 0 and index is None:
                    counts[aspect] = 0
                    continue
                if index is not None:
                    present = set(index.ids().tolist())
                    wanted = set(ids.tolist())
                    removed, added = sorted(present - wanted), sorted(wanted - present)
                    index.remove(removed)
                    if aspect == "text":  # an artwork's text may have changed: those rows written again
                        kept = np.isin(ids, sorted(present & wanted))
                        if kept.any():
                            stored = index.vectors(ids[kept])
                            changed = ~np.all(np.isclose(stored, index.project(raw[kept]), atol=1e-5), axis=1)
                            if changed.any():
                                index.add(ids[kept][changed], raw[kept][changed], replace=True)
                                added = sorted(set(added) | set(ids[kept][changed].tolist()))
                        if added:
                            mask = np.isin(ids, added) & ~np.isin(ids, sorted(present))
                            index.add(ids[mask], raw[mask])
                    elif added:
                        mask = np.isin(ids, added)
                        index.add(ids[mask], raw[mask])
                    if not removed and not added:
                        self._indexes[aspect] = index
                        counts[aspect] = len(index)
                        continue
                else:
                    index = PgAspectIndex.create(self.store, aspect, spec.extractor, extractor.id, ids, raw,
                                                 spec.pca_dims, self.config.index, self._new_table_generation())
                self._stage_index(aspect, index)
                counts[aspect] = len(index)
        return counts

    def attach_head(self, head, persist: bool = False, save_head: bool = True) -> int:
        if not persist:
            return super().attach_head(head, persist=False)
        with self.writing():
            ids, vectors = self.learned_vectors(head)
            index = PgAspectIndex.create(self.store, LEARNED_ASPECT, head.kind, head.id, ids, vectors, None,
                                         self.config.index, self._new_table_generation())
            if save_head:
                self._stage(HEAD, head.save, "file")
            self._stage_index(LEARNED_ASPECT, index)
            self._head = head
        return len(index)

    def stats(self) -> dict:
        out = super().stats()
        out["collection"] = self.location
        out["backend"] = "postgresql"
        out["heads"] = sorted(Path(n).stem for n in self.store.artifact_names() if n.startswith("heads/"))
        return out


def _settings_bytes(config: CollectionConfig) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / SETTINGS
        config.save(path)
        return path.read_bytes()


def _settings_from(data: bytes) -> CollectionConfig:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / SETTINGS
        path.write_bytes(data)
        return CollectionConfig.load(path)
