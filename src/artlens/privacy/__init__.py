"""Privacy audits: membership-inference attacks on what artlens publishes (a head, central or
federated; artists' style profiles), measured against the truth the auditor holds.

``audit_privacy`` is the use case behind ``artlens eval privacy``; ``attacks`` holds the attacks as
pure functions of scores; ``heads`` and ``profiles`` run them on a collection's cached features.
The report folder (report.md, report.json, roc.png) is written by ``artlens.reports.privacy``.
"""

from artlens.privacy.attacks import (
           confidence_scores,
           lira_scores,
           logit_confidence,
           membership_roc,
)
from artlens.privacy.audit import audit_privacy
from artlens.privacy.config import AuditConfig
from artlens.privacy.heads import audit_head
from artlens.privacy.profiles import audit_profiles

__all__ = ["AuditConfig", "audit_head", "audit_privacy", "audit_profiles", "confidence_scores", "lira_scores",
           "logit_confidence", "membership_roc"]
