"""Lookup messages <-> dataclasses, at the gRPC boundary (both directions)."""

from __future__ import annotations

from collections.abc import Sequence

from wlx.node.core.errors import UserError
from wlx.node.incoming.lookup import Hit, Query, Result
from wlx.node.protocol import free_text
from wlx.node.report import NodeStatus, PeerStatus
from wlx.v1 import admin_pb2, lookup_pb2


def query_from_pb(person: lookup_pb2.Person) -> Query:
    """A query from a ``Person`` message."""
    return Query(
        names=tuple(person.names),
        dob=person.dob,
        documents=tuple((d.type, d.country, d.number) for d in person.documents),
    )


def query_to_pb(query: Query) -> lookup_pb2.Person:
    """A ``Person`` message from a query."""
    return lookup_pb2.Person(
        names=list(query.names),
        dob=query.dob,
        documents=[lookup_pb2.Document(type=t, country=c, number=n) for t, c, n in query.documents],
    )


def hit_to_pb(hit: Hit) -> lookup_pb2.Hit:
    """A ``Hit`` message."""
    return lookup_pb2.Hit(
        origin=hit.origin,
        ref=hit.ref,
        category=hit.category,
        action=hit.action,
        matched_on=hit.matched_on,
        also_matched=list(hit.also_matched),
        expires=hit.expires,
        list_synced_at=hit.list_synced_at,
        suspended=hit.suspended,
    )


def hit_from_pb(msg: lookup_pb2.Hit) -> Hit:
    """A hit from its message."""
    return Hit(
        origin=msg.origin,
        ref=msg.ref,
        category=msg.category,
        action=msg.action,
        matched_on=msg.matched_on,
        also_matched=tuple(msg.also_matched),
        expires=msg.expires,
        list_synced_at=msg.list_synced_at,
        suspended=msg.suspended,
    )


def not_checked_to_pb(not_checked: Sequence[tuple[str, str]]) -> list[lookup_pb2.NotChecked]:
    """``NotChecked`` messages of ``(origin, reason)`` pairs (§15.6)."""
    return [lookup_pb2.NotChecked(origin=o, reason=r) for o, r in not_checked]


def not_checked_text(not_checked: Sequence[lookup_pb2.NotChecked]) -> list[str]:
    """One line per origin whose online listings were not checked."""
    return [
        f"NOT CHECKED: online listings of {n.origin} ({n.reason}); no hit from them is not a miss"
        for n in not_checked
    ]


def results_to_pb(ids: Sequence[str], results: Sequence[Result]) -> lookup_pb2.ScreenResponse:
    """A ``ScreenResponse`` for screened entries."""
    return lookup_pb2.ScreenResponse(
        results=[
            lookup_pb2.ScreenResult(
                id=i,
                hits=[hit_to_pb(h) for h in r.hits],
                error=r.error,
                not_checked=not_checked_to_pb(r.not_checked),
            )
            for i, r in zip(ids, results, strict=True)
        ]
    )


def check_purpose(purpose: str) -> str:
    """The stated purpose of a lookup or detail request, checked
    (``wlx.node.protocol.free_text``).

    Raises:
        UserError: missing, longer than 64 characters, or not one printable line.
    """
    try:
        return free_text.check_purpose(purpose)
    except free_text.FreeTextError as exc:
        raise UserError(str(exc)) from None


def check_case(case_id: str) -> str:
    """A detail request's case reference, checked (may be empty).

    Raises:
        UserError: longer than 32 characters, or characters other than
            letters, digits and ``. _ : / # -``.
    """
    try:
        return free_text.check_case(case_id)
    except free_text.FreeTextError as exc:
        raise UserError(str(exc)) from None


def status_to_pb(status: NodeStatus) -> admin_pb2.StatusResponse:
    """A ``StatusResponse``."""
    return admin_pb2.StatusResponse(
        node_id=status.node_id,
        own_records=status.own_records,
        as_of=status.as_of,
        peers=[
            admin_pb2.PeerStatus(
                peer=p.peer,
                address=p.address,
                epoch=p.epoch,
                seq=p.seq,
                origin_head=p.origin_head,
                behind=p.behind,
                listings=p.listings,
                last_sync=p.last_sync,
                last_error=p.last_error,
                last_error_at=p.last_error_at,
                sent_epoch=p.sent_epoch,
                sent_seq=p.sent_seq,
                acked_seq=p.acked_seq,
                acked_at=p.acked_at,
                unconfirmed_removals=list(p.unconfirmed_removals),
            )
            for p in status.peers
        ],
    )


def status_from_pb(msg: admin_pb2.StatusResponse) -> NodeStatus:
    """A ``NodeStatus`` from its message (the inverse of ``status_to_pb``)."""
    return NodeStatus(
        node_id=msg.node_id,
        own_records=msg.own_records,
        as_of=msg.as_of,
        peers=tuple(
            PeerStatus(
                peer=p.peer,
                address=p.address,
                epoch=p.epoch,
                seq=p.seq,
                origin_head=p.origin_head,
                listings=p.listings,
                last_sync=p.last_sync,
                last_error=p.last_error,
                last_error_at=p.last_error_at,
                sent_epoch=p.sent_epoch,
                sent_seq=p.sent_seq,
                acked_seq=p.acked_seq,
                acked_at=p.acked_at,
                unconfirmed_removals=tuple(p.unconfirmed_removals),
            )
            for p in msg.peers
        ),
    )
