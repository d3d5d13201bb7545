"""A copyright registry: an artlens collection of protected works with owner and licence metadata,
plus the detectors trained on it.

    REGISTRY/
      collection.toml, catalog.sqlite, features.sqlite, index/content/   (an artlens collection)
      copyright/config.toml      detector settings (CopyrightConfig)
      copyright/manifest.json    format, feature ids, trained detectors
      copyright/robust/          projection head, descriptor index, calibrated threshold
      copyright/cvae/            the paper's VAE and the two keys of every work

A free-to-use collection is the same thing with a free licence (only its content index is used).
Every work's owner and licence are metadata columns ``owner`` and ``licence`` of the catalog.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from artlens.catalog.ingest import file_md5, scan_folder
from artlens.collection import Collection
from artlens.config import AspectConfig, CollectionConfig
from artlens.copyright.config import CVAE_WARNING, DETECTORS, CopyrightConfig
from artlens.copyright.cvae import (
    CVAEKeyDetector,
    latent_means,
    thumbnail_extractor,
    train_cvae,
)
from artlens.copyright.extractors import register_extractors
from artlens.copyright.general import load_general
from artlens.copyright.distractors import distractor_taps, raise_to_floor
from artlens.copyright.robust import (
    ProjectionHead,
    RobustDetector,
    registry_calibration,
    train_calibrated_head,
    train_head,
)
from artlens.copyright.taps import COPY_TAPS
from artlens.copyright.views import compute_views, view_keys
from artlens.devices import device_name
from artlens.errors import ArtifactMismatchError, CollectionError
from artlens.features import create_extractor
from artlens.files import write_json
from artlens.progress import QUIET, Reporter
from artlens.settings import with_changes

MANIFEST_FORMAT = 2  # 2: the robust detector records its head ("general" or "registry") and calibration
OWNER, LICENCE = "owner", "licence"
CONTENT_EXTRACTOR = "effnet-lite0"
REGISTRY_COLLECTION = CollectionConfig(aspects={"content": AspectConfig(CONTENT_EXTRACTOR)},
                                       weights={"content": 1.0}, text_columns=("title",))
_REBUILD = "rebuild its detectors: artlens registry train --registry {root}"
_UPGRADE = ("upgrade it (re-encodes the works with the general copy head and recalibrates in minutes; works and "
            "owners are kept): artlens registry train --registry {root} --detectors robust")


def check_image_folder(folder: str | Path) -> Path:
    """The folder, resolved, if it exists and holds image files; else a CollectionError (nothing written)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CollectionError(f"{folder} is not a folder of images", "give `artlens registry add` a folder that exists")
    if not scan_folder(folder.resolve())[0]:
        raise CollectionError(f"no image files under {folder}", "point `artlens registry add` at a folder of images")
    return folder.resolve()


