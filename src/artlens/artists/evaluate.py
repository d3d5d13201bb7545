"""Leave-one-artwork-out artist retrieval: each query artwork is held out, its artist's profile is
rebuilt without it, and every artist is ranked for it (top-1, top-3, MRR).

Rebuilding is incremental: an artist's prototypes are clustered once on all their works, and holding
out one work subtracts it from its cluster's sum (the cluster vanishes when it was its only member);
the assignment of the other works is not recomputed, so each query costs one subtraction. With DP the
held-out artist's profile is the noisy mean of the remaining works, drawn afresh for each query, and
every other artist's noisy profile is drawn once per repeat, as published.

Methods, all on the same queries:

- ``profiles``: the published profiles (``ProfileConfig``: a few prototypes) in the head's space;
- ``profiles-mean``: one prototype per artist (the noise-free counterpart of the DP profiles);
- ``profiles-dp-epsE``: one noisy prototype per artist at epsilon E (mean over ``dp_repeats`` draws);
- ``pretrained-profiles`` and ``pretrained-profiles-mean``: the same profiles over pretrained
  features (the collection's default aspect mix, each aspect L2-normalised and PCA-reduced as its
  index is, weighted by the square root of its weight so that dot products are the weighted mix of
  cosines);
- ``nearest-artwork``: every artist scored by their work most similar to the query, in the head's
  space, and ``nearest-artwork-voteK``: the K nearest works vote for their artists (the upper bound:
  both need the portfolios the platform never gets); ``pretrained-nearest-artwork[-voteK]`` the same
  over pretrained features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from artlens.artists.portfolio import (
    ArtistSpace,
    artist_labels,
    learned_space,
    pretrained_space,
)
from artlens.artists.profiles import (
    ProfileConfig,
    check_artists,
    cluster_works,
    gaussian_sigma,
    mean_sensitivity,
)
from artlens.artists.search import DEFAULT_TEMPERATURE, combine_prototypes
from artlens.errors import ArtlensError
from artlens.metrics import reciprocal_rank, topk_accuracy
from artlens.progress import QUIET, Reporter
from artlens.train.split import split_ids
from artlens.vectors import l2_normalise


# -- scores (queries x artists) -----------------------------------------------------------------
def _artist_rows(artists: Sequence[str]) -> tuple[list[str], np.ndarray]:
    names = sorted(set(artists))
    code = {n: i for i, n in enumerate(names)}
    return names, np.array([code[a] for a in artists], dtype=np.int64)


def profile_scores(space: ArtistSpace, queries: np.ndarray, config: ProfileConfig,
                   temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
    """(Q, A) scores of held-out queries (row indices into ``space``) against every artist's profile,
    each query's own artist profiled without it (incremental cluster sums)."""
    x = space.vectors.astype(np.float64)
    names, codes = _artist_rows(space.artists)
    q = space.queries(queries).astype(np.float64)
    scores = np.full((len(queries), len(names)), -np.inf)
    query_pos = {int(r): j for j, r in enumerate(queries)}
    for a in range(len(names)):
        rows = np.flatnonzero(codes == a)
        _, assign = np.unique(cluster_works(x[rows], config)[1], return_inverse=True)  # no empty clusters
        sums = np.zeros((assign.max() + 1, x.shape[1]))
        np.add.at(sums, assign, x[rows])
        counts = np.bincount(assign)
        prototypes = l2_normalise(sums)
        scores[:, a] = combine_prototypes(q @ prototypes.T, counts, temperature)
        for row, cluster in zip(rows, assign):
            j = query_pos.get(int(row))
            if j is None:
                continue
            held_counts = counts.copy()
            held_counts[cluster] -= 1
            held = prototypes.copy()
            if held_counts[cluster]:
                held[cluster] = l2_normalise(sums[cluster] - x[row])  # the work as profiled, not as it queries
            keep = held_counts > 0
            scores[j, a] = combine_prototypes((held[keep] @ q[j])[None, :], held_counts[keep], temperature)[0]
    return scores


