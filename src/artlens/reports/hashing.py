"""``artlens eval hashing``: hash a collection's cached features and score Hamming ranking against
the float bound (:func:`evaluate_hashing`), and its report folder (``report.md``, ``report.json`` and
``map_by_bits.png``: mAP@k by code length beside the float bound), the layout every report uses."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artlens.collection import Collection
from artlens.errors import ArtlensError
from artlens.files import pyplot, save_figure, write_json, write_text
from artlens.hashing import (
    create_hasher,
    default_query_count,
    float_map_at_k,
    hashing_map_at_k,
    list_hashers,
    stratified_queries,
)
from artlens.progress import QUIET, Reporter
from artlens.reports.markdown import table
from artlens.vectors import l2_normalise


UNSUPERVISED_FEATURES = "effnet-lite0"
LABEL_AWARE_FEATURES = "effnet-lite0,style"


@dataclass(frozen=True)
class HashingEvalConfig:
    """What ``artlens eval hashing`` measures; every option has its one default here."""

    label: str
    method: str = "tbh-sim"
    bits: tuple[int, ...] = (16, 32, 64)
    queries: int | None = None  # stratified, seeded query set size; None: 10 % of the labelled artworks, <= 1000
    k: int = 1000  # rank cut-off of mAP@k
    # What is hashed, comma-separated: an extractor's cached vectors (``effnet-lite0``) or an aspect's
    # indexed vectors (``style``: the Gram descriptor after the collection's PCA), each unit-length,
    # side by side. None: content features for unsupervised hashers; content + style for the label-aware
    # one, whose codes follow its class decision (cifar10_jpg, 16 bits: 0.766 -> 0.815 mAP@1000 with style).
    features: str | None = None
    seed: int = 0  # of the query split (and of the hasher when ``seeds`` is empty)
    # Hasher seeds: each row reports the mean over them. Three by default: one TBH seed at 16 bits spreads
    # 0.40-0.45 mAP@1000 on cifar10_jpg (ITQ: 0.407-0.410), so a single run can rank the methods wrongly.
    seeds: tuple[int, ...] = (0, 1, 2)

    @property
    def inputs(self) -> str:
        """``features``, or the method's default when it is not given."""
        if self.features:
            return self.features
        return LABEL_AWARE_FEATURES if getattr(create_hasher(self.method, 8), "needs_labels", False) else UNSUPERVISED_FEATURES

    def __post_init__(self):
        if self.method not in list_hashers():
            raise ArtlensError(f"unknown hashing method {self.method!r}", f"choose one of: {', '.join(list_hashers())}")
        if not self.bits or any(b <= 0 or b % 8 for b in self.bits):
            raise ArtlensError(f"code lengths must be positive multiples of 8, got {','.join(map(str, self.bits))}",
                               "use e.g. --bits 16,32,64")


def evaluate_hashing(collection: Collection, config: HashingEvalConfig, reporter: Reporter = QUIET) -> list[dict]:
    """One row per code length: ``method``, ``bits``, ``map@k``, ``k``, ``n_queries``, ``float_map@k``,
    ``features``, ``label`` (and with several hasher seeds ``map@k_by_seed``, ``map@k`` being their
    mean). The hasher is fitted on the database part only (a label-aware one on its labels too); Hamming
    ranking breaks ties by id; the same seeded stratified queries are ranked by cosine for the float bound."""
    labels = collection.catalog.labels(config.label)
    ids, vectors = hashed_vectors(collection, config.inputs, sorted(labels))
    if len(ids) < 2:
        raise ArtlensError(f"no cached {config.inputs} features for labelled artworks",
                           "run `artlens ingest DIR --collection PATH` first")
    y = np.array([labels[int(i)] for i in ids])
    queries = config.queries
    if queries is None:
        queries = default_query_count(y)
        if queries == 0:
            raise ArtlensError(f"every {config.label!r} class has a single artwork, so none can be a query",
                               "use a label whose classes have several artworks each")
        reporter.notice(f"{queries} queries (10 % of {len(ids)} labelled artworks, at most 1000, at least one per "
                        "class; set --queries to change)")
    elif queries >= len(ids):
        raise ArtlensError(f"--queries {queries} leaves no database ({len(ids)} artworks)",
                           f"ask for fewer queries (at most {len(ids) - 1})")
    q_idx, db_idx = stratified_queries(y, queries, config.seed)
    bound = float_map_at_k(vectors[q_idx], vectors[db_idx], y[q_idx], y[db_idx], k=config.k)
    rows = []
    seeds = config.seeds or (config.seed,)
    for b in config.bits:
        scores = []
        for seed in seeds:
            hasher = create_hasher(config.method, b)
            extra = {"labels": y[db_idx]} if getattr(hasher, "needs_labels", False) else {}
            hasher.fit(vectors[db_idx], seed=seed, reporter=reporter, **extra)
            scores.append(hashing_map_at_k(hasher.encode(vectors[q_idx]), hasher.encode(vectors[db_idx]), y[q_idx],
                                           y[db_idx], k=config.k))
        row = {"method": config.method, "bits": b, "map@k": float(np.mean(scores)), "k": config.k,
               "n_queries": len(q_idx), "float_map@k": bound, "features": config.inputs, "label": config.label}
        if len(seeds) > 1:
            row |= {"map@k_by_seed": dict(zip(map(str, seeds), scores)), "hasher_seeds": list(seeds)}
        rows.append(row)
    return rows


