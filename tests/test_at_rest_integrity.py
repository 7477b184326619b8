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

from wlx.crypto.card import NODE_ID
from wlx.crypto.tokens import MAX_LISTING_HIT_DATA, PAD2_BLOCK, pad2
from wlx.node.core.errors import InternalError
from wlx.node.core.records import RecordError
from wlx.node.directory import open_node
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import ownlist
from wlx.node.protocol import codec
from wlx.node.protocol.messages import HitData
from wlx.node.trust import lifecycle

LONG_REF = "DE/BKA/SIS-II/2024/000123456-"
LONG_TERMS = {
    "category": "organised-crime-money-laundering",
    "action": "refuse-entry-and-notify-the-issuing-authority",
}


def test_the_largest_valid_listing_fits_one_protocol_2_bucket() -> None:
    """Every field of hit data at its limit (node id, record limits, the
    largest version): padded, still one bucket, so no listing's sealed
    length differs from another's."""
    longest = record("R" * 64, category="c" * 64, action="a" * 64)
    assert NODE_ID.fullmatch("N" * 32) and not NODE_ID.fullmatch("N" * 33)
    with pytest.raises(RecordError):
        record("R" * 65)
    with pytest.raises(RecordError):
        record("CN-1", category="c" * 65)
    sizes = []
    for suspended in (False, True):
        hit = HitData(
            origin="N" * 32,
            ref=longest.id,
            category=longest.category,
            action="" if suspended else longest.action,
            expires=longest.expires,
            matched_on="",
            version=2**64 - 1,
            suspended=suspended,
        )
        sizes.append(len(codec.encode_hit(hit)))
        assert len(pad2(codec.encode_hit(hit))) == PAD2_BLOCK
    assert max(sizes) == MAX_LISTING_HIT_DATA < PAD2_BLOCK


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
            # ref + category + action of 110 characters, active and suspended
            record(LONG_REF + "A", names=["Long One"], **LONG_TERMS),
            record(LONG_REF + "B", names=["Long Two"], **LONG_TERMS),
        ],
    )
    ownlist.suspend_record(cn, "CN-4", suspended=True)
    ownlist.suspend_record(cn, LONG_REF + "B", suspended=True)
    fed.sync_all()
    ru = fed["RU"].node
    # Protocol 2 (§4.3): each listing sealed once, in one 256-byte bucket
    # (every valid listing's hit data fits it); each token row holds a
    # 17-byte wrap.
    lengths = {len(bytes(r[0])) for r in query_rows(ru, "SELECT sealed FROM entries")}
    assert lengths == {12 + 256 + 16}
    assert {len(bytes(r[0])) for r in query_rows(ru, "SELECT sealed FROM tokens")} == {17}
    # The origin's index of its own list, made by the import: the same.
    assert {len(bytes(r[0])) for r in query_rows(cn, "SELECT sealed FROM entries")} == {
        12 + 256 + 16
    }
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
