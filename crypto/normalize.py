"""Identifier normalisation, version ``wlx-norm-1``.

docs/protocol.md §2 specifies every rule here, and docs/vectors/
normalisation.json holds the vectors a second implementation checks itself
against.  A record and a query are each turned into *identifier keys*: byte
strings that are equal exactly when the normalised identifiers are.  Keys
never leave the node; only keyed tokens of them do (``wlx.crypto.tokens``).

Error messages name the rule that failed, never the rejected value.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from wlx.crypto.errors import InvalidIdentifier

NORMALISATION = "wlx-norm-1"
SEP = "\x1f"  # U+001F UNIT SEPARATOR: cannot occur in any normalised part
MAX_NAME_CHARS = 256
MAX_NUMBER_CHARS = 32

# §2.1 step 4: letters that Unicode does not decompose into a base letter and
# a mark, folded to their ICAO 9303 Part 3 Latin base (lower case: the input
# is already case-folded).
_FOLD = str.maketrans(
    {
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "ł": "l",
        "æ": "ae",
        "œ": "oe",
        "þ": "th",
        "ı": "i",
        "ħ": "h",
        "ŧ": "t",
        "ĸ": "k",
        "ŋ": "n",
    }
)
# §2.1 step 5: apostrophes and their look-alikes are deleted, not turned into
# separators, so "O'Brien" and "OBrien" match (as in ICAO 9303 MRZ names).
_APOSTROPHES = str.maketrans(dict.fromkeys("'`\u00b4\u02b9\u02bb\u02bc\u2018\u2019\u2032", None))
WHITE_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
"""The white space removed around dates and countries (MUST-2.2-1): exactly
these 29 code points (what Python 3.11's ``str.strip()`` removes), and no
others: not U+200B ZERO WIDTH SPACE, not U+FEFF, not U+180E."""
_DOB = re.compile(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?$")
_COUNTRY = re.compile(r"^[A-Z]{3}$")
_NUMBER = re.compile(r"^[A-Z0-9]+$")
# §2.3: MRZ single-letter codes that stand for a three-letter code.
_COUNTRY_ALIASES = {"D": "DEU"}


class KeyKind(StrEnum):
    """The kinds of identifier key, strongest first."""

    DOCUMENT = "document"
    NAME_DOB = "name+dob"
    NAME_DOB_MONTH = "name+dob-month"
    NAME_DOB_YEAR = "name+dob-year"

    @property
    def strength(self) -> int:
        """0 for the strongest kind (document), larger for weaker ones."""
        return list(KeyKind).index(self)


@dataclass(frozen=True, order=True)
class IdentifierKey:
    """One canonical identifier: what a token is computed over."""

    kind: KeyKind
    value: bytes


@dataclass(frozen=True)
class PartialDate:
    """A date of birth known to the year, the month or the day."""

    year: int
    month: int | None = None
    day: int | None = None

    def iso(self) -> str:
        """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""
        out = f"{self.year:04d}"
        if self.month is not None:
            out += f"-{self.month:02d}"
            if self.day is not None:
                out += f"-{self.day:02d}"
        return out

    def kind(self) -> KeyKind:
        """The key kind a name with this date makes."""
        if self.day is not None:
            return KeyKind.NAME_DOB
        if self.month is not None:
            return KeyKind.NAME_DOB_MONTH
        return KeyKind.NAME_DOB_YEAR

    def coarser(self) -> list[PartialDate]:
        """This date and every less precise one: day, then month, then year."""
        out = [self]
        if self.day is not None:
            out.append(PartialDate(self.year, self.month))
        if self.month is not None:
            out.append(PartialDate(self.year))
        return out


def normalize_name(name: str) -> str:
    """Normalise one full name (§2.1).

    Delete apostrophes, NFKC, case fold, strip combining marks, fold the
    letters of ``_FOLD``, delete apostrophes again, NFC, turn every character
    that is not a letter, a mark or a digit into a separator, then sort the
    parts and join them with one space.

    Raises:
        InvalidIdentifier: longer than 256 characters, or no letters left.
    """
    if len(name) > MAX_NAME_CHARS:
        raise InvalidIdentifier(f"a name is longer than {MAX_NAME_CHARS} characters")
    # Apostrophes go before NFKC too: it would turn U+00B4 into a space and a mark.
    text = unicodedata.normalize("NFKC", name.translate(_APOSTROPHES)).casefold()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    text = unicodedata.normalize("NFC", text.translate(_FOLD).translate(_APOSTROPHES))
    # Spacing and enclosing marks (Mc, Me: the vowel signs of Indic scripts) are
    # part of their word; only what is not a letter, mark or digit separates.
    text = "".join(c if unicodedata.category(c)[0] in "LMN" else " " for c in text)
    parts = sorted(text.split())
    if not any(unicodedata.category(c)[0] == "L" for part in parts for c in part):
        raise InvalidIdentifier("a name has no letters")
    return " ".join(parts)


def parse_dob(text: str) -> PartialDate:
    """Parse a date of birth (§2.2): ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``.

    A month or day of ``00`` means unknown (as printed in some documents):
    ``1980-00-00`` is ``1980``, and ``1980-05-00`` is ``1980-05``.

    Raises:
        InvalidIdentifier: not one of these forms, or not a real date.
    """
    match = _DOB.match(text.strip(WHITE_SPACE))
    if match is None:
        raise InvalidIdentifier("a date of birth must be YYYY, YYYY-MM or YYYY-MM-DD")
    year = int(match.group(1))
    month = int(match.group(2)) if match.group(2) is not None else None
    day = int(match.group(3)) if match.group(3) is not None else None
    if month == 0:
        if day not in (None, 0):
            raise InvalidIdentifier("a date of birth with an unknown month has no day")
        month, day = None, None
    if day == 0:
        day = None
    if year < 1800:
        raise InvalidIdentifier("a date of birth is before 1800")
    try:
        datetime.date(year, month or 1, day or 1)
    except ValueError:
        raise InvalidIdentifier("a date of birth is not a real date") from None
    return PartialDate(year, month, day)


def normalize_country(code: str) -> str:
    """Normalise an issuing country (§2.3) to its ICAO 9303 three-letter code.

    Raises:
        InvalidIdentifier: not three letters A-Z after normalisation.
    """
    text = unicodedata.normalize("NFKC", code).upper().replace("<", "").strip(WHITE_SPACE)
    text = _COUNTRY_ALIASES.get(text, text)
    if not _COUNTRY.match(text):
        raise InvalidIdentifier("a country must be an ICAO three-letter code such as CHN")
    return text


def normalize_document_number(number: str) -> str:
    """Normalise a document number (§2.4): upper-case A-Z and 0-9 only.

    Spaces, punctuation and the MRZ filler ``<`` are removed; any other
    character is an error rather than silently dropped.

    Raises:
        InvalidIdentifier: empty, longer than 32 characters, or holding a
            letter or digit outside A-Z and 0-9.
    """
    text = unicodedata.normalize("NFKC", number).upper()
    text = "".join(c for c in text if unicodedata.category(c)[0] in "LN")
    if not text:
        raise InvalidIdentifier("a document number is empty")
    if len(text) > MAX_NUMBER_CHARS:
        raise InvalidIdentifier(f"a document number is longer than {MAX_NUMBER_CHARS} characters")
    if not _NUMBER.match(text) or not text.isascii():
        raise InvalidIdentifier("a document number may hold only A-Z and 0-9")
    return text


def _key(kind: KeyKind, *parts: str) -> IdentifierKey:
    return IdentifierKey(kind, SEP.join((NORMALISATION, kind.value, *parts)).encode("utf-8"))


def document_key(country: str, number: str) -> IdentifierKey:
    """The document key of §2.5: country and number; the type is not part of it.

    Raises:
        InvalidIdentifier: as ``normalize_country``/``normalize_document_number``.
    """
    return _key(KeyKind.DOCUMENT, normalize_country(country), normalize_document_number(number))


def name_dob_key(name: str, dob: PartialDate) -> IdentifierKey:
    """The name + date-of-birth key of §2.5, at the date's own precision.

    Raises:
        InvalidIdentifier: as ``normalize_name``.
    """
    return _key(dob.kind(), normalize_name(name), dob.iso())


def _document_keys(documents: Iterable[tuple[str, str]]) -> set[IdentifierKey]:
    return {document_key(country, number) for country, number in documents}


def record_keys(
    names: Sequence[str], dob: str | None, documents: Sequence[tuple[str, str]]
) -> list[IdentifierKey]:
    """The identifier keys of a listed person (§2.6), sorted, without duplicates.

    One document key per document; when the date of birth is known, one
    name key per name at the date's precision.  ``documents`` holds
    ``(country, number)`` pairs.

    Raises:
        InvalidIdentifier: any identifier is invalid, or the record yields no
            key at all.
    """
    keys = _document_keys(documents)
    names_normalised = [normalize_name(n) for n in names]  # validate even without a dob
    if dob:
        date = parse_dob(dob)
        keys |= {_key(date.kind(), n, date.iso()) for n in names_normalised}
    if not keys:
        raise InvalidIdentifier("a record needs a document, or a name with a date of birth")
    return sorted(keys)


def query_keys(
    names: Sequence[str], dob: str | None, documents: Sequence[tuple[str, str]]
) -> list[IdentifierKey]:
    """The identifier keys of a query (§2.7), sorted, without duplicates.

    As ``record_keys``, except that each name is keyed at the date's
    precision *and every coarser one*, so a query with a full date also finds
    listings whose date of birth is known only to the month or the year.

    Raises:
        InvalidIdentifier: any identifier is invalid, a name comes without a
            date of birth, or the query yields no key.
    """
    keys = _document_keys(documents)
    if names and not dob:
        raise InvalidIdentifier("a name needs a date of birth")
    if dob and not names:
        raise InvalidIdentifier("a date of birth needs a name")
    if dob:
        dates = parse_dob(dob).coarser()
        for name in names:
            normalised = normalize_name(name)
            keys |= {_key(d.kind(), normalised, d.iso()) for d in dates}
    if not keys:
        raise InvalidIdentifier("a query needs a document, or a name with a date of birth")
    return sorted(keys)
