"""Finding artists by style from published profiles only (FedStyle): each artist's works stay at
home; a few prototypes in a learned head's space (optionally with differential privacy) are
published, merged across institutions, and searched with a customer's references.

``profiles`` builds, stores and merges profiles; ``search`` ranks artists for references;
``evaluate`` measures leave-one-artwork-out artist retrieval against the baselines.
"""

from artlens.artists.profiles import (
    PROFILES_SCHEMA_VERSION,
    ArtistProfile,
    ProfileConfig,
    ProfileSet,
    build_profiles,
    merge_profiles,
)
from artlens.artists.search import ArtistSearch, ArtistSearchResult

__all__ = ["PROFILES_SCHEMA_VERSION", "ArtistProfile", "ArtistSearch", "ArtistSearchResult", "ProfileConfig",
           "ProfileSet", "build_profiles", "merge_profiles"]
