"""Acceptance decisions, both sides (docs/protocol.md §6.6).

Pure functions, no I/O:

* the origin: ``PeerFilter`` (its sharing policy for a peer intersected
  with the peer's declared acceptance), ``change_of`` (what a change of
  either means for one listing), ``check_declaration`` (whether a signed
  declaration applies);
* the receiver: ``local_decision`` (the origin's requested action as the
  local action, and why; or withheld, for a declined category);
* the wire form of a declaration: ``encode_declaration`` /
  ``decode_declaration``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from google.protobuf.message import DecodeError

from wlx.node.core.acceptance import ANY_ACTION, MAX_TERMS, AcceptancePolicy
from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.core.policy import SharingPolicy
from wlx.node.core.records import TERM, Record, Tier
from wlx.v1 import federation_pb2

NONCE_BYTES = 16


# ---------------------------------------------------------------- origin side


@dataclass(frozen=True)
class PeerFilter:
    """What an origin sends one peer: what it shares and the peer holds."""

    sharing: SharingPolicy
    declared: AcceptancePolicy

    def allows(self, record: Record) -> bool:
        """Whether ``record`` is sent to the peer."""
        return self.sharing.allows(record) and self.declared.holds(record.category)

    def tier(self, record: Record) -> Tier:
        """The record's tier for the peer (the sharing policy decides, §15.1)."""
        return self.sharing.tier(record)


class Effect(StrEnum):
    """What a policy change means for one listing the peer may hold."""

    REMOVE = "remove"
    ADD = "add"
    KEEP = "keep"


def change_of(record: Record, *, expired: bool, old: PeerFilter, new: PeerFilter) -> Effect:
    """The operation a change from ``old`` to ``new`` sends for ``record``.

    A listing no longer allowed is removed (expired or not: the peer may
    hold it until it purges); one newly allowed, or whose tier changed
    (online or offline, §15.1), is sent unless expired.
    """
    was, now = old.allows(record), new.allows(record)
    if was and not now:
        return Effect.REMOVE
    if now and not expired and (not was or old.tier(record) != new.tier(record)):
        return Effect.ADD
    return Effect.KEEP


@dataclass(frozen=True)
class Declaration:
    """A receiving node's signed acceptance declaration to one origin."""

    requester: str
    origin: str
    version: int
    accept: frozenset[str] | None
    decline: frozenset[str]
    issued_at: int
    nonce: bytes

    def policy(self) -> AcceptancePolicy:
        """The categories part, as the origin keeps it (no action mapping)."""
        return AcceptancePolicy(accept=self.accept, decline=self.decline)


class Outcome(StrEnum):
    """What the origin does with a verified declaration."""

    APPLY = "apply"
    REPEAT = "repeat"
    """Already applied (a retry after a lost answer): answer, change nothing."""
    SUPERSEDED = "superseded"
    """Older than the one applied (delayed or replayed): answer, change nothing."""


def check_declaration(
    decl: Declaration,
    *,
    signer: str,
    me: str,
    held: tuple[int, AcceptancePolicy] | None,
) -> Outcome:
    """Whether a declaration whose signature verified applies.

    ``held`` is the (version, policy) the origin applied last, if any.

    Raises:
        Rejection: it names another requester than its signer
            (``wrong-sender``), another origin (``wrong-recipient``), or
            reuses the applied version for other categories
            (``rollback``: the receiver must number every change anew).
    """
    if decl.requester != signer:
        raise Rejection(RejectReason.WRONG_SENDER, "declaration names another requester")
    if decl.origin != me:
        raise Rejection(RejectReason.WRONG_RECIPIENT, "declaration addressed to another origin")
    if held is None:
        return Outcome.APPLY
    version, policy = held
    if decl.version > version:
        return Outcome.APPLY
    if decl.version < version:
        return Outcome.SUPERSEDED
    if decl.policy() == policy:
        return Outcome.REPEAT
    raise Rejection(RejectReason.ROLLBACK, "declaration reuses an applied version")


def encode_declaration(decl: Declaration) -> bytes:
    """The signed bytes of a declaration (lists sorted: one form per policy)."""
    return federation_pb2.AcceptanceParams(
        requester=decl.requester,
        origin=decl.origin,
        version=decl.version,
        accept_listed=decl.accept is not None,
        accept=sorted(decl.accept or ()),
        decline=sorted(decl.decline),
        issued_at=decl.issued_at,
        nonce=decl.nonce,
    ).SerializeToString()


def _categories(values: list[str], what: str) -> frozenset[str]:
    if len(values) > MAX_TERMS:
        raise Rejection(RejectReason.TOO_LARGE, f"more than {MAX_TERMS} {what} categories")
    if not all(TERM.match(v) for v in values):
        raise Rejection(RejectReason.MALFORMED, f"an {what} category is not a term")
    return frozenset(values)


def decode_declaration(payload: bytes) -> Declaration:
    """Parse a declaration whose signature has verified.

    Raises:
        Rejection: malformed or too large.
    """
    try:
        msg = federation_pb2.AcceptanceParams.FromString(payload)
    except (DecodeError, ValueError, RecursionError):
        raise Rejection(RejectReason.MALFORMED, "acceptance declaration does not parse") from None
    if len(msg.nonce) != NONCE_BYTES:
        raise Rejection(RejectReason.MALFORMED, "a nonce is 16 bytes")
    if msg.version < 1:
        raise Rejection(RejectReason.MALFORMED, "a declaration's version starts at 1")
    accept = _categories(list(msg.accept), "accepted")
    decline = _categories(list(msg.decline), "declined")
    if not msg.accept_listed and accept:
        raise Rejection(RejectReason.MALFORMED, "accepted categories without accept_listed")
    return Declaration(
        requester=msg.requester,
        origin=msg.origin,
        version=msg.version,
        accept=accept if msg.accept_listed else None,
        decline=decline,
        issued_at=msg.issued_at,
        nonce=msg.nonce,
    )


# ---------------------------------------------------------------- receiver side


@dataclass(frozen=True)
class LocalDecision:
    """What the officer is told to do at a hit, and why."""

    local_action: str
    rule: str


def local_decision(
    policy: AcceptancePolicy | None,
    *,
    origin: str,
    category: str,
    action: str,
    suspended: bool,
) -> LocalDecision | None:
    """The local action for a hit on ``origin``'s listing; None: withhold it.

    A hit whose category the policy declines (it arrived before the origin
    applied the declaration) is withheld: never shown, never actionable;
    the lookup log counts it.  ``policy`` None is the node's own list: its
    own actions apply.  A suspended listing requests nothing, so nothing is
    mapped.  Otherwise the mapping of the origin's action by name wins over
    the ``*`` mapping; without either, the origin's action applies.
    """
    if policy is None:
        return LocalDecision(action, "own list")
    if not policy.holds(category):
        return None
    if suspended or not action:
        return LocalDecision("", f"suspended by {origin}: no action requested")
    if action in policy.actions:
        local = policy.actions[action]
        return LocalDecision(local, f"acceptance policy for {origin} maps {action} to {local}")
    if ANY_ACTION in policy.actions:
        local = policy.actions[ANY_ACTION]
        return LocalDecision(
            local, f"acceptance policy for {origin} maps every action ({action}) to {local}"
        )
    return LocalDecision(action, f"{origin}'s requested action (no local mapping)")


def next_version(current: int | None, now: int) -> int:
    """The version of a receiver's next policy for an origin: above the
    current one, and at least the time, so that a store restored from a
    backup never reuses a version the origin applied (``rollback``)."""
    return max((current or 0) + 1, now)
