"""End to end over real gRPC servers: sync, lookups, updates, removals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from support.nodes import FederationMaker, StorageFactory, record

from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import ownlist
from wlx.node.store.base import TokenRow
from wlx.node.store.sql import SqlTx


def doc_query(country: str, number: str) -> Query:
    return Query(documents=(("P", country, number),))


def test_sync_then_lookup_hits_on_the_peers_list(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = federation(["CN", "RU", "AR"], storage=backend)
    wanted = record("CN-1", documents=[{"type": "P", "country": "CHN", "number": "E1234567"}])
    ownlist.import_records(fed["CN"].node, [wanted, record("CN-2")])
    ownlist.import_records(fed["AR"].node, [record("AR-1", names=["Juan Pérez"], dob="1970")])
    fed.sync_all()

    hits = Lookup(fed["RU"].node).check(doc_query("CHN", "e123-4567"))
    assert [(h.origin, h.ref, h.matched_on) for h in hits] == [("CN", "CN-1", "document")]
    assert hits[0].category == "wanted" and hits[0].action == "arrest"

    by_name = Lookup(fed["CN"].node).check(Query(names=("PEREZ juan",), dob="1970-02-03"))
    # Listed as "Juan Pérez": the other part order is a reordered match (wlx-norm-2).
    assert [(h.origin, h.ref, h.matched_on, h.strength) for h in by_name] == [
        ("AR", "AR-1", "name+dob-year (reordered)", "weak")
    ]

    assert Lookup(fed["RU"].node).check(doc_query("CHN", "E7654321")) == ()


def test_a_removal_reaches_the_peers(federation: FederationMaker, backend: StorageFactory) -> None:
    fed = federation(["CN", "RU"], storage=backend)
    ownlist.import_records(fed["CN"].node, [record("CN-1"), record("CN-2")])
    fed.sync_all()
    query = Query(names=("Test Person CN 1",), dob="1980-05-17")
    assert len(Lookup(fed["RU"].node).check(query)) == 1

    ownlist.remove_record(fed["CN"].node, "CN-1")
    report = fed.sync("RU", "CN")
    assert report.ok and report.batches == 1 and report.ops == 1
    assert Lookup(fed["RU"].node).check(query) == ()
    with fed["RU"].node.store.read() as tx:
        assert tx.count_entries("CN") == 1


def test_an_update_replaces_the_hit_data(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    ownlist.import_records(fed["CN"].node, [record("CN-1", action="refuse-entry")])
    fed.sync("RU", "CN")
    hits = Lookup(fed["RU"].node).check(Query(names=("Test Person CN 1",), dob="1980-05-17"))
    assert [h.action for h in hits] == ["refuse-entry"]


def test_lookups_work_with_every_peer_offline(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    fed["CN"].server.stop(grace=None)
    report = fed.sync("RU", "CN")
    assert not report.ok and "nothing is listening there" in report.error
    hits = Lookup(fed["RU"].node).check(Query(names=("Test Person CN 1",), dob="1980-05-17"))
    assert [h.ref for h in hits] == ["CN-1"]


def test_a_manifest_is_matched_against_every_origin_in_one_token_statement(
    federation: FederationMaker, backend: StorageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = federation(["CN", "RU", "AR"], storage=backend)
    ownlist.import_records(fed["CN"].node, [record("CN-1"), record("CN-2")])
    ownlist.import_records(fed["AR"].node, [record("AR-1", names=["Juan Pérez"], dob="1970")])
    ownlist.import_records(fed["RU"].node, [record("RU-1")])
    fed.sync_all()
    calls: list[list[str]] = []
    find = SqlTx.find_tokens_of

    def spy(tx: SqlTx, wanted: Mapping[str, Sequence[bytes]]) -> list[TokenRow]:
        calls.append(sorted(wanted))
        return find(tx, wanted)

    monkeypatch.setattr(SqlTx, "find_tokens_of", spy)
    people = [
        Query(names=("Test Person CN 2",), dob="1980-05-17"),
        Query(names=("Juan Perez",), dob="1970-02-03"),
        doc_query("CHN", record("RU-1").documents[0].number),
        Query(names=("Nobody Listed",), dob="1990-01-01"),
        Query(names=("Test Person CN 1",), dob="1980-05-17", documents=(("P", "CHN", "X1"),)),
    ]
    results = Lookup(fed["RU"].node).screen(people)
    assert calls == [["AR", "CN", "RU"]]  # every origin, every person: one call
    assert [[(h.origin, h.ref) for h in r.hits] for r in results] == [
        [("CN", "CN-2")],
        [("AR", "AR-1")],
        [("RU", "RU-1")],
        [],
        [("CN", "CN-1")],
    ]
    assert [Lookup(fed["RU"].node).check(p) for p in people] == [r.hits for r in results]
