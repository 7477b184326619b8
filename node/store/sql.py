"""``Store`` over SQL: one implementation for SQLite and PostgreSQL.

The SQL is written once, with ``?`` placeholders; a ``Connector`` supplies
connections and transactions for its database and rewrites placeholders
where its driver wants another style.  Everything the two engines disagree
on (types, locking) is in the connectors and ``schema``.
"""

from __future__ import annotations

import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from wlx.crypto.tokens import TOKEN_LEN, WRAP_LEN
from wlx.node.core.errors import InternalError, Rejected, Unavailable
from wlx.node.core.limits import Bucket
from wlx.node.core.roles import Role
from wlx.node.protocol.detail_rules import Direction
from wlx.node.protocol.messages import ChangeOp, Op, Remove, Upsert
from wlx.node.store import schema
from wlx.node.store.base import (
    AcceptanceRow,
    AcceptanceSide,
    Change,
    CheckpointRow,
    CosignatureRow,
    CredentialRow,
    DetailRow,
    HitRow,
    InboundState,
    Leadership,
    OutboundState,
    OutboxRow,
    PeerRow,
    ReceiptRow,
    RejectionRow,
    StagedRecord,
    Store,
    StoredRecord,
    TokenRow,
    Tx,
    WitnessedRow,
)

Row = tuple[Any, ...]
LOOKUP_CHUNK = 500
FIND_PARAMS = 30_000
"""Tokens one ``find_tokens_of`` statement tests at most (SQLite takes 32,766
parameters since 3.32, PostgreSQL 65,535): a lookup's keys at every origin
fit in one; a manifest of a few hundred people in a few."""
FIND_BRANCHES = 400
"""Origins one statement tests at most (SQLite's compound-select limit is 500)."""
CLOSE_WAIT = 10.0


class Gate:
    """Counts transactions in progress; once closed, lets no new one start."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._closed = False

    @contextmanager
    def open(self) -> Iterator[None]:
        """Hold the gate open for one transaction.

        Raises:
            Unavailable: the store is closing (the node is shutting down).
        """
        with self._cond:
            if self._closed:
                raise Unavailable("the node is shutting down")
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def close(self, timeout: float) -> None:
        """Close the gate and wait up to ``timeout`` seconds for running transactions."""
        with self._cond:
            self._closed = True
            self._cond.wait_for(lambda: self._active == 0, timeout=timeout)


class Cursor(ABC):
    """The slice of a DB-API cursor/connection that ``SqlTx`` uses."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns an object with fetchone/fetchall/iteration."""

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row."""


class Connector(ABC):
    """Connections and transactions of one database engine."""

    dialect: dict[str, str]
    shared: bool
    """See ``Store.shared``."""
    for_update: str
    """Suffix that locks selected rows until commit ('' where the engine
    serialises writers anyway)."""

    @abstractmethod
    def transaction(self, write: bool, durable: bool = True) -> AbstractContextManager[Cursor]:
        """A transaction; commits at the end of the block, rolls back on error.

        ``durable=False``: the commit need not wait for the disk."""

    @abstractmethod
    def lock_table(self, cur: Cursor, table: str) -> None:
        """Serialise writers of ``table`` until commit (no-op where the engine
        has one writer at a time)."""

    @abstractmethod
    def exclusive(self, name: str, timeout: float) -> AbstractContextManager[None]:
        """A lock named ``name`` shared by every process of this database
        (see ``Store.exclusive``)."""

    @abstractmethod
    def leadership(self, name: str) -> Leadership:
        """See ``Store.leadership``."""

    @abstractmethod
    def reclaim(self) -> None:
        """See ``Store.reclaim``."""

    @abstractmethod
    def close(self) -> None:
        """Release every connection."""


def _tokens_blob(op: Upsert) -> bytes:
    return b"".join(t.token for t in op.tokens)


def _token_row(origin: str, r: Row) -> TokenRow:
    """A ``find_tokens`` row: (token, handle, tokens.sealed, expires,
    entries.sealed); a protocol-2 listing's token row holds its wrap."""
    listing = bytes(r[4])
    if listing:
        return TokenRow(origin, bytes(r[0]), bytes(r[1]), listing, r[3], wrap=bytes(r[2]))
    return TokenRow(origin, bytes(r[0]), bytes(r[1]), bytes(r[2]), r[3])


def _in_chunks(values: Sequence[Any]) -> Iterator[tuple[Sequence[Any], str]]:
    """``values`` in slices of at most ``LOOKUP_CHUNK``, each with the
    ``?, ?, ...`` placeholders of an ``IN`` list of its length."""
    for start in range(0, len(values), LOOKUP_CHUNK):
        chunk = values[start : start + LOOKUP_CHUNK]
        yield chunk, ", ".join("?" * len(chunk))


def _split_tokens(blob: bytes) -> list[bytes]:
    return [blob[i : i + TOKEN_LEN] for i in range(0, len(blob), TOKEN_LEN)]


def _pack_tokens(op: Upsert) -> bytes:
    """A staged listing (schema.py, import_records.tokens): its protocol in
    one byte, then in protocol 2 the sealed hit data's length (two bytes,
    big-endian), the sealed hit data, and each token with its wrap
    (``WRAP_LEN`` bytes); in protocol 1 each token, its sealed hit data's
    length (two bytes), its sealed hit data.

    Raises:
        InternalError: a protocol-2 wrap is not ``WRAP_LEN`` bytes.
    """
    if op.sealed:
        if any(len(t.wrap) != WRAP_LEN for t in op.tokens):
            raise InternalError("a protocol-2 wrap of the wrong length")
        parts = [b"\x02", _LENGTH.pack(len(op.sealed)), op.sealed]
        for t in op.tokens:
            parts += (t.token, t.wrap)
        return b"".join(parts)
    parts = [b"\x01"]
    for t in op.tokens:
        parts += (t.token, _LENGTH.pack(len(t.sealed)), t.sealed)
    return b"".join(parts)


