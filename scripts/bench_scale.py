"""Scale measures for scripts/bench (issue 13): several list sizes in one
run, and lookups on a node holding many peers' lists.

``scales``: one origin (CN, a ``wlx serve`` process) grows its list through
each size in turn (``--scales 100000,1000000``; the library import, streamed
in chunks, timed per increment without the making of the synthetic records);
at each size a new peer (its own node, never synced before) pulls CN's
whole list as a snapshot, is served by its own ``wlx serve`` and answers
lookups over mutual TLS (one client, then client processes), after a
delta of ``--changes`` new listings.  Each size reports import, snapshot
and delta figures, bytes on disk per listing at the origin and the
receiver, lookup p50/p99 and lookups/s, and the resident memory of every process (CN's server, the
receiver's server, this process, which imports and pulls).  The largest
size's figures are divided by the smallest's (lookup latency: target ≤ 1.3;
memory: flat).  Sizes above ``LARGE`` need ``--large``, and no run starts if
the disk lacks the space it would need (estimated per listing, then
re-estimated from each size's measured bytes).

``--interrupt-snapshot``: at the largest size, CN's server is stopped
(SIGTERM) part-way through the new peer's snapshot, then restarted; the
report says whether it stopped cleanly (exit status, no traceback in its
log), how much was staged, whether the next sync resumed there (rather than
starting over) and completed, and that no rejection was recorded.

``peer_lists``: a node holding ``--peer-lists`` origins' lists of
``--peer-list-size`` listings each (the origins served side by side while
the node pulls each), then served: lookup p50/p99 and lookups/s beside a bare gRPC echo
over the same mutual TLS, driven by the same client harness.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bench
import bench_refs
from demo_data import person

from wlx.node.core.limits import LimitSettings, Rate
from wlx.node.core.node import Node
from wlx.node.core.records import Record, parse_record
from wlx.node.directory import init_node
from wlx.node.incoming import receiver
from wlx.node.incoming.lookup import Query
from wlx.node.outgoing import bulk_import, origin
from wlx.node.rpc import sync_client
from wlx.node.rpc.server import WORKERS
from wlx.node.rpc.sync_client import sync_peer
from wlx.node.rpc.wire import query_to_pb
from wlx.node.trust import credentials
from wlx.v1 import lookup_pb2

LARGE = 1_000_000
"""Sizes above this need ``--large`` (10,000,000 takes hours and tens of GB)."""
BYTES_PER_LISTING_GUESS = 10_000
"""Origin and receiver together, before a size has been measured (the
100,000-listing run of session 3: ~4,700 at the receiver)."""
DISK_MARGIN = 1.25
UNLIMITED = Rate(per_minute=1e12, burst=1e12, per_day=1e15)  # a load test, not a border post
CHECK = "/wlx.v1.Lookup/Check"


def parse_sizes(text: str) -> list[int]:
    """``"100000,1000000"`` → ``[100000, 1000000]`` (sorted, no duplicates)."""
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if any(size <= 0 for size in sizes):
        raise SystemExit("bench: --scales takes positive list sizes, e.g. 100000,1000000")
    return sizes


def check_disk(where: Path, listings: int, bytes_per_listing: float) -> None:
    """Refuse (one line, exit status 1) if ``where`` lacks the space."""
    need = listings * bytes_per_listing * DISK_MARGIN
    free = shutil.disk_usage(where).free
    if free < need:
        raise SystemExit(
            f"bench: refusing to start {listings:,} listings: they need about "
            f"{need / 1e9:.1f} GB on disk ({bytes_per_listing:,.0f} bytes per listing "
            f"× {DISK_MARGIN}), {where} has {free / 1e9:.1f} GB free"
        )


def refuse_early(args: argparse.Namespace) -> None:
    """Before anything runs: sizes above ``LARGE`` need ``--large``, and the
    largest size must fit on the disk (one line, exit status 1)."""
    if not args.scales:
        return
    largest = args.scales[-1]
    if largest > LARGE and not args.large:
        raise SystemExit(
            f"bench: {largest:,} listings needs --large (hours of run, tens of GB of disk)"
        )
    check_disk(Path(tempfile.gettempdir()), largest, BYTES_PER_LISTING_GUESS)


def officer_node(directory: Path, node_id: str, port: int, args: argparse.Namespace) -> Node:
    """A node whose officers are not rate-limited (a load test)."""
    node = init_node(
        directory,
        node_id=node_id,
        listen=f"127.0.0.1:{port}",
        storage=bench.storage_for(args.backend, node_id, args.dsn),
    )
    node.config = dataclasses.replace(node.config, limits=LimitSettings(officer=UNLIMITED))
    node.paths.config.write_text(node.config.to_toml(), encoding="utf-8")
    return node


def trust_both(a: Node, a_port: int, b: Node, b_port: int) -> None:
    origin.add_peer(a, b.card.raw, f"127.0.0.1:{b_port}")
    origin.add_peer(b, a.card.raw, f"127.0.0.1:{a_port}")


class Listings:
    """CN's list, made as it is imported (never held whole); every
    ``SAMPLE``-th listing's document is kept for lookups."""

    SAMPLE = 97

    def __init__(self, country: str, seed: int) -> None:
        self.country = country
        self.rng = random.Random(seed)
        self.made = 0
        self.making_s = 0.0
        """Seconds spent making records (not the import's: taken off its time)."""
        self.extra = 0
        """Listings added beside the ``made`` ones (each size's delta)."""
        self.documents: list[tuple[str, str, str]] = []

    def take(self, count: int) -> Iterator[tuple[int, Record]]:
        for _ in range(count):
            i = self.made
            self.made += 1
            start = time.perf_counter()
            record = parse_record(person(self.country, self.rng, i), line=i + 1)
            self.making_s += time.perf_counter() - start
            if i % self.SAMPLE == 0 and record.documents:
                d = record.documents[0]
                self.documents.append((d.type, d.country, d.number))
            yield i + 1, record


