"""What ``wlx.client`` takes and returns: frozen dataclasses.

``Document`` and ``Entry`` (``wlx.node.core.entries``), ``Hit``
(``wlx.node.incoming.lookup``), ``NodeStatus`` and ``PeerStatus``
(``wlx.node.report``) are the node's own types, shared so that the client
and the node never disagree on a field.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self

from wlx.client.errors import InvalidRequest
from wlx.node.core import entries
from wlx.node.core.mrz import Mrz
from wlx.node.incoming.lookup import Hit, Query
from wlx.node.report import NodeStatus, PeerStatus

__all__ = [
    "DetailResult",
    "Document",
    "Entry",
    "Hit",
    "NodeStatus",
    "PeerStatus",
    "ScreenResult",
    "query_of",
    "read_mrz",
]


class Document(entries.Document):
    """A travel or identity document: type ("P"), issuing country ("CHN"), number."""

    @classmethod
    def parse(cls, value: entries.Document | str | Sequence[str]) -> entries.Document:
        """A document from ``"TYPE:COUNTRY:NUMBER"``, a triple, or a ``Document``.

        Raises:
            InvalidRequest: not three non-empty parts (or an MRZ line).
        """
        try:
            return super().parse(value)
        except entries.EntryError as exc:
            raise InvalidRequest(str(exc)) from None


class Entry(entries.Entry):
    """One person to screen: ``id`` (your reference), ``names``, ``dob``, ``documents``."""

    @classmethod
    def build(
        cls,
        id: str,
        *,
        names: Iterable[str] = (),
        dob: str = "",
        documents: Iterable[entries.Document | str | Sequence[str]] = (),
        mrz: str | None = None,
        today: datetime.date | None = None,
    ) -> Self:
        """An entry from plain values; an MRZ adds its name, date of birth and document.

        Raises:
            InvalidRequest: a malformed document, a bad MRZ (naming the field),
                or a date of birth that contradicts the MRZ's.
        """
        try:
            return super().build(
                id, names=names, dob=dob, documents=documents, mrz=mrz, today=today
            )
        except entries.EntryError as exc:
            raise InvalidRequest(str(exc)) from None


def read_mrz(text: str, today: datetime.date | None = None) -> Mrz:
    """Read and check an MRZ (2 or 3 lines); two-digit years against ``today`` (UTC).

    Raises:
        InvalidRequest: wrong layout or characters, or a wrong check digit (field named).
    """
    try:
        return entries.read_mrz(text, today)
    except entries.EntryError as exc:
        raise InvalidRequest(str(exc)) from None


def query_of(entry: entries.Entry) -> Query:
    """The node's query for an entry."""
    return Query(
        names=entry.names,
        dob=entry.dob,
        documents=tuple((d.type, d.country, d.number) for d in entry.documents),
    )


@dataclass(frozen=True)
class ScreenResult:
    """One screened entry: its hits, or why it could not be checked."""

    id: str
    hits: tuple[Hit, ...]
    error: str = ""
    not_checked: tuple[tuple[str, str], ...] = ()
    """``(origin, reason)`` of origins whose online-tier listings could not be
    checked (docs/protocol.md §15.6): no hit from them is not a miss."""

    @property
    def checked(self) -> bool:
        """True when the node could check the entry."""
        return not self.error


@dataclass(frozen=True)
class DetailResult:
    """The origin's answer to a detail request."""

    granted: bool
    denial: str = ""
    """When not granted, the origin's reason ("no-hit", "quota", ...)."""
    record: dict[str, Any] | None = None
    """When granted, the record (the fields of docs/records.md)."""
