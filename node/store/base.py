"""The storage interface: rows, and the transaction every change goes through.

A node's state lives behind ``Store``.  Every change happens inside one
``Store.write()`` transaction (all of it commits, or none of it does), and
every consistent read inside one ``Store.read()``; that is what makes a node
killed at any moment restart consistent.  ``wlx.node.store.sql`` implements
it for SQLite (the embedded default) and PostgreSQL.

Values a receiving node must not hold in the clear arrive here already
encrypted (records, token keys) or keyed (tokens, handles): the store never
sees a raw identifier.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum

from wlx.node.core.errors import Rejected
from wlx.node.core.limits import Bucket
from wlx.node.core.roles import Role
from wlx.node.protocol.detail_rules import Direction
from wlx.node.protocol.messages import ChangeOp, Op, ReceiptKind, Upsert


@dataclass(frozen=True)
class StoredRecord:
    """One of the node's own records; ``body`` is encrypted at rest."""

    id: str
    version: int
    body: bytes = field(repr=False)
    expires: str
    updated_at: int
    suspended: bool = False


@dataclass(frozen=True)
class StagedRecord:
    """One record of an import being staged (``Tx.stage_import``).

    ``kind`` is "add", "update" or "same" (identical to the stored record:
    nothing to publish); ``version``, ``body`` (sealed at rest),
    ``suspended`` and ``handle`` were computed against ``base_version``, the
    stored record's version when it was staged (0: none).
    """

    id: str
    line: int
    kind: str
    base_version: int
    version: int
    body: bytes = field(repr=False)
    expires: str
    suspended: bool
    handle: bytes


@dataclass(frozen=True)
class Change:
    """One entry of the node's append-only change log."""

    seq: int
    record_id: str
    op: ChangeOp
    version: int
    at: int


@dataclass(frozen=True)
class PeerRow:
    """A trusted peer: its identity card as verified, and where to reach it."""

    node_id: str
    card: bytes
    address: str
    added_at: int
    revoked_at: int = 0
    """Unix time the peer was revoked (0: trusted)."""
    policy: str = "{}"
    """The sharing policy for this peer, as JSON (``wlx.node.core.policy``)."""


@dataclass(frozen=True)
class OutboundState:
    """The origin's side of one recipient's stream."""

    peer: str
    epoch: int
    token_key: bytes = field(repr=False)
    """The epoch token key, encrypted at rest."""
    change_pos: int
    """Last change-log sequence number turned into batches for this peer."""
    last_seq: int
    last_digest: bytes
    epoch_started_at: int
    acked_seq: int = 0
    """Last sequence number the peer acknowledged with a signed receipt."""
    acked_at: int = 0


@dataclass(frozen=True)
class OutboxRow:
    """A signed batch kept by the origin until the recipient has it."""

    first_seq: int
    last_seq: int
    digest: bytes
    signed: bytes


@dataclass(frozen=True)
class InboundState:
    """The recipient's side of one origin's stream (including its own list)."""

    origin: str
    epoch: int
    token_key: bytes = field(repr=False)
    """The epoch token key, encrypted at rest."""
    seq: int
    digest: bytes
    synced_at: int
    """Unix time of the last successful sync (0: never)."""
    last_error: str = ""
    last_error_at: int = 0
    origin_head: int = 0
    """The origin's stream head as it last reported it."""


@dataclass(frozen=True)
class TokenRow:
    """A stored token that matched a lookup.

    ``sealed`` is the token's own sealed hit data (protocol 1, ``wrap``
    empty) or its listing's (protocol 2, opened with the token's ``wrap``;
    docs/protocol.md §4.3).
    """

    origin: str
    token: bytes
    handle: bytes
    sealed: bytes
    expires: str
    wrap: bytes = b""


@dataclass(frozen=True)
class ReceiptRow:
    """A signed receipt a peer sent for a batch or snapshot it applied."""

    peer: str
    epoch: int
    kind: ReceiptKind
    first_seq: int
    last_seq: int
    digest: bytes
    applied_at: int
    received_at: int
    signed: bytes


