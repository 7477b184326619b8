"""Benchmarks of a small federation on this machine (run by scripts/bench).

First the references (``bench_refs``: keyed hash, seal, protobuf, SQLite, a
bare gRPC echo over the node's own mutual TLS), then wlx, in the same run,
each wlx figure beside its reference as a ratio.  ``--quick`` (10,000
listings; list sizes 1,000 and 3,000; 10 lists of 100) is what CI runs;
``--json`` prints the result as JSON.  Measures, with real nodes and real gRPC servers on loopback:
  * import: records/s into the origin's own list (encrypt, index, log);
  * file import: ``wlx records import`` of a JSON Lines file of
    ``--import-records`` listings (100,000; 10,000 with ``--quick``;
    ``--import-records 1000000`` for a million) as its own process:
    listings/s (wall clock and per CPU second) and its peak resident memory;
    ``--import-only`` measures just that;
  * snapshot sync: a new peer pulls the whole list (listings/s);
  * delta sync: a peer pulls N changes as batches (changes/s);
  * lookup: one person per call, sequential (p50/p99 latency) and with
    concurrent clients (calls/s);
  * manifest screening: 500 people per call (ms per call);
  * freshness: a change at the origin until it hits at a serving peer;
  * bytes on disk per listing at the receiver, resident memory of each process;
  * at each of ``--scales`` (100,000 and 1,000,000; sizes above a million
    need ``--large``): import, snapshot, a delta of ``--changes``, bytes on
    disk, lookups and the memory of every process, the largest size over the
    smallest (``bench_scale``);
  * lookups on a node holding ``--peer-lists`` origins' lists (10 × 10,000)
    beside the echo reference (``bench_scale``).

Results are printed and written as JSON to the output directory, with every
figure that has a reference divided by it (``ratios``) and each target of
issue 13 judged met or missed, and by how much (``targets``,
``bench_targets``).  What is measured so far is kept in a ``partial-`` file
while a long run goes on.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wlx.node.core.config import Backend, StorageConfig
from wlx.node.core.limits import LimitSettings, Rate
from wlx.node.core.node import Node
from wlx.node.core.records import Record, parse_record
from wlx.node.directory import init_node
from wlx.node.incoming.lookup import Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.rpc.server import WORKERS
from wlx.node.rpc.sync_client import sync_peer
from wlx.node.rpc.transport import client_channel
from wlx.node.rpc.wire import query_to_pb
from wlx.node.trust import credentials
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

sys.path.insert(0, str(Path(__file__).parent))
import bench_refs
import bench_scale
import bench_targets
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
    return StorageConfig(backend=Backend.POSTGRESQL, dsn=dsn, schema=schema)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(
    directory: Path, port: int, sync_interval: float = 1e6, *, listen: bool = False
) -> subprocess.Popen[bytes]:
    """``wlx serve`` in its own process, as in production (no shared GIL);
    ``listen``: on ``port`` given with ``--listen`` (one of several
    front-ends) instead of the node's configured address."""
    wlx = str(Path(sys.executable).with_name("wlx"))
    where = ["--listen", f"127.0.0.1:{port}"] if listen else []
    proc = subprocess.Popen(
        [wlx, "serve", str(directory), "--sync-interval", str(sync_interval), *where],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(proc, port, directory)
    return proc


def wait_listening(proc: subprocess.Popen[bytes], port: int, directory: Path) -> None:
    """Until ``proc`` (``wlx serve directory``) accepts connections on ``port``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
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
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:  # a loaded machine: keep the results
                proc.kill()
                proc.wait()
        for node in nodes.values():
            node.close()


def write_jsonl(path: Path, country: str, count: int, seed: int) -> None:
    """A JSON Lines file of ``count`` synthetic records, written as they are made."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            out.write(json.dumps(person(country, rng, i)) + "\n")


def file_import(args: argparse.Namespace) -> dict[str, Any]:
    """``wlx records import`` of a file into a new node, as an operator runs it:
    listings/s, CPU seconds and the peak resident memory of that process."""
    tmp = Path(tempfile.mkdtemp(prefix="wlx-bench-import-"))
    count = args.import_records
    source = tmp / "records.jsonl"
    write_jsonl(source, "CN", count, 3)
    node = init_node(
        tmp / "CN",
        node_id="CN",
        listen=f"127.0.0.1:{free_port()}",
        storage=storage_for(args.backend, "CN", args.dsn),
    )
    node.close()
    wlx = str(Path(sys.executable).with_name("wlx"))
    start = time.perf_counter()
    proc = subprocess.Popen(
        [wlx, "records", "import", str(tmp / "CN"), str(source)], stdout=subprocess.DEVNULL
    )
    # The child's ``ru_maxrss`` counts the bench's own memory at the fork
    # (Linux keeps the old image's high-water mark across exec), so the peak
    # is read from the child's /proc status (VmHWM, its new image) while it runs.
    peak_kib = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak_kib = max(peak_kib, _vm_hwm_kib(proc.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("wlx records import failed")
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "import_file_records": count,
        "import_file_listings_per_s": round(count / seconds),
        "import_file_listings_per_cpu_s": round(count / cpu),
        "import_file_peak_rss_mib": round(peak_kib / 1024, 1),
    }


def _vm_hwm_kib(pid: int) -> int:
    """A running process's peak resident memory (KiB), 0 if it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory of a process now and at its peak (MiB)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mib": fields.get("VmRSS", 0.0), "peak_rss_mib": fields.get("VmHWM", 0.0)}


def disk_bytes(node: Node) -> dict[str, float]:
    """The receiver's SQLite file after a checkpoint: file size, and pages in use."""
    path = node.paths.root / node.config.storage.path
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size, pages, free = (
            conn.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("page_size", "page_count", "freelist_count")
        )
    finally:
        conn.close()
    return {"file": path.stat().st_size, "used": page_size * (pages - free)}


def lookup_requests(records: list[Record], count: int) -> list[bytes]:
    """Half hits (a listed document), half misses (an unlisted name and date)."""
    rng = random.Random(7)
    listed = [r for r in records if r.documents]
    out = []
    for i in range(count):
        if i % 2 == 0:
            d = rng.choice(listed).documents[0]
            query = Query(documents=((d.type, d.country, d.number),))
        else:
            query = Query(names=(f"Nobody Number{i}",), dob="1970-01-01")
        out.append(
            lookup_pb2.CheckRequest(person=query_to_pb(query), purpose="bench").SerializeToString()
        )
    return out


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
    ru = nodes["RU"]
    report, seconds = timed(lambda: sync_peer(ru, peer_of(ru, "CN")))
    assert report.ok, report.error
    results["snapshot_sync_s"] = round(seconds, 2)
    results["snapshot_listings_per_s"] = round(args.records / seconds)
    assert sync_peer(ru, peer_of(ru, "AR")).ok
    held = args.records + args.records // 10
    if args.backend == "sqlite":
        size = disk_bytes(ru)
        results["receiver_bytes_per_listing"] = round(size["file"] / held)
        results["receiver_bytes_per_listing_in_use"] = round(size["used"] / held)

    changes = [
        parse_record({**person("CN", random.Random(i), i), "id": f"CN-D{i:07d}"}, line=0)
        for i in range(args.changes)
    ]
    ownlist.import_records(nodes["CN"], changes)
    report, delta_s = timed(lambda: sync_peer(ru, peer_of(ru, "CN")))
    assert report.ok and report.ops == args.changes, report
    results["delta_changes"] = args.changes
    results["delta_sync_s"] = round(delta_s, 3)
    results["delta_changes_per_s"] = round(args.changes / delta_s)
    results["delta_over_snapshot"] = round(delta_s / seconds, 4)
    # RU stays open here (its TLS configuration serves the echo reference)
    # while `wlx serve RU` runs beside it: several processes share a store.
    procs.append(serve(tmp / "RU", ports["RU"], sync_interval=args.freshness_interval))

    address = f"127.0.0.1:{ports['RU']}"
    requests = lookup_requests(records, args.lookups)
    echo, echo_port = bench_refs.echo_server(ru, WORKERS)
    try:
        ref = bench_refs.drive(
            f"127.0.0.1:{echo_port}",
            officer,
            bench_refs.ECHO_METHOD,
            requests,
            args.clients,
        )
    finally:
        echo.stop(grace=None)
    wlx = bench_refs.drive(address, officer, "/wlx.v1.Lookup/Check", requests, args.clients)
    results["lookup_transport"] = "mutual TLS 1.3, officer credential; raw bytes, client processes"
    for key, value in ref.items():
        results[f"ref_echo_{key}"] = value
        results[f"lookup_{key}"] = wlx[key]
    results["lookup_concurrent_clients"] = args.clients

    channel = client_channel(address, officer)
    stub = lookup_pb2_grpc.LookupStub(channel)
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
    results["screen_identities_per_s"] = round(500 / statistics.median(times))
    results["freshness_s"] = freshness(nodes["CN"], stub, args.freshness_interval)
    results["freshness_sync_interval_s"] = args.freshness_interval
    channel.close()
    for name, proc in zip(("CN", "AR", "RU"), procs, strict=False):
        for key, value in rss_mib(proc.pid).items():
            results[f"{name.lower()}_serve_{key}"] = value
    results.update(bench_refs.rss_self())
    return results


def freshness(cn: Node, stub: Any, interval: float) -> float:
    """Seconds from a new listing at CN (served) to a hit at RU (served, syncing
    every ``interval`` seconds); CN's list is changed through its store."""
    record = parse_record(
        {
            **person("CN", random.Random(99), 99),
            "id": "CN-FRESH",
            "documents": [{"type": "P", "country": "CHN", "number": "F00000001"}],
        },
        line=0,
    )
    query = lookup_pb2.CheckRequest(
        person=query_to_pb(Query(documents=(("P", "CHN", "F00000001"),))), purpose="bench"
    )
    start = time.perf_counter()
    ownlist.import_records(cn, [record])
    deadline = start + interval * 3 + 30
    while time.perf_counter() < deadline:
        if stub.Check(query).hits:
            return round(time.perf_counter() - start, 2)
        time.sleep(0.05)
    return -1.0


RATIOS = {
    # wlx figure: (reference figure, how to read it)
    "lookup_concurrent_per_s": ("ref_echo_concurrent_per_s", "target >= 0.6"),
    "lookup_p50_ms": ("ref_echo_p50_ms", "target <= 1.5"),
    "lookup_p99_ms": ("ref_echo_p99_ms", "p99 target < 3 ms"),
    "lookup_sequential_per_s": ("ref_echo_sequential_per_s", ""),
    "snapshot_listings_per_s": ("ref_sqlite_inserts_per_s", "token rows per listing ~12"),
    "import_records_per_s": ("ref_seal_per_s", "identifier keys per record ~12"),
    "import_file_listings_per_s": ("ref_seal_per_s", "identifier keys per record ~12"),
}
PEER_LIST_RATIOS = ("lookup_concurrent_per_s", "lookup_p50_ms", "lookup_p99_ms")
SCALE_NOTES = {
    "lookup_p50_ms": "target <= 1.3",
    "receiver_bytes_per_listing": "target: flat",
    "snapshot_listings_per_s": "",
    "import_records_per_s": "",
    "lookup_p99_ms": "",
    "lookup_concurrent_per_s": "",
    "delta_sync_s": "the cost follows the change: flat",
}


def with_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Each figure with a reference, divided by it, in ``results["ratios"]``:
    wlx over the same run's reference; on the node holding peers' lists, over
    the echo measured there; at each larger list size, over the smallest."""
    ratios = {}

    def add(name: str, value: float, ref: float, note: str) -> None:
        ratios[name] = {"ratio": round(value / ref, 3), "note": note}

    for key, (ref, note) in RATIOS.items():
        if key in results and results.get(ref):
            add(f"{key}/{ref}", results[key], results[ref], note)
    held = results.get("peer_lists", {})
    for key in PEER_LIST_RATIOS:
        ref = key.replace("lookup_", "ref_echo_")
        if key in held and held.get(ref):
            add(f"peer_lists.{key}/{ref}", held[key], held[ref], RATIOS[key][1])
    scale = results.get("scales", {})
    sizes = scale.get("sizes", [])
    for size in sizes[1:]:
        small, large = scale["per_size"][str(sizes[0])], scale["per_size"][str(size)]
        for key, note in SCALE_NOTES.items():
            if large.get(key) and small.get(key):
                add(f"scales.{key}@{size}/@{sizes[0]}", large[key], small[key], note)
        for key in ("receiver_serve_rss_mib", "cn_serve_rss_mib"):
            add(
                f"scales.{key}@{size}/@{sizes[0]}",
                large[key]["rss_mib"],
                max(small[key]["rss_mib"], 0.1),
                "target: flat",
            )
        if results.get("ref_sqlite_inserts_per_s"):
            add(
                f"scales.snapshot_listings_per_s@{size}/ref_sqlite_inserts_per_s",
                large["snapshot_listings_per_s"],
                results["ref_sqlite_inserts_per_s"],
                "token rows per listing ~12",
            )
    results["ratios"] = ratios
    return results


def flattened(results: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, figure)`` for printing; the targets are printed apart."""
    for key, value in results.items():
        if key == "targets" and not prefix:
            continue
        if isinstance(value, dict) and not {"ratio", "rss_mib"} & set(value):
            yield from flattened(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def measure_all(args: argparse.Namespace, partial: Path) -> dict[str, Any]:
    """Every section in turn; what is measured so far is written to
    ``partial`` after each (a long run that fails keeps its figures)."""
    results: dict[str, Any] = {}
    partial.parent.mkdir(parents=True, exist_ok=True)
    sections: list[tuple[str, Any]] = []
    if not args.import_only:
        primitives = min(100_000, max(10_000, args.records))
        sections.append(("", lambda: bench_refs.primitives(primitives)))
        sections.append(("", lambda: run(args)))
    sections.append(("", lambda: file_import(args)))
    if not args.import_only and args.peer_lists:
        sections.append(("peer_lists", lambda: bench_scale.peer_lists(args)))
    if not args.import_only and args.scales:
        sections.append(("scales", lambda: bench_scale.scales(args, partial)))
    for key, section in sections:
        figures = section()
        if key:
            results[key] = figures
        else:
            results.update(figures)
        partial.write_text(json.dumps(results, indent=2) + "\n")
    partial.unlink()
    partial.with_suffix(".scales.json").unlink(missing_ok=True)
    return bench_targets.judged(with_ratios(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, help="listings in CN's list (20,000)")
    parser.add_argument("--changes", type=int, default=1_000, help="changes in the delta sync")
    parser.add_argument("--lookups", type=int, help="single lookups to time (2,000)")
    parser.add_argument("--clients", type=int, help="concurrent lookup client processes (8)")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--freshness-interval",
        type=float,
        default=2.0,
        help="RU's sync interval while freshness is measured",
    )
    parser.add_argument(
        "--quick", action="store_true", help="10,000 listings, 1,000 lookups, 4 clients (CI)"
    )
    parser.add_argument(
        "--frontends",
        type=int,
        help="instead: lookups/s with 1..N `wlx serve` front-ends of one node "
        "(--backend postgres for N > 1; scripts/bench_frontends.py)",
    )
    parser.add_argument(
        "--import-records",
        type=int,
        help="listings in the file of the file import (100,000; 1000000 for a million)",
    )
    parser.add_argument("--import-only", action="store_true", help="measure only the file import")
    bench_scale.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    quick = {
        "records": 10_000,
        "lookups": 1_000,
        "clients": 4,
        "import_records": 10_000,
        "scales": "1000,3000",
        "peer_lists": 10,
        "peer_list_size": 100,
    }
    full = {
        "records": 20_000,
        "lookups": 2_000,
        "clients": 8,
        "import_records": 100_000,
        "scales": "100000,1000000",
        "peer_lists": 10,
        "peer_list_size": 10_000,
    }
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.scales = bench_scale.parse_sizes(args.scales)
    # Lookups timed at each list size and on the node holding peers' lists.
    args.section_lookups = min(args.lookups, 400) if args.quick else args.lookups
    if not args.frontends and not args.import_only:
        bench_scale.refuse_early(args)
    if args.frontends:
        import bench_frontends

        results: dict[str, Any] = bench_frontends.run(args)
        name = f"results-frontends-{args.backend}.json"
    else:
        name = f"results-{args.backend}.json"
        results = measure_all(args, args.out / f"partial-{name}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / name
    path.write_text(json.dumps(results, indent=2) + "\n")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    flat = dict(flattened(results))
    width = max(len(k) for k in flat)
    for key, value in flat.items():
        print(f"{key:<{width}}  {value}")
    bench_targets.print_summary(results)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
