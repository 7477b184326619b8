"""Machine-readable zones (ICAO Doc 9303, parts 3 to 7): parsing and checking.

Pure: text in, an ``Mrz`` or an ``MrzError`` out.  Three layouts:

* TD3 (passports, and MRV-A visas): 2 lines of 44 characters;
* TD2 (and MRV-B visas): 2 lines of 36 characters;
* TD1 (identity cards): 3 lines of 30 characters.

Every check digit is verified (document number, date of birth, date of
expiry, optional data where the layout has one, and the composite); a wrong
one is an ``MrzError`` naming the field, never its value.  A TD1 document
number longer than nine characters (check digit position ``<``, the rest in
the optional data) is read as ICAO 9303 part 5 prescribes.

Two-digit years: a date of birth is put in the most recent century that
does not place it after ``today``; an expiry date is always 20YY.  Unknown
birth day or month (``<<``) give a date known to the month or year only.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from enum import StrEnum

from wlx.node.core.errors import UserError

_WEIGHTS = (7, 3, 1)
_CHARS = re.compile(r"^[A-Z0-9<]+$")


class Layout(StrEnum):
    """The ICAO 9303 MRZ layouts."""

    TD1 = "TD1"
    """3 lines of 30 characters (identity cards)."""
    TD2 = "TD2"
    """2 lines of 36."""
    TD3 = "TD3"
    """2 lines of 44 (passports)."""


LAYOUTS: dict[tuple[int, int], Layout] = {
    (3, 30): Layout.TD1,
    (2, 36): Layout.TD2,
    (2, 44): Layout.TD3,
}
"""The layout of (number of lines, their length)."""


class MrzError(UserError):
    """An MRZ that cannot be read or fails a check; names the field only."""


def check_digit(text: str) -> str:
    """The ICAO 9303 check digit of ``text`` (digits, A-Z, ``<``), as one character.

    Raises:
        MrzError: a character outside 0-9, A-Z and ``<``.
    """
    total = 0
    for index, char in enumerate(text):
        if char.isdigit():
            value = int(char)
        elif "A" <= char <= "Z":
            value = ord(char) - ord("A") + 10
        elif char == "<":
            value = 0
        else:
            raise MrzError("an MRZ holds only A-Z, 0-9 and <")
        total += value * _WEIGHTS[index % 3]
    return str(total % 10)


class _Checks:
    """Verifies check digits: raises at the first wrong one, or (lenient) collects them."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.failed: list[str] = []

    def verify(self, field: str, data: str, digit: str, *, optional: bool = False) -> bool:
        # An empty optional-data field may have "<" for its check digit (part 4, 4.2.2.1).
        if optional and digit == "<" and set(data) <= {"<"}:
            return True
        if digit == check_digit(data):
            return True
        message = f"MRZ check digit of the {field} is wrong (mistyped or altered?)"
        if self.strict:
            raise MrzError(message)
        self.failed.append(message)
        return False


@dataclass(frozen=True)
class Mrz:
    """What an MRZ says of its holder and the document."""

    layout: Layout
    document_type: str
    """e.g. "P" for a passport, "I" or "ID" for an identity card, "V" for a visa."""
    issuing_state: str
    document_number: str
    surname: str
    given_names: str
    nationality: str
    dob: str
    """"YYYY-MM-DD" (or "YYYY-MM" / "YYYY" when the MRZ leaves day or month unknown)."""
    sex: str
    """"M", "F" or "X"."""
    expires: str

    @property
    def name(self) -> str:
        """Given names then surname, as one full name ("ANNA MARIA ERIKSSON")."""
        return " ".join(p for p in (self.given_names, self.surname) if p)


def _name(field: str) -> tuple[str, str]:
    primary, _, secondary = field.partition("<<")

    def words(text: str) -> str:
        return " ".join(w for w in text.split("<") if w)

    return words(primary), words(secondary)


def birth_date(raw: str, today: datetime.date) -> str:
    """A YYMMDD date of birth (``<<`` for an unknown month or day) as ISO text.

    Raises:
        MrzError: not such a date.
    """
    yy, month_raw, day_raw = raw[0:2], raw[2:4], raw[4:6]
    if not yy.isdigit():
        raise MrzError("MRZ date of birth has no year")
    if month_raw == "<<" and day_raw != "<<":
        raise MrzError("MRZ date of birth has a day but no month")
    month = None if month_raw == "<<" else month_raw
    day = None if day_raw == "<<" else day_raw
    if not all(p is None or p.isdigit() for p in (month, day)):
        raise MrzError("MRZ date of birth is not YYMMDD")
    year = 2000 + int(yy)
    month_n, day_n = int(month or 1), int(day or 1)
    if (year, month_n, day_n) > (today.year, today.month, today.day):
        year -= 100  # not born in the future: the previous century
    try:
        datetime.date(year, month_n, day_n)
    except ValueError:
        raise MrzError("MRZ date of birth is not a real date") from None
    return f"{year:04d}" + "".join(f"-{p}" for p in (month, day) if p is not None)


