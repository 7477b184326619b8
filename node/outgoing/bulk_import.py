"""Importing into the own list in bounded memory and short transactions.

An import goes in three steps (docs/operations.md, "Importing records"):

1. Staging.  Records arrive as an iterator (a file read line by line); every
   ``CHUNK`` of them is compared with the stored records, sealed at rest,
   indexed under the own epoch key (in its epoch's protocol), and written
   to the staging tables in a transaction of its own.  Nothing the node
   serves changes.  A bad record, an interruption or a crash here discards
   the staging: the list stays exactly as it was.
2. The switch.  One short transaction marks the import published: from
   then on it is committed, and completed even after a crash.
3. Publishing.  Chunk by chunk, each in a transaction of its own, staged
   records replace the stored ones, with their change-log, index and
   exchange-log entries, and the import's position (the last id published)
   moves past them in the same transaction; an interrupted publish resumes
   where it stopped (``resume``, run when the node is opened and by
   maintenance).  Then the staging is dropped whole.  Lookups and peers' pulls run
   between chunks, and may see part of a publishing import.

Memory is bounded by the chunk, never by the file; no transaction does work
proportional to the list.  One import runs at a time (the store-wide lock
``import``, across processes).
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice

from wlx.crypto.tokens import EpochKey
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core import failpoints
from wlx.node.core.errors import Unavailable
from wlx.node.core.node import Node
from wlx.node.core.records import Record, RecordError, forget_keys
from wlx.node.outgoing.ownlist import ImportResult, record_context
from wlx.node.protocol import outbound
from wlx.node.protocol.messages import ChangeOp, Upsert
from wlx.node.store.base import StagedRecord, StoredRecord

log = logging.getLogger("wlx.ownlist")

CHUNK = 2_000
"""Records per staging and per publishing transaction."""
STATE_META = "own_import"
"""Store meta key: JSON of the import in progress (empty: none)."""
LOCK = "import"
STAGING = 2
"""The staging format this version writes and publishes from (2: each
listing packed with its protocol, the own index's epoch's)."""


@dataclass(frozen=True)
class _State:
    import_id: bytes
    published: bool
    epoch: int
    result: ImportResult
    after: str = ""
    """The last record id published (records are published in id order)."""
    staging: int = STAGING
    """The staging's format: ``STAGING`` (listings packed with their
    protocol, ``Tx.publish_staged_listings``), or 1 (state written by an
    earlier version, whose packing this one does not read: each listing is
    made again from the staged body when published)."""

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "id": self.import_id.hex(),
                "published": self.published,
                "epoch": self.epoch,
                "after": self.after,
                "added": self.result.added,
                "updated": self.result.updated,
                "unchanged": self.result.unchanged,
                "staging": self.staging,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> _State | None:
        if not raw:
            return None
        obj = json.loads(raw)
        result = ImportResult(obj["added"], obj["updated"], obj["unchanged"])
        return cls(
            bytes.fromhex(obj["id"]),
            obj["published"],
            obj["epoch"],
            result,
            obj["after"],
            int(obj.get("staging", 1)),
        )


def import_stream(
    node: Node, numbered: Iterable[tuple[int, Record]], *, chunk: int = CHUNK, wait: float = 0.0
) -> ImportResult:
    """Add or replace records of the own list: all of them, or none.

    ``numbered`` yields ``(line, record)``; it is read once, ``chunk`` records
    at a time.  A record identical to the stored one is left alone; an id
    that appears twice is an error naming both lines.  Whatever ``numbered``
    raises (a bad line), and any interruption before the switch, discards
    what was staged; after the switch the import completes (here, or after
    a crash at the next ``resume``).  Waits up to ``wait`` seconds for
    another import of this node to end.

    Raises:
        RecordError: an id appears twice (nothing imported).
        Unavailable: another import of this node is running.
    """
    with node.store.exclusive(LOCK, timeout=wait), _collector_frozen():
        _finish(node)  # a published import a crash interrupted goes first
        _discard(node)  # rows staged by an import that never published
        import_id = node.rng(16)
        key = node.own_epoch_key()
        _put_state(node, _State(import_id, False, key.epoch, ImportResult(0, 0, 0)))
        try:
            result = _stage(node, import_id, key, iter(numbered), chunk)
            state = _State(import_id, True, key.epoch, result)
            _put_state(node, state)  # the switch: durable, and it makes the staging durable
        except BaseException:
            _discard(node)
            raise
        failpoints.hit("import.switched")
        _publish(node, state, chunk)
    log.info(
        "imported records: %d added, %d updated, %d unchanged",
        result.added,
        result.updated,
        result.unchanged,
    )
    return result


@contextmanager
def _collector_frozen() -> Iterator[None]:
    """Leave the objects alive before the import (the caller's, the modules')
    out of the garbage collector's full passes while it runs: the many
    objects each chunk makes would otherwise have it walk them all again and
    again.  Objects made meanwhile are collected as usual.  Nothing is done
    if the process froze some itself (it knows when to thaw them)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def resume(node: Node) -> ImportResult | None:
    """Complete an import a crash or an interruption left published but not
    applied; returns what it changed, or None if there was none (or the
    importing process is still at it)."""
    with node.store.read() as tx:
        state = _State.from_bytes(tx.get_meta(STATE_META))
    if state is None or not state.published:
        return None
    try:
        with node.store.exclusive(LOCK, timeout=0):
            return _finish(node)
    except Unavailable:
        return None


