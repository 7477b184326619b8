"""The committed generated protobuf code is what the pinned generators make."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_current() -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "gen-proto"), "--check"],
        capture_output=True,
        text=True,
        env={
            "WLX_PYTHON": sys.executable,
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        },
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_every_proto_file_has_generated_code() -> None:
    protos = sorted(p.stem for p in (ROOT / "proto" / "wlx" / "v1").glob("*.proto"))
    generated = sorted(
        p.name.removesuffix("_pb2.py") for p in (ROOT / "proto" / "wlx" / "v1").glob("*_pb2.py")
    )
    assert protos == generated
