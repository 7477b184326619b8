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


def _key(
    kind: KeyKind, space: str, form: str, date: PartialDate, coarsened: bool = False
) -> IdentifierKey:
    """``coarsened`` marks a listing's key at a precision coarser than its own
    date, which only a query at that very precision may meet (§2.8.5): two
    full dates in the same month never meet."""
    when = ("~" if coarsened else "") + date.iso()
    return IdentifierKey(kind, SEP.join((VERSION, space, form, when)).encode("utf-8"))


def _dated(
    kind: KeyKind, space: str, form: str, date: PartialDate, *, query: bool
) -> list[IdentifierKey]:
    """Keys of one form at ``date`` and every coarser precision.

    A listing: its own date plain, the coarser ones marked coarsened.  A
    query: every precision plain (meets listings known to that precision),
    and its own date, if partial, also marked (meets finer listings).
    """
    keys = []
    for index, coarse in enumerate(date.coarser()):
        at = KeyKind.name(coarse.kind().date, *kind.qualifiers)
        keys.append(_key(at, space, form, coarse, coarsened=not query and index > 0))
        if query and index == 0 and date.day is None:
            keys.append(_key(at, space, form, coarse, coarsened=True))
    return keys


def _is_latin(script: tuple[str, ...]) -> bool:
    """A name whose script form is all a-z and 0-9 (Latin letters once diacritics are gone)."""
    return all(c.isascii() for part in script for c in part)


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
    """A listed name's keys (§2.8.5): the script form in space ``name``, each
    Latin form that differs from it in ``translit-latin`` or ``translit-other``
    (by the script the name is written in), the Latin forms' phonetic codes
    in ``phonetic-latin`` or ``phonetic-other``.

    Raises:
        InvalidIdentifier: the name cannot be normalised.
    """
    forms = name_forms(name)
    tag = "latin" if _is_latin(forms.script) else "other"
    script = "".join(forms.script)
    keys = _dated(KeyKind.name("dob"), "name", script, date, query=False)
    for parts in forms.latin:
        if "".join(parts) != script:  # a Latin name's plain form is its script form
            kind = KeyKind.name("dob", TRANSLITERATED)
            keys += _dated(kind, f"translit-{tag}", "".join(parts), date, query=False)
        if date.day is not None:
            kind = KeyKind.name("dob", PHONETIC)
            keys.append(_key(kind, f"phonetic-{tag}", phonetic_code(parts), date))
    return keys


def query_name_keys(name: str, date: PartialDate) -> list[IdentifierKey]:
    """A queried name's keys (§2.8.5).

    The script form meets listings in the same script (space ``name``), and
    so does each Latin form for listings written in Latin letters.  The Latin
    forms of a name written in Latin letters meet every listing's
    transliterations; those of a name in another script meet only the
    transliterations of listings written in Latin letters, so two different
    names of one script (王伟 and 汪伟, both WANG WEI) never meet.

    Raises:
        InvalidIdentifier: the name cannot be normalised.
    """
    forms = name_forms(name)
    tags = ("latin", "other") if _is_latin(forms.script) else ("latin",)
    other = swapped(date)
    keys = []
    spaced: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [("name", forms.script, ())]
    script = "".join(forms.script)
    for parts in forms.latin:
        same = "".join(parts) == script
        by_latin: tuple[str, ...] = () if same else (TRANSLITERATED,)
        if not same:
            spaced.append(("name", parts, by_latin))
        spaced += [(f"translit-{tag}", parts, by_latin) for tag in tags]
    for space, parts, by_script in spaced:
        for ordered, by_order in _orders(parts):
            form = "".join(ordered)
            qualifiers: tuple[str, ...] = by_script + by_order
            keys += _dated(KeyKind.name("dob", *qualifiers), space, form, date, query=True)
            if other is not None and not by_order:
                keys.append(_key(KeyKind.name("dob", *qualifiers, SWAPPED), space, form, other))
            if space != "name" and date.day is not None:
                kind = KeyKind.name("dob", PHONETIC, *by_order)
                code = phonetic_code(ordered)
                keys.append(_key(kind, space.replace("translit", "phonetic"), code, date))
    return keys
