"""Name keys of normalisation ``wlx-norm-2`` (docs/protocol.md §2.8.5).

A listed name publishes its script form and its Latin forms at the date's
own precision and every coarser one, and its phonetic codes with a full
date.  A query adds, for finding a listing written otherwise: its name parts
rotated (surname first or last), the full date with day and month swapped,
and the phonetic codes of the rotations.  Every key carries the kind that
says how it matches; the kind is a label and not part of the key bytes, so a
listing's transliterated key and a query's exact key meet, and the hit
combines both labels (``KeyKind.combine``).

Speed: a name's keys are made from a *plan*, one ``(prefix, roles)`` group
per name form, where the prefix is the key bytes up to the date and each
role a kind and which of the date's strings ends the key.  Plans depend on
the name and the date's shape only, so they are kept in bounded caches and
a name seen before costs one bytes concatenation per key; the bytes are
exactly those the rules above give (tests/crypto/test_norm2_plans.py).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from wlx.crypto.names import name_forms, phonetic_code
from wlx.crypto.normalize import SEP, IdentifierKey, KeyKind, PartialDate

VERSION = "wlx-norm-2"
TRANSLITERATED = "transliterated"
REORDERED = "reordered"
PHONETIC = "phonetic"
SWAPPED = "swapped day/month"

# Which of a date's strings (``_shape``) ends a key: the date at each
# precision from its own (0-2), the same marked coarsened (3-5), the full
# date with day and month swapped (6).
_COARSENED = 3
_SWAP = 6
Labels = tuple[str, ...]
"""A date's shape: the kind of each of its precisions, its own first (``dob``, ``dob-month``...)."""
Roles = tuple[tuple[KeyKind, int], ...]
Plan = tuple[tuple[bytes, Roles], ...]


def _prefix(space: str, form: str) -> bytes:
    """A key's bytes up to its date: the date's string is appended (§2.8.5)."""
    return SEP.join((VERSION, space, form, "")).encode("utf-8")


@functools.lru_cache(maxsize=256)
def _roles(qualifiers: tuple[str, ...], labels: Labels, *, query: bool, swap: bool) -> Roles:
    """The keys of one form at a date of shape ``labels`` and every coarser precision.

    A listing: its own date plain, the coarser ones marked coarsened (which
    only a query at that very precision may meet: two full dates in the
    same month never meet).  A query: every precision plain (meets listings
    known to that precision), and its own date, if partial, also marked
    (meets finer listings); with ``swap``, the swapped date too.
    """
    roles = []
    for index, label in enumerate(labels):
        at = KeyKind.name(label, *qualifiers)
        roles.append((at, index + _COARSENED if not query and index > 0 else index))
        if query and index == 0 and label != "dob":
            roles.append((at, _COARSENED))
    if swap:
        roles.append((KeyKind.name("dob", *qualifiers, SWAPPED), _SWAP))
    return tuple(roles)


@functools.lru_cache(maxsize=4096)
def _shape(date: PartialDate) -> tuple[Labels, tuple[bytes, ...]]:
    """The kind of each precision of ``date`` (its own first), and the
    strings a key of ``date`` may end with, by role (see ``_COARSENED``)."""
    coarser = date.coarser()
    isos = [coarse.iso().encode("ascii") for coarse in coarser]
    isos += [b""] * (_COARSENED - len(isos))
    other = swapped(date)
    whens = (*isos, *(b"~" + iso for iso in isos), other.iso().encode("ascii") if other else b"")
    return tuple(coarse.kind().date for coarse in coarser), whens


# A phonetic key is made with the full date only, as written or reordered.
_PHONETIC: dict[tuple[str, ...], Roles] = {
    by_order: ((KeyKind.name("dob", PHONETIC, *by_order), 0),) for by_order in ((), (REORDERED,))
}


def _keys(plan: Plan, whens: tuple[bytes, ...]) -> list[IdentifierKey]:
    return [
        IdentifierKey(kind, prefix + whens[role]) for prefix, roles in plan for kind, role in roles
    ]


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
    labels, whens = _shape(date)
    return _keys(_record_plan(name, labels), whens)


@functools.lru_cache(maxsize=8192)
def _record_plan(name: str, labels: Labels) -> Plan:
    forms = name_forms(name)
    tag = "latin" if _is_latin(forms.script) else "other"
    script = "".join(forms.script)
    plan = [(_prefix("name", script), _roles((), labels, query=False, swap=False))]
    for parts in forms.latin:
        if "".join(parts) != script:  # a Latin name's plain form is its script form
            roles = _roles((TRANSLITERATED,), labels, query=False, swap=False)
            plan.append((_prefix(f"translit-{tag}", "".join(parts)), roles))
        if labels[0] == "dob":
            plan.append((_prefix(f"phonetic-{tag}", phonetic_code(parts)), _PHONETIC[()]))
    return tuple(plan)


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
    labels, whens = _shape(date)
    return _keys(_query_plan(name, labels, whens[_SWAP] != b""), whens)


@functools.lru_cache(maxsize=8192)
def _query_plan(name: str, labels: Labels, swap: bool) -> Plan:
    forms = name_forms(name)
    tags = ("latin", "other") if _is_latin(forms.script) else ("latin",)
    spaced: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [("name", forms.script, ())]
    script = "".join(forms.script)
    for parts in forms.latin:
        same = "".join(parts) == script
        by_latin: tuple[str, ...] = () if same else (TRANSLITERATED,)
        if not same:
            spaced.append(("name", parts, by_latin))
        spaced += [(f"translit-{tag}", parts, by_latin) for tag in tags]
    plan = []
    for space, parts, by_script in spaced:
        for ordered, by_order in _orders(parts):
            roles = _roles(by_script + by_order, labels, query=True, swap=swap and not by_order)
            plan.append((_prefix(space, "".join(ordered)), roles))
            if space != "name" and labels[0] == "dob":
                code = phonetic_code(ordered)
                plan.append(
                    (_prefix(space.replace("translit", "phonetic"), code), _PHONETIC[by_order])
                )
    return tuple(plan)
