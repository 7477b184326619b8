"""Measure an import into the own list: CPU per record, bytes written, file size.

    .venv/bin/python scripts/measure_own_import.py --records 20000 --against main --rounds 2

Each measurement is a child process that makes a new SQLite node, imports
``--records`` of the bench's records (``bench.make_records``) with
``ownlist.import_records``, and prints its CPU time per record
(``time.process_time``), the bytes it wrote (``write_bytes`` of
``/proc/self/io``: what reached the storage layer, WAL and checkpoints
included) and the size of the database files.  ``--against REF`` measures
that git revision's code too, alternately with this tree's, in the same run
(the machine's load shifts; compare within one run only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
LAYOUT = {"node": "node", "crypto": "crypto", "client": "node/client", "v1": "proto/wlx/v1"}
"""The package layout of pyproject.toml's package-dir: wlx.<name> -> path."""


def _written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def child(count: int) -> dict[str, object]:
    sys.path.insert(0, str(SCRIPTS))
    from bench import make_records

    from wlx.node.directory import init_node
    from wlx.node.outgoing import ownlist

    tmp = Path(tempfile.mkdtemp(prefix="wlx-measure-import-"))
    node = init_node(tmp / "CN", node_id="CN", listen="127.0.0.1:1")
    records = make_records("CN", count, 1)
    written, cpu, wall = _written(), time.process_time(), time.perf_counter()
    ownlist.import_records(node, records)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    node.close()
    written = _written() - written
    size = sum(p.stat().st_size for p in (tmp / "CN").glob("wlx.db*"))
    return {
        "records": count,
        "cpu_us_per_record": round(cpu / count * 1e6),
        "wall_s": round(wall, 1),
        "written_mb": round(written / 1e6, 1),
        "db_mb": round(size / 1e6, 1),
    }


def _tree_of(ref: str) -> Path:
    """A package tree (wlx.*) of revision ``ref`` of this repository."""
    tmp = Path(tempfile.mkdtemp(prefix="wlx-measure-tree-"))
    source = tmp / "src"
    source.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    (tmp / "pkg" / "wlx").mkdir(parents=True)
    for name, path in LAYOUT.items():
        (tmp / "pkg" / "wlx" / name).symlink_to(source / path)
    return tmp / "pkg"


def _run(count: int, path: Path | None) -> dict[str, object]:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = str(path)  # ahead of the installed (editable) tree
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--records", str(count)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, object] = json.loads(out.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--against", default="", help="a git revision to measure as well")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.records)))
        return
    other = _tree_of(args.against) if args.against else None
    for _ in range(args.rounds):
        if other is not None:
            print(json.dumps({"tree": args.against, **_run(args.records, other)}), flush=True)
        print(json.dumps({"tree": "this", **_run(args.records, None)}), flush=True)


if __name__ == "__main__":
    main()
