"""Witnessing: cosigning a trusted peer's checkpoints, never two histories.

docs/audit.md §4.  Follows C2SP ``tlog-witness`` (add-checkpoint): the log
sends its signed checkpoint, the size of the last of its checkpoints this
witness cosigned (``old_size``) and an RFC 9162 consistency proof from that
size.  The witness

1. verifies the note's signature with the identity key on the trusted card
   of the node the origin line names (``wlx.exchange/<NODE_ID>``);
2. if it cosigned a checkpoint of the same size: cosigns again when the root
   is the same, and refuses a *fork* when it differs (two signed roots for
   one size: conclusive);
3. answers *conflict* with its size when ``old_size`` is not the size it
   last cosigned (the log retries from that size);
4. refuses a *rollback*: a checkpoint smaller than the one it last cosigned;
5. refuses a *fork* when the proof does not show the checkpoint extends the
   one it last cosigned;
6. otherwise records the checkpoint and returns its cosignature
   (tlog-cosignature, key name ``wlx.witness/<OWN_ID>``, its identity key).

After a declared restore (docs/audit.md §4.4) the log also sends its
``node.restored`` entry with an inclusion proof in the checkpoint, and an
``old_size`` it had cosigned before the backup.  The witness accepts the log
continuing from there (``witness_rules.decide_restore``) when the checkpoint
is shown to extend that earlier checkpoint and includes the declaration,
forgets the abandoned checkpoints and writes the restore, with the abandoned
checkpoint as evidence, to its own exchange log.  Each declaration is
accepted once, so a log cannot use one to fork twice; any other divergence
is still a fork.

Steps 2-6 run under one lock, so two requests can never both extend the
same recorded checkpoint.  A refusal is written to the witness's *own*
exchange log (once per refused note) with both signed notes as evidence.
:func:`decide` is the pure decision; :func:`add_checkpoint` does the I/O.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from wlx.crypto import merkle
from wlx.crypto.checkpoint import Checkpoint, cosign
from wlx.crypto.errors import MalformedError, VerificationError
from wlx.crypto.merkle import HASH_SIZE, verify_inclusion
from wlx.crypto.note import open_note
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.audit.offline.names import log_verifier, node_of_origin, private_key, witness_name
from wlx.node.core.errors import Rejection, RejectReason, UserError
from wlx.node.core.node import Node
from wlx.node.protocol.witness_rules import (
    Conflict,
    Cosign,
    Decision,
    Refuse,
    Restore,
    check_submitter,
    decide,
    decide_restore,
)
from wlx.node.store.base import Tx, WitnessedRow

__all__ = [
    "Conflict",
    "Cosign",
    "Cosigned",
    "Decision",
    "Refuse",
    "Restore",
    "RestoreClaim",
    "add_checkpoint",
    "decide",
    "decide_restore",
]

log = logging.getLogger("wlx.witness")

MAX_NOTE_BYTES = 16 * 1024
"""Largest checkpoint note a witness reads (a checkpoint is ~150 bytes)."""
MAX_PROOF_HASHES = 64
"""A consistency proof of a tree below 2**63 leaves has at most 2*63 hashes;
64 covers any log of fewer than 2**32 entries."""


@dataclass(frozen=True)
class RestoreClaim:
    """A log's ``node.restored`` entry, its index, and its inclusion proof."""

    entry: bytes
    index: int
    proof: Sequence[bytes]


def check_restore_claim(peer: str, checkpoint: Checkpoint, claim: RestoreClaim) -> bytes:
    """Check that ``claim`` is ``peer``'s restore declaration and is in the
    checkpoint; returns the entry's hash (its identity).

    Raises:
        Rejection: MALFORMED (not such an entry, or not in the checkpoint).
    """
    if len(claim.entry) > MAX_NOTE_BYTES or len(claim.proof) > MAX_PROOF_HASHES:
        raise Rejection(RejectReason.TOO_LARGE, "restore declaration too large")
    try:
        obj = json.loads(claim.entry)
        if not isinstance(obj, dict) or (obj.get("kind"), obj.get("node"), obj.get("idx")) != (
            Event.NODE_RESTORED.value,
            peer,
            claim.index,
        ):
            raise ValueError("not this log's node.restored entry at that index")
        if claim.index >= checkpoint.size:
            raise ValueError("the declaration is not below the checkpoint's size")
        verify_inclusion(
            merkle.leaf_hash(claim.entry),
            claim.index,
            checkpoint.size,
            list(claim.proof),
            checkpoint.root_hash,
        )
    except (ValueError, RecursionError, VerificationError, MalformedError) as exc:
        raise Rejection(RejectReason.MALFORMED, f"restore declaration: {exc}") from None
    return hashlib.sha256(claim.entry).digest()


@dataclass(frozen=True)
class Cosigned:
    """The witness's answer: its cosignature line of the checkpoint."""

    line: str


