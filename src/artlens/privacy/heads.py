"""Membership inference against a head (central or federated): can someone holding the published
head tell whether a given artwork was among the ones it was trained on?

The audit knows the truth: the head's training split are the members, its test split (artworks it
never saw) the non-members. It runs the two attacks of ``privacy.attacks`` on the head's classifier
(its confidence in an artwork's true label):

- the threshold attack, which needs nothing but the head;
- LiRA, which trains ``shadows`` shadow heads with the head's own recipe (its stored training
  config) on random halves of the members and non-members, from the collection's cached features
  (no image is decoded), and asks, for each artwork, whether the head's confidence looks more like
  the shadows that trained on it or like those that did not.

A federated head is shadowed by central heads with its local training settings: an approximation
of the federation (stated in the audit), which can only make LiRA weaker than an attacker who could
rerun the federation, never stronger.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from artlens.errors import ArtlensError
from artlens.models import create_head
from artlens.models.inputs import FeatureSet
from artlens.privacy.attacks import lira_scores, logit_confidence, membership_roc
from artlens.privacy.config import AuditConfig
from artlens.progress import QUIET, Reporter
from artlens.settings import from_dict
from artlens.train.config import TrainConfig
from artlens.devices import cpu_threads
from artlens.train.loop import train_head
from artlens.train.privacy import PER_EXAMPLE_LOSSES
from artlens.train.run import labelled_features, score_head
from artlens.train.split import collection_split


def head_recipe(head) -> TrainConfig:
    """The training config stored with a head (``TrainConfig()`` for a head that stored none)."""
    stored = dict(head.info.get("config") or {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return from_dict(TrainConfig, {k: v for k, v in stored.items() if k in known}, "the head's training config")


def audited_features(collection, head) -> tuple[FeatureSet, np.ndarray]:
    """The labelled artworks the head can embed, coded by the head's classes, and each one's split
    (the head's stored split; a federated head: the collection's seeded split, which its simulation
    held its test artworks out by)."""
    if not head.has_classifier:
        raise ArtlensError("this head has no classifier to attack", "audit a head trained with --label COLUMN")
    label = head.config.label
    if label not in collection.catalog.metadata_columns():
        raise ArtlensError(f"the head predicts {label!r}, which this collection has no column for",
                           "audit the head on the collection it was trained on")
    data, classes = labelled_features(collection, head.config.inputs, [label])
    index = {c: k for k, c in enumerate(head.config.classes)}
    recode = np.asarray([index.get(c, -1) for c in classes[0]], dtype=np.int64)
    data.labels = recode[data.labels[:, :1]]
    keep = np.flatnonzero(data.labels[:, 0] >= 0)
    data = data.subset(keep)
    seed = head_recipe(head).seed
    by_id = collection_split(collection, label, head, seed=seed)
    split = np.asarray([by_id.get(int(i), "test") for i in data.ids])
    if not (split == "train").any() or not (split == "test").any():
        raise ArtlensError("the head's split leaves no members (train) or no non-members (test) in this collection",
                           "audit a head trained with a test split (--test-fraction > 0) on this collection")
    return data, split


def true_class_scores(head, data: FeatureSet) -> np.ndarray:
    """Logit-scaled confidence of the head in each artwork's true class."""
    proba = head.predict_proba(head.embed(data.inputs, data.present))
    return logit_confidence(proba, data.labels[:, 0])


def train_shadow(head, recipe: TrainConfig, train: FeatureSet, val: FeatureSet, seed: int):
    """A head of the same shape as ``head`` trained on ``train`` with ``recipe``."""
    config = dataclasses.replace(recipe, seed=seed)
    torch.manual_seed(seed)
    shadow = create_head(head.kind, head.config)
    fitted_on = val if config.private else train  # as train.run fits them
    with cpu_threads(config.threads):
        shadow.fit_inputs(fitted_on.inputs, fitted_on.present, seed)
        train_head(shadow, train, val, config)
    return shadow


def audit_head(collection, head, config: AuditConfig = AuditConfig(), reporter: Reporter = QUIET) -> dict:
    """Utility and membership-inference results of ``head`` on ``collection`` (see the module)."""
    start = time.perf_counter()
    data, split = audited_features(collection, head)
    pool = np.flatnonzero((split == "train") | (split == "test"))
    members = split[pool] == "train"
    val_rows = np.flatnonzero(split == "val")
    audited = data.subset(pool)
    target = true_class_scores(head, audited)  # the threshold attack's score, and LiRA's statistic
    attacks = {"threshold": membership_roc(target[members], target[~members])}
    recipe = head_recipe(head)
    if config.shadow_epochs:
        recipe = dataclasses.replace(recipe, epochs=config.shadow_epochs)
    if recipe.private and recipe.loss not in PER_EXAMPLE_LOSSES:  # fedstyle's own loss has no central twin
        recipe = dataclasses.replace(recipe, loss=PER_EXAMPLE_LOSSES[0])
    shadow_note = None
    if config.shadows:
        if len(val_rows) < 2:
            raise ArtlensError("the collection has no validation split to stop the shadow heads' training on",
                               "audit with --shadows 0 (threshold attack only), or label more artworks")
        val = data.subset(val_rows)
        rng = np.random.default_rng(config.seed)
        shadow = np.zeros((config.shadows, len(pool)))
        shadow_in = np.zeros((config.shadows, len(pool)), dtype=bool)
        for s in reporter.bar(range(config.shadows), desc="shadow heads", unit="head"):
            chosen = _half(audited.labels[:, 0], rng)
            shadow_in[s, chosen] = True
            model = train_shadow(head, recipe, audited.subset(chosen), val, config.seed * 1000 + s + 1)
            shadow[s] = true_class_scores(model, audited)
        scores = lira_scores(target, shadow, shadow_in)
        attacks["lira"] = membership_roc(scores[members], scores[~members])
        if head.info.get("federated"):
            shadow_note = ("shadow heads are central heads with the federation's local training settings "
                           f"({recipe.loss} loss), an approximation of the federation")
    test = data.subset(np.flatnonzero(split == "test"))
    utility = score_head(head, test)
    privacy = head_privacy(head)
    return {"kind": "head", "head": head.id, "label": head.config.label, "trained": training_kind(head),
            "privacy": privacy, "utility": {"map": utility["map"], "top1": utility.get("top1"), "n": utility["n"]},
            "members": int(members.sum()), "nonmembers": int((~members).sum()), "shadows": config.shadows,
            "shadow_recipe": {"loss": recipe.loss, "epochs": recipe.epochs, "batch_size": recipe.batch_size,
                              "dp_records": recipe.dp_records},
            "notes": [n for n in [shadow_note] if n], "attacks": attacks,
            "seconds": round(time.perf_counter() - start, 1)}


def _half(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random half of the rows, stratified by class (each class split in two)."""
    rows = []
    for c in np.unique(codes):
        members = np.flatnonzero(codes == c)
        rows.append(rng.permutation(members)[: max(1, len(members) // 2)])
    return np.sort(np.concatenate(rows))


def training_kind(head) -> str:
    return "federated" if head.info.get("federated") else "central"


def head_privacy(head) -> dict | None:
    """The DP record stored with a head: record-level (``info.privacy``), or a federation's
    institution-level one (``info.federated.dp``)."""
    record = head.info.get("privacy")
    if record:
        return record
    fed = (head.info.get("federated") or {}).get("dp")
    if fed:
        return {"level": "institution", **fed}
    return None
