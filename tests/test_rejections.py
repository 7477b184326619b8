"""Every rejection, on real nodes: the reason, nothing changed, logged, still serving.

The requirement: a gap, rollback, fork, bad signature, wrong recipient,
unknown signer or stale epoch is rejected with its reason; nothing is
applied, the rejection is logged, and the node keeps serving.  A duplicate
is a no-op.  Nothing signed by an untrusted key is ever applied, and no
node obtains another node's stream.

Each case proves "nothing changed" by dumping every table of the
receiver's store (through its own database connection, so only committed
state counts) before and after, except the rejection log itself, the
rate-limit buckets and the fields that record the last sync error
(``VOLATILE``).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import grpc
import psycopg
import pytest
from support.nodes import FakeClock, Federation, FederationMaker, NodeMaker, StorageFactory, record

from wlx.crypto import envelope as hpke_envelope
from wlx.crypto.digests import genesis_digest
from wlx.crypto.errors import DecryptionError
from wlx.crypto.keys import SigningKey
from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import EpochKey
from wlx.node.core.errors import Rejection, RejectReason, Unavailable
from wlx.node.core.node import Node
from wlx.node.incoming import receiver
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.protocol import codec, outbound
from wlx.node.protocol.envelopes import open_envelope, seal_presigned, seal_signed, sign_message
from wlx.node.protocol.messages import Cursor, Op, PullParams, Sealed, SnapshotParams
from wlx.node.rpc.sync_client import sync_peer
from wlx.node.rpc.transport import peer_channel
from wlx.node.store.base import OutboxRow, RejectionRow, StoredRecord
from wlx.v1 import envelope_pb2, federation_pb2, federation_pb2_grpc, lookup_pb2, lookup_pb2_grpc

# ------------------------------------------------------------------ state

LOG_TABLES = {"rejections", "audit_entries", "audit_nodes"}
"""The rejection log and the exchange log (with its Merkle range in ``meta``):
a rejection is expected to append to them; they are checked on their own."""
LOG_META_KEYS = {"audit_range"}
METERING_TABLES = {"rate_buckets"}
"""Every call is charged before its handler runs, a rejected one too
(docs/protocol.md, rate limits); on PostgreSQL the buckets are rows."""
IGNORED_TABLES = {*LOG_TABLES, *METERING_TABLES, "sqlite_sequence"}
Volatile = dict[str, set[str]]
VOLATILE: Volatile = {"inbound": {"last_error", "last_error_at"}}
"""What a rejection records about itself besides the rejection log."""
VOLATILE_IN_SYNC: Volatile = {"inbound": {"last_error", "last_error_at", "origin_head"}}
"""In a sync, also the stream head the origin reports first (informative,
unsigned), which changes even when a batch after it is rejected."""

State = dict[str, list[tuple[Any, ...]]]


def _rows(cur: Any, table: str, volatile: Volatile) -> list[tuple[Any, ...]]:
    names = [d[0] for d in cur.description]
    keep = [i for i, n in enumerate(names) if n not in volatile.get(table, set())]
    rows = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in cur.fetchall()]
    if table == "meta":
        rows = [r for r in rows if r[0] not in LOG_META_KEYS]
    return sorted((tuple(r[i] for i in keep) for r in rows), key=repr)


def tables(node: Node) -> list[str]:
    """The names of the tables in the node's store."""
    storage = node.config.storage
    if storage.backend == "postgresql":
        with psycopg.connect(storage.dsn, autocommit=True) as conn:
            return sorted(
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (storage.schema,),
                ).fetchall()
            )
    with closing(sqlite3.connect(node.paths.root / storage.path)) as conn:
        return sorted(
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        )


