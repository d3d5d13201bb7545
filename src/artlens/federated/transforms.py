"""Fitting the head's input transforms (L2 norm, PCA of wide inputs, standardisation) across
institutions from aggregate statistics only, so that a federated head reads its inputs exactly as a
central one would (``FusionHead.fit_inputs`` on pooled data).

Stages, each answered by every institution with sums over its own artworks:

1. ``mean``: sum of the L2-normalised vectors and their count, per input;
2. ``power`` (wide inputs, a few times): ``Xc^T (Xc Q)`` for the server's current basis ``Q``:
   randomised subspace iteration on the pooled covariance (Halko et al. 2011), then a Rayleigh-Ritz
   step gives the principal components;
3. ``moments``: sum and sum of squares of the projected vectors, for the standardisation.

The server never receives one artwork's vector, nor statistics it could solve for one: an institution
with fewer than three artworks is refused earlier, and per-style sums (and sums of outer products)
leave out the styles an institution holds fewer than three times (from the sum and the sum of outer
products of two vectors, both can be recovered exactly; with three or more they are undetermined).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from artlens.errors import ArtlensError
from artlens.federated.head import shared_classes, transform_arrays
from artlens.models.inputs import FeatureSet
from artlens.vectors import l2_normalise

STAGES = ("mean", "power", "moments", "styles")
OVERSAMPLE = 16


def _key(extractor: str) -> str:
    return extractor.replace(".", "_")


def _vectors(data: FeatureSet, extractor: str) -> np.ndarray:
    x = data.inputs[extractor]
    if extractor in data.present:
        x = x[np.asarray(data.present[extractor], dtype=bool)]
    return l2_normalise(x, axis=1).astype(np.float64)  # as the head normalises them; sums in float64


# -- institution side -----------------------------------------------------------------------------
def local_statistics(head, data: FeatureSet, stage: str, arrays: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """(arrays, counts) of one stage over this institution's training vectors; for ``moments``,
    ``head`` carries the transforms fitted so far (mean and components)."""
    out: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for spec in head.config.inputs:
        name = _key(spec.extractor)
        x = _vectors(data, spec.extractor)
        counts[f"{name}.n"] = len(x)
        if stage == "mean":
            out[f"{name}.sum"] = x.sum(axis=0)
        elif stage == "power":
            if f"{name}.basis" not in arrays:
                continue
            xc = x - np.asarray(arrays[f"{name}.mean"], dtype=np.float64)
            out[f"{name}.product"] = xc.T @ (xc @ np.asarray(arrays[f"{name}.basis"], dtype=np.float64))
        elif stage == "moments":
            transform = head.transforms[name]
            with torch.no_grad():
                y = transform(torch.from_numpy(x.astype(np.float32)), standardise=False).double().numpy()
            out[f"{name}.sum"] = y.sum(axis=0)
            out[f"{name}.sumsq"] = (y ** 2).sum(axis=0)
        else:
            raise ArtlensError(f"unknown statistics stage {stage!r}", f"use one of {', '.join(STAGES)}")
    return {k: v.astype(np.float64) for k, v in out.items()}, counts


# -- server side ----------------------------------------------------------------------------------
Query = Callable[[str, dict[str, np.ndarray]], Sequence[tuple[dict[str, np.ndarray], dict[str, int]]]]


def _total(replies, key: str):
    return sum(np.asarray(arrays[key], dtype=np.float64) for arrays, _ in replies if key in arrays)


def fit_transforms(head, query: Query, iterations: int = 4, seed: int = 0) -> dict[str, int]:
    """Fit ``head``'s input transforms from the institutions' sums; ``query(stage, arrays)`` sends a
    stage to every institution and returns their (arrays, counts). Returns the pooled counts."""
    replies = query("mean", {})
    if not replies:
        raise ArtlensError("no institution answered the statistics round", "check that the clients are running")
    counts: dict[str, int] = {}
    means: dict[str, np.ndarray] = {}
    for spec in head.config.inputs:
        name = _key(spec.extractor)
        n = sum(int(c.get(f"{name}.n", 0)) for _, c in replies)
        if n == 0:
            raise ArtlensError(f"no institution has {spec.extractor} features",
                               f"extract them at the institutions, or leave {spec.extractor} out of --features")
        counts[spec.extractor] = n
        means[name] = _total(replies, f"{name}.sum") / n
    wide = {_key(s.extractor): s for s in head.config.inputs if head.transforms[_key(s.extractor)].components.shape[0]}
    rng = np.random.default_rng(seed)
    bases = {}
    for name, spec in wide.items():
        k = head.transforms[name].components.shape[0]
        if counts[spec.extractor] <= k:
            raise ArtlensError(f"cannot reduce {spec.raw_dim}-d {spec.extractor} features to {k} dimensions with "
                               f"{counts[spec.extractor]} training artworks in the federation",
                               "label more artworks, or train with a smaller --reduce")
        bases[name] = np.linalg.qr(rng.standard_normal((spec.raw_dim, min(k + OVERSAMPLE, spec.raw_dim))))[0]
    for step in range(iterations + 1 if wide else 0):
        payload = {f"{n}.mean": means[n] for n in wide} | {f"{n}.basis": b for n, b in bases.items()}
        replies = query("power", payload)
        for name in wide:
            product = _total(replies, f"{name}.product")
            if step < iterations:
                bases[name] = np.linalg.qr(product)[0]
            else:  # Rayleigh-Ritz: eigenvectors of the covariance restricted to the subspace
                small = bases[name].T @ product
                values, vectors = np.linalg.eigh((small + small.T) / 2)
                k = head.transforms[name].components.shape[0]
                order = np.argsort(values)[::-1][:k]
                bases[name] = bases[name] @ vectors[:, order]
    with torch.no_grad():
        for spec in head.config.inputs:
            name = _key(spec.extractor)
            transform = head.transforms[name]
            transform.mean.copy_(torch.from_numpy(means[name].astype(np.float32)))
            if name in wide:
                transform.components.copy_(torch.from_numpy(bases[name].T.astype(np.float32)))
    replies = query("moments", transform_arrays(head))
    with torch.no_grad():
        for spec in head.config.inputs:
            name = _key(spec.extractor)
            n = sum(int(c.get(f"{name}.n", 0)) for _, c in replies)
            mean = _total(replies, f"{name}.sum") / n
            var = np.maximum(_total(replies, f"{name}.sumsq") / n - mean ** 2, 0.0)
            head.transforms[name].shift.copy_(torch.from_numpy(mean.astype(np.float32)))
            head.transforms[name].scale.copy_(torch.from_numpy(np.maximum(np.sqrt(var), 1e-6).astype(np.float32)))
    head.weights_changed()
    return counts



# -- fedstyle's virtual styles: per-style means and the pooled within-style covariance -------------
STYLE_MEAN, STYLE_FACTOR, STYLE_COUNT = "styles.mean", "styles.factor", "styles.count"


def fitted_inputs(head, data: FeatureSet) -> np.ndarray:
    """The required inputs after the head's fitted transforms, concatenated (what its layers read)."""
    with torch.no_grad():
        x = head.transform({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in data.inputs.items()})
    return torch.cat([x[s.extractor] for s in head.config.inputs if not s.optional], dim=1).double().numpy()


