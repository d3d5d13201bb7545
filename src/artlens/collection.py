"""A collection directory: catalog, feature cache, per-aspect indexes, heads, and its settings.

    COLLECTION/
      collection.toml     settings (CollectionConfig)
      catalog.sqlite      artworks, files, metadata, skipped files
      features.sqlite     cached vectors by extractor id and content key
      index/<aspect>/     FAISS index + PCA + manifest per aspect
      heads/              learned heads
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from artlens.catalog.db import Catalog
from artlens.catalog.ingest import ingest_folder
from artlens.config import AspectConfig, CollectionConfig
from artlens.errors import CollectionError
from artlens.features import Extractor, ImageExtractor, create_extractor
from artlens.features.cache import FeatureCache
from artlens.features.extract import (
    ExtractionReport,
    artwork_text,
    extract_images,
    extract_texts,
    text_key,
)
from artlens.index import AspectIndex
from artlens.models import load_head
from artlens.models.inputs import embed_features, gather_features
from artlens.progress import QUIET, Reporter

DEFAULT_COLLECTION = Path("artlens-collection")
LEARNED_ASPECT = "learned"  # the aspect whose vectors come from a trained head over several extractors


class Collection:
    def __init__(self, root: str | Path, config: CollectionConfig):
        self.root = Path(root)
        self.config = config
        self.catalog = Catalog(self.root / "catalog.sqlite")
        self.cache = FeatureCache(self.root / "features.sqlite")
        self._indexes: dict[str, AspectIndex] = {}
        self._head = None

    @classmethod
    def open(cls, root: str | Path, create: bool = False, config: CollectionConfig | None = None) -> "Collection":
        """Open a collection; with ``create`` make it (and its settings) if it does not exist."""
        root = Path(root)
        settings = root / "collection.toml"
        if not settings.exists():
            if not create:
                raise CollectionError(
                    f"no artlens collection at {root}",
                    "create one with `artlens ingest DIR --collection PATH`, or pass --collection",
                )
            root.mkdir(parents=True, exist_ok=True)
            (config or CollectionConfig()).save(settings)
        return cls(root, CollectionConfig.load(settings))

    def set_extractors(self, choices: dict[str, str]) -> None:
        """Point aspects at other extractors; their indexes are rebuilt on the next update."""
        aspects = dict(self.config.aspects)
        for aspect, name in choices.items():
            create_extractor(name)
            old = aspects.get(aspect)
            pca = old.pca_dims if old else None
            aspects[aspect] = dataclasses.replace(old, extractor=name) if old else AspectConfig(name, pca)
        self.config = dataclasses.replace(self.config, aspects=aspects)
        self.config.save(self.root / "collection.toml")
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

    def extract(self, extractor_names: list[str] | None = None, reporter: Reporter = QUIET) -> ExtractionReport:
        """Compute every missing feature of the configured (or given) extractors."""
        names = extractor_names or self.config.extractor_names() + self._head_extractors()
        for name in names:
            create_extractor(name)  # fail early on unknown names
        report = ExtractionReport()
        items = [(md5, path) for _, md5, path in self.catalog.iter_artworks()]
        image_names = [n for n in names if isinstance(create_extractor(n), ImageExtractor)]
        extract_images(items, image_names, self.cache, self.config.batch_size, self.config.max_pixels,
                       self.config.crop_letterbox, reporter, report)
        text_names = [n for n in names if n not in image_names]
        if text_names:
            extract_texts(list(self.texts().values()), text_names, self.cache, reporter=reporter, report=report)
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

    def ingest(self, folder: str | Path, labels: str | Path | None = None, features: bool = True,
               reindex: bool = False, reporter: Reporter = QUIET) -> dict:
        """Catalog a folder (and its metadata CSV), then extract missing features and bring every index
        up to date: the one ingest that the CLI, the API, the demo and the registries run. Returns the
        report as ``artlens ingest --json`` prints it."""
        report = ingest_folder(self.catalog, folder, labels, self.config.max_pixels, reporter=reporter)
        summary: dict = {"ingest": report.as_dict()}
        if features:
            extraction = self.extract(reporter=reporter)
            summary["features"] = {"computed": extraction.computed, "failed": [
                {"md5": m, "reason": r} for m, r in extraction.failed], "seconds": round(extraction.seconds, 2)}
            summary["indexes"] = self.update_indexes(rebuild=reindex)
        return summary

    # -- indexes --------------------------------------------------------------------------------
    def index_dir(self, aspect: str) -> Path:
        return self.root / "index" / aspect

    def indexed_aspects(self) -> list[str]:
        aspects = [a for a in self.config.aspects if (self.index_dir(a) / "manifest.json").exists()]
        learned = LEARNED_ASPECT in self._indexes or (
            self.head_file().exists() and (self.index_dir(LEARNED_ASPECT) / "manifest.json").exists())
        return aspects + [LEARNED_ASPECT] if learned and LEARNED_ASPECT not in aspects else aspects

    def index(self, aspect: str) -> AspectIndex:
        if aspect == LEARNED_ASPECT and aspect not in self._indexes and aspect not in self.config.aspects:
            head = self.head()
            if head is None:
                raise CollectionError("this collection has no learned head",
                                      "train one: artlens train --collection PATH --label COLUMN (or pass --head FILE)")
            self._indexes[aspect] = AspectIndex.load(self.index_dir(aspect), head.id, self.config.index)
        if aspect not in self._indexes:
            extractor = self.extractor(aspect)
            self._indexes[aspect] = AspectIndex.load(self.index_dir(aspect), extractor.id, self.config.index)
        return self._indexes[aspect]

    def fast_index(self, aspect: str, reporter: Reporter = QUIET) -> AspectIndex:
        """The aspect's index with the binary codes of fast search. Codes missing from an index built
        before they existed are made now from its stored vectors and saved with it."""
        if not self.config.index.hash_bits:
            raise CollectionError(
                "fast search needs binary codes, and this collection has index.hash_bits = 0",
                "set hash_bits (e.g. 128) under [index] in collection.toml, or search without --fast",
            )
        index = self.index(aspect)
        if index.codes is None and index.add_codes(self.config.index.hash_bits) \
                and (self.index_dir(aspect) / "manifest.json").exists():
            try:
                index.save(self.index_dir(aspect))
            except OSError as exc:  # e.g. a read-only collection: the codes stay in memory for this process
                reporter.notice(f"could not save the fast-search codes of {aspect} ({exc}); they are kept in memory")
        return index

    def update_indexes(self, rebuild: bool = False, aspects: list[str] | None = None) -> dict[str, int]:
        """Bring every aspect's index in line with the catalog and cache; returns counts per aspect."""
        counts: dict[str, int] = {}
        if (aspects is None or LEARNED_ASPECT in aspects) and self.head_file().exists():
            counts[LEARNED_ASPECT] = self.attach_head(self.head())
            self._indexes[LEARNED_ASPECT].save(self.index_dir(LEARNED_ASPECT))
        for aspect in [a for a in aspects or list(self.config.aspects) if a in self.config.aspects]:
            spec = self.config.aspects[aspect]
            extractor = create_extractor(spec.extractor)
            ids, raw = self.raw_vectors(spec.extractor)
            folder = self.index_dir(aspect)
            if len(ids) == 0:
                counts[aspect] = 0
                continue
            index = None
            if not rebuild and (folder / "manifest.json").exists() and aspect != "text":
                try:
                    index = AspectIndex.load(folder, extractor.id, self.config.index)
                except CollectionError:
                    index = None
            if index is not None:
                present = set(index.ids().tolist())
                wanted = set(ids.tolist())
                removed, added = present - wanted, wanted - present
                refit = index.components is not None and len(wanted) >= 2 * index.manifest.pca_fitted_on
                if (removed and index.manifest.kind in ("hnsw", "ivf")) or refit:  # approximate indexes cannot drop vectors in place
                    index = None
                else:
                    index.remove(sorted(removed))
                    mask = np.isin(ids, sorted(added))
                    index.add(ids[mask], raw[mask])
            if index is None:
                index = AspectIndex.build(aspect, spec.extractor, extractor.id, ids, raw, spec.pca_dims, self.config.index)
            index.save(folder)
            self._indexes[aspect] = index
            counts[aspect] = len(index)
        return counts

    # -- learned head ---------------------------------------------------------------------------
    def head_file(self) -> Path:
        return self.root / "heads" / f"{LEARNED_ASPECT}.pt"

    def head(self):
        """The head behind the ``learned`` aspect: one attached with :meth:`attach_head`, else the
        collection's ``heads/learned.pt``, else None."""
        if self._head is None and self.head_file().exists():
            self._head = load_head(self.head_file())
        return self._head

    def learned_vectors(self, head, ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings by ``head`` of the artworks (all by default) that have its input features.
        Fails when the head was trained on other extractors or its features are not extracted here."""
        features = gather_features(self, head.config.inputs, ids)
        return features.ids, embed_features(head, features)

    def attach_head(self, head, persist: bool = False) -> int:
        """Make ``head`` the ``learned`` aspect: embed and index every artwork. In memory only (a head
        from elsewhere, ``--head FILE``), or with ``persist`` saved as the collection's own head and
        index. Returns the number of artworks indexed."""
        ids, vectors = self.learned_vectors(head)
        index = AspectIndex.build(LEARNED_ASPECT, head.kind, head.id, ids, vectors, None, self.config.index)
        if persist:
            head.save(self.head_file())
            index.save(self.index_dir(LEARNED_ASPECT))
        self._head = head
        self._indexes[LEARNED_ASPECT] = index
        return len(index)

    def _head_extractors(self) -> list[str]:
        head = self.head() if self.head_file().exists() else None
        return [s.extractor for s in head.config.inputs if s.extractor not in self.config.extractor_names()] if head else []

    # -- summary --------------------------------------------------------------------------------
    def stats(self) -> dict:
        extractors = {}
        for name in self.config.extractor_names():
            ex = create_extractor(name)
            extractors[name] = {"id": ex.id, "aspect": ex.aspect, "dim": ex.dim, "cached": self.cache.count(ex.id)}
        indexes = {}
        for aspect in self.indexed_aspects():
            m = self.index(aspect).manifest
            indexes[aspect] = {"extractor": m.extractor_id, "count": m.count, "dim": m.dim, "kind": m.kind}
        columns = self.catalog.metadata_columns()
        return {
            "collection": str(self.root),
            "artworks": len(self.catalog),
            "skipped": len(self.catalog.skipped()),
            "files": len(self.catalog.file_states()),
            "extractors": extractors,
            "indexes": indexes,
            "metadata_columns": columns,
            "heads": sorted(p.stem for p in (self.root / "heads").glob("*.pt")) if (self.root / "heads").exists() else [],
        }
