"""Published style profiles: what an artist (or the institution holding their works) releases about
their style, in a head's learned space, instead of the works.

A profile is one to a few unit-length prototypes (spherical k-means over the artist's embeddings),
the number of works behind each, and the total number of works; never a per-work vector, path, file
name or image. With differential privacy the profile is a single prototype: the mean of the artist's
unit-length embeddings released through the Gaussian mechanism (a clustering would leak through its
assignments and counts, which the mechanism does not cover).

A profile file is JSON: schema version, the head's id and dimension, the settings it was made with,
the ids of the publications it holds, and the profiles. Files made with the same head can be merged
(the same artist in two files is combined by counts); a publication, or an artist's profile, met
twice is refused, since its works would count twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.files import write_json
from artlens.progress import QUIET, Reporter
from artlens.vectors import l2_normalise

PROFILES_SCHEMA_VERSION = 1
PROFILES_KIND = "artlens-artist-profiles"


@dataclass(frozen=True)
class ProfileConfig:
    """How profiles are built. Every option has its one default here; the CLI maps flags onto it."""

    max_prototypes: int = 3  # cap on prototypes per artist
    works_per_prototype: int = 10  # one prototype per this many works (at least one)
    min_works: int = 2  # an artist with fewer works is an error: a profile would be that one work
    min_prototype_works: int = 3  # smaller clusters are dissolved: a prototype never stands for one or two works
    kmeans_iterations: int = 25
    seed: int = 0
    epsilon: float | None = None  # differential privacy per profile; None publishes exact prototypes
    delta: float = 1e-5

    def __post_init__(self):
        for name, flag, least in (("max_prototypes", "--max-prototypes 3", 1),
                                  ("works_per_prototype", "--works-per-prototype 10", 1),
                                  ("min_works", None, 2), ("min_prototype_works", None, 1),
                                  ("kmeans_iterations", None, 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ArtlensError(f"{name.replace('_', ' ')} must be a whole number of at least {least}, got {value}",
                                   f"pass e.g. {flag}" if flag else f"set ProfileConfig.{name} to {least} or more")

    def prototypes_for(self, works: int) -> int:
        """Number of prototypes for an artist with ``works`` works: one per ``works_per_prototype``, capped."""
        if self.epsilon is not None:
            return 1
        return int(max(1, min(self.max_prototypes, works // max(1, self.works_per_prototype))))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class ArtistProfile:
    """One artist's published style: prototypes (k, dim; unit vectors, or one noisy mean under DP),
    works per prototype, total works, and the privacy of the release (None, or {"epsilon", "delta",
    "sigma", "sensitivity", ...})."""

    name: str
    prototypes: np.ndarray
    counts: np.ndarray
    works: int
    privacy: dict | None = None

    def to_dict(self, decimals: int = 6) -> dict:
        return {"name": self.name, "works": int(self.works), "counts": [int(c) for c in self.counts],
                "prototypes": np.round(self.prototypes.astype(np.float64), decimals).tolist(),
                "privacy": self.privacy}

    @classmethod
    def from_dict(cls, d: Mapping) -> "ArtistProfile":
        prototypes = np.asarray(d["prototypes"], dtype=np.float32)
        counts = np.asarray(d["counts"], dtype=np.int64)
        if prototypes.ndim != 2 or len(prototypes) != len(counts) or len(counts) == 0:
            raise ArtlensError(f"profile of {d.get('name')!r} is malformed (prototypes and counts disagree)",
                               "publish it again with `artlens artists publish`")
        privacy = d.get("privacy")
        # exact prototypes are unit vectors; a DP profile's noisy mean keeps its length (see private_mean)
        return cls(str(d["name"]), prototypes if privacy else l2_normalise(prototypes), counts, int(d["works"]), privacy)


@dataclass
class ProfileSet:
    """The profiles of several artists, all in the space of one head."""

    head_id: str
    dim: int
    profiles: dict[str, ArtistProfile] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    # ids of the publications (files from `publish`) this set holds: one for a published file, the
    # ids of every file merged into it for a merged one; empty: the set's own content id
    sources: tuple[str, ...] = ()
    head_label: str = ""  # the label column the head was trained on (for the reader; not checked)

    def __len__(self) -> int:
        return len(self.profiles)

    def names(self) -> list[str]:
        return sorted(self.profiles)

    def content_id(self) -> str:
        """An id of this publication from what it publishes (head and profiles, as written): the same
        profiles published twice have the same id; DP profiles, with fresh noise, never do."""
        content = json.dumps([self.head_id, [self.profiles[n].to_dict() for n in self.names()]], sort_keys=True)
        return hashlib.sha256(content.encode()).hexdigest()[:16]

    def publications(self) -> tuple[str, ...]:
        """Ids of the publications this set holds (see ``sources``)."""
        return self.sources or (self.content_id(),)

    def to_dict(self) -> dict:
        return {"kind": PROFILES_KIND, "schema_version": PROFILES_SCHEMA_VERSION, "head": self.head_id,
                "head_label": self.head_label, "dim": self.dim, "config": self.config,
                "sources": list(self.publications()),
                "artists": [self.profiles[n].to_dict() for n in self.names()]}

    def save(self, path: str | Path) -> Path:
        """Write the file atomically (a temporary file renamed into place)."""
        return write_json(self.to_dict(), path, indent=None)

    @classmethod
    def load(cls, path: str | Path) -> "ProfileSet":
        """A profile file, with clear errors for a missing, foreign or outdated one."""
        path = Path(path)
        if not path.is_file():
            raise ArtlensError(f"no profile file at {path}",
                               "publish one: artlens artists publish --collection PATH --artist-column COLUMN "
                               "--head FILE --out PROFILES")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtlensError(f"cannot read profile file {path}: {exc}",
                               "give a file written by `artlens artists publish`") from exc
        if not isinstance(data, dict) or data.get("kind") != PROFILES_KIND:
            raise ArtlensError(f"{path} is not an artlens profile file", "give a file written by `artlens artists publish`")
        if data.get("schema_version") != PROFILES_SCHEMA_VERSION:
            raise ArtifactMismatchError(
                f"profile file {path} has schema version {data.get('schema_version')}, this artlens reads "
                f"{PROFILES_SCHEMA_VERSION}", "publish the profiles again with `artlens artists publish`")
        profiles = {}
        for item in data.get("artists", []):
            profile = ArtistProfile.from_dict(item)
            if profile.prototypes.shape[1] != data["dim"]:
                raise ArtlensError(f"profile of {profile.name!r} in {path} is {profile.prototypes.shape[1]}-d, the "
                                   f"file says {data['dim']}-d", "publish the profiles again")
            profiles[profile.name] = profile
        sources = data.get("sources")  # files written before publication ids held a count: use the content id
        sources = tuple(str(s) for s in sources) if isinstance(sources, list) else ()
        return cls(str(data["head"]), int(data["dim"]), profiles, dict(data.get("config", {})), sources,
                   str(data.get("head_label", "")))

    def require_head(self, head_id: str, what: str = "this head") -> None:
        """Fail when the profiles live in another head's space."""
        if head_id != self.head_id:
            raise ArtifactMismatchError(
                f"the profiles were made with head {self.head_id}, but {what} is {head_id}",
                "search with the head the profiles were published with (--head FILE), or publish them again "
                "with this head")