def dump(node: Node, volatile: Volatile = VOLATILE) -> State:
    """Every committed row of every table of the node's store, but its logs (module doc)."""
    names = [t for t in tables(node) if t not in IGNORED_TABLES]
    storage = node.config.storage
    if storage.backend == "postgresql":
        with psycopg.connect(storage.dsn, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{storage.schema}"')
            return {t: _rows(conn.execute(f'SELECT * FROM "{t}"'), t, volatile) for t in names}
    with closing(sqlite3.connect(node.paths.root / storage.path)) as conn:
        return {t: _rows(conn.execute(f'SELECT * FROM "{t}"'), t, volatile) for t in names}


def query_rows(node: Node, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one read-only query on the node's database, through a connection of our own."""
    storage = node.config.storage
    if storage.backend == "postgresql":
        with psycopg.connect(storage.dsn, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{storage.schema}"')
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    with closing(sqlite3.connect(node.paths.root / storage.path)) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def audit_log(node: Node) -> list[dict[str, Any]]:
    """The node's exchange log entries, oldest first (every store has the log)."""
    assert "audit_entries" in tables(node)
    rows = query_rows(node, "SELECT idx, entry FROM audit_entries ORDER BY idx")
    return [json.loads(bytes(entry)) for _, entry in rows]


def execute(node: Node, sql: str, params: tuple[Any, ...]) -> None:
    """Run one statement on the node's database behind its back (tampering)."""
    storage = node.config.storage
    if storage.backend == "postgresql":
        with psycopg.connect(storage.dsn, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{storage.schema}"')
            conn.execute(sql.replace("?", "%s"), params)
        return
    with closing(sqlite3.connect(node.paths.root / storage.path, timeout=30)) as conn:
        conn.execute(sql, params)
        conn.commit()


def without_staged(state: State) -> State:
    """``state`` without the listings it had staged (and their slots)."""
    slots = {row[0] for row in state["slots"] if row[3] == "staged"}
    return {
        table: []
        if table == "staged_snapshots"
        else [r for r in rows if table not in ("entries", "tokens", "slots") or r[0] not in slots]
        for table, rows in state.items()
    }


def staged(node: Node) -> int:
    """Rows of listings staged (in staged slots, node/store/schema.py)."""
    return sum(
        query_rows(
            node,
            f"SELECT COUNT(*) FROM {table} WHERE origin IN "
            "(SELECT slot FROM slots WHERE state = 'staged')",
        )[0][0]
        for table in ("entries", "tokens")
    )


def rejections(node: Node) -> list[RejectionRow]:
    with node.store.read() as tx:
        return tx.list_rejections(limit=1000)


# ------------------------------------------------------------------ the stage


def outbox_of(node: Node, peer: str, after: int = 0) -> list[OutboxRow]:
    """The signed batches ``node`` keeps for ``peer`` (materialised first)."""
    state = origin.materialise(node, peer)
    with node.store.read() as tx:
        return tx.outbox_after(peer, state.epoch, after, 1000)


@dataclass
class Stage:
    """CN, RU and AR trust each other.  CN lists CN-1..CN-4.

    RU took a snapshot of CN at 2 (after CN-1 and CN-2, one batch each);
    CN has made batches 3 (CN-3) and 4 (CN-4) for RU, not yet delivered.
    """

    fed: Federation
    backend: StorageFactory
    make_node: NodeMaker
    clock: FakeClock
    others: dict[str, Node] = field(default_factory=dict)

    @property
    def cn(self) -> Node:
        return self.fed["CN"].node

    @property
    def ru(self) -> Node:
        return self.fed["RU"].node

    @property
    def ar(self) -> Node:
        return self.fed["AR"].node

    def outbox(self, origin_id: str, peer: str, after: int = 0) -> list[OutboxRow]:
        return outbox_of(self.fed[origin_id].node, peer, after)

    def seal(self, row: OutboxRow | bytes, to: str = "RU", sender: str = "CN") -> Sealed:
        signed = row.signed if isinstance(row, OutboxRow) else row
        return seal_presigned(signed, Purpose.BATCH, sender=sender, to=self.fed[to].node.card)

    def pending(self, n: int) -> Sealed:
        """CN's undelivered batch for RU ending at ``n`` (3 or 4), sealed to RU."""
        (row,) = [r for r in self.outbox("CN", "RU") if r.last_seq == n]
        return self.seal(row)

    def epoch_key(self, peer: str = "RU") -> EpochKey:
        state = origin.materialise(self.cn, peer)
        return self.cn.epoch_key("CN", peer, state.epoch, state.token_key)

    def digest_at(self, seq: int) -> bytes:
        with self.cn.store.read() as tx:
            digest = tx.outbox_digest_at("RU", 1, seq)
        assert digest is not None
        return digest

    def forge(
        self,
        ops: list[Op],
        *,
        after_seq: int = 2,
        prev: bytes | None = None,
        key: SigningKey | None = None,
        epoch: int = 1,
    ) -> Sealed:
        """A batch CN -> RU with chosen contents, signed by CN's real key (or ``key``)."""
        (batch,) = outbound.build_batches(
            ops,
            origin="CN",
            recipient="RU",
            epoch=epoch,
            after_seq=after_seq,
            prev_digest=self.digest_at(after_seq) if prev is None else prev,
            created_at=self.cn.now(),
            key=key or self.cn.signing_key,
        )
        return self.seal(batch.signed)

    def remove_cn1(self) -> list[Op]:
        return [outbound.remove_for("CN-1", self.epoch_key())]

    def signed_by_cn(self, payload: bytes, purpose: Purpose = Purpose.BATCH) -> Sealed:
        return seal_signed(payload, purpose, signer="CN", key=self.cn.signing_key, to=self.ru.card)

    def outsider(self, node_id: str = "XX") -> Node:
        """A node that trusts RU and CN, but that no one trusts."""
        node = self.make_node(node_id, self.backend)
        for peer in ("RU", "CN"):
            origin.add_peer(node, self.fed[peer].node.card.raw, self.fed[peer].address)
        ownlist.import_records(node, [record(f"{node_id}-1")])
        self.others[node_id] = node
        return node

    def node(self, node_id: str) -> Node:
        return self.fed[node_id].node if node_id in self.fed.nodes else self.others[node_id]


@pytest.fixture
def stage(
    federation: FederationMaker, backend: StorageFactory, make_node: NodeMaker, clock: FakeClock
) -> Stage:
    fed = federation(["CN", "RU", "AR"], storage=backend)
    cn = fed["CN"].node
    for i in (1, 2):
        ownlist.import_records(cn, [record(f"CN-{i}")])
        origin.materialise(cn, "RU")
    report = fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries == 2, report
    for i in (3, 4):
        ownlist.import_records(cn, [record(f"CN-{i}")])
        origin.materialise(cn, "RU")
    s = Stage(fed, backend, make_node, clock)
    assert [(r.first_seq, r.last_seq) for r in s.outbox("CN", "RU")] == [
        (1, 1),
        (2, 2),
        (3, 3),
        (4, 4),
    ]
    assert receiver.cursor(s.ru, "CN") == Cursor(1, 2, s.digest_at(2))
    return s


def query(record_id: str) -> Query:
    return Query(names=(f"Test Person {record_id.replace('-', ' ')}",), dob="1980-05-17")


def hits(node: Node, record_id: str) -> list[str]:
    return [h.ref for h in Lookup(node).check(query(record_id)) if h.origin == "CN"]


def grpc_lookup(fed: Federation, record_id: str) -> list[str]:
    q = query(record_id)
    request = lookup_pb2.CheckRequest(
        person=lookup_pb2.Person(names=list(q.names), dob=q.dob), purpose="border-check"
    )
    channel = fed.channel("RU")
    response = lookup_pb2_grpc.LookupStub(channel).Check(request, timeout=10)
    return [h.ref for h in response.hits if h.origin == "CN"]


def assert_still_serving(s: Stage) -> None:
    """RU answers lookups (over gRPC) from what it held, and a real sync still works."""
    assert grpc_lookup(s.fed, "CN-1") == ["CN-1"]
    report = s.fed.sync("RU", "CN")
    assert report.ok, report.error
    for i in (1, 2, 3, 4):
        assert grpc_lookup(s.fed, f"CN-{i}") == [f"CN-{i}"]
    with s.cn.store.read() as tx:
        listed = tx.count_records()
    with s.ru.store.read() as tx:
        assert tx.count_entries("CN") == listed
        state = tx.get_inbound("CN")
    assert state is not None and state.synced_at == s.ru.now()


@contextmanager
def logged_and_unchanged(
    node: Node,
    origin_id: str,
    reason: RejectReason,
    caplog: pytest.LogCaptureFixture,
    what: str = "batch",
    volatile: Volatile = VOLATILE,
) -> Iterator[None]:
    """The block changes nothing of ``node`` but logs one rejection (store and log)."""
    before = dump(node, volatile)
    assert before["entries"], "the receiver should hold something to protect"
    logged_before = len(rejections(node))
    audited_before = len(audit_log(node))
    caplog.clear()
    caplog.set_level(logging.INFO)
    yield
    assert dump(node, volatile) == before
    rows = rejections(node)
    assert len(rows) == logged_before + 1
    assert (rows[0].origin, rows[0].what, rows[0].reason) == (origin_id, what, reason.value)
    assert rows[0].at == node.now()
    # the exchange log: one "rejected" entry, nothing else
    added = audit_log(node)[audited_before:]
    assert [(e["kind"], e.get("origin"), e.get("what"), e.get("reason")) for e in added] == [
        ("rejected", origin_id, what, reason.value)
    ]
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING
        and r.name == "wlx.receiver"
        and reason.value in r.getMessage()
    ]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    with node.store.read() as tx:
        state = tx.get_inbound(origin_id)
    if state is not None:
        assert state.last_error.startswith(f"{reason.value}: ")


def assert_rejected(
    node: Node,
    origin_id: str,
    reason: RejectReason,
    call: Callable[[], object],
    caplog: pytest.LogCaptureFixture,
    what: str = "batch",
) -> Rejection:
    """``call`` raises ``reason``, changes nothing, and the rejection is logged."""
    with logged_and_unchanged(node, origin_id, reason, caplog, what):
        with pytest.raises(Rejection) as caught:
            call()
        assert caught.value.reason is reason, caught.value
    return caught.value


# ------------------------------------------------------------------ batches

Case = Callable[[Stage], tuple[str, Sealed]]
"""Makes one bad input: (the origin RU is told it comes from, the envelope)."""


def _gap(s: Stage) -> tuple[str, Sealed]:
    return "CN", s.pending(4)


def _rollback(s: Stage) -> tuple[str, Sealed]:
    # CN's real batch 1, replayed after RU's snapshot at 2.
    return "CN", s.seal(s.outbox("CN", "RU")[0])


def _fork_chain_break(s: Stage) -> tuple[str, Sealed]:
    return "CN", s.forge(s.remove_cn1(), prev=os.urandom(32))


def _fork_same_range(s: Stage) -> tuple[str, Sealed]:
    applied = receiver.apply_batch(s.ru, "CN", s.pending(3))
    assert not applied.duplicate and applied.batch_last == 3
    return "CN", s.forge(s.remove_cn1(), after_seq=2)  # also 3-3, other contents


def _fork_overlap(s: Stage) -> tuple[str, Sealed]:
    return "CN", s.forge([*s.remove_cn1(), *s.remove_cn1()], after_seq=1)  # 2-3


def _newer_epoch(s: Stage) -> tuple[str, Sealed]:
    return "CN", s.forge(s.remove_cn1(), after_seq=0, prev=genesis_digest("CN", "RU", 2), epoch=2)


def _attacker_signed(s: Stage) -> tuple[str, Sealed]:
    return "CN", s.forge(s.remove_cn1(), key=SigningKey.generate())


def _signature_flipped(s: Stage) -> tuple[str, Sealed]:
    (row,) = [r for r in s.outbox("CN", "RU") if r.last_seq == 3]
    msg = envelope_pb2.SignedMessage.FromString(row.signed)
    msg.signature = bytes([msg.signature[0] ^ 1]) + msg.signature[1:]
    return "CN", s.seal(msg.SerializeToString())


def _made_for_ar_reencrypted(s: Stage) -> tuple[str, Sealed]:
    (row,) = s.outbox("CN", "AR")
    return "CN", s.seal(row, to="RU")


def _made_for_ar_as_is(s: Stage) -> tuple[str, Sealed]:
    (row,) = s.outbox("CN", "AR")
    return "CN", s.seal(row, to="AR")


def _payload_names_ar(s: Stage) -> tuple[str, Sealed]:
    payload = codec.encode_batch_payload(
        origin="CN",
        recipient="AR",
        epoch=1,
        first_seq=3,
        prev_digest=s.digest_at(2),
        created_at=s.cn.now(),
        ops=s.remove_cn1(),
    )
    return "CN", s.signed_by_cn(payload)


def _unknown_signer(s: Stage) -> tuple[str, Sealed]:
    (row,) = outbox_of(s.outsider(), "RU")
    return "XX", s.seal(row, sender="XX")


def _untrusted_sender_claiming_cn(s: Stage) -> tuple[str, Sealed]:
    (row,) = outbox_of(s.outsider(), "RU")
    return "CN", s.seal(row, sender="XX")


def _ar_batch_as_cn(s: Stage) -> tuple[str, Sealed]:
    ownlist.import_records(s.ar, [record("AR-1")])
    (row,) = s.outbox("AR", "RU")
    return "CN", s.seal(row, sender="CN")  # opens as from CN; signed by AR


def _payload_names_ar_as_origin(s: Stage) -> tuple[str, Sealed]:
    payload = codec.encode_batch_payload(
        origin="AR",
        recipient="RU",
        epoch=1,
        first_seq=3,
        prev_digest=s.digest_at(2),
        created_at=s.cn.now(),
        ops=s.remove_cn1(),
    )
    return "CN", s.signed_by_cn(payload)


def _ciphertext_flipped(s: Stage) -> tuple[str, Sealed]:
    sealed = s.pending(3)
    flipped = bytearray(sealed.ciphertext)
    flipped[len(flipped) // 2] ^= 0x01
    return "CN", replace(sealed, ciphertext=bytes(flipped))


def _header_changed(s: Stage) -> tuple[str, Sealed]:
    # An envelope sealed from AR, relabelled as from CN: the HPKE info differs.
    (row,) = s.outbox("CN", "RU", after=2)[:1]
    return "CN", replace(s.seal(row, sender="AR"), sender="CN")


def _garbage_payload(s: Stage) -> tuple[str, Sealed]:
    return "CN", s.signed_by_cn(b"\x08\xff\xff\xff not a batch")


def _epoch_zero_payload(s: Stage) -> tuple[str, Sealed]:
    payload = federation_pb2.BatchPayload(
        version=1, origin="CN", recipient="RU", epoch=0, first_seq=3, last_seq=2
    ).SerializeToString()
    return "CN", s.signed_by_cn(payload)


def _v2_batch(s: Stage, change: Callable[[federation_pb2.Upsert], object]) -> Sealed:
    """Batch 3 CN -> RU holding CN-3's protocol-2 upsert (§4.3) as ``change`` leaves it."""
    key = replace(s.epoch_key(), protocol=2)
    upsert = outbound.upsert_for(ownlist.load_record(s.cn, _stored(s.cn, "CN-3")), 1, key)
    assert upsert.sealed and all(len(t.wrap) == 17 for t in upsert.tokens)
    payload = federation_pb2.BatchPayload.FromString(
        codec.encode_batch_payload(
            origin="CN",
            recipient="RU",
            epoch=1,
            first_seq=3,
            prev_digest=s.digest_at(2),
            created_at=s.cn.now(),
            ops=[upsert],
        )
    )
    change(payload.ops[0].upsert)
    return s.signed_by_cn(payload.SerializeToString())


def _stored(node: Node, record_id: str) -> StoredRecord:
    with node.store.read() as tx:
        return tx.get_records([record_id])[record_id]


def _v2_short_wrap(s: Stage) -> tuple[str, Sealed]:
    def change(u: federation_pb2.Upsert) -> None:
        u.tokens[0].wrap = u.tokens[0].wrap[:16]

    return "CN", _v2_batch(s, change)


def _v2_entry_also_sealed(s: Stage) -> tuple[str, Sealed]:
    def change(u: federation_pb2.Upsert) -> None:
        u.tokens[1].sealed = bytes(284)

    return "CN", _v2_batch(s, change)


def _v2_listing_off_bucket(s: Stage) -> tuple[str, Sealed]:
    def change(u: federation_pb2.Upsert) -> None:
        u.sealed = u.sealed + b"\x00"  # lengths leak nothing: whole 256-byte buckets only

    return "CN", _v2_batch(s, change)


def _v2_online(s: Stage) -> tuple[str, Sealed]:
    def change(u: federation_pb2.Upsert) -> None:
        u.online = True

    return "CN", _v2_batch(s, change)


def _v1_entry_with_wrap(s: Stage) -> tuple[str, Sealed]:
    def change(u: federation_pb2.Upsert) -> None:
        u.sealed = b""
        for t in u.tokens:
            t.sealed = bytes(284)

    return "CN", _v2_batch(s, change)


def _garbage_inner(s: Stage) -> tuple[str, Sealed]:
    return "CN", s.seal(b"\xff\xff\xff not a signed message")


def _wrong_purpose(s: Stage) -> tuple[str, Sealed]:
    return "CN", replace(s.pending(3), purpose=Purpose.SNAPSHOT_PART)


def _snapshot_signature(s: Stage) -> tuple[str, Sealed]:
    # A real batch payload, but signed for the snapshot-part purpose.
    (row,) = [r for r in s.outbox("CN", "RU") if r.last_seq == 3]
    payload = codec.decode_signed_bytes(row.signed).payload
    signed = sign_message(
        payload, Purpose.SNAPSHOT_PART, signer="CN", key=s.cn.signing_key, recipient="RU"
    )
    inner = codec.encode_signed(
        signed.payload, signed.signature, "CN", "RU", Purpose.SNAPSHOT_PART
    ).SerializeToString()
    return "CN", s.seal(inner)


BATCH_CASES: list[tuple[str, Case, RejectReason]] = [
    ("gap", _gap, RejectReason.GAP),
    ("rollback", _rollback, RejectReason.ROLLBACK),
    ("fork-chain-break", _fork_chain_break, RejectReason.FORK),
    ("fork-same-range-other-content", _fork_same_range, RejectReason.FORK),
    ("fork-overlap", _fork_overlap, RejectReason.FORK),
    ("newer-epoch-before-snapshot", _newer_epoch, RejectReason.UNEXPECTED_EPOCH),
    ("bad-signature-attacker-key", _attacker_signed, RejectReason.BAD_SIGNATURE),
    ("bad-signature-flipped", _signature_flipped, RejectReason.BAD_SIGNATURE),
    ("wrong-recipient-reencrypted", _made_for_ar_reencrypted, RejectReason.WRONG_RECIPIENT),
    ("wrong-recipient-envelope", _made_for_ar_as_is, RejectReason.WRONG_RECIPIENT),
    ("wrong-recipient-payload", _payload_names_ar, RejectReason.WRONG_RECIPIENT),
    ("unknown-signer", _unknown_signer, RejectReason.UNKNOWN_SIGNER),
    ("wrong-sender-untrusted-node", _untrusted_sender_claiming_cn, RejectReason.WRONG_SENDER),
    ("wrong-sender-signed-by-peer", _ar_batch_as_cn, RejectReason.WRONG_SENDER),
    ("wrong-sender-payload", _payload_names_ar_as_origin, RejectReason.WRONG_SENDER),
    ("undecryptable-flipped", _ciphertext_flipped, RejectReason.UNDECRYPTABLE),
    ("undecryptable-header", _header_changed, RejectReason.UNDECRYPTABLE),
    ("malformed-payload", _garbage_payload, RejectReason.MALFORMED),
    ("malformed-epoch-zero", _epoch_zero_payload, RejectReason.MALFORMED),
    ("malformed-signed-message", _garbage_inner, RejectReason.MALFORMED),
    ("malformed-purpose", _wrong_purpose, RejectReason.MALFORMED),
    ("malformed-signature-purpose", _snapshot_signature, RejectReason.MALFORMED),
    ("malformed-v2-short-wrap", _v2_short_wrap, RejectReason.MALFORMED),
    ("malformed-v2-entry-also-sealed", _v2_entry_also_sealed, RejectReason.MALFORMED),
    ("malformed-v2-listing-off-bucket", _v2_listing_off_bucket, RejectReason.MALFORMED),
    ("malformed-v2-online", _v2_online, RejectReason.MALFORMED),
    ("malformed-v1-entry-with-wrap", _v1_entry_with_wrap, RejectReason.MALFORMED),
]


@pytest.mark.parametrize(
    ("case", "reason"), [c[1:] for c in BATCH_CASES], ids=[c[0] for c in BATCH_CASES]
)
def test_a_rejected_batch_changes_nothing(
    stage: Stage, case: Case, reason: RejectReason, caplog: pytest.LogCaptureFixture
) -> None:
    origin_id, sealed = case(stage)
    assert_rejected(
        stage.ru,
        origin_id,
        reason,
        lambda: receiver.apply_batch(stage.ru, origin_id, sealed),
        caplog,
    )
    assert hits(stage.ru, "CN-1") == ["CN-1"]
    assert_still_serving(stage)


def test_a_duplicate_batch_is_a_no_op(stage: Stage, caplog: pytest.LogCaptureFixture) -> None:
    b3 = stage.pending(3)
    first = receiver.apply_batch(stage.ru, "CN", b3)
    assert (first.duplicate, first.ops) == (False, 1)
    assert hits(stage.ru, "CN-3") == ["CN-3"]
    before, logged = dump(stage.ru, volatile={}), len(rejections(stage.ru))
    audited = len(audit_log(stage.ru))
    caplog.clear()
    caplog.set_level(logging.INFO)
    for again in (b3, stage.pending(3)):  # the same envelope, and the batch sealed afresh
        applied = receiver.apply_batch(stage.ru, "CN", again)
        assert (applied.duplicate, applied.ops, applied.batch_last) == (True, 0, 3)
    # The batch RU's snapshot ended with is known too.
    at_2 = receiver.apply_batch(stage.ru, "CN", stage.seal(stage.outbox("CN", "RU")[1]))
    assert at_2.duplicate
    assert dump(stage.ru, volatile={}) == before  # not even the sync status
    assert len(rejections(stage.ru)) == logged
    # The exchange log notes the three duplicates and nothing else.
    assert [e["kind"] for e in audit_log(stage.ru)[audited:]] == ["batch.duplicate"] * 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    report = stage.fed.sync("RU", "CN")
    assert report.ok and report.batches == 1 and report.duplicates == 0
    assert hits(stage.ru, "CN-4") == ["CN-4"]


def rotate_epoch(node: Node, peer: str) -> int:
    """Start a new epoch of ``node``'s stream for ``peer`` (fresh key, new chain)."""
    with node.store.write() as tx:
        state = tx.get_outbound(peer, for_update=True)
        assert state is not None
        epoch = state.epoch + 1
        key = EpochKey.generate(node.node_id, peer, epoch, node.rng)
        tx.put_outbound(
            replace(
                state,
                epoch=epoch,
                token_key=node.wrap_epoch_key(key),
                change_pos=tx.change_head(),
                last_seq=0,
                last_digest=genesis_digest(node.node_id, peer, epoch),
                epoch_started_at=node.now(),
            )
        )
    return epoch


def snapshot_for(
    s: Stage, to: str = "RU", *, part_size: int = 1, repeat_first: bool = False
) -> list[Sealed]:
    """CN's real snapshot for ``to`` at its stream's head, in parts of ``part_size``
    (``repeat_first``: with its first listing twice, signed all the same)."""
    cn = s.cn
    state = origin.materialise(cn, to)
    key = cn.epoch_key("CN", to, state.epoch, state.token_key)
    with cn.store.read() as tx:
        entries = [
            outbound.upsert_for(ownlist.load_record(cn, r), r.version, key, cn.rng)
            for r in tx.iter_records()
        ]
    if repeat_first:
        entries.append(entries[0])
    return list(
        outbound.snapshot_parts(
            entries,
            origin="CN",
            to=s.fed[to].node.card,
            key=cn.signing_key,
            epoch_key=key,
            at_seq=state.last_seq,
            chain_digest=state.last_digest,
            snapshot_id=os.urandom(codec.NONCE_BYTES),
            created_at=cn.now(),
            part_size=part_size,
        )
    )


def test_stale_epoch_batch_and_snapshot(stage: Stage, caplog: pytest.LogCaptureFixture) -> None:
    old_batch = stage.pending(3)
    old_snapshot = snapshot_for(stage)
    assert rotate_epoch(stage.cn, "RU") == 2
    report = stage.fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries == 4, report
    assert receiver.cursor(stage.ru, "CN") == Cursor(2, 0, genesis_digest("CN", "RU", 2))

    assert_rejected(
        stage.ru,
        "CN",
        RejectReason.STALE_EPOCH,
        lambda: receiver.apply_batch(stage.ru, "CN", old_batch),
        caplog,
    )
    assert_rejected(
        stage.ru,
        "CN",
        RejectReason.STALE_EPOCH,
        lambda: receiver.apply_snapshot(stage.ru, "CN", old_snapshot),
        caplog,
        what="snapshot",
    )
    assert hits(stage.ru, "CN-4") == ["CN-4"]
    ownlist.import_records(stage.cn, [record("CN-5")])
    report = stage.fed.sync("RU", "CN")
    assert report.ok and report.batches == 1, report
    assert grpc_lookup(stage.fed, "CN-5") == ["CN-5"]


# ------------------------------------------------------------------ rejections met by sync


def _tamper_outbox(s: Stage, last_seq: int, signed: bytes) -> bytes:
    (row,) = [r for r in s.outbox("CN", "RU") if r.last_seq == last_seq]
    execute(
        s.cn,
        "UPDATE outbox SET signed = ? WHERE peer = ? AND last_seq = ?",
        (signed, "RU", last_seq),
    )
    return row.signed


@pytest.mark.parametrize("reason", [RejectReason.GAP, RejectReason.BAD_SIGNATURE])
def test_sync_reports_a_rejection_and_applies_nothing(
    stage: Stage, reason: RejectReason, caplog: pytest.LogCaptureFixture
) -> None:
    # CN's store is tampered with: it serves batch 4 where 3 belongs, or batch
    # 3 re-signed by another key.
    rows = {r.last_seq: r for r in stage.outbox("CN", "RU")}
    if reason is RejectReason.GAP:
        bad = rows[4].signed
    else:
        (forged,) = outbound.build_batches(
            stage.remove_cn1(),
            origin="CN",
            recipient="RU",
            epoch=1,
            after_seq=2,
            prev_digest=rows[2].digest,
            created_at=stage.cn.now(),
            key=SigningKey.generate(),
        )
        bad = forged.signed
    original = _tamper_outbox(stage, 3, bad)
    with logged_and_unchanged(stage.ru, "CN", reason, caplog, volatile=VOLATILE_IN_SYNC):
        report = stage.fed.sync("RU", "CN")
    assert not report.ok and report.error.startswith(f"{reason.value}: "), report
    assert report.batches == 0
    _tamper_outbox(stage, 3, original)
    assert_still_serving(stage)


# ------------------------------------------------------------------ snapshots


def _flip_part(parts: list[Sealed], index: int) -> list[Sealed]:
    part = parts[index]
    flipped = bytearray(part.ciphertext)
    flipped[-5] ^= 0x01
    return [*parts[:index], replace(part, ciphertext=bytes(flipped)), *parts[index + 1 :]]


def _forged_snapshot(s: Stage) -> list[Sealed]:
    key = SigningKey.generate()
    state = origin.materialise(s.cn, "RU")
    epoch_key = EpochKey.generate("CN", "RU", state.epoch)
    return list(
        outbound.snapshot_parts(
            [outbound.upsert_for(record("CN-666"), 1, epoch_key)],
            origin="CN",
            to=s.ru.card,
            key=key,
            epoch_key=epoch_key,
            at_seq=state.last_seq,
            chain_digest=state.last_digest,
            snapshot_id=os.urandom(16),
            created_at=s.cn.now(),
        )
    )


def _replayed_snapshot(s: Stage) -> list[Sealed]:
    parts = snapshot_for(s)  # at 4; then RU moves on to 5
    ownlist.import_records(s.cn, [record("CN-5")])
    report = s.fed.sync("RU", "CN")
    assert report.ok and report.batches == 3, report
    return parts


def _forked_snapshot(s: Stage) -> list[Sealed]:
    # CN's own key, RU's position (2), another chain digest.
    state = origin.materialise(s.cn, "RU")
    key = s.cn.epoch_key("CN", "RU", state.epoch, state.token_key)
    return list(
        outbound.snapshot_parts(
            [outbound.upsert_for(record("CN-1"), 1, key)],
            origin="CN",
            to=s.ru.card,
            key=s.cn.signing_key,
            epoch_key=key,
            at_seq=2,
            chain_digest=os.urandom(32),
            snapshot_id=os.urandom(16),
            created_at=s.cn.now(),
        )
    )


SnapshotCase = Callable[[Stage], list[Sealed]]
SNAPSHOT_CASES: list[tuple[str, SnapshotCase, RejectReason]] = [
    ("tampered-part", lambda s: _flip_part(snapshot_for(s), 2), RejectReason.UNDECRYPTABLE),
    ("truncated", lambda s: snapshot_for(s)[:-1], RejectReason.MALFORMED),
    (
        "reordered",
        lambda s: [p for i, p in enumerate(snapshot_for(s)) if i != 1],
        RejectReason.MALFORMED,
    ),
    ("attacker-signed", _forged_snapshot, RejectReason.BAD_SIGNATURE),
    ("made-for-ar", lambda s: snapshot_for(s, "AR"), RejectReason.WRONG_RECIPIENT),
    ("repeated-listing", lambda s: snapshot_for(s, repeat_first=True), RejectReason.MALFORMED),
    ("replayed-older", _replayed_snapshot, RejectReason.ROLLBACK),
    ("forked", _forked_snapshot, RejectReason.FORK),
]


@pytest.mark.parametrize(
    ("case", "reason"), [c[1:] for c in SNAPSHOT_CASES], ids=[c[0] for c in SNAPSHOT_CASES]
)
def test_a_rejected_snapshot_leaves_the_old_state_and_no_staging(
    stage: Stage, case: SnapshotCase, reason: RejectReason, caplog: pytest.LogCaptureFixture
) -> None:
    parts = case(stage)
    staged_midway: list[int] = []

    def stream() -> Iterator[Sealed]:
        for i, part in enumerate(parts):
            if i == 2:
                staged_midway.append(staged(stage.ru))
            yield part

    assert_rejected(
        stage.ru,
        "CN",
        reason,
        lambda: receiver.apply_snapshot(stage.ru, "CN", stream()),
        caplog,
        what="snapshot",
    )
    if staged_midway:  # parts 0 and 1 had been staged, and were dropped
        assert staged_midway[0] > 0
    assert staged(stage.ru) == 0
    assert hits(stage.ru, "CN-1") == ["CN-1"]
    assert_still_serving(stage)


def test_a_snapshot_overtaken_by_a_batch_is_dropped_without_accusing_the_peer(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    """The cursor moving under a snapshot is this node's doing (two syncs at
    once), not the origin's: no rejection is logged (issue 9 item 1)."""
    parts = snapshot_for(stage)  # at 4
    midway: list[State] = []

    def stream() -> Iterator[Sealed]:
        for i, part in enumerate(parts):
            if i == 2:  # batch 3 arrives while the snapshot streams in
                receiver.apply_batch(stage.ru, "CN", stage.pending(3))
                midway.append(dump(stage.ru))
            yield part

    caplog.set_level(logging.INFO)
    with pytest.raises(Unavailable, match="moved"):
        receiver.apply_snapshot(stage.ru, "CN", stream())
    after = dump(stage.ru)
    assert staged(stage.ru) == 0
    assert after == without_staged(midway[0])
    assert receiver.cursor(stage.ru, "CN") == Cursor(1, 3, stage.digest_at(3))
    assert rejections(stage.ru) == []
    assert_still_serving(stage)


def test_an_honest_snapshot_in_parts_applies(stage: Stage) -> None:
    result = receiver.apply_snapshot(stage.ru, "CN", snapshot_for(stage))
    assert (result.epoch, result.at_seq, result.entries) == (1, 4, 4)
    assert staged(stage.ru) == 0
    assert hits(stage.ru, "CN-4") == ["CN-4"]


def test_a_second_snapshot_replaces_the_first_and_leaves_no_rows_behind(stage: Stage) -> None:
    """A swap moves a pointer; the listings it replaced are deleted after it
    (chunked), so the store holds one copy of the origin's list, not two."""
    receiver.apply_snapshot(stage.ru, "CN", snapshot_for(stage))
    receiver.apply_snapshot(stage.ru, "CN", snapshot_for(stage))  # fresh nonces: new rows
    assert hits(stage.ru, "CN-4") == ["CN-4"]
    with stage.ru.store.read() as tx:
        held = tx.count_entries("CN")
    assert held == 4
    own = query_rows(stage.ru, "SELECT COUNT(*) FROM entries WHERE origin = 'RU'")[0][0]
    assert query_rows(stage.ru, "SELECT COUNT(*) FROM entries")[0][0] == held + own
    assert query_rows(stage.ru, "SELECT state FROM slots WHERE origin = 'CN'") == [("live",)]


def test_a_snapshot_from_an_untrusted_node_is_rejected(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    xx = stage.outsider()
    state = origin.materialise(xx, "RU")
    key = xx.epoch_key("XX", "RU", state.epoch, state.token_key)
    parts = list(
        outbound.snapshot_parts(
            [outbound.upsert_for(record("XX-1"), 1, key)],
            origin="XX",
            to=stage.ru.card,
            key=xx.signing_key,
            epoch_key=key,
            at_seq=state.last_seq,
            chain_digest=state.last_digest,
            snapshot_id=os.urandom(16),
            created_at=xx.now(),
        )
    )
    assert_rejected(
        stage.ru,
        "XX",
        RejectReason.UNKNOWN_SIGNER,
        lambda: receiver.apply_snapshot(stage.ru, "XX", parts),
        caplog,
        what="snapshot",
    )
    assert_rejected(
        stage.ru,
        "CN",
        RejectReason.WRONG_SENDER,
        lambda: receiver.apply_snapshot(stage.ru, "CN", parts),
        caplog,
        what="snapshot",
    )
    assert_still_serving(stage)


# ------------------------------------------------------------------ requests


def pull_request(
    node: Node,
    origin_id: str,
    *,
    requester: str | None = None,
    params_origin: str | None = None,
    signer: str | None = None,
    recipient: str | None = None,
    issued_at: int | None = None,
    epoch: int = 0,
    after_seq: int = 0,
    after_digest: bytes = b"",
) -> federation_pb2.PullRequest:
    params = PullParams(
        requester=requester or node.node_id,
        origin=params_origin or origin_id,
        epoch=epoch,
        after_seq=after_seq,
        after_digest=after_digest,
        issued_at=node.now() if issued_at is None else issued_at,
        nonce=os.urandom(codec.NONCE_BYTES),
        max_batches=50,
    )
    msg = sign_message(
        codec.encode_pull_params(params),
        Purpose.PULL,
        signer=signer or node.node_id,
        key=node.signing_key,
        recipient=recipient or origin_id,
    )
    return federation_pb2.PullRequest(
        request=codec.encode_signed(
            msg.payload, msg.signature, msg.signer, msg.recipient, msg.purpose
        )
    )


def snapshot_request(
    node: Node, origin_id: str, *, requester: str | None = None, issued_at: int | None = None
) -> federation_pb2.SnapshotRequest:
    params = SnapshotParams(
        requester or node.node_id,
        origin_id,
        node.now() if issued_at is None else issued_at,
        os.urandom(codec.NONCE_BYTES),
    )
    msg = sign_message(
        codec.encode_snapshot_params(params),
        Purpose.SNAPSHOT,
        signer=node.node_id,
        key=node.signing_key,
        recipient=origin_id,
    )
    return federation_pb2.SnapshotRequest(
        request=codec.encode_signed(
            msg.payload, msg.signature, msg.signer, msg.recipient, msg.purpose
        )
    )


def _channel(s: Stage, origin_id: str, via: Node | None, signer: str) -> grpc.Channel:
    """A mutual-TLS channel to ``origin_id`` with the TLS identity of ``via``
    (by default the node that signed the request)."""
    node = via or s.node(signer)
    return peer_channel(node, s.fed[origin_id].node.card, s.fed[origin_id].address)


def call_pull(
    s: Stage, origin_id: str, request: federation_pb2.PullRequest, via: Node | None = None
) -> list[Sealed]:
    """The batches a pull returns (resync and informative items are skipped)."""
    with _channel(s, origin_id, via, request.request.signer) as channel:
        responses = list(federation_pb2_grpc.FederationStub(channel).Pull(request, timeout=10))
    return [codec.decode_sealed(r.batch) for r in responses if r.WhichOneof("item") == "batch"]


def call_snapshot(
    s: Stage, origin_id: str, request: federation_pb2.SnapshotRequest, via: Node | None = None
) -> list[Sealed]:
    with _channel(s, origin_id, via, request.request.signer) as channel:
        stream = federation_pb2_grpc.FederationStub(channel).Snapshot(request, timeout=10)
        return [codec.decode_sealed(m) for m in stream]


def refused(code: grpc.StatusCode, call: Callable[[], object]) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    assert error.code() == code, error
    return str(error.details())


def ru_cursor_request(s: Stage, **kwargs: Any) -> federation_pb2.PullRequest:
    cursor = receiver.cursor(s.ru, "CN")
    assert cursor is not None
    return pull_request(
        s.ru, "CN", epoch=cursor.epoch, after_seq=cursor.seq, after_digest=cursor.digest, **kwargs
    )


def test_an_untrusted_node_gets_nothing(stage: Stage) -> None:
    xx = stage.outsider()
    cn_before = dump(stage.cn)
    # Its TLS certificate is no trust anchor of CN: refused at the handshake.
    refused(grpc.StatusCode.UNAVAILABLE, lambda: call_pull(stage, "CN", pull_request(xx, "CN")))
    refused(
        grpc.StatusCode.UNAVAILABLE,
        lambda: call_snapshot(stage, "CN", snapshot_request(xx, "CN")),
    )
    # Even over a trusted peer's connection, claiming to be RU does not help:
    # the signature is checked under RU's key.
    detail = refused(
        grpc.StatusCode.UNAUTHENTICATED,
        lambda: call_pull(
            stage, "CN", pull_request(xx, "CN", requester="RU", signer="RU"), via=stage.ru
        ),
    )
    assert "bad-signature" in detail
    # Its own sync says so, and it holds nothing of CN.
    with xx.store.read() as tx:
        peer = tx.get_peer("CN")
    assert peer is not None
    report = sync_peer(xx, peer)
    assert not report.ok and "TLS" in report.error
    with xx.store.read() as tx:
        assert tx.count_entries("CN") == 0
    assert dump(stage.cn) == cn_before


def test_a_stale_pull_request_is_refused(stage: Stage) -> None:
    now = stage.cn.now()
    for skew in (-301, 301):
        detail = refused(
            grpc.StatusCode.UNAUTHENTICATED,
            partial(call_pull, stage, "CN", ru_cursor_request(stage, issued_at=now + skew)),
        )
        assert "stale-request" in detail
    # Made now, sent 301 s later (the fake clock moves every node's time).
    request = ru_cursor_request(stage)
    snapshot = snapshot_request(stage.ru, "CN")
    stage.clock.advance(301)
    refused(grpc.StatusCode.UNAUTHENTICATED, lambda: call_pull(stage, "CN", request))
    refused(grpc.StatusCode.UNAUTHENTICATED, lambda: call_snapshot(stage, "CN", snapshot))
    assert receiver.cursor(stage.ru, "CN") == Cursor(1, 2, stage.digest_at(2))
    # Within the window, the same pull is served.
    now = stage.cn.now()
    for skew in (-300, 0, 300):
        batches = call_pull(stage, "CN", ru_cursor_request(stage, issued_at=now + skew))
        assert [b.recipient for b in batches] == ["RU", "RU"]
    assert_still_serving(stage)


def test_a_pull_signed_for_another_origin_is_refused(stage: Stage) -> None:
    # Signed for AR, sent to CN.
    refused(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: call_pull(
            stage, "CN", ru_cursor_request(stage, recipient="AR", params_origin="AR")
        ),
    )
    # Signed for CN, but asking for AR's stream.
    refused(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: call_pull(stage, "CN", ru_cursor_request(stage, params_origin="AR")),
    )
    # Signed for AR, asking CN's stream.
    refused(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: call_pull(stage, "CN", ru_cursor_request(stage, recipient="AR")),
    )
    assert_still_serving(stage)


def test_no_node_obtains_another_nodes_stream(stage: Stage) -> None:
    ar_report = stage.fed.sync("AR", "CN")
    assert ar_report.ok
    ownlist.import_records(stage.cn, [record("CN-5")])
    ru_outbox = {r.signed for r in stage.outbox("CN", "RU")}  # CN-5 included

    # AR's own pull: only batches made for and sealed to AR.
    cursor = receiver.cursor(stage.ar, "CN")
    assert cursor is not None
    own = call_pull(
        stage,
        "CN",
        pull_request(
            stage.ar, "CN", epoch=cursor.epoch, after_seq=cursor.seq, after_digest=cursor.digest
        ),
    )
    assert own and all(b.recipient == "AR" for b in own)
    for sealed in own:
        inner = hpke_envelope.open_sealed(
            sealed.ciphertext, stage.ar.box_key, purpose="batch", sender="CN", recipient="AR"
        )
        assert codec.decode_signed_bytes(inner).recipient == "AR"
        assert inner not in ru_outbox
        with pytest.raises(DecryptionError):
            hpke_envelope.open_sealed(
                sealed.ciphertext, stage.ru.box_key, purpose="batch", sender="CN", recipient="RU"
            )

    # AR asking for RU's stream, signing as itself: refused.
    refused(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: call_pull(stage, "CN", pull_request(stage.ar, "CN", requester="RU")),
    )
    refused(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: call_snapshot(stage, "CN", snapshot_request(stage.ar, "CN", requester="RU")),
    )
    # AR replaying RU's signed request over its own connection: refused, since
    # the TLS peer is not the signer.
    refused(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: call_pull(stage, "CN", ru_cursor_request(stage), via=stage.ar),
    )
    # And had it got an answer (over RU's connection), it would open nothing.
    replayed = call_pull(stage, "CN", ru_cursor_request(stage))
    assert replayed and all(b.recipient == "RU" for b in replayed)
    for sealed in replayed:
        with pytest.raises(Rejection) as caught:
            open_envelope(
                sealed,
                purpose=Purpose.BATCH,
                me="AR",
                box_key=stage.ar.box_key,
                expected_sender="CN",
                trusted=stage.ar.trusted,
            )
        assert caught.value.reason is RejectReason.WRONG_RECIPIENT
        with pytest.raises(DecryptionError):
            hpke_envelope.open_sealed(
                sealed.ciphertext, stage.ar.box_key, purpose="batch", sender="CN", recipient="RU"
            )
    assert_still_serving(stage)
