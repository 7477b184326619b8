"""Hits remembered for detail requests, in the store: shared by front-ends.

A node served by several processes (a PostgreSQL store, docs/scaling.md)
answers an officer's detail request on whichever front-end the load
balancer picks, not always the one that answered the lookup.  So the seal
key of the identifier that matched (docs/protocol.md §11.2) is kept in the
store, encrypted at rest under the node's storage key and bound to its
caller, origin and ref, for as long as ``lookup.HitMemory`` would keep it
in memory; the leader's housekeeping deletes the expired ones
(``maintenance``).  A row is found by a *handle*, a BLAKE2b hash of the
officer's credential name and the listing's ref keyed by the storage key:
the store holds neither in the clear, nor any identifier of the person.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from wlx.crypto.encoding import lp
from wlx.node.core.node import Node
from wlx.node.store.base import HitRow

TTL = 24 * 3600
"""As ``lookup.HitMemory``: a day."""
PERSON = b"wlx1-hit-memory"
HANDLE_LEN = 16


def _context(caller: str, origin: str, ref: str) -> str:
    return f"hit:{len(caller)}:{caller}:{len(origin)}:{origin}:{ref}"


class StoredHitMemory:
    """``lookup.HitMemory``'s interface over the node's store."""

    def __init__(self, node: Node, ttl: int = TTL) -> None:
        self._node = node
        self._ttl = ttl
        # BLAKE2b-256(key = storage key, person = "wlx1-hit-memory"): the handles' key.
        self._key = hashlib.blake2b(
            b"", digest_size=32, key=node.storage_key, person=PERSON
        ).digest()

    def handle(self, caller: str, ref: str) -> bytes:
        """The row handle of the caller's hits with ``ref``: keyed BLAKE2b-128."""
        data = lp(caller) + lp(ref)
        return hashlib.blake2b(data, digest_size=HANDLE_LEN, key=self._key).digest()

    def remember(self, caller: str, origin: str, ref: str, seal_key: bytes, now: float) -> None:
        self.remember_all(caller, [(origin, ref, seal_key)], now)

    def remember_all(self, caller: str, hits: Sequence[tuple[str, str, bytes]], now: float) -> None:
        """Remember every ``(origin, ref, seal_key)`` of one call, in one transaction.

        Raises:
            Unavailable, InternalError: the store did not answer.
        """
        if not hits:
            return
        until = int(now) + self._ttl
        node = self._node
        unique = {(origin, ref): key for origin, ref, key in hits}
        rows = [
            HitRow(
                self.handle(caller, ref), o, until, node.seal_at_rest(key, _context(caller, o, ref))
            )
            for (o, ref), key in sorted(unique.items())
        ]
        # Not durable: a hit lost with the database's last commits is looked up again.
        with node.store.write(durable=False) as tx:
            tx.put_hits(rows)

    def origins(self, caller: str, ref: str, now: float) -> list[str]:
        """Origins of the caller's unexpired hits with this ref."""
        with self._node.store.read() as tx:
            return tx.hit_origins(self.handle(caller, ref), int(now))

    def recall(self, caller: str, origin: str, ref: str, now: float) -> bytes | None:
        """The seal key of the caller's unexpired hit, or None.

        Raises:
            InternalError: the stored key does not open (tampered at rest).
        """
        with self._node.store.read() as tx:
            row = tx.get_hit(self.handle(caller, ref), origin)
        if row is None or row.until < now:
            return None
        return self._node.open_at_rest(row.seal_key, _context(caller, origin, ref))
