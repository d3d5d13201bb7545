"""The robust detector: an edit-invariant descriptor and a calibrated cosine threshold.

Descriptor: pooled EfficientNet-Lite0 taps (``copyright.taps``) -> standardisation -> a two-layer
projection head -> L2 normalisation. The head is trained the SSCD way, on cached features only: every
registered work is seen as its original and ``views`` seeded edits (``copyright.edits``), and a
multi-positive InfoNCE loss pulls a work's views together while pushing other works away; a KoLeo
term spreads the originals over the sphere, which keeps unrelated images' scores low.

Threshold: a share of the works is held out of training; their originals (unedited) and edited views
play unregistered queries, and one extra edit of every training work plays a registered copy. The
operating threshold is the lowest cosine that keeps ``target_precision`` on that mix and stays above
every held-out score. A small registry holds out too few works to meet its hardest look-alikes (a
painting by the same hand), so the split is repeated on further folds, one head each, until about
``calibration_works`` works have been held out; the scores are pooled and the first fold's head is kept.

Whatever the registry's size, the threshold is then raised above a floor (``copyright.distractors``): the best score that
generated distractors (flat fields, noise, gradients, stripes and checks, pictures no one registers)
reach against the registered works, plus ``margin``. A registry under ``min_calibration_works`` works
is not calibrated and would keep the fixed default, which such images can exceed; the floor holds
for it too.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from artlens.copyright.code_shortlist import CodeShortlist
from artlens.copyright.config import RobustConfig
from artlens.copyright.taps import COPY_TAPS
from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.features import create_extractor
from artlens.files import save_torch, write_arrays, write_json
from artlens.metrics.copy_detection import threshold_for_precision
from artlens.progress import QUIET, Reporter

HEAD_FORMAT = 1


class ProjectionHead(nn.Module):
    """Standardise, Linear-GELU-Dropout-Linear, L2-normalise."""

    def __init__(self, in_dim: int, hidden: int, dim: int, dropout: float = 0.1):
        super().__init__()
        self.config = {"in_dim": in_dim, "hidden": hidden, "dim": dim, "dropout": dropout}
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("inv_std", torch.ones(in_dim))
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def fit_standardisation(self, x: torch.Tensor) -> None:
        std = x.std(0)
        # near-constant inputs (few works, dead channels) must not be blown up into noise
        self.mean.copy_(x.mean(0))
        self.inv_std.copy_(1.0 / std.clamp(min=0.1 * float(std.mean()) + 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net((x - self.mean) * self.inv_std), dim=1)

    @torch.inference_mode()
    def encode(self, taps: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """(N, in_dim) pooled taps -> (N, dim) float32 unit descriptors."""
        self.eval()
        x = np.asarray(taps, dtype=np.float32)
        out = [self(torch.from_numpy(x[i : i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.config["dim"]), np.float32)

    def fingerprint(self) -> str:
        digest = hashlib.sha1()
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().numpy().tobytes())
        return digest.hexdigest()[:12]


def supervised_info_nce(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Multi-positive InfoNCE: every embedding against all others of the batch, the other views of
    the same work being its positives."""
    sim = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    return -(log_prob.masked_fill(~positives, 0).sum(1) / positives.sum(1).clamp(min=1)).mean()


