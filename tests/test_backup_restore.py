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
from conftest import Federation, FederationMaker, record

from wlx.node import backup, lifecycle, ownlist
from wlx.node.app import Node
from wlx.node.audit import log as audit
from wlx.node.server import build_server
from wlx.node.store.base import RejectionRow


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
    backup.backup(cn, tmp_path / "bk")
    # After the backup: more records, a removal, a new epoch, all synced by RU.
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
    assert len(rejections(ru)) == before and rejections(restored) == []


def test_restore_refuses_a_non_backup_and_a_used_directory(fed: Federation, tmp_path: Path) -> None:
    from wlx.node.errors import AlreadyExists, NotFound

    with pytest.raises(NotFound):
        backup.restore(tmp_path, tmp_path / "x")
    backup.backup(fed["CN"].node, tmp_path / "bk")
    used = tmp_path / "used"
    used.mkdir()
    (used / "f").write_text("x")
    with pytest.raises(AlreadyExists):
        backup.restore(tmp_path / "bk", used)
    assert (used / "f").read_text() == "x"
