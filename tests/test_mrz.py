"""MRZ parsing (ICAO Doc 9303): the specimens, every check digit, two-digit years."""

from __future__ import annotations

import datetime

import pytest

from wlx.node.core import mrz

TODAY = datetime.date(2026, 12, 1)

# ICAO Doc 9303 specimens (part 4 appendix B: TD3; part 5: TD1; part 6: TD2).
TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
)
TD2 = "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nD231458907UTO7408122F1204159<<<<<<<6"


def _with(text: str, line: int, index: int, char: str) -> str:
    lines = text.split("\n")
    lines[line] = lines[line][:index] + char + lines[line][index + 1 :]
    return "\n".join(lines)


def _recomposite(text: str, layout: str) -> str:
    """Fix the composite check digit after a deliberate change elsewhere."""
    lines = text.split("\n")
    if layout == "TD1":
        data = lines[0][5:30] + lines[1][0:7] + lines[1][8:15] + lines[1][18:29]
        return _with(text, 1, 29, mrz.check_digit(data))
    two = lines[1]
    end = len(two) - 1
    return _with(text, 1, end, mrz.check_digit(two[0:10] + two[13:20] + two[21:end]))


@pytest.mark.parametrize(
    ("text", "layout", "kind", "number"),
    [
        (TD3, "TD3", "P", "L898902C3"),
        (TD1, "TD1", "I", "D23145890"),
        (TD2, "TD2", "I", "D23145890"),
        (TD3.lower(), "TD3", "P", "L898902C3"),  # typed in lower case
        ("  " + TD3.replace("\n", "  \n ") + "\n\n", "TD3", "P", "L898902C3"),  # padding
    ],
)
def test_icao_specimens(text: str, layout: str, kind: str, number: str) -> None:
    read = mrz.parse(text, TODAY)
    assert (read.layout, read.document_type, read.issuing_state) == (layout, kind, "UTO")
    assert read.document_number == number
    assert (read.surname, read.given_names, read.name) == (
        "ERIKSSON",
        "ANNA MARIA",
        "ANNA MARIA ERIKSSON",
    )
    assert (read.nationality, read.dob, read.sex, read.expires) == (
        "UTO",
        "1974-08-12",
        "F",
        "2012-04-15",
    )


@pytest.mark.parametrize(
    ("text", "line", "index", "field"),
    [
        (TD3, 1, 9, "document number"),
        (TD3, 1, 19, "date of birth"),
        (TD3, 1, 27, "date of expiry"),
        (TD3, 1, 42, "personal number"),
        (TD3, 1, 43, "composite"),
        (TD2, 1, 9, "document number"),
        (TD2, 1, 19, "date of birth"),
        (TD2, 1, 27, "date of expiry"),
        (TD2, 1, 35, "composite"),
        (TD1, 0, 14, "document number"),
        (TD1, 1, 6, "date of birth"),
        (TD1, 1, 14, "date of expiry"),
        (TD1, 1, 29, "composite"),
    ],
)
def test_a_wrong_check_digit_names_the_field_not_the_value(
    text: str, line: int, index: int, field: str
) -> None:
    digit = text.split("\n")[line][index]
    wrong = str((int(digit) + 1) % 10) if digit.isdigit() else "1"
    with pytest.raises(mrz.MrzError, match=field) as caught:
        mrz.parse(_with(text, line, index, wrong), TODAY)
    assert "L898902C3" not in str(caught.value) and "ERIKSSON" not in str(caught.value)


def test_an_altered_field_is_caught_by_its_check_digit() -> None:
    # One digit of the date of birth changed, composite recomputed: the field's digit catches it.
    altered = _recomposite(_with(TD3, 1, 18, "3"), "TD3")
    with pytest.raises(mrz.MrzError, match="date of birth"):
        mrz.parse(altered, TODAY)


def test_lenient_parsing_keeps_what_passes_and_names_what_failed() -> None:
    lines = mrz.split_lines(_with(TD3, 1, 9, "0"))  # document number check digit wrong
    read, problems = mrz.parse_lenient(lines, TODAY)
    assert read.document_number == "" and read.dob == "1974-08-12" and read.name
    assert any("document number" in p for p in problems)
    read, problems = mrz.parse_lenient(mrz.split_lines(_with(TD1, 1, 6, "0")), TODAY)
    assert read.dob == "" and read.document_number == "D23145890"
    assert any("date of birth" in p for p in problems)


def test_a_long_td1_document_number() -> None:
    # Part 5: a number over 9 characters puts "<" at the check position and
    # continues in the optional data, followed by its own check digit.
    number = "D23145890123"
    head = f"I<UTO{number[:9]}<{number[9:]}{mrz.check_digit(number)}"
    one = head + "<" * (30 - len(head))
    text = _recomposite(
        f"{one}\n7408122F1204159UTO<<<<<<<<<<<0\nERIKSSON<<ANNA<MARIA<<<<<<<<<<", "TD1"
    )
    assert mrz.parse(text, TODAY).document_number == number


@pytest.mark.parametrize(
    ("yymmdd", "expected"),
    [
        ("740812", "1974-08-12"),
        ("000101", "2000-01-01"),
        ("261130", "2026-11-30"),  # yesterday: this century
        ("261202", "1926-12-02"),  # tomorrow would be the future: last century
        ("991231", "1999-12-31"),
        ("7408<<", "1974-08"),
        ("74<<<<", "1974"),
    ],
)
def test_two_digit_birth_years_are_never_in_the_future(yymmdd: str, expected: str) -> None:
    assert mrz.birth_date(yymmdd, TODAY) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "3 lines of 30"),
        ("P<UTOERIKSSON<<ANNA", "3 lines of 30"),
        (TD3.split("\n", maxsplit=1)[0], "3 lines of 30"),
        (TD3 + "\n" + TD3.split("\n")[1], "3 lines of 30"),
        (TD3.replace("ANNA", "ANNÄ"), "only A-Z"),
        (TD3.replace("ERIKSSON<", "ERIKSSON-"), "only A-Z"),
        (
            _recomposite(_with(_with(TD3, 1, 15, "1"), 1, 19, mrz.check_digit("741812")), "TD3"),
            "real date",
        ),
    ],
)
def test_unreadable_mrz(text: str, match: str) -> None:
    with pytest.raises(mrz.MrzError, match=match):
        mrz.parse(text, TODAY)


def test_check_digit_examples() -> None:
    # ICAO 9303 part 3 4.9: weights 7 3 1, A=10 ... Z=35, < = 0.
    assert mrz.check_digit("520727") == "3"
    assert mrz.check_digit("L898902C3") == "6"
    assert mrz.check_digit("<<<<<<<<<") == "0"