# -- clustering ----------------------------------------------------------------------------------
def spherical_kmeans(x: np.ndarray, k: int, iterations: int = 25, seed: int = 0,
                     weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit centres (k, dim) and the assignment of each row, by cosine similarity (k-means++ seeding,
    Lloyd iterations on the sphere). Rows may carry ``weights`` (counts, when merging prototypes)."""
    x = l2_normalise(x, dtype=np.float32)
    n = len(x)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    k = int(min(k, n))
    rng = np.random.default_rng(seed)
    first = int(np.argmax(w)) if weights is not None else int(rng.integers(n))
    centres = [x[first]]
    for _ in range(1, k):
        dist = np.maximum(0.0, 1.0 - np.max(x @ np.stack(centres).T, axis=1)) * w
        if dist.sum() <= 0:
            break
        centres.append(x[int(rng.choice(n, p=dist / dist.sum()))])
    centres = np.stack(centres)
    assign = np.argmax(x @ centres.T, axis=1)
    for _ in range(iterations):
        sums = np.zeros(centres.shape, dtype=np.float64)
        np.add.at(sums, assign, x * w[:, None])
        used = np.bincount(assign, minlength=len(centres)) > 0
        centres = l2_normalise(sums[used].astype(np.float32))
        new = np.argmax(x @ centres.T, axis=1)
        if used.all() and np.array_equal(new, assign):
            break
        assign = new
    return centres, assign


def cluster_works(x: np.ndarray, config: "ProfileConfig") -> tuple[np.ndarray, np.ndarray]:
    """An artist's prototypes (unit centres) and each work's prototype: spherical k-means with
    ``config.prototypes_for(n)`` clusters, then clusters of fewer than ``min_prototype_works`` works
    dissolved into the others, smallest first, so no prototype is (nearly) a single work."""
    x = l2_normalise(x, dtype=np.float32)
    centres, assign = spherical_kmeans(x, config.prototypes_for(len(x)), config.kmeans_iterations, config.seed)
    while len(centres) > 1:
        counts = np.bincount(assign, minlength=len(centres))
        smallest = int(np.argmin(counts))
        if counts[smallest] >= config.min_prototype_works:
            break
        centres = np.delete(centres, smallest, axis=0)
        assign = np.argmax(x @ centres.T, axis=1)
        sums = np.zeros(centres.shape, dtype=np.float64)
        np.add.at(sums, assign, x)
        centres = l2_normalise(sums.astype(np.float32))
    return centres, assign


# -- differential privacy ------------------------------------------------------------------------
def mean_sensitivity(works: int) -> float:
    """L2 sensitivity of the mean of ``works`` unit vectors when one work is replaced by another
    (the number of works is public): two unit vectors differ by at most 2, divided by n."""
    return 2.0 / works


def gaussian_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """Smallest standard deviation of Gaussian noise that makes one release of a query with this L2
    ``sensitivity`` (epsilon, delta)-DP: the analytic Gaussian mechanism (Balle & Wang 2018, Thm. 8),
    exact for any epsilon, unlike the classic sqrt(2 ln(1.25/delta)) / epsilon, which needs epsilon < 1."""
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ArtlensError(f"epsilon must be a positive number, got {epsilon}", "pass e.g. --epsilon 8")
    if not 0 < delta < 1:
        raise ArtlensError(f"delta must be between 0 and 1, got {delta}", "pass e.g. --delta 1e-5")

    def phi(t: float) -> float:
        return 0.5 * math.erfc(-t / math.sqrt(2))

    def delta_of(sigma: float) -> float:  # the mechanism's delta at this epsilon, sensitivity 1
        a, b = 1 / (2 * sigma), epsilon * sigma
        return phi(a - b) - math.exp(epsilon) * phi(-a - b)

    low, high = 1e-6, 1.0
    while delta_of(high) > delta:
        high *= 2
    for _ in range(100):  # delta_of decreases with sigma: bisect
        mid = (low + high) / 2
        low, high = (mid, high) if delta_of(mid) > delta else (low, mid)
    return high * sensitivity


def private_mean(vectors: np.ndarray, epsilon: float, delta: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The Gaussian mechanism on the mean of the rows, each clipped to unit length (the embeddings
    already are); returns the noisy mean and the privacy record.

    The noisy mean is published as it is, not rescaled to unit length: its dot product with a query
    is an unbiased estimate of the query's similarity to the true mean (noise of std sigma), while
    normalising would shrink the scores of artists with few works, whose noise is larger."""
    x = l2_normalise(vectors, dtype=np.float64)
    n = len(x)
    sensitivity = mean_sensitivity(n)
    sigma = gaussian_sigma(epsilon, delta, sensitivity)
    noisy = x.mean(axis=0) + rng.normal(0.0, sigma, size=x.shape[1])
    return noisy.astype(np.float32), {
        "mechanism": "gaussian (analytic)", "epsilon": float(epsilon), "delta": float(delta), "sigma": float(sigma),
        "sensitivity": float(sensitivity), "neighbouring": "replace one work (the number of works is public)"}


# -- building and merging ------------------------------------------------------------------------
def build_profile(name: str, vectors: np.ndarray, config: ProfileConfig = ProfileConfig(),
                  rng: np.random.Generator | None = None) -> ArtistProfile:
    """The profile of one artist from the embeddings of their works (rows, unit length)."""
    x = np.asarray(vectors, dtype=np.float32)
    if len(x) < config.min_works:
        raise ArtlensError(
            f"artist {name!r} has {len(x)} work(s); a profile needs at least {config.min_works} (with one, the "
            "profile would publish that work's embedding)",
            "leave that artist out of the collection you publish, or add more of their works")
    if config.epsilon is not None:
        prototype, privacy = private_mean(x, config.epsilon, config.delta,
                                          rng if rng is not None else np.random.default_rng())
        return ArtistProfile(name, prototype[None, :], np.array([len(x)]), len(x), privacy)
    centres, assign = cluster_works(x, config)
    counts = np.bincount(assign, minlength=len(centres))
    keep = counts > 0
    return ArtistProfile(name, centres[keep], counts[keep], len(x))


def check_artists(labels: Sequence[str], min_works: int = 2, with_features: bool = False) -> dict[str, int]:
    """Works per artist; a clear error naming every artist with too few works (``with_features``:
    ``labels`` are those of the artworks that have features, the others having been left out)."""
    counts: dict[str, int] = {}
    for value in labels:
        counts[value] = counts.get(value, 0) + 1
    few = sorted(a for a, c in counts.items() if c < min_works)
    if few:
        shown = ", ".join(repr(a) for a in few[:5]) + (f" and {len(few) - 5} more" if len(few) > 5 else "")
        raise ArtlensError(
            f"{len(few)} artist(s) have fewer than {min_works} works{' with features' if with_features else ''}: "
            f"{shown}; a profile of a single work would publish that work's embedding",
            ("extract the features of their other works (artlens ingest DIR --collection PATH), or " if with_features
             else "") + "leave those artists out (remove their rows from the labels, or their value in the artist "
            "column), or add more of their works")
    if len(counts) < 1:
        raise ArtlensError("no artwork has a value in the artist column", "choose a column that names the artist")
    return counts


def build_profiles(vectors: np.ndarray, labels: Sequence[str], head_id: str, config: ProfileConfig = ProfileConfig(),
                   head_label: str = "", reporter: Reporter = QUIET) -> ProfileSet:
    """Profiles of every artist from the embeddings of their works (row i is by ``labels[i]``)."""
    labels = [str(v) for v in labels]
    check_artists(labels, config.min_works)
    x = np.asarray(vectors, dtype=np.float32)
    by_artist: dict[str, list[int]] = {}
    for row, value in enumerate(labels):
        by_artist.setdefault(value, []).append(row)
    rng = np.random.default_rng(None if config.epsilon is not None else config.seed)  # DP noise must not be replayable
    names = sorted(by_artist)
    profiles = {n: build_profile(n, x[by_artist[n]], config, rng)
                for n in reporter.bar(names, desc="profiles", unit="artist")}
    published = ProfileSet(head_id, x.shape[1], profiles, config.to_dict(), (), head_label)
    published.sources = (published.content_id(),)
    return published


def check_no_duplicates(sets: Sequence[ProfileSet], labels: Sequence[str] | None = None) -> None:
    """Refuse to merge a publication twice (the same file, or a file and a merge that already holds
    it) and an artist's profile met twice (the same profile in two files): its works would count twice."""
    labels = list(labels) if labels is not None else [f"profile set {i + 1}" for i in range(len(sets))]
    seen: dict[str, int] = {}
    for i, s in enumerate(sets):
        for source in s.publications():
            if source in seen:
                raise ArtlensError(
                    f"{labels[seen[source]]} and {labels[i]} both hold publication {source}: merging them would "
                    "count its artists' works twice",
                    "merge each institution's file once; a merged file already holds the files merged into it")
            seen[source] = i
    for name in sorted({n for s in sets for n in s.profiles}):
        holders = [i for i, s in enumerate(sets) if name in s.profiles]
        for a, i in enumerate(holders):
            for j in holders[a + 1:]:
                one, two = sets[i].profiles[name], sets[j].profiles[name]
                if np.array_equal(one.counts, two.counts) and np.allclose(one.prototypes, two.prototypes, atol=1e-6):
                    raise ArtlensError(
                        f"artist {name!r} has the same profile in {labels[i]} and {labels[j]}: merging would count "
                        f"their {one.works} works twice",
                        "leave the artist out of one of the files (each institution publishes the works it holds)")


def merge_profiles(sets: Sequence[ProfileSet], max_prototypes: int | None = None, seed: int = 0,
                   labels: Sequence[str] | None = None) -> ProfileSet:
    """One profile set from several institutions' files (same head required). The same artist in
    several files is combined by counts: their prototypes pooled, weighted by works, and reduced to
    ``max_prototypes`` (default: the largest cap of the inputs) by weighted spherical k-means. A
    publication or a profile given twice is an error (``labels`` name the sets in it, e.g. files)."""
    if not sets:
        raise ArtlensError("nothing to merge", "give two or more profile files")
    first = sets[0]
    heads = sorted({s.head_id for s in sets})
    if len(heads) > 1:
        raise ArtifactMismatchError(f"cannot merge profiles made with different heads: {', '.join(heads)}",
                                    "publish every institution's profiles with the same (federated) head")
    check_no_duplicates(sets, labels)
    if max_prototypes is not None and max_prototypes < 1:
        raise ArtlensError(f"max prototypes must be at least 1, got {max_prototypes}", "pass e.g. --max-prototypes 3")
    cap = max_prototypes or max(int(s.config.get("max_prototypes", ProfileConfig.max_prototypes)) for s in sets)
    pooled: dict[str, list[ArtistProfile]] = {}
    for s in sets:
        for name, profile in s.profiles.items():
            pooled.setdefault(name, []).append(profile)
    merged: dict[str, ArtistProfile] = {}
    for name, parts in pooled.items():
        if len(parts) == 1:
            merged[name] = parts[0]
            continue
        prototypes = np.concatenate([p.prototypes for p in parts])
        counts = np.concatenate([p.counts for p in parts]).astype(np.float64)
        privacy = [p.privacy for p in parts if p.privacy]
        if privacy and len(privacy) < len(parts):
            raise ArtlensError(f"artist {name!r} has a differentially private profile in one file and an exact one "
                               "in another", "publish every institution's profiles with the same --epsilon")
        if privacy or len(prototypes) <= cap:
            k = 1 if privacy else len(prototypes)
        else:
            k = cap
        if k == 1:  # DP: the pooled noisy mean, weighted by works (left unnormalised, as published)
            mean = (prototypes * counts[:, None]).sum(axis=0, keepdims=True) / counts.sum()
            centres, assign = (mean if privacy else l2_normalise(mean)), np.zeros(len(counts), int)
        elif k == len(prototypes):
            centres, assign = prototypes, np.arange(len(prototypes))
        else:
            centres, assign = spherical_kmeans(prototypes, k, seed=seed, weights=counts)
        new_counts = np.bincount(assign, weights=counts, minlength=len(centres)).round().astype(np.int64)
        merged[name] = ArtistProfile(
            name, centres.astype(np.float32), new_counts, sum(p.works for p in parts),
            {"merged": privacy, "epsilon": max(p["epsilon"] for p in privacy)} if privacy else None)
    config = dict(first.config)
    config["max_prototypes"] = cap
    sources = tuple(source for s in sets for source in s.publications())
    return ProfileSet(first.head_id, first.dim, merged, config, sources, first.head_label)
