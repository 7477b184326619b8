"""Signed checkpoints and witnessing between real nodes (docs/audit.md §3-§4)."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from support.audit import exchange
from support.nodes import FakeClock, Federation, FederationMaker, StorageFactory, peer_row, record

from wlx.crypto import merkle
from wlx.crypto.checkpoint import Checkpoint, verify_cosignature
from wlx.crypto.keys import SigningKey
from wlx.crypto.note import open_note, sign_note
from wlx.node.audit import exchange_log, witness
from wlx.node.audit.checkpoints import make_checkpoint
from wlx.node.audit.offline.names import checkpoint_text, log_signer, log_verifier, witness_verifier
from wlx.node.core.errors import InternalError, Rejection, RejectReason
from wlx.node.daemon import SyncLoop
from wlx.node.directory import open_node
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import ownlist
from wlx.node.rpc.cosign import checkpoint_round, request_cosignature, send_add_checkpoint
from wlx.node.store.base import CheckpointRow, WitnessedRow
from wlx.v1 import audit_pb2


def grow(fed: Federation, node_id: str, n: int = 1) -> None:
    """Append n entries to a node's log (lookups that miss)."""
    for _ in range(n):
        Lookup(fed[node_id].node).check(Query(names=("Nobody Here",), dob="1990"))


def refusals(fed: Federation, at: str) -> list[dict[str, object]]:
    with fed[at].node.store.read() as tx:
        rows = tx.audit_entries(0, exchange_log.size(tx))
    return [e for e in (json.loads(r) for _, r in rows) if e["kind"] == "witness.refused"]


