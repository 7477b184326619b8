"""Which snapshots the origin served each peer: so a snapshot receipt can be
checked against what was actually sent (§8.4).

Kept in the store's ``meta`` table, per peer, for the last
``KEPT`` snapshots: ``(epoch, at_seq, chain_digest)``.  Written in the
transaction that logs the snapshot as sent.
"""

from __future__ import annotations

import struct

from wlx.node.store.base import Tx

KEPT = 16
_ITEM = struct.Struct(">QQ32s")


def _key(peer: str) -> str:
    return f"snapshots-sent:{peer}"


def _items(tx: Tx, peer: str) -> list[tuple[int, int, bytes]]:
    data = tx.get_meta(_key(peer)) or b""
    return [
        _ITEM.unpack_from(data, i) for i in range(0, len(data) - len(data) % _ITEM.size, _ITEM.size)
    ]


def note(tx: Tx, peer: str, epoch: int, at_seq: int, chain_digest: bytes) -> None:
    """Record, within ``tx``, that a snapshot at ``(epoch, at_seq)`` was served to ``peer``."""
    items = [i for i in _items(tx, peer) if i[:2] != (epoch, at_seq)]
    items = [*items, (epoch, at_seq, chain_digest)][-KEPT:]
    tx.set_meta(_key(peer), b"".join(_ITEM.pack(*i) for i in items))


def digest_at(tx: Tx, peer: str, epoch: int, at_seq: int) -> bytes | None:
    """The chain digest of the snapshot served to ``peer`` at ``(epoch, at_seq)``, if any."""
    for e, s, digest in _items(tx, peer):
        if (e, s) == (epoch, at_seq):
            return digest
    return None
