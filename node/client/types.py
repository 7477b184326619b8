"""What ``wlx.client`` takes and returns: frozen dataclasses.

``Hit`` (``wlx.node.lookup.Hit``), ``NodeStatus`` and ``PeerStatus``
(``wlx.node.node_status``) are the node's own result types, shared so that
the client and the node never disagree on a field.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from wlx.client.errors import InvalidRequest
from wlx.node import mrz as mrz_
from wlx.node.lookup import Hit, Query
from wlx.node.node_status import NodeStatus, PeerStatus

__all__ = ["DetailResult", "Document", "Entry", "Hit", "NodeStatus", "PeerStatus", "ScreenResult"]


@dataclass(frozen=True)
class Document:
    """A travel or identity document: type ("P"), issuing country ("CHN"), number."""

    type: str
    country: str
    number: str

    @classmethod
    def parse(cls, value: Document | str | Sequence[str]) -> Document:
        """A document from ``"TYPE:COUNTRY:NUMBER"``, a triple, or a ``Document``.

        Raises:
            InvalidRequest: not three non-empty parts.
        """
        if isinstance(value, Document):
            return value
        parts = value.split(":") if isinstance(value, str) else list(value)
        if len(parts) != 3 or not all(isinstance(p, str) and p.strip() for p in parts):
            raise InvalidRequest("a document is TYPE:COUNTRY:NUMBER, e.g. P:CHN:E12345678")
        return cls(parts[0].strip(), parts[1].strip(), parts[2].strip())


@dataclass(frozen=True)
class Entry:
    """One person to screen: the caller's reference and what is known of them."""

    id: str
    names: tuple[str, ...] = ()
    dob: str = ""
    documents: tuple[Document, ...] = ()
    unusable: tuple[str, ...] = field(default=())
    """Fields the source gave that could not be read (reported, not sent)."""

    @classmethod
    def build(
        cls,
        id: str,
        *,
        names: Iterable[str] = (),
        dob: str = "",
        documents: Iterable[Document | str | Sequence[str]] = (),
        mrz: str | None = None,
        today: datetime.date | None = None,
    ) -> Entry:
        """An entry from plain values; an MRZ adds its name, date of birth and document.

        Raises:
            InvalidRequest: a malformed document, a bad MRZ (naming the field),
                or a date of birth that contradicts the MRZ's.
        """
        names_t = tuple(names)
        docs = tuple(Document.parse(d) for d in documents)
        if mrz is not None:
            read = read_mrz(mrz, today)
            names_t += (read.name,) if read.name else ()
            if dob and dob != read.dob:
                raise InvalidRequest("the date of birth given differs from the MRZ's")
            dob = read.dob
            docs += (Document(read.document_type or "P", read.issuing_state, read.document_number),)
        return cls(id=id, names=names_t, dob=dob, documents=docs)

    def query(self) -> Query:
        """The node's query for this entry."""
        return Query(
            names=self.names,
            dob=self.dob,
            documents=tuple((d.type, d.country, d.number) for d in self.documents),
        )


def read_mrz(text: str, today: datetime.date | None = None) -> mrz_.Mrz:
    """Parse and check an MRZ (``wlx.node.mrz``).

    Raises:
        InvalidRequest: the MRZ's error (naming the field).
    """
    try:
        return mrz_.parse(text, today or datetime.datetime.now(datetime.UTC).date())
    except mrz_.MrzError as exc:
        raise InvalidRequest(str(exc)) from None


@dataclass(frozen=True)
class ScreenResult:
    """One screened entry: its hits, or why it could not be checked."""

    id: str
    hits: tuple[Hit, ...]
    error: str = ""

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