def copy_db(source: Path, target: Path) -> None:
    """Copy a SQLite database with SQLite's backup API (consistent, WAL-safe)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def forged(node_id: str, key: SigningKey, size: int, root: bytes, now: int = 0) -> CheckpointRow:
    note = sign_note(checkpoint_text(node_id, size, root), [log_signer(node_id, key)])
    return CheckpointRow(size, root, note, now)


def add_checkpoint_rpc(
    fed: Federation, log: str, witness_id: str, note: bytes, old_size: int, proof: list[bytes]
) -> audit_pb2.AddCheckpointResponse:
    node = fed[log].node
    card = node.trusted(witness_id)
    assert card is not None
    return send_add_checkpoint(
        node,
        card,
        fed[witness_id].address,
        audit_pb2.AddCheckpointRequest(checkpoint=note, old_size=old_size, consistency_proof=proof),
    )


def test_checkpoints_are_signed_and_cosigned_by_every_peer(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = federation(["CN", "RU", "AR"], storage=backend)
    exchange(fed)
    cn = fed["CN"].node
    row, reports = checkpoint_round(cn)
    assert sorted((r.witness, r.ok, r.already) for r in reports) == [
        ("AR", True, False),
        ("RU", True, False),
    ]
    with cn.store.read() as tx:
        assert (row.size, row.root) == exchange_log.head(tx)
        cosigs = tx.cosignatures(row.size)
    # The C2SP note: origin line, size, root; signed by CN's identity key
    # under the key name wlx.exchange/CN.
    text, sigs = open_note(row.note, [log_verifier("CN", cn.card.sign_key)])
    assert Checkpoint.parse(text) == Checkpoint("wlx.exchange/CN", row.size, row.root)
    assert [s.name for s in sigs] == ["wlx.exchange/CN"]
    # Each witness's cosignature verifies with its card's key, and it recorded CN's head.
    assert [c.witness for c in cosigs] == ["AR", "RU"]
    for c in cosigs:
        key = fed[c.witness].node.card.sign_key
        assert verify_cosignature(text, c.line, witness_verifier(c.witness, key)) == c.timestamp
        with fed[c.witness].node.store.read() as tx:
            seen = tx.witnessed("CN")
        assert seen is not None and (seen.size, seen.root, seen.note) == (
            row.size,
            row.root,
            row.note,
        )

    # Nothing logged since: the same checkpoint, no call to the witnesses.
    again, reports = checkpoint_round(cn)
    assert again == row and all(r.already for r in reports)
    # The log grows: a new checkpoint, which the witnesses check is consistent.
    grow(fed, "CN", 3)
    newer, reports = checkpoint_round(cn)
    assert newer.size == row.size + 3 and all(r.ok and not r.already for r in reports)
    with fed["RU"].node.store.read() as tx:
        seen, before = tx.witnessed("CN"), tx.witnessed("CN", row.size)
    assert seen is not None and (seen.size, seen.root) == (newer.size, newer.root)
    assert before is not None and before.root == row.root


def test_a_witness_refuses_a_fork_and_logs_it(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    exchange_small(fed)
    cn = fed["CN"].node
    row, _ = checkpoint_round(cn)

    # Another tree of the same size, signed by CN's own key: two signed roots
    # for one size.  RU refuses, and says so in its own log.
    other = forged("CN", cn.signing_key, row.size, bytes(32))
    with pytest.raises(grpc.RpcError) as refused:
        add_checkpoint_rpc(fed, "CN", "RU", other.note, row.size, [])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "fork" in str(refused.value.details())
    (entry,) = refusals(fed, "RU")
    assert entry["origin"] == "CN" and entry["reason"] == "fork" and entry["size"] == row.size
    assert entry["note"] == other.note.decode() and entry["cosigned_note"] == row.note.decode()
    # Both notes in the entry verify with CN's key: the evidence stands on its own.
    for note in (entry["note"], entry["cosigned_note"]):
        open_note(str(note).encode(), [log_verifier("CN", cn.card.sign_key)])

    # Asked again with the same note: refused again, logged once.
    with pytest.raises(grpc.RpcError):
        add_checkpoint_rpc(fed, "CN", "RU", other.note, row.size, [])
    assert len(refusals(fed, "RU")) == 1

    # A node that rewrote its log: a larger checkpoint of another tree.  Its
    # real proof does not lead to that root; RU refuses it as a fork.
    grow(fed, "CN", 2)
    with cn.store.read() as tx:
        size = exchange_log.size(tx)
    rewritten = forged("CN", cn.signing_key, size, merkle.root([bytes(32)] * size))
    report = request_cosignature(cn, peer_row(cn, "RU"), rewritten)
    assert not report.ok and "fork" in report.error and "not shown to extend" in report.error
    assert [e["reason"] for e in refusals(fed, "RU")] == ["fork", "fork"]
    # The honest checkpoint of that size is still cosigned.
    honest, reports = checkpoint_round(cn)
    assert honest.size == size and all(r.ok for r in reports)


def test_a_witness_refuses_a_rollback(
    federation: FederationMaker, tmp_path: Path, clock: FakeClock
) -> None:
    fed = federation(["CN", "RU"])
    exchange_small(fed)
    cn = fed["CN"].node
    first, _ = checkpoint_round(cn)
    db = Path(cn.paths.root) / "wlx.db"
    backup = tmp_path / "backup.db"
    copy_db(db, backup)
    grow(fed, "CN", 5)
    second, _ = checkpoint_round(cn)

    # CN's store is restored from the backup: its log is back at the first
    # checkpoint, and goes on with other entries (fewer than RU has seen).
    cn.close()
    copy_db(backup, db)
    restored = open_node(cn.paths.root, clock=clock)
    fed.nodes["CN"].node = restored
    clock.advance(60)  # so that the entries it logs now differ from the lost ones
    try:
        grow(fed, "CN", 2)
        made, reports = checkpoint_round(restored)
        assert first.size < made.size < second.size
        (report,) = reports
        assert not report.ok and "rollback" in report.error
        (entry,) = refusals(fed, "RU")
        assert entry["reason"] == "rollback" and entry["size"] == made.size
        assert entry["cosigned_size"] == second.size

        # Later, past what RU saw: the rewritten history cannot be shown to
        # extend it, so RU refuses it as a fork.
        grow(fed, "CN", 10)
        made, reports = checkpoint_round(restored)
        assert made.size > second.size and "fork" in reports[0].error
        assert [e["reason"] for e in refusals(fed, "RU")] == ["rollback", "fork"]
    finally:
        restored.close()


def test_a_log_smaller_than_its_checkpoint_is_an_internal_error(
    federation: FederationMaker,
) -> None:
    fed = federation(["CN", "RU"])
    cn = fed["CN"].node
    row = make_checkpoint(cn)
    with cn.store.write() as tx:
        tx.add_checkpoint(CheckpointRow(row.size + 5, bytes(32), row.note, 0))
    with pytest.raises(InternalError, match="rolled back"):
        make_checkpoint(cn)


def test_a_stale_old_size_gets_the_witness_size_and_a_retry(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    exchange_small(fed)
    cn = fed["CN"].node
    first = make_checkpoint(cn)
    # RU cosigns without CN keeping the cosignature (as after a crash in between).
    response = add_checkpoint_rpc(fed, "CN", "RU", first.note, 0, [])
    assert response.WhichOneof("result") == "cosignature"
    grow(fed, "CN", 3)
    second = make_checkpoint(cn)
    stale = add_checkpoint_rpc(fed, "CN", "RU", second.note, 0, [])
    assert stale.conflict_size == first.size
    # The client takes the witness's size and proves consistency from it.
    report = request_cosignature(cn, peer_row(cn, "RU"), second)
    assert report.ok
    with cn.store.read() as tx:
        assert [c.witness for c in tx.cosignatures(second.size)] == ["RU"]


def test_a_witness_checks_who_signed(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn = fed["CN"].node
    row = make_checkpoint(cn)
    stranger = SigningKey.from_seed(b"\x07" * 32)
    cases = [
        (forged("CN", stranger, row.size, row.root).note, "UNAUTHENTICATED"),  # not CN's key
        (forged("XX", stranger, 1, bytes(32)).note, "UNAUTHENTICATED"),  # not a trusted peer
        (forged("RU", fed["RU"].node.signing_key, 1, bytes(32)).note, "INVALID_ARGUMENT"),  # own
        (b"example.com/log\n1\n" + bytes(10), "INVALID_ARGUMENT"),  # not a wlx checkpoint
        (row.note + b"x" * 20_000, "INVALID_ARGUMENT"),  # too large
    ]
    for note, code in cases:
        with pytest.raises(grpc.RpcError) as err:
            add_checkpoint_rpc(fed, "CN", "RU", note, 0, [])
        assert err.value.code().name == code, (note[:40], err.value.details())
    with pytest.raises(grpc.RpcError) as err:
        add_checkpoint_rpc(fed, "CN", "RU", row.note, 0, [bytes(32)] * 65)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refusals(fed, "RU") == []


def exchange_small(fed: Federation) -> None:
    ownlist.import_records(fed["CN"].node, [record("CN-1"), record("CN-2")])
    fed.sync_all()


# ------------------------------------------------------------------ the pure decision


def _row(size: int, root: bytes) -> WitnessedRow:
    return WitnessedRow("CN", size, root, b"note", 0)


@pytest.mark.parametrize(
    ("old", "size", "leaves_from", "latest", "same", "expected"),
    [
        (0, 4, "a", None, None, witness.Cosign(record=True)),  # first checkpoint
        (3, 4, "a", 3, None, witness.Cosign(record=True)),  # consistent
        (3, 3, "a", 3, 3, witness.Cosign(record=False)),  # the same again
        (0, 4, "a", 3, None, witness.Conflict(3)),  # stale old size
        (5, 4, "a", 3, None, witness.Conflict(3)),  # old size beyond
        (3, 4, "b", 3, None, RejectReason.FORK),  # another tree
        (3, 3, "b", 3, 3, RejectReason.FORK),  # same size, another root
        (5, 4, "a", 5, None, RejectReason.ROLLBACK),  # smaller than cosigned
    ],
)
def test_decide(
    old: int,
    size: int,
    leaves_from: str,
    latest: int | None,
    same: int | None,
    expected: object,
) -> None:
    a = [merkle.leaf_hash(b"a%d" % i) for i in range(8)]
    b = [merkle.leaf_hash(b"b%d" % i) for i in range(8)]
    leaves = a if leaves_from == "a" else b
    checkpoint = Checkpoint("wlx.exchange/CN", size, merkle.root(leaves, size))
    proof = merkle.consistency_proof(leaves, min(old, size), size) if latest else []
    decision = witness.decide(
        checkpoint,
        old,
        proof,
        latest=_row(latest, merkle.root(a, latest)) if latest is not None else None,
        same_size=_row(same, merkle.root(a, same)) if same is not None else None,
    )
    if isinstance(expected, RejectReason):
        assert isinstance(decision, witness.Refuse) and decision.reason is expected
    else:
        assert decision == expected


def test_concurrent_forks_get_one_cosignature(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = federation(["CN", "RU"], storage=backend)
    exchange_small(fed)
    cn, ru = fed["CN"].node, fed["RU"].node
    row, _ = checkpoint_round(cn)
    with cn.store.read() as tx:
        leaves = [merkle.leaf_hash(e) for _, e in tx.audit_entries(0, row.size)]

    def fork(i: int) -> tuple[bytes, list[bytes]]:
        # Eight different one-entry extensions of the cosigned tree, each with a valid proof.
        tree = [*leaves, merkle.leaf_hash(b"fork %d" % i)]
        note = forged("CN", cn.signing_key, row.size + 1, merkle.root(tree)).note
        return note, merkle.consistency_proof(tree, row.size)

    def attempt(i: int) -> str:
        note, proof = fork(i)
        try:
            result = witness.add_checkpoint(ru, note, row.size, proof, submitter="CN")
        except Rejection as exc:
            return exc.reason.value
        return "cosigned" if isinstance(result, witness.Cosigned) else "conflict"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    # One extension wins; every other is then another root for a size RU has
    # cosigned: a fork, refused and logged.
    assert sorted(results) == ["cosigned"] + ["fork"] * 7
    assert len(refusals(fed, "RU")) == 7


def test_the_serve_loop_checkpoints_and_gets_cosignatures(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    exchange_small(fed)
    loop = SyncLoop(fed["CN"].node, interval=3600)
    loop._round()  # one round, in this thread
    with fed["CN"].node.store.read() as tx:
        latest = tx.latest_checkpoint()
        assert latest is not None and latest.size == exchange_log.size(tx)
        assert [c.witness for c in tx.cosignatures(latest.size)] == ["RU"]


def test_a_peer_cannot_relay_another_logs_old_checkpoint(federation: FederationMaker) -> None:
    """AR relays CN's first checkpoint to RU after RU cosigned a later one: a
    "rollback" that CN never sent.  RU refuses it as a relay and records no
    refusal against CN (issue 8, item 6); CN's own submissions still work."""
    from test_rejections import dump

    fed = federation(["CN", "RU", "AR"])
    exchange_small(fed)
    cn, ru, ar = fed["CN"].node, fed["RU"].node, fed["AR"].node
    first, _ = checkpoint_round(cn)
    grow(fed, "CN", 3)
    second, reports = checkpoint_round(cn)
    assert all(r.ok for r in reports)
    card = ar.trusted("RU")
    assert card is not None
    before = dump(ru)
    for note, old_size in ((first.note, second.size), (second.note, second.size)):
        with pytest.raises(grpc.RpcError) as refused:
            send_add_checkpoint(
                ar,
                card,
                fed["RU"].address,
                audit_pb2.AddCheckpointRequest(checkpoint=note, old_size=old_size),
            )
        assert "may not submit checkpoints of CN" in str(refused.value.details())
    assert dump(ru) == before
    assert refusals(fed, "RU") == []
    grow(fed, "CN", 1)
    third, reports = checkpoint_round(cn)
    assert third.size > second.size and all(r.ok for r in reports)


@pytest.mark.parametrize(
    ("log_node", "submitter", "refused"),
    [("CN", "CN", False), ("CN", None, False), ("CN", "AR", True), ("CN", "", True)],
)
def test_only_the_logs_node_submits(log_node: str, submitter: str | None, refused: bool) -> None:
    from wlx.node.protocol.witness_rules import check_submitter

    if refused:
        with pytest.raises(Rejection) as err:
            check_submitter(log_node, submitter)
        assert err.value.reason is RejectReason.WRONG_SENDER
    else:
        check_submitter(log_node, submitter)
