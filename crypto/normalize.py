"""Identifier normalisation, versions ``wlx-norm-1`` and ``wlx-norm-2``.

docs/protocol.md §2 specifies every rule here, and docs/vectors/
normalisation.json holds the vectors a second implementation checks itself
against.  A record and a query are each turned into *identifier keys*: byte
strings that are equal exactly when the normalised identifiers are.  Keys
never leave the node; only keyed tokens of them do (``wlx.crypto.tokens``).

Error messages name the rule that failed, never the rejected value.
"""

from __future__ import annotations

import datetime
import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from wlx.crypto.errors import InvalidIdentifier

NORMALISATION_1 = "wlx-norm-1"
NORMALISATION_2 = "wlx-norm-2"
NORMALISATION = NORMALISATION_2
"""The version new keys are made with."""
VERSIONS = (NORMALISATION_1, NORMALISATION_2)
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
_NOT_ASCII_ALNUM = re.compile(r"[^A-Za-z0-9]+")
# §2.3: MRZ single-letter codes that stand for a three-letter code.
_COUNTRY_ALIASES = {"D": "DEU"}


_DATES = ("dob", "dob-month", "dob-year")
# How much each qualifier weakens a name match (§2.8.6); sorted by this, then name.
QUALIFIERS = {
    "transliterated": 1,
    "reordered": 1,
    "swapped day/month": 2,
    "phonetic": 3,
}


@dataclass(frozen=True, order=True)
class KeyKind:
    """How an identifier key matches: a document, or a name with a date.

    ``value`` is the text a hit shows, e.g. ``document``, ``name+dob``,
    ``name+dob-year`` or ``name+dob (phonetic, reordered)``.  In wlx-norm-1 the
    value is also part of the key bytes; in wlx-norm-2 it is a label only.
    """

    base: str
    date: str = ""
    qualifiers: tuple[str, ...] = ()

    DOCUMENT: ClassVar[KeyKind]
    NAME_DOB: ClassVar[KeyKind]
    NAME_DOB_MONTH: ClassVar[KeyKind]
    NAME_DOB_YEAR: ClassVar[KeyKind]

    @classmethod
    def name(cls, date: str, *qualifiers: str) -> KeyKind:
        """A name kind at a date precision (``dob``, ``dob-month``, ``dob-year``)."""
        return cls("name", date, tuple(sorted(set(qualifiers))))

    @property
    def value(self) -> str:
        """The label, as hits show it and wlx-norm-1 keys carry it."""
        if self.base == "document":
            return "document"
        text = f"name+{self.date}"
        return f"{text} ({', '.join(self.qualifiers)})" if self.qualifiers else text

    @classmethod
    def parse(cls, text: str) -> KeyKind:
        """The kind whose ``value`` is ``text``.

        Raises:
            ValueError: not a value of any kind.
        """
        if text == "document":
            return cls.DOCUMENT
        head, _, rest = text.partition(" (")
        date = head.removeprefix("name+")
        qualifiers = tuple(rest.removesuffix(")").split(", ")) if rest else ()
        if (
            not head.startswith("name+")
            or date not in _DATES
            or (rest and not rest.endswith(")"))
            or any(q not in QUALIFIERS for q in qualifiers)
        ):
            raise ValueError("not an identifier kind")
        kind = cls.name(date, *qualifiers)
        if kind.value != text:
            raise ValueError("not an identifier kind")
        return kind

    @property
    def strength(self) -> int:
        """0 for a document, 1 for an exact name and full date; larger is weaker."""
        if self.base == "document":
            return 0
        return 1 + _DATES.index(self.date) + sum(QUALIFIERS[q] for q in self.qualifiers)

    @property
    def level(self) -> str:
        """``strong`` (document, exact name+dob), ``medium`` (transliterated or
        reordered name, full date) or ``weak`` (phonetic, partial or swapped date)."""
        if self.strength <= 1:
            return "strong"
        if self.date == "dob" and set(self.qualifiers) <= {"transliterated", "reordered"}:
            return "medium"
        return "weak"

    def combine(self, other: KeyKind) -> KeyKind:
        """The kind of a match made by a query key of this kind and a listing key
        of ``other``: the coarser date and every qualifier of either."""
        if self.base == "document" or other.base == "document":
            return self
        date = max(self.date, other.date, key=_DATES.index)
        return KeyKind.name(date, *self.qualifiers, *other.qualifiers)


