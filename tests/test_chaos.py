"""``scripts/chaos`` in a small short mode: receiver and origin SIGKILLed
mid-sync, a partition, a stalling and a trickling peer, lookups under load.
Nothing may be lost and no rejection logged (issue 9, "Deliver as well")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHAOS = Path(__file__).resolve().parents[1] / "scripts" / "chaos.py"


def test_chaos_short_mode_loses_nothing_and_accuses_no_one() -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(CHAOS),
            "--records",
            "800",
            "--kills",
            "3",
            "--changes",
            "150",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    start = run.stdout.index("{\n")
    figures = json.loads(run.stdout[start:])
    assert figures["lost"] == 0 and figures["extra"] == 0, figures
    assert figures["false_rejections"] == 0, figures
    assert figures["receiver_kills"] >= 1 and figures["origin_kills"] >= 1, figures
    assert figures["failed_syncs_while_cut"] >= 1 and figures["stalled_sync_survived"], figures
    assert figures["lookups"] > 0 and figures["lookup_errors"] == 0, figures
    assert run.returncode == 0, run.stderr[-2000:]