def koleo(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Kozachenko-Leonenko entropy estimate (negated): small when nearest neighbours are far apart."""
    with torch.no_grad():
        sim = z @ z.T
        sim.fill_diagonal_(-2.0)
        nearest = sim.argmax(1)
    return -torch.log((z - z[nearest]).norm(dim=1) + eps).mean()


def train_head(views: np.ndarray, config: RobustConfig, reporter: Reporter = QUIET,
               start: ProjectionHead | None = None, device: str = "cpu") -> ProjectionHead:
    """Train a projection head on ``views`` (works, 1 + edited views, taps dim): view 0 is the original.
    ``start``: a head of the same shape to fine-tune (its weights and standardisation are kept).
    ``device``: where the head trains (a resolved torch device name); the trained head is on the CPU,
    and the batch order is the same on every device (drawn from a CPU generator)."""
    n_works, n_views, in_dim = views.shape
    if n_works < 2 or n_views < 2:
        raise ValueError("training needs at least two works with an original and one edited view each")
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    head = ProjectionHead(in_dim, config.hidden, config.dim, config.dropout)
    if start is not None and start.config == head.config:
        head.load_state_dict(start.state_dict())
    else:
        head.fit_standardisation(
            torch.from_numpy(views.reshape(-1, in_dim)[:: max(1, n_views // 2)].astype(np.float32)))
    per_batch = min(config.batch_works, n_works)
    steps_per_epoch = max(1, n_works // per_batch)
    total = config.epochs * steps_per_epoch
    m = min(config.views_per_work, n_views)
    head.to(device)
    with torch.enable_grad():  # the backbone loader switches autograd off process-wide
        head.train()
        optimiser = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda s: min(1.0, (s + 1) / max(1, total // 20)) * 0.5 * (1 + math.cos(math.pi * s / total)))
        step = 0
        for epoch in range(config.epochs):
            order = torch.randperm(n_works, generator=gen)
            for b in range(steps_per_epoch):
                works = order[b * per_batch : (b + 1) * per_batch].numpy()
                edited = torch.argsort(torch.rand(len(works), n_views - 1, generator=gen), dim=1)[:, : m - 1] + 1
                picks = np.concatenate([np.zeros((len(works), 1), np.int64), edited.numpy()], axis=1)
                x = torch.from_numpy(views[works[:, None], picks].astype(np.float32)).reshape(-1, in_dim).to(device)
                labels = torch.arange(len(works), device=device).repeat_interleave(m)
                z = head(x)
                loss = supervised_info_nce(z, labels, config.temperature)
                if config.koleo_weight:
                    loss = loss + config.koleo_weight * koleo(z[::m])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                step += 1
            if (epoch + 1) % max(1, config.epochs // 10) == 0:
                reporter.step(f"  robust head epoch {epoch + 1}/{config.epochs}: loss {loss.item():.4f}")
    head.to("cpu")
    head.eval()
    return head


@dataclass
class Calibration:
    threshold: float
    target_precision: float
    positives: int  # held-out edits of training works
    negatives: int  # originals and edited views of works left out of training
    max_negative: float
    threshold_for_precision: float
    recall_at_threshold: float
    max_unedited_negative: float = -1.0  # the best score of a held-out work's original
    folds: int = 1  # training splits whose scores were pooled (one head each)
    heldout_works: int = 0  # works left out of training, over all folds


@dataclass
class CalibrationScores:
    """Top-1 scores of one training split: registered copies (and whether their top-1 was right) and
    unregistered queries (whether each is a held-out work's unedited original)."""

    positive: np.ndarray
    positive_correct: np.ndarray
    negative: np.ndarray
    negative_unedited: np.ndarray
    heldout_works: int

    @classmethod
    def pooled(cls, parts: list["CalibrationScores"]) -> "CalibrationScores":
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("positive", "positive_correct", "negative", "negative_unedited")),
                   sum(p.heldout_works for p in parts))


def calibration_scores(head: ProjectionHead, train_views: np.ndarray, calibration_view: np.ndarray,
                       heldout_views: np.ndarray) -> CalibrationScores:
    """Scores of one split: ``train_views`` (n, V, D) of the training works (view 0, the original, is
    indexed); ``calibration_view`` (n, D) one more edit of each; ``heldout_views`` (h, V', D) views of
    the held-out works, view 0 their unedited original."""
    index = head.encode(train_views[:, 0])
    positives = head.encode(calibration_view) @ index.T
    h, n_views, dim = heldout_views.shape
    negatives = head.encode(heldout_views.reshape(-1, dim)) @ index.T
    unedited = np.zeros((h, n_views), bool)
    unedited[:, 0] = True
    return CalibrationScores(positives.max(1), positives.argmax(1) == np.arange(len(index)),
                             negatives.max(1) if len(negatives) else np.zeros(0, np.float32), unedited.reshape(-1), h)