KeyKind.DOCUMENT = KeyKind("document")
KeyKind.NAME_DOB = KeyKind.name("dob")
KeyKind.NAME_DOB_MONTH = KeyKind.name("dob-month")
KeyKind.NAME_DOB_YEAR = KeyKind.name("dob-year")


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


@functools.lru_cache(maxsize=16_384)
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
    return _parse_dob(text.strip(WHITE_SPACE))


@functools.lru_cache(maxsize=4096)
def _parse_dob(text: str) -> PartialDate:
    match = _DOB.match(text)
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
    if text.isascii():  # the letters and digits of ASCII are A-Z, a-z and 0-9
        text = _NOT_ASCII_ALNUM.sub("", text)
    else:
        text = "".join(c for c in text if unicodedata.category(c)[0] in "LN")
    if not text:
        raise InvalidIdentifier("a document number is empty")
    if len(text) > MAX_NUMBER_CHARS:
        raise InvalidIdentifier(f"a document number is longer than {MAX_NUMBER_CHARS} characters")
    if not _NUMBER.match(text) or not text.isascii():
        raise InvalidIdentifier("a document number may hold only A-Z and 0-9")
    return text


def _key(kind: KeyKind, *parts: str, version: str = NORMALISATION_1) -> IdentifierKey:
    return IdentifierKey(kind, SEP.join((version, kind.value, *parts)).encode("utf-8"))


def document_key(country: str, number: str, version: str = NORMALISATION) -> IdentifierKey:
    """The document key of §2.5: country and number; the type is not part of it.

    Raises:
        InvalidIdentifier: as ``normalize_country``/``normalize_document_number``;
            an unknown ``version``.
    """
    _check_version(version)
    country, number = normalize_country(country), normalize_document_number(number)
    return _key(KeyKind.DOCUMENT, country, number, version=version)


def name_dob_key(name: str, dob: PartialDate) -> IdentifierKey:
    """The wlx-norm-1 name + date-of-birth key of §2.5, at the date's own precision.

    Raises:
        InvalidIdentifier: as ``normalize_name``.
    """
    return _key(dob.kind(), normalize_name(name), dob.iso())


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise InvalidIdentifier("unknown normalisation version")


def _name_keys(
    names: Sequence[str], date: PartialDate, version: str, *, query: bool
) -> list[IdentifierKey]:
    if version == NORMALISATION_1:
        dates = date.coarser() if query else [date]
        normalised = [normalize_name(n) for n in names]
        return [_key(d.kind(), n, d.iso()) for n in normalised for d in dates]
    from wlx.crypto import norm2

    make = norm2.query_name_keys if query else norm2.record_name_keys
    return [k for name in names for k in make(name, date)]


def _strongest(keys: Iterable[IdentifierKey]) -> list[IdentifierKey]:
    """One key per value (the strongest kind that made it), in byte order."""
    best: dict[bytes, IdentifierKey] = {}
    for key in keys:
        old = best.get(key.value)
        if old is None or (
            key.kind is not old.kind  # the same kind object often makes a value twice
            and (key.kind.strength, key.kind) < (old.kind.strength, old.kind)
        ):
            best[key.value] = key
    return [best[v] for v in sorted(best)]