def open_checkpoint(node: Node, note: bytes) -> tuple[str, Checkpoint]:
    """Verify a peer's checkpoint note; return the peer's node id and the checkpoint.

    Raises:
        Rejection: MALFORMED (not a wlx checkpoint note, too large),
            UNKNOWN_SIGNER (the origin is not a trusted peer),
            BAD_SIGNATURE (not signed by that peer's identity key).
        UserError: the checkpoint is of this node's own log.
    """
    if len(note) > MAX_NOTE_BYTES:
        raise Rejection(RejectReason.TOO_LARGE, "checkpoint note too large")
    try:
        origin_line = note.split(b"\n", 1)[0].decode("utf-8")
        peer = node_of_origin(origin_line)
    except (UnicodeDecodeError, MalformedError):
        raise Rejection(RejectReason.MALFORMED, "not a wlx exchange log checkpoint") from None
    if peer == node.node_id:
        raise UserError("a node does not witness its own log")
    card = node.trusted(peer)
    if card is None:
        raise Rejection(RejectReason.UNKNOWN_SIGNER, f"{peer} is not a trusted peer")
    try:
        text, _ = open_note(note, [log_verifier(peer, card.sign_key)], max_size=MAX_NOTE_BYTES)
        checkpoint = Checkpoint.parse(text)
    except MalformedError as exc:
        raise Rejection(RejectReason.MALFORMED, f"checkpoint: {exc}") from None
    except VerificationError:
        raise Rejection(
            RejectReason.BAD_SIGNATURE, f"checkpoint not signed by {peer}'s identity key"
        ) from None
    return peer, checkpoint


def add_checkpoint(
    node: Node,
    note: bytes,
    old_size: int,
    proof: Sequence[bytes],
    *,
    submitter: str | None,
    restore: RestoreClaim | None = None,
) -> Cosigned | Conflict:
    """Witness a trusted peer's checkpoint (docs/audit.md §4.2).

    ``submitter`` is the TLS-authenticated peer that sent it (None: none, as
    in-process or with ``--insecure-dev``); it must be the log's own node.
    Returns the cosignature, or a conflict naming the size this witness last
    cosigned (the log retries with a proof from it).  ``restore``: the log's
    restore declaration (docs/audit.md §4.4).

    Raises:
        Rejection: WRONG_SENDER, a checkpoint relayed by another node than
            the log's (nothing is recorded: no refusal against the log's node).
        Rejection: as :func:`open_checkpoint`; MALFORMED for a bad proof
            shape; FORK or ROLLBACK when refused (the refusal is in this
            node's exchange log).
        UserError: the checkpoint is of this node's own log.
    """
    if len(proof) > MAX_PROOF_HASHES or any(len(h) != HASH_SIZE for h in proof):
        raise Rejection(RejectReason.MALFORMED, "consistency proof is not a list of hashes")
    peer, checkpoint = open_checkpoint(node, note)
    check_submitter(peer, submitter)
    declaration = check_restore_claim(peer, checkpoint, restore) if restore else None
    now = node.now()
    with node.store.write() as tx:
        tx.lock_witness()
        latest, same_size = tx.witnessed(peer), tx.witnessed(peer, checkpoint.size)
        if (
            restore is not None
            and declaration is not None
            and not tx.witnessed_restore(declaration)
        ):
            decision = decide_restore(
                checkpoint,
                old_size,
                proof,
                declared_at=restore.index,
                latest=latest,
                same_size=same_size,
                at_old=tx.witnessed(peer, old_size) if old_size else None,
            )
        else:
            decision = decide(checkpoint, old_size, proof, latest=latest, same_size=same_size)
        if isinstance(decision, Restore) and restore is not None and declaration is not None:
            retired = tx.retire_witnessed(peer, old_size)
            tx.add_witnessed_restore(declaration, peer, now)
            tx.add_witnessed(WitnessedRow(peer, checkpoint.size, checkpoint.root_hash, note, now))
            _log_restore(node, tx, peer, checkpoint, note, old_size, restore, decision, retired)
        if isinstance(decision, Cosign) and decision.record:
            tx.add_witnessed(WitnessedRow(peer, checkpoint.size, checkpoint.root_hash, note, now))
        elif isinstance(decision, Refuse):
            note_hash = hashlib.sha256(note).digest()
            if tx.add_witness_refusal(note_hash, peer, now, decision.reason.value, note):
                exchange_log.record(
                    tx,
                    node,
                    now,
                    kind=Event.WITNESS_REFUSED,
                    origin=peer,
                    reason=decision.reason.value,
                    detail=decision.detail,
                    size=checkpoint.size,
                    old_size=old_size,
                    note=note.decode("utf-8"),
                    cosigned_size=decision.against.size,
                    cosigned_note=decision.against.note.decode("utf-8"),
                )
    if isinstance(decision, Conflict):
        return decision
    if isinstance(decision, Refuse):
        raise Rejection(decision.reason, f"checkpoint of {peer}'s log refused: {decision.detail}")
    line = cosign(
        checkpoint.to_text(), witness_name(node.node_id), private_key(node.signing_key), now
    )
    return Cosigned(line)


def _log_restore(
    node: Node,
    tx: Tx,
    peer: str,
    checkpoint: Checkpoint,
    note: bytes,
    old_size: int,
    restore: RestoreClaim,
    decision: Restore,
    retired: int,
) -> None:
    exchange_log.record(
        tx,
        node,
        kind=Event.WITNESS_RESTORE,
        origin=peer,
        size=checkpoint.size,
        old_size=old_size,
        note=note.decode("utf-8"),
        declaration=restore.entry.decode("utf-8"),
        declaration_index=restore.index,
        abandoned_size=decision.abandoned.size,
        abandoned_note=decision.abandoned.note.decode("utf-8"),
        retired=retired,
    )
    log.warning(
        "peer %s declared a restore from backup: its log continues from size %d; "
        "%d cosigned checkpoints up to size %d are abandoned (logged)",
        peer,
        old_size,
        retired,
        decision.abandoned.size,
    )
