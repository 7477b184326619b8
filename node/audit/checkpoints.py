"""Signed checkpoints of the exchange log, and the names and keys they use.

docs/audit.md §3.  A checkpoint is the C2SP ``tlog-checkpoint`` text of the
log's tree head -- origin line ``wlx.exchange/<NODE_ID>`` (fixed for the life
of a node), tree size, base64 root hash, no extension lines -- inside a C2SP
``signed-note`` signed with the node's Ed25519 identity key under the key
name = the origin line (signed-note type 0x01, key ID
``SHA-256(name || 0x0A || 0x01 || public key)[:4]``).  Witnesses cosign it
(C2SP ``tlog-cosignature``, type 0x04) under the key name
``wlx.witness/<WITNESS_ID>`` with *their* identity keys (docs/audit.md §4).

Every checkpoint is kept (table ``checkpoints``), with the cosignatures it
received (table ``cosignatures``); served, a checkpoint is its note with the
cosignature lines appended, as in the transparency-log ecosystem.

Domain separation: the identity key signs three kinds of bytes, and none can
be taken for another.  wlx messages sign ``"wlx/v1 signature" || 0x00 || ...``
(a NUL: never note text); cosignatures sign ``"cosignature/v1\\n..."``; a
checkpoint note always begins ``"wlx.exchange/"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from wlx.crypto.note import sign_note
from wlx.node.audit import exchange_log
from wlx.node.audit.offline.names import (
    checkpoint_text,
    log_signer,
)
from wlx.node.core.errors import InternalError
from wlx.node.core.node import Node
from wlx.node.store.base import CheckpointRow, CosignatureRow, Tx


def make_checkpoint(node: Node) -> CheckpointRow:
    """Sign and keep a checkpoint of the log as it is now; return the latest checkpoint.

    If the latest kept checkpoint already has the log's size, nothing is
    made and that one is returned.  The log's size and root are read under
    the log's lock, so the checkpoint is of one state the log had.

    Raises:
        InternalError: the log is smaller than a checkpoint already made
            (the store was rolled back or altered).
    """
    with node.store.read() as tx:  # the common case, without the log's lock
        latest = tx.latest_checkpoint()
        if latest is not None and latest.size == exchange_log.head(tx)[0]:
            return latest
    with node.store.write() as tx:
        tx.lock_audit()
        size, root = exchange_log.head(tx)
        latest = tx.latest_checkpoint()
        if latest is not None and latest.size >= size:
            if latest.size > size:
                raise InternalError(
                    f"the exchange log has {size} entries but a checkpoint of size "
                    f"{latest.size} was made: the store was rolled back or altered"
                )
            return latest
        text = checkpoint_text(node.node_id, size, root)
        note = sign_note(text, [log_signer(node.node_id, node.signing_key)])
        row = CheckpointRow(size=size, root=root, note=note, made_at=node.now())
        tx.add_checkpoint(row)
    return row


def with_cosignatures(note: bytes, cosignatures: Iterable[CosignatureRow]) -> bytes:
    """The checkpoint note with the witnesses' cosignature lines appended, by witness."""
    lines = sorted(cosignatures, key=lambda c: c.witness)
    return note + b"".join(c.line.encode("utf-8") for c in lines)


def cosigned(tx: Tx, row: CheckpointRow) -> bytes:
    """The checkpoint of ``row`` with every cosignature kept for it."""
    return with_cosignatures(row.note, tx.cosignatures(row.size))


def all_checkpoints(tx: Tx, *, upto: int | None = None, page: int = 500) -> list[CheckpointRow]:
    """Every kept checkpoint (of size at most ``upto``), smallest first."""
    rows: list[CheckpointRow] = []
    after: int | None = None
    while True:
        chunk = tx.list_checkpoints(after, page)
        rows.extend(r for r in chunk if upto is None or r.size <= upto)
        if len(chunk) < page or (upto is not None and chunk[-1].size >= upto):
            return rows
        after = chunk[-1].size


def export_size(tx: Tx, rows: Sequence[CheckpointRow]) -> int | None:
    """The size an export covers: the newest checkpoint with a cosignature, or
    the newest checkpoint if none has one; None if there is no checkpoint."""
    for row in reversed(rows):
        if tx.cosignatures(row.size):
            return row.size
    return rows[-1].size if rows else None
