"""What a client verifies of a node's TLS certificate (docs/protocol.md §1.3):
the pinned certificate, under the name ``<id>.node.wlx``, within its
validity dates.  A bare gRPC server stands in for the node."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from wlx.crypto import tls
from wlx.node.rpc.transport import pinned_channel

NOW = int(time.time())
CLIENT_KEY = tls.generate_key()
CLIENT_CERT = tls.node_certificate(CLIENT_KEY, "RU", not_before=NOW - 60, not_after=NOW + 3600)


def serve(cert: bytes, key: bytes) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    credentials = grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=CLIENT_CERT, require_client_auth=True
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, port


@pytest.fixture
def node_cert() -> Iterator[tuple[bytes, bytes]]:
    key = tls.generate_key()
    yield (
        tls.node_certificate(key, "CN", not_before=NOW - 60, not_after=NOW + 3600),
        tls.key_to_pem(key),
    )


def call(port: int, pinned: bytes, node_id: str) -> grpc.StatusCode:
    channel = pinned_channel(
        f"127.0.0.1:{port}",
        node_id=node_id,
        pinned_cert=pinned,
        key=tls.key_to_pem(CLIENT_KEY),
        cert=CLIENT_CERT,
    )
    with channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def test_the_pinned_certificate_under_its_node_name_connects(
    node_cert: tuple[bytes, bytes],
) -> None:
    server, port = serve(*node_cert)
    try:
        assert call(port, node_cert[0], "CN") == grpc.StatusCode.OK
    finally:
        server.stop(None)


def test_the_client_verifies_the_name_cn_node_wlx(node_cert: tuple[bytes, bytes]) -> None:
    """MUST-1.3-5: the server's certificate must name the node the client asked for."""
    server, port = serve(*node_cert)
    try:
        assert call(port, node_cert[0], "RU") == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)


@pytest.mark.parametrize(
    ("not_before", "not_after"), [(NOW - 7200, NOW - 3600), (NOW + 3600, NOW + 7200)]
)
def test_the_client_checks_the_validity_dates(not_before: int, not_after: int) -> None:
    """MUST-1.3-6: an expired (or not yet valid) node certificate fails the handshake,
    even when it is the pinned one."""
    key = tls.generate_key()
    cert = tls.node_certificate(key, "CN", not_before=not_before, not_after=not_after)
    server, port = serve(cert, tls.key_to_pem(key))
    try:
        assert call(port, cert, "CN") == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)
