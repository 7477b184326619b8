"""Lookups/s with 1..N ``wlx serve`` front-ends of one node (run by
``scripts/bench --backend postgres --frontends N``; docs/scaling.md).

CN (an origin, served) lists ``--records`` people; RU (the node measured)
pulls CN's list once into its store, then is served by 1, 2, ... N
``wlx serve RU --listen ...`` processes at once.  For each N, ``--clients``
client processes send ``--lookups`` single lookups (half hits, half misses)
over mutual TLS, spread evenly over the front-ends, as a load balancer
would; the figure is lookups answered per second, with every lookup logged
and rate-limited through the shared store.  All processes share this
machine's cores: read the ratios against N = 1, and against the number of
cores, not the absolute figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import bench
import bench_refs

from wlx.node.core.limits import LimitSettings, Rate
from wlx.node.directory import init_node
from wlx.node.outgoing import origin, ownlist
from wlx.node.rpc.sync_client import sync_peer
from wlx.node.trust import credentials

METHOD = "/wlx.v1.Lookup/Check"


def spread(addresses: list[str], credential: Any, requests: list[bytes], clients: int) -> float:
    """Lookups/s with ``clients`` processes, client i on front-end i mod N."""
    chunks = [requests[i::clients] for i in range(clients)]
    jobs = [(addresses[i % len(addresses)], credential, METHOD, c) for i, c in enumerate(chunks)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(clients) as pool:
        pool.map(bench_refs._client, [(a, cred, m, c[:5], 5) for a, cred, m, c in jobs])
        start = time.perf_counter()
        pool.map(bench_refs._client, [(a, cred, m, c, 0) for a, cred, m, c in jobs])
        elapsed = time.perf_counter() - start
    return len(requests) / elapsed


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.backend != "postgres" and args.frontends > 1:
        raise SystemExit("several front-ends need --backend postgres (a SQLite store takes one)")
    tmp = Path(tempfile.mkdtemp(prefix="wlx-bench-fe-"))
    cn_port = bench.free_port()
    ports = [bench.free_port() for _ in range(args.frontends)]
    unlimited = Rate(per_minute=1e12, burst=1e12, per_day=1e15)
    cn = init_node(
        tmp / "CN",
        node_id="CN",
        listen=f"127.0.0.1:{cn_port}",
        storage=bench.storage_for(args.backend, "CN", args.dsn),
    )
    ru = init_node(
        tmp / "RU",
        node_id="RU",
        listen=f"127.0.0.1:{ports[0]}",
        storage=bench.storage_for(args.backend, "RU", args.dsn),
    )
    ru.config = dataclasses.replace(ru.config, limits=LimitSettings(officer=unlimited))
    ru.paths.config.write_text(ru.config.to_toml(), encoding="utf-8")
    origin.add_peer(cn, ru.card.raw, f"127.0.0.1:{ports[0]}")
    origin.add_peer(ru, cn.card.raw, f"127.0.0.1:{cn_port}")
    records = bench.make_records("CN", args.records, 1)
    ownlist.import_records(cn, records)
    officer = credentials.issue(ru, name="bench-post", role="officer", days=1)
    cn.close()
    results: dict[str, Any] = {
        "backend": args.backend,
        "records": args.records,
        "lookups": args.lookups,
        "clients": args.clients,
        "cores": os.cpu_count(),
    }
    cn_proc = bench.serve(tmp / "CN", cn_port)
    try:
        report = sync_peer(ru, bench.peer_of(ru, "CN"))
        assert report.ok, report.error
        ru.close()
        requests = bench.lookup_requests(records, args.lookups)
        for n in range(1, args.frontends + 1):
            procs = [bench.serve(tmp / "RU", port, listen=True) for port in ports[:n]]
            addresses = [f"127.0.0.1:{port}" for port in ports[:n]]
            try:
                rate = spread(addresses, officer, requests, args.clients)
            finally:
                for proc in procs:
                    proc.terminate()
                    proc.wait(timeout=30)
            results[f"lookups_per_s_{n}_frontends"] = round(rate)
        one = results["lookups_per_s_1_frontends"]
        for n in range(2, args.frontends + 1):
            results[f"speedup_{n}_over_1"] = round(results[f"lookups_per_s_{n}_frontends"] / one, 2)
    finally:
        cn_proc.terminate()
        cn_proc.wait(timeout=30)
    return results