def published_pending(node: Node) -> bool:
    """Whether an import is published but not yet wholly applied."""
    with node.store.read() as tx:
        state = _State.from_bytes(tx.get_meta(STATE_META))
    return state is not None and state.published


def _finish(node: Node) -> ImportResult | None:
    with node.store.read() as tx:
        state = _State.from_bytes(tx.get_meta(STATE_META))
    if state is None or not state.published:
        return None
    log.warning("completing an interrupted import")
    _publish(node, state, CHUNK)
    return state.result


def _put_state(node: Node, state: _State | None) -> None:
    with node.store.write() as tx:
        tx.set_meta(STATE_META, state.to_bytes() if state else b"")


def _discard(node: Node) -> None:
    """Forget every staged record and the state; nothing if the import was
    published (it is to be completed instead)."""
    with node.store.write() as tx:
        state = _State.from_bytes(tx.get_meta(STATE_META))
        if state is None or not state.published:
            tx.drop_imports()
            tx.set_meta(STATE_META, b"")


# ------------------------------------------------------------------ staging


def _stage(
    node: Node, import_id: bytes, key: EpochKey, numbered: Iterator[tuple[int, Record]], chunk: int
) -> ImportResult:
    added = updated = unchanged = 0
    while batch := list(islice(numbered, chunk)):
        rows, ops = _stage_rows(node, import_id, key, batch)
        with node.store.write(durable=False) as tx:
            tx.stage_import(import_id, rows, ops)
        forget_keys()
        failpoints.hit("import.staged")
        for row in rows:
            if row.kind == "add":
                added += 1
            elif row.kind == "update":
                updated += 1
            else:
                unchanged += 1
    return ImportResult(added, updated, unchanged)


def _stage_rows(
    node: Node, import_id: bytes, key: EpochKey, batch: list[tuple[int, Record]]
) -> tuple[list[StagedRecord], list[Upsert]]:
    ids = [record.id for _, record in batch]
    with node.store.read() as tx:
        existing = tx.get_records(ids)
        earlier = tx.staged_import_lines(import_id, ids)
    seen: dict[str, int] = {}
    rows: list[StagedRecord] = []
    ops: list[Upsert] = []
    for line, record in batch:
        first = earlier.get(record.id) or seen.get(record.id)
        if first is not None:
            raise RecordError(line, f"record id {record.id!r} already on line {first}")
        seen[record.id] = line
        body = record.to_json()
        old = existing.get(record.id)
        base = old.version if old else 0
        if old is not None and node.open_at_rest(old.body, _context(old)) == body:
            rows.append(
                StagedRecord(
                    record.id, line, "same", base, base, b"", old.expires, old.suspended, b""
                )
            )
            continue
        suspended = old.suspended if old else False
        sealed = node.seal_at_rest(
            body, record_context(record.id, base + 1, suspended, record.expires)
        )
        op = outbound.upsert_for(record, base + 1, key, node.rng, suspended=suspended)
        kind = "update" if old else "add"
        rows.append(
            StagedRecord(
                record.id, line, kind, base, base + 1, sealed, record.expires, suspended, op.handle
            )
        )
        ops.append(op)
    return rows, ops


