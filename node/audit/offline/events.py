"""The kinds of exchange-log entries, and the fixed values of their fields
(docs/audit.md §1.2).

Written by the node (``wlx.node.audit.exchange_log``) and read by the
offline verifier, which is why they live here, with nothing but the standard
library below them.  The values are in every log ever written: never rename
one.
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    """Every kind of entry (docs/audit.md §1.2 lists their fields)."""

    NODE_CREATED = "node.created"
    RECORD_UPSERT = "record.upsert"
    RECORD_REMOVE = "record.remove"
    RECORD_SUSPEND = "record.suspend"
    PEER_TRUST = "peer.trust"
    BATCH_SENT = "batch.sent"
    SNAPSHOT_SENT = "snapshot.sent"
    BATCH_APPLIED = "batch.applied"
    BATCH_DUPLICATE = "batch.duplicate"
    SNAPSHOT_APPLIED = "snapshot.applied"
    REJECTED = "rejected"
    RECEIPT = "receipt"
    LOOKUP = "lookup"
    DETAIL_OUT = "detail.out"
    DETAIL_IN = "detail.in"
    PURGE = "purge"
    POLICY_CHANGE = "policy.change"
    PEER_REVOKE = "peer.revoke"
    PEER_ROTATED = "peer.rotated"
    KEYS_ROTATED = "keys.rotated"
    EPOCH_NEW = "epoch.new"
    CREDENTIAL_ISSUED = "credential.issued"
    CREDENTIAL_REVOKED = "credential.revoked"
    ACCESS_DENIED = "access.denied"
    THROTTLED = "throttled"
    COMPACTION = "compaction"
    WITNESS_REFUSED = "witness.refused"
    ACCEPTANCE_CHANGE = "acceptance.change"
    ACCEPTANCE_CONFIRMED = "acceptance.confirmed"
    ACCEPTANCE_RECEIVED = "acceptance.received"
    EVALUATE_IN = "evaluate.in"
    EVALUATE_OUT = "evaluate.out"
    NODE_RESTORED = "node.restored"
    WITNESS_RESTORE = "witness.restore"


class EvaluateOutcome(StrEnum):
    """How one Evaluate exchange ended, as each side logs it (the ``outcome``
    of ``evaluate.in`` and ``evaluate.out`` entries; docs/protocol.md §15.4)."""

    EVALUATED = "evaluated"
    STALE_EPOCH = "stale-epoch"
    """``online.Refusal.STALE_EPOCH``: not the stream's current epoch."""
    QUOTA = "quota"
    """``online.Refusal.QUOTA``: the requester's daily budget is spent."""
    UNREACHABLE = "unreachable"
    """Requester only: the origin could not be reached."""
    INVALID = "invalid"
    """Requester only: the origin's answer was rejected."""
    REFUSED = "refused"
    """Requester only: the origin refused for another reason."""
