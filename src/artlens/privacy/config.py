"""How a privacy audit attacks, with its one default each (the CLI maps its flags onto these)."""

from __future__ import annotations

from dataclasses import dataclass

from artlens.errors import ArtlensError


@dataclass(frozen=True)
class AuditConfig:
    shadows: int = 8  # LiRA shadow models, each trained on a random half of the audited artworks
    shadow_epochs: int = 0  # most epochs of a shadow head (0: the head's own recipe)
    seed: int = 0

    def __post_init__(self):
        if self.shadows < 0 or self.shadow_epochs < 0:
            raise ArtlensError("shadows and shadow epochs cannot be negative", "pass e.g. --shadows 8")