def _context(stored: StoredRecord) -> str:
    return record_context(stored.id, stored.version, stored.suspended, stored.expires)


# ------------------------------------------------------------------ publishing


def _publish(node: Node, state: _State, chunk: int) -> None:
    while (published := _publish_chunk(node, state, chunk)) is not None:
        state = published
        failpoints.hit("import.published")
    with node.store.write() as tx:
        tx.drop_imports(wipe=False)  # every staged row is now published
        tx.set_meta(STATE_META, b"")


def _publish_chunk(node: Node, state: _State, chunk: int) -> _State | None:
    """Apply the next ``chunk`` staged records; returns the state after them,
    or None when none is left."""
    key = node.own_epoch_key()
    now = node.now()
    with node.store.write() as tx:
        tx.lock_changes()
        own = tx.get_inbound(node.node_id)
        if own is None or own.epoch != key.epoch:
            return state  # the index moved to a new epoch meanwhile: take its key
        page = tx.staged_import_page(state.import_id, state.after, chunk)
        if not page:
            return None
        live = [row for row in page if row.kind != "same"]
        existing = tx.get_records([row.id for row in live])
        stored: list[StoredRecord] = []
        as_staged: list[str] = []  # published with the listing made at staging
        redone_ops: list[Upsert] = []
        for row in live:
            current = existing.get(row.id)
            if (
                state.staging == STAGING
                and key.epoch == state.epoch
                and (current.version if current else 0) == row.base_version
            ):
                stored.append(
                    StoredRecord(row.id, row.version, row.body, row.expires, now, row.suspended)
                )
                as_staged.append(row.id)
                continue
            redone = _redo(node, row, current, key, now)
            if redone is not None:
                stored.append(redone[0])
                redone_ops.append(redone[1])
        tx.put_records(stored)
        tx.append_changes([(r.id, ChangeOp.UPSERT, r.version, now) for r in stored])
        tx.publish_staged_listings(node.node_id, state.import_id, as_staged)
        tx.apply_ops(node.node_id, redone_ops)
        exchange_log.record_many(
            tx,
            node,
            at=now,
            events=[(Event.RECORD_UPSERT, {"record": r.id, "version": r.version}) for r in stored],
        )
        published = replace(state, after=page[-1].id)
        tx.set_meta(STATE_META, published.to_bytes())
    return published


def _redo(
    node: Node, row: StagedRecord, current: StoredRecord | None, key: EpochKey, now: int
) -> tuple[StoredRecord, Upsert] | None:
    """Seal and index a staged record afresh: the stored one changed since
    it was staged (suspended, removed, imported again), the index has a
    new epoch, or the staging is an earlier version's.  None if the record
    now stands as staged."""
    body = node.open_at_rest(
        row.body, record_context(row.id, row.version, row.suspended, row.expires)
    )
    if current is not None and node.open_at_rest(current.body, _context(current)) == body:
        return None
    version = current.version + 1 if current else 1
    suspended = current.suspended if current else False
    record = Record.from_json(body)
    stored = StoredRecord(
        row.id,
        version,
        node.seal_at_rest(body, record_context(row.id, version, suspended, row.expires)),
        row.expires,
        now,
        suspended,
    )
    return stored, outbound.upsert_for(record, version, key, node.rng, suspended=suspended)
