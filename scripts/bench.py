"""Benchmarks of a small federation on this machine (run by scripts/bench).

Measures, with real nodes and real gRPC servers on loopback:
  * import: records/s into the origin's own list (encrypt, index, log);
  * snapshot sync: a new peer pulls the whole list (listings/s);
  * delta sync: a peer pulls N changes as batches (changes/s);
  * lookup: one person per call, sequential (p50/p99 latency) and with
    concurrent clients (calls/s);
  * manifest screening: 500 people per call (ms per call).

Results are printed and written as JSON to the output directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from wlx.node.core.config import StorageConfig
from wlx.node.core.limits import LimitSettings, Rate
from wlx.node.core.node import Node
from wlx.node.core.records import Record, parse_record
from wlx.node.directory import init_node
from wlx.node.incoming.lookup import Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.rpc.sync_client import sync_peer
from wlx.node.rpc.transport import client_channel
from wlx.node.rpc.wire import query_to_pb
from wlx.node.trust import credentials
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

sys.path.insert(0, str(Path(__file__).parent))
from demo_data import person


def make_records(country: str, count: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    return [parse_record(person(country, rng, i), line=i) for i in range(count)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def peer_of(node: Node, peer: str) -> Any:
    with node.store.read() as tx:
        return tx.get_peer(peer)


def storage_for(kind: str, node_id: str, dsn: str) -> StorageConfig:
    if kind == "sqlite":
        return StorageConfig()
    schema = f"bench_{node_id.lower()}_{random.randrange(16**8):08x}"
    return StorageConfig(backend="postgresql", dsn=dsn, schema=schema)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(directory: Path, port: int) -> subprocess.Popen[bytes]:
    """``wlx serve`` in its own process, as in production (no shared GIL)."""
    wlx = str(Path(sys.executable).with_name("wlx"))
    proc = subprocess.Popen(
        [wlx, "serve", str(directory), "--sync-interval", "1000000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"wlx serve {directory} did not come up")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Origins and the lookup node run as ``wlx serve`` processes; the bench
    process pulls (as the receiving node) and looks up (as officers)."""
    tmp = Path(tempfile.mkdtemp(prefix="wlx-bench-"))
    ports = {n: free_port() for n in ("CN", "RU", "AR")}
    unlimited = Rate(per_minute=1e12, burst=1e12, per_day=1e15)  # a load test, not a border post
    nodes = {}
    for n, port in ports.items():
        node = init_node(
            tmp / n,
            node_id=n,
            listen=f"127.0.0.1:{port}",
            storage=storage_for(args.backend, n, args.dsn),
        )
        node.config = dataclasses.replace(
            node.config, limits=dataclasses.replace(LimitSettings(), officer=unlimited)
        )
        node.paths.config.write_text(node.config.to_toml(), encoding="utf-8")
        nodes[n] = node
    # RU (the node measured) trusts both origins; they trust only RU, so their
    # own serve loops have no snapshot to pull while RU is measured.
    for a, node_a in nodes.items():
        for b, node_b in nodes.items():
            if a != b and "RU" in (a, b):
                origin.add_peer(node_a, node_b.card.raw, f"127.0.0.1:{ports[b]}")
    results: dict[str, Any] = {"records": args.records, "backend": args.backend}

    records = make_records("CN", args.records, 1)
    _, seconds = timed(lambda: ownlist.import_records(nodes["CN"], records))
    results["import_records_per_s"] = round(args.records / seconds)
    ownlist.import_records(nodes["AR"], make_records("AR", args.records // 10, 2))
    officer = credentials.issue(nodes["RU"], name="bench-post", role="officer", days=1)
    procs = [serve(tmp / n, ports[n]) for n in ("CN", "AR")]
    try:
        return measure(args, nodes, ports, records, officer, procs, results, tmp)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        for node in nodes.values():
            node.close()


def measure(
    args: argparse.Namespace,
    nodes: dict[str, Node],
    ports: dict[str, int],
    records: list[Record],
    officer: Any,
    procs: list[subprocess.Popen[bytes]],
    results: dict[str, Any],
    tmp: Path,
) -> dict[str, Any]:
    report, seconds = timed(lambda: sync_peer(nodes["RU"], peer_of(nodes["RU"], "CN")))
    assert report.ok, report.error
    results["snapshot_sync_s"] = round(seconds, 2)
    results["snapshot_listings_per_s"] = round(args.records / seconds)
    assert sync_peer(nodes["RU"], peer_of(nodes["RU"], "AR")).ok

    changes = [
        parse_record({**person("CN", random.Random(i), i), "id": f"CN-D{i:07d}"}, line=0)
        for i in range(args.changes)
    ]
    ownlist.import_records(nodes["CN"], changes)
    report, seconds = timed(lambda: sync_peer(nodes["RU"], peer_of(nodes["RU"], "CN")))
    assert report.ok and report.ops == args.changes, report
    results["delta_changes"] = args.changes
    results["delta_sync_s"] = round(seconds, 2)
    results["delta_changes_per_s"] = round(args.changes / seconds)
    nodes["RU"].close()
    procs.append(serve(tmp / "RU", ports["RU"]))
    servers = {n: (None, p) for n, p in ports.items()}

    results["lookup_transport"] = "mutual TLS 1.3, officer credential"
    channel = client_channel(f"127.0.0.1:{servers['RU'][1]}", officer)
    stub = lookup_pb2_grpc.LookupStub(channel)
    rng = random.Random(7)
    listed = [r for r in records if r.documents]
    queries = []
    for i in range(args.lookups):
        if i % 2 == 0:
            r = rng.choice(listed)
            d = r.documents[0]
            queries.append(Query(documents=((d.type, d.country, d.number),)))
        else:
            queries.append(Query(names=(f"Nobody Number{i}",), dob="1970-01-01"))
    requests = [lookup_pb2.CheckRequest(person=query_to_pb(q), purpose="bench") for q in queries]
    for request in requests[:50]:
        stub.Check(request)
    latencies, hits = [], 0
    for request in requests:
        start = time.perf_counter()
        response = stub.Check(request)
        latencies.append(time.perf_counter() - start)
        hits += bool(response.hits)
    assert hits == args.lookups // 2 + args.lookups % 2, hits
    results["lookup_p50_ms"] = round(statistics.median(latencies) * 1000, 3)
    results["lookup_p99_ms"] = round(pct(latencies, 0.99) * 1000, 3)
    results["lookup_sequential_per_s"] = round(len(latencies) / sum(latencies))

    def worker(chunk: list[lookup_pb2.CheckRequest]) -> None:
        ch = client_channel(f"127.0.0.1:{servers['RU'][1]}", officer)
        s = lookup_pb2_grpc.LookupStub(ch)
        for request in chunk:
            s.Check(request)
        ch.close()

    threads = [
        threading.Thread(target=worker, args=(requests[i :: args.clients],))
        for i in range(args.clients)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results["lookup_concurrent_clients"] = args.clients
    results["lookup_concurrent_per_s"] = round(len(requests) / (time.perf_counter() - start))

    manifest = lookup_pb2.ScreenRequest(purpose="bench")
    for i in range(500):
        r = records[(i * 7919) % len(records)] if i % 50 == 0 else None
        q = (
            Query(names=r.names[:1], dob=r.dob)
            if r
            else Query(names=(f"Passenger Number{i}",), dob="1980-01-01")
        )
        manifest.entries.add(id=str(i), person=query_to_pb(q))
    stub.Screen(manifest)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        response = stub.Screen(manifest)
        times.append(time.perf_counter() - start)
    assert sum(1 for r in response.results if r.hits) >= 10
    results["screen_500_p50_ms"] = round(statistics.median(times) * 1000, 1)
    channel.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000, help="listings in CN's list")
    parser.add_argument("--changes", type=int, default=5_000, help="changes in the delta sync")
    parser.add_argument("--lookups", type=int, default=2_000, help="single lookups to time")
    parser.add_argument("--clients", type=int, default=8, help="concurrent lookup clients")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    results = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"results-{args.backend}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
