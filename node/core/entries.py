"""What a person to check looks like before it is sent: documents and screening entries.

Pure (no I/O): shared by the manifest parsers (``wlx.node.core.manifest``)
and the Python client (``wlx.client``, which re-exports these types).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Self

from wlx.node.core import mrz as mrz_
from wlx.node.core.errors import UserError


class EntryError(UserError):
    """A malformed document or MRZ given for a person (names the field, not the value)."""


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
            EntryError: not three non-empty parts.
        """
        if isinstance(value, Document):
            return value
        if isinstance(value, str) and "<<" in value and len(value.strip()) >= 30:
            raise EntryError("this looks like a machine-readable zone: give it as an MRZ (--mrz)")
        parts = value.split(":") if isinstance(value, str) else list(value)
        if len(parts) != 3 or not all(isinstance(p, str) and p.strip() for p in parts):
            raise EntryError("a document is TYPE:COUNTRY:NUMBER, e.g. P:CHN:E12345678")
        return cls(parts[0].strip(), parts[1].strip(), parts[2].strip())


@dataclass(frozen=True)
class Entry:
    """One person to check: the caller's reference and what is known of them."""

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
    ) -> Self:
        """An entry from plain values; an MRZ adds its name, date of birth and document.

        Raises:
            EntryError: a malformed document, a bad MRZ (naming the field),
                or a date of birth that contradicts the MRZ's.
        """
        names_t = tuple(names)
        docs = tuple(Document.parse(d) for d in documents)
        if mrz is not None:
            read = read_mrz(mrz, today)
            names_t += (read.name,) if read.name else ()
            if dob and dob != read.dob:
                raise EntryError("the date of birth given differs from the MRZ's")
            dob = read.dob
            docs += (Document(read.document_type or "P", read.issuing_state, read.document_number),)
        return cls(id=id, names=names_t, dob=dob, documents=docs)


def read_mrz(text: str, today: datetime.date | None = None) -> mrz_.Mrz:
    """Parse and check an MRZ (``wlx.node.core.mrz``); two-digit years against ``today`` (UTC).

    Raises:
        EntryError: the MRZ's error (naming the field).
    """
    try:
        return mrz_.parse(text, today or datetime.datetime.now(datetime.UTC).date())
    except mrz_.MrzError as exc:
        raise EntryError(str(exc)) from None
