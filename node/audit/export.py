"""Exporting a node's exchange log as a bundle: from its store or over gRPC.

Both read the same things: the node's identity card, every checkpoint with
its cosignatures up to the export size, the entries up to that size, and
the largest checkpoint of each peer's log the node cosigned.  The export
size is that of the newest checkpoint with a cosignature (the newest
checkpoint if none has one), so the bundle ends on a witnessed tree head;
entries appended since are in the next export.  Nothing is verified here:
``wlx.node.audit.offline.verify`` does that, offline.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from wlx.node.audit.checkpoints import all_checkpoints, cosigned, export_size
from wlx.node.audit.offline.bundle import Bundle, encode
from wlx.node.core.errors import NotFound, PeerError
from wlx.node.core.node import Node

PAGE = 1000
CALL_TIMEOUT = 60.0


def from_store(node: Node) -> Bundle:
    """The bundle of ``node``'s log, read in one consistent read transaction.

    Raises:
        NotFound: the node has made no checkpoint yet (``wlx audit checkpoint``).
    """
    with node.store.read() as tx:
        rows = all_checkpoints(tx)
        size = export_size(tx, rows)
        if size is None:
            raise NotFound(f"node {node.node_id} has made no checkpoint yet")
        notes = tuple(cosigned(tx, r) for r in rows if r.size <= size)
        entries: list[bytes] = []
        while len(entries) < size:
            chunk = tx.audit_entries(len(entries), min(size, len(entries) + PAGE))
            if not chunk:
                raise NotFound(f"the exchange log lacks entry {len(entries)}")
            entries.extend(entry for _, entry in chunk)
        witnessed = tuple(r.note for r in tx.list_witnessed())
    return Bundle(node.node_id, node.card.raw, tuple(entries), notes, witnessed)


def size_of(note: bytes) -> int:
    lines = note.split(b"\n", 2)
    if len(lines) < 3 or not lines[1].isdigit():
        raise PeerError("the node sent a checkpoint that is not one")
    return int(lines[1])


def signature_lines(note: bytes) -> int:
    # The signature lines follow the last blank line (signed-note).
    return note[note.rfind(b"\n\n") + 2 :].count(b"\n")


def write_bundle(bundle: Bundle, out: Path) -> int:
    """Write ``bundle`` to ``out`` atomically (a temporary file renamed); returns its size."""
    data = encode(bundle)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)
