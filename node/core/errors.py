"""The node's error tree: every error says whose fault it is.

::

    WlxError                  every error the node raises on purpose
    ├── UserError             our caller's input (a bad record line, an unknown
    │   │                     peer, a malformed query): INVALID_ARGUMENT
    │   ├── NotFound          NOT_FOUND
    │   ├── AlreadyExists     ALREADY_EXISTS
    │   ├── PermissionDenied  known caller, not allowed: PERMISSION_DENIED
    │   └── Unauthenticated   caller not identified: UNAUTHENTICATED
    ├── Unavailable           a node could not be reached or timed out: UNAVAILABLE
    ├── Exhausted             a budget or rate of the caller's is spent:
    │                         RESOURCE_EXHAUSTED (``limits.RateLimited``)
    ├── InternalError         our bug or a broken installation: INTERNAL
    ├── PeerError             another node's bad data, behaviour or refusal:
    │   │                     FAILED_PRECONDITION
    │   ├── Rejection         a peer's batch, snapshot or request failed a check
    │   │                     (``reason``: ``RejectReason``); nothing applied
    │   └── AuditFailure      a node's log or bundle failed an audit check
    └── Remote                mixin: another node's *answer* to our call
        ├── RemoteRefusal     (UserError too) it refused our request
        ├── RemoteNotFound    (NotFound too)
        ├── RemoteUnauthenticated  (Unauthenticated too) it did not accept our
        │                     credentials
        └── RemotePermissionDenied (PermissionDenied too)

**Local and remote.**  Everything but ``Remote`` is this node's own verdict:
a ``UserError`` blames whoever called *us*, a ``PeerError`` blames a peer for
what it sent us.  A ``Remote`` error carries another node's words, relayed
(``wlx.node.rpc.status_codes.from_rpc_error``): it keeps the class of what
the other node said (so a client can tell "not found" from "refused"), but it
is never answered to our own caller as if it were our verdict on its input:
``status_codes.code_for`` answers it FAILED_PRECONDITION (our caller did
nothing wrong; a node we depend on refused).

``wlx.crypto`` keeps its own small tree (``CryptoError``, ``InvalidIdentifier``)
since it must not import the node; the node translates those where it calls
crypto (a peer's bad bytes become a ``Rejection``, a bad identifier typed by
a user a ``UserError``).  One that escapes translation is our bug: INTERNAL.

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


class Rejected(StrEnum):
    """What was rejected: ``rejections.what`` in the store, ``what`` of a
    ``rejected`` exchange-log entry (docs/audit.md §1.2)."""

    BATCH = "batch"
    SNAPSHOT = "snapshot"
    RESPONSE = "response"
    """A pull or evaluate response that is neither a batch nor a valid answer."""
    ACCEPTANCE = "acceptance"
    """A peer's acceptance declaration."""


class Rejection(PeerError):
    """A peer's batch, snapshot or request failed a check; nothing was applied."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class Remote(WlxError):
    """Mixin: another node's answer to a call of ours, relayed in its words.

    Its other base says what the node answered; being ``Remote`` says it is
    not our verdict (see the module docstring).
    """


class RemoteRefusal(Remote, UserError):
    """The node we called refused our request as invalid."""


class RemoteNotFound(Remote, NotFound):
    """The node we called does not know what we named."""


class RemoteUnauthenticated(Remote, Unauthenticated):
    """The node we called did not accept our credentials."""


class RemotePermissionDenied(Remote, PermissionDenied):
    """The node we called refused us this call."""
