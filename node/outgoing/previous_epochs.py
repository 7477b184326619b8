"""The epoch key a stream had before its last new epoch, kept for a grace period.

After ``wlx epoch new`` or a key rotation, a peer's officers still hold hits
(and their seal keys) from lookups under the previous epoch until the peer
resyncs; the origin accepts hit proofs made under that previous key for
``PROOF_GRACE`` seconds (docs/protocol.md §11.2).  Kept in the store's
``meta`` table, per peer: the epoch, the end of the grace, the wrapped key
(encrypted at rest, as every epoch key).  A revocation or a re-trust drops it.
"""

from __future__ import annotations

import struct

from wlx.node.store.base import Tx

PROOF_GRACE = 24 * 3600
"""As long as a hit is remembered for a detail request (``lookup.HitMemory``)."""
_HEAD = struct.Struct(">QQ")


def _key(peer: str) -> str:
    return f"previous-epoch:{peer}"


def keep(tx: Tx, peer: str, epoch: int, wrapped_key: bytes, until: int) -> None:
    """Keep ``peer``'s previous epoch key (as stored, wrapped) until ``until``."""
    tx.set_meta(_key(peer), _HEAD.pack(epoch, until) + wrapped_key)


def drop(tx: Tx, peer: str) -> None:
    """Forget ``peer``'s previous epoch key."""
    tx.set_meta(_key(peer), b"")


def get(tx: Tx, peer: str, now: int) -> tuple[int, bytes] | None:
    """``(epoch, wrapped key)`` of ``peer``'s previous epoch, if still in its grace."""
    data = tx.get_meta(_key(peer)) or b""
    if len(data) <= _HEAD.size:
        return None
    epoch, until = _HEAD.unpack_from(data)
    if now > until:
        return None
    return epoch, data[_HEAD.size :]
