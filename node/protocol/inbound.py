"""What a recipient decides about a batch or snapshot it received.

docs/protocol.md §6.3-§6.4 and §7.2.  Pure: the caller supplies the cursor
and a way to look up the digests of batches already applied; these functions
say whether the input may be applied, what the new cursor is, or raise
``Rejection`` with the reason.  Nothing here touches storage, so a rejected
input cannot have changed anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from wlx.crypto.digests import genesis_digest
from wlx.crypto.keys import BoxKey
from wlx.crypto.normalize import NORMALISATION, VERSIONS
from wlx.crypto.signing import Purpose
from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.protocol import codec
from wlx.node.protocol.envelopes import TrustLookup, open_envelope, same_digest
from wlx.node.protocol.messages import Batch, Cursor, Sealed, SnapshotPart

MAX_SNAPSHOT_ENTRIES = 50_000_000

DigestAt = Callable[[int], bytes | None]
"""Digest of the applied batch of the current epoch that ended at a sequence
number, or None when no such batch was applied."""


@dataclass(frozen=True)
class Apply:
    """Apply ``batch`` and move the cursor to ``cursor``, in one transaction."""

    batch: Batch
    cursor: Cursor


@dataclass(frozen=True)
class Duplicate:
    """The batch was applied before; applying it again changes nothing."""

    batch: Batch


Decision = Apply | Duplicate


def decide_batch(
    batch: Batch, *, me: str, origin: str, cursor: Cursor | None, digest_at: DigestAt
) -> Decision:
    """Decide whether a verified batch continues the recipient's stream.

    Raises:
        Rejection: wrong-sender, wrong-recipient, unexpected-epoch (no
            snapshot yet, or a newer epoch), stale-epoch, rollback, fork or gap.
    """
    if batch.origin != origin:
        raise Rejection(RejectReason.WRONG_SENDER, "batch names another origin")
    if batch.recipient != me:
        raise Rejection(RejectReason.WRONG_RECIPIENT, "batch made for another node")
    if cursor is None:
        raise Rejection(RejectReason.UNEXPECTED_EPOCH, "no snapshot of this origin applied yet")
    if batch.epoch < cursor.epoch:
        raise Rejection(
            RejectReason.STALE_EPOCH, f"batch of epoch {batch.epoch}, current is {cursor.epoch}"
        )
    if batch.epoch > cursor.epoch:
        raise Rejection(
            RejectReason.UNEXPECTED_EPOCH,
            f"batch of epoch {batch.epoch} before its snapshot (current {cursor.epoch})",
        )
    if batch.last_seq <= cursor.seq:
        known = digest_at(batch.last_seq)
        if known is None:
            raise Rejection(
                RejectReason.ROLLBACK,
                f"batch ends at {batch.last_seq}, behind the cursor at {cursor.seq}",
            )
        if same_digest(known, batch.digest):
            return Duplicate(batch)
        raise Rejection(
            RejectReason.FORK, f"batch ending at {batch.last_seq} differs from the one applied"
        )
    if batch.first_seq > cursor.seq + 1:
        raise Rejection(
            RejectReason.GAP,
            f"batch starts at {batch.first_seq}, the cursor is at {cursor.seq}",
        )
    if batch.first_seq <= cursor.seq:
        raise Rejection(
            RejectReason.FORK,
            f"batch {batch.first_seq}-{batch.last_seq} overlaps the applied stream at {cursor.seq}",
        )
    if not same_digest(batch.prev_digest, cursor.digest):
        raise Rejection(
            RejectReason.FORK, f"batch at {batch.first_seq} does not chain to the cursor"
        )
    return Apply(batch, Cursor(batch.epoch, batch.last_seq, batch.digest))


def open_batch(
    sealed: Sealed, *, me: str, origin: str, box_key: BoxKey, trusted: TrustLookup
) -> Batch:
    """Open, verify and parse one batch envelope from ``origin`` (no state needed,
    so a receiver does it before taking its store's lock).

    Raises:
        Rejection: any check of ``open_envelope`` or ``codec``.
    """
    payload = open_envelope(
        sealed,
        purpose=Purpose.BATCH,
        me=me,
        box_key=box_key,
        expected_sender=origin,
        trusted=trusted,
    )
    return codec.decode_batch_payload(payload)


def receive_batch(
    sealed: Sealed,
    *,
    me: str,
    origin: str,
    box_key: BoxKey,
    trusted: TrustLookup,
    cursor: Cursor | None,
    digest_at: DigestAt,
) -> Decision:
    """Open, verify, parse and decide one batch envelope from ``origin``:
    ``open_batch`` then ``decide_batch``, exactly what ``receiver.apply_batch``
    runs (there in two steps, the second inside the store's transaction).

    Raises:
        Rejection: any check of ``open_batch`` or ``decide_batch``.
    """
    batch = open_batch(sealed, me=me, origin=origin, box_key=box_key, trusted=trusted)
    return decide_batch(batch, me=me, origin=origin, cursor=cursor, digest_at=digest_at)


@dataclass(frozen=True)
class SnapshotResult:
    """A complete, verified snapshot: what the recipient's state becomes."""

    snapshot_id: bytes
    epoch: int
    token_key: bytes
    cursor: Cursor
    total_entries: int
    normalisation: str = NORMALISATION
    """The identifier-key version of the epoch's tokens (part 0 says it)."""


@dataclass(frozen=True)
class SnapshotProgress:
    """How far a snapshot being staged got: enough to check and stage the
    parts that follow, after a restart (docs/protocol.md §7.4)."""

    snapshot_id: bytes
    epoch: int
    at_seq: int
    chain_digest: bytes
    token_key: bytes = field(repr=False)
    next_index: int
    last_digest: bytes
    entries: int
    resume_token: bytes
    final: bool = False
    normalisation: str = NORMALISATION

    def result(self) -> SnapshotResult:
        """What to apply, once the final part is staged.

        Raises:
            Rejection: malformed, the snapshot ended before its final part.
        """
        if not self.final:
            raise Rejection(RejectReason.MALFORMED, "snapshot ended before its final part")
        return SnapshotResult(
            snapshot_id=self.snapshot_id,
            epoch=self.epoch,
            token_key=self.token_key,
            cursor=Cursor(self.epoch, self.at_seq, self.chain_digest),
            total_entries=self.entries,
            normalisation=self.normalisation,
        )


def resumable(progress: SnapshotProgress, cursor: Cursor | None) -> bool:
    """Whether staged parts still fit the recipient's cursor (they did when
    staged; a cursor moved since by a snapshot or batch makes them void)."""
    try:
        _check_position(progress.epoch, progress.at_seq, progress.chain_digest, cursor)
    except Rejection:
        return False
    return True


def _check_position(epoch: int, at_seq: int, chain_digest: bytes, cursor: Cursor | None) -> None:
    if cursor is None:
        return
    if epoch < cursor.epoch:
        raise Rejection(
            RejectReason.STALE_EPOCH, f"snapshot of epoch {epoch}, current is {cursor.epoch}"
        )
    if epoch == cursor.epoch:
        if at_seq < cursor.seq:
            raise Rejection(
                RejectReason.ROLLBACK, f"snapshot at {at_seq}, behind the cursor at {cursor.seq}"
            )
        if at_seq == cursor.seq and not same_digest(chain_digest, cursor.digest):
            raise Rejection(RejectReason.FORK, "snapshot disagrees with the applied stream")


class SnapshotReceiver:
    """Checks the parts of one snapshot as they stream in (sans I/O).

    Feed every envelope to ``receive``; stage the entries of each returned
    part (with ``progress``, to resume after a restart); when ``done``,
    ``result()`` says what to apply.  Given the ``resume`` progress of staged
    parts, the stream may continue them (next index, same snapshot, chained
    to the last staged part) or start a new snapshot at part 0, which
    replaces them.  Any exception means: discard everything staged for this
    snapshot.
    """

    def __init__(
        self,
        *,
        me: str,
        origin: str,
        box_key: BoxKey,
        trusted: TrustLookup,
        cursor: Cursor | None,
        resume: SnapshotProgress | None = None,
        speaks: tuple[str, ...] = VERSIONS,
    ) -> None:
        self._me = me
        self._speaks = speaks
        self._origin = origin
        self._box_key = box_key
        self._trusted = trusted
        self._cursor = cursor
        self._progress = resume
        self._final = False
        self._started = False

    @property
    def start_cursor(self) -> Cursor | None:
        """The recipient's cursor this snapshot is checked against."""
        return self._cursor

    @property
    def done(self) -> bool:
        """True once the final part has been received."""
        return self._final

    @property
    def progress(self) -> SnapshotProgress | None:
        """How far the snapshot got (None before its part 0)."""
        return self._progress

    def receive(self, sealed: Sealed) -> SnapshotPart:
        """Verify the next part; returns it so its entries can be staged.

        A part 0 starts the snapshot afresh: whatever was staged before it
        (of a resumed snapshot) is to be discarded.

        Raises:
            Rejection: a check of ``open_envelope`` or ``codec`` failed; the
                part is out of order or does not chain; the snapshot is for an
                older epoch (stale-epoch) or behind the cursor (rollback), or
                disagrees with it (fork); part 0's epoch key names a
                normalisation not in ``speaks`` (malformed, MUST-B.2-3).
        """
        if self._final:
            raise Rejection(RejectReason.MALFORMED, "part after the final snapshot part")
        payload = open_envelope(
            sealed,
            purpose=Purpose.SNAPSHOT_PART,
            me=self._me,
            box_key=self._box_key,
            expected_sender=self._origin,
            trusted=self._trusted,
        )
        part = codec.decode_snapshot_part(payload)
        if part.origin != self._origin:
            raise Rejection(RejectReason.WRONG_SENDER, "snapshot names another origin")
        if part.recipient != self._me:
            raise Rejection(RejectReason.WRONG_RECIPIENT, "snapshot made for another node")
        progress = self._progress
        if part.index == 0 and not self._started:
            self._check_first(part)
            count = 0
            assert part.token_key is not None  # the codec requires it in part 0
            token_key, version = part.token_key, part.normalisation
            if version not in self._speaks:  # MUST-B.2-3
                raise Rejection(
                    RejectReason.MALFORMED, "epoch key of a normalisation this node does not speak"
                )
        elif progress is None:
            raise Rejection(RejectReason.MALFORMED, "snapshot does not start at part 0")
        else:
            self._check_next(progress, part)
            count, token_key = progress.entries, progress.token_key
            version = progress.normalisation
        self._started = True
        count += len(part.entries)
        if count > MAX_SNAPSHOT_ENTRIES:
            raise Rejection(RejectReason.TOO_LARGE, "snapshot has too many entries")
        if part.final and part.total_entries != count:
            raise Rejection(RejectReason.MALFORMED, "snapshot entry count does not match")
        self._final = part.final
        self._progress = SnapshotProgress(
            snapshot_id=part.snapshot_id,
            epoch=part.epoch,
            at_seq=part.at_seq,
            chain_digest=part.chain_digest,
            token_key=token_key,
            next_index=part.index + 1,
            last_digest=part.digest,
            entries=count,
            resume_token=part.resume_token,
            final=part.final,
            normalisation=version,
        )
        return part

    def _check_first(self, part: SnapshotPart) -> None:
        if part.at_seq == 0 and not same_digest(
            part.chain_digest, genesis_digest(self._origin, self._me, part.epoch)
        ):
            raise Rejection(
                RejectReason.MALFORMED, "snapshot at 0 does not carry the genesis digest"
            )
        _check_position(part.epoch, part.at_seq, part.chain_digest, self._cursor)

    def _check_next(self, last: SnapshotProgress, part: SnapshotPart) -> None:
        if part.index != last.next_index:
            raise Rejection(RejectReason.MALFORMED, "snapshot parts out of order")
        if (
            part.snapshot_id != last.snapshot_id
            or part.epoch != last.epoch
            or part.at_seq != last.at_seq
            or part.chain_digest != last.chain_digest
        ):
            raise Rejection(RejectReason.MALFORMED, "snapshot parts from different snapshots")
        if not same_digest(part.prev_part_digest, last.last_digest):
            raise Rejection(RejectReason.FORK, "snapshot part does not chain to the previous one")

    def result(self) -> SnapshotResult:
        """What to apply, once ``done``.

        Raises:
            Rejection: malformed, the snapshot ended before its final part.
        """
        progress = self._progress
        if progress is None or not self._final:
            raise Rejection(RejectReason.MALFORMED, "snapshot ended before its final part")
        return progress.result()