def _unpack_tokens(packed: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Undo ``_pack_tokens``: the listing's sealed hit data (empty in
    protocol 1) and each token with its row's ``sealed`` (the wrap in
    protocol 2, the token's sealed hit data in protocol 1).

    Raises:
        InternalError: not a staged listing of this version.
    """
    rows: list[tuple[bytes, bytes]] = []
    end = len(packed)
    if packed[:1] == b"\x02":
        pos = 3 + int.from_bytes(packed[1:3], "big")
        listing = packed[3:pos]
        step = TOKEN_LEN + WRAP_LEN
        if not listing or (end - pos) % step:
            raise InternalError("a staged listing does not parse")
        rows = [
            (packed[i : i + TOKEN_LEN], packed[i + TOKEN_LEN : i + step])
            for i in range(pos, end, step)
        ]
        return listing, rows
    if packed[:1] != b"\x01":
        raise InternalError("a staged listing does not parse")
    pos = 1
    while pos < end:
        token = packed[pos : pos + TOKEN_LEN]
        start = pos + TOKEN_LEN + 2
        pos = start + int.from_bytes(packed[start - 2 : start], "big")
        if pos > end:
            raise InternalError("a staged listing does not parse")
        rows.append((token, packed[start:pos]))
    return b"", rows


_LENGTH = struct.Struct(">H")


class SqlTx(Tx):
    """``Tx`` over one open SQL transaction."""

    def __init__(self, cur: Cursor, connector: Connector) -> None:
        self._cur = cur
        self._connector = connector

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = self._cur.execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in self._cur.execute(sql, params).fetchall()]

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cur.execute(sql, params)

    # ---------------------------------------------------------- meta
    def get_meta(self, key: str) -> bytes | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return bytes(row[0]) if row else None

    def get_metas(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        unique = sorted(set(keys))
        for chunk, marks in _in_chunks(unique):
            rows = self._all(f"SELECT key, value FROM meta WHERE key IN ({marks})", chunk)
            found.update((str(key), bytes(value)) for key, value in rows)
        return found

    def set_meta(self, key: str, value: bytes) -> None:
        self._run(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ---------------------------------------------------------- own records
    def lock_changes(self) -> None:
        self._connector.lock_table(self._cur, "changes")

    _RECORD = "SELECT id, version, body, expires, updated_at, suspended FROM records"

    @staticmethod
    def _record(row: Row) -> StoredRecord:
        return StoredRecord(row[0], row[1], bytes(row[2]), row[3], row[4], bool(row[5]))

    def get_record(self, record_id: str) -> StoredRecord | None:
        row = self._one(f"{self._RECORD} WHERE id = ?", (record_id,))
        return self._record(row) if row else None

    def get_records(self, record_ids: Sequence[str]) -> dict[str, StoredRecord]:
        found: dict[str, StoredRecord] = {}
        unique = sorted(set(record_ids))
        for chunk, marks in _in_chunks(unique):
            for row in self._all(f"{self._RECORD} WHERE id IN ({marks})", chunk):
                found[row[0]] = self._record(row)
        return found

    def put_records(self, records: Sequence[StoredRecord]) -> None:
        self._cur.executemany(
            "INSERT INTO records (id, version, body, expires, updated_at, suspended) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version, body = excluded.body, "
            "expires = excluded.expires, updated_at = excluded.updated_at, "
            "suspended = excluded.suspended",
            [(r.id, r.version, r.body, r.expires, r.updated_at, int(r.suspended)) for r in records],
        )

    def put_record(self, record: StoredRecord) -> None:
        self._run(
            "INSERT INTO records (id, version, body, expires, updated_at, suspended) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version, body = excluded.body, "
            "expires = excluded.expires, updated_at = excluded.updated_at, "
            "suspended = excluded.suspended",
            (
                record.id,
                record.version,
                record.body,
                record.expires,
                record.updated_at,
                int(record.suspended),
            ),
        )

    def delete_record(self, record_id: str) -> None:
        self._run("DELETE FROM records WHERE id = ?", (record_id,))

    def iter_records(self) -> Iterator[StoredRecord]:
        after = ""
        while True:
            rows = self._all(f"{self._RECORD} WHERE id > ? ORDER BY id LIMIT 1000", (after,))
            for row in rows:
                yield self._record(row)
            if len(rows) < 1000:
                return
            after = rows[-1][0]

    def records_page(self, after_id: str, limit: int) -> list[StoredRecord]:
        return [
            self._record(row)
            for row in self._all(
                f"{self._RECORD} WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            )
        ]

    def count_records(self) -> int:
        row = self._one("SELECT COUNT(*) FROM records")
        return int(row[0]) if row else 0

    def expired_records(self, before: str) -> list[str]:
        return [
            r[0]
            for r in self._all("SELECT id FROM records WHERE expires < ? ORDER BY id", (before,))
        ]

    def append_change(self, record_id: str, op: ChangeOp, version: int, at: int) -> int:
        row = self._one(
            "INSERT INTO changes (record_id, op, version, at) VALUES (?, ?, ?, ?) RETURNING seq",
            (record_id, op, version, at),
        )
        if row is None:
            raise InternalError("change log insert returned no sequence number")
        return int(row[0])

    def append_changes(self, changes: Sequence[tuple[str, ChangeOp, int, int]]) -> None:
        self._cur.executemany(
            "INSERT INTO changes (record_id, op, version, at) VALUES (?, ?, ?, ?)", list(changes)
        )

    def change_head(self) -> int:
        row = self._one("SELECT MAX(seq) FROM changes")
        return int(row[0]) if row and row[0] is not None else 0

    def changes_after(self, pos: int, limit: int) -> list[Change]:
        return [
            Change(seq, record_id, ChangeOp(op), version, at)
            for seq, record_id, op, version, at in self._all(
                "SELECT seq, record_id, op, version, at FROM changes "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (pos, limit),
            )
        ]

    def delete_changes_upto(self, pos: int, limit: int | None = None) -> int:
        if limit is not None:
            # The limit oldest entries: the seq of the last bounds the delete.
            last = self._one(
                "SELECT MAX(seq), COUNT(*) FROM "
                "(SELECT seq FROM changes WHERE seq <= ? ORDER BY seq LIMIT ?) oldest",
                (pos, limit),
            )
            if not last or last[0] is None:
                return 0
            self._run("DELETE FROM changes WHERE seq <= ?", (int(last[0]),))
            return int(last[1])
        row = self._one("SELECT COUNT(*) FROM changes WHERE seq <= ?", (pos,))
        self._run("DELETE FROM changes WHERE seq <= ?", (pos,))
        return int(row[0]) if row else 0

    # ---------------------------------------------------------- peers
    _PEER = "SELECT node_id, card, address, added_at, revoked_at, policy FROM peers"

    def put_peer(self, peer: PeerRow) -> None:
        self._run(
            "INSERT INTO peers (node_id, card, address, added_at, revoked_at, policy) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (node_id) DO UPDATE SET card = excluded.card, "
            "address = excluded.address, added_at = excluded.added_at, "
            "revoked_at = excluded.revoked_at, policy = excluded.policy",
            (peer.node_id, peer.card, peer.address, peer.added_at, peer.revoked_at, peer.policy),
        )

    @staticmethod
    def _peer(row: Row) -> PeerRow:
        return PeerRow(row[0], bytes(row[1]), row[2], row[3], row[4], row[5])

    def get_peer(self, node_id: str) -> PeerRow | None:
        row = self._one(f"{self._PEER} WHERE node_id = ?", (node_id,))
        return self._peer(row) if row else None

    def list_peers(self) -> list[PeerRow]:
        return [self._peer(r) for r in self._all(f"{self._PEER} ORDER BY node_id")]

    def purge_peer_data(self, peer: str) -> None:
        self.clear_origin(peer)
        self.drop_staged_snapshot(peer)
        for table, column in (
            ("inbound", "origin"),
            ("applied", "origin"),
            ("pending_receipts", "origin"),
            ("outbox", "peer"),
            ("sent_removals", "peer"),
            ("announcements", "peer"),
            ("stream_anchors", "peer"),
        ):
            self._run(f"DELETE FROM {table} WHERE {column} = ?", (peer,))

    _CREDENTIAL = "SELECT serial, name, role, issued_at, expires_at, revoked_at FROM credentials"

    def put_credential(self, row: CredentialRow) -> None:
        self._run(
            "INSERT INTO credentials (serial, name, role, issued_at, expires_at, revoked_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET "
            "revoked_at = excluded.revoked_at, expires_at = excluded.expires_at",
            (row.serial, row.name, row.role, row.issued_at, row.expires_at, row.revoked_at),
        )

    def get_credential(self, serial: str) -> CredentialRow | None:
        row = self._one(f"{self._CREDENTIAL} WHERE serial = ?", (serial,))
        return _credential(row) if row else None

    def list_credentials(self) -> list[CredentialRow]:
        return [_credential(r) for r in self._all(f"{self._CREDENTIAL} ORDER BY issued_at DESC")]

    def put_announcement(self, peer: str, card: bytes, made_at: int) -> None:
        self._run(
            "INSERT INTO announcements (peer, card, made_at) VALUES (?, ?, ?) "
            "ON CONFLICT (peer) DO UPDATE SET card = excluded.card, made_at = excluded.made_at",
            (peer, card, made_at),
        )

    def list_announcements(self) -> list[tuple[str, bytes]]:
        return [(r[0], bytes(r[1])) for r in self._all("SELECT peer, card FROM announcements")]

    def delete_announcement(self, peer: str) -> None:
        self._run("DELETE FROM announcements WHERE peer = ?", (peer,))

    # ---------------------------------------------------------- origin side
    _OUTBOUND = (
        "SELECT peer, epoch, token_key, change_pos, last_seq, last_digest, epoch_started_at, "
        "acked_seq, acked_at FROM outbound"
    )

    @staticmethod
    def _outbound(row: Row) -> OutboundState:
        return OutboundState(
            row[0], row[1], bytes(row[2]), row[3], row[4], bytes(row[5]), row[6], row[7], row[8]
        )

    def get_outbound(self, peer: str, *, for_update: bool = False) -> OutboundState | None:
        lock = self._connector.for_update if for_update else ""
        row = self._one(f"{self._OUTBOUND} WHERE peer = ?{lock}", (peer,))
        return self._outbound(row) if row else None

    def list_outbound(self) -> list[OutboundState]:
        return [self._outbound(r) for r in self._all(f"{self._OUTBOUND} ORDER BY peer")]

    def put_outbound(self, state: OutboundState) -> None:
        self._run(
            "INSERT INTO outbound (peer, epoch, token_key, change_pos, last_seq, last_digest, "
            "epoch_started_at, acked_seq, acked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (peer) DO UPDATE SET epoch = excluded.epoch, "
            "token_key = excluded.token_key, change_pos = excluded.change_pos, "
            "last_seq = excluded.last_seq, last_digest = excluded.last_digest, "
            "epoch_started_at = excluded.epoch_started_at, acked_seq = excluded.acked_seq, "
            "acked_at = excluded.acked_at",
            (
                state.peer,
                state.epoch,
                state.token_key,
                state.change_pos,
                state.last_seq,
                state.last_digest,
                state.epoch_started_at,
                state.acked_seq,
                state.acked_at,
            ),
        )

    def add_outbox(self, peer: str, epoch: int, batch: OutboxRow, created_at: int) -> None:
        self._run(
            "INSERT INTO outbox (peer, epoch, last_seq, first_seq, digest, signed, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (peer, epoch, batch.last_seq, batch.first_seq, batch.digest, batch.signed, created_at),
        )

    def outbox_after(self, peer: str, epoch: int, after_seq: int, limit: int) -> list[OutboxRow]:
        return [
            OutboxRow(r[0], r[1], bytes(r[2]), bytes(r[3]))
            for r in self._all(
                "SELECT first_seq, last_seq, digest, signed FROM outbox "
                "WHERE peer = ? AND epoch = ? AND last_seq > ? ORDER BY last_seq LIMIT ?",
                (peer, epoch, after_seq, limit),
            )
        ]

    def outbox_digest_at(self, peer: str, epoch: int, last_seq: int) -> bytes | None:
        row = self._one(
            "SELECT digest FROM outbox WHERE peer = ? AND epoch = ? AND last_seq = ?",
            (peer, epoch, last_seq),
        )
        return bytes(row[0]) if row else None

    def add_anchor(self, peer: str, epoch: int, seq: int, digest: bytes) -> None:
        self._run(
            "INSERT INTO stream_anchors (peer, epoch, seq, digest) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (peer, epoch, seq) DO UPDATE SET digest = excluded.digest",
            (peer, epoch, seq, digest),
        )

    def stream_digest_at(self, peer: str, epoch: int, seq: int) -> bytes | None:
        kept = self.outbox_digest_at(peer, epoch, seq)
        if kept is not None:
            return kept
        row = self._one(
            "SELECT digest FROM stream_anchors WHERE peer = ? AND epoch = ? AND seq = ?",
            (peer, epoch, seq),
        )
        return bytes(row[0]) if row else None

    def outbox_starts_at(self, peer: str, epoch: int, first_seq: int) -> bool:
        row = self._one(
            "SELECT 1 FROM outbox WHERE peer = ? AND epoch = ? AND first_seq = ?",
            (peer, epoch, first_seq),
        )
        return row is not None

    def outbox_oldest(self, peer: str, epoch: int) -> int | None:
        row = self._one(
            "SELECT MIN(first_seq) FROM outbox WHERE peer = ? AND epoch = ?", (peer, epoch)
        )
        return int(row[0]) if row and row[0] is not None else None

    def delete_outbox(
        self, peer: str, *, epoch: int, keep_seq: int | None, before_time: int = 0
    ) -> int:
        where = "WHERE peer = ? AND epoch <= ?"
        params: tuple[str | int, ...] = (peer, epoch)
        if keep_seq is not None:
            where = (
                "WHERE peer = ? AND (epoch < ? OR (epoch = ? AND last_seq <> ? "
                "AND (last_seq < ? OR created_at < ?)))"
            )
            params = (peer, epoch, epoch, keep_seq, keep_seq, before_time)
        row = self._one(f"SELECT COUNT(*) FROM outbox {where}", params)
        self._run(f"DELETE FROM outbox {where}", params)
        self._run("DELETE FROM stream_anchors WHERE peer = ? AND epoch < ?", (peer, epoch))
        return int(row[0]) if row else 0

    def add_receipt(self, receipt: ReceiptRow) -> bool:
        known = self._one(
            "SELECT 1 FROM receipts WHERE peer = ? AND epoch = ? AND kind = ? AND last_seq = ?",
            (receipt.peer, receipt.epoch, receipt.kind, receipt.last_seq),
        )
        if known:
            return False
        self._run(
            "INSERT INTO receipts (peer, epoch, kind, last_seq, first_seq, digest, applied_at, "
            "received_at, signed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                receipt.peer,
                receipt.epoch,
                receipt.kind,
                receipt.last_seq,
                receipt.first_seq,
                receipt.digest,
                receipt.applied_at,
                receipt.received_at,
                receipt.signed,
            ),
        )
        return True

    def add_sent_removal(self, peer: str, epoch: int, seq: int, record_id: str) -> None:
        self._run(
            "INSERT INTO sent_removals (peer, epoch, seq, record_id) VALUES (?, ?, ?, ?)",
            (peer, epoch, seq, record_id),
        )

    def unconfirmed_removals(self, peer: str) -> list[tuple[int, int, str]]:
        return [
            (r[0], r[1], r[2])
            for r in self._all(
                "SELECT epoch, seq, record_id FROM sent_removals WHERE peer = ? "
                "ORDER BY epoch, seq",
                (peer,),
            )
        ]

    def confirm_removals(self, peer: str, epoch: int, upto_seq: int) -> None:
        self._run(
            "DELETE FROM sent_removals WHERE peer = ? AND (epoch < ? OR (epoch = ? AND seq <= ?))",
            (peer, epoch, epoch, upto_seq),
        )

    # ---------------------------------------------------------- recipient side
    _INBOUND = (
        "SELECT origin, epoch, token_key, seq, digest, synced_at, last_error, last_error_at, "
        "origin_head FROM inbound"
    )

    @staticmethod
    def _inbound(row: Row) -> InboundState:
        return InboundState(
            row[0], row[1], bytes(row[2]), row[3], bytes(row[4]), row[5], row[6], row[7], row[8]
        )

    def get_inbound(self, origin: str, *, for_update: bool = False) -> InboundState | None:
        lock = self._connector.for_update if for_update else ""
        row = self._one(f"{self._INBOUND} WHERE origin = ?{lock}", (origin,))
        return self._inbound(row) if row else None

    def list_inbound(self) -> list[InboundState]:
        return [self._inbound(r) for r in self._all(f"{self._INBOUND} ORDER BY origin")]

    def put_inbound(self, state: InboundState) -> None:
        self._run(
            "INSERT INTO inbound (origin, epoch, token_key, seq, digest, synced_at, last_error, "
            "last_error_at, origin_head) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (origin) DO UPDATE SET epoch = excluded.epoch, "
            "token_key = excluded.token_key, seq = excluded.seq, digest = excluded.digest, "
            "synced_at = excluded.synced_at, last_error = excluded.last_error, "
            "last_error_at = excluded.last_error_at, origin_head = excluded.origin_head",
            (
                state.origin,
                state.epoch,
                state.token_key,
                state.seq,
                state.digest,
                state.synced_at,
                state.last_error,
                state.last_error_at,
                state.origin_head,
            ),
        )

    def set_sync_status(self, origin: str, *, at: int, error: str | None) -> None:
        if error is None:
            self._run("UPDATE inbound SET synced_at = ? WHERE origin = ?", (at, origin))
        else:
            self._run(
                "UPDATE inbound SET last_error = ?, last_error_at = ? WHERE origin = ?",
                (error, at, origin),
            )

    def set_origin_head(self, origin: str, head: int) -> None:
        self._run("UPDATE inbound SET origin_head = ? WHERE origin = ?", (head, origin))

    def queue_receipt(self, origin: str, signed: bytes) -> None:
        self._run("INSERT INTO pending_receipts (origin, signed) VALUES (?, ?)", (origin, signed))

    def pending_receipts(self, origin: str, limit: int) -> list[tuple[int, bytes]]:
        return [
            (r[0], bytes(r[1]))
            for r in self._all(
                "SELECT id, signed FROM pending_receipts WHERE origin = ? ORDER BY id LIMIT ?",
                (origin, limit),
            )
        ]

    def delete_pending_receipts(self, ids: Sequence[int]) -> None:
        self._cur.executemany("DELETE FROM pending_receipts WHERE id = ?", [(i,) for i in ids])

    def expired_entries(self, before: str, limit: int) -> list[tuple[str, bytes]]:
        # Rows of live slots only (an origin without a live slot row keeps
        # its listings under its own id; staged and old slots are not held).
        return [
            (r[0], bytes(r[1]))
            for r in self._all(
                "SELECT COALESCE(s.origin, e.origin), e.handle FROM entries e "
                "LEFT JOIN slots s ON s.slot = e.origin "
                "WHERE e.expires < ? AND (s.state IS NULL OR s.state = 'live') LIMIT ?",
                (before, limit),
            )
        ]

    def remove_entries(self, origin: str, handles: Sequence[bytes]) -> None:
        self.apply_ops(origin, [Remove(h) for h in handles])

    def applied_digest(self, origin: str, epoch: int, last_seq: int) -> bytes | None:
        row = self._one(
            "SELECT digest FROM applied WHERE origin = ? AND epoch = ? AND last_seq = ?",
            (origin, epoch, last_seq),
        )
        return bytes(row[0]) if row else None

    def add_applied(self, origin: str, epoch: int, last_seq: int, digest: bytes) -> None:
        self._run(
            "INSERT INTO applied (origin, epoch, last_seq, digest) VALUES (?, ?, ?, ?)",
            (origin, epoch, last_seq, digest),
        )

    def clear_applied(self, origin: str) -> None:
        self._run("DELETE FROM applied WHERE origin = ?", (origin,))

    # ---------------------------------------------------------- held listings
    # The origin column of entries and tokens names a slot (schema.py): an
    # origin's listings are those of its live slot.
    def _live_slot(self, origin: str) -> str:
        row = self._one("SELECT slot FROM slots WHERE origin = ? AND state = 'live'", (origin,))
        return str(row[0]) if row else origin

    def _staged_slot(self, origin: str, snapshot_id: bytes) -> str | None:
        row = self._one(
            "SELECT slot FROM slots WHERE origin = ? AND snapshot_id = ? AND state = 'staged'",
            (origin, snapshot_id),
        )
        return str(row[0]) if row else None

    def _new_slot(self, origin: str) -> str:
        """An unused slot name of ``origin``: ``origin#n`` (never a node id, and
        short: it is stored in every row of the slot)."""
        used = {str(r[0]) for r in self._all("SELECT slot FROM slots WHERE origin = ?", (origin,))}
        n = 1
        while f"{origin}#{n}" in used:
            n += 1
        return f"{origin}#{n}"

    def apply_ops(self, origin: str, ops: Sequence[Op]) -> None:
        # Each operation replaces a listing whole, so applying them in order
        # is applying the last one of each handle: delete every listing the
        # operations touch, then insert the upserts that end up standing.
        slot = self._live_slot(origin)
        final: dict[bytes, Op] = {}
        for op in ops:
            final[op.handle] = op
        handles = sorted(final)
        self._drop_listings(slot, handles)
        upserts = [op for op in (final[h] for h in handles) if isinstance(op, Upsert)]
        self._insert_listings(slot, upserts)

    def _drop_listings(self, slot: str, handles: Sequence[bytes]) -> None:
        """Delete the listings ``handles`` (sorted) of ``slot`` have, if any."""
        for chunk, marks in _in_chunks(handles):
            held = self._all(
                f"SELECT handle, tokens FROM entries WHERE origin = ? AND handle IN ({marks})",
                (slot, *chunk),
            )
            self._cur.executemany(
                "DELETE FROM tokens WHERE origin = ? AND token = ? AND handle = ?",
                [
                    (slot, token, bytes(h))
                    for h, blob in held
                    for token in _split_tokens(bytes(blob))
                ],
            )
            self._cur.executemany(
                "DELETE FROM entries WHERE origin = ? AND handle = ?",
                [(slot, bytes(h)) for h, _ in held],
            )

    def _insert_listings(self, slot: str, upserts: Sequence[Upsert]) -> None:
        """Insert listings under ``slot`` (see ``_insert_rows``).  A
        protocol-2 listing keeps its sealed hit data once, in entries, and
        each token row its wrap (schema.py)."""
        self._insert_rows(
            [(slot, op.handle, op.expires, _tokens_blob(op), op.sealed) for op in upserts],
            [
                (slot, t.token, op.handle, t.wrap if op.sealed else t.sealed)
                for op in upserts
                for t in op.tokens
            ],
        )

    def _insert_rows(self, entries: list[Row], tokens: list[Row]) -> None:
        """Insert rows of entries (origin, handle, expires, tokens, sealed)
        and tokens (origin, token, handle, sealed), in key order (fewer pages
        touched); a handle, or a (token, handle), already there keeps its
        first copy."""
        entries.sort()
        tokens.sort()
        self._cur.executemany(
            "INSERT INTO entries (origin, handle, expires, tokens, sealed) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            entries,
        )
        self._cur.executemany(
            "INSERT INTO tokens (origin, token, handle, sealed) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            tokens,
        )

    def clear_origin(self, origin: str) -> None:
        slots = {origin} | {
            str(r[0])
            for r in self._all(
                "SELECT slot FROM slots WHERE origin = ? AND state <> 'staged'", (origin,)
            )
        }
        for slot in sorted(slots):
            self._run("DELETE FROM tokens WHERE origin = ?", (slot,))
            self._run("DELETE FROM entries WHERE origin = ?", (slot,))
        self._run("DELETE FROM slots WHERE origin = ? AND state <> 'staged'", (origin,))

    def count_entries(self, origin: str) -> int:
        row = self._one("SELECT COUNT(*) FROM entries WHERE origin = ?", (self._live_slot(origin),))
        return int(row[0]) if row else 0

    _FIND_BRANCH = (
        "SELECT CAST(? AS TEXT), t.token, t.handle, t.sealed, e.expires, e.sealed FROM tokens t "
        "JOIN entries e ON e.origin = t.origin AND e.handle = t.handle "
        "WHERE t.origin = COALESCE("
        "(SELECT s.slot FROM slots s WHERE s.origin = ? AND s.state = 'live'), ?) "
        "AND t.token IN ({marks})"
    )

    def find_tokens_of(self, wanted: Mapping[str, Sequence[bytes]]) -> list[TokenRow]:
        found: list[TokenRow] = []
        for statement in _find_statements(wanted):
            branches: list[str] = []
            params: list[Any] = []
            for origin, tokens in statement:
                branches.append(self._FIND_BRANCH.format(marks=", ".join("?" * len(tokens))))
                params.extend((origin, origin, origin, *tokens))
            found.extend(
                _token_row(str(r[0]), r[1:])
                for r in self._all(" UNION ALL ".join(branches), params)
            )
        return found

    def drain_old_slots(self, limit: int) -> bool:
        row = self._one("SELECT slot FROM slots WHERE state = 'old' ORDER BY slot LIMIT 1")
        if row is None:
            return False
        slot = str(row[0])
        for table, column in (("tokens", "token"), ("entries", "handle")):
            bound = self._one(
                f"SELECT {column} FROM {table} WHERE origin = ? ORDER BY {column} LIMIT 1 OFFSET ?",
                (slot, limit),
            )
            if bound is not None:  # more than ``limit`` rows: delete the first ones
                self._run(
                    f"DELETE FROM {table} WHERE origin = ? AND {column} < ?", (slot, bound[0])
                )
                return True
            self._run(f"DELETE FROM {table} WHERE origin = ?", (slot,))
        self._run("DELETE FROM slots WHERE slot = ?", (slot,))
        return True

    # ---------------------------------------------------------- snapshot staging
    # A snapshot is staged into a slot of its own, swapped in by making that
    # slot live (no copy); the slot it replaces, and dropped stagings, become
    # old slots, deleted later in chunks (``drain_old_slots``).
    def stage_entries(self, snapshot_id: bytes, origin: str, entries: Sequence[Upsert]) -> None:
        slot = self._staged_slot(origin, snapshot_id)
        if slot is None:
            slot = self._new_slot(origin)
            self._run(
                "INSERT INTO slots (slot, origin, snapshot_id, state) VALUES (?, ?, ?, 'staged')",
                (slot, origin, snapshot_id),
            )
        self._insert_listings(slot, entries)

    def apply_staged(self, snapshot_id: bytes, origin: str) -> int:
        slot = self._staged_slot(origin, snapshot_id)
        if slot is None:  # nothing was staged: an empty snapshot
            slot = self._new_slot(origin)
            self._run(
                "INSERT INTO slots (slot, origin, snapshot_id, state) VALUES (?, ?, ?, 'old')",
                (slot, origin, snapshot_id),
            )
        live = self._live_slot(origin)
        if live == origin:  # listings kept under the origin's own id: retire them too
            self._run(
                "INSERT INTO slots (slot, origin, snapshot_id, state) VALUES (?, ?, ?, 'old') "
                "ON CONFLICT (slot) DO NOTHING",
                (origin, origin, b""),
            )
        else:
            self._run("UPDATE slots SET state = 'old' WHERE slot = ?", (live,))
        self._run("UPDATE slots SET state = 'live' WHERE slot = ?", (slot,))
        return self.count_entries(origin)

    def staged_counts(self, snapshot_id: bytes, origin: str) -> tuple[int, int | None]:
        slot = self._staged_slot(origin, snapshot_id)
        if slot is None:
            return 0, 0
        entries = self._one(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(tokens)), 0) FROM entries WHERE origin = ?",
            (slot,),
        )
        tokens = self._one("SELECT COUNT(*) FROM tokens WHERE origin = ?", (slot,))
        assert entries is not None and tokens is not None
        consistent = int(entries[1]) == TOKEN_LEN * int(tokens[0])
        return int(entries[0]), int(tokens[0]) if consistent else None

    def drop_staging(self, snapshot_id: bytes | None = None) -> None:
        if snapshot_id is None:
            self._run("UPDATE slots SET state = 'old' WHERE state = 'staged'")
            self._run("DELETE FROM staged_snapshots")
        else:
            self._run(
                "UPDATE slots SET state = 'old' WHERE snapshot_id = ? AND state = 'staged'",
                (snapshot_id,),
            )

    def staged_snapshot(self, origin: str) -> tuple[bytes, bytes] | None:
        # Progress without its staged slot (staged by an earlier version, in
        # tables since retired) is as good as none: the snapshot starts over.
        row = self._one(
            "SELECT p.snapshot_id, p.progress FROM staged_snapshots p WHERE p.origin = ? "
            "AND EXISTS (SELECT 1 FROM slots s WHERE s.origin = p.origin "
            "AND s.snapshot_id = p.snapshot_id AND s.state = 'staged')",
            (origin,),
        )
        return (bytes(row[0]), bytes(row[1])) if row else None

    def put_staged_snapshot(self, origin: str, snapshot_id: bytes, progress: bytes) -> None:
        self._run(
            "INSERT INTO staged_snapshots (origin, snapshot_id, progress) VALUES (?, ?, ?) "
            "ON CONFLICT (origin) DO UPDATE SET snapshot_id = excluded.snapshot_id, "
            "progress = excluded.progress",
            (origin, snapshot_id, progress),
        )

    def drop_staged_snapshot(self, origin: str) -> None:
        self._run("UPDATE slots SET state = 'old' WHERE origin = ? AND state = 'staged'", (origin,))
        self._run("DELETE FROM staged_snapshots WHERE origin = ?", (origin,))

    # ---------------------------------------------------------- own-list import staging
    def stage_import(
        self, import_id: bytes, rows: Sequence[StagedRecord], ops: Sequence[Upsert]
    ) -> None:
        listings = {op.handle: _pack_tokens(op) for op in ops}
        self._cur.executemany(
            "INSERT INTO import_records (import_id, id, line, kind, base_version, version, "
            "body, expires, suspended, handle, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    import_id,
                    r.id,
                    r.line,
                    r.kind,
                    r.base_version,
                    r.version,
                    r.body,
                    r.expires,
                    int(r.suspended),
                    r.handle,
                    listings.get(r.handle, b"") if r.kind != "same" else b"",
                )
                for r in rows
            ],
        )

    def staged_import_lines(self, import_id: bytes, record_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        unique = sorted(set(record_ids))
        for chunk, marks in _in_chunks(unique):
            for record_id, line in self._all(
                f"SELECT id, line FROM import_records WHERE import_id = ? AND id IN ({marks})",
                (import_id, *chunk),
            ):
                found[record_id] = int(line)
        return found

    def staged_import_page(self, import_id: bytes, after_id: str, limit: int) -> list[StagedRecord]:
        return [
            StagedRecord(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), r[6], bool(r[7]), bytes(r[8]))
            for r in self._all(
                "SELECT id, line, kind, base_version, version, body, expires, suspended, handle "
                "FROM import_records WHERE import_id = ? AND id > ? ORDER BY id LIMIT ?",
                (import_id, after_id, limit),
            )
        ]

    def publish_staged_listings(
        self, origin: str, import_id: bytes, record_ids: Sequence[str]
    ) -> None:
        # Straight from the staged rows' packed tokens to the index's rows:
        # no Upsert or TokenEntry is made again for a listing made at staging.
        slot = self._live_slot(origin)
        staged: list[Row] = []
        unique = sorted(set(record_ids))
        for chunk, marks in _in_chunks(unique):
            staged.extend(
                self._all(
                    "SELECT handle, expires, tokens FROM import_records "
                    f"WHERE import_id = ? AND kind <> 'same' AND id IN ({marks})",
                    (import_id, *chunk),
                )
            )
        self._drop_listings(slot, sorted({bytes(r[0]) for r in staged}))
        entries: list[Row] = []
        tokens: list[Row] = []
        for raw_handle, expires, packed in staged:
            handle = bytes(raw_handle)
            listing, rows = _unpack_tokens(bytes(packed))
            tokens.extend((slot, token, handle, sealed) for token, sealed in rows)
            entries.append((slot, handle, expires, b"".join(t for t, _ in rows), listing))
        self._insert_rows(entries, tokens)

    def drop_imports(self, *, wipe: bool = True) -> None:
        truncate = f"{self._connector.dialect['truncate']} import_records"
        pragma = self._connector.dialect.get("secure_delete", "")
        if wipe or not pragma:
            self._run(truncate)
            return
        # Zeroing every freed page (secure_delete ON) writes the whole staging
        # again, through the WAL and the checkpoint; FAST zeroes only what is
        # written anyway.
        row = self._one(pragma)
        self._run(f"{pragma} = FAST")
        try:
            self._run(truncate)
        finally:
            self._run(f"{pragma} = {int(row[0]) if row else 1}")

    # ---------------------------------------------------------- detail requests
    def add_detail(self, row: DetailRow) -> None:
        self._run(
            "INSERT INTO detail_requests (at, peer, direction, ref, officer, purpose, case_id, "
            "outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.at,
                row.peer,
                row.direction,
                row.ref,
                row.officer,
                row.purpose,
                row.case_id,
                row.outcome,
            ),
        )

    def count_details(
        self, peer: str, direction: Direction, since: int, outcomes: Sequence[str] | None = None
    ) -> int:
        query = "SELECT COUNT(*) FROM detail_requests WHERE peer = ? AND direction = ? AND at >= ?"
        args: list[object] = [peer, direction, since]
        if outcomes is not None:
            if not outcomes:
                return 0
            query += " AND outcome IN (" + ", ".join("?" for _ in outcomes) + ")"
            args += list(outcomes)
        row = self._one(query, tuple(args))
        return int(row[0]) if row else 0

    # ---------------------------------------------------------- rate limits, hits
    _BUCKET = "SELECT role, name, tokens, stamp, day_start, day_used FROM rate_buckets"

    def lock_bucket(self, fresh: Bucket) -> Bucket:
        self._run(
            "INSERT INTO rate_buckets (role, name, tokens, stamp, day_start, day_used) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (role, name) DO NOTHING",
            (fresh.role, fresh.name, fresh.tokens, fresh.stamp, fresh.day_start, fresh.day_used),
        )
        row = self._one(
            f"{self._BUCKET} WHERE role = ? AND name = ?{self._connector.for_update}",
            (fresh.role, fresh.name),
        )
        if row is None:
            raise InternalError("a rate-limit bucket vanished inside its transaction")
        return Bucket(row[0], row[1], float(row[2]), float(row[3]), float(row[4]), float(row[5]))

    def put_bucket(self, bucket: Bucket) -> None:
        self._run(
            "UPDATE rate_buckets SET tokens = ?, stamp = ?, day_start = ?, day_used = ? "
            "WHERE role = ? AND name = ?",
            (
                bucket.tokens,
                bucket.stamp,
                bucket.day_start,
                bucket.day_used,
                bucket.role,
                bucket.name,
            ),
        )

    def put_hits(self, rows: Sequence[HitRow]) -> None:
        self._cur.executemany(
            "INSERT INTO hit_memory (handle, origin, until, seal_key) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (handle, origin) DO UPDATE SET until = excluded.until, "
            "seal_key = excluded.seal_key",
            [(r.handle, r.origin, r.until, r.seal_key) for r in rows],
        )

    def get_hit(self, handle: bytes, origin: str) -> HitRow | None:
        row = self._one(
            "SELECT handle, origin, until, seal_key FROM hit_memory "
            "WHERE handle = ? AND origin = ?",
            (handle, origin),
        )
        return HitRow(bytes(row[0]), row[1], row[2], bytes(row[3])) if row else None

    def hit_origins(self, handle: bytes, now: int) -> list[str]:
        rows = self._all(
            "SELECT origin FROM hit_memory WHERE handle = ? AND until >= ? ORDER BY origin",
            (handle, now),
        )
        return [r[0] for r in rows]

    def purge_hits(self, before: int) -> int:
        row = self._one("SELECT COUNT(*) FROM hit_memory WHERE until < ?", (before,))
        self._run("DELETE FROM hit_memory WHERE until < ?", (before,))
        return int(row[0]) if row else 0

    # ---------------------------------------------------------- exchange log
    def lock_audit(self) -> None:
        self._connector.lock_table(self._cur, "audit_entries")

    def add_audit_entry(self, idx: int, entry: bytes, leaf: bytes) -> None:
        self.add_audit_entries([(idx, entry, leaf)])

    def add_audit_entries(self, rows: Sequence[tuple[int, bytes, bytes]]) -> None:
        self._cur.executemany(
            "INSERT INTO audit_entries (idx, entry, leaf) VALUES (?, ?, ?)", list(rows)
        )

    def put_audit_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        self._cur.executemany(
            "INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            list(nodes),
        )

    def audit_entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        return [
            (r[0], bytes(r[1]))
            for r in self._all(
                "SELECT idx, entry FROM audit_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end),
            )
        ]

    def audit_leaf(self, idx: int) -> bytes:
        row = self._one("SELECT leaf FROM audit_entries WHERE idx = ?", (idx,))
        if row is None:
            raise InternalError(f"exchange log has no entry {idx}")
        return bytes(row[0])

    def audit_node(self, level: int, idx: int) -> bytes | None:
        row = self._one("SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?", (level, idx))
        return bytes(row[0]) if row else None

    # ---------------------------------------------------------- checkpoints, witnessing
    _CHECKPOINT = "SELECT size, root, note, made_at FROM checkpoints"

    @staticmethod
    def _checkpoint(row: Row) -> CheckpointRow:
        return CheckpointRow(row[0], bytes(row[1]), bytes(row[2]), row[3])

    def add_checkpoint(self, row: CheckpointRow) -> None:
        self._run(
            "INSERT INTO checkpoints (size, root, note, made_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (row.size, row.root, row.note, row.made_at),
        )

    def latest_checkpoint(self) -> CheckpointRow | None:
        row = self._one(f"{self._CHECKPOINT} ORDER BY size DESC LIMIT 1")
        return self._checkpoint(row) if row else None

    def list_checkpoints(self, after_size: int | None, limit: int) -> list[CheckpointRow]:
        if after_size is None:
            rows = self._all(f"{self._CHECKPOINT} ORDER BY size LIMIT ?", (limit,))
        else:
            rows = self._all(
                f"{self._CHECKPOINT} WHERE size > ? ORDER BY size LIMIT ?", (after_size, limit)
            )
        return [self._checkpoint(r) for r in rows]

    def add_cosignature(self, row: CosignatureRow) -> None:
        self._run(
            "INSERT INTO cosignatures (size, witness, line, timestamp) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (row.size, row.witness, row.line, row.timestamp),
        )

    def cosignatures(self, size: int) -> list[CosignatureRow]:
        return [
            CosignatureRow(*r)
            for r in self._all(
                "SELECT size, witness, line, timestamp FROM cosignatures WHERE size = ? "
                "ORDER BY witness",
                (size,),
            )
        ]

    def last_cosigned_size(self, witness: str) -> int:
        row = self._one("SELECT MAX(size) FROM cosignatures WHERE witness = ?", (witness,))
        return int(row[0]) if row and row[0] is not None else 0

    def lock_witness(self) -> None:
        self._connector.lock_table(self._cur, "witnessed")

    _WITNESSED = "SELECT origin, size, root, note, cosigned_at FROM witnessed"

    @staticmethod
    def _witnessed(row: Row) -> WitnessedRow:
        return WitnessedRow(row[0], row[1], bytes(row[2]), bytes(row[3]), row[4])

    def witnessed(self, origin: str, size: int | None = None) -> WitnessedRow | None:
        if size is None:
            row = self._one(
                f"{self._WITNESSED} WHERE origin = ? ORDER BY size DESC LIMIT 1", (origin,)
            )
        else:
            row = self._one(f"{self._WITNESSED} WHERE origin = ? AND size = ?", (origin, size))
        return self._witnessed(row) if row else None

    def add_witnessed(self, row: WitnessedRow) -> None:
        self._run(
            "INSERT INTO witnessed (origin, size, root, note, cosigned_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (row.origin, row.size, row.root, row.note, row.cosigned_at),
        )

    def list_witnessed(self) -> list[WitnessedRow]:
        return [
            self._witnessed(r)
            for r in self._all(
                f"{self._WITNESSED} w WHERE size = "
                "(SELECT MAX(size) FROM witnessed m WHERE m.origin = w.origin) ORDER BY origin"
            )
        ]

    def add_witness_refusal(
        self, note_hash: bytes, origin: str, at: int, reason: str, note: bytes
    ) -> bool:
        if self._one("SELECT 1 FROM witness_refusals WHERE note_hash = ?", (note_hash,)):
            return False
        self._run(
            "INSERT INTO witness_refusals (note_hash, origin, at, reason, note) "
            "VALUES (?, ?, ?, ?, ?)",
            (note_hash, origin, at, reason, note),
        )
        return True

    def witnessed_restore(self, entry_hash: bytes) -> bool:
        found = self._one("SELECT 1 FROM witnessed_restores WHERE entry_hash = ?", (entry_hash,))
        return found is not None

    def add_witnessed_restore(self, entry_hash: bytes, origin: str, at: int) -> bool:
        if self.witnessed_restore(entry_hash):
            return False
        self._run(
            "INSERT INTO witnessed_restores (entry_hash, origin, at) VALUES (?, ?, ?)",
            (entry_hash, origin, at),
        )
        return True

    def retire_witnessed(self, origin: str, above_size: int) -> int:
        row = self._one(
            "SELECT COUNT(*) FROM witnessed WHERE origin = ? AND size > ?", (origin, above_size)
        )
        self._run("DELETE FROM witnessed WHERE origin = ? AND size > ?", (origin, above_size))
        return int(row[0]) if row else 0

    # ---------------------------------------------------------- rejections
    def add_rejection(self, row: RejectionRow) -> None:
        self._run(
            "INSERT INTO rejections (at, origin, what, reason, detail) VALUES (?, ?, ?, ?, ?)",
            (row.at, row.origin, row.what, row.reason, row.detail),
        )

    def list_rejections(self, origin: str | None = None, limit: int = 100) -> list[RejectionRow]:
        where, params = ("WHERE origin = ? ", (origin,)) if origin else ("", ())
        return [
            RejectionRow(at, origin, Rejected(what), reason, detail)
            for at, origin, what, reason, detail in self._all(
                f"SELECT at, origin, what, reason, detail FROM rejections {where}"
                "ORDER BY id DESC LIMIT ?",
                (*params, limit),
            )
        ]

    # ---------------------------------------------------------- acceptance
    _ACCEPTANCE = "SELECT peer, side, version, policy, changed_at, delivered FROM acceptance"

    def put_acceptance(self, row: AcceptanceRow) -> None:
        self._run(
            "INSERT INTO acceptance (peer, side, version, policy, changed_at, delivered) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (peer, side) DO UPDATE SET "
            "version = excluded.version, policy = excluded.policy, "
            "changed_at = excluded.changed_at, delivered = excluded.delivered",
            (row.peer, row.side, row.version, row.policy, row.changed_at, row.delivered),
        )

    def get_acceptance(self, peer: str, side: AcceptanceSide) -> AcceptanceRow | None:
        row = self._one(f"{self._ACCEPTANCE} WHERE peer = ? AND side = ?", (peer, side))
        return _acceptance(row) if row else None

    def list_acceptance(self, side: AcceptanceSide) -> list[AcceptanceRow]:
        return [
            _acceptance(r)
            for r in self._all(f"{self._ACCEPTANCE} WHERE side = ? ORDER BY peer", (side,))
        ]


def _credential(row: Row) -> CredentialRow:
    serial, name, role, issued_at, expires_at, revoked_at = row
    return CredentialRow(serial, name, Role(role), issued_at, expires_at, revoked_at)


def _acceptance(row: Row) -> AcceptanceRow:
    peer, side, version, policy, changed_at, delivered = row
    return AcceptanceRow(peer, AcceptanceSide(side), version, policy, changed_at, delivered)


class SqlStore(Store):
    """A ``Store`` on a ``Connector``; creates the schema on first use."""

    def __init__(self, connector: Connector) -> None:
        self._connector = connector
        self._gate = Gate()
        with connector.transaction(write=True) as cur:
            for statement in schema.statements(connector.dialect):
                cur.execute(statement)
            tx = SqlTx(cur, connector)
            version = tx.get_meta("schema_version")
            steps = schema.migrations(connector.dialect)
            while version is not None and int(version) in steps:  # an older store: migrate
                for statement in steps[int(version)]:
                    cur.execute(statement)
                version = str(int(version) + 1).encode()
                tx.set_meta("schema_version", version)
            if version is None:
                tx.set_meta("schema_version", str(schema.SCHEMA_VERSION).encode())
            elif int(version) != schema.SCHEMA_VERSION:
                raise InternalError(
                    f"store has schema version {int(version)}, this wlx uses "
                    f"{schema.SCHEMA_VERSION}"
                )

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Tx]:
        with self._gate.open(), self._connector.transaction(write=True, durable=durable) as cur:
            yield SqlTx(cur, self._connector)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._gate.open(), self._connector.transaction(write=False) as cur:
            yield SqlTx(cur, self._connector)

    def exclusive(self, name: str, *, timeout: float) -> AbstractContextManager[None]:
        return self._connector.exclusive(name, timeout)

    @property
    def shared(self) -> bool:
        return self._connector.shared

    def leadership(self, name: str) -> Leadership:
        return self._connector.leadership(name)

    def reclaim(self) -> None:
        with self._gate.open():
            self._connector.reclaim()

    def close(self) -> None:
        """Refuse new transactions, let running ones end (up to
        ``CLOSE_WAIT`` seconds), then release the connections: a handler
        still streaming at shutdown gets ``Unavailable``, not a closed
        database."""
        self._gate.close(CLOSE_WAIT)
        self._connector.close()


def _find_statements(
    wanted: Mapping[str, Sequence[bytes]],
) -> Iterator[list[tuple[str, list[bytes]]]]:
    """``wanted`` as statements of ``(origin, distinct tokens)`` branches, each
    statement within ``FIND_PARAMS`` tokens and ``FIND_BRANCHES`` branches
    (an origin with more tokens than fit is split across branches)."""
    statement: list[tuple[str, list[bytes]]] = []
    room = FIND_PARAMS
    for origin, tokens in wanted.items():
        unique = list(dict.fromkeys(tokens))
        while unique:
            if room == 0 or len(statement) == FIND_BRANCHES:
                yield statement
                statement, room = [], FIND_PARAMS
            piece, unique = unique[:room], unique[room:]
            statement.append((origin, piece))
            room -= len(piece)
    if statement:
        yield statement