class CopyrightRegistry:
    def __init__(self, collection: Collection, config: CopyrightConfig):
        register_extractors([config.cvae.image_size])
        self.collection = collection
        self.config = config
        self._detectors: dict[str, object] = {}

    @property
    def root(self) -> Path:
        return self.collection.root

    @property
    def folder(self) -> Path:
        return self.root / "copyright"

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, create: bool = False, config: CopyrightConfig | None = None,
             allow_rebuild: bool = False, changes: Mapping[str, Any] | None = None) -> "CopyrightRegistry":
        """Open a registry (``create`` makes it). Fails, changing nothing, when the registry's detectors
        were built from features this artlens does not compute, unless ``allow_rebuild``. ``changes``
        (as :func:`artlens.settings.with_changes` takes them; None values: not given) are applied to the
        stored settings (or ``config``) and saved."""
        path = Path(path)
        register_extractors()  # the manifest check below names the copy-taps extractor
        if not (path / "collection.toml").exists() and not create:
            raise CollectionError(f"no copyright registry at {path}",
                                  "create one with `artlens registry add DIR --owner NAME --registry PATH`")
        manifest = _read_json(path / "copyright" / "manifest.json")
        if manifest is not None and not allow_rebuild:
            _check_manifest(path, manifest)
        if not create and manifest is None:
            _refuse_plain_collection(path)
        settings = path / "copyright" / "config.toml"
        stored = CopyrightConfig.load(settings) if settings.exists() else None
        chosen = with_changes(config or stored or CopyrightConfig(), dict(changes or {}))  # bad values: nothing made
        collection = Collection.open(path, create=create, config=REGISTRY_COLLECTION)
        if CONTENT_EXTRACTOR not in collection.config.extractor_names():
            raise CollectionError(f"{path} has no {CONTENT_EXTRACTOR} content aspect",
                                  "use a registry made by `artlens registry add`, or a collection with default settings")
        if chosen != stored:
            chosen.save(collection.root / "copyright" / "config.toml")
        return cls(collection, chosen)

    def close(self) -> None:
        self.collection.close()

    # -- works and owners -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.collection.catalog)

    def owners(self) -> dict[str, dict]:
        """{owner: {"works": n, "licences": {licence: n}}}."""
        catalog = self.collection.catalog
        owners, licences = catalog.column(OWNER), catalog.column(LICENCE)
        out: dict[str, dict] = {}
        for artwork_id, owner in owners.items():
            entry = out.setdefault(owner, {"works": 0, "licences": Counter()})
            entry["works"] += 1
            entry["licences"][licences.get(artwork_id, "")] += 1
        return {o: {"works": e["works"], "licences": dict(e["licences"])} for o, e in sorted(out.items())}

    def add(self, folder: str | Path, owner: str, licence: str | None = None, labels: str | Path | None = None,
            train: bool = True, reporter: Reporter = QUIET, device: str | None = None) -> dict:
        """Register (or refresh) every image under ``folder`` as ``owner``'s, then bring the features and
        detectors up to date. Unreadable files are skipped and reported. ``device``: where features are
        extracted (``artlens.devices``; default auto)."""
        if not owner.strip():
            raise CollectionError("an owner is needed", "pass --owner NAME")
        folder = check_image_folder(folder)
        self._refuse_other_owners(folder, owner.strip())
        catalog = self.collection.catalog
        # catalogued as any collection is; the registry's own features and indexes follow in refresh
        started = time.perf_counter()
        summary = self.collection.ingest(folder, labels, features=False, reporter=reporter)
        files = catalog.file_states(under=folder)
        with catalog.transaction():
            for artwork_id in sorted({f.artwork_id for f in files.values()}):
                work = catalog.get(artwork_id)
                fields = {**work.metadata, OWNER: owner.strip()}
                if licence is not None:
                    fields[LICENCE] = licence
                fields.setdefault(LICENCE, "all rights reserved")
                catalog.set_metadata(artwork_id, fields)
        summary["works"] = len(self)
        ingest_s = time.perf_counter() - started
        summary.update(self.refresh(train=train, reporter=reporter, device=device))
        summary["timings"] = {"ingest_s": round(ingest_s, 2), **summary.get("timings", {}),
                              "total_s": round(time.perf_counter() - started, 2)}
        return summary

    def _refuse_other_owners(self, folder: Path, owner: str) -> None:
        """Works under ``folder`` (same file, or the same bytes elsewhere) that are registered to another
        owner are never handed over silently: ownership changes only through ``registry update``."""
        catalog = self.collection.catalog
        owners = catalog.column(OWNER)
        if not owners:
            return
        known = catalog.file_states(under=folder)
        taken: dict[str, list[str]] = {}
        for path in scan_folder(folder)[0]:
            state = known.get(str(path))
            try:
                st = path.stat()
                if state is not None and (state.size_bytes, state.mtime_ns) == (st.st_size, st.st_mtime_ns):
                    artwork_id = state.artwork_id
                else:
                    work = catalog.by_md5(file_md5(path))
                    artwork_id = work.id if work is not None else None
            except OSError:
                continue  # unreadable: ingest skips and reports it
            other = owners.get(artwork_id) if artwork_id is not None else None
            if other is not None and other != owner:
                taken.setdefault(other, []).append(path.name)
        if taken:
            other, names = max(taken.items(), key=lambda kv: len(kv[1]))
            total = sum(len(v) for v in taken.values())
            raise CollectionError(
                f"{total} work(s) under {folder} are already registered to another owner "
                f"({', '.join(f'{o}: {len(v)}' for o, v in sorted(taken.items()))}; e.g. {names[0]} is {other!r}'s); "
                "nothing was changed",
                f"if the rights really changed hands: artlens registry update --owner {other!r} --new-owner {owner!r} "
                "--registry PATH (all of that owner's works), or registry remove --owner ... first",
            )

    def remove_owner(self, owner: str, reporter: Reporter = QUIET) -> int:
        """Forget every work of ``owner``; returns how many."""
        catalog = self.collection.catalog
        ids = [i for i, o in catalog.column(OWNER).items() if o == owner]
        if not ids:
            raise CollectionError(f"no works of owner {owner!r} in {self.root}",
                                  f"owners here: {', '.join(self.owners()) or 'none'}")
        wanted = set(ids)
        paths = [p for p, f in catalog.file_states().items() if f.artwork_id in wanted]
        with catalog.transaction():
            catalog.remove_files(paths)
            catalog.drop_orphans()
        self.refresh(train=False, reporter=reporter)
        return len(ids)

    def update_owner(self, owner: str, new_owner: str | None = None, licence: str | None = None) -> int:
        """Rename an owner and/or change the licence of all their works; returns how many works."""
        catalog = self.collection.catalog
        ids = [i for i, o in catalog.column(OWNER).items() if o == owner]
        if not ids:
            raise CollectionError(f"no works of owner {owner!r} in {self.root}",
                                  f"owners here: {', '.join(self.owners()) or 'none'}")
        with catalog.transaction():
            for artwork_id in ids:
                fields = dict(catalog.get(artwork_id).metadata)
                if new_owner:
                    fields[OWNER] = new_owner
                if licence is not None:
                    fields[LICENCE] = licence
                catalog.set_metadata(artwork_id, fields)
        return len(ids)

    def work(self, artwork_id: int):
        return self.collection.catalog.get(artwork_id)

    def works(self) -> tuple[np.ndarray, list[str]]:
        """(ids, md5s) of every registered work, by id."""
        md5s = self.collection.catalog.md5s()
        ids = sorted(md5s)
        return np.asarray(ids, np.int64), [md5s[i] for i in ids]

    # -- features and detectors -----------------------------------------------------------------
    def _extractor_names(self, detectors: tuple[str, ...] | None = None) -> list[str]:
        names = [CONTENT_EXTRACTOR, COPY_TAPS]
        if "cvae" in (detectors or self.config.detectors):
            names.append(thumbnail_extractor(self.config.cvae.image_size).name)
        return names

    def _cached(self, extractor_name: str, keys: list[str]) -> np.ndarray:
        extractor = create_extractor(extractor_name)
        vectors, found = self.collection.cache.get(extractor.id, keys)
        if not found.all():
            raise CollectionError(f"{int((~found).sum())} registered works have no {extractor_name} features",
                                  f"run `artlens registry train --registry {self.root}`")
        return vectors

    def trained(self) -> list[str]:
        """Trained detectors, the configured ones first (the first is the default of a check)."""
        manifest = _read_json(self.folder / "manifest.json") or {}
        order = list(dict.fromkeys([*self.config.detectors, *DETECTORS]))
        return [d for d in order if d in manifest.get("detectors", {})]

    def refresh(self, train: bool = True, reporter: Reporter = QUIET, device: str | None = None) -> dict:
        """Compute missing features, update the content index, and index new works in the trained
        detectors (training the detectors first if there are none yet and ``train``)."""
        started = time.perf_counter()
        extraction = self.collection.extract(
            self._extractor_names(tuple(self.config.detectors) + tuple(self.trained())), reporter=reporter,
            device=device)
        timings = {"features_s": round(time.perf_counter() - started, 2)}
        started = time.perf_counter()
        self.collection.update_indexes(aspects=["content"])
        timings["content_index_s"] = round(time.perf_counter() - started, 2)
        out = {"features_failed": [{"md5": m, "reason": r} for m, r in extraction.failed], "timings": timings}
        started = time.perf_counter()
        if train and not self.trained():
            out["trained"] = self.train(reporter=reporter, device=device)
            timings["detectors_s"] = round(time.perf_counter() - started, 2)
            return out
        ids, md5s = self.works()
        md5_of = dict(zip(ids.tolist(), md5s))
        for name in self.trained():
            detector = self.detector(name)
            if name == "robust":
                changed = detector.sync(ids, lambda new: self._cached(COPY_TAPS, [md5_of[i] for i in new]))
                timings["encode_s"] = round(time.perf_counter() - started, 2)
                if changed and detector.info.get("head") == "general" and self.config.robust.calibrate:
                    timings.update(self._calibrate_general(detector, md5s, reporter, device_name(device)))
            else:
                thumbs = thumbnail_extractor(self.config.cvae.image_size)
                changed = detector.sync(ids, lambda new: latent_means(
                    detector.model, thumbs.unflatten(self._cached(thumbs.name, [md5_of[i] for i in new]))))
            if changed:
                detector.save(self.folder / name)
                self._record(name, {"works": len(ids), "threshold": getattr(detector, "threshold", None),
                                    "calibration": detector.info.get("calibration")} if name == "robust" else
                             {"works": len(ids)})
        timings["detectors_s"] = round(time.perf_counter() - started, 2)
        out["indexed"] = {name: len(self.detector(name)) for name in self.trained()}
        return out

    def _record(self, name: str, fields: dict) -> None:
        """Update a trained detector's entry in the manifest (after works were added or removed)."""
        manifest = _read_json(self.folder / "manifest.json") or {"detectors": {}}
        if name in manifest.get("detectors", {}):
            manifest["detectors"][name].update(fields)
            write_json(manifest, self.folder / "manifest.json")

    def train(self, detectors: tuple[str, ...] | None = None, reporter: Reporter = QUIET,
              device: str | None = None) -> dict:
        """Train (or retrain) detectors on the registered works; returns what was fitted. ``device``:
        where features and the edited views' descriptors are extracted (default auto)."""
        device = device_name(device)
        detectors = tuple(detectors or self.config.detectors)
        ids, md5s = self.works()
        if len(ids) < 2:
            raise CollectionError(f"{self.root} holds {len(ids)} work(s); training needs at least two",
                                  "register more works with `artlens registry add`")
        self.collection.extract(self._extractor_names(detectors), reporter=reporter, device=device)
        report: dict = {}
        manifest = _read_json(self.folder / "manifest.json") or {"detectors": {}}
        for name in detectors:
            if name == "cvae":
                reporter.notice(f"warning: {CVAE_WARNING}")
            started = time.perf_counter()
            if name == "robust":
                detector, info = self._train_robust(ids, md5s, reporter, device)
            else:
                detector, info = self._train_cvae(ids, md5s, reporter)
            detector.save(self.folder / name)
            self._detectors[name] = detector
            info = {"descriptor_id": detector.descriptor_id, "works": len(ids),
                    "seconds": round(time.perf_counter() - started, 1), "trained_at": time.time(), **info}
            manifest["detectors"][name] = info
            report[name] = info
        manifest.update({"format": MANIFEST_FORMAT, "taps_id": create_extractor(COPY_TAPS).id})
        write_json(manifest, self.folder / "manifest.json")
        return report

    def _train_robust(self, ids: np.ndarray, md5s: list[str], reporter: Reporter, device: str = "cpu"):
        if self.config.robust.head == "general":
            return self._general_robust(ids, md5s, reporter, device)
        cfg = self.config.robust
        taps = self._cached(COPY_TAPS, md5s)
        compute_views(self.collection, md5s, cfg.views + 1, cfg.seed, reporter=reporter, device=device)
        edits = self._cached(COPY_TAPS, [k for m in md5s for k in view_keys(m, cfg.views + 1, cfg.seed)])
        edits = edits.reshape(len(md5s), cfg.views + 1, -1)
        views = np.concatenate([taps[:, None, :], edits[:, : cfg.views]], axis=1).astype(np.float16)
        info: dict = {"head": "registry"}
        threshold = cfg.threshold
        start = _general_start(cfg)
        if len(ids) >= cfg.min_calibration_works and cfg.calibrate:
            head, calibration = train_calibrated_head(views, edits[:, cfg.views :], cfg, reporter=reporter,
                                                      start=start, device=device)
            threshold = calibration.threshold
            info["calibration"] = asdict(calibration)
        else:
            head = train_head(views, cfg, reporter=reporter, start=start, device=device)
            info["calibration"] = None
        info["fine_tuned_from"] = start.fingerprint() if start is not None else None
        detector = RobustDetector(head, create_extractor(COPY_TAPS).id, threshold,
                                  {"views": cfg.views, **info}, code_bits=cfg.code_bits)
        detector.set_works(ids, taps)
        if cfg.calibrate:
            info["distractor_floor"] = raise_to_floor(detector, distractor_taps(cfg.seed), cfg.margin)
        info["threshold"] = detector.threshold
        return detector, info

    def _general_robust(self, ids: np.ndarray, md5s: list[str], reporter: Reporter, device: str = "cpu"):
        """The general head (built once per machine): encode the works, calibrate; nothing trained."""
        cfg = self.config.robust
        head, meta = load_general()
        detector = RobustDetector(head, create_extractor(COPY_TAPS).id, cfg.threshold,
                                  {"head": "general", "general": meta["fingerprint"],
                                   "general_threshold": meta["threshold"]}, code_bits=cfg.code_bits)
        started = time.perf_counter()
        detector.set_works(ids, self._cached(COPY_TAPS, md5s))
        timings = {"encode_s": round(time.perf_counter() - started, 2)}
        if cfg.calibrate:
            timings.update(self._calibrate_general(detector, md5s, reporter, device))
        return detector, {"head": "general", "general": meta["fingerprint"],
                          "calibration": detector.info.get("calibration"),
                          "distractor_floor": detector.info.get("distractor_floor"),
                          "threshold": detector.threshold, "timings": timings}

    def _calibrate_general(self, detector: RobustDetector, md5s: list[str], reporter: Reporter,
                           device: str = "cpu") -> dict:
        """Set ``detector``'s threshold from a sample of the registered works (see
        :func:`artlens.copyright.robust.registry_calibration`), then raise it above the distractors'
        floor. The sample (the works with the lowest MD5s) and its cached edited views change little
        as works are added, so adding works computes few new views. Returns stage timings."""
        cfg = self.config.robust
        timings: dict = {}
        started = time.perf_counter()
        if len(md5s) >= cfg.min_calibration_works:
            rows = np.argsort(np.asarray(md5s))[: cfg.calibration_works]
            sample = [md5s[r] for r in rows]
            n_views = cfg.calibration_views
            compute_views(self.collection, sample, n_views, cfg.seed, reporter=reporter, device=device)
            timings["calibration_views_s"] = round(time.perf_counter() - started, 2)
            keys = [k for m in sample for k in view_keys(m, n_views, cfg.seed)]
            found = self._cached_found(COPY_TAPS, keys)
            views = detector.describe(found).reshape(len(sample), n_views, -1)
            calibration = registry_calibration(detector.vectors, rows, views, cfg)
            detector.threshold = calibration.threshold
            detector.info["calibration"] = asdict(calibration)
        else:
            detector.threshold = cfg.threshold  # too few works to calibrate: the default, then the floor
            detector.info["calibration"] = None
        started = time.perf_counter()
        raise_to_floor(detector, distractor_taps(cfg.seed), cfg.margin)
        timings["distractor_floor_s"] = round(time.perf_counter() - started, 2)
        reporter.step(f"  robust threshold {detector.threshold:.3f}" + (
            f" (99 % precision on {len(md5s) if len(md5s) < cfg.calibration_works else cfg.calibration_works} "
            "held-out works)" if detector.info["calibration"] else " (the default; too few works to calibrate)"))
        return timings

    def _cached_found(self, extractor_name: str, keys: list[str]) -> np.ndarray:
        extractor = create_extractor(extractor_name)
        vectors, found = self.collection.cache.get(extractor.id, keys)
        if not found.all():
            raise CollectionError(f"{int((~found).sum())} calibration views could not be computed",
                                  f"check that the registered files are readable, then run "
                                  f"`artlens registry train --registry {self.root}`")
        return vectors

    def _train_cvae(self, ids: np.ndarray, md5s: list[str], reporter: Reporter):
        cfg = self.config.cvae
        thumbs = thumbnail_extractor(cfg.image_size)
        images = thumbs.unflatten(self._cached(thumbs.name, md5s))
        model = train_cvae(images, cfg, reporter=reporter)
        mu = latent_means(model, images)
        detector = CVAEKeyDetector(model, cfg, mu.mean(0))
        detector.set_works(ids, mu)
        return detector, {"hamming_radius": cfg.hamming_radius, "cosine_threshold": cfg.cosine_threshold,
                          "epochs": cfg.epochs}

    def detector(self, name: str):
        """A trained detector ("robust" or "cvae"), loaded once."""
        if name not in self._detectors:
            if name not in self.trained():
                raise CollectionError(
                    f"the registry {self.root} has no trained {name!r} detector",
                    f"train it: artlens registry train --registry {self.root} --detectors {name}",
                )
            if name == "robust":
                self._detectors[name] = RobustDetector.load(self.folder / name, create_extractor(COPY_TAPS).id,
                                                            self.config.robust.code_bits)
            else:
                self._detectors[name] = CVAEKeyDetector.load(self.folder / name, self.config.cvae)
            manifest = _read_json(self.folder / "manifest.json")
            expected = manifest["detectors"][name]["descriptor_id"]
            if self._detectors[name].descriptor_id != expected:
                raise ArtifactMismatchError(
                    f"the {name} detector in {self.root} is {self._detectors[name].descriptor_id}, its manifest "
                    f"says {expected}", _REBUILD.format(root=self.root))
        return self._detectors[name]