@dataclass(frozen=True)
class DetailRow:
    """A detail request, made (``Direction.OUT``) or answered (``Direction.IN``)."""

    at: int
    peer: str
    direction: Direction
    ref: str
    officer: str
    purpose: str
    case_id: str
    outcome: str
    """``GRANTED``, or the denial (a ``Denial`` of ours; a peer's answer as it
    came, §11.4)."""


@dataclass(frozen=True)
class CredentialRow:
    """A client credential this node issued."""

    serial: str
    name: str
    role: Role
    issued_at: int
    expires_at: int
    revoked_at: int = 0


@dataclass(frozen=True)
class CheckpointRow:
    """A signed checkpoint of the node's exchange log (docs/audit.md §3)."""

    size: int
    root: bytes
    note: bytes
    """The signed note: checkpoint text and the node's signature line."""
    made_at: int


@dataclass(frozen=True)
class CosignatureRow:
    """A witness's cosignature of one of the node's checkpoints."""

    size: int
    witness: str
    """Node id of the witness."""
    line: str
    """The tlog-cosignature signature line, ending in a newline."""
    timestamp: int


@dataclass(frozen=True)
class WitnessedRow:
    """A peer's checkpoint that this node, as a witness, cosigned."""

    origin: str
    size: int
    root: bytes
    note: bytes
    """The peer's signed note, as it arrived."""
    cosigned_at: int


@dataclass(frozen=True)
class RejectionRow:
    """A rejected batch, snapshot or request, as logged."""

    at: int
    origin: str
    what: Rejected
    reason: str
    detail: str


class AcceptanceSide(StrEnum):
    """Whose acceptance policy a row holds (``acceptance.side``)."""

    LOCAL = "local"
    """This node's policy for origin ``peer``."""
    DECLARED = "declared"
    """What ``peer`` declared to this node as its origin."""


LOCAL = AcceptanceSide.LOCAL
DECLARED = AcceptanceSide.DECLARED


@dataclass(frozen=True)
class AcceptanceRow:
    """An acceptance policy (``wlx.node.core.acceptance``), either side."""

    peer: str
    side: AcceptanceSide
    version: int
    policy: str
    """The policy's JSON."""
    changed_at: int
    delivered: int = 0
    """Side ``LOCAL``: the version the origin confirmed (0: none yet)."""


