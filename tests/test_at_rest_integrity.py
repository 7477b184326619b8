"""What sizes and clear columns give away, or let change (issue 8, item 9):
sealed hit data has one length whatever it holds, and the origin's clear
columns (version, suspension, expiry) are bound to the encrypted record."""

from __future__ import annotations

import os
import stat
from dataclasses import replace

import pytest
from support.nodes import FakeClock, FederationMaker, NodeMaker, StorageFactory, record
from test_rejections import execute, query_rows

from wlx.node.core.errors import InternalError
from wlx.node.directory import open_node
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import ownlist
from wlx.node.trust import lifecycle


def test_sealed_hit_data_on_a_receivers_disk_has_one_length(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = federation(["CN", "RU"], storage=backend)
    cn = fed["CN"].node
    ownlist.import_records(
        cn,
        [
            record("CN-1"),
            record("CN-2", category="missing", action="report"),
            record("CN-3", category="stolen-document", action="seize-the-document-and-report"),
            record("CN-4", category="terrorism", action="refuse-entry"),
        ],
    )
    ownlist.suspend_record(cn, "CN-4", suspended=True)
    fed.sync_all()
    ru = fed["RU"].node
    # Protocol 2 (§4.3): each listing sealed once, in one 128-byte bucket;
    # each token row holds a 17-byte wrap.
    lengths = {len(bytes(r[0])) for r in query_rows(ru, "SELECT sealed FROM entries")}
    assert lengths == {12 + 128 + 16}
    assert {len(bytes(r[0])) for r in query_rows(ru, "SELECT sealed FROM tokens")} == {17}
    # The origin's index of its own list, made by the import: the same.
    assert {len(bytes(r[0])) for r in query_rows(cn, "SELECT sealed FROM entries")} == {156}
    assert {len(bytes(r[0])) for r in query_rows(cn, "SELECT sealed FROM tokens")} == {17}


@pytest.mark.parametrize(
    ("column", "value"),
    [("suspended", 0), ("version", 99), ("expires", "2199-12-31")],
)
def test_a_database_administrator_cannot_unsuspend_or_extend_a_listing(
    federation: FederationMaker, column: str, value: object
) -> None:
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1", expires="2098-12-31"), record("CN-2")])
    ownlist.suspend_record(cn, "CN-1", suspended=True)
    fed.sync_all()
    before = query_rows(ru, "SELECT origin, token, handle, sealed FROM tokens")
    execute(cn, f"UPDATE records SET {column} = ? WHERE id = ?", (value, "CN-1"))
    # The origin refuses to use the record: it does not open with the changed column.
    with cn.store.read() as tx:
        stored = tx.get_record("CN-1")
    assert stored is not None
    with pytest.raises(InternalError, match="does not open"):
        ownlist.load_record(cn, stored)
    # Nothing of the change reaches the peer, even when the origin re-sends its
    # whole list (a new epoch: RU resyncs by snapshot).
    lifecycle.new_epoch(cn, "RU")
    assert not fed.sync("RU", "CN").ok
    assert query_rows(ru, "SELECT origin, token, handle, sealed FROM tokens") == before
    hits = Lookup(ru).check(Query(names=("Test Person CN 1",), dob="1980-05-17"))
    assert [(h.ref, h.suspended, h.expires) for h in hits] == [("CN-1", True, "2098-12-31")]


def test_the_database_files_are_private(make_node: NodeMaker, clock: FakeClock) -> None:
    """Issue 8, item 14: wlx.db and its -wal and -shm files are 0600, like the
    keys, whatever the umask; an older, looser file is tightened on open."""
    old_umask = os.umask(0o022)
    try:
        node = make_node("CN")
        ownlist.import_records(node, [record("CN-1")])
        db = node.paths.root / "wlx.db"
        files = [db, db.with_name("wlx.db-wal"), db.with_name("wlx.db-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
            f.name: 0o600 for f in files
        }
        node.close()
        for f in files:
            if f.exists():
                f.chmod(0o644)
        reopened = open_node(node.paths.root, clock=clock)
        try:
            ownlist.import_records(reopened, [record("CN-2")])
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files if f.exists()}
            assert modes and set(modes.values()) == {0o600}, modes
        finally:
            reopened.close()
    finally:
        os.umask(old_umask)


def test_a_store_from_before_is_upgraded_once(make_node: NodeMaker, clock: FakeClock) -> None:
    """Records sealed under the old context (``record:{id}``) are re-sealed,
    bound to their columns, the first time the node opens; then never again."""
    node = make_node("CN")
    ownlist.import_records(node, [record("CN-1"), record("CN-2")])
    ownlist.suspend_record(node, "CN-2", suspended=True)
    with node.store.write() as tx:  # what a store made before this version holds
        for stored in list(tx.iter_records()):
            body = ownlist.load_record(node, stored).to_json()
            tx.put_record(replace(stored, body=node.seal_at_rest(body, f"record:{stored.id}")))
        tx.set_meta(ownlist.RECORD_CONTEXT_META, b"")
    node.close()
    reopened = open_node(node.paths.root, clock=clock)
    try:
        with reopened.store.read() as tx:
            rows = {r.id: r for r in tx.iter_records()}
            assert tx.get_meta(ownlist.RECORD_CONTEXT_META) == ownlist.RECORD_CONTEXT_VERSION
        assert ownlist.load_record(reopened, rows["CN-2"]).id == "CN-2"
        assert rows["CN-2"].suspended
        assert ownlist.upgrade_record_contexts(reopened) == 0
    finally:
        reopened.close()
