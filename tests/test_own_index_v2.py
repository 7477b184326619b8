"""The node's index of its own list in protocol 2 (docs/protocol.md §4.3).

* A new node's own index, and any rebuilt one, is protocol 2: each listing's
  hit data sealed once (entries.sealed), a 17-byte wrap per token row; an
  import stages and publishes it so, and officers' lookups open it, after an
  import, an update import and an import completed after an interruption.
* An own index built in protocol 1 (a store from before) keeps answering,
  imports into it stay protocol 1, and it moves to protocol 2 at its next
  rebuild: ``wlx serve``'s start (``lifecycle.migrate_normalisation``)
  rebuilds it once, then leaves it alone.
* An import a crash left published with an earlier version's staging
  (listings packed without their protocol byte) is completed from the
  staged bodies.
"""

from __future__ import annotations

import json

from support.nodes import NodeMaker, StorageFactory, record
from test_rejections import query_rows

from wlx.node.core import normalisation
from wlx.node.core.node import Node
from wlx.node.core.records import Record
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import bulk_import, ownlist
from wlx.node.store.sql import SqlTx
from wlx.node.trust import lifecycle


def person(n: int, name: str = "Own Person") -> Record:
    return record(
        f"CN-{n:04d}",
        names=[f"{name} {n:04d}"],
        documents=[{"type": "P", "country": "CHN", "number": f"O{n:08d}"}],
    )


def found(node: Node, n: int) -> list[tuple[str, str, bool]]:
    query = Query(documents=(("P", "CHN", f"O{n:08d}"),))
    return [(h.ref, h.category, h.suspended) for h in Lookup(node).check(query)]


def own_rows(node: Node) -> tuple[set[int], set[int]]:
    """Lengths of the own index's entries.sealed and tokens.sealed."""
    own = f"origin = '{node.node_id}' OR origin LIKE '{node.node_id}#%'"  # its slots
    entries = query_rows(node, f"SELECT sealed FROM entries WHERE {own}")
    tokens = query_rows(node, f"SELECT sealed FROM tokens WHERE {own}")
    return {len(bytes(r[0])) for r in entries}, {len(bytes(r[0])) for r in tokens}


def own_protocol(node: Node) -> int:
    with node.store.read() as tx:
        own = tx.get_inbound(node.node_id)
        assert own is not None
        return normalisation.protocol_of_epoch(tx, node.node_id, node.node_id, own.epoch)


def make_protocol_1(node: Node) -> None:
    """Make ``node`` a store from before: its own epoch records no protocol."""
    with node.store.write() as tx:
        assert isinstance(tx, SqlTx)
        tx._run("DELETE FROM meta WHERE key LIKE ?", ("protocol/%",))
    assert own_protocol(node) == 1


def test_imports_index_the_own_list_in_protocol_2(
    make_node: NodeMaker, backend: StorageFactory
) -> None:
    cn = make_node("CN", backend)
    assert own_protocol(cn) == 2 and cn.own_epoch_key().protocol == 2
    bulk_import.import_stream(cn, enumerate([person(n) for n in range(1, 6)], start=1), chunk=2)
    assert own_rows(cn) == ({12 + 256 + 16}, {17})
    assert [found(cn, n) for n in range(1, 6)] == [
        [(f"CN-{n:04d}", "wanted", False)] for n in range(1, 6)
    ]
    again = [person(n, "Renamed Person") if n == 2 else person(n) for n in range(1, 8)]
    result = bulk_import.import_stream(cn, enumerate(again, start=1), chunk=3)
    assert result == ownlist.ImportResult(2, 1, 4)
    ownlist.suspend_record(cn, "CN-0003", suspended=True)
    ownlist.remove_record(cn, "CN-0004")
    assert own_rows(cn) == ({12 + 256 + 16}, {17})
    assert found(cn, 3) == [("CN-0003", "wanted", True)]
    assert found(cn, 4) == []
    assert [len(found(cn, n)) for n in (1, 2, 5, 6, 7)] == [1] * 5
    renamed = Query(names=("Renamed Person 0002",), dob="1980-05-17")
    assert [h.ref for h in Lookup(cn).check(renamed)] == ["CN-0002"]
    assert Lookup(cn).check(Query(names=("Own Person 0002",), dob="1980-05-17")) == ()


