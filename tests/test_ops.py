"""Operating a node like any service: readiness, /healthz, /readyz, /metrics, gRPC health."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import replace

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from support.nodes import FakeClock, Federation, FederationMaker, record

from wlx.node.core.errors import UserError
from wlx.node.health import readiness
from wlx.node.outgoing import ownlist
from wlx.node.report import NodeStatus, PeerStatus
from wlx.node.rpc.ops import Operations, serve_http
from wlx.node.rpc.server import SERVICES, build_server
from wlx.node.rpc.transport import client_channel
from wlx.node.trust import credentials
from wlx.v1 import admin_pb2, admin_pb2_grpc


def _peer(name: str, last_sync: int) -> PeerStatus:
    return PeerStatus(name, "x:1", 1, 1, 1, 3, last_sync, "", 0, 1, 1, 1, 0, ())


def _status(*peers: PeerStatus) -> NodeStatus:
    return NodeStatus("CN", 5, peers, 0)


@pytest.mark.parametrize(
    ("status", "kwargs", "ready", "reason"),
    [
        (_status(_peer("RU", 1000)), {}, True, ""),
        (_status(), {}, True, ""),
        (_status(_peer("RU", 1000)), {"draining": True}, False, "draining"),
        (None, {"store_error": "OperationalError"}, False, "store unreachable: OperationalError"),
        (_status(_peer("RU", 100)), {}, False, "peer RU is stale: last synced 1000 s ago"),
        (_status(_peer("RU", 0)), {}, True, ""),  # never synced, but we started at 900
        (_status(_peer("RU", 0)), {"started_at": 0}, False, "peer RU is stale: never synced"),
        (_status(_peer("RU", 1000), _peer("AR", 10)), {}, False, "peer AR is stale"),
    ],
)
def test_readiness(
    status: NodeStatus | None, kwargs: dict[str, object], ready: bool, reason: str
) -> None:
    args: dict[str, object] = {"now": 1100, "started_at": 900, "bound": 300, **kwargs}
    result = readiness(status, **args)  # type: ignore[arg-type]
    assert result.ready is ready
    assert all(reason in r for r in result.reasons[:1]) and (ready or result.reasons)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


@pytest.fixture
def fed(federation: FederationMaker) -> Federation:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1"), record("CN-2")])
    fed.sync_all()
    return fed


def test_http_endpoints_follow_readiness(fed: Federation, clock: FakeClock) -> None:
    ops = Operations(fed["RU"].node, bound=300)
    http, port = serve_http(ops, "127.0.0.1", 0)
    try:
        assert _get(port, "/healthz") == (200, "ok\n")
        assert _get(port, "/readyz") == (200, "ready\n")
        code, text = _get(port, "/metrics")
        assert code == 200
        assert 'wlx_listings{origin="CN"} 2.0' in text
        assert 'wlx_listings{origin="RU"} 0.0' in text
        assert 'wlx_peer_last_sync_timestamp_seconds{peer="CN"}' in text
        assert 'wlx_unconfirmed_removals{peer="CN"} 0.0' in text
        assert "# TYPE wlx_lookup_seconds histogram" in text
        assert "CN-1" not in text  # no record reference becomes a label
        clock.advance(301)
        ops.forget()  # the status is cached for a second
        code, text = _get(port, "/readyz")
        assert code == 503 and text.startswith("peer CN is stale: last synced 301 s ago")
        assert 'wlx_peer_staleness_seconds{peer="CN"} 301.0' in _get(port, "/metrics")[1]
        fed.sync("RU", "CN")
        ops.forget()
        assert _get(port, "/readyz")[0] == 200
        ops.drain()
        assert _get(port, "/readyz") == (503, "draining: the node is shutting down\n")
        assert _get(port, "/healthz")[0] == 200  # alive while draining
        assert _get(port, "/other")[0] == 404
    finally:
        http.shutdown()


def test_a_revoked_peer_does_not_make_the_node_unready(fed: Federation, clock: FakeClock) -> None:
    from wlx.node.trust import lifecycle

    ops = Operations(fed["RU"].node, bound=300)
    clock.advance(1000)
    assert not ops.check().ready
    lifecycle.revoke_peer(fed["RU"].node, "CN")
    ops.forget()
    assert ops.check().ready


def test_a_metrics_port_in_use_is_one_line(fed: Federation) -> None:
    ops = Operations(fed["RU"].node, bound=300)
    first, port = serve_http(ops, "127.0.0.1", 0)
    try:
        with pytest.raises(UserError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            serve_http(ops, "127.0.0.1", port)
    finally:
        first.shutdown()


def test_grpc_health_not_serving_when_stale_or_draining(fed: Federation, clock: FakeClock) -> None:
    node = fed["RU"].node
    servicer = health.HealthServicer()
    server, port = build_server(node, "127.0.0.1:0", health_servicer=servicer)
    server.start()
    ops = Operations(node, bound=300, health_servicer=servicer, services=SERVICES)
    issued = credentials.issue(node, name="ops-1", role="operator")
    channel = client_channel(f"127.0.0.1:{port}", issued)
    stub = health_pb2_grpc.HealthStub(channel)

    def state(service: str = "") -> int:
        request = health_pb2.HealthCheckRequest(service=service)
        return int(stub.Check(request, timeout=5).status)

    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    try:
        assert ops.update_grpc_health().ready
        assert state() == serving and state("wlx.v1.Lookup") == serving
        clock.advance(301)
        ops.forget()
        assert not ops.update_grpc_health().ready
        assert state() == not_serving and state("wlx.v1.Lookup") == not_serving
        fed.sync("RU", "CN")
        ops.forget()
        ops.update_grpc_health()
        assert state() == serving
        ops.drain()
        assert state() == not_serving and state("wlx.v1.Federation") == not_serving
    finally:
        channel.close()
        server.stop(grace=None)


def test_refusals_and_detail_requests_are_counted(fed: Federation) -> None:
    def refusals(reason: str) -> float:
        return REGISTRY.get_sample_value("wlx_refusals_total", {"reason": reason}) or 0.0

    before = refusals("permission")
    stub = admin_pb2_grpc.AdminStub(fed.channel("RU", role="officer"))
    with pytest.raises(grpc.RpcError) as caught:
        stub.Status(admin_pb2.StatusRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refusals("permission") == before + 1

    from wlx.client import Client

    officer = credentials.issue(fed["RU"].node, name="post-9", role="officer")
    labels = {"direction": "in", "peer": "RU", "outcome": "granted"}
    granted_before = REGISTRY.get_sample_value("wlx_detail_requests_total", labels) or 0.0
    with Client(fed["RU"].address, replace(officer, address=fed["RU"].address)) as client:
        (hit,) = client.lookup(documents=[_document_of(fed)])
        assert client.detail(hit.ref, purpose="check").granted
    assert REGISTRY.get_sample_value("wlx_detail_requests_total", labels) == granted_before + 1
    out = {"direction": "out", "peer": "CN", "outcome": "granted"}
    assert (REGISTRY.get_sample_value("wlx_detail_requests_total", out) or 0) >= 1


def _document_of(fed: Federation) -> str:
    doc = record("CN-1").documents[0]
    return f"{doc.type}:{doc.country}:{doc.number}"


def test_probes_read_the_store_at_most_once_a_second(fed: Federation) -> None:
    ops = Operations(fed["RU"].node, bound=300)
    calls = 0
    real = ops._node.store.read

    def counting():  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return real()

    ops._node.store.read = counting  # type: ignore[method-assign]
    try:
        for _ in range(20):
            assert ops.check().ready
    finally:
        ops._node.store.read = real  # type: ignore[method-assign]
    assert 0 < calls <= 4  # one status (node_status and the peer list) for 20 probes
