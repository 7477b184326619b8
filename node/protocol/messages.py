"""Frozen dataclasses of everything the federation protocol exchanges.

These mirror the ``wlx.v1`` messages (proto/wlx/v1/*.proto); ``codec``
converts between the two at the boundary, so that nothing past it touches a
generated type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from wlx.crypto.signing import Purpose


@dataclass(frozen=True)
class TokenEntry:
    """A keyed token and the hit data sealed under its identifier (protocol
    1: ``sealed``), or the wrap of the listing's key (protocol 2: ``wrap``;
    ``sealed`` empty)."""

    token: bytes
    sealed: bytes = field(repr=False)
    wrap: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Upsert:
    """Insert or replace one listing at the recipient."""

    handle: bytes
    expires: str
    tokens: tuple[TokenEntry, ...]
    online: bool = False
    """Online tier (§15.3): tokens from the origin's VOPRF, matched via Evaluate."""
    sealed: bytes = field(default=b"", repr=False)
    """Protocol 2 (§4.3): the listing's hit data sealed once; empty in protocol 1."""


@dataclass(frozen=True)
class Remove:
    """Remove one listing at the recipient."""

    handle: bytes


Op = Upsert | Remove


class ChangeOp(StrEnum):
    """What one entry of an origin's change log did to a record (stored in
    ``changes.op``; it becomes an ``Upsert`` or a ``Remove`` on the wire)."""

    UPSERT = "upsert"
    REMOVE = "remove"


class ReceiptKind(StrEnum):
    """What a receipt confirms (``Receipt.kind`` on the wire, §8.4; stored in
    ``receipts.kind``)."""

    BATCH = "batch"
    SNAPSHOT = "snapshot"


@dataclass(frozen=True)
class Cursor:
    """Where a recipient stands in one origin's stream."""

    epoch: int
    seq: int
    digest: bytes


@dataclass(frozen=True)
class Batch:
    """A verified delta batch (its signature has been checked)."""

    origin: str
    recipient: str
    epoch: int
    first_seq: int
    last_seq: int
    prev_digest: bytes
    created_at: int
    ops: tuple[Op, ...]
    digest: bytes
    """Payload digest of the batch: the next batch's ``prev_digest``."""


@dataclass(frozen=True)
class SnapshotPart:
    """A verified part of a snapshot."""

    origin: str
    recipient: str
    epoch: int
    snapshot_id: bytes
    index: int
    at_seq: int
    chain_digest: bytes
    prev_part_digest: bytes
    token_key: bytes | None = field(repr=False)
    normalisation: str
    entries: tuple[Upsert, ...]
    final: bool
    total_entries: int
    created_at: int
    digest: bytes
    oprf_public_key: bytes = b""
    """Part 0 only: the stream's committed VOPRF public key (§15.3), or empty."""
    resume_token: bytes = b""


@dataclass(frozen=True)
class Sealed:
    """A ``SealedEnvelope``: a signed message encrypted to one recipient."""

    sender: str
    recipient: str
    purpose: Purpose
    ciphertext: bytes = field(repr=False)


@dataclass(frozen=True)
class SignedRequest:
    """A ``SignedMessage`` carrying request parameters, in the clear."""

    payload: bytes
    signature: bytes
    signer: str
    recipient: str
    purpose: Purpose


@dataclass(frozen=True)
class PullParams:
    """What a recipient asks of an origin when it pulls."""

    requester: str
    origin: str
    epoch: int
    after_seq: int
    after_digest: bytes
    issued_at: int
    nonce: bytes
    max_batches: int


@dataclass(frozen=True)
class SnapshotResume:
    """Where an interrupted snapshot stopped, as its recipient staged it (§7.4)."""

    snapshot_id: bytes
    next_index: int
    prev_part_digest: bytes
    token: bytes
    entries: int


@dataclass(frozen=True)
class SnapshotParams:
    """What a recipient asks of an origin when it needs a snapshot."""

    requester: str
    origin: str
    issued_at: int
    nonce: bytes
    resume: SnapshotResume | None = None


@dataclass(frozen=True)
class StreamHead:
    """Where the origin's stream for the requester stands (informative)."""

    epoch: int
    last_seq: int
    as_of: int


@dataclass(frozen=True)
class ResyncRequired:
    """The origin cannot continue the recipient's cursor."""

    reason: str
    epoch: int


@dataclass(frozen=True)
class HitData:
    """What an officer sees of a listing at a hit (sealed in transit and at rest)."""

    origin: str
    ref: str
    category: str
    action: str
    expires: str
    matched_on: str
    version: int
    suspended: bool = False


@dataclass(frozen=True)
class Receipt:
    """A recipient's signed statement that it applied a batch or snapshot."""

    origin: str
    recipient: str
    epoch: int
    kind: ReceiptKind
    first_seq: int
    last_seq: int
    digest: bytes
    applied_at: int


@dataclass(frozen=True)
class DetailParams:
    """A node's request, for one of its officers, for the record behind a hit."""

    requester: str
    origin: str
    ref: str
    requesting_authority: str
    officer: str
    purpose: str
    case_id: str
    issued_at: int
    nonce: bytes
    hit_proof: bytes = b""


@dataclass(frozen=True)
class DetailAnswer:
    """The origin's signed answer to a detail request."""

    origin: str
    recipient: str
    request_digest: bytes
    granted: bool
    denial: str
    record: bytes = field(repr=False)
    answered_at: int
