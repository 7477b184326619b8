"""Manifest parsers (pure): PAXLST, CSV, JSON Lines, MRZ lines; and the screening report."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from wlx.client.types import ScreenResult
from wlx.node.cli.screening import Report, report_json, report_lines
from wlx.node.core import manifest
from wlx.node.core.entries import Document, Entry
from wlx.node.incoming.lookup import Hit

TODAY = datetime.date(2026, 12, 1)
DATA = Path(__file__).parent / "data"
TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
)


def parse(text: str, fmt: str | None = None) -> manifest.Manifest:
    return manifest.parse(text, fmt, today=TODAY)


def test_paxlst_passengers_names_dates_documents_and_release_character() -> None:
    parsed = parse((DATA / "paxlst.edi").read_text())
    assert parsed.format == "paxlst"
    anna, sean, wei = parsed.entries
    assert anna == Entry(
        id="passenger 1 seat 12A",
        names=("ANNA MARIA ERIKSSON",),
        dob="1974-08-12",
        documents=(Document("P", "UTO", "L898902C3"),),
    )
    # "?'" is a released apostrophe, not a segment end; CCYYMMDD with format 102.
    assert sean.names == ("SEAN O'BRIEN",) and sean.dob == "1980-05-17"
    assert sean.documents == () and sean.unusable == (
        "document (DOC segment 26) has no issuing country (LOC+91)",
    )
    assert wei.dob == "" and wei.documents == (Document("P", "CHN", "E12345678"),)
    assert wei.names == () and wei.unusable == (
        "date of birth (DTM+329, segment 28) is not a date",
        "names without a date of birth were not checked (documents were)",
    )


def test_paxlst_hostile_input_is_refused_quickly() -> None:
    import time

    start = time.monotonic()
    for text in ("UNH+1+PAXLST'NAD+FL+++" + "?" * 50_001, "UNH+1+PAXLST'" + "?a" * 50_000):
        with pytest.raises(manifest.ManifestError, match="not terminated"):
            parse(text, "paxlst")
    assert time.monotonic() - start < 5  # linear, not exponential


def test_paxlst_with_other_separators_and_on_one_line() -> None:
    text = (
        'UNA*|.? "UNH|1|PAXLST*D*02B*UN*IATA"NAD|FL|||DOE*JOHN"DTM|329*700101"'
        'DOC|P|E1"LOC|91|CHN"CNT|42*1"UNT|6|1"'
    )
    (entry,) = parse(text).entries
    assert entry.names == ("JOHN DOE",) and entry.dob == "1970-01-01"
    assert entry.documents == (Document("P", "CHN", "E1"),)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("UNH+1+INVOIC:D:96A:UN'", "segment 1 .UNH.: the message is not a PAXLST"),
        ("UNH+1+PAXLST:D:02B:UN'NAD+FL+++DOE:JOHN", "segment 2: not terminated"),
        ("UNH+1+PAXLST'nad+FL'", "segment 2: not an EDIFACT segment tag"),
        ("UNH+1+PAXLST:D:02B:UN'CNT+42:0'", "holds nobody"),
        ("UNA:+", "UNA.: the service string advice is cut short"),
    ],
)
def test_paxlst_errors_name_the_segment(text: str, match: str) -> None:
    with pytest.raises(manifest.ManifestError, match=match) as caught:
        parse(text, "paxlst")
    assert "DOE" not in str(caught.value)


def test_csv_with_documents_and_mrz() -> None:
    text = (
        "id,names,dob,documents,mrz\n"
        "12A,Wang Wei|王伟,1980-05-17,P:CHN:E12345678|I:CHN:X1,\n"
        f'12B,,,,"{TD3.replace(chr(10), "|")}"\n'
        "12C,A B,1970,P:CHN,\n"
    )
    a, b, c = parse(text).entries
    assert a.names == ("Wang Wei", "王伟") and len(a.documents) == 2
    assert b.names == ("ANNA MARIA ERIKSSON",) and b.dob == "1974-08-12"
    assert b.documents == (Document("P", "UTO", "L898902C3"),)
    assert c.unusable == ("document 1 is not TYPE:COUNTRY:NUMBER",)


def test_a_bad_field_leaves_the_others_checkable() -> None:
    text = (
        '{"id": "1", "names": ["A B"], "dob": "1980-02-30", "documents": ["P:CHN:E1"]}\n'
        '{"id": "2", "names": ["A B"], "dob": "1980", "documents": ["P:CH:E1"]}\n'
    )
    one, two = parse(text).entries
    assert (one.names, one.dob, one.documents) == ((), "", (Document("P", "CHN", "E1"),))
    assert one.unusable[0].startswith("date of birth: ")
    assert (two.names, two.dob, two.documents) == (("A B",), "1980", ())
    assert two.unusable == ("document 1: a country must be an ICAO three-letter code such as CHN",)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ("ID,names", "header column 1 .*write it as 'id'"),
        ("id;names;dob", "not ';'"),
        ("id,name", "header column 2 is not one of"),
        ("id,dob", "needs a names, documents or mrz column"),
    ],
)
def test_csv_header_mistakes_get_a_hint(header: str, match: str) -> None:
    with pytest.raises(manifest.ManifestError, match=match):
        parse(header + "\n1,2\n", "csv")


def test_json_lines_and_line_separators_inside_strings() -> None:
    rows = [
        {"id": "1", "names": ["Anna\u2028Maria\u0085Eriksson"], "dob": "1974"},
        {"id": "2", "mrz": TD1},
        {"id": "3", "documents": [{"type": "P", "country": "CHN", "number": "E1"}, "P:CHN:E2"]},
    ]
    text = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    one, two, three = parse(text).entries
    assert one.names == ("Anna\u2028Maria\u0085Eriksson",)
    assert two.documents == (Document("I", "UTO", "D23145890"),)
    assert [d.number for d in three.documents] == ["E1", "E2"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[{"id": 1}]\n', "line 1: .*JSON array.*jq"),
        ('{\n  "id": "1"\n}\n', "line 1: .*pretty-printed"),
        ('{"id": "1", "names": "x"}\n{"id": 2, "dob": 1980}\n', "line 2: names is a list"),
        ('{"id": "1", "dob": ' + "9" * 5000 + "}\n", "line 1: a number is too long"),
        ("{}\n" + "[" * 100_000 + "]" * 100_000 + "\n", "line 2: JSON nested deeper"),
    ],
)
def test_json_lines_errors(text: str, match: str) -> None:
    with pytest.raises(manifest.ManifestError, match=match):
        parse(text, "jsonl")


def test_mrz_lines_with_a_bad_check_digit_keep_the_rest() -> None:
    bad = TD3.replace("L898902C36", "L898902C37")  # document number's check digit
    parsed = parse(f"{TD3}\n\n{TD1}\n{bad}\n")
    assert parsed.format == "mrz"
    first, second, third = parsed.entries
    assert first.id == "line 1" and second.id == "line 4" and third.id == "line 7"
    assert third.documents == () and third.dob == "1974-08-12"
    assert third.unusable and "document number" in third.unusable[0]
    with pytest.raises(manifest.ManifestError, match="line 3: not the start of an MRZ"):
        parse(TD3 + "\nSHORT\n", "mrz")


def test_format_detection() -> None:
    assert manifest.detect("UNA:+.? 'UNB") == "paxlst"
    assert manifest.detect('\ufeff{"id": 1}') == "jsonl"
    assert manifest.detect(TD3) == "mrz"
    assert manifest.detect("id,names\n") == "csv"


def test_a_person_with_too_many_names_is_capped_not_refused() -> None:
    names = [f"Name Number{i}" for i in range(10)]
    docs = [f"P:CHN:E{i}" for i in range(9)]
    text = json.dumps({"id": "1", "names": names, "dob": "1980", "documents": docs})
    (entry,) = manifest.parse(text, "jsonl", today=TODAY, limits=(8, 8)).entries
    assert len(entry.names) == 8 and len(entry.documents) == 8
    assert entry.unusable == (
        "names after the first 8 were not checked",
        "documents after the first 8 were not checked",
    )


def test_duplicate_ids_are_made_unique() -> None:
    parsed = parse('{"id": "1", "documents": ["P:CHN:E1"]}\n{"id": "1", "documents": ["P:CHN:E2"]}')
    assert [e.id for e in parsed.entries] == ["1 #1", "1 #2"]


def _hit(ref: str) -> Hit:
    return Hit("CN", ref, "wanted", "arrest", "document", (), "2099-12-31", 1)


def test_report_counts_every_hit_and_everyone_not_fully_checked() -> None:
    parsed = parse((DATA / "paxlst.edi").read_text())
    results = [
        ScreenResult("passenger 1 seat 12A", (_hit("CN-1"),)),
        ScreenResult("passenger 2", (), "a query needs a document, or a name with a date of birth"),
        ScreenResult("passenger 3", (_hit("CN-2"),)),
    ]
    report = Report.of(parsed, results, batch_size=2)
    assert report.counts() == {
        "people": 3,
        "hits": 2,
        "people_hit": 2,
        "not_checked": 1,
        "partly_checked": 1,
        "not_fully_checked": 2,
        "batches": 2,
    }
    lines = report_lines(report)
    assert lines[0] == (
        "screened 3 people (paxlst, 2 batches): 2 hits on 2 people, "
        "2 not fully checked (1 not checked, 1 partly)"
    )
    assert "HIT passenger 1 seat 12A: CN CN-1 wanted, action arrest, matched on document" in lines
    assert any(line.startswith("NOT CHECKED passenger 2: document (DOC") for line in lines)
    assert any(line.startswith("PARTLY CHECKED passenger 3: date of birth") for line in lines)
    data = report_json(report, lambda h: {"ref": h.ref})
    assert [r["checked"] for r in data["results"]] == ["full", "none", "partial"]
    assert data["counts"]["not_fully_checked"] == 2
