"""``wlx audit report`` rendered in a real headless Chromium: a screenshot of the page.

Needs the Debian package ``chromium`` (``scripts/test`` installs it when run as
root on a machine without it); skipped, saying so, where it is missing.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from support.audit import NODES, bundle_of, keyring, witnessed_federation
from support.nodes import FederationMaker

from wlx.node.audit.offline.html_report import render
from wlx.node.audit.offline.summary import summarise
from wlx.node.audit.offline.verify import verify_bundle

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _png_size_and_colours(data: bytes) -> tuple[int, int, int]:
    """Width, height and a count of distinct rows of a PNG (enough to see it is not blank)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            chunks.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    stride = len(raw) // height
    rows = {raw[i * stride + 1 : (i + 1) * stride] for i in range(height)}
    return width, height, len(rows)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_report_renders_in_headless_chromium(
    federation: FederationMaker, tmp_path: Path
) -> None:
    fed = witnessed_federation(federation)
    ring = keyring(fed)
    summary = summarise([verify_bundle(bundle_of(fed, n), ring) for n in NODES])
    page = tmp_path / "report.html"
    page.write_text(render(summary, generated=1_800_000_000, sources=NODES), encoding="utf-8")
    shot = tmp_path / "report.png"
    assert CHROMIUM is not None
    base = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") >= 5 and "wlx audit report" in dom.stdout
    result = subprocess.run(
        [
            *base,
            "--hide-scrollbars",
            "--window-size=1100,2600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    width, height, distinct_rows = _png_size_and_colours(shot.read_bytes())
    assert (width, height) == (1100, 2600)
    assert distinct_rows > 100  # text, tables and charts, not a blank page
    keep = Path(__file__).parent.parent / "build" / "audit-report.png"
    keep.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, keep)  # for a person to look at after the run
