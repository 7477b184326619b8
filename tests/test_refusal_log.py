"""Every refusal reaches the exchange log, aggregated with exact counts
(issue 8, item 12): a table of the aggregator, then a throttled officer."""

from __future__ import annotations

import dataclasses
import json

import grpc
import pytest
from support.nodes import Federation, FederationMaker, record

from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.audit.refusals import Aggregate, RefusalAggregator, RefusalKind
from wlx.node.core.limits import LimitSettings, Rate
from wlx.node.incoming.lookup import Query
from wlx.node.outgoing import ownlist
from wlx.node.rpc.auth import RefusalLog
from wlx.node.rpc.server import build_server
from wlx.node.rpc.transport import client_channel
from wlx.node.trust import credentials
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

A = RefusalKind(Event.THROTTLED, "/wlx.v1.Lookup/Check", "officer:post-1", "rate limit")
B = RefusalKind(Event.ACCESS_DENIED, "/wlx.v1.Admin/Status", "officer:post-1", "may not call")


def test_the_first_refusal_is_written_at_once_the_rest_with_their_count() -> None:
    agg = RefusalAggregator(window=60)
    assert agg.refuse(A, 0.0, 1000) == [Aggregate(A, 1, 1000, 1000)]
    assert agg.refuse(A, 1.0, 1001) == []
    assert agg.refuse(A, 2.0, 1002) == []
    assert agg.refuse(B, 3.0, 1003) == [Aggregate(B, 1, 1003, 1003)]
    assert agg.due(59.0) == []
    assert agg.due(60.0) == [Aggregate(A, 2, 1001, 1002)]  # B had no more: nothing to add
    # A new window for A opens with its next refusal.
    assert agg.refuse(A, 61.0, 1061) == [Aggregate(A, 1, 1061, 1061)]
    assert agg.refuse(A, 62.0, 1062) == []
    assert agg.drain() == [Aggregate(A, 1, 1062, 1062)]
    assert agg.drain() == []


def test_too_many_kinds_are_written_out_not_forgotten() -> None:
    agg = RefusalAggregator(window=60, max_kinds=2)
    kinds = [dataclasses.replace(A, caller=f"officer:{i}") for i in range(3)]
    for kind in kinds[:2]:
        agg.refuse(kind, 0.0, 1)
        agg.refuse(kind, 0.0, 2)
    written = agg.refuse(kinds[2], 0.0, 3)
    assert written == [
        Aggregate(kinds[0], 1, 2, 2),
        Aggregate(kinds[1], 1, 2, 2),
        Aggregate(kinds[2], 1, 3, 3),
    ]


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def refusal_entries(fed: Federation, at: str) -> list[dict[str, object]]:
    with fed[at].node.store.read() as tx:
        rows = [json.loads(e) for _, e in tx.audit_entries(0, exchange_log.size(tx))]
    return [e for e in rows if e["kind"] in ("throttled", "access.denied")]


def test_every_throttled_call_is_counted_in_the_exchange_log(
    federation: FederationMaker,
) -> None:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    ru = fed["RU"].node
    keys = len(Query(names=("Test Person CN 1",), dob="1980-05-17").keys())  # one lookup's cost
    ru.config = dataclasses.replace(
        ru.config,
        limits=dataclasses.replace(
            LimitSettings(), officer=Rate(per_minute=0.001, burst=keys, per_day=1000 * keys)
        ),
    )
    ticks = Ticks()
    refusals = RefusalLog(ru, clock=ticks)
    server, port = build_server(ru, "127.0.0.1:0", refusals=refusals)
    server.start()
    try:
        issued = credentials.issue(ru, name="busy-post", role="officer")
        with client_channel(f"127.0.0.1:{port}", issued) as channel:
            stub = lookup_pb2_grpc.LookupStub(channel)
            person = lookup_pb2.Person(names=["Test Person CN 1"], dob="1980-05-17")
            request = lookup_pb2.CheckRequest(person=person, purpose="test")
            stub.Check(request)
            for _ in range(58):
                with pytest.raises(grpc.RpcError) as err:
                    stub.Check(request)
                assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            ticks.now = 61.0  # the window closes: the next call writes the count
            refusals.flush_due()
    finally:
        server.stop(grace=None)
    entries = refusal_entries(fed, "RU")
    assert [(e["kind"], e["count"]) for e in entries] == [("throttled", 1), ("throttled", 57)]
    assert sum(int(str(e["count"])) for e in entries) == 58
    assert all(e["caller"] == "officer:busy-post" for e in entries)
