"""Nodes for tests: valid records, a settable clock, federations of serving
nodes, and storage on SQLite or PostgreSQL (each node in its own schema).
The fixtures that make them are in ``tests/conftest.py``."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import psycopg

from wlx.node.core.config import Backend, StorageConfig
from wlx.node.core.node import Node
from wlx.node.core.records import Record, parse_record
from wlx.node.rpc.sync_client import SyncReport, sync_peer
from wlx.node.store.base import PeerRow

PG_DSN = os.environ.get("WLX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def record(record_id: str, **overrides: object) -> Record:
    """A valid record with synthetic identifiers; fields can be overridden."""
    number = int.from_bytes(record_id.encode(), "big") % 10**8
    obj: dict[str, object] = {
        "id": record_id,
        "names": [f"Test Person {record_id.replace('-', ' ')}"],
        "dob": "1980-05-17",
        "nationality": "CHN",
        "sex": "M",
        "documents": [{"type": "P", "country": "CHN", "number": f"E{number:08d}"}],
        "category": "wanted",
        "action": "arrest",
        "legal_basis": "test basis",
        "authority": "test authority",
        "expires": "2099-12-31",
    }
    obj.update(overrides)
    return parse_record(obj, line=0)


class FakeClock:
    """A settable clock, starting at a fixed time."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Running:
    """A node and its running server."""

    node: Node
    server: grpc.Server
    port: int

    @property
    def id(self) -> str:
        return self.node.node_id

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Federation:
    """Nodes that trust each other, with servers running."""

    nodes: dict[str, Running] = field(default_factory=dict)
    _channels: list[grpc.Channel] = field(default_factory=list)

    def __getitem__(self, node_id: str) -> Running:
        return self.nodes[node_id]

    def sync(self, to: str, source: str) -> SyncReport:
        """``to`` pulls from ``source`` once (until up to date)."""
        node = self.nodes[to].node
        with node.store.read() as tx:
            peer = tx.get_peer(source)
        assert peer is not None
        return sync_peer(node, peer)

    def channel(self, node_id: str, role: str = "officer", name: str | None = None) -> grpc.Channel:
        """A mutual-TLS channel to ``node_id`` with a fresh credential of ``role``."""
        from wlx.node.rpc.transport import client_channel
        from wlx.node.trust import credentials

        node = self.nodes[node_id].node
        credential = credentials.issue(
            node, name=name or f"{role}-{len(self._channels)}", role=role
        )
        channel = client_channel(self.nodes[node_id].address, credential)
        self._channels.append(channel)
        return channel

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def sync_all(self) -> None:
        for a, b in itertools.permutations(self.nodes, 2):
            report = self.sync(a, b)
            assert report.ok, report.error


class StorageFactory:
    """Makes storage configurations for one backend, cleaning up after the test."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._schemas: list[str] = []

    def config(self, node_id: str) -> StorageConfig:
        if self.backend == "sqlite":
            return StorageConfig()
        schema = f"t_{node_id.lower().replace('-', '_')}_{uuid.uuid4().hex[:10]}"
        self._schemas.append(schema)
        return StorageConfig(backend=Backend.POSTGRESQL, dsn=PG_DSN, schema=schema)

    def cleanup(self) -> None:
        if not self._schemas:
            return
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in self._schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


NodeMaker = Callable[..., Node]

FederationMaker = Callable[..., Federation]


def peer_row(node: Node, peer: str) -> PeerRow:
    with node.store.read() as tx:
        row = tx.get_peer(peer)
    assert row is not None
    return row
