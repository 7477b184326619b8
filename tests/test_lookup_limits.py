"""Lookups are bounded and charged per identifier key tested (issue 8, items
2 and 12): one call cannot test thousands of identifiers for the price of
one, and an oversized call is refused before any work, any charge or any
quota message."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from support.nodes import Federation, FederationMaker, record

from wlx.node.audit import exchange_log
from wlx.node.core.errors import UserError
from wlx.node.core.limits import LimitSettings, Rate, RateLimited
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import ownlist
from wlx.node.protocol.lookup_rules import (
    MAX_DOCUMENTS_PER_PERSON,
    MAX_NAMES_PER_PERSON,
    MAX_SCREEN_ENTRIES,
    lookup_charge,
    lookup_cost,
)
from wlx.node.rpc.server import build_server
from wlx.node.rpc.transport import client_channel
from wlx.node.trust import credentials
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

COST_CASES = [
    ([(1, 0)], 1),
    ([(0, 1)], 1),
    ([(0, 0)], 1),  # a person with nothing still costs one
    ([(2, 3)], 5),
    ([(1, 1)] * 3, 6),
    ([(MAX_NAMES_PER_PERSON, MAX_DOCUMENTS_PER_PERSON)], 16),
    ([(1, 0)] * MAX_SCREEN_ENTRIES, MAX_SCREEN_ENTRIES),
]


@pytest.mark.parametrize(("people", "cost"), COST_CASES)
def test_a_lookup_must_afford_one_per_identifier_presented(
    people: list[tuple[int, int]], cost: int
) -> None:
    assert lookup_cost(people) == cost


@pytest.mark.parametrize(
    ("people", "message"),
    [
        ([(MAX_NAMES_PER_PERSON + 1, 0)], "names per person"),
        ([(0, MAX_DOCUMENTS_PER_PERSON + 1)], "documents per person"),
        ([(0, 50_000)], "documents per person"),
        ([(1, 0)] * (MAX_SCREEN_ENTRIES + 1), "people per screening"),
    ],
)
def test_an_oversized_lookup_is_refused(people: list[tuple[int, int]], message: str) -> None:
    with pytest.raises(UserError, match=message):
        lookup_cost(people)


def passport(number: int) -> lookup_pb2.Document:
    return lookup_pb2.Document(type="P", country="CHN", number=f"E{number:08d}")


def code_and_details(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    return error.code(), str(error.details())


def lookups(fed: Federation, node_id: str) -> list[dict[str, Any]]:
    from wlx.node.audit import exchange_log

    with fed[node_id].node.store.read() as tx:
        entries = [json.loads(e) for _, e in tx.audit_entries(0, exchange_log.size(tx))]
    return [e for e in entries if e["kind"] == "lookup"]


@pytest.fixture
def busy(federation: FederationMaker) -> Federation:
    """CN with one listing; RU holding it, with small officer limits."""
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    ru = fed["RU"].node
    ru.config = dataclasses.replace(
        ru.config,
        limits=dataclasses.replace(
            LimitSettings(), officer=Rate(per_minute=1, burst=20, per_day=30)
        ),
    )
    return fed


def test_many_identifiers_in_one_call_are_refused_before_any_work_or_charge(
    busy: Federation,
) -> None:
    ru = busy["RU"].node
    server, port = build_server(ru, "127.0.0.1:0")
    server.start()
    try:
        issued = credentials.issue(ru, name="post-9", role="officer")
        with client_channel(f"127.0.0.1:{port}", issued) as channel:
            stub = lookup_pb2_grpc.LookupStub(channel)
            flood = lookup_pb2.Person(documents=[passport(i) for i in range(50_000)])
            started = time.monotonic()
            code, details = code_and_details(
                lambda: stub.Check(lookup_pb2.CheckRequest(person=flood, purpose="p"), timeout=30)
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            assert "documents per person" in details and "quota" not in details
            assert time.monotonic() - started < 10
            # An oversized manifest: refused as such, not as "daily quota reached".
            entries = [
                lookup_pb2.ScreenEntry(id=str(i), person=lookup_pb2.Person(documents=[passport(i)]))
                for i in range(MAX_SCREEN_ENTRIES + 1)
            ]
            code, details = code_and_details(
                lambda: stub.Screen(lookup_pb2.ScreenRequest(entries=entries, purpose="p"))
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            assert "people per screening" in details and "quota" not in details
            # Nothing was charged: the whole burst of 20 identifiers is still there.
            many = lookup_pb2.Person(documents=[passport(i) for i in range(8)])
            for _ in range(2):
                stub.Check(lookup_pb2.CheckRequest(person=many, purpose="p"))
            # 16 used; a call presenting 5 more identifiers is over the rate.
            five = lookup_pb2.Person(documents=[passport(i) for i in range(5)])
            code, _ = code_and_details(
                lambda: stub.Check(lookup_pb2.CheckRequest(person=five, purpose="p"))
            )
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        server.stop(grace=None)
    # The two calls are logged with the identifiers they tested, the refused ones not at all.
    logged = lookups(busy, "RU")
    assert [(e["people"], e["identifiers"]) for e in logged] == [(1, 8), (1, 8)]


def test_a_query_beyond_the_bounds_is_refused_by_the_service_too(busy: Federation) -> None:
    lookup = Lookup(busy["RU"].node)
    names = tuple(f"Test Person {i}" for i in range(MAX_NAMES_PER_PERSON + 1))
    with pytest.raises(UserError, match="names per person"):
        lookup.screen([Query(names=names, dob="1980-05-17")])
    assert lookups(busy, "RU") == []


@pytest.mark.parametrize(
    ("presented", "keys", "charge"),
    [(1, 22, 22), (8, 8, 8), (2, 0, 2), (1, 46, 46), (3, 1, 3)],
)
def test_a_lookup_is_charged_its_keys_and_never_less_than_what_it_presents(
    presented: int, keys: int, charge: int
) -> None:
    assert lookup_charge(presented, keys) == charge


def named(i: int = 1) -> lookup_pb2.Person:
    return lookup_pb2.Person(names=[f"Test Person CN {i}"], dob="1980-05-17")


def test_an_officer_gets_no_more_key_tests_than_tokens(federation: FederationMaker) -> None:
    """Issue 8 item 2: one name derives 20-46 keys (variants,
    transliterations, weak keys); charged one token per person, N tokens
    bought N x keys tests.  Every key tested is paid for, before it is tested."""
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    ru = fed["RU"].node
    per_name = len(Query(names=("Test Person CN 1",), dob="1980-05-17").keys())
    assert per_name >= 20
    tokens = 4 * per_name + per_name // 2
    ru.config = dataclasses.replace(
        ru.config,
        limits=dataclasses.replace(
            LimitSettings(), officer=Rate(per_minute=0.001, burst=tokens, per_day=100 * tokens)
        ),
    )
    server, port = build_server(ru, "127.0.0.1:0")
    server.start()
    answered = refused = 0
    try:
        issued = credentials.issue(ru, name="post-3", role="officer")
        with client_channel(f"127.0.0.1:{port}", issued) as channel:
            stub = lookup_pb2_grpc.LookupStub(channel)
            for _ in range(10):
                try:
                    stub.Check(lookup_pb2.CheckRequest(person=named(), purpose="p"), timeout=30)
                    answered += 1
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    refused += 1
            # A manifest pays for every key of every person: 3 people > one left.
            entries = [lookup_pb2.ScreenEntry(id=str(i), person=named(i)) for i in range(3)]
            code, _ = code_and_details(
                lambda: stub.Screen(lookup_pb2.ScreenRequest(entries=entries, purpose="p"))
            )
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        server.stop(grace=None)
    logged = lookups(fed, "RU")
    assert (answered, refused) == (4, 6)
    # The log counts the keys tested; their sum never exceeds the tokens granted.
    assert [e["identifiers"] for e in logged] == [per_name] * 4
    assert sum(e["identifiers"] for e in logged) <= tokens


def test_a_call_costing_more_than_the_burst_says_so(busy: Federation) -> None:
    ru = busy["RU"].node
    server, port = build_server(ru, "127.0.0.1:0")
    server.start()
    try:
        issued = credentials.issue(ru, name="post-4", role="officer")
        with client_channel(f"127.0.0.1:{port}", issued) as channel:
            stub = lookup_pb2_grpc.LookupStub(channel)
            code, details = code_and_details(
                lambda: stub.Check(lookup_pb2.CheckRequest(person=named(), purpose="p"))
            )
    finally:
        server.stop(grace=None)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "more than the burst of 20" in details and "fewer people" in details
    assert lookups(busy, "RU") == []
    # Refused once its keys were counted, and logged like any throttling.
    with busy["RU"].node.store.read() as tx:
        entries = [json.loads(e) for _, e in tx.audit_entries(0, exchange_log.size(tx))]
    throttled = [e for e in entries if e["kind"] == "throttled"]
    assert [(e["method"], e["caller"]) for e in throttled] == [
        ("/wlx.v1.Lookup/Check", "officer:post-4")
    ]


def test_the_keys_are_charged_before_any_is_tested(busy: Federation) -> None:
    lookup = Lookup(busy["RU"].node)
    charged: list[tuple[str, int]] = []

    def refuse(call: str, cost: int) -> None:
        charged.append((call, cost))
        raise RateLimited("over")

    lookup.charge = refuse
    query = Query(names=("Test Person CN 1",), dob="1980-05-17", documents=(("P", "CHN", "E1"),))
    with pytest.raises(RateLimited):
        lookup.check(query, caller="post-5")
    assert charged == [("check", len(query.keys()))]
    assert lookups(busy, "RU") == []  # nothing tested, nothing logged
    assert lookup.hits.origins("post-5", "CN-1", busy["RU"].node.now()) == []


def test_a_node_toml_with_the_per_person_defaults_gets_the_per_key_ones() -> None:
    """Upgrading: ``wlx init`` wrote the old officer defaults into node.toml;
    read as keys they would refuse a 500-person manifest outright."""
    from wlx.node.core.config import NodeConfig

    base = 'node_id = "CN"\nlisten = "127.0.0.1:7001"\n[limits]\n'
    old = base + "officer_per_minute = 1200.0\nofficer_burst = 2500.0\nofficer_per_day = 100000.0\n"
    assert NodeConfig.from_toml(old).limits.officer == LimitSettings().officer
    chosen = base + "officer_per_minute = 1200.0\nofficer_burst = 3000.0\nofficer_per_day = 1e5\n"
    assert NodeConfig.from_toml(chosen).limits.officer == Rate(1200, 3000, 100_000)
    assert LimitSettings().officer.burst >= 500 * 47  # a manifest of the heaviest one-name people
