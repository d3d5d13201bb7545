"""Train / val / test splits: seeded, keyed by image MD5 so that a split is the same in any collection
holding the same artworks, and stored with the head it trained.

Two kinds. ``random``: stratified by label, each artwork on its own. ``grouped`` (the default of
training): look-alike groups go whole to one split, so that validation and test approximate works
by artists the head never saw. The groups are a metadata column (``group_by``, e.g. ``artist``) or,
without one, k-means clusters of the artworks' pretrained content and style features (works of one
artist or series, and near-duplicates, fall into one cluster). On wikiart_styles a random split lets
one artist's works sit on both sides and overstates a head's gain about twofold (docs/learned.md).

A collection with a ``split`` metadata column (louvre_genre has one) uses that column instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artlens.errors import ArtlensError
from artlens.features import create_extractor
from artlens.files import user_cache, write_arrays
from artlens.vectors import l2_normalise

SPLITS = ("train", "val", "test")
SPLIT_KINDS = ("grouped", "random")
GROUP_FEATURES = ("content", "style")  # aspects whose cached features are clustered into groups
SPLIT_COLUMN = "split"
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
            "dev": "val", "test": "test", "testing": "test"}


def check_class_sizes(labels: np.ndarray, fractions=DEFAULT_FRACTIONS) -> None:
    """Every class needs an artwork for each split with a fraction above 0."""
    needed = 1 + (fractions[1] > 0) + (fractions[2] > 0)
    values, counts = np.unique(labels, return_counts=True)
    for cls, n in zip(values.tolist(), counts.tolist()):
        if n < needed:
            raise ArtlensError(
                f"class {cls!r} has {n} labelled artwork(s); a train/val/test split needs at least {needed}",
                "label more artworks of that class, or choose a column with fewer, larger classes",
            )


def stratified_split(keys: Sequence[str], labels: Sequence, fractions=DEFAULT_FRACTIONS, seed: int = 0) -> np.ndarray:
    """The split name of each item: per class, items ordered by key are shuffled with ``seed`` and cut
    by ``fractions`` (train, val, test); every class gets at least one val and one test item (none
    where that fraction is 0)."""
    keys = list(keys)
    labels = np.asarray([str(v) for v in labels])
    out = np.empty(len(keys), dtype=object)
    rng = np.random.default_rng(seed)
    check_class_sizes(labels, fractions)
    for cls in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == cls)
        members = members[np.argsort([keys[i] for i in members], kind="stable")]
        members = members[rng.permutation(len(members))]
        n_val = max(1, int(round(fractions[1] * len(members)))) if fractions[1] > 0 else 0
        n_test = max(1, int(round(fractions[2] * len(members)))) if fractions[2] > 0 else 0
        out[members[:n_test]] = "test"
        out[members[n_test : n_test + n_val]] = "val"
        out[members[n_test + n_val :]] = "train"
    return out


def grouped_split(keys: Sequence[str], labels: Sequence, groups: Sequence, fractions=DEFAULT_FRACTIONS,
                  seed: int = 0) -> np.ndarray:
    """The split name of each item, every group whole in one split.

    Groups are visited in a seeded order and each goes to the split whose per-class quota (``fractions``
    of each class) it fills best, else to the split least full overall; then every class gets at least
    one val and one test item (where that fraction is above 0) by moving a group out of train. ``keys``
    only order the items, so the split does not depend on the order they come in."""
    keys = list(keys)
    labels = np.asarray([str(v) for v in labels])
    groups = np.asarray([str(g) for g in groups])
    check_class_sizes(labels, fractions)
    classes = sorted(set(labels.tolist()))
    class_of = {c: k for k, c in enumerate(classes)}
    y = np.array([class_of[v] for v in labels], dtype=np.int64)
    fractions = np.asarray(fractions, dtype=np.float64)
    target = fractions[:, None] * np.bincount(y, minlength=len(classes))[None, :].astype(np.float64)
    names = sorted(set(groups.tolist()), key=lambda g: min(keys[i] for i in np.flatnonzero(groups == g)))
    members = {g: np.flatnonzero(groups == g) for g in names}
    counts = {g: np.bincount(y[m], minlength=len(classes)) for g, m in members.items()}
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    current = np.zeros_like(target)
    where: dict[str, int] = {}
    for g in order:
        c = counts[g]
        gain = np.minimum(c[None, :], np.maximum(target - current, 0.0)).sum(axis=1)
        gain[fractions <= 0] = -1.0
        if gain.max() > 0:
            s = int(np.argmax(gain))
        else:
            fill = current.sum(axis=1) / np.maximum(target.sum(axis=1), 1e-9)
            fill[fractions <= 0] = np.inf
            s = int(np.argmin(fill))
        where[g] = s
        current[s] += c
    for s in (1, 2):  # every class in val and test: move the smallest train group holding it
        if fractions[s] <= 0:
            continue
        for k, cls in enumerate(classes):
            if current[s, k] > 0:
                continue
            movable = [g for g in order if where[g] == 0 and counts[g][k] > 0 and current[0, k] - counts[g][k] > 0]
            if not movable:
                raise ArtlensError(
                    f"class {cls!r} falls in too few groups for a grouped train/val/test split",
                    "use more, smaller groups, a random split (--split random), or label more artworks of that class",
                )
            g = min(movable, key=lambda g: (counts[g].sum(), names.index(g)))
            where[g] = s
            current[0] -= counts[g]
            current[s] += counts[g]
    out = np.empty(len(keys), dtype=object)
    for g, m in members.items():
        out[m] = SPLITS[where[g]]
    return out


_GROUPS_VERSION = 1  # of the clustering below: a change makes earlier kept clusters unused


def feature_groups(matrices: Sequence[np.ndarray], n_groups: int, seed: int = 0) -> np.ndarray:
    """k-means cluster of each row: every matrix L2-normalised and weighted alike, reduced by PCA to at
    most 64 dimensions, then ``n_groups`` clusters (seeded)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    n = len(matrices[0])
    n_groups = max(1, min(int(n_groups), n))
    if n_groups == 1:
        return np.zeros(n, dtype=np.int64)
    parts = [l2_normalise(np.asarray(m, dtype=np.float32)) / np.sqrt(len(matrices)) for m in matrices]
    x = np.hstack(parts)
    dims = min(64, n - 1, x.shape[1])
    if dims < x.shape[1]:
        x = PCA(dims, random_state=seed).fit_transform(x)
    return KMeans(n_groups, n_init=1, random_state=seed).fit_predict(x).astype(np.int64)


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