def hashed_vectors(collection: Collection, features: str, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The artworks of ``ids`` that every named input has, and their vectors: each name an extractor
    (cached raw vectors) or an indexed aspect (its stored, projected vectors), each part unit-length,
    concatenated in the order given."""
    names = [n.strip() for n in features.split(",") if n.strip()]
    if not names:
        raise ArtlensError("--features names nothing", f"e.g. --features {UNSUPERVISED_FEATURES}")
    parts = []
    for name in names:
        if name in collection.indexed_aspects() and name not in collection.config.extractor_names():
            index = collection.index(name)
            have = np.intersect1d(index.ids(), np.asarray(ids, dtype=np.int64))
            parts.append((have, index.vectors(have)))
        else:
            parts.append(collection.raw_vectors(name, ids))
    common = parts[0][0]
    for part_ids, _ in parts[1:]:
        common = np.intersect1d(common, part_ids)
    blocks = []
    for part_ids, vectors in parts:
        order = np.argsort(part_ids)
        rows = order[np.searchsorted(part_ids[order], common)]
        blocks.append(l2_normalise(np.asarray(vectors, dtype=np.float32)[rows]))
    return common, np.hstack(blocks) if len(blocks) > 1 else blocks[0]


def write_hashing_report(rows: Sequence[dict], out: str | Path, collection: str = "") -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    first = rows[0]
    k = first["k"]
    payload = {"report": "hashing", "collection": collection, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "method": first["method"], "features": first["features"], "label": first["label"], "k": k,
               "n_queries": first["n_queries"], "float_map@k": first["float_map@k"], "rows": list(rows)}
    md = [f"# Hashing: {first['method']} on {first['features']} features", "",
          f"mAP@{k} of Hamming ranking (ties broken by id), {first['n_queries']} stratified queries by "
          f"`{first['label']}` against the rest of {collection or 'the collection'}; the float bound ranks the same "
          f"queries by cosine similarity of the features (`artlens eval hashing`).", "",
          table(["method", "bits", f"mAP@{k}", "float bound", "share of bound"],
                [[r["method"], r["bits"], r["map@k"], r["float_map@k"],
                  f"{100 * r['map@k'] / r['float_map@k']:.0f} %" if r["float_map@k"] else ""] for r in rows]),
          "", "![mAP by code length](map_by_bits.png)", ""]
    return {"json": write_json(payload, out / "report.json"), "md": write_text("\n".join(md), out / "report.md"),
            "png": _plot(rows, out / "map_by_bits.png")}


def _plot(rows: Sequence[dict], path: Path) -> Path:
    k = rows[0]["k"]
    fig, ax = pyplot().subplots(figsize=(6, 4))
    ax.plot([r["bits"] for r in rows], [r["map@k"] for r in rows], marker="o", label=rows[0]["method"])
    ax.axhline(rows[0]["float_map@k"], color="grey", linestyle="--", label="float features (bound)")
    ax.set_xlabel("bits")
    ax.set_ylabel(f"mAP@{k}")
    ax.set_xticks([r["bits"] for r in rows])
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)
