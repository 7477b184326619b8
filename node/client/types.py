"""What ``wlx.client`` takes and returns: frozen dataclasses.

``Document`` and ``Entry`` (``wlx.node.core.entries``), ``Hit``
(``wlx.node.incoming.lookup``), ``NodeStatus`` and ``PeerStatus``
(``wlx.node.report``) are the node's own types, shared so that the client
and the node never disagree on a field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wlx.node.core.entries import Document, Entry, read_mrz
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


def query_of(entry: Entry) -> Query:
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
