"""The use case behind ``artlens eval privacy``: audit a head, or artist profiles made in its space."""

from __future__ import annotations

from pathlib import Path

from artlens.artists.profiles import ProfileSet
from artlens.errors import ArtlensError
from artlens.privacy.config import AuditConfig
from artlens.privacy.heads import audit_head
from artlens.privacy.profiles import audit_profiles
from artlens.progress import QUIET, Reporter

# What each setting protects against, as the report states it (docs/privacy.md argues it).
PROTECTS = {
    None: "nothing beyond what training itself hides: anyone holding the published model can run these attacks",
    "record": "any one artwork: whoever holds the model (or, federated, the server, other institutions, a portal "
              "user) learns at most e^epsilon more about whether that artwork was used",
    "institution": "any one institution's whole collection, against whoever sees the aggregated model (not the "
                   "server's view of an individual update unless SecAgg+ is on)",
    "profile (replace one work)": "any one work of an artist's profile: swapping it for another changes what "
                                  "the profile reveals by at most e^epsilon",
}


def audit_privacy(collection, head, profiles: str | Path | ProfileSet | None = None, artist_column: str | None = None,
                  config: AuditConfig = AuditConfig(), reporter: Reporter = QUIET) -> dict:
    """Membership-inference audit of ``head`` on ``collection`` (its stored split), or, with
    ``profiles``, of profiles published with that file's settings from the collection's works by
    ``artist_column`` in the head's space. Returns the record ``eval privacy --json`` prints."""
    if profiles is not None:
        if not artist_column:
            raise ArtlensError("auditing profiles needs the column naming each work's artist",
                               "pass --artist-column COLUMN")
        profile_set = profiles if isinstance(profiles, ProfileSet) else ProfileSet.load(profiles)
        result = audit_profiles(collection, head, profile_set, artist_column, config, reporter)
    else:
        result = audit_head(collection, head, config, reporter)
    level = (result.get("privacy") or {}).get("level")
    result["protects"] = PROTECTS.get(level, PROTECTS[None])
    result["collection"] = str(collection.root)
    return result
