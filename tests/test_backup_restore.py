"""``wlx backup`` / ``wlx restore`` (issue 9, item 5): a restored node is
declared in its exchange log, its peers resync in new epochs without
rejecting anything, and they drop listings the restored node no longer has.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.nodes import Federation, FederationMaker, record

from wlx.crypto import merkle
from wlx.crypto.checkpoint import Checkpoint
from wlx.node import backup
from wlx.node.audit import exchange_log as audit
from wlx.node.audit import witness
from wlx.node.audit.checkpoints import make_checkpoint
from wlx.node.core.errors import RejectReason
from wlx.node.core.node import Node
from wlx.node.outgoing import ownlist
from wlx.node.rpc.cosign import checkpoint_round, send_add_checkpoint
from wlx.node.rpc.server import build_server
from wlx.node.store.base import RejectionRow, WitnessedRow
from wlx.node.trust import lifecycle
from wlx.v1 import audit_pb2


def rejections(node: Node) -> list[RejectionRow]:
    with node.store.read() as tx:
        return tx.list_rejections(limit=1000)


def listings(node: Node, origin: str) -> int:
    with node.store.read() as tx:
        return tx.count_entries(origin)


def epoch_of(node: Node, origin: str) -> int:
    with node.store.read() as tx:
        state = tx.get_inbound(origin)
    assert state is not None
    return state.epoch


def kinds(node: Node) -> list[str]:
    with node.store.read() as tx:
        return [json.loads(e)["kind"] for _, e in tx.audit_entries(0, audit.size(tx))]


@pytest.fixture
def fed(federation: FederationMaker) -> Federation:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record(f"CN-{i}") for i in range(1, 4)])
    fed.sync_all()
    return fed


def test_a_backup_is_private_and_complete(fed: Federation, tmp_path: Path) -> None:
    out = tmp_path / "bk"
    info = backup.backup(fed["CN"].node, out)
    assert info.node_id == "CN" and info.backend == "sqlite"
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {str(p.relative_to(out)) for p in files}
    assert {"node.toml", "card.json", "store.db", "backup.json", "keys/identity.pem"} <= names
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    with pytest.raises(Exception, match="exists already"):
        backup.backup(fed["CN"].node, out)


def _restore_and_serve(fed: Federation, source: Path, target: Path) -> Iterator[Node]:
    """Stop CN, restore it from ``source`` into ``target``, serve it; RU learns
    the new address (as after moving a node to a new machine)."""
    fed["CN"].server.stop(grace=None).wait()
    restored = backup.restore(source, target, clock=fed["CN"].node.clock)
    server, port = build_server(restored, "127.0.0.1:0")
    server.start()
    fed.nodes["CN"] = dataclasses.replace(fed["CN"], node=restored, server=server, port=port)
    ru = fed["RU"].node
    with ru.store.write() as tx:
        row = tx.get_peer("CN")
        assert row is not None
        tx.put_peer(dataclasses.replace(row, address=f"127.0.0.1:{port}"))
    try:
        yield restored
    finally:
        server.stop(grace=None)
        restored.close()


def test_peers_resync_after_a_restore_without_any_rejection(
    fed: Federation, tmp_path: Path
) -> None:
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(ru, [record("RU-1")])
    fed.sync_all()
    backup.backup(cn, tmp_path / "bk")
    # After the backup: more records, a removal, a new epoch, all synced by RU;
    # RU's list grows too, and CN syncs it (and acknowledges it).
    ownlist.import_records(ru, [record("RU-2"), record("RU-3")])
    ownlist.import_records(cn, [record(f"CN-{i}") for i in range(4, 9)])
    ownlist.remove_record(cn, "CN-1")
    fed.sync_all()
    lifecycle.new_epoch(cn, "RU")
    ownlist.import_records(cn, [record("CN-9")])
    fed.sync_all()
    assert listings(ru, "CN") == 8
    seen_epoch = epoch_of(ru, "CN")
    before = len(rejections(ru))

    with contextlib.contextmanager(_restore_and_serve)(
        fed, tmp_path / "bk", tmp_path / "cn-restored"
    ) as restored:
        _check_recovery(fed, restored, seen_epoch, before)


def _check_recovery(fed: Federation, restored: Node, seen_epoch: int, before: int) -> None:
    ru = fed["RU"].node
    assert "node.restored" in kinds(restored)
    report = fed.sync("RU", "CN")
    assert report.ok, report.error
    assert epoch_of(ru, "CN") > seen_epoch
    assert listings(ru, "CN") == 3  # what the restored node has, nothing more
    assert len(rejections(ru)) == before
    # And both directions keep working.
    ownlist.import_records(restored, [record("CN-10")])
    assert fed.sync("RU", "CN").ok and listings(ru, "CN") == 4
    assert fed.sync("CN", "RU").ok
    assert listings(restored, "RU") == 3  # the restored node catches up with RU's list
    assert len(rejections(ru)) == before and rejections(restored) == []


def test_restore_refuses_a_non_backup_and_a_used_directory(fed: Federation, tmp_path: Path) -> None:
    from wlx.node.core.errors import AlreadyExists, NotFound

    with pytest.raises(NotFound):
        backup.restore(tmp_path, tmp_path / "x")
    backup.backup(fed["CN"].node, tmp_path / "bk")
    used = tmp_path / "used"
    used.mkdir()
    (used / "f").write_text("x")
    with pytest.raises(AlreadyExists):
        backup.restore(tmp_path / "bk", used)
    assert (used / "f").read_text() == "x"


# ------------------------------------------------------------ witnesses


def test_witnesses_accept_a_declared_restore_once_and_log_it(
    fed: Federation, tmp_path: Path
) -> None:
    cn, ru = fed["CN"].node, fed["RU"].node
    _, reports = checkpoint_round(cn)
    assert all(r.ok for r in reports), reports
    backup.backup(cn, tmp_path / "bk")
    ownlist.import_records(cn, [record(f"CN-{i}") for i in range(4, 9)])
    _, reports = checkpoint_round(cn)
    assert all(r.ok for r in reports), reports
    with ru.store.read() as tx:
        abandoned = tx.witnessed("CN")
    assert abandoned is not None

    with contextlib.contextmanager(_restore_and_serve)(
        fed, tmp_path / "bk", tmp_path / "cn-restored"
    ) as restored:
        made, reports = checkpoint_round(restored)
        assert all(r.ok for r in reports), reports
        [event] = [e for e in entries(ru) if e["kind"] == "witness.restore"]
        assert event["origin"] == "CN" and event["abandoned_size"] == abandoned.size
        assert json.loads(str(event["declaration"]))["kind"] == "node.restored"
        with ru.store.read() as tx:
            latest = tx.witnessed("CN")
        assert latest is not None and latest.size == made.size
        # Later checkpoints extend the restored log as usual.
        ownlist.import_records(restored, [record("CN-20")])
        again, reports = checkpoint_round(restored)
        assert all(r.ok for r in reports) and again.size > made.size, reports
        assert "witness.refused" not in {e["kind"] for e in entries(ru)}
        # The declaration cannot be used a second time to abandon history.
        ownlist.import_records(restored, [record("CN-21")])
        newer = make_checkpoint(restored)
        with restored.store.read() as tx:
            index = int(tx.get_meta(backup.RESTORED_ENTRY_META) or b"0")
            [(_, entry)] = tx.audit_entries(index, index + 1)
            claim = audit_pb2.RestoreDeclaration(
                entry=entry,
                index=index,
                inclusion_proof=audit.inclusion_proof(tx, index, newer.size),
            )
        card = restored.trusted("RU")
        assert card is not None
        response = send_add_checkpoint(
            restored,
            card,
            fed["RU"].address,
            audit_pb2.AddCheckpointRequest(checkpoint=newer.note, old_size=0, restore=claim),
        )
        assert response.WhichOneof("result") == "conflict_size"
        assert response.conflict_size == again.size
        with ru.store.read() as tx:
            assert tx.witnessed("CN", again.size) is not None  # nothing was abandoned


def entries(node: Node) -> list[dict[str, object]]:
    with node.store.read() as tx:
        return [json.loads(e) for _, e in tx.audit_entries(0, audit.size(tx))]


def _leaves(n: int, tag: bytes = b"") -> list[bytes]:
    return [merkle.leaf_hash(tag + bytes([i])) for i in range(n)]


def _row(leaves: list[bytes], size: int) -> WitnessedRow:
    return WitnessedRow("CN", size, merkle.root(leaves, size), b"note", 0)


def _checkpoint(leaves: list[bytes]) -> Checkpoint:
    return Checkpoint("wlx.exchange/CN", len(leaves), merkle.root(leaves))


RESTORED = _leaves(4) + _leaves(3, b"new")  # 4 entries kept, declaration at 4
ABANDONED = _leaves(4) + _leaves(6, b"old")


@pytest.mark.parametrize(
    ("old_size", "declared_at", "proof_from", "same", "expected"),
    [
        (2, 4, 2, None, "restore"),  # extends what was cosigned before the backup
        (0, 4, 0, None, "restore"),  # nothing cosigned before the backup
        (2, 4, 3, None, "fork"),  # proof that does not show it
        (5, 4, 5, None, "rollback"),  # continues from after the declaration
        (2, 4, 2, "same", "cosign"),  # already cosigned, same root (a retry)
        (10, 4, 10, None, "ordinary"),  # the witness's latest: an ordinary decision
    ],
)
def test_decide_restore_table(
    old_size: int, declared_at: int, proof_from: int, same: str | None, expected: str
) -> None:
    checkpoint = _checkpoint(RESTORED)
    latest = _row(ABANDONED, len(ABANDONED))
    proof = merkle.consistency_proof(RESTORED, proof_from) if proof_from <= len(RESTORED) else []
    at_old = _row(ABANDONED, old_size) if 0 < old_size <= len(ABANDONED) else None
    decision = witness.decide_restore(
        checkpoint,
        old_size,
        proof,
        declared_at=declared_at,
        latest=latest,
        same_size=_row(RESTORED, len(RESTORED)) if same else None,
        at_old=at_old,
    )
    match expected:
        case "restore":
            assert decision == witness.Restore(abandoned=latest)
        case "fork":
            assert isinstance(decision, witness.Refuse)
            assert decision.reason is RejectReason.FORK
        case "rollback":
            assert isinstance(decision, witness.Refuse)
            assert decision.reason is RejectReason.ROLLBACK
        case "cosign":
            assert decision == witness.Cosign(record=False)
        case "ordinary":
            # From the latest size: the ordinary rule (a smaller size is a rollback).
            assert isinstance(decision, witness.Refuse)
            assert decision.reason is RejectReason.ROLLBACK


def test_backup_and_restore_through_the_cli(tmp_path: Path) -> None:
    from test_cli import fails, init, ok, rec, write_jsonl

    cn = init(tmp_path / "cn", "CN")
    ok("records", "import", cn, write_jsonl(tmp_path / "l.jsonl", [rec("CN-1"), rec("CN-2")]))
    assert "backed up node CN" in ok("backup", cn, tmp_path / "bk")
    fails("backup", cn, tmp_path / "bk", match="exists already")
    fails("restore", tmp_path / "bk", cn, match="not empty; move it aside")
    fails("restore", tmp_path / "nothing", tmp_path / "x", match="is not a wlx backup")
    assert "restored node CN" in ok("restore", tmp_path / "bk", tmp_path / "cn2")
    assert ok("records", "count", tmp_path / "cn2").strip() == "2"
    assert stat.S_IMODE((tmp_path / "cn2" / "keys" / "identity.pem").stat().st_mode) == 0o600