def record_keys(
    names: Sequence[str],
    dob: str | None,
    documents: Sequence[tuple[str, str]],
    version: str = NORMALISATION,
) -> list[IdentifierKey]:
    """The identifier keys of a listed person (§2.6, §2.8.5), sorted by value,
    one per value.

    One document key per document; when the date of birth is known, the
    name keys of every name.  ``documents`` holds ``(country, number)`` pairs.

    Raises:
        InvalidIdentifier: any identifier is invalid, or the record yields no
            key at all.
    """
    _check_version(version)
    keys = [document_key(c, n, version) for c, n in documents]
    for name in names:  # validate every name, even without a date
        normalize_name(name) if version == NORMALISATION_1 else validate_name(name)
    if dob:
        keys += _name_keys(names, parse_dob(dob), version, query=False)
    if not keys:
        raise InvalidIdentifier("a record needs a document, or a name with a date of birth")
    return _strongest(keys)


@dataclass(frozen=True)
class QueryKeys:
    """The keys of a query, and the fields that could not be used (§2.7)."""

    keys: list[IdentifierKey]
    unusable: tuple[str, ...] = ()
    """One line per field left out, naming the field and the rule, never its value."""


def query_keys_checked(
    names: Sequence[str],
    dob: str | None,
    documents: Sequence[tuple[str, str]],
    version: str = NORMALISATION,
) -> QueryKeys:
    """The keys of every usable identifier of a query; what is not usable is
    named in ``unusable`` rather than dropping the whole query.

    Raises:
        InvalidIdentifier: no identifier of the query is usable (the message
            names every field that failed).
    """
    keys, unusable = _query(names, dob, documents, version)
    if not keys:
        if unusable:
            raise InvalidIdentifier("; ".join(unusable))
        raise InvalidIdentifier("a query needs a document, or a name with a date of birth")
    return QueryKeys(keys, tuple(unusable))


def _query(
    names: Sequence[str],
    dob: str | None,
    documents: Sequence[tuple[str, str]],
    version: str,
) -> tuple[list[IdentifierKey], list[str]]:
    _check_version(version)
    keys: list[IdentifierKey] = []
    unusable: list[str] = []
    for index, (country, number) in enumerate(documents, start=1):
        try:
            keys.append(document_key(country, number, version))
        except InvalidIdentifier as exc:
            unusable.append(f"document {index}: {exc}")
    date: PartialDate | None = None
    if dob:
        try:
            date = parse_dob(dob)
        except InvalidIdentifier as exc:
            unusable.append(f"date of birth: {exc}")
    if names and not dob:
        unusable.append("names: a name needs a date of birth")
    if dob and not names:
        unusable.append("date of birth: a date of birth needs a name")
    for index, name in enumerate(names, start=1):
        try:
            if date is None:
                validate_name(name)
            else:
                keys += _name_keys([name], date, version, query=True)
        except InvalidIdentifier as exc:
            unusable.append(f"name {index}: {exc}")
    if names and dob and date is None:
        unusable.append("names: not checked without a valid date of birth")
    return _strongest(keys), unusable


def query_keys(
    names: Sequence[str],
    dob: str | None,
    documents: Sequence[tuple[str, str]],
    version: str = NORMALISATION,
) -> list[IdentifierKey]:
    """The identifier keys of a query (§2.7, §2.8.5), sorted, one per value.

    As ``record_keys``, except that each name is keyed at the date's
    precision *and every coarser one*, so a query with a full date also finds
    listings whose date of birth is known only to the month or the year
    (wlx-norm-2 adds reordered, swapped-date and phonetic keys).

    Raises:
        InvalidIdentifier: any identifier is invalid, a name comes without a
            date of birth, or the query yields no key.
    """
    keys, unusable = _query(names, dob, documents, version)
    if unusable:
        raise InvalidIdentifier(unusable[0].partition(": ")[2])
    if not keys:
        raise InvalidIdentifier("a query needs a document, or a name with a date of birth")
    return keys


def validate_name(name: str) -> None:
    """Check that a name can be normalised (wlx-norm-2).

    Raises:
        InvalidIdentifier: as ``wlx.crypto.names.name_forms``.
    """
    from wlx.crypto.names import name_forms

    name_forms(name)
