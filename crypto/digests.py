"""Domain-separated digests: payload digests and hash-chain anchors.

docs/protocol.md §5.1 and §6.2.  Each purpose has its own prefix, so a digest
made for one purpose can never be mistaken for another.
"""

from __future__ import annotations

import hashlib

from wlx.crypto.encoding import lp, u64

DIGEST_LEN = 32
PAYLOAD_PREFIX = b"wlx/v1 payload\x00"
GENESIS_PREFIX = b"wlx/v1 genesis\x00"
SKIP_PREFIX = b"wlx/v1 skip\x00"


def payload_digest(payload: bytes) -> bytes:
    """``SHA-256("wlx/v1 payload" || 0x00 || payload)``.

    The digest of a signed payload: what signatures cover and what the batch
    hash chain links.
    """
    return hashlib.sha256(PAYLOAD_PREFIX + payload).digest()


def genesis_digest(origin: str, recipient: str, epoch: int) -> bytes:
    """The chain anchor of one (origin, recipient, epoch) stream.

    ``SHA-256("wlx/v1 genesis" || 0x00 || lp(origin) || lp(recipient) ||
    u64(epoch))``: the ``prev_digest`` of the stream's first batch.
    """
    return hashlib.sha256(GENESIS_PREFIX + lp(origin) + lp(recipient) + u64(epoch)).digest()


def skip_digest(prev_digest: bytes) -> bytes:
    """``SHA-256("wlx/v1 skip" || 0x00 || prev_digest)``: the chain anchor an
    origin moves to when it stops keeping changes for a peer that stayed away
    longer than its retention window (docs/protocol.md §7.3).  The peer can
    then only continue from a snapshot, which carries the new anchor."""
    return hashlib.sha256(SKIP_PREFIX + prev_digest).digest()