def requests_for(documents: list[tuple[str, str, str]], count: int, seed: int) -> list[bytes]:
    """Half hits (a listed document), half misses (an unlisted name and date)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        if i % 2 == 0:
            query = Query(documents=(rng.choice(documents),))
        else:
            query = Query(names=(f"Nobody Number{i}",), dob="1970-01-01")
        out.append(
            lookup_pb2.CheckRequest(person=query_to_pb(query), purpose="bench").SerializeToString()
        )
    return out


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss_now_mib() -> float:
    """This process's resident memory now (MiB)."""
    return bench.rss_mib(os.getpid())["rss_mib"]


def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> float:
    """SIGTERM, wait; seconds it took (killed after ``timeout``: -1)."""
    start = time.perf_counter()
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -1.0
    return round(time.perf_counter() - start, 2)


def serve_logged(directory: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``wlx serve`` with its log (stderr) appended to ``log``."""
    wlx = str(Path(sys.executable).with_name("wlx"))
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [wlx, "serve", str(directory), "--sync-interval", "1000000"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    bench.wait_listening(proc, port, directory)
    return proc


# ------------------------------------------------------------------- scales


def scales(args: argparse.Namespace, partial: Path | None = None) -> dict[str, Any]:
    """Import, snapshot, disk, lookups and memory at each of ``args.scales``;
    each size's figures are also written to ``partial`` as they are taken."""
    sizes: list[int] = args.scales
    refuse_early(args)
    tmp = Path(tempfile.mkdtemp(prefix="wlx-bench-scale-"))
    cn_port = bench.free_port()
    cn = init_node(
        tmp / "CN",
        node_id="CN",
        listen=f"127.0.0.1:{cn_port}",
        storage=bench.storage_for(args.backend, "CN", args.dsn),
    )
    ports = [bench.free_port() for _ in sizes]
    receivers = []
    for k, port in enumerate(ports):
        node = officer_node(tmp / f"R{k}", f"R{k}", port, args)
        trust_both(cn, cn_port, node, port)
        receivers.append(node)
    listings = Listings("CN", 11)
    log = tmp / "cn-serve.log"
    out: dict[str, Any] = {"sizes": sizes, "per_size": {}, "cn_serve_log": str(log)}
    cn_proc = serve_logged(tmp / "CN", cn_port, log)
    per_listing = float(BYTES_PER_LISTING_GUESS)
    try:
        for k, size in enumerate(sizes):
            check_disk(tmp, size - listings.made, per_listing)
            last = k == len(sizes) - 1
            figures, cn_proc = one_size(
                args,
                cn,
                cn_proc,
                cn_port,
                log,
                receivers[k],
                ports[k],
                listings,
                size,
                interrupt=last and args.interrupt_snapshot,
            )
            out["per_size"][str(size)] = figures
            if partial is not None:
                partial.with_suffix(".scales.json").write_text(json.dumps(out, indent=2) + "\n")
            per_listing = max(
                1.0, (figures["origin_dir_bytes"] + figures["receiver_dir_bytes"]) / size
            )
            receivers[k].close()
            shutil.rmtree(tmp / f"R{k}", ignore_errors=True)  # keep the disk for the next size
    finally:
        out["cn_serve_stop_s"] = stop(cn_proc)
        cn.close()
        for node in receivers:
            node.close()
    out.update(compare(out["per_size"], sizes))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def one_size(
    args: argparse.Namespace,
    cn: Node,
    cn_proc: subprocess.Popen[bytes],
    cn_port: int,
    log: Path,
    node: Node,
    port: int,
    listings: Listings,
    size: int,
    *,
    interrupt: bool,
) -> tuple[dict[str, Any], subprocess.Popen[bytes]]:
    """Grow CN's list to ``size``, a new peer pulls it, is served, answers lookups."""
    grow = size - listings.made
    making = listings.making_s
    start = time.perf_counter()
    bulk_import.import_stream(cn, listings.take(grow), wait=60)
    making = listings.making_s - making  # the synthetic records' making is not the import's
    seconds = time.perf_counter() - start - making
    f: dict[str, Any] = {
        "import_added": grow,
        "import_s": round(seconds, 2),
        "import_making_records_s": round(making, 2),
        "import_records_per_s": round(grow / seconds),
        "bench_process_rss_after_import_mib": rss_now_mib(),
    }
    if interrupt:
        f_int, cn_proc, sync_s = interrupted_sync(node, cn_proc, cn_port, log, size)
        f["interrupt"] = f_int
    else:
        start = time.perf_counter()
        report = sync_peer(node, bench.peer_of(node, "CN"))
        sync_s = time.perf_counter() - start
        assert report.ok, report.error
    held = size + listings.extra  # the earlier sizes' deltas are in the list too
    f["listings_held"] = held
    f["snapshot_sync_s"] = round(sync_s, 2)
    f["snapshot_listings_per_s"] = round(held / sync_s)
    f["bench_process_rss_after_sync_mib"] = rss_now_mib()
    if args.backend == "sqlite":
        f["receiver_bytes_per_listing"] = round(bench.disk_bytes(node)["file"] / held)
        f["origin_bytes_per_listing"] = round(bench.disk_bytes(cn)["file"] / held)
    f["receiver_dir_bytes"] = dir_bytes(node.paths.root)
    f["origin_dir_bytes"] = dir_bytes(cn.paths.root)
    f.update(delta(cn, node, listings, args.changes, sync_s))
    officer = credentials.issue(node, name="bench-post", role="officer", days=1)
    proc = bench.serve(node.paths.root, port)
    try:
        requests = requests_for(listings.documents, args.section_lookups, seed=size)
        driven = bench_refs.drive(f"127.0.0.1:{port}", officer, CHECK, requests, args.clients)
        for key, value in driven.items():
            f[f"lookup_{key}"] = value
        f["receiver_serve_rss_mib"] = bench.rss_mib(proc.pid)
        f["cn_serve_rss_mib"] = bench.rss_mib(cn_proc.pid)
        f["bench_process_rss_mib"] = rss_now_mib()
    finally:
        f["receiver_serve_stop_s"] = stop(proc)
    return f, cn_proc


def delta(
    cn: Node, node: Node, listings: Listings, changes: int, snapshot_s: float
) -> dict[str, Any]:
    """``changes`` new listings at CN, pulled by ``node`` as batches: the
    cost should follow the change, not the list."""
    made = [
        parse_record(
            {**person("CN", random.Random(i), i), "id": f"CN-D{listings.made}-{i}"}, line=i
        )
        for i in range(1, changes + 1)
    ]
    bulk_import.import_stream(cn, enumerate(made, start=1), wait=60)
    listings.extra += changes
    start = time.perf_counter()
    report = sync_peer(node, bench.peer_of(node, "CN"))
    seconds = time.perf_counter() - start
    assert report.ok and report.ops == changes, report
    return {
        "delta_changes": changes,
        "delta_sync_s": round(seconds, 3),
        "delta_over_snapshot": round(seconds / snapshot_s, 4),
    }


def interrupted_sync(
    node: Node, cn_proc: subprocess.Popen[bytes], cn_port: int, log: Path, size: int
) -> tuple[dict[str, Any], subprocess.Popen[bytes], float]:
    """The snapshot, with CN's server stopped (SIGTERM) part-way and restarted."""
    done: list[Any] = []
    peer = bench.peer_of(node, "CN")
    start = time.perf_counter()
    thread = threading.Thread(target=lambda: done.append(sync_peer(node, peer)), daemon=True)
    thread.start()
    while thread.is_alive():  # until about a third of the list is staged
        progress = receiver.staged_progress(node, "CN")
        if progress is not None and progress.entries >= size // 3:
            break
        time.sleep(0.2)
    staged_before = progress.entries if progress is not None else 0
    log_start = log.stat().st_size
    cn_proc.send_signal(signal.SIGTERM)
    t0 = time.perf_counter()
    try:
        code = cn_proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        cn_proc.kill()
        code = -9
    stop_s = time.perf_counter() - t0
    thread.join(timeout=300)
    first_s = time.perf_counter() - start
    stopped_log = log.read_bytes()[log_start:].decode("utf-8", "replace")
    progress = receiver.staged_progress(node, "CN")
    f: dict[str, Any] = {
        "staged_when_stopped": staged_before,
        "origin_exit_status": code,
        "origin_stop_s": round(stop_s, 2),
        "origin_log_traceback": "Traceback" in stopped_log,
        "origin_log_closed_database": "closed database" in stopped_log,
        "first_sync_error": done[0].error if done else "did not return",
        "note": "CN's server was restarted: its memory at this size is a new process's",
        "staged_after_stop": progress.entries if progress is not None else 0,
    }
    cn_proc = serve_logged(log.parent / "CN", cn_port, log)
    resumes: list[Any] = []
    real = sync_client._snapshot_parts

    def watched(*a: Any, **kw: Any) -> Any:
        resumes.append(kw.get("resume", a[3] if len(a) > 3 else None))
        return real(*a, **kw)

    sync_client._snapshot_parts = watched
    try:
        t0 = time.perf_counter()
        report = sync_peer(node, peer)
        second_s = time.perf_counter() - t0
    finally:
        sync_client._snapshot_parts = real
    with node.store.read() as tx:
        rejections = tx.list_rejections("CN")
    resumed = resumes[0] if resumes else None
    f.update(
        {
            "resumed_from_entries": resumed.entries if resumed is not None else 0,
            "resumed_at_part": resumed.next_index if resumed is not None else 0,
            "second_sync_ok": report.ok,
            "second_sync_error": report.error,
            "second_sync_entries": report.snapshot_entries,
            "second_sync_s": round(second_s, 2),
            "first_sync_s": round(first_s, 2),
            "rejections_recorded": len(rejections),
        }
    )
    assert report.ok, report.error
    return f, cn_proc, first_s + second_s


def compare(per_size: dict[str, dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """The largest size's figures over the smallest's."""
    if len(sizes) < 2:
        return {}
    small, large = per_size[str(sizes[0])], per_size[str(sizes[-1])]
    out: dict[str, Any] = {}
    for key in ("lookup_p50_ms", "lookup_p99_ms", "lookup_concurrent_per_s", "delta_sync_s"):
        out[f"{key}_large_over_small"] = round(large[key] / small[key], 3)
    for key in ("receiver_serve_rss_mib", "cn_serve_rss_mib"):
        out[f"{key}_large_over_small"] = round(
            large[key]["rss_mib"] / max(small[key]["rss_mib"], 0.1), 3
        )
    out["bench_process_rss_large_over_small"] = round(
        large["bench_process_rss_mib"] / small["bench_process_rss_mib"], 3
    )
    if "receiver_bytes_per_listing" in large:
        out["receiver_bytes_per_listing_large_over_small"] = round(
            large["receiver_bytes_per_listing"] / small["receiver_bytes_per_listing"], 3
        )
    return out


# -------------------------------------------------------------- peer lists


def peer_lists(args: argparse.Namespace) -> dict[str, Any]:
    """Lookups on a node holding ``args.peer_lists`` origins' lists."""
    tmp = Path(tempfile.mkdtemp(prefix="wlx-bench-peers-"))
    port = bench.free_port()
    holder = officer_node(tmp / "PL", "PL", port, args)
    documents: list[tuple[str, str, str]] = []
    origins: dict[str, int] = {}
    import_s = sync_s = 0.0
    for n in range(args.peer_lists):
        node_id = f"O{n:02d}"
        origins[node_id] = bench.free_port()
        o = init_node(
            tmp / node_id,
            node_id=node_id,
            listen=f"127.0.0.1:{origins[node_id]}",
            storage=bench.storage_for(args.backend, node_id, args.dsn),
        )
        trust_both(o, origins[node_id], holder, port)
        # CN's kind of people (two scripts, ~12 identifier keys each), as the
        # list sizes' origin has: other countries' synthetic names have one.
        listings = Listings("CN", 100 + n)
        start = time.perf_counter()
        bulk_import.import_stream(o, listings.take(args.peer_list_size), wait=60)
        import_s += time.perf_counter() - start - listings.making_s
        documents.extend(listings.documents)
        o.close()
    # The origins' servers start side by side (their start-up is most of a
    # small run), then the holder pulls each in turn.
    wlx = str(Path(sys.executable).with_name("wlx"))
    procs = [
        subprocess.Popen(
            [wlx, "serve", str(tmp / node_id), "--sync-interval", "1000000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for node_id in origins
    ]
    try:
        for proc, (node_id, o_port) in zip(procs, origins.items(), strict=True):
            bench.wait_listening(proc, o_port, tmp / node_id)
            start = time.perf_counter()
            report = sync_peer(holder, bench.peer_of(holder, node_id))
            sync_s += time.perf_counter() - start
            assert report.ok, report.error
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            stop(proc)
    held = args.peer_lists * args.peer_list_size
    out: dict[str, Any] = {
        "peer_lists": args.peer_lists,
        "peer_list_size": args.peer_list_size,
        "listings_held": held,
        "snapshot_listings_per_s": round(held / sync_s),
        "import_records_per_s": round(held / import_s),
    }
    if args.backend == "sqlite":
        out["holder_bytes_per_listing"] = round(bench.disk_bytes(holder)["file"] / held)
    officer = credentials.issue(holder, name="bench-post", role="officer", days=1)
    requests = requests_for(documents, args.section_lookups, seed=5)
    echo, echo_port = bench_refs.echo_server(holder, WORKERS)
    try:
        ref = bench_refs.drive(
            f"127.0.0.1:{echo_port}", officer, bench_refs.ECHO_METHOD, requests, args.clients
        )
    finally:
        echo.stop(grace=None)
    proc = bench.serve(tmp / "PL", port)
    try:
        got = bench_refs.drive(f"127.0.0.1:{port}", officer, CHECK, requests, args.clients)
        out["holder_serve_rss_mib"] = bench.rss_mib(proc.pid)
    finally:
        stop(proc)
        holder.close()
    for key, value in ref.items():
        out[f"ref_echo_{key}"] = value
        out[f"lookup_{key}"] = got[key]
    out["lookup_concurrent_clients"] = args.clients
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scales",
        help="list sizes measured in turn, e.g. 100000,1000000 ('' for none; "
        "default 100000,1000000, --quick 1000,3000)",
    )
    parser.add_argument(
        "--large", action="store_true", help=f"allow --scales above {LARGE:,} (e.g. 10000000)"
    )
    parser.add_argument(
        "--interrupt-snapshot",
        action="store_true",
        help="stop CN's server (SIGTERM) part-way through the largest size's snapshot, "
        "restart it, check the sync resumes",
    )
    parser.add_argument(
        "--peer-lists", type=int, help="origins whose lists one node holds (10; 0: none)"
    )
    parser.add_argument(
        "--peer-list-size", type=int, help="listings per origin (10,000; --quick 100)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scale runs' directories")