def local_style_statistics(head, data: FeatureSet) -> tuple[dict, dict]:
    """Per-style sums and counts of the fitted inputs and their summed outer products, over the
    styles this institution holds at least twice (see ``head.shared_classes``)."""
    x = fitted_inputs(head, data)
    codes = np.asarray(data.labels[:, 0])
    keep = shared_classes(codes, len(head.config.classes))
    sums = np.zeros((len(head.config.classes), x.shape[1]))
    np.add.at(sums, codes[keep], x[keep])
    counts = np.bincount(codes[keep], minlength=len(head.config.classes)).astype(np.float64)
    return {"styles.sum": sums, "styles.count": counts, "styles.outer": x[keep].T @ x[keep]}, {"n": int(keep.sum())}


def style_statistics(head, query: Query, ridge: float = 1e-3) -> dict[str, np.ndarray]:
    """The federation's per-style means and a square-root factor F (F F^T = covariance) of the pooled
    within-style covariance of the fitted inputs (the Gaussian model of linear discriminant analysis),
    from the institutions' sums (``styles`` stage). ``mean[c] + F @ z`` draws a virtual artwork of
    style c. ``ridge``: share of the mean variance added to the diagonal."""
    replies = query("styles", transform_arrays(head))
    counts = _total(replies, "styles.count")
    n = counts.sum()
    if n < 2:
        raise ArtlensError("too few artworks in the federation for style statistics", "label more artworks")
    means = _total(replies, "styles.sum") / np.maximum(counts, 1)[:, None]
    within = (_total(replies, "styles.outer") - (means.T * counts) @ means) / n
    within = (within + within.T) / 2
    within += ridge * max(float(np.trace(within)) / len(within), 1e-12) * np.eye(len(within))
    values, vectors = np.linalg.eigh(within)
    factor = vectors * np.sqrt(np.maximum(values, 0.0))
    return {STYLE_MEAN: means.astype(np.float32), STYLE_FACTOR: factor.astype(np.float32),
            STYLE_COUNT: counts.astype(np.float32)}