def _expiry(raw: str) -> str:
    try:
        return datetime.date(2000 + int(raw[:2]), int(raw[2:4]), int(raw[4:6])).isoformat()
    except ValueError:
        raise MrzError("MRZ date of expiry is not a real date") from None


def _sex(raw: str) -> str:
    if raw not in ("M", "F", "<", "X"):
        raise MrzError("MRZ sex is not M, F or <")
    return "X" if raw in ("<", "X") else raw


def _clean(field: str) -> str:
    return field.replace("<", "")


def split_lines(text: str) -> list[str]:
    """The MRZ lines of ``text``: stripped, non-blank, spaces inside removed."""
    return [line.strip().replace(" ", "").upper() for line in text.splitlines() if line.strip()]


def layout_of(lines: list[str]) -> Layout:
    """The layout of these lines.

    Raises:
        MrzError: not 3 x 30, 2 x 36 or 2 x 44 characters of A-Z, 0-9 and <.
    """
    lengths = {len(line) for line in lines}
    layout = LAYOUTS.get((len(lines), lengths.pop())) if len(lengths) == 1 else None
    if layout is None:
        raise MrzError(
            "an MRZ is 3 lines of 30 characters (TD1), or 2 lines of 36 (TD2) or 44 (TD3)"
        )
    if not all(_CHARS.match(line) for line in lines):
        raise MrzError("an MRZ holds only A-Z, 0-9 and <")
    return layout


def parse(text: str, today: datetime.date) -> Mrz:
    """Read and check the MRZ in ``text`` (its 2 or 3 lines).

    Raises:
        MrzError: wrong layout or characters, a wrong check digit (naming the
            field), or a date that is not a date.
    """
    return _parse(split_lines(text), today, _Checks(strict=True))


def parse_lenient(lines: list[str], today: datetime.date) -> tuple[Mrz, list[str]]:
    """Read an MRZ, keeping what passes its checks (for manifests).

    A field whose check digit is wrong is left empty (document number, date
    of birth) and named in the returned problems; the rest is still usable.

    Raises:
        MrzError: wrong layout or characters, or a date that is not a date.
    """
    checks = _Checks(strict=False)
    result = _parse(lines, today, checks)
    return result, checks.failed


def _parse(lines: list[str], today: datetime.date, checks: _Checks) -> Mrz:
    layout = layout_of(lines)
    if layout == Layout.TD1:
        return _td1(lines, today, checks)
    return _td2_td3(lines, layout, today, checks)


def _td2_td3(lines: list[str], layout: Layout, today: datetime.date, checks: _Checks) -> Mrz:
    one, two = lines
    visa = one[0] == "V"
    number = two[0:9]
    if layout == Layout.TD2 and two[9] == "<" and not visa:
        number = _long_number(number, two[28:35], checks)
    elif not checks.verify("document number", two[0:9], two[9]):
        number = ""
    dob_ok = checks.verify("date of birth", two[13:19], two[19])
    checks.verify("date of expiry", two[21:27], two[27])
    end = len(two) - 1
    if layout == Layout.TD3 and not visa:
        checks.verify("personal number", two[28:42], two[42], optional=True)
    if not visa:  # visas (MRV-A, MRV-B) have no composite check digit
        checks.verify("whole MRZ (composite)", two[0:10] + two[13:20] + two[21:end], two[end])
    surname, given = _name(one[5:])
    return Mrz(
        layout=layout,
        document_type=_clean(one[0:2]),
        issuing_state=_clean(one[2:5]),
        document_number=_clean(number),
        surname=surname,
        given_names=given,
        nationality=_clean(two[10:13]),
        dob=birth_date(two[13:19], today) if dob_ok else "",
        sex=_sex(two[20]),
        expires=_expiry(two[21:27]),
    )


def _long_number(first: str, optional: str, checks: _Checks) -> str:
    """A document number longer than nine characters (part 5 4.2.4 note j)."""
    rest = optional.split("<", 1)[0]
    if len(rest) < 2:
        raise MrzError("MRZ document number is marked as long but its end is missing")
    if not checks.verify("document number", first + rest[:-1], rest[-1]):
        return ""
    return first + rest[:-1]


def _td1(lines: list[str], today: datetime.date, checks: _Checks) -> Mrz:
    one, two, three = lines
    number = one[5:14]
    if one[14] == "<":
        number = _long_number(number, one[15:30], checks)
    elif not checks.verify("document number", one[5:14], one[14]):
        number = ""
    dob_ok = checks.verify("date of birth", two[0:6], two[6])
    checks.verify("date of expiry", two[8:14], two[14])
    checks.verify("whole MRZ (composite)", one[5:30] + two[0:7] + two[8:15] + two[18:29], two[29])
    surname, given = _name(three)
    return Mrz(
        layout=Layout.TD1,
        document_type=_clean(one[0:2]),
        issuing_state=_clean(one[2:5]),
        document_number=_clean(number),
        surname=surname,
        given_names=given,
        nationality=_clean(two[15:18]),
        dob=birth_date(two[0:6], today) if dob_ok else "",
        sex=_sex(two[7]),
        expires=_expiry(two[8:14]),
    )