def _general_start(cfg) -> ProjectionHead | None:
    """The general head to fine-tune from, when it has the configured shape (else None: from scratch)."""
    try:
        head, _ = load_general()
    except ArtifactMismatchError:
        return None
    shape = {"hidden": cfg.hidden, "dim": cfg.dim, "dropout": cfg.dropout}
    return head if all(head.config.get(k) == v for k, v in shape.items()) else None


def _check_manifest(root: Path, manifest: dict) -> None:
    expected = create_extractor(COPY_TAPS).id
    if isinstance(manifest.get("format"), int) and manifest["format"] < MANIFEST_FORMAT \
            and manifest.get("taps_id") == expected:
        raise ArtifactMismatchError(
            f"the registry {root} was made by an older artlens (registry format {manifest['format']}, this "
            f"artlens writes {MANIFEST_FORMAT})", _UPGRADE.format(root=root))
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("taps_id") != expected:
        raise ArtifactMismatchError(
            f"the registry {root} was built with descriptor features {manifest.get('taps_id')!r} "
            f"(format {manifest.get('format')}); this artlens uses {expected!r}",
            _REBUILD.format(root=root),
        )


def _refuse_plain_collection(path: Path) -> None:
    """A collection with works of which none has an owner is a search collection, not a registry."""
    db = path / "catalog.sqlite"
    if not db.is_file():
        return
    try:  # read-only: nothing in the collection is created or migrated by looking
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            works = conn.execute("SELECT COUNT(*) FROM artworks").fetchone()[0]
            owned = conn.execute("SELECT COUNT(*) FROM metadata WHERE key = ?", (OWNER,)).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return  # not a catalog this check can read; opening the registry reports it
    if works > 0 and not owned:
        raise CollectionError(
            f"{path} is an artlens collection, not a copyright registry (its works have no owner)",
            "make a registry from the same images: artlens registry add IMAGE_FOLDER --owner NAME "
            "[--licence LICENCE] --registry NEW_PATH")


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactMismatchError(f"cannot read {path}: {exc}", "restore or delete the file and retrain") from exc

