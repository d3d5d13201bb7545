"""Membership-inference attacks as pure functions of scores: what an attacker computes from a
released model (or profile) to guess whether an artwork was in its training data.

- ``confidence_scores``: the loss / confidence threshold attack (Yeom et al. 2018): members tend to
  get a higher confidence in their true class (a lower loss); the score is the logit-scaled
  confidence log(p / (1 - p)), so the threshold sweeps every value.
- ``lira_scores``: the likelihood-ratio attack (LiRA; Carlini et al. 2022): shadow models trained on
  random halves of the data give, for each example, the distribution of its score when it was in
  training and when it was not; the attack scores the target's value by the ratio of the two
  Gaussian likelihoods (online), or by how far above the "out" distribution it lies (offline, for
  examples without "in" shadows).
- ``membership_roc``: ROC AUC and the true-positive rate at low false-positive rates (1 %, 0.1 %),
  the numbers Carlini et al. argue an auditor should report, and the curve itself.
"""

from __future__ import annotations

import numpy as np

LOW_FPR = (0.01, 0.001)
EPS = 1e-6


def logit_confidence(proba: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """log(p_y / (1 - p_y)) of each row's true class ``codes`` (rows of class probabilities)."""
    p = np.clip(proba[np.arange(len(codes)), codes].astype(np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def confidence_scores(proba: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The threshold attack's membership score (higher: more likely a member)."""
    return logit_confidence(proba, codes)


def lira_scores(target: np.ndarray, shadow: np.ndarray, shadow_in: np.ndarray, min_in: int = 2) -> np.ndarray:
    """LiRA membership scores (higher: more likely a member).

    ``target`` (n,): each example's score under the attacked model; ``shadow`` (s, n): its score under
    each shadow model; ``shadow_in`` (s, n) bool: whether it trained that shadow. With few shadows the
    per-example variances are noisy, so (as Carlini et al. advise) one global variance per side is used.
    Examples with fewer than ``min_in`` "in" shadows get the offline score (one-sided test against the
    "out" distribution) shifted onto the online scale by the mean gap of the others."""
    target = np.asarray(target, dtype=np.float64)
    shadow = np.asarray(shadow, dtype=np.float64)
    shadow_in = np.asarray(shadow_in, dtype=bool)
    n_in, n_out = shadow_in.sum(axis=0), (~shadow_in).sum(axis=0)
    mean_in = np.where(n_in > 0, (shadow * shadow_in).sum(axis=0) / np.maximum(n_in, 1), np.nan)
    mean_out = np.where(n_out > 0, (shadow * ~shadow_in).sum(axis=0) / np.maximum(n_out, 1), np.nan)
    var_in = _pooled_variance(shadow, shadow_in, mean_in)
    var_out = _pooled_variance(shadow, ~shadow_in, mean_out)
    offline = (target - np.nan_to_num(mean_out, nan=np.nanmean(mean_out))) / np.sqrt(var_out)
    online = (-(target - mean_in) ** 2 / (2 * var_in) + (target - mean_out) ** 2 / (2 * var_out)
              - 0.5 * np.log(var_in / var_out))
    use_online = (n_in >= min_in) & (n_out >= min_in)
    return np.where(use_online, online, offline)


def _pooled_variance(values: np.ndarray, mask: np.ndarray, means: np.ndarray) -> float:
    deviations = np.where(mask, values - np.nan_to_num(means)[None, :], 0.0)
    dof = max(int(mask.sum()) - int((mask.sum(axis=0) > 0).sum()), 1)
    return max(float((deviations ** 2).sum()) / dof, 1e-6)


def membership_roc(member_scores: np.ndarray, nonmember_scores: np.ndarray, low_fpr=LOW_FPR) -> dict:
    """ROC AUC (ties count half), TPR at each of ``low_fpr`` and the curve (fpr, tpr) of scores where
    higher means "member". Chance is AUC 0.5 and TPR = FPR."""
    members = np.asarray(member_scores, dtype=np.float64)
    others = np.asarray(nonmember_scores, dtype=np.float64)
    if len(members) == 0 or len(others) == 0:
        return {"auc": None, **{_tpr_key(f): None for f in low_fpr}, "n_members": len(members),
                "n_nonmembers": len(others), "fpr": [], "tpr": []}
    scores = np.concatenate([members, others])
    truth = np.concatenate([np.ones(len(members), bool), np.zeros(len(others), bool)])
    order = np.argsort(-scores, kind="stable")
    scores, truth = scores[order], truth[order]
    distinct = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last row of each run of ties
    tp = np.cumsum(truth)[distinct]
    fp = np.cumsum(~truth)[distinct]
    tpr = np.r_[0.0, tp / len(members)]
    fpr = np.r_[0.0, fp / len(others)]
    auc = float(np.trapezoid(tpr, fpr))
    out = {"auc": auc, "n_members": int(len(members)), "n_nonmembers": int(len(others))}
    for f in low_fpr:
        out[_tpr_key(f)] = float(tpr[fpr <= f].max()) if (fpr <= f).any() else 0.0
    keep = _thin(len(fpr), 400)
    out["fpr"] = fpr[keep].round(5).tolist()
    out["tpr"] = tpr[keep].round(5).tolist()
    return out


def _tpr_key(fpr: float) -> str:
    return f"tpr@{100 * fpr:g}%fpr"


def _thin(n: int, most: int) -> np.ndarray:
    """Indices of at most ``most`` points of a curve of ``n``, always keeping both ends."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.r_[np.linspace(0, n - 1, most).round().astype(int), n - 1])
