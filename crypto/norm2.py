"""Name keys of normalisation ``wlx-norm-2`` (docs/protocol.md §2.8.5).

A listed name publishes its script form and its Latin forms at the date's
own precision and every coarser one, and its phonetic codes with a full
date.  A query adds, for finding a listing written otherwise: its name parts
rotated (surname first or last), the full date with day and month swapped,
and the phonetic codes of the rotations.  Every key carries the kind that
says how it matches; the kind is a label and not part of the key bytes, so a
listing's transliterated key and a query's exact key meet, and the hit
combines both labels (``KeyKind.combine``).
"""

from __future__ import annotations

from collections.abc import Iterator

from wlx.crypto.names import name_forms, phonetic_code
from wlx.crypto.normalize import SEP, IdentifierKey, KeyKind, PartialDate

VERSION = "wlx-norm-2"
TRANSLITERATED = "transliterated"
REORDERED = "reordered"
PHONETIC = "phonetic"
SWAPPED = "swapped day/month"


def _key(kind: KeyKind, space: str, form: str, date: PartialDate) -> IdentifierKey:
    return IdentifierKey(kind, SEP.join((VERSION, space, form, date.iso())).encode("utf-8"))


def _forms(name: str) -> Iterator[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(parts, qualifiers) of the script form, then of each Latin form."""
    forms = name_forms(name)
    yield forms.script, ()
    for latin in forms.latin:
        yield latin, (TRANSLITERATED,)


def _orders(parts: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], tuple[str, ...]]]:
    """The parts as written, then moved last-to-first and first-to-last."""
    yield parts, ()
    if len(parts) >= 2:
        for rotated in (parts[-1:] + parts[:-1], parts[1:] + parts[:1]):
            if rotated != parts:
                yield rotated, (REORDERED,)


def swapped(date: PartialDate) -> PartialDate | None:
    """The full date with day and month exchanged, if that is another real date."""
    if date.month is None or date.day is None or date.day > 12 or date.day == date.month:
        return None
    return PartialDate(date.year, date.day, date.month)


def record_name_keys(name: str, date: PartialDate) -> list[IdentifierKey]:
    """A listed name's keys (§2.8.5).

    Raises:
        InvalidIdentifier: the name cannot be normalised.
    """
    keys = []
    for parts, qualifiers in _forms(name):
        form = "".join(parts)
        for coarse in date.coarser():
            keys.append(_key(KeyKind.name(coarse.kind().date, *qualifiers), "name", form, coarse))
        if qualifiers and date.day is not None:
            kind = KeyKind.name("dob", PHONETIC)
            keys.append(_key(kind, "phonetic", phonetic_code(form), date))
    return keys


def query_name_keys(name: str, date: PartialDate) -> list[IdentifierKey]:
    """A queried name's keys (§2.8.5).

    Raises:
        InvalidIdentifier: the name cannot be normalised.
    """
    keys = []
    other = swapped(date)
    for parts, by_script in _forms(name):
        for ordered, by_order in _orders(parts):
            form = "".join(ordered)
            qualifiers = by_script + by_order
            for coarse in date.coarser():
                kind = KeyKind.name(coarse.kind().date, *qualifiers)
                keys.append(_key(kind, "name", form, coarse))
            if other is not None and not by_order:
                keys.append(_key(KeyKind.name("dob", *qualifiers, SWAPPED), "name", form, other))
            if by_script and date.day is not None:
                kind = KeyKind.name("dob", PHONETIC, *by_order)
                keys.append(_key(kind, "phonetic", phonetic_code(form), date))
    return keys