def dp_profile_scores(space: ArtistSpace, queries: np.ndarray, epsilon: float, delta: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(Q, A) scores against one noisy mean per artist (Gaussian mechanism at ``epsilon``), each
    query's own artist released again without it; and the median sigma over artists."""
    x = space.vectors.astype(np.float64)
    names, codes = _artist_rows(space.artists)
    n = np.bincount(codes, minlength=len(names))
    sums = np.zeros((len(names), x.shape[1]))
    np.add.at(sums, codes, x)
    sigma = np.array([gaussian_sigma(epsilon, delta, mean_sensitivity(int(c))) for c in n])
    published = sums / n[:, None] + rng.normal(size=sums.shape) * sigma[:, None]  # as published: not normalised
    q = space.queries(queries).astype(np.float64)
    scores = q @ published.T
    own = codes[queries]
    held = n[own] - 1
    sigma_held = np.array([gaussian_sigma(epsilon, delta, mean_sensitivity(int(c))) for c in held])
    rebuilt = (sums[own] - x[queries]) / held[:, None] + rng.normal(size=q.shape) * sigma_held[:, None]
    scores[np.arange(len(queries)), own] = np.sum(rebuilt * q, axis=1)
    return scores, float(np.median(sigma))


def nearest_artwork_scores(space: ArtistSpace, queries: np.ndarray, vote: int = 0, block: int = 512) -> np.ndarray:
    """(Q, A) over every other work of the collection: with ``vote`` 0 each artist's best similarity
    between the query and one of their works (1-NN); otherwise the ``vote`` nearest works vote for
    their artists with their similarities (artists without a vote follow, by their best work)."""
    x = space.vectors.astype(np.float32)
    names, codes = _artist_rows(space.artists)
    vote = min(vote, len(x) - 1)
    scores = np.full((len(queries), len(names)), -np.inf)
    for start in range(0, len(queries), block):
        rows = queries[start:start + block]
        sims = space.queries(rows).astype(np.float32) @ x.T
        sims[np.arange(len(rows)), rows] = -np.inf  # never the query itself
        best = np.stack([sims[:, codes == a].max(axis=1) for a in range(len(names))], axis=1)
        if vote:
            top = np.argpartition(-sims, vote - 1, axis=1)[:, :vote]
            votes, voters = np.zeros_like(best), np.zeros(best.shape, dtype=np.int64)
            cells = (np.repeat(np.arange(len(rows)), vote), codes[top].ravel())
            np.add.at(votes, cells, np.take_along_axis(sims, top, axis=1).ravel())
            np.add.at(voters, cells, 1)
            best = np.where(voters > 0, 2 * vote + votes, best)  # any vote ranks above none (|similarity| <= 1)
        scores[start:start + len(rows)] = best
    return scores


def ranking(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """top-1, top-3 and MRR of the true artists (``truth``: column index per row) in ``scores``."""
    order = np.argsort(-scores, axis=1, kind="stable")
    mrr = float(np.mean([reciprocal_rank(order[i] == truth[i]) for i in range(len(truth))])) if len(truth) else 0.0
    return {"top1": topk_accuracy(scores, truth, 1), "top3": topk_accuracy(scores, truth, 3), "mrr": mrr}


# -- the whole evaluation ------------------------------------------------------------------------
def query_rows(space: ArtistSpace, query_ids: Sequence[int] | None) -> np.ndarray:
    if query_ids is None:
        return np.arange(len(space.ids))
    return np.flatnonzero(np.isin(space.ids, np.asarray(list(query_ids), dtype=np.int64)))


def evaluate_artists(collection, artist_column: str, head, split: str = "test", epsilons: Sequence[float] = (8.0,),
                     config: ProfileConfig = ProfileConfig(), dp_repeats: int = 5, baselines: bool = True,
                     queries: str = "image+text", vote: int = 10, seed: int = 0, reporter: Reporter = QUIET) -> dict:
    """Leave-one-artwork-out artist retrieval over a collection (see the module docstring).

    ``split``: which artworks query, from the head's stored split (``test``: artworks it never saw;
    a head without one uses the collection's stratified split seeded by ``seed``), or ``all``.
    """
    labels = artist_labels(collection, artist_column)
    check_artists(list(labels.values()), config.min_works)
    query_ids = split_ids(collection, artist_column, split, head if head.split else None, seed)
    if query_ids is not None and not query_ids:
        raise ArtlensError(f"the {split} split has no labelled artwork to query", "use --split all")
    bar = reporter.bar(total=4 + len(epsilons) + (4 if baselines else 0), desc="artist eval", unit="step")
    learned = learned_space(collection, head, labels, query_ids, queries)
    check_artists(learned.artists, config.min_works, with_features=True)  # artworks without features are left out
    rows = query_rows(learned, query_ids)
    if learned.queryable is not None:
        rows = rows[learned.queryable[rows]]
    if not len(rows):
        raise ArtlensError(f"no artwork of the {split} split can query with {queries} inputs", "use --queries image+text")
    names, codes = _artist_rows(learned.artists)
    truth = codes[rows]
    methods: dict[str, dict] = {}

    def record(name: str, scores: np.ndarray | None, **extra) -> None:
        methods[name] = {**(ranking(scores, truth) if scores is not None else {}), **extra}
        bar.update(1)

    record("profiles", profile_scores(learned, rows, config), space="learned")
    record("profiles-mean", profile_scores(learned, rows, ProfileConfig(max_prototypes=1, seed=config.seed)),
           space="learned")
    rng = np.random.default_rng(seed)
    for eps in epsilons:
        runs = [dp_profile_scores(learned, rows, eps, config.delta, rng) for _ in range(max(1, dp_repeats))]
        per_run = [ranking(s, truth) for s, _ in runs]
        summary = {k: float(np.mean([r[k] for r in per_run])) for k in per_run[0]}
        summary["top1_std"] = float(np.std([r["top1"] for r in per_run]))
        record(f"profiles-dp-eps{eps:g}", None, **summary, space="learned", epsilon=float(eps), delta=config.delta,
               sigma_median=runs[0][1], repeats=len(runs))
    record("nearest-artwork", nearest_artwork_scores(learned, rows), space="learned")
    record(f"nearest-artwork-vote{vote}", nearest_artwork_scores(learned, rows, vote), space="learned")
    pretrained_name = None
    if baselines:
        pretrained = pretrained_space(collection, labels, seed)
        pretrained_name = pretrained.name
        p_rows = query_rows(pretrained, learned.ids[rows])
        p_names, p_codes = _artist_rows(pretrained.artists)
        if len(p_rows) != len(rows) or p_names != names:
            raise ArtlensError("the pretrained features do not cover the same artworks as the head's",
                               "extract every aspect first: artlens ingest DIR --collection PATH")
        record("pretrained-profiles", profile_scores(pretrained, p_rows, config), space=pretrained.name)
        record("pretrained-profiles-mean", profile_scores(pretrained, p_rows, ProfileConfig(max_prototypes=1)),
               space=pretrained.name)
        record("pretrained-nearest-artwork", nearest_artwork_scores(pretrained, p_rows), space=pretrained.name)
        record(f"pretrained-nearest-artwork-vote{vote}", nearest_artwork_scores(pretrained, p_rows, vote),
               space=pretrained.name)
    bar.close()
    return {"collection": str(collection.root), "artist_column": artist_column, "head": head.id,
            "head_label": head.config.label, "split": split if head.split or split == "all" else f"{split} (stratified, seed {seed})",
            "queries": queries, "n_queries": int(len(rows)), "n_artists": len(names), "n_works": int(len(learned.ids)),
            "profile_config": config.to_dict(), "pretrained_space": pretrained_name, "methods": methods}
