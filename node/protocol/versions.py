"""What two nodes speak together (docs/protocol.md appendix B).  Pure.

Each node advertises, in its signed identity card, the protocol versions,
normalisation versions and optional features it speaks (``Speaks``; a card
without the member speaks protocol 1 and ``wlx-norm-1`` only).  From its
own and a peer's advertisement a node decides, with ``negotiate``:

* the **protocol** version: the highest both speak; none in common means
  the two nodes cannot federate (the card is refused when added).  It is
  fixed for a stream's epoch when the epoch starts (``StreamPlan.protocol``):
  protocol 2 seals each listing once (docs/protocol.md §4.3), protocol 1 once
  per identifier key; a recipient opens both;
* the **normalisation** of the stream it *originates* to the peer: the most
  recent version (highest ``N`` of ``wlx-norm-N``) both speak, so each
  origin moves each peer to ``wlx-norm-2`` as soon as the peer speaks it and
  never before; none in common: no stream, the card is refused;
* the **features** both have (for instance the online OPRF tier,
  ``oprf-online``): a feature is used between two nodes only if both
  advertise it.

``epoch_action`` then says what the origin does with the peer's stream:
keep the epoch whose key names the agreed normalisation, or start a new
epoch under it (the recipient fetches a snapshot, §4.1, §7.1).  A recipient
refuses an epoch key of a normalisation it does not speak (§2.5).

``plan_stream`` combines the two for the code that starts epochs (adding a
peer, a new epoch, a rotation, a restore, a peer's refreshed card, the
check at ``wlx serve``; docs/protocol.md §2.9, B.2): the I/O is there, the
decision here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from wlx.crypto.card import Speaks

_NORM = re.compile(r"wlx-norm-([1-9][0-9]{0,8})")

NODE_SPEAKS = Speaks(
    protocol=(2, 1),
    normalisation=("wlx-norm-2", "wlx-norm-1"),
    features=("oprf-online",),
)
"""What this implementation speaks (appendix B.1): its cards say so."""


class Disagreement(StrEnum):
    """Why two nodes cannot federate."""

    NO_COMMON_PROTOCOL = "no-common-protocol"
    NO_COMMON_NORMALISATION = "no-common-normalisation"


@dataclass(frozen=True)
class Agreement:
    """What two nodes speak together; ``refused`` is set when nothing works."""

    protocol: int | None
    normalisation: str | None
    features: frozenset[str]
    refused: Disagreement | None = None
    protocols: frozenset[int] = frozenset()
    """Every protocol version both speak (empty: those up to ``protocol``)."""

    @property
    def ok(self) -> bool:
        return self.refused is None


def norm_rank(name: str) -> int:
    """The ``N`` of ``wlx-norm-N`` (0 for any other name, which sorts last)."""
    match = _NORM.fullmatch(name)
    return int(match.group(1)) if match else 0


def negotiate(ours: Speaks, theirs: Speaks) -> Agreement:
    """What this node (``ours``) and a peer (``theirs``) speak together.

    Symmetric in protocol and features; the normalisation is the one this
    node uses for the stream it originates to the peer (the same on both
    sides when both apply this function: the highest common version).
    """
    features = frozenset(ours.features) & frozenset(theirs.features)
    protocols = set(ours.protocol) & set(theirs.protocol)
    both = frozenset(protocols)
    if not protocols:
        return Agreement(None, None, features, Disagreement.NO_COMMON_PROTOCOL)
    common = [n for n in ours.normalisation if n in theirs.normalisation and norm_rank(n)]
    if not common:
        return Agreement(max(protocols), None, features, Disagreement.NO_COMMON_NORMALISATION, both)
    return Agreement(max(protocols), max(common, key=norm_rank), features, None, both)


class EpochAction(StrEnum):
    KEEP = "keep"
    NEW_EPOCH = "new-epoch"
    STOP = "stop"


def epoch_action(
    current: str | None, agreement: Agreement, current_protocol: int | None = None
) -> EpochAction:
    """What an origin does with its stream to a peer whose epoch key names
    normalisation ``current`` (None: no epoch yet) and whose epoch was
    started under ``current_protocol`` (None: not known), given
    ``agreement``: ``stop`` serving (nothing in common), start a
    ``new-epoch`` under the agreed normalisation (or because the peer no
    longer speaks the epoch's protocol), or ``keep`` the epoch.  A peer that
    starts speaking a later protocol keeps its epoch: the stream moves to it
    at its next epoch (a recipient opens both seal formats)."""
    if not agreement.ok or agreement.normalisation is None:
        return EpochAction.STOP
    if current != agreement.normalisation:
        return EpochAction.NEW_EPOCH
    spoken = agreement.protocols or frozenset(range(1, (agreement.protocol or 1) + 1))
    if current_protocol is not None and current_protocol not in spoken:
        return EpochAction.NEW_EPOCH
    return EpochAction.KEEP


@dataclass(frozen=True)
class StreamPlan:
    """What an origin does with one peer's stream, and under which version.

    ``normalisation`` is the version of the epoch to start (``new-epoch``)
    or the one kept (``keep``); for ``stop`` it is the most recent version
    this node speaks, for a stream that has to start an epoch anyway (a
    revocation), which the peer refuses (MUST-B.2-3).
    """

    action: EpochAction
    normalisation: str
    protocol: int = 1
    """The protocol version an epoch started now uses (the agreed one)."""


def own_normalisation(ours: Speaks) -> str:
    """The version a node indexes its own list with: the most recent it speaks.

    Raises:
        ValueError: ``ours`` names no ``wlx-norm-N`` version.
    """
    agreement = negotiate(ours, ours)
    if agreement.normalisation is None:
        raise ValueError("this node speaks no wlx-norm version")
    return agreement.normalisation


def plan_stream(
    ours: Speaks, theirs: Speaks, current: str | None, current_protocol: int | None = None
) -> StreamPlan:
    """What to do with the stream to a peer advertising ``theirs`` whose
    epoch uses ``current`` (None: the stream starts now, or must start a new
    epoch whatever the versions, and the question is only which version)
    and protocol ``current_protocol`` (``epoch_action``).

    Raises:
        ValueError: ``ours`` names no ``wlx-norm-N`` version.
    """
    agreement = negotiate(ours, theirs)
    action = epoch_action(current, agreement, current_protocol)
    if action is EpochAction.STOP or agreement.normalisation is None:
        return StreamPlan(EpochAction.STOP, own_normalisation(ours))
    return StreamPlan(action, agreement.normalisation, agreement.protocol or 1)


def accepts_epoch_key(ours: Speaks, normalisation: str) -> bool:
    """Whether a recipient takes an epoch key naming ``normalisation``."""
    return normalisation in ours.normalisation
