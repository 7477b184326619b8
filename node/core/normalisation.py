"""Which identifier-key normalisation each epoch's tokens use (docs/protocol.md §2.9).

An epoch made by this code records its version (``wlx-norm-2``) in the
store's ``meta`` table; an epoch without a record was made before versions
were recorded, so its tokens are ``wlx-norm-1``.  A node keeps using each
epoch's own version for that epoch: lookups key a query once per version in
use, and an origin seals every batch of an epoch with that epoch's keys.
Moving a peer to the current version is a new epoch (``lifecycle.migrate``).

The protocol version an origin's epoch was started under (appendix B: 2
seals each listing once, §4.3) is recorded the same way; an epoch without a
record uses protocol 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from wlx.crypto.normalize import NORMALISATION, NORMALISATION_1, VERSIONS
from wlx.node.core.errors import InternalError


class Tx(Protocol):
    """The part of a store transaction this needs (``wlx.node.store.base.Tx``)."""

    def get_meta(self, key: str) -> bytes | None: ...

    def get_metas(self, keys: Sequence[str]) -> dict[str, bytes]: ...

    def set_meta(self, key: str, value: bytes) -> None: ...


LEGACY = NORMALISATION_1
"""The version of an epoch with no recorded version."""


def _meta_key(origin: str, recipient: str, epoch: int) -> str:
    return f"normalisation/{origin}/{recipient}/{epoch}"


def of_epoch(tx: Tx, origin: str, recipient: str, epoch: int) -> str:
    """The normalisation version of one epoch's tokens.

    Raises:
        InternalError: the store records a version this code does not know.
    """
    return _version(tx.get_meta(_meta_key(origin, recipient, epoch)))


def of_epochs(tx: Tx, recipient: str, epochs: Iterable[tuple[str, int]]) -> dict[str, str]:
    """``of_epoch`` of each ``(origin, epoch)``, by origin, read in one statement.

    Raises:
        InternalError: the store records a version this code does not know.
    """
    keys = {origin: _meta_key(origin, recipient, epoch) for origin, epoch in epochs}
    values = tx.get_metas(list(keys.values()))
    return {origin: _version(values.get(key)) for origin, key in keys.items()}


def _version(value: bytes | None) -> str:
    if value is None:
        return LEGACY
    version = value.decode("utf-8", "replace")
    if version not in VERSIONS:
        raise InternalError("the store records an unknown normalisation version")
    return version


def record(tx: Tx, origin: str, recipient: str, epoch: int, version: str = NORMALISATION) -> None:
    """Record the version of a new epoch's tokens."""
    tx.set_meta(_meta_key(origin, recipient, epoch), version.encode("utf-8"))


def _protocol_key(origin: str, recipient: str, epoch: int) -> str:
    return f"protocol/{origin}/{recipient}/{epoch}"


def protocol_of_epoch(tx: Tx, origin: str, recipient: str, epoch: int) -> int:
    """The protocol version one epoch's upserts are sealed under (1 or 2).

    Raises:
        InternalError: the store records a version this code does not know.
    """
    value = tx.get_meta(_protocol_key(origin, recipient, epoch))
    if value is None:
        return 1
    if value not in (b"1", b"2"):
        raise InternalError("the store records an unknown protocol version")
    return int(value)


def record_protocol(tx: Tx, origin: str, recipient: str, epoch: int, protocol: int) -> None:
    """Record the protocol version of a new epoch (1 or 2)."""
    if protocol not in (1, 2):
        raise InternalError("no such protocol version")
    tx.set_meta(_protocol_key(origin, recipient, epoch), str(protocol).encode())
