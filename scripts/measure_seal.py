"""Protocol 1 against protocol 2 sealing (docs/protocol.md §4.3), in one process.

    .venv/bin/python scripts/measure_seal.py --records 10000

For the same records and epoch key, once per protocol: the origin's CPU to
make each listing's upsert (``outbound.upsert_for``: tokens, seal keys,
AEAD), the upsert's bytes on the wire (its serialized ``Upsert``), and the
bytes a receiver's SQLite store grows by when it applies them (file size
after a checkpoint, and the ``entries`` and ``tokens`` tables from
``dbstat``).  The two protocols are timed in alternating chunks, so that the
load of a shared machine falls on both alike: read the ratio.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench

from wlx.crypto.tokens import EpochKey
from wlx.node.protocol import codec, outbound
from wlx.node.protocol.messages import Upsert
from wlx.node.store.sqlite import open_sqlite

CHUNK = 500


def store_bytes(path: Path, upserts: list[Upsert]) -> tuple[int, int, int]:
    """(file growth, entries bytes, tokens bytes) of applying ``upserts``."""
    store = open_sqlite(path)
    store.close()
    empty = path.stat().st_size
    store = open_sqlite(path)
    for start in range(0, len(upserts), 1_000):
        with store.write() as tx:
            tx.apply_ops("CN", upserts[start : start + 1_000])
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = dict(
            conn.execute(
                "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN ('entries', 'tokens') "
                "GROUP BY name"
            ).fetchall()
        )
    return path.stat().st_size - empty, int(tables["entries"]), int(tables["tokens"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    records = bench.make_records("CN", args.records, 1)
    key1 = EpochKey(bytes(range(32)), "CN", "RU", 1)
    keys = {1: key1, 2: replace(key1, protocol=2)}
    made: dict[int, list[Upsert]] = {1: [], 2: []}
    cpu = {1: 0.0, 2: 0.0}
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        for protocol, key in keys.items():
            began = time.process_time()
            made[protocol].extend(outbound.upsert_for(r, 1, key) for r in chunk)
            cpu[protocol] += time.process_time() - began
    n = len(records)
    tokens = sum(len(u.tokens) for u in made[1]) / n
    print(f"{n} listings, {tokens:.2f} token entries per listing")
    tmp = Path(tempfile.mkdtemp(prefix="wlx-seal-"))
    for protocol in (1, 2):
        wire = sum(len(codec.encode_upsert(u)) for u in made[protocol])
        grown, entries, token_rows = store_bytes(tmp / f"p{protocol}.db", made[protocol])
        print(
            f"protocol {protocol}: origin {1e6 * cpu[protocol] / n:6.1f} us CPU per listing; "
            f"wire {wire / n:6.0f} B per listing; receiver SQLite {grown / n:6.0f} B per "
            f"listing (entries {entries / n:.0f} B, tokens {token_rows / n:.0f} B)"
        )


if __name__ == "__main__":
    main()