def test_an_import_completed_after_an_interruption_is_protocol_2(
    make_node: NodeMaker, backend: StorageFactory
) -> None:
    cn = make_node("CN", backend)
    ownlist.import_records(cn, [person(n) for n in range(1, 4)])
    staged = _stage_published(cn, [person(n, "Later Person") for n in range(1, 7)])
    assert json.loads(staged)["staging"] == bulk_import.STAGING
    assert bulk_import.resume(cn) == ownlist.ImportResult(3, 3, 0)
    assert own_rows(cn) == ({12 + 256 + 16}, {17})
    assert [len(found(cn, n)) for n in range(1, 7)] == [1] * 6
    with cn.store.read() as tx:
        assert [r.version for r in tx.iter_records()] == [2, 2, 2, 1, 1, 1]


def test_an_own_index_built_in_protocol_1_answers_then_moves_to_2(
    make_node: NodeMaker, backend: StorageFactory
) -> None:
    cn = make_node("CN", backend)
    make_protocol_1(cn)
    ownlist.import_records(cn, [person(n) for n in range(1, 5)])
    ownlist.import_records(cn, [person(n, "Second Person") for n in range(3, 7)])
    entries, tokens = own_rows(cn)
    assert entries == {0} and tokens != {17}  # protocol 1: hit data per token
    assert [len(found(cn, n)) for n in range(1, 7)] == [1] * 6
    epoch = cn.own_epoch_key().epoch
    assert lifecycle.migrate_normalisation(cn) == []
    assert own_protocol(cn) == 2 and cn.own_epoch_key().epoch == epoch + 1
    lifecycle.migrate_normalisation(cn)
    assert cn.own_epoch_key().epoch == epoch + 1  # once
    assert own_rows(cn) == ({12 + 256 + 16}, {17})
    assert [len(found(cn, n)) for n in range(1, 7)] == [1] * 6
    ownlist.import_records(cn, [person(n) for n in range(6, 9)])
    assert own_rows(cn) == ({12 + 256 + 16}, {17})
    assert [len(found(cn, n)) for n in range(1, 9)] == [1] * 8


def test_a_published_import_staged_by_an_earlier_version_is_completed(
    make_node: NodeMaker, backend: StorageFactory
) -> None:
    cn = make_node("CN", backend)
    make_protocol_1(cn)
    ownlist.import_records(cn, [person(n) for n in range(1, 4)])
    raw = json.loads(_stage_published(cn, [person(n, "Later Person") for n in range(1, 6)]))
    del raw["staging"]  # as an earlier version wrote it
    with cn.store.write() as tx:
        assert isinstance(tx, SqlTx)
        tx.set_meta(bulk_import.STATE_META, json.dumps(raw).encode())
        # Its packing: protocol-1 tokens without the leading protocol byte.
        rows = tx._all("SELECT id, tokens FROM import_records WHERE kind <> 'same'")
        assert rows and all(bytes(packed)[:1] == b"\x01" for _, packed in rows)
        for record_id, packed in rows:
            tx._run(
                "UPDATE import_records SET tokens = ? WHERE id = ?", (bytes(packed)[1:], record_id)
            )
    assert bulk_import.resume(cn) == ownlist.ImportResult(2, 3, 0)
    assert [len(found(cn, n)) for n in range(1, 6)] == [1] * 5
    later = Query(names=("Later Person 0001",), dob="1980-05-17")
    assert [h.ref for h in Lookup(cn).check(later)] == ["CN-0001"]
    with cn.store.read() as tx:
        assert [r.version for r in tx.iter_records()] == [2, 2, 2, 1, 1]
        assert tx.count_entries(cn.node_id) == 5


def _stage_published(node: Node, records: list[Record]) -> bytes:
    """Stage ``records`` and mark the import published, as a crash just
    after the switch leaves it; returns the import's state."""
    import_id = node.rng(16)
    key = node.own_epoch_key()
    result = bulk_import._stage(node, import_id, key, enumerate(records, start=1), 2)
    state = bulk_import._State(import_id, True, key.epoch, result)
    bulk_import._put_state(node, state)
    return state.to_bytes()
