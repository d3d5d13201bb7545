"""Search across institutions without pooling: member servers answer query vectors in the space of
one shared head, a portal fans each query out to them and merges the hits by score
(docs/federation.md). ``config``: MEMBER.toml and MEMBERS.toml; ``member``: the member's use case;
``query``: encoding a query on the portal; ``portal``: fan-out, merge, member statuses, checks;
``wire``: what travels."""

from artlens.federation.config import (
    MemberEntry,
    MemberSettings,
    load_member_settings,
    load_members,
    new_token,
    token_sha256,
)
from artlens.federation.errors import FederationError
from artlens.federation.member import LiveMember, Member, use_head
from artlens.federation.portal import STATUSES, MemberStatus, Portal, members_line
from artlens.federation.query import QueryEncoder, QueryVectors

__all__ = ["STATUSES", "FederationError", "LiveMember", "Member", "MemberEntry", "MemberSettings", "MemberStatus", "Portal",
           "QueryEncoder", "QueryVectors", "load_member_settings", "load_members", "members_line", "new_token",
           "token_sha256", "use_head"]