class Tx(ABC):
    """One transaction.  Methods raise ``InternalError`` on storage failure."""

    # ---------------------------------------------------------- meta
    @abstractmethod
    def get_meta(self, key: str) -> bytes | None:
        """A node-wide value, or None."""

    @abstractmethod
    def get_metas(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The node-wide values of those of ``keys`` that are set, read
        together (one statement however many keys a lookup names)."""

    @abstractmethod
    def set_meta(self, key: str, value: bytes) -> None:
        """Set a node-wide value."""

    # ---------------------------------------------------------- own records
    @abstractmethod
    def lock_changes(self) -> None:
        """Serialise writers of the change log until commit.

        Change sequence numbers then become visible in commit order, so an
        origin never skips a change that commits late.
        """

    @abstractmethod
    def get_record(self, record_id: str) -> StoredRecord | None:
        """The record, or None."""

    @abstractmethod
    def get_records(self, record_ids: Sequence[str]) -> dict[str, StoredRecord]:
        """The records of ``record_ids`` that exist, by id."""

    @abstractmethod
    def put_record(self, record: StoredRecord) -> None:
        """Insert or replace a record."""

    @abstractmethod
    def put_records(self, records: Sequence[StoredRecord]) -> None:
        """Insert or replace many records."""

    @abstractmethod
    def delete_record(self, record_id: str) -> None:
        """Delete a record (no error if absent)."""

    @abstractmethod
    def iter_records(self) -> Iterator[StoredRecord]:
        """Every record, by id, read lazily."""

    @abstractmethod
    def records_page(self, after_id: str, limit: int) -> list[StoredRecord]:
        """Up to ``limit`` own records with ids after ``after_id``, by id."""

    @abstractmethod
    def count_records(self) -> int:
        """How many records the node lists."""

    @abstractmethod
    def expired_records(self, before: str) -> list[str]:
        """Ids of records whose expiry date is before ``before`` (YYYY-MM-DD)."""

    @abstractmethod
    def append_change(self, record_id: str, op: ChangeOp, version: int, at: int) -> int:
        """Append to the change log; returns the new sequence number."""

    @abstractmethod
    def append_changes(self, changes: Sequence[tuple[str, ChangeOp, int, int]]) -> None:
        """Append ``(record_id, op, version, at)`` changes, in order."""

    @abstractmethod
    def change_head(self) -> int:
        """The last change-log sequence number (0 if empty)."""

    @abstractmethod
    def changes_after(self, pos: int, limit: int) -> list[Change]:
        """Up to ``limit`` changes after ``pos``, oldest first."""

    @abstractmethod
    def delete_changes_upto(self, pos: int, limit: int | None = None) -> int:
        """Compact the change log: delete entries up to ``pos`` (at most the
        ``limit`` oldest of them, when given); returns how many."""

    # ---------------------------------------------------------- peers
    @abstractmethod
    def put_peer(self, peer: PeerRow) -> None:
        """Insert or replace a trusted peer."""

    @abstractmethod
    def get_peer(self, node_id: str) -> PeerRow | None:
        """A trusted peer, or None."""

    @abstractmethod
    def list_peers(self) -> list[PeerRow]:
        """Every peer (revoked ones included), by node id."""

    @abstractmethod
    def purge_peer_data(self, peer: str) -> None:
        """Delete everything held of and for ``peer``: its listings, tokens,
        cursor, applied batches and receipts to it; the outbox and pending
        removals made for it.  The stream state stays (its epoch number must
        never be reused)."""

    @abstractmethod
    def put_credential(self, row: CredentialRow) -> None:
        """Insert or replace a credential."""

    @abstractmethod
    def get_credential(self, serial: str) -> CredentialRow | None:
        """A credential by serial, or None."""

    @abstractmethod
    def list_credentials(self) -> list[CredentialRow]:
        """Every credential, newest first."""

    @abstractmethod
    def put_announcement(self, peer: str, card: bytes, made_at: int) -> None:
        """Remember to deliver a rotated card to ``peer``."""

    @abstractmethod
    def list_announcements(self) -> list[tuple[str, bytes]]:
        """``(peer, card)`` still to deliver."""

    @abstractmethod
    def delete_announcement(self, peer: str) -> None:
        """Forget a delivered announcement."""

    # ---------------------------------------------------------- origin side
    @abstractmethod
    def get_outbound(self, peer: str, *, for_update: bool = False) -> OutboundState | None:
        """The stream state for ``peer``; ``for_update`` locks it until commit."""

    @abstractmethod
    def put_outbound(self, state: OutboundState) -> None:
        """Insert or replace a stream state."""

    @abstractmethod
    def add_outbox(self, peer: str, epoch: int, batch: OutboxRow, created_at: int) -> None:
        """Keep a signed batch for ``peer``."""

    @abstractmethod
    def outbox_after(self, peer: str, epoch: int, after_seq: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` batches whose first operation is after ``after_seq``."""

    @abstractmethod
    def outbox_digest_at(self, peer: str, epoch: int, last_seq: int) -> bytes | None:
        """Digest of the batch ending at ``last_seq``, or None."""

    @abstractmethod
    def add_anchor(self, peer: str, epoch: int, seq: int, digest: bytes) -> None:
        """Remember that ``peer``'s stream reached ``seq`` by a skip, with ``digest``."""

    @abstractmethod
    def stream_digest_at(self, peer: str, epoch: int, seq: int) -> bytes | None:
        """The stream's digest at ``seq``: of the kept batch ending there, or
        of the skip that reached it; None if neither is known."""

    @abstractmethod
    def outbox_starts_at(self, peer: str, epoch: int, first_seq: int) -> bool:
        """Whether a kept batch begins at ``first_seq``."""

    @abstractmethod
    def outbox_oldest(self, peer: str, epoch: int) -> int | None:
        """First sequence number of the oldest kept batch, or None."""

    @abstractmethod
    def delete_outbox(
        self, peer: str, *, epoch: int, keep_seq: int | None, before_time: int = 0
    ) -> int:
        """Compact a peer's outbox; returns how many batches were deleted.

        Deletes batches of older epochs, and of ``epoch`` every batch but the
        one ending at ``keep_seq`` that ends before ``keep_seq`` or was made
        before ``before_time``; ``keep_seq`` None: every batch of ``epoch``
        too (``before_time`` is then not used)."""

    @abstractmethod
    def list_outbound(self) -> list[OutboundState]:
        """Every peer's stream state."""

    @abstractmethod
    def add_receipt(self, receipt: ReceiptRow) -> bool:
        """Keep a verified receipt; False if the same one was kept before."""

    @abstractmethod
    def add_sent_removal(self, peer: str, epoch: int, seq: int, record_id: str) -> None:
        """Remember a removal made for ``peer`` until it is acknowledged."""

    @abstractmethod
    def unconfirmed_removals(self, peer: str) -> list[tuple[int, int, str]]:
        """``(epoch, seq, record_id)`` of removals ``peer`` has not acknowledged."""

    @abstractmethod
    def confirm_removals(self, peer: str, epoch: int, upto_seq: int) -> None:
        """Forget removals acknowledged up to ``upto_seq`` (and of older epochs)."""

    # ---------------------------------------------------------- recipient side
    @abstractmethod
    def get_inbound(self, origin: str, *, for_update: bool = False) -> InboundState | None:
        """The cursor and key of ``origin``'s list; ``for_update`` locks it."""

    @abstractmethod
    def list_inbound(self) -> list[InboundState]:
        """Every origin whose list this node holds (itself included)."""

    @abstractmethod
    def put_inbound(self, state: InboundState) -> None:
        """Insert or replace the cursor and key of an origin."""

    @abstractmethod
    def set_sync_status(self, origin: str, *, at: int, error: str | None) -> None:
        """Record a sync attempt: success (error None) or its failure."""

    @abstractmethod
    def set_origin_head(self, origin: str, head: int) -> None:
        """Record the origin's stream head, as it reported it."""

    @abstractmethod
    def queue_receipt(self, origin: str, signed: bytes) -> None:
        """Keep a signed receipt until it is delivered to ``origin``."""

    @abstractmethod
    def pending_receipts(self, origin: str, limit: int) -> list[tuple[int, bytes]]:
        """``(id, signed receipt)`` not yet delivered to ``origin``, oldest first."""

    @abstractmethod
    def delete_pending_receipts(self, ids: Sequence[int]) -> None:
        """Forget delivered receipts."""

    @abstractmethod
    def expired_entries(self, before: str, limit: int) -> list[tuple[str, bytes]]:
        """``(origin, handle)`` of held listings that expired before ``before``."""

    @abstractmethod
    def remove_entries(self, origin: str, handles: Sequence[bytes]) -> None:
        """Delete held listings and their tokens."""

    @abstractmethod
    def applied_digest(self, origin: str, epoch: int, last_seq: int) -> bytes | None:
        """Digest of the applied batch ending at ``last_seq``, or None."""

    @abstractmethod
    def add_applied(self, origin: str, epoch: int, last_seq: int, digest: bytes) -> None:
        """Remember an applied batch (for duplicate and fork detection)."""

    @abstractmethod
    def clear_applied(self, origin: str) -> None:
        """Forget every applied batch of ``origin`` (before a snapshot)."""

    @abstractmethod
    def apply_ops(self, origin: str, ops: Sequence[Op]) -> None:
        """Apply upserts and removals to ``origin``'s entries and tokens."""

    @abstractmethod
    def clear_origin(self, origin: str) -> None:
        """Delete every entry and token of ``origin``."""

    @abstractmethod
    def count_entries(self, origin: str) -> int:
        """How many listings of ``origin`` this node holds."""

    def find_tokens(self, origin: str, tokens: Sequence[bytes]) -> list[TokenRow]:
        """Every stored row of ``origin`` whose token is in ``tokens``."""
        return self.find_tokens_of({origin: tokens})

    @abstractmethod
    def find_tokens_of(self, wanted: Mapping[str, Sequence[bytes]]) -> list[TokenRow]:
        """Every stored row of each origin of ``wanted`` whose token is among
        that origin's tokens: one statement for a lookup's keys at every
        origin (a large manifest takes a few), not one per origin."""

    @abstractmethod
    def drain_old_slots(self, limit: int) -> bool:
        """Delete up to about ``limit`` rows of listings no longer held (those a
        snapshot replaced, and dropped stagings); False when there were none."""

    # ---------------------------------------------------------- snapshot staging
    @abstractmethod
    def stage_entries(self, snapshot_id: bytes, origin: str, entries: Sequence[Upsert]) -> None:
        """Keep entries of a snapshot still arriving (first copy of a handle wins)."""

    @abstractmethod
    def staged_counts(self, snapshot_id: bytes, origin: str) -> tuple[int, int | None]:
        """``(entries, tokens)`` staged for a snapshot of ``origin``; tokens is None when the
        staged tokens are not exactly those the staged entries list (a handle
        or a token appeared twice)."""

    @abstractmethod
    def apply_staged(self, snapshot_id: bytes, origin: str) -> int:
        """Replace ``origin``'s entries by the staged ones (a pointer switch: the
        entries replaced are left to ``drain_old_slots``); returns their number."""

    @abstractmethod
    def drop_staging(self, snapshot_id: bytes | None = None) -> None:
        """Discard one staged snapshot, or all of them."""

    @abstractmethod
    def staged_snapshot(self, origin: str) -> tuple[bytes, bytes] | None:
        """``(snapshot_id, progress)`` of the snapshot of ``origin`` being staged."""

    @abstractmethod
    def put_staged_snapshot(self, origin: str, snapshot_id: bytes, progress: bytes) -> None:
        """Record how far the snapshot of ``origin`` being staged got."""

    @abstractmethod
    def drop_staged_snapshot(self, origin: str) -> None:
        """Discard whatever is staged for ``origin`` (entries, tokens, progress)."""

    # ---------------------------------------------------------- own-list import staging
    @abstractmethod
    def stage_import(
        self, import_id: bytes, rows: Sequence[StagedRecord], ops: Sequence[Upsert]
    ) -> None:
        """Keep records of an import being staged and the listings (``ops``,
        by handle) they index to.

        Raises:
            InternalError: a record id already staged for ``import_id``.
        """

    @abstractmethod
    def staged_import_lines(self, import_id: bytes, record_ids: Sequence[str]) -> dict[str, int]:
        """The line of each of ``record_ids`` already staged for ``import_id``."""

    @abstractmethod
    def staged_import_page(self, import_id: bytes, after_id: str, limit: int) -> list[StagedRecord]:
        """Up to ``limit`` records staged for ``import_id`` with ids after
        ``after_id``, by id."""

    @abstractmethod
    def publish_staged_listings(
        self, origin: str, import_id: bytes, record_ids: Sequence[str]
    ) -> None:
        """Index the listings staged with ``record_ids`` of ``import_id`` under
        ``origin``, as ``apply_ops`` with their upserts would (each replaces
        the listing its handle had); ids of kind "same" are left out."""

    @abstractmethod
    def drop_imports(self, *, wipe: bool = True) -> None:
        """Forget every staged import (in time proportional to the pages
        freed at most, never row by row).

        ``wipe=False``: the staged rows are copies of what the own list now
        holds (a published import's), so the freed space need not be
        overwritten where the engine would (SQLite's secure_delete): it is
        reused by the next staging, or given back by ``Store.reclaim``."""

    # ---------------------------------------------------------- detail requests
    @abstractmethod
    def add_detail(self, row: DetailRow) -> None:
        """Log a detail request and its outcome."""

    @abstractmethod
    def count_details(
        self, peer: str, direction: Direction, since: int, outcomes: Sequence[str] | None = None
    ) -> int:
        """How many detail requests with ``peer`` in ``direction`` since ``since``
        (only those with one of ``outcomes``, if given)."""

    # ---------------------------------------------------------- rate limits, hits
    @abstractmethod
    def lock_bucket(self, fresh: Bucket) -> Bucket:
        """The bucket of ``(fresh.role, fresh.name)``, locked until commit;
        ``fresh`` is stored first if the caller has none yet."""

    @abstractmethod
    def put_bucket(self, bucket: Bucket) -> None:
        """Store a caller's bucket (after ``lock_bucket``)."""

    @abstractmethod
    def put_hits(self, rows: Sequence[HitRow]) -> None:
        """Remember hits (a newer hit of the same handle and origin replaces it)."""

    @abstractmethod
    def get_hit(self, handle: bytes, origin: str) -> HitRow | None:
        """The remembered hit, expired or not."""

    @abstractmethod
    def hit_origins(self, handle: bytes, now: int) -> list[str]:
        """Origins of the hits of ``handle`` not expired at ``now``, sorted."""

    @abstractmethod
    def purge_hits(self, before: int) -> int:
        """Forget hits expired before ``before``; how many."""

    # ---------------------------------------------------------- exchange log
    @abstractmethod
    def lock_audit(self) -> None:
        """Serialise appends to the exchange log until commit.

        Take it last in a transaction (after any other lock), so that
        transactions never wait for each other in a cycle.
        """

    @abstractmethod
    def add_audit_entry(self, idx: int, entry: bytes, leaf: bytes) -> None:
        """Store log entry ``idx`` and its leaf hash."""

    @abstractmethod
    def add_audit_entries(self, rows: Sequence[tuple[int, bytes, bytes]]) -> None:
        """Store ``(idx, entry, leaf)`` log entries."""

    @abstractmethod
    def put_audit_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Store completed perfect subtrees ``(level, index, hash)``."""

    @abstractmethod
    def audit_entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """``(idx, entry)`` for ``start <= idx < end``, in order."""

    @abstractmethod
    def audit_leaf(self, idx: int) -> bytes:
        """Leaf hash of entry ``idx``.

        Raises:
            InternalError: no such entry.
        """

    @abstractmethod
    def audit_node(self, level: int, idx: int) -> bytes | None:
        """Stored hash of a perfect subtree, or None."""

    # ---------------------------------------------------------- checkpoints, witnessing
    @abstractmethod
    def add_checkpoint(self, row: CheckpointRow) -> None:
        """Keep a checkpoint (no-op if one of that size is kept)."""

    @abstractmethod
    def latest_checkpoint(self) -> CheckpointRow | None:
        """The checkpoint of the largest size, or None."""

    @abstractmethod
    def list_checkpoints(self, after_size: int | None, limit: int) -> list[CheckpointRow]:
        """Up to ``limit`` checkpoints of size above ``after_size`` (None: from
        the first), smallest first."""

    @abstractmethod
    def add_cosignature(self, row: CosignatureRow) -> None:
        """Keep a witness's cosignature (no-op if that witness's is kept)."""

    @abstractmethod
    def cosignatures(self, size: int) -> list[CosignatureRow]:
        """The cosignatures of the checkpoint of ``size``, by witness."""

    @abstractmethod
    def last_cosigned_size(self, witness: str) -> int:
        """Largest checkpoint size ``witness`` cosigned (0: none)."""

    @abstractmethod
    def lock_witness(self) -> None:
        """Serialise witnesses' decisions until commit (before ``lock_audit``)."""

    @abstractmethod
    def witnessed(self, origin: str, size: int | None = None) -> WitnessedRow | None:
        """The checkpoint of ``origin`` cosigned at ``size`` (None: the largest)."""

    @abstractmethod
    def add_witnessed(self, row: WitnessedRow) -> None:
        """Remember a cosigned checkpoint (no-op if that size is remembered)."""

    @abstractmethod
    def list_witnessed(self) -> list[WitnessedRow]:
        """The largest cosigned checkpoint of every origin, by origin."""

    @abstractmethod
    def add_witness_refusal(
        self, note_hash: bytes, origin: str, at: int, reason: str, note: bytes
    ) -> bool:
        """Keep a refused checkpoint; False if the same note was refused before."""

    @abstractmethod
    def witnessed_restore(self, entry_hash: bytes) -> bool:
        """Whether the restore declaration of that hash was accepted before."""

    @abstractmethod
    def add_witnessed_restore(self, entry_hash: bytes, origin: str, at: int) -> bool:
        """Remember a restore declaration accepted from ``origin``; False if
        that declaration was accepted before."""

    @abstractmethod
    def retire_witnessed(self, origin: str, above_size: int) -> int:
        """Forget the cosigned checkpoints of ``origin`` above ``above_size``
        (history a declared restore abandoned; the evidence stays in the
        exchange log); returns how many."""

    # ---------------------------------------------------------- rejections
    @abstractmethod
    def add_rejection(self, row: RejectionRow) -> None:
        """Log a rejected input."""

    @abstractmethod
    def list_rejections(self, origin: str | None = None, limit: int = 100) -> list[RejectionRow]:
        """The latest rejections, newest first."""

    # ---------------------------------------------------------- acceptance
    @abstractmethod
    def put_acceptance(self, row: AcceptanceRow) -> None:
        """Insert or replace the acceptance policy of (peer, side)."""

    @abstractmethod
    def get_acceptance(self, peer: str, side: AcceptanceSide) -> AcceptanceRow | None:
        """The acceptance policy of (peer, side), or None."""

    @abstractmethod
    def list_acceptance(self, side: AcceptanceSide) -> list[AcceptanceRow]:
        """Every acceptance policy of one side, by peer."""