def threshold_from_scores(scores: CalibrationScores, config: RobustConfig, folds: int = 1) -> Calibration:
    """The lowest cosine that keeps ``target_precision`` and stays ``margin`` above every negative."""
    pos, correct, neg = scores.positive, scores.positive_correct, scores.negative
    all_scores = np.concatenate([pos, neg])
    all_correct = np.concatenate([correct, np.zeros(len(neg), bool)])
    t_precision = threshold_for_precision(all_scores, all_correct, len(pos), config.target_precision)
    max_negative = float(neg.max()) if len(neg) else -1.0
    threshold = float(min(max(t_precision, max_negative + config.margin), 1.0))
    recall = float((correct & (pos >= threshold)).mean())
    unedited = neg[scores.negative_unedited]
    return Calibration(threshold, config.target_precision, len(pos), len(neg), max_negative, float(t_precision),
                       recall, float(unedited.max()) if len(unedited) else -1.0, folds, scores.heldout_works)


def background_offsets(descriptors: np.ndarray, background: np.ndarray | None, k: int, beta: float) -> np.ndarray:
    """SSCD's score normalisation: ``beta`` times each descriptor's ``k``-th best cosine to a background
    set of pictures that are not registered (zeros without one). A query that resembles many pictures
    (a generic landscape, a painter's usual motif) scores high against the background too, so its
    score to the registry is lowered more than that of a copy, which resembles one work."""
    d = np.asarray(descriptors, np.float32)
    if background is None or not len(background) or k < 1 or not beta:
        return np.zeros(len(d), np.float32)
    sims = d @ np.asarray(background, np.float32).T
    k = min(k, sims.shape[1])
    return (beta * np.partition(sims, -k, axis=1)[:, -k]).astype(np.float32)


def registry_calibration(index: np.ndarray, rows: np.ndarray, views: np.ndarray, config: RobustConfig,
                         folds: int = 1, offsets: np.ndarray | None = None) -> Calibration:
    """The operating threshold of a registry whose head was not trained on it (the general head):
    every work can play an unregistered one. ``index`` (N, d): the descriptors of all registered works;
    ``rows`` (s,): a sample of them; ``views`` (s, V, d): edited views of the sampled works.

    Registered copies: each view against the whole index (right if its top-1 is its own work).
    Unregistered look-alikes: each sampled work's original and views against the index without it
    (another work whose original scores ``duplicate_score`` or more against its original is the same
    picture registered twice, not a look-alike, and is left out too). ``offsets`` (s, 1 + V): subtracted from
    every score of that query (the background normalisation, :func:`background_offsets`)."""
    index = np.asarray(index, np.float32)
    rows = np.asarray(rows, np.int64)
    s, n_views, dim = views.shape
    queries = np.concatenate([index[rows][:, None], views], axis=1)  # (s, 1 + V, d), 0 the original
    sims = queries.reshape(-1, dim) @ index.T
    own = np.repeat(rows, 1 + n_views)
    at = np.arange(len(own))
    own_score = sims[at, own].copy()
    # the work itself, and works whose original is (nearly) the same picture as its original
    same = np.repeat(index[rows] @ index.T >= config.duplicate_score, 1 + n_views, axis=0)
    same[at, own] = True
    sims[same] = -np.inf
    other = sims.max(1) if sims.shape[1] > 1 else np.full(len(own), -1.0, np.float32)
    if offsets is not None:
        shift = np.asarray(offsets, np.float32).reshape(-1)
        own_score, other = own_score - shift, other - shift
    is_view = np.tile(np.r_[False, np.ones(n_views, bool)], s)
    positive = np.maximum(own_score[is_view], other[is_view])
    correct = own_score[is_view] >= other[is_view]
    scores = CalibrationScores(positive, correct, other, ~is_view, s)
    return threshold_from_scores(scores, config, folds)


def calibrate_threshold(head: ProjectionHead, train_views: np.ndarray, calibration_view: np.ndarray,
                        heldout_views: np.ndarray, config: RobustConfig) -> Calibration:
    """Operating threshold of one split (see :func:`calibration_scores`)."""
    return threshold_from_scores(calibration_scores(head, train_views, calibration_view, heldout_views), config)


