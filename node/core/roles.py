"""Who may do what: the roles of a node's callers (docs/protocol.md §1.3).

A peer is a trusted node (its card's TLS certificate); the other roles are
credentials this node issued (``wlx.node.trust.credentials``).  The values
are stored (``credentials.role``), written in credential files and logged.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a caller may do (``wlx.node.rpc.auth.METHOD_ROLES``)."""

    PEER = "peer"
    """Federation and witnessing."""
    OFFICER = "officer"
    """Lookups and detail requests."""
    AUDITOR = "auditor"
    """The exchange log."""
    OPERATOR = "operator"
    """Node status and administration."""


ISSUABLE_ROLES = (Role.OFFICER, Role.AUDITOR, Role.OPERATOR)
"""The roles of a credential (a peer is never issued one)."""
