"""Online-tier benchmarks (docs/protocol.md §15), run by ``scripts/bench --online``.

Measures on this machine:
  * the origin's VOPRF evaluations per second on one core (batches of 1,000,
    with the batched DLEQ proof), and the requester's blind + verify +
    finalize per second;
  * online-tier lookup latency on loopback: one person per call, the origin
    a ``wlx serve`` process with mutual TLS, the lookup node in this process
    (p50/p95);
  * a 500-person manifest screened against an online-tier origin (one
    Evaluate round trip).
Results are printed as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wlx.crypto import online as online_crypto
from wlx.node.core.records import parse_record
from wlx.node.directory import init_node
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.rpc.evaluate_client import evaluate_sender
from wlx.node.rpc.sync_client import sync_peer

sys.path.insert(0, str(Path(__file__).parent))
from bench import free_port, pct, serve
from demo_data import person


def crypto_rates(n: int) -> dict[str, float]:
    key = online_crypto.OnlineKey.derive(bytes(32), "CN", "RU", 1)
    ikeys = [f"wlx-norm-1\x1fname+dob\x1fperson {i}\x1f1980-01-01".encode() for i in range(n)]
    start = time.perf_counter()
    blinded = online_crypto.blind_keys(ikeys)
    blind_s = time.perf_counter() - start
    start = time.perf_counter()
    evaluation = key.evaluate([b.element for b in blinded])
    eval_s = time.perf_counter() - start
    start = time.perf_counter()
    online_crypto.unblind_keys(
        key.public, blinded, evaluation, origin="CN", recipient="RU", epoch=1
    )
    finish_s = time.perf_counter() - start
    return {
        "origin_evaluations_per_s_per_core": round(n / eval_s),
        "requester_blind_verify_finalize_per_s": round(n / (blind_s + finish_s)),
    }


def query_of(obj: dict[str, Any]) -> Query:
    docs = tuple((d["type"], d["country"], d["number"]) for d in obj.get("documents", []))
    return Query(tuple(obj.get("names", [])), obj.get("dob", ""), docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2_000, help="online listings at CN")
    parser.add_argument("--lookups", type=int, default=200, help="single lookups to time")
    parser.add_argument("--batch", type=int, default=1_000, help="elements per evaluation batch")
    args = parser.parse_args()
    results: dict[str, Any] = {"records": args.records, **crypto_rates(args.batch)}

    tmp = Path(tempfile.mkdtemp(prefix="wlx-bench-online-"))
    ports = {n: free_port() for n in ("CN", "RU")}
    nodes = {n: init_node(tmp / n, node_id=n, listen=f"127.0.0.1:{p}") for n, p in ports.items()}
    cn, ru = nodes["CN"], nodes["RU"]
    cn.config = dataclasses.replace(cn.config, oprf_daily_budget=10**12)
    cn.paths.config.write_text(cn.config.to_toml(), encoding="utf-8")
    origin.add_peer(cn, ru.card.raw, f"127.0.0.1:{ports['RU']}")
    origin.add_peer(ru, cn.card.raw, f"127.0.0.1:{ports['CN']}")
    rng = random.Random(1)
    people = [person("CN", rng, i) for i in range(args.records)]
    ownlist.import_records(
        cn, [parse_record({**p, "tier": "online"}, line=i) for i, p in enumerate(people)]
    )
    proc = serve(tmp / "CN", ports["CN"])
    try:
        with ru.store.read() as tx:
            peer = tx.get_peer("CN")
        assert peer is not None
        report = sync_peer(ru, peer)
        assert report.ok, report.error
        finder = Lookup(ru)
        finder.evaluate_send = evaluate_sender(ru)
        queries = [query_of(p) for p in people]
        finder.check(queries[0])  # warm up the channel setup paths
        latencies = []
        for i in range(args.lookups):
            start = time.perf_counter()
            hits = finder.check(queries[i % len(queries)])
            latencies.append(time.perf_counter() - start)
            assert hits, "an online listing must hit"
        results["online_lookup_p50_ms"] = round(pct(latencies, 0.5) * 1000, 2)
        results["online_lookup_p95_ms"] = round(pct(latencies, 0.95) * 1000, 2)
        manifest = queries[:500]
        times = []
        for _ in range(3):
            start = time.perf_counter()
            screened = finder.screen(manifest)
            times.append(time.perf_counter() - start)
            assert all(r.hits for r in screened)
        results["online_manifest_500_ms"] = round(min(times) * 1000, 1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for node in nodes.values():
            node.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
