"""The node's own list: records in, records out, each change logged.

``remove_record`` and ``suspend_record`` change the own list, append to the
change log (which peers' streams are made from), update the node's index of
its own list, and write the exchange log, all in one transaction;
``import_records`` does the same for many records, staged and published in
short transactions (``bulk_import``).  ``enforce_retention`` removes records
past their expiry.
Records are encrypted at rest under the node's storage key.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from wlx.crypto.digests import genesis_digest
from wlx.crypto.normalize import NORMALISATION
from wlx.crypto.online import OnlineKey
from wlx.crypto.tokens import EpochKey
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core import normalisation
from wlx.node.core.errors import NotFound, UserError
from wlx.node.core.node import Node
from wlx.node.core.records import Record
from wlx.node.protocol import outbound
from wlx.node.protocol.messages import ChangeOp, Upsert
from wlx.node.store.base import InboundState, StoredRecord, Tx

log = logging.getLogger("wlx.ownlist")


@dataclass(frozen=True)
class ImportResult:
    """What an import changed."""

    added: int
    updated: int
    unchanged: int


def record_context(record_id: str, version: int, suspended: bool, expires: str) -> str:
    """The at-rest context (associated data) of an own record's body (§10).

    It binds the body to the columns stored in the clear beside it (version,
    suspension, expiry), so whoever can write the database but lacks the
    storage key cannot change them: the body would no longer open.
    """
    return f"record:{record_id}:{version}:{int(suspended)}:{expires}"


def _context_of(stored: StoredRecord) -> str:
    return record_context(stored.id, stored.version, stored.suspended, stored.expires)


RECORD_CONTEXT_META = "record_context"
RECORD_CONTEXT_VERSION = b"2"
"""Own records' bodies are sealed with ``record_context`` (version 2); a store
made before (version 1: context ``record:{id}``) is upgraded when opened."""


def upgrade_record_contexts(node: Node) -> int:
    """Re-seal own records stored under the version-1 context (``record:{id}``),
    binding each to its current version, suspension and expiry; returns how
    many.  Runs once per store (then a no-op); a store made by this version
    never needs it.

    Raises:
        InternalError: a record does not open under the version-1 context.
    """
    with node.store.write() as tx:
        if tx.get_meta(RECORD_CONTEXT_META) == RECORD_CONTEXT_VERSION:
            return 0
        tx.lock_changes()
        rows = list(tx.iter_records())
        upgraded = [
            replace(
                stored,
                body=node.seal_at_rest(
                    node.open_at_rest(stored.body, f"record:{stored.id}"), _context_of(stored)
                ),
            )
            for stored in rows
        ]
        if upgraded:
            tx.put_records(upgraded)
        tx.set_meta(RECORD_CONTEXT_META, RECORD_CONTEXT_VERSION)
    if upgraded:
        log.warning("re-sealed %d own records with their version, suspension and expiry", len(rows))
    return len(upgraded)


def upsert_of(
    node: Node,
    stored: StoredRecord,
    key: EpochKey,
    record: Record | None = None,
    *,
    online: OnlineKey | None = None,
) -> Upsert:
    return outbound.upsert_for(
        record or load_record(node, stored),
        stored.version,
        key,
        node.rng,
        suspended=stored.suspended,
        online=online,
    )


OWN_PROTOCOL = 2
"""The protocol a new epoch of the own index is sealed in (docs/protocol.md
§4.3: each listing's hit data sealed once, a wrap per token)."""


def rebuild_index(node: Node, tx: Tx, own: InboundState, version: str = NORMALISATION) -> None:
    """Index the own list afresh in a new epoch of normalisation ``version``.

    In the caller's write transaction: lookups see the old index or the new
    one, never a mix and never none.  The new epoch is in ``OWN_PROTOCOL``
    (an index built in protocol 1 moves to 2 here).
    """
    epoch = own.epoch + 1
    key = replace(
        EpochKey.generate(node.node_id, node.node_id, epoch, node.rng),
        normalisation=version,
        protocol=OWN_PROTOCOL,
    )
    records = list(tx.iter_records())
    tx.clear_origin(node.node_id)
    tx.apply_ops(node.node_id, [upsert_of(node, stored, key) for stored in records])
    wrapped = node.wrap_epoch_key(key)
    digest = genesis_digest(node.node_id, node.node_id, epoch)
    tx.put_inbound(replace(own, epoch=epoch, token_key=wrapped, seq=0, digest=digest))
    normalisation.record(tx, node.node_id, node.node_id, epoch, key.normalisation)
    normalisation.record_protocol(tx, node.node_id, node.node_id, epoch, key.protocol)
    log.info("own list re-indexed: %d records, normalisation %s", len(records), key.normalisation)


def load_record(node: Node, stored: StoredRecord) -> Record:
    """Decrypt and parse one of the node's own stored records.

    Raises:
        InternalError: the body does not open with its stored version,
            suspension and expiry (tampered columns, or the wrong key).
    """
    return Record.from_json(node.open_at_rest(stored.body, _context_of(stored)))


def import_records(node: Node, records: Sequence[Record]) -> ImportResult:
    """Add or replace records of the own list: all of them, or none.

    A record identical to the stored one is left alone (no new version, no
    delta).  Each change is logged and indexed.  Staged, then published in
    chunks (``bulk_import``); waits for another import of this node to end.
    """
    from wlx.node.outgoing import bulk_import  # it builds on this module

    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise UserError("the same record id appears twice in one import")
    return bulk_import.import_stream(node, enumerate(records, start=1), wait=IMPORT_WAIT)


IMPORT_WAIT = 60.0
"""Seconds ``import_records`` waits for another import to end."""


def remove_record(node: Node, record_id: str) -> None:
    """Remove a record from the own list; peers receive the removal.

    Raises:
        NotFound: no such record.
    """
    own_key = node.own_epoch_key()
    with node.store.write() as tx:
        tx.lock_changes()
        existing = tx.get_record(record_id)
        if existing is None:
            raise NotFound(f"no record with id {record_id!r}")
        tx.delete_record(record_id)
        tx.append_change(record_id, ChangeOp.REMOVE, existing.version + 1, node.now())
        tx.apply_ops(node.node_id, [outbound.remove_for(record_id, own_key)])
        exchange_log.record(
            tx,
            node,
            kind=Event.RECORD_REMOVE,
            record=record_id,
            version=existing.version + 1,
        )
    log.info("removed record %s", record_id)


def suspend_record(node: Node, record_id: str, *, suspended: bool) -> bool:
    """Suspend a listing (or lift the suspension); peers receive the change.

    A suspended listing still hits at every peer, marked suspended and with
    no requested action, until lifted or removed.  Returns False when the
    listing was already in that state (nothing changed).

    Raises:
        NotFound: no such record.
    """
    own_key = node.own_epoch_key()
    now = node.now()
    with node.store.write() as tx:
        tx.lock_changes()
        existing = tx.get_record(record_id)
        if existing is None:
            raise NotFound(f"no record with id {record_id!r}")
        if existing.suspended == suspended:
            return False
        version = existing.version + 1
        body = node.open_at_rest(existing.body, _context_of(existing))
        stored = StoredRecord(
            existing.id,
            version,
            node.seal_at_rest(
                body, record_context(existing.id, version, suspended, existing.expires)
            ),
            existing.expires,
            now,
            suspended,
        )
        tx.put_record(stored)
        tx.append_change(record_id, ChangeOp.UPSERT, stored.version, now)
        tx.apply_ops(node.node_id, [upsert_of(node, stored, own_key)])
        exchange_log.record(
            tx,
            node,
            now,
            kind=Event.RECORD_SUSPEND,
            record=record_id,
            version=stored.version,
            suspended=suspended,
        )
    log.info("%s record %s", "suspended" if suspended else "reinstated", record_id)
    return True


def enforce_retention(node: Node, grace_days: int) -> list[str]:
    """Remove own records that expired more than ``grace_days`` ago.

    Each removal is a normal one: logged, and sent to every peer.  Returns
    the removed ids.
    """
    cutoff = datetime.date.fromisoformat(node.today()) - datetime.timedelta(days=grace_days)
    with node.store.read() as tx:
        expired = tx.expired_records(cutoff.isoformat())
    removed = []
    for record_id in expired:
        try:
            remove_record(node, record_id)
        except NotFound:
            continue  # removed by someone else meanwhile
        removed.append(record_id)
    if removed:
        log.info("retention: removed %d expired records", len(removed))
    return removed
