"""The node's error tree: every error says whose fault it is.

* ``UserError``: the person at the keyboard gave bad input (a bad record line,
  an unknown peer, a malformed query).  Shown as one line; gRPC
  INVALID_ARGUMENT, NOT_FOUND or ALREADY_EXISTS.
* ``PeerError``: another node sent bad data or refused us.  ``Rejection`` is
  the case that matters most: a batch or snapshot that failed a check, with a
  machine-readable ``reason``.  Nothing of a rejected input is applied.
* ``Unavailable``: a peer could not be reached; try again later.
* ``InternalError``: our bug or a broken installation.

``wlx.node.rpc.status_codes`` maps these to gRPC status codes, in one place.
Messages never contain personal identifiers.
"""

from __future__ import annotations

from enum import StrEnum


class WlxError(Exception):
    """Base class of every error the node raises on purpose."""


class UserError(WlxError):
    """Bad input from the user or client; they can fix it."""


class NotFound(UserError):
    """The thing named does not exist (a record, a peer, a node directory)."""


class AlreadyExists(UserError):
    """The thing to create exists already."""


class PermissionDenied(UserError):
    """The caller is known but may not do this."""


class Unauthenticated(UserError):
    """The caller could not be identified."""


class Unavailable(WlxError):
    """A peer or node could not be reached (or timed out)."""


class Exhausted(WlxError):
    """A budget or quota of the caller's is spent for now (gRPC RESOURCE_EXHAUSTED)."""


class InternalError(WlxError):
    """Our bug, a broken installation, or storage that failed an invariant."""


class PeerError(WlxError):
    """Another node's bad data or bad behaviour."""


class RejectReason(StrEnum):
    """Why a batch or snapshot from a peer was rejected (docs/protocol.md §6.4)."""

    MALFORMED = "malformed"
    TOO_LARGE = "too-large"
    UNDECRYPTABLE = "undecryptable"
    UNKNOWN_SIGNER = "unknown-signer"
    WRONG_SENDER = "wrong-sender"
    BAD_SIGNATURE = "bad-signature"
    WRONG_RECIPIENT = "wrong-recipient"
    STALE_EPOCH = "stale-epoch"
    UNEXPECTED_EPOCH = "unexpected-epoch"
    GAP = "gap"
    ROLLBACK = "rollback"
    FORK = "fork"
    STALE_REQUEST = "stale-request"
    UNKNOWN_BATCH = "unknown-batch"
    BAD_PROOF = "bad-proof"


class Rejection(PeerError):
    """A peer's batch, snapshot or request failed a check; nothing was applied."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
