"""The use cases an institution runs: publish its artists' profiles from a collection, and merge the
files several institutions published (``artlens artists publish`` / ``merge``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from artlens.artists.portfolio import artist_labels, learned_space
from artlens.artists.profiles import (
    ProfileConfig,
    ProfileSet,
    build_profiles,
    check_artists,
    gaussian_sigma,
    merge_profiles,
)
from artlens.collection import Collection
from artlens.errors import ArtlensError
from artlens.progress import QUIET, Reporter


def collection_head(collection: Collection, head=None):
    """``head`` when given, else the collection's own; an error saying how to get one when neither exists."""
    model = head if head is not None else collection.head()
    if model is None:
        raise ArtlensError("no head to place the works in a style space",
                           "pass --head FILE (a head from `artlens train --out` or `artlens federate`), or train "
                           "one in the collection: artlens train --collection PATH --label COLUMN")
    return model


def publish_profiles(collection: Collection, artist_column: str, out: str | Path, head=None,
                     config: ProfileConfig = ProfileConfig(), reporter: Reporter = QUIET) -> dict:
    """Every artist's profile in the space of ``head`` (default: the collection's), written to ``out``.
    Returns the summary ``artists publish --json`` prints: profiles, head, artists, works, prototypes,
    epsilon, delta."""
    if config.epsilon is not None:
        gaussian_sigma(config.epsilon, config.delta, 1.0)  # a bad epsilon or delta fails before any work
    model = collection_head(collection, head)
    labels = artist_labels(collection, artist_column)
    check_artists(list(labels.values()), config.min_works)
    space = learned_space(collection, model, labels)
    profiles = build_profiles(space.vectors, space.artists, model.id, config, model.config.label, reporter=reporter)
    profiles.save(out)
    return {"profiles": str(out), "head": model.id, "artists": len(profiles), "works": len(space.ids),
            "prototypes": sum(len(p.counts) for p in profiles.profiles.values()), "epsilon": config.epsilon,
            "delta": config.delta if config.epsilon is not None else None}


def merge_profile_files(files: Sequence[str | Path], out: str | Path, max_prototypes: int | None = None) -> dict:
    """Profile files of one head merged into ``out`` (an artist in several files combined by counts).
    The same file twice is refused: its works would count twice. Returns the summary ``artists merge
    --json`` prints: profiles, head, merged, artists, prototypes."""
    seen: set[Path] = set()
    for f in map(Path, files):
        if f.resolve() in seen:
            raise ArtlensError(f"{f} is given twice: merging it with itself would count its works twice",
                               "give each institution's file once")
        seen.add(f.resolve())
    merged = merge_profiles([ProfileSet.load(f) for f in files], max_prototypes, labels=[str(f) for f in files])
    merged.save(out)
    return {"profiles": str(out), "head": merged.head_id, "merged": [str(f) for f in files],
            "artists": len(merged), "prototypes": sum(len(p.counts) for p in merged.profiles.values())}
