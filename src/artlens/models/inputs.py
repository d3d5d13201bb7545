"""What a head reads: the cached raw vectors of its input extractors for a set of artworks, with a
presence mask per optional input (text), gathered from a collection's feature cache."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from artlens.catalog.db import Catalog
from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.features import create_extractor
from artlens.models.fusion import InputSpec
from artlens.progress import QUIET, Reporter


class FeatureSource(Protocol):
    """Where a head's inputs are read from (a :class:`~artlens.collection.Collection` is one): cached
    raw vectors by extractor, extraction of those not cached yet, the catalog's content keys."""

    root: Path
    catalog: Catalog

    def raw_vectors(self, extractor_name: str, ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids that have a cached vector, their vectors)."""

    def ensure_features(self, extractor_names: list[str], ids: list[int] | None = None, reporter: Reporter = QUIET,
                        reason: str = ""):
        """Compute the missing vectors of ``extractor_names``; a report with ``failed`` files, or None."""


@dataclass
class FeatureSet:
    """Aligned rows: artwork ids, content keys (MD5), raw input vectors by extractor name,
    presence masks of optional inputs, and integer label codes (n, columns; -1 = unknown)."""

    ids: np.ndarray
    keys: list[str]
    inputs: dict[str, np.ndarray]
    present: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows) -> "FeatureSet":
        rows = np.asarray(rows)
        return FeatureSet(
            self.ids[rows], [self.keys[i] for i in np.arange(len(self.ids))[rows]],
            {k: v[rows] for k, v in self.inputs.items()}, {k: v[rows] for k, v in self.present.items()},
            None if self.labels is None else self.labels[rows],
        )

    def tensors(self, rows=None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Torch views of some rows (all by default) for a forward pass."""
        sel = slice(None) if rows is None else np.asarray(rows)
        inputs = {k: torch.from_numpy(np.ascontiguousarray(v[sel])) for k, v in self.inputs.items()}
        present = {k: torch.from_numpy(np.ascontiguousarray(v[sel])) for k, v in self.present.items()}
        return inputs, present


def check_extractors(specs: Sequence[InputSpec]) -> None:
    """Fail when this artlens computes an input's features differently from when the head was trained."""
    for spec in specs:
        current = create_extractor(spec.extractor)
        if current.id != spec.extractor_id or current.dim != spec.raw_dim:
            raise ArtifactMismatchError(
                f"the head was trained on {spec.extractor_id} features ({spec.raw_dim}-d), but this artlens "
                f"computes {current.id} ({current.dim}-d)",
                "retrain the head on this collection: artlens train --collection PATH --label COLUMN",
            )


def gather_features(collection: FeatureSource, specs: Sequence[InputSpec], ids: Sequence[int] | None = None,
                    extract: bool = True, reporter: Reporter = QUIET) -> FeatureSet:
    """Raw vectors of every input for the artworks (all by default) that have all required inputs.

    With ``extract`` (applying a head) inputs the collection has not extracted yet are computed first
    from its image files through ``collection.ensure_features``; training passes False and asks for
    ``--extract`` instead. Optional inputs (text next to image inputs) that an artwork lacks are zeros
    with ``present`` False.
    """
    check_extractors(specs)
    required = [s for s in specs if not s.optional]
    if not required:
        raise ArtlensError("a head needs at least one input every artwork has", "add content or style to --features")
    report = None
    if extract:
        report = collection.ensure_features([s.extractor for s in specs], None if ids is None else list(ids),
                                            reporter, reason="the head reads")
    chosen: np.ndarray | None = None
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for spec in required:
        got_ids, vectors = collection.raw_vectors(spec.extractor, ids)
        if len(got_ids) == 0:
            if report is not None and report.failed:
                raise ArtlensError(
                    f"the head reads {spec.extractor} features, which {collection.root} has not extracted, and its "
                    f"image files could not be read to compute them ({len(report.failed)} failed, e.g. "
                    f"{report.failed[0][1]})",
                    "put the image files back where they were ingested from (or ingest them again: "
                    f"`artlens ingest DIR --collection {collection.root}`), or apply a head trained on "
                    "features this collection has (`artlens stats` lists them)",
                )
            if extract:
                raise ArtlensError(
                    f"the head reads {spec.extractor} features, and {collection.root} has none to compute them from",
                    f"ingest the artworks first: `artlens ingest DIR --collection {collection.root}`",
                )
            raise ArtlensError(
                f"{spec.extractor} features are not extracted in {collection.root}",
                f"compute them with `artlens train ... --extract`, or add {spec.extractor} to the collection's "
                "aspects and run `artlens ingest DIR --collection PATH`",
            )
        raw[spec.extractor] = (got_ids, vectors)
        chosen = got_ids if chosen is None else np.intersect1d(chosen, got_ids)
    chosen = np.asarray(chosen, dtype=np.int64)
    inputs: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.optional:
            got_ids, vectors = collection.raw_vectors(spec.extractor, chosen.tolist())
            raw[spec.extractor] = (got_ids, vectors)
        got_ids, vectors = raw[spec.extractor]
        position = {int(i): row for row, i in enumerate(got_ids)}
        rows = np.array([position.get(int(i), -1) for i in chosen], dtype=np.int64)
        have = rows >= 0
        out = np.zeros((len(chosen), spec.raw_dim), dtype=np.float32)
        if have.any():
            out[have] = vectors[rows[have]]
        inputs[spec.extractor] = out
        if spec.optional:
            present[spec.extractor] = have
    md5s = collection.catalog.md5s()
    return FeatureSet(chosen, [md5s[int(i)] for i in chosen], inputs, present)


def embed_features(head, features: FeatureSet) -> np.ndarray:
    """The head's embeddings of a feature set."""
    return head.embed(features.inputs, features.present)
