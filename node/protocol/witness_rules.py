"""The witness decision (docs/audit.md §4.2, §4.4 for a declared restore).  Pure.

Who may submit a checkpoint, and whether to cosign it given what this
witness cosigned of the same log.  A refusal goes, with both signed notes,
into the witness's own exchange log, so it must never be recorded against a
node that did not send the note: only the log's own node may submit its
checkpoints (``check_submitter``), and a checkpoint relayed by anyone else is
refused before it is decided or recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from wlx.crypto.checkpoint import Checkpoint
from wlx.crypto.errors import MalformedError, VerificationError
from wlx.crypto.merkle import verify_consistency
from wlx.node.core.errors import Rejection, RejectReason


class WitnessedRow(Protocol):
    """What the decision needs of a checkpoint the witness cosigned (the
    store's ``WitnessedRow`` is one)."""

    @property
    def size(self) -> int: ...

    @property
    def root(self) -> bytes: ...

    @property
    def note(self) -> bytes: ...


def check_submitter(log_node: str, submitter: str | None) -> None:
    """Only ``log_node`` itself may submit its checkpoints.

    ``submitter`` is the peer authenticated by TLS (None: no authenticated
    peer, i.e. an in-process call or an ``--insecure-dev`` node).

    Raises:
        Rejection: WRONG_SENDER, when another node relays the checkpoint.
    """
    if submitter is not None and submitter != log_node:
        raise Rejection(
            RejectReason.WRONG_SENDER,
            f"{submitter} may not submit checkpoints of {log_node}'s log; only {log_node} may",
        )


@dataclass(frozen=True)
class Cosign:
    """Cosign the checkpoint; ``record`` unless it is already recorded."""

    record: bool


@dataclass(frozen=True)
class Conflict:
    """``old_size`` is not the size the witness last cosigned: ``size`` is."""

    size: int


@dataclass(frozen=True)
class Refuse:
    """Refuse the checkpoint (and log why)."""

    reason: RejectReason
    """FORK or ROLLBACK."""
    detail: str
    against: WitnessedRow
    """The cosigned checkpoint it contradicts."""


@dataclass(frozen=True)
class Restore:
    """Accept the log continuing after a declared restore, abandoning the
    checkpoints cosigned above ``old_size`` (the largest is ``abandoned``)."""

    abandoned: WitnessedRow


Decision = Cosign | Conflict | Refuse | Restore


def decide(
    checkpoint: Checkpoint,
    old_size: int,
    proof: Sequence[bytes],
    *,
    latest: WitnessedRow | None,
    same_size: WitnessedRow | None,
) -> Decision:
    """Decide on a verified checkpoint, given what the witness cosigned of its log.

    ``latest`` is the largest checkpoint of the log the witness cosigned and
    ``same_size`` the one of the checkpoint's size, if any.  Pure.
    """
    if same_size is not None:
        if same_size.root == checkpoint.root_hash:
            return Cosign(record=False)
        return Refuse(
            RejectReason.FORK,
            f"this witness cosigned another root for size {checkpoint.size}",
            same_size,
        )
    recorded_size = latest.size if latest is not None else 0
    if old_size != recorded_size:
        return Conflict(recorded_size)
    if latest is None:
        return Cosign(record=True)  # first checkpoint of this log: nothing to be consistent with
    if checkpoint.size < latest.size:
        return Refuse(
            RejectReason.ROLLBACK,
            f"size {checkpoint.size} is below size {latest.size}, which this witness cosigned",
            latest,
        )
    try:
        verify_consistency(latest.size, checkpoint.size, latest.root, checkpoint.root_hash, proof)
    except (VerificationError, MalformedError) as exc:
        return Refuse(
            RejectReason.FORK,
            f"not shown to extend size {latest.size}, which this witness cosigned ({exc})",
            latest,
        )
    return Cosign(record=True)


def decide_restore(
    checkpoint: Checkpoint,
    old_size: int,
    proof: Sequence[bytes],
    *,
    declared_at: int,
    latest: WitnessedRow | None,
    same_size: WitnessedRow | None,
    at_old: WitnessedRow | None,
) -> Decision:
    """Decide on a verified checkpoint that includes a restore declaration
    (at index ``declared_at``) this witness has not accepted before.  Pure.

    ``at_old`` is the checkpoint cosigned at ``old_size``.  The checkpoint
    must extend that one; ``old_size`` must come before the declaration
    (what was restored was cosigned before the backup was taken).
    """
    if same_size is not None and same_size.root == checkpoint.root_hash:
        return Cosign(record=False)
    if latest is None or latest.size == old_size:
        return decide(checkpoint, old_size, proof, latest=latest, same_size=same_size)
    if old_size > declared_at or old_size > latest.size:
        return Refuse(
            RejectReason.ROLLBACK,
            f"a restore declared at entry {declared_at} cannot continue from size {old_size}",
            latest,
        )
    if old_size > 0:
        if at_old is None:
            return Conflict(latest.size)
        try:
            verify_consistency(old_size, checkpoint.size, at_old.root, checkpoint.root_hash, proof)
        except (VerificationError, MalformedError) as exc:
            return Refuse(
                RejectReason.FORK,
                f"the restored log is not shown to extend size {old_size} ({exc})",
                at_old,
            )
    return Restore(abandoned=latest)