def calibration_folds(n_works: int, config: RobustConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """(held-out, training) rows of each split: ``holdout`` of the works per fold, disjoint folds, as
    many as it takes to hold out about ``calibration_works`` works (at most every work once)."""
    order = np.random.default_rng(config.seed).permutation(n_works)
    n_out = max(1, int(round(config.holdout * n_works)))
    folds = max(1, min(math.ceil(config.calibration_works / n_out), n_works // n_out))
    out = []
    for f in range(folds):
        held = order[f * n_out : (f + 1) * n_out]
        out.append((np.sort(held), np.sort(np.setdiff1d(order, held))))
    return out


def train_calibrated_head(views: np.ndarray, calibration_view: np.ndarray, config: RobustConfig,
                          reporter: Reporter = QUIET, start: ProjectionHead | None = None, device: str = "cpu"
                          ) -> tuple[ProjectionHead, Calibration]:
    """The head of the first split and the threshold from every split's scores.

    ``views``: (n, 1 + views, D), view 0 the original; ``calibration_view``: (n, E, D) further edits,
    the first of which plays each training work's registered copy (all of them, the held-out works')."""
    parts, first = [], None
    splits = calibration_folds(len(views), config)
    for f, (held, kept) in enumerate(splits):
        if len(splits) > 1:
            reporter.step(f"  calibration split {f + 1}/{len(splits)}: {len(held)} works held out")
        head = train_head(views[kept], config, reporter if f == 0 else QUIET, start=start, device=device)
        first = head if first is None else first
        heldout = np.concatenate([views[held], calibration_view[held]], axis=1)
        parts.append(calibration_scores(head, views[kept], calibration_view[kept, 0], heldout))
    return first, threshold_from_scores(CalibrationScores.pooled(parts), config, len(splits))


class RobustDetector:
    """Registered descriptors in an exact inner-product index, the head that makes them, and the
    operating threshold."""

    kind = "robust"

    def __init__(self, head: ProjectionHead, taps_id: str, threshold: float, info: dict | None = None,
                 code_bits: int = 64):
        self.head = head
        self.taps_id = taps_id
        self.threshold = float(threshold)
        self.info = dict(info or {})
        self.code_bits = int(code_bits)
        self.ids = np.zeros(0, np.int64)
        self.vectors = np.zeros((0, head.config["dim"]), np.float32)
        self._index: faiss.Index | None = None
        self._codes: CodeShortlist | None = None
        self._descriptor_id: str | None = None

    @property
    def descriptor_id(self) -> str:
        if self._descriptor_id is None:  # the head does not change once trained
            self._descriptor_id = f"robust[{self.taps_id}]/{self.head.fingerprint()}"
        return self._descriptor_id

    def __len__(self) -> int:
        return len(self.ids)

    def set_works(self, ids: np.ndarray, taps: np.ndarray) -> None:
        """Index exactly these works (their pooled taps), replacing what was indexed."""
        self.ids = np.asarray(ids, np.int64)
        self.vectors = self.head.encode(taps) if len(self.ids) else np.zeros((0, self.head.config["dim"]), np.float32)
        self._index = None
        self._refresh_codes()

    def sync(self, ids: np.ndarray, taps_for) -> bool:
        """Index exactly ``ids``: known works keep their descriptors, new ones are described from
        ``taps_for(list of new ids)``. Returns whether anything changed."""
        ids = np.asarray(ids, np.int64)
        rows = {int(i): r for r, i in enumerate(self.ids)}
        new = [r for r, i in enumerate(ids.tolist()) if i not in rows]
        if not new and len(rows) == len(ids):
            return False
        vectors = np.zeros((len(ids), self.head.config["dim"]), np.float32)
        kept = [r for r, i in enumerate(ids.tolist()) if i in rows]
        vectors[kept] = self.vectors[[rows[int(ids[r])] for r in kept]]
        if new:
            vectors[new] = self.head.encode(taps_for([int(ids[r]) for r in new]))
        self.ids, self.vectors, self._index = ids, vectors, None
        self._refresh_codes()
        return True

    def describe(self, taps: np.ndarray) -> np.ndarray:
        return self.head.encode(taps)

    # -- binary codes (fast mode) ---------------------------------------------------------------
    def _refresh_codes(self) -> None:
        """Re-encode the codes of the indexed works, keeping the fitted hasher of this head."""
        hasher = self._codes.hasher if self._codes is not None else None
        self._codes = None
        if len(self.ids) >= 2:
            self._codes = CodeShortlist.build(self.vectors, self.ids, self.descriptor_id, self.code_bits,
                                                hasher=hasher)

    @property
    def codes(self) -> CodeShortlist | None:
        """The binary codes of the indexed works (built on first use; None with fewer than two works)."""
        if self._codes is None or len(self._codes) != len(self.ids):
            self._refresh_codes()
        return self._codes

    def uses_shortlist(self, fast: bool, k: int = 1, shortlist: int = 100) -> bool:
        """Whether :meth:`search` answers through the binary shortlist: asked for, more works than the
        shortlist holds, and codes available (otherwise every work is scored)."""
        return bool(fast) and len(self.ids) > max(shortlist, k) and self.codes is not None

    def search(self, descriptors: np.ndarray, k: int = 1, fast: bool = False, shortlist: int = 100
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` cosine scores and work ids (-1 pads when fewer works). ``fast``: score only the
        ``shortlist`` works nearest in Hamming distance of the binary codes (see ``copyright.code_shortlist``)."""
        if self.uses_shortlist(fast, k, shortlist):
            return self._search_shortlist(descriptors, k, shortlist)
        if self._index is None:
            self._index = faiss.IndexFlatIP(self.vectors.shape[1])
            if len(self.vectors):
                self._index.add(np.ascontiguousarray(self.vectors, np.float32))
        q = np.ascontiguousarray(descriptors, np.float32)
        if not len(self.ids):
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        scores, pos = self._index.search(q, k)
        ids = np.where(pos >= 0, self.ids[np.clip(pos, 0, None)], -1)
        return scores, ids

    def _search_shortlist(self, descriptors: np.ndarray, k: int, shortlist: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(descriptors, np.float32)
        rows = self.codes.rows(q, shortlist)
        sims = np.einsum("qd,qnd->qn", q, self.vectors[rows])
        best = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, best, 1), self.ids[np.take_along_axis(rows, best, 1)]

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        payload = {"format": HEAD_FORMAT, "config": self.head.config, "state_dict": self.head.state_dict()}
        save_torch(payload, folder / "head.pt")
        write_arrays(folder / "index.npz", ids=self.ids, vectors=self.vectors.astype(np.float16))
        meta = {"descriptor_id": self.descriptor_id, "taps_id": self.taps_id, "threshold": self.threshold,
                "count": len(self.ids), **self.info}
        write_json(meta, folder / "detector.json")
        if self.codes is not None:
            self.codes.save(folder)

    @classmethod
    def load(cls, folder: str | Path, expected_taps_id: str, code_bits: int = 64) -> "RobustDetector":
        folder = Path(folder)
        try:
            meta = json.loads((folder / "detector.json").read_text())
            payload = torch.load(folder / "head.pt", map_location="cpu", weights_only=True)
            stored = np.load(folder / "index.npz")
        except (OSError, ValueError, RuntimeError) as exc:
            raise ArtifactMismatchError(f"cannot read the robust detector in {folder}: {exc}",
                                        "retrain it: artlens registry train --registry PATH") from exc
        if payload.get("format") != HEAD_FORMAT or meta.get("taps_id") != expected_taps_id:
            raise ArtifactMismatchError(
                f"the robust detector in {folder} was built from {meta.get('taps_id')!r} features "
                f"(format {payload.get('format')}), this artlens computes {expected_taps_id!r}",
                "retrain it: artlens registry train --registry PATH",
            )
        head = ProjectionHead(**payload["config"])
        head.load_state_dict(payload["state_dict"])
        head.eval()
        info = {k: v for k, v in meta.items() if k not in ("descriptor_id", "taps_id", "threshold", "count")}
        detector = cls(head, meta["taps_id"], meta["threshold"], info, code_bits)
        if detector.descriptor_id != meta.get("descriptor_id"):
            raise ArtifactMismatchError(f"the robust head in {folder} does not match its index",
                                        "retrain it: artlens registry train --registry PATH")
        detector.ids = stored["ids"].astype(np.int64)
        detector.vectors = stored["vectors"].astype(np.float32)
        try:
            detector._codes = CodeShortlist.load(folder, detector.descriptor_id, detector.ids)
        except ArtlensError:  # mismatched, missing or unreadable codes
            detector._codes = None  # are rebuilt from the descriptors on first use
        return detector