def collection_split(collection, label: str, head=None, seed: int = 0, fractions=DEFAULT_FRACTIONS,
                     kind: str = "random", group_by: str | None = None, group_size: int = 20) -> dict[int, str]:
    """{artwork id: split} for the artworks labelled in ``label``.

    In order: the collection's ``split`` column; else the split stored with ``head`` (artworks the
    head never saw count as test); else a split of ``kind`` seeded by ``seed``: ``random``
    (stratified), or ``grouped`` by the ``group_by`` column or, without one, by clusters of about
    ``group_size`` artworks of the collection's cached content and style features.
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
    if kind not in SPLIT_KINDS:
        raise ArtlensError(f"unknown split kind {kind!r}", f"use one of: {', '.join(SPLIT_KINDS)}")
    if kind == "random":
        names = stratified_split([md5s[i] for i in ids], [labels[i] for i in ids], fractions, seed)
    else:
        # at least four groups per class, so that a small collection's classes can reach every split
        least = min(len(ids), 4 * len({labels[i] for i in ids}))
        groups = split_groups(collection, ids, group_by, group_size, seed, least)
        keep = [i for i in ids if i in groups]
        names = grouped_split([md5s[i] for i in keep], [labels[i] for i in keep], [groups[i] for i in keep],
                              fractions, seed)
        ids = keep
    return dict(zip(ids, names.tolist()))


def split_groups(collection, ids: Sequence[int], group_by: str | None = None, group_size: int = 20,
                 seed: int = 0, min_groups: int = 1) -> dict[int, str]:
    """{artwork id: group} of a grouped split: the ``group_by`` column (an artwork without a value is
    its own group), else k-means clusters of the cached content and style features (artworks without
    them are left out, as training leaves them out), at least ``min_groups`` of them."""
    if group_by:
        values = collection.catalog.labels(group_by)
        return {int(i): values.get(int(i), f"#{int(i)}") for i in ids}
    extractors = list(dict.fromkeys(collection.config.aspects[a].extractor for a in GROUP_FEATURES
                                    if a in collection.config.aspects))
    # without content or style features, the image aspects the collection has (e.g. colour)
    extractors += [a.extractor for name, a in collection.config.aspects.items()
                   if name not in GROUP_FEATURES and name != "text" and a.extractor not in extractors]
    wanted = np.asarray(sorted(int(i) for i in ids), dtype=np.int64)
    chosen, keys, common = [], [], None
    for name in extractors:  # the first two with cached vectors, listed without reading them
        if len(chosen) == 2:
            break
        got, got_keys = collection.cached_ids(name)
        mask = np.isin(got, wanted)
        if not mask.any():
            continue
        chosen.append(name)
        keys.append(got_keys[mask])
        common = got[mask] if common is None else np.intersect1d(common, got[mask])
    if not chosen or common is None or len(common) == 0:
        raise ArtlensError(f"a grouped split clusters the {' and '.join(GROUP_FEATURES)} features, which "
                           f"{collection.root} has not extracted",
                           "extract them (artlens train ... --extract), group by a column (--group-by COLUMN), "
                           "or use --split random")
    n_groups = max(min_groups, round(len(common) / max(1, group_size)))
    # k-means over the whole collection takes minutes on a large one and every federated institution
    # needs the same split: the clusters are kept in the user cache, addressed by the artworks' content
    # keys, the extractors and the clustering settings (the collection itself is never written)
    digest = hashlib.sha1(json.dumps([_GROUPS_VERSION, [create_extractor(n).id for n in chosen], n_groups, seed]).encode())
    digest.update(common.tobytes())
    for k in keys:
        digest.update("\0".join(map(str, k)).encode())
    memo = user_cache() / "split-groups" / f"{digest.hexdigest()}.npz"
    clusters = _read_groups(memo, common)
    if clusters is None:
        rows = []
        for name in chosen:
            got, raw = collection.raw_vectors(name, common.tolist())
            position = {int(i): r for r, i in enumerate(got)}
            rows.append(raw[[position[int(i)] for i in common]])
        clusters = feature_groups(rows, n_groups, seed)
        try:
            write_arrays(memo, ids=common, clusters=clusters)
        except OSError:  # a cache, not a result: a folder that cannot take it only costs time
            pass
    return {int(i): f"cluster {int(c)}" for i, c in zip(common, clusters)}


def _read_groups(path: Path, ids: np.ndarray) -> np.ndarray | None:
    """Clusters kept by an earlier grouped split of the same artworks and features, if any."""
    try:
        with np.load(path) as kept:
            if np.array_equal(kept["ids"], ids):
                return kept["clusters"].astype(np.int64)
    except (OSError, KeyError, ValueError):
        pass
    return None


def split_ids(collection, label: str, split: str, head=None, seed: int = 0) -> list[int] | None:
    """Ids of one split (``all``: None, meaning every artwork)."""
    if split == "all":
        return None
    if split not in SPLITS:
        raise ArtlensError(f"unknown split {split!r}", "use train, val, test or all")
    return sorted(i for i, s in collection_split(collection, label, head, seed).items() if s == split)


def config_split(collection, label: str, config, kind: str | None = None, fall_back: bool = False) -> dict[int, str]:
    """The split a ``TrainConfig`` trains on (``kind`` overrides its ``split``). ``fall_back``: where a
    grouped split is impossible (a class in too few groups: small collections), the random split
    instead of the error (federated training, whose every side must agree on one split)."""
    fractions = (1.0 - config.val_fraction - config.test_fraction, config.val_fraction, config.test_fraction)
    kind = kind or config.split
    try:
        return collection_split(collection, label, seed=config.seed, fractions=fractions, kind=kind,
                                group_by=config.group_by, group_size=config.group_size)
    except ArtlensError as exc:
        if not fall_back or kind == "random" or "too few groups" not in exc.message:
            raise
    return collection_split(collection, label, seed=config.seed, fractions=fractions, kind="random")
