"""Protocol 1 against protocol 2 sealing (docs/protocol.md §4.3), in one process.

    .venv/bin/python scripts/measure_seal.py --records 10000

For the same records and epoch key, once per protocol: the origin's CPU to
make each listing's upsert (``outbound.upsert_for``: tokens, seal keys,
AEAD; the record's identifier keys are derived beforehand, once for both),
the upsert's bytes on the wire (its serialized ``Upsert``), the receiver's
CPU to parse and apply them (``apply_ops`` in transactions of
1,000, as a batch is applied) and the bytes its SQLite store grows by (file
size after a checkpoint, and the ``entries`` and ``tokens`` tables from
``dbstat``).  The two protocols are timed in alternating chunks (and
alternating order), so that the load of a shared machine falls on both
alike: read the ratio.
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


def store_bytes(path: Path, upserts: list[Upsert]) -> tuple[int, int, int, float]:
    """(file growth, entries bytes, tokens bytes, CPU seconds) of parsing and
    applying ``upserts`` (serialized, as a batch carries them)."""
    store = open_sqlite(path)
    store.close()
    empty = path.stat().st_size
    wire = [codec.encode_upsert(u) for u in upserts]
    store = open_sqlite(path)
    began = time.process_time()
    for start in range(0, len(wire), 1_000):
        ops = [codec.decode_upsert(data) for data in wire[start : start + 1_000]]
        with store.write() as tx:
            tx.apply_ops("CN", ops)
    cpu = time.process_time() - began
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = dict(
            conn.execute(
                "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN ('entries', 'tokens') "
                "GROUP BY name"
            ).fetchall()
        )
    return path.stat().st_size - empty, int(tables["entries"]), int(tables["tokens"]), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    records = bench.make_records("CN", args.records, 1)
    key1 = EpochKey(bytes(range(32)), "CN", "RU", 1)
    keys = {1: key1, 2: replace(key1, protocol=2)}
    made: dict[int, list[Upsert]] = {1: [], 2: []}
    cpu = {1: 0.0, 2: 0.0}
    began = time.process_time()
    for r in records:  # derived once per record and kept: the same for both protocols
        r.identifier_keys(key1.normalisation)
    derive = time.process_time() - began
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        order = sorted(keys.items(), reverse=bool(start // CHUNK % 2))
        for protocol, key in order:
            began = time.process_time()
            made[protocol].extend(outbound.upsert_for(r, 1, key) for r in chunk)
            cpu[protocol] += time.process_time() - began
    n = len(records)
    tokens = sum(len(u.tokens) for u in made[1]) / n
    print(
        f"{n} listings, {tokens:.2f} token entries per listing; identifier keys derived "
        f"once beforehand ({1e6 * derive / n:.1f} us CPU per listing, not counted below)"
    )
    tmp = Path(tempfile.mkdtemp(prefix="wlx-seal-"))
    for protocol in (1, 2):
        wire = sum(len(codec.encode_upsert(u)) for u in made[protocol])
        grown, entries, token_rows, applied = store_bytes(tmp / f"p{protocol}.db", made[protocol])
        print(
            f"protocol {protocol}: origin {1e6 * cpu[protocol] / n:6.1f} us CPU per listing; "
            f"wire {wire / n:6.0f} B per listing; receiver {1e6 * applied / n:6.1f} us CPU "
            f"per listing (parse and apply), SQLite {grown / n:6.0f} B per listing "
            f"(entries {entries / n:.0f} B, tokens {token_rows / n:.0f} B)"
        )


if __name__ == "__main__":
    main()
