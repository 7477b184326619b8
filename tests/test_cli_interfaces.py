"""The officer's commands on the interfaces people use: ``lookup --mrz``, manifests in
PAXLST, CSV and MRZ lines (against the running nodes of ``test_cli.served``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import Served, fails, ok, served, wlx

DATA = Path(__file__).parent / "data"
TD3 = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
]
__all__ = ["served"]  # the module-scoped fixture, shared with test_cli


def test_lookup_by_mrz(served: Served) -> None:
    assert ok("lookup", *served.officer, "--mrz", TD3[0], "--mrz", TD3[1]).strip() == "no hit"
    data = json.loads(ok("lookup", *served.officer, "--mrz", "\\n".join(TD3), "--json"))
    assert data == {"hits": [], "not_checked": [], "fully_checked": True, "unusable": []}
    bad = TD3[1].replace("7408122", "7408123")
    fails("lookup", *served.officer, "--mrz", TD3[0], "--mrz", bad, match="date of birth")
    fails("lookup", *served.officer, "--mrz", TD3[0], match="2 lines of 36")
    fails("lookup", *served.officer, "--doc", TD3[1], match="give it as an MRZ")


def test_screen_a_paxlst_message(served: Served) -> None:
    out = ok("screen", *served.officer, DATA / "paxlst.edi", real=True)
    lines = out.splitlines()
    assert lines[0] == (
        "screened 3 people (paxlst, 1 batch): 1 hits on 1 people, "
        "2 not fully checked (0 not checked, 2 partly)"
    )
    assert "HIT passenger 3: CN CN-0001 wanted, action arrest, matched on document" in lines
    assert any(
        line.startswith("PARTLY CHECKED passenger 2: document (DOC segment 26)") for line in lines
    )
    two = ok("screen", *served.officer, DATA / "paxlst.edi", "--batch-size", "2")
    assert two.startswith("screened 3 people (paxlst, 2 batches): 1 hits")
    data = json.loads(ok("screen", *served.officer, DATA / "paxlst.edi", "--json"))
    assert data["format"] == "paxlst" and data["counts"]["hits"] == 1
    assert wlx("screen", *served.officer, DATA / "paxlst.edi", "--strict").code == 1


def test_screen_csv_and_mrz_lines(served: Served, tmp_path: Path) -> None:
    csv_file = tmp_path / "manifest.csv"
    csv_file.write_text(
        "id,names,dob,documents\n1A,Wang Wei,1980-05-17,\n1B,Nobody,1990,P:RUS:123\n",
        encoding="utf-8",
    )
    data = json.loads(ok("screen", *served.officer, csv_file, "--json"))
    assert [(r["id"], len(r["hits"]), r["checked"]) for r in data["results"]] == [
        ("1A", 1, "full"),
        ("1B", 0, "full"),
    ]
    mrz_file = tmp_path / "mrz.txt"
    mrz_file.write_text("\n".join(TD3) + "\n\n" + "\n".join(TD3) + "\n")
    data = json.loads(ok("screen", *served.officer, mrz_file, "--json"))
    assert data["format"] == "mrz" and data["counts"]["people"] == 2
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("id;names;dob\n1;A;1980\n")
    fails("screen", *served.officer, semicolons, match="not ';'")


def test_the_progress_bar_stays_off_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from wlx.node.cli.officer import progress_bar

    with progress_bar(10, "screening") as advance:
        advance(5)
        advance(10)
    assert capsys.readouterr().err == ""
