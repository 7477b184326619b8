"""What an officer's lookup may ask, and what it costs (§9.1).  Pure.

A real traveller has a handful of names and documents; a query carrying
thousands would test thousands of identifiers for the price of one, and tie
up the node doing it.  So every person is bounded, a manifest is bounded,
and a lookup is charged (in the caller's rate limit) one token per
identifier *key* it tests: a document is one key, a name with a date of
birth the 20 to 46 keys wlx-norm-2 derives from it (variants,
transliterations and weak keys count like any key), under every
normalisation version the node's lists use.  The order is the guarantee:

1. An oversized request is refused whole, before any work and before any
   token is taken (``check_person``, ``lookup_cost``).
2. A caller that cannot pay even one token per identifier it presents
   (``lookup_cost``) is refused before its keys are derived.
3. The keys are derived and counted, and the lookup is charged
   ``lookup_charge`` (the keys, at least the identifiers presented) before
   any key is tested; over the limit, nothing is tested.
4. The lookup log records the same count (``identifiers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from wlx.node.core.errors import UserError


class LookupCall(StrEnum):
    """Which lookup an officer made (``call`` of a ``lookup`` exchange-log
    entry, docs/audit.md §1.2; a metrics label)."""

    CHECK = "check"
    """One person (``Lookup/Check``)."""
    SCREEN = "screen"
    """A manifest (``Lookup/Screen``)."""


MAX_NAMES_PER_PERSON = 8
MAX_DOCUMENTS_PER_PERSON = 8
MAX_SCREEN_ENTRIES = 2_000
MAX_DOB_CHARS = 10


def check_person(names: int, documents: int) -> int:
    """The identifiers one person presents (at least 1: a query costs something).

    Raises:
        UserError: more names or documents than a person carries.
    """
    if names > MAX_NAMES_PER_PERSON:
        raise UserError(f"at most {MAX_NAMES_PER_PERSON} names per person")
    if documents > MAX_DOCUMENTS_PER_PERSON:
        raise UserError(f"at most {MAX_DOCUMENTS_PER_PERSON} documents per person")
    return max(1, names + documents)


def lookup_cost(people: Sequence[tuple[int, int]]) -> int:
    """What a lookup of ``people`` (``(names, documents)`` per person) costs
    at least, before its keys are derived: one token per identifier presented.

    Raises:
        UserError: more than ``MAX_SCREEN_ENTRIES`` people, or an oversized person.
    """
    if len(people) > MAX_SCREEN_ENTRIES:
        raise UserError(f"at most {MAX_SCREEN_ENTRIES} people per screening")
    return max(1, sum(check_person(n, d) for n, d in people))


def lookup_charge(presented: int, keys: int) -> int:
    """What a lookup is charged once its keys are derived: one token per
    identifier key it tests (``keys``), and never less than ``presented``
    (``lookup_cost``: a name that yields no key was still checked)."""
    return max(presented, keys)
