"""Shared fixtures: real nodes with real gRPC servers on loopback port 0
(helpers in ``tests/support/``).

``federation(["CN", "RU"])`` makes nodes that trust each other, each serving
on its own free port.  ``backend`` runs a test on SQLite and, where marked,
on the PostgreSQL server at 127.0.0.1:5432 (each node in its own schema,
dropped afterwards).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import settings
from support.nodes import (
    PG_DSN,
    FakeClock,
    Federation,
    FederationMaker,
    NodeMaker,
    Running,
    StorageFactory,
    peer_row,
    record,
)

from wlx.node.core.node import Node
from wlx.node.directory import init_node
from wlx.node.outgoing import origin
from wlx.node.rpc.server import build_server

# In CI (CI=true), property tests draw the same examples on every run, so a
# red run is reproducible and a green one is not luck; no per-example
# deadline on a shared 2-core machine.  Locally they explore new examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

__all__ = [  # re-exported for tests written before tests/support/
    "PG_DSN",
    "FakeClock",
    "Federation",
    "FederationMaker",
    "NodeMaker",
    "StorageFactory",
    "peer_row",
    "record",
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[StorageFactory]:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    factory = StorageFactory(request.param)
    yield factory
    factory.cleanup()


@pytest.fixture
def sqlite_backend() -> StorageFactory:
    return StorageFactory("sqlite")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_node(
    tmp_path: Path, clock: FakeClock, sqlite_backend: StorageFactory
) -> Iterator[NodeMaker]:
    """``make_node("CN", storage=factory)`` creates a node (no server)."""
    made: list[Node] = []

    def make(node_id: str, storage: StorageFactory | None = None) -> Node:
        factory = storage or sqlite_backend
        node = init_node(
            tmp_path / node_id,
            node_id=node_id,
            listen="127.0.0.1:0",
            storage=factory.config(node_id),
            clock=clock,
        )
        made.append(node)
        return node

    yield make
    for node in made:
        node.close()


@pytest.fixture
def federation(make_node: NodeMaker, sqlite_backend: StorageFactory) -> Iterator[FederationMaker]:
    """``federation(["CN", "RU"], storage=factory)``: mutually trusted, serving nodes."""
    servers: list[grpc.Server] = []
    feds: list[Federation] = []

    def make(node_ids: list[str], storage: StorageFactory | None = None) -> Federation:
        fed = Federation()
        feds.append(fed)
        for node_id in node_ids:
            node = make_node(node_id, storage or sqlite_backend)
            server, port = build_server(node, "127.0.0.1:0")
            server.start()
            servers.append(server)
            fed.nodes[node_id] = Running(node, server, port)
        for a, b in itertools.permutations(node_ids, 2):
            origin.add_peer(fed[a].node, fed[b].node.card.raw, fed[b].address)
        return fed

    yield make
    for fed in feds:
        fed.close()
    for server in servers:
        server.stop(grace=None)