@dataclass(frozen=True)
class HitRow:
    """A hit remembered for a detail request (``incoming.hit_memory``)."""

    handle: bytes
    """A keyed hash of the caller and the listing's ref (no ref in the clear)."""
    origin: str
    until: int
    """Unix time after which the hit is forgotten."""
    seal_key: bytes = field(repr=False)
    """The seal key of the identifier that matched, encrypted at rest."""


class Leadership(ABC):
    """One process at a time among those serving a store (see ``Store.leadership``)."""

    @abstractmethod
    def hold(self) -> bool:
        """Become, or stay, the holder if nobody else is; True while this
        process holds it.  Never waits; a lost connection means not held
        (until it is taken again)."""

    @abstractmethod
    def release(self) -> None:
        """Stop holding it (another process may take it at once)."""


class Store(ABC):
    """A node's durable state."""

    @property
    @abstractmethod
    def shared(self) -> bool:
        """True when several serving processes (front-ends) may share the store
        (PostgreSQL); False for a store one ``wlx serve`` has to itself (SQLite)."""

    @abstractmethod
    def write(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        """A read-write transaction: commits when the block ends, else rolls back.

        ``durable=False`` skips waiting for the commit to reach the disk; for
        data that is thrown away after a crash anyway (a snapshot being
        staged), never for state or the exchange log.
        """

    @abstractmethod
    def read(self) -> AbstractContextManager[Tx]:
        """A read-only transaction over one consistent snapshot of the data."""

    @abstractmethod
    def exclusive(self, name: str, *, timeout: float) -> AbstractContextManager[None]:
        """Hold the store-wide lock ``name`` for the block, across processes.

        Every process that opens the same store (a serving node, any number of
        CLI commands) contends for the same lock; a process that dies holding
        it releases it.  Waits up to ``timeout`` seconds (0: do not wait).

        Raises:
            Unavailable: another holder kept it past ``timeout``.
        """

    @abstractmethod
    def leadership(self, name: str) -> Leadership:
        """The store-wide leadership ``name``: at most one process holds it,
        and it is free again as soon as its holder dies (its database
        session or file lock goes with it)."""

    @abstractmethod
    def reclaim(self) -> None:
        """Return free space to the file system after a large delete (a
        snapshot's staging); best effort, outside any transaction."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
