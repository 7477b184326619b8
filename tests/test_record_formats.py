"""Records files: JSON Lines edge cases, hints for format mistakes, FollowTheMoney, expiry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from test_cli import blank, fails, nodes, ok, rec, wlx  # noqa: F401 - fixtures

from wlx.node.core.ftm import ListingTerms, country_code, parse_ftm
from wlx.node.core.records import RecordError, RecordFormat, detect_format, parse_records

TERMS = ListingTerms(
    "sanctioned", "refuse-entry", "UN SC res. 1718", "Foreign Ministry", "2030-01-01"
)


def _jsonl(*records: Mapping[str, object]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x1c", "\x0b", "\x0c"])
def test_line_separators_inside_strings_are_text(separator: str) -> None:
    text = _jsonl(rec("A-1", authority=f"Bureau{separator}East"), rec("A-2"))
    records = parse_records(text, RecordFormat.JSONL)
    assert [r.id for r in records] == ["A-1", "A-2"]
    assert records[0].authority == f"Bureau{separator}East"


def test_crlf_line_ends() -> None:
    text = _jsonl(rec("A-1"), rec("A-2")).replace("\n", "\r\n")
    assert len(parse_records(text, RecordFormat.JSONL)) == 2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (_jsonl(rec("A-1")) + '{"id": ' + "9" * 5000 + "}\n", r"^line 2: a number is too long"),
        (_jsonl(rec("A-1")) + "[" * 100_000 + "]" * 100_000 + "\n", r"^line 2: JSON nested deeper"),
        (
            json.dumps([rec("A-1"), rec("A-2")]) + "\n",
            r"^line 1: not a JSON object; .*JSON array.*jq -c",
        ),
        (
            json.dumps(rec("A-1"), indent=2) + "\n",
            r"^line 1: not valid JSON .*pretty-printed.*jq -c \.",
        ),
        ("id,names,dob\nA-1,X,1980\n", r"^line 1: not valid JSON .*looks like CSV"),
    ],
)
def test_json_lines_mistakes_name_the_line_and_give_a_hint(text: str, match: str) -> None:
    with pytest.raises(RecordError, match=match) as caught:
        parse_records(text, RecordFormat.JSONL)
    assert "Test Person" not in str(caught.value)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ("id;names;dob;category", r"header column 1 .*separate fields with ','"),
        ("ID,names,dob", r"header column 1 .*write it as 'id'"),
        ("id, names,dob", r"header column 2 .*write it as 'names'"),
        ('{"id": "A-1"}', r"looks like JSON"),
    ],
)
def test_csv_header_mistakes_get_a_hint(header: str, match: str) -> None:
    with pytest.raises(RecordError, match=match):
        parse_records(header + "\nA-1,x,1980\n", RecordFormat.CSV)


FTM = [
    {
        "id": "NK-abc123",
        "schema": "Person",
        "properties": {
            "name": ["Ivan Petrov"],
            "alias": ["Иван Петров", "Ivan Petrov"],
            "firstName": ["Ivan"],
            "middleName": ["Sergeyevich"],
            "lastName": ["Petrov"],
            "weakAlias": ["Vanya"],
            "birthDate": ["1975-11-02"],
            "nationality": ["ru"],
            "gender": ["male"],
            "passportNumber": ["751234567"],
            "topics": ["sanction"],
        },
        "datasets": ["example"],
    },
    {"id": "NK-co", "schema": "Company", "properties": {"name": ["Acme"]}},
    {"id": "NK-nodob", "schema": "Person", "properties": {"name": ["Name Only"]}},
    {
        "id": "pp-1",
        "schema": "Passport",
        "properties": {"holder": ["NK-abc123"], "number": ["AB 123"], "country": ["ua"]},
    },
    {
        "id": "NK-2",
        "schema": "Person",
        "properties": {
            "name": ["Kim Chol"],
            "birthDate": ["1971-02-03", "1970"],
            "nationality": ["kp", "ru"],
            "passportNumber": ["9"],
            "idNumber": ["8"],
        },
    },
]


def test_ftm_persons_become_records() -> None:
    result = parse_ftm(_jsonl(*FTM), TERMS)
    ivan, kim = result.records
    assert ivan.id == "NK-abc123"
    assert ivan.names == ("Ivan Petrov", "Иван Петров", "Ivan Sergeyevich Petrov")
    assert (ivan.dob, ivan.nationality, ivan.sex) == ("1975-11-02", "RUS", "M")
    assert [(d.type, d.country, d.number) for d in ivan.documents] == [
        ("P", "RUS", "751234567"),
        ("P", "UKR", "AB123"),
    ]
    assert (ivan.category, ivan.action, ivan.expires) == (
        "sanctioned",
        "refuse-entry",
        "2030-01-01",
    )
    assert kim.dob == "1970" and kim.documents == () and kim.nationality == "PRK"
    assert result.skipped == {"Company": 1}
    assert any("several birth dates" in w for w in result.warnings)
    assert any(
        w.startswith("1 persons have no document and no name with a birth") for w in result.warnings
    )
    assert any("2 document numbers have no single issuing country" in w for w in result.warnings)
    assert not any("Kim" in w or "Petrov" in w for w in result.warnings)


def test_ftm_errors_name_the_line() -> None:
    bad = [
        FTM[0],
        {"id": "X", "schema": "Person", "properties": {"name": "A", "birthDate": ["1980-13-01"]}},
    ]
    with pytest.raises(RecordError, match=r"^line 2: .*date of birth"):
        parse_ftm(_jsonl(*bad), TERMS)
    with pytest.raises(RecordError, match=r"^line 1: an FtM entity has"):
        parse_ftm('{"properties": {}}\n', TERMS)


def test_country_codes() -> None:
    assert [country_code(c) for c in ("ru", "DE", "xk", "zz", "rus")] == [
        "RUS",
        "DEU",
        "RKS",
        None,
        None,
    ]


def test_format_detection() -> None:
    assert detect_format(_jsonl(*FTM), "list.json") == "ftm"
    assert detect_format(_jsonl(rec("A-1")), "list.jsonl") == "jsonl"
    assert detect_format("id,names\n", "LIST.CSV") == "csv"


def test_cli_imports_ftm_with_listing_terms(nodes: Path, tmp_path: Path) -> None:  # noqa: F811
    node = nodes / "cn"
    path = tmp_path / "entities.ftm.json"
    path.write_text(_jsonl(*FTM), encoding="utf-8")
    fails("records", "import", node, path, match="needs --category, --action")
    run = wlx(
        "records",
        "import",
        node,
        path,
        "--category",
        "sanctioned",
        "--action",
        "refuse-entry",
        "--legal-basis",
        "UN SC res. 1718",
        "--authority",
        "MFA",
        "--expires",
        "2030-01-01",
    )
    assert run.code == 0, run
    assert "imported 2 records: 2 added" in run.out
    assert "warning: skipped entities that are not persons: 1 Company" in run.err
    assert ok("records", "count", node).strip() == "2"


def test_cli_warns_of_expired_records(nodes: Path, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "l.jsonl"
    path.write_text(_jsonl(rec("A-1"), rec("A-2", expires="2001-01-01")), encoding="utf-8")
    run = wlx("records", "import", nodes / "cn", path)
    assert run.code == 0, run
    assert "warning: 1 records have already expired (first: A-2" in run.err


def test_cli_json_array_hint(nodes: Path, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "l.json"
    path.write_text(json.dumps([rec("A-1")]), encoding="utf-8")
    fails("records", "import", nodes / "cn", path, match="JSON array.*nothing was imported")
