"""Membership inference against published artist profiles: can someone holding a profile file
tell whether a given artwork was among the works an artist's profile was made from?

A profile file names no works, so the audit makes the publication itself, with the settings of the
file it is given (prototypes, or DP at its epsilon and delta) and in the same head's space: each
artist's works are split at random into published works (members) and held-back works (the
non-members an attacker might try). The attacker's score of an artwork is its best similarity to
its artist's prototypes (the dot product with the noisy mean under DP); LiRA compares it with
shadow publications, each from a fresh random half (and, under DP, fresh noise).

Utility is artist attribution of the held-back works by the published profiles: top-1 and the
mean reciprocal rank of the true artist (the average precision of a ranking with one relevant
artist, so reported as ``map``).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from artlens.artists.portfolio import artist_labels, learned_space
from artlens.artists.profiles import ProfileConfig, ProfileSet, build_profiles
from artlens.errors import ArtlensError
from artlens.privacy.attacks import lira_scores, membership_roc
from artlens.privacy.config import AuditConfig
from artlens.progress import QUIET, Reporter
from artlens.settings import from_dict


def profile_recipe(profiles: ProfileSet) -> ProfileConfig:
    """The settings a profile file was published with."""
    known = {f.name for f in dataclasses.fields(ProfileConfig)}
    return from_dict(ProfileConfig, {k: v for k, v in profiles.config.items() if k in known}, "the profile file's settings")


def published_half(artists: list[str], config: ProfileConfig, rng: np.random.Generator) -> np.ndarray:
    """Rows published (True) and held back: half of each artist's works, at least ``min_works``
    published and one held back; artists with too few works for both are left out (neither)."""
    artists = np.asarray(artists)
    chosen = np.zeros(len(artists), dtype=np.int8)  # 1 published, 0 held back, -1 left out
    for name in np.unique(artists):
        rows = rng.permutation(np.flatnonzero(artists == name))
        k = max(config.min_works, len(rows) // 2)
        if len(rows) <= k:
            chosen[rows] = -1
            continue
        chosen[rows[:k]] = 1
    return chosen


def artist_scores(profiles: ProfileSet, vectors: np.ndarray, artists: list[str]) -> np.ndarray:
    """(rows, artists in ``profiles.names()`` order): each row's best similarity to each artist's
    prototypes (exact prototypes are unit vectors; a DP profile's noisy mean is used as published)."""
    names = profiles.names()
    out = np.full((len(vectors), len(names)), -np.inf)
    for j, name in enumerate(names):
        out[:, j] = (vectors @ profiles.profiles[name].prototypes.T).max(axis=1)
    return out


def audit_profiles(collection, head, profiles: ProfileSet, artist_column: str, config: AuditConfig = AuditConfig(),
                   reporter: Reporter = QUIET) -> dict:
    """Utility and membership-inference results of publishing profiles with ``profiles``' settings
    from ``collection``'s works by ``artist_column`` in ``head``'s space (see the module)."""
    start = time.perf_counter()
    profiles.require_head(head.id, "the head given")
    recipe = profile_recipe(profiles)
    labels = artist_labels(collection, artist_column)
    space = learned_space(collection, head, labels)
    vectors, artists = space.vectors, list(space.artists)
    rng = np.random.default_rng(config.seed)

    def publish(rows: np.ndarray) -> ProfileSet:
        rows = np.flatnonzero(rows)
        return build_profiles(vectors[rows], [artists[r] for r in rows], head.id, recipe, head.config.label)

    def own_scores(published: ProfileSet, rows: np.ndarray) -> np.ndarray:
        names = {n: j for j, n in enumerate(published.names())}
        scores = artist_scores(published, vectors[rows], [artists[r] for r in rows])
        return np.asarray([scores[i, names[artists[r]]] for i, r in enumerate(rows)])

    chosen = published_half(artists, recipe, rng)
    audited = np.flatnonzero(chosen >= 0)
    if len(audited) == 0 or len({artists[r] for r in audited}) < 2:
        raise ArtlensError(f"fewer than two artists have enough works to publish half of them (at least "
                           f"{recipe.min_works} published and one held back each)", "audit a larger collection")
    members = chosen[audited] == 1
    target_set = publish(chosen == 1)
    target = own_scores(target_set, audited)
    attacks = {"threshold": membership_roc(target[members], target[~members])}
    if config.shadows:
        shadow = np.zeros((config.shadows, len(audited)))
        shadow_in = np.zeros((config.shadows, len(audited)), dtype=bool)
        for s in reporter.bar(range(config.shadows), desc="shadow profiles", unit="set"):
            half = published_half(artists, recipe, rng)
            half[chosen < 0] = -1  # the same artists as the target publication
            shadow_in[s] = half[audited] == 1
            shadow[s] = own_scores(publish(half == 1), audited)
        scores = lira_scores(target, shadow, shadow_in)
        attacks["lira"] = membership_roc(scores[members], scores[~members])
    held = audited[~members]
    utility = attribution(target_set, vectors[held], [artists[r] for r in held])
    return {"kind": "profiles", "head": head.id, "artist_column": artist_column, "artists": len(target_set),
            "privacy": _privacy(recipe), "utility": utility, "members": int(members.sum()),
            "nonmembers": int((~members).sum()), "shadows": config.shadows,
            "notes": ["the audit publishes each artist's profile from a random half of their works, with the "
                      "settings of the profile file given"],
            "attacks": attacks, "seconds": round(time.perf_counter() - start, 1)}


def attribution(profiles: ProfileSet, vectors: np.ndarray, artists: list[str]) -> dict:
    """Top-1 and mean reciprocal rank (= AP, one relevant artist) of the true artist among the profiles."""
    names = profiles.names()
    scores = artist_scores(profiles, vectors, artists)
    truth = np.asarray([names.index(a) for a in artists])
    rank = (scores > scores[np.arange(len(truth)), truth][:, None]).sum(axis=1) + 1
    mrr = float(np.mean(1.0 / rank)) if len(rank) else 0.0
    return {"top1": float(np.mean(rank == 1)) if len(rank) else 0.0, "mrr": mrr, "map": mrr, "n": int(len(rank))}


def _privacy(recipe: ProfileConfig) -> dict | None:
    if recipe.epsilon is None:
        return None
    return {"level": "profile (replace one work)", "epsilon": recipe.epsilon, "delta": recipe.delta,
            "mechanism": "gaussian (analytic)"}
