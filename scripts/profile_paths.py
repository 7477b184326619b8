"""Where the time goes: cProfile of a first sync (snapshot), a delta sync and
lookups at the receiving node (docs/scaling.md, "Where the time goes").

    .venv/bin/python scripts/profile_paths.py [--records N] [--lookups N]
        [--backend sqlite|postgres]

CN (the origin) runs as ``wlx serve`` in its own process; the receiving
node RU runs in this process, which is profiled: its pull (receive, verify,
open, stage, apply, index) and its lookups (keys, tokens, store, seals,
log).  Prints, for each, the share of time of the heaviest functions
(own time), grouped by where they live.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench
from demo_data import person

from wlx.node.audit.journal import Journal
from wlx.node.core.records import parse_record
from wlx.node.directory import init_node
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.rpc.sync_client import sync_peer

GROUPS = (
    ("normali", "normalisation (once per query)"),
    ("norm2", "normalisation (once per query)"),
    ("wlx/crypto/names", "normalisation (once per query)"),
    ("opencc", "normalisation (once per query)"),
    ("romanize", "normalisation (once per query)"),
    ("wlx/crypto/tokens", "keyed hashes (per origin)"),
    ("sqlite3", "store (SQLite)"),
    ("psycopg", "store (PostgreSQL)"),
    ("wlx/node/store", "store (wlx SQL)"),
    ("grpc", "gRPC"),
    ("_pb2", "protobuf"),
    ("google/protobuf", "protobuf"),
    ("nacl", "crypto (PyNaCl)"),
    ("cryptography", "crypto (cryptography)"),
    ("wlx/crypto", "crypto (wlx)"),
    ("hmac", "crypto (hmac)"),
    ("_hashlib", "crypto (hashlib)"),
    ("_blake2", "crypto (hashlib)"),
    ("unicodedata", "normalisation"),
    ("wlx/node/audit", "exchange log"),
    ("wlx/node", "wlx node logic"),
    ("threading", "waiting (locks, futures)"),
    ("queue", "waiting (locks, futures)"),
    ("concurrent", "waiting (locks, futures)"),
    ("json", "json"),
)


def group_of(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    if "_thread.lock" in name:  # a lookup waits for its log entry's commit; a pull, its data
        return "waiting (the exchange log's commit, the receiving thread)"
    for needle, group in GROUPS:
        if needle in where:
            return group
    if filename == "~":
        return f"builtins ({name.rsplit(' ', maxsplit=1)[-1].strip('>')[:40]})"
    return "other Python"


def report(title: str, profile: cProfile.Profile, wall: float, top: int = 12) -> None:
    stats = pstats.Stats(profile)
    groups: dict[str, float] = {}
    rows = []
    total = 0.0
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        groups[group_of(filename, name)] = groups.get(group_of(filename, name), 0.0) + tottime
        rows.append((tottime, f"{Path(filename).name}:{name}"))
        total += tottime
    print(f"\n== {title}: {wall:.2f} s wall, {total:.2f} s profiled")
    for group, seconds in sorted(groups.items(), key=lambda g: -g[1])[:10]:
        print(f"  {100 * seconds / total:5.1f}%  {group}")
    print("  heaviest functions (own time):")
    for seconds, where in sorted(rows, reverse=True)[:top]:
        print(f"  {100 * seconds / total:5.1f}%  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--changes", type=int, default=2_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wlx-profile-"))
    cn_port = bench.free_port()
    cn = init_node(tmp / "CN", node_id="CN", listen=f"127.0.0.1:{cn_port}")
    ru = init_node(
        tmp / "RU",
        node_id="RU",
        listen="127.0.0.1:0",
        storage=bench.storage_for(args.backend, "RU", args.dsn),
    )
    origin.add_peer(cn, ru.card.raw, "127.0.0.1:1")
    origin.add_peer(ru, cn.card.raw, f"127.0.0.1:{cn_port}")
    records = bench.make_records("CN", args.records, 1)
    ownlist.import_records(cn, records)
    cn_db = cn.paths.root / cn.config.storage.path
    cn.close()
    proc = bench.serve(tmp / "CN", cn_port)
    try:
        peer = bench.peer_of(ru, "CN")
        for title, prepare in (
            (f"first sync, {args.records} listings (snapshot)", None),
            (f"delta sync, {args.changes} changes", args.changes),
        ):
            if prepare:
                from wlx.node.directory import open_node

                changes = [
                    parse_record(
                        {**person("CN", random.Random(i), i), "id": f"CN-D{i:07d}"}, line=0
                    )
                    for i in range(prepare)
                ]
                cn_again = open_node(tmp / "CN")
                ownlist.import_records(cn_again, changes)
                cn_again.close()
            profile = cProfile.Profile()
            start = time.perf_counter()
            profile.enable()
            result = sync_peer(ru, peer)
            profile.disable()
            assert result.ok, result.error
            report(title, profile, time.perf_counter() - start)
        with sqlite3.connect(cn_db) as conn:
            batches, wire = conn.execute(
                "SELECT COUNT(*), SUM(LENGTH(signed)) FROM outbox WHERE peer = 'RU'"
            ).fetchone()
        print(
            f"\n== on the wire: {args.changes} new listings in {batches} signed batches, "
            f"{wire} bytes: {wire / args.changes:.0f} bytes per upsert"
        )

        rng = random.Random(7)
        listed = [r for r in records if r.documents]
        queries = []
        for i in range(args.lookups):
            if i % 2 == 0:
                d = rng.choice(listed).documents[0]
                queries.append(Query(documents=((d.type, d.country, d.number),)))
            else:
                queries.append(Query(names=(f"Nobody Number{i}",), dob="1970-01-01"))
        journal = Journal(ru)
        lookup = Lookup(ru, journal)
        lookup.check(queries[0], caller="warm-up")
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        for query in queries:
            lookup.check_result(query, caller="post-1", purpose="profile")
        profile.disable()
        wall = time.perf_counter() - start
        report(
            f"{args.lookups} lookups in one thread, half hits "
            f"({1000 * wall / args.lookups:.2f} ms each, without gRPC)",
            profile,
            wall,
        )
        journal.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        ru.close()


if __name__ == "__main__":
    main()
