"""Run the fuzz targets of tests/fuzz_targets.py under atheris, one by one.

Each target runs in its own process (atheris owns the process while it
fuzzes), seeded with the valid messages of docs/vectors/messages.json and a
real audit bundle; a finding is written to fuzz-out/TARGET/.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

TARGETS = [
    "batch",
    "snapshot_part",
    "pull",
    "snapshot",
    "signed",
    "hit",
    "receipt",
    "detail_params",
    "detail_answer",
    "sealed",
    "card",
    "note",
    "bundle",
    "records_jsonl",
    "records_csv",
    "manifest",
    "credential",
    "config",
]


def _target(name: str, scratch: Path):  # type: ignore[no-untyped-def]
    import fuzz_targets
    from test_codec_fuzz import SEEDS

    from wlx.crypto.card import parse_card
    from wlx.crypto.errors import MalformedError, VerificationError
    from wlx.crypto.note import open_note
    from wlx.node.core.errors import Rejection
    from wlx.node.protocol import codec
    from wlx.v1 import envelope_pb2

    seeds = list(SEEDS.values())
    if name in fuzz_targets.DECODERS:
        return fuzz_targets.DECODERS[name], seeds
    if name == "sealed":

        def sealed(data: bytes) -> None:
            message = envelope_pb2.SealedEnvelope()
            try:
                message.ParseFromString(data)
            except Exception:  # noqa: BLE001 - protobuf's own error class
                return
            with contextlib.suppress(Rejection):
                codec.decode_sealed(message)

        return sealed, seeds
    if name == "card":

        def card(data: bytes) -> None:
            with contextlib.suppress(MalformedError, VerificationError):
                parse_card(data)

        return card, [b"{}"]
    if name == "note":

        def note(data: bytes) -> None:
            with contextlib.suppress(MalformedError, VerificationError):
                open_note(data, [], max_size=16384)

        return note, [b"wlx.exchange/CN\n1\nAAAA\n\n"]
    if name == "bundle":
        return fuzz_targets.decode_bundle_target, [b'{"format":1}\n']
    if name.startswith("records_"):
        fmt = name.split("_", 1)[1]
        seed = b'{"id":"CN-1","names":["A B"],"dob":"1980"}\n'
        return fuzz_targets.records_target(fmt), [seed, b"id,names,dob\nCN-1,A B,1980\n"]
    if name == "manifest":
        return fuzz_targets.manifest_target(scratch), [b'{"id":"1","names":["A"],"dob":"1980"}\n']
    if name == "credential":
        return fuzz_targets.credential_target(scratch), [b'{"wlx_credential": 2}']
    if name == "config":
        return fuzz_targets.config_target, [b'node_id = "CN"\nlisten = "127.0.0.1:1"\n']
    raise SystemExit(f"unknown target {name} (--list)")


def run_one(name: str, seconds: int) -> None:
    """Fuzz one target in this process (called in a child)."""
    import atheris

    with tempfile.TemporaryDirectory() as scratch:
        with atheris.instrument_imports(include=["wlx", "fuzz_targets"]):
            target, seeds = _target(name, Path(scratch))
        corpus = ROOT / "fuzz-out" / name / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds):
            (corpus / f"seed-{i}").write_bytes(seed)
        atheris.Setup(
            [
                sys.argv[0],
                f"-max_total_time={seconds}",
                "-rss_limit_mb=1024",
                "-max_len=65536",
                f"-artifact_prefix={corpus.parent}/",
                str(corpus),
            ],
            target,
        )
        atheris.Fuzz()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20, help="per target (default 20)")
    parser.add_argument("--target", action="append", help="only this target (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the targets")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list:
        print("\n".join(TARGETS))
        return 0
    if importlib.util.find_spec("atheris") is None:
        print("fuzz: atheris is not installed; scripts/fuzz installs it (extra [fuzz])")
        return 2
    if args.child:
        run_one(args.child, args.seconds)
        return 0
    failed = []
    for name in args.target or TARGETS:
        print(f"== fuzz {name} ({args.seconds} s)", flush=True)
        child = subprocess.run(
            [sys.executable, __file__, "--child", name, "--seconds", str(args.seconds)],
            capture_output=True,
            text=True,
            check=False,
        )
        tail = [line for line in child.stderr.splitlines() if line.startswith(("#", "Done"))]
        print(tail[-1] if tail else "", flush=True)
        if child.returncode != 0:
            failed.append(name)
            print(child.stderr[-3000:], file=sys.stderr)
    print(
        f"fuzzed {len(args.target or TARGETS)} targets; crashes in: {', '.join(failed) or 'none'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
