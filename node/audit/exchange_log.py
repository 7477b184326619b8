"""The exchange log: an append-only RFC 9162 Merkle log of what a node did.

docs/audit.md §1-§2.  Every event (a batch made or applied, a rejection, a
lookup, a detail request, a key, trust or policy change) is appended as one
entry *inside the transaction that does what it records*, so the log and
the node's state can never disagree, even after a crash.

An entry is canonical JSON (UTF-8, sorted keys, no spaces), the leaf of the
tree is ``SHA-256(0x00 || entry)``.  Entries never hold a personal
identifier, nor any hash of one: lookups are logged by credential, purpose,
counts and the refs of the hits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Protocol

from wlx.crypto import merkle
from wlx.node.audit.offline.bundle import ENTRY_FORMAT
from wlx.node.audit.offline.events import Event as Event  # noqa: PLC0414 - re-exported
from wlx.node.store.base import Tx

RANGE_KEY = "audit_range"

Field = str | int | bool | Sequence[str]


RESTORED_ENTRY_META = "restored_entry"
"""Store meta key: index of the ``node.restored`` entry of the last restore
(witnesses are shown it until each has cosigned a checkpoint including it)."""


def encode_entry(
    *, idx: int, time: int, node: str, kind: Event, fields: Mapping[str, Field]
) -> bytes:
    """The canonical bytes of one entry (docs/audit.md §1.1)."""
    reserved = {"v", "idx", "time", "node", "kind"} & set(fields)
    if reserved:
        raise ValueError(f"event fields may not be named {sorted(reserved)}")
    obj: dict[str, object] = {
        "v": ENTRY_FORMAT,
        "idx": idx,
        "time": time,
        "node": node,
        "kind": kind.value,
    }
    obj.update({k: list(v) if isinstance(v, (list, tuple)) else v for k, v in fields.items()})
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _range(tx: Tx) -> merkle.CompactRange:
    data = tx.get_meta(RANGE_KEY)
    return merkle.CompactRange.from_bytes(data) if data else merkle.CompactRange()


class Clocked(Protocol):
    """What ``record`` needs of a node: its id and its clock."""

    @property
    def node_id(self) -> str: ...

    def now(self) -> int: ...


def record(tx: Tx, node: Clocked, at: int | None = None, /, *, kind: Event, **fields: Field) -> int:
    """Append one entry of ``node`` within ``tx``; returns its index.

    The entry's time is ``at``, the clock reading the caller already used for
    the rows the entry records (so they agree), else the node's clock now.
    Takes the log's lock, so call it last in the transaction.
    """
    at = node.now() if at is None else at
    tx.lock_audit()
    tree = _range(tx)
    idx = tree.size
    entry = encode_entry(idx=idx, time=at, node=node.node_id, kind=kind, fields=fields)
    leaf = merkle.leaf_hash(entry)
    completed = tree.append(leaf)
    tx.add_audit_entry(idx, entry, leaf)
    if completed:
        tx.put_audit_nodes(completed)
    tx.set_meta(RANGE_KEY, tree.to_bytes())
    return idx


def record_many(
    tx: Tx,
    node: Clocked,
    events: Sequence[tuple[Event, Mapping[str, Field]]],
    *,
    at: int | None = None,
) -> int:
    """Append many entries of ``node`` within ``tx`` (one lock, one write of
    each kind); returns the index of the first.  Same entries as ``record``
    one by one, all at ``at`` (by default the node's clock read now)."""
    at = node.now() if at is None else at
    tx.lock_audit()
    tree = _range(tx)
    first = tree.size
    rows, nodes = [], []
    for kind, fields in events:
        entry = encode_entry(idx=tree.size, time=at, node=node.node_id, kind=kind, fields=fields)
        leaf = merkle.leaf_hash(entry)
        rows.append((tree.size, entry, leaf))
        nodes.extend(tree.append(leaf))
    tx.add_audit_entries(rows)
    if nodes:
        tx.put_audit_nodes(nodes)
    tx.set_meta(RANGE_KEY, tree.to_bytes())
    return first


def size(tx: Tx) -> int:
    """Number of entries in the log."""
    return _range(tx).size


def root(tx: Tx) -> bytes:
    """RFC 9162 root hash of the whole log."""
    return _range(tx).root()


def head(tx: Tx) -> tuple[int, bytes]:
    """``(size, root hash)`` of the whole log, read together (one consistent pair)."""
    tree = _range(tx)
    return tree.size, tree.root()


def root_at(tx: Tx, tree_size: int) -> bytes:
    """Root hash of the log's first ``tree_size`` entries."""
    return merkle.root(tx.audit_leaf, tree_size, interior=tx.audit_node)


def inclusion_proof(tx: Tx, idx: int, tree_size: int) -> list[bytes]:
    """RFC 9162 §2.1.3 inclusion proof of entry ``idx`` in the tree of ``tree_size``."""
    return merkle.inclusion_proof(tx.audit_leaf, idx, tree_size, interior=tx.audit_node)


def consistency_proof(tx: Tx, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 §2.1.4 consistency proof between two sizes of the log."""
    return merkle.consistency_proof(tx.audit_leaf, old_size, new_size, interior=tx.audit_node)
