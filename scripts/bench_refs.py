"""Reference measurements for scripts/bench: what this machine's building
blocks do, measured in the same run as wlx, so that wlx's figures are read
as ratios (docs: issue 13).

Each function returns a dict of figures.  The gRPC echo reference serves
raw bytes over the very mutual TLS a node uses (its server credentials, an
officer credential on the client), and is driven by the same client
harness as wlx's lookups (``drive``: client processes, raw bytes in and out).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wlx.node.rpc.transport import client_channel, server_credentials
from wlx.v1 import federation_pb2

ECHO_METHOD = "/bench.Echo/Echo"


def per_second(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def primitives(n: int = 50_000) -> dict[str, float]:
    """Keyed hash, AEAD seal of hit-data-sized input, protobuf, SQLite."""
    key, data = os.urandom(32), os.urandom(40)
    out: dict[str, float] = {}
    out["ref_keyed_hash_per_s"] = per_second(
        lambda: hashlib.blake2b(data, digest_size=16, key=key, person=b"wlx1-token").digest(), n
    )
    hit, nonce, aad = os.urandom(120), os.urandom(12), os.urandom(60)
    out["ref_seal_per_s"] = per_second(lambda: ChaCha20Poly1305(key).encrypt(nonce, hit, aad), n)
    part = federation_pb2.SnapshotPart(version=1, origin="CN", recipient="RU", epoch=1)
    for _ in range(1_000):
        part.entries.add(
            handle=os.urandom(16),
            expires="2030-01-01",
            tokens=[federation_pb2.TokenEntry(token=os.urandom(16), sealed=hit) for _ in range(3)],
        )
    blob = part.SerializeToString()
    start = time.perf_counter()
    for _ in range(20):
        parsed = federation_pb2.SnapshotPart.FromString(blob)
        for entry in parsed.entries:
            for token in entry.tokens:
                _ = token.token, token.sealed
    out["ref_protobuf_decode_entries_per_s"] = 20_000 / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(20):
        part.SerializeToString()
    out["ref_protobuf_encode_entries_per_s"] = 20_000 / (time.perf_counter() - start)
    out.update(sqlite_reference(n * 2))
    return {k: round(v) for k, v in out.items()}


def sqlite_reference(n: int) -> dict[str, float]:
    """Random 16-byte token rows with ~140-byte values, one transaction (as a
    snapshot's tokens), then point reads."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "ref.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "CREATE TABLE t (token BLOB PRIMARY KEY, handle BLOB, sealed BLOB) WITHOUT ROWID"
        )
        rows = [(os.urandom(16), os.urandom(16), os.urandom(140)) for _ in range(n)]
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
        inserts = n / (time.perf_counter() - start)
        keys = [r[0] for r in rows[:: max(1, n // 20_000)]]
        start = time.perf_counter()
        for k in keys:
            conn.execute("SELECT handle, sealed FROM t WHERE token = ?", (k,)).fetchone()
        reads = len(keys) / (time.perf_counter() - start)
        conn.close()
    return {"ref_sqlite_inserts_per_s": inserts, "ref_sqlite_point_reads_per_s": reads}


# ------------------------------------------------------------------ gRPC echo


def echo_server(node: Any, workers: int) -> tuple[grpc.Server, int]:
    """A bare echo service on the node's own mutual-TLS server credentials."""
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", server_credentials(node))
    server.start()
    return server, port


def _client(args: tuple[str, Any, str, list[bytes], int]) -> list[float]:
    address, credential, method, requests, warmup = args
    channel = client_channel(address, credential)
    call = channel.unary_unary(method, None, None)  # raw bytes in and out
    for request in requests[:warmup]:
        call(request)
    latencies = []
    for request in requests:
        start = time.perf_counter()
        call(request)
        latencies.append(time.perf_counter() - start)
    channel.close()
    return latencies


def drive(
    address: str, credential: Any, method: str, requests: list[bytes], clients: int
) -> dict[str, float]:
    """Sequential latency (one client process), then throughput with
    ``clients`` client processes: raw serialized requests, raw responses."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        [latencies] = pool.map(_client, [(address, credential, method, requests, 50)])
    ordered = sorted(latencies)
    chunks = [requests[i::clients] for i in range(clients)]
    with ctx.Pool(clients) as pool:
        pool.map(_client, [(address, credential, method, c[:5], 5) for c in chunks])  # warm up
        start = time.perf_counter()
        pool.map(_client, [(address, credential, method, c, 0) for c in chunks])
        elapsed = time.perf_counter() - start
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 3),
        "sequential_per_s": round(len(ordered) / sum(ordered)),
        "concurrent_per_s": round(len(requests) / elapsed),
    }


def rss_self() -> dict[str, float]:
    """Peak resident memory of this process (the importing, pulling node)."""
    import resource

    return {
        "bench_process_peak_rss_mib": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )
    }
