"""Train / val / test splits: stratified by label, seeded, keyed by image MD5 so that a split is the
same in any collection holding the same artworks, and stored with the head it trained.

A collection with a ``split`` metadata column (louvre_genre has one) uses that column instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from artlens.errors import ArtlensError

SPLITS = ("train", "val", "test")
SPLIT_COLUMN = "split"
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
            "dev": "val", "test": "test", "testing": "test"}


def stratified_split(keys: Sequence[str], labels: Sequence, fractions=DEFAULT_FRACTIONS, seed: int = 0) -> np.ndarray:
    """The split name of each item: per class, items ordered by key are shuffled with ``seed`` and cut
    by ``fractions`` (train, val, test); every class gets at least one val and one test item (none
    where that fraction is 0)."""
    keys = list(keys)
    labels = np.asarray([str(v) for v in labels])
    out = np.empty(len(keys), dtype=object)
    rng = np.random.default_rng(seed)
    needed = 1 + (fractions[1] > 0) + (fractions[2] > 0)
    for cls in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == cls)
        if len(members) < needed:
            raise ArtlensError(
                f"class {cls!r} has {len(members)} labelled artwork(s); a train/val/test split needs at least {needed}",
                "label more artworks of that class, or choose a column with fewer, larger classes",
            )
        members = members[np.argsort([keys[i] for i in members], kind="stable")]
        members = members[rng.permutation(len(members))]
        n_val = max(1, int(round(fractions[1] * len(members)))) if fractions[1] > 0 else 0
        n_test = max(1, int(round(fractions[2] * len(members)))) if fractions[2] > 0 else 0
        out[members[:n_test]] = "test"
        out[members[n_test : n_test + n_val]] = "val"
        out[members[n_test + n_val :]] = "train"
    return out


def column_split(values: dict[int, str], labels: dict[int, str], seed: int = 0) -> dict[int, str]:
    """A collection's own split column, normalised (validation -> val); labelled artworks without a
    value train; with no val rows, val is carved out of train (stratified)."""
    out: dict[int, str] = {}
    for i in labels:
        name = _ALIASES.get(values.get(i, "train").strip().lower())
        if name is None:
            raise ArtlensError(f"artwork {i} has split {values[i]!r}", "use train, val or test in the split column")
        out[i] = name
    if "val" not in out.values():
        train = sorted(i for i, s in out.items() if s == "train")
        if train:
            carved = stratified_split([str(i) for i in train], [labels[i] for i in train], (0.85, 0.15, 0.0), seed)
            out.update({i: "val" for i, s in zip(train, carved) if s == "val"})
    return out


def collection_split(collection, label: str, head=None, seed: int = 0, fractions=DEFAULT_FRACTIONS) -> dict[int, str]:
    """{artwork id: split} for the artworks labelled in ``label``.

    In order: the collection's ``split`` column; else the split stored with ``head`` (artworks the
    head never saw count as test); else a stratified split seeded by ``seed``.
    """
    catalog = collection.catalog
    labels = catalog.column(label)
    if SPLIT_COLUMN in catalog.metadata_columns() and SPLIT_COLUMN != label:
        return column_split(catalog.column(SPLIT_COLUMN), labels, seed)
    md5s = catalog.md5s()
    if head is not None and head.split:
        by_key = {key: name for name, keys in head.split.items() for key in keys}
        return {i: by_key.get(md5s[i], "test") for i in labels if i in md5s}
    ids = sorted(i for i in labels if i in md5s)
    names = stratified_split([md5s[i] for i in ids], [labels[i] for i in ids], fractions, seed)
    return dict(zip(ids, names.tolist()))


def split_ids(collection, label: str, split: str, head=None, seed: int = 0) -> list[int] | None:
    """Ids of one split (``all``: None, meaning every artwork)."""
    if split == "all":
        return None
    if split not in SPLITS:
        raise ArtlensError(f"unknown split {split!r}", "use train, val, test or all")
    return sorted(i for i, s in collection_split(collection, label, head, seed).items() if s == split)
