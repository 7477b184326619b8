"""Version advertisement and negotiation (docs/protocol.md appendix B),
as a table of cases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.nodes import FederationMaker

from wlx.crypto import tls
from wlx.crypto.card import DEFAULT_SPEAKS, Speaks, make_card, parse_card
from wlx.crypto.errors import MalformedError
from wlx.crypto.keys import BoxKey, SigningKey
from wlx.node.protocol.versions import (
    NODE_SPEAKS,
    Agreement,
    Disagreement,
    EpochAction,
    StreamPlan,
    accepts_epoch_key,
    epoch_action,
    negotiate,
    own_normalisation,
    plan_stream,
)
from wlx.node.trust import lifecycle

N1, N2, N3 = "wlx-norm-1", "wlx-norm-2", "wlx-norm-3"
V1 = Speaks()
V12 = Speaks(normalisation=(N1, N2))
V21 = Speaks(normalisation=(N2, N1))  # preference order does not change the choice
V2 = Speaks(normalisation=(N2,))
ONLINE = Speaks(normalisation=(N1, N2), features=("oprf-online",))
P2 = Speaks(protocol=(2,), normalisation=(N1,))
P12 = Speaks(protocol=(1, 2), normalisation=(N1,))

NEGOTIATE = [
    # ours, theirs -> protocol, normalisation, features, refused
    (V1, V1, 1, N1, set(), None),
    (V1, V12, 1, N1, set(), None),  # the peer upgraded first: stay on norm-1
    (V12, V1, 1, N1, set(), None),  # we upgraded first: norm-1 towards the peer
    (V12, V12, 1, N2, set(), None),  # both upgraded: norm-2
    (V21, V12, 1, N2, set(), None),
    (V12, V2, 1, N2, set(), None),
    (V1, V2, 1, None, set(), Disagreement.NO_COMMON_NORMALISATION),
    (ONLINE, V12, 1, N2, set(), None),  # online tier only if both advertise it
    (ONLINE, ONLINE, 1, N2, {"oprf-online"}, None),
    (P12, P2, 2, N1, set(), None),
    (P12, V1, 1, N1, set(), None),
    (P2, V1, None, None, set(), Disagreement.NO_COMMON_PROTOCOL),
    (
        Speaks(normalisation=(N1, "other-1")),
        Speaks(normalisation=("other-1", N1)),
        1,
        N1,
        set(),
        None,
    ),
    (Speaks(normalisation=(N3, N2, N1)), Speaks(normalisation=(N1, N3)), 1, N3, set(), None),
]


@pytest.mark.parametrize(("ours", "theirs", "protocol", "norm", "features", "refused"), NEGOTIATE)
def test_negotiate(
    ours: Speaks,
    theirs: Speaks,
    protocol: int | None,
    norm: str | None,
    features: set[str],
    refused: Disagreement | None,
) -> None:
    both = frozenset(ours.protocol) & frozenset(theirs.protocol)
    assert negotiate(ours, theirs) == Agreement(protocol, norm, frozenset(features), refused, both)
    # Both sides reach the same agreement.
    assert negotiate(theirs, ours) == negotiate(ours, theirs)


EPOCH = [
    (None, negotiate(V12, V12), EpochAction.NEW_EPOCH),
    (N1, negotiate(V12, V1), EpochAction.KEEP),
    (N1, negotiate(V12, V12), EpochAction.NEW_EPOCH),  # the peer upgraded: rekey under norm-2
    (N2, negotiate(V12, V12), EpochAction.KEEP),
    (N2, negotiate(V12, V1), EpochAction.NEW_EPOCH),  # the peer rolled back: norm-1 again
    (N1, negotiate(V1, V2), EpochAction.STOP),
    (N1, negotiate(P2, V1), EpochAction.STOP),
]


@pytest.mark.parametrize(("current", "agreement", "action"), EPOCH)
def test_epoch_action(current: str | None, agreement: Agreement, action: EpochAction) -> None:
    assert epoch_action(current, agreement) is action


KEEP, NEW, STOP = EpochAction.KEEP, EpochAction.NEW_EPOCH, EpochAction.STOP
PLAN = [
    # ours, theirs, the stream's current version -> action, version
    (V12, V1, None, NEW, N1),  # add_peer / a new epoch for an old peer: norm-1
    (V12, V12, None, NEW, N2),  # ... for an upgraded one: norm-2
    (NODE_SPEAKS, Speaks(), None, NEW, N1),  # a card without `speaks`
    (V12, V1, N1, KEEP, N1),  # an old peer keeps its epoch (no flag day)
    (V12, V12, N1, NEW, N2),  # the peer's refreshed card speaks norm-2: re-snapshot
    (V12, V12, N2, KEEP, N2),  # nothing changed: no new epoch
    (V12, ONLINE, N2, KEEP, N2),  # a new feature alone does not re-key
    (V1, V12, N2, NEW, N1),  # this node speaks only norm-1 (again)
    (V12, V1, N2, NEW, N1),  # the peer rolled back
    (V2, V1, N2, STOP, N2),  # nothing in common: the peer refuses whatever is sent
    (P2, V12, None, STOP, N1),
]


@pytest.mark.parametrize(("ours", "theirs", "current", "action", "version"), PLAN)
def test_plan_stream(
    ours: Speaks, theirs: Speaks, current: str | None, action: EpochAction, version: str
) -> None:
    assert plan_stream(ours, theirs, current) == StreamPlan(action, version)


S2 = Speaks(protocol=(2, 1), normalisation=(N1, N2))  # seals each listing once (§4.3)
ONLY2 = Speaks(protocol=(2,), normalisation=(N1, N2))  # no longer speaks protocol 1
PROTOCOL_PLAN = [
    # ours, theirs, current version, the epoch's protocol -> action, version, protocol
    (S2, S2, None, None, NEW, N2, 2),  # a new epoch between two protocol-2 nodes
    (S2, V12, None, None, NEW, N2, 1),  # ... with a peer speaking protocol 1 only
    (NODE_SPEAKS, V12, None, None, NEW, N2, 1),
    (NODE_SPEAKS, NODE_SPEAKS, None, None, NEW, N2, 2),
    (S2, S2, N2, 1, KEEP, N2, 2),  # the peer upgraded: protocol 2 from its next epoch
    (S2, S2, N2, 2, KEEP, N2, 2),
    (S2, V12, N2, 2, NEW, N2, 1),  # the peer rolled back to protocol 1: re-key now
    (V12, S2, N2, 2, NEW, N2, 1),  # this node did
    (S2, V12, N2, 1, KEEP, N2, 1),
    (S2, S2, N1, 1, NEW, N2, 2),  # a normalisation change starts a protocol-2 epoch
    (S2, ONLY2, N2, 1, NEW, N2, 2),  # the peer no longer speaks protocol 1: re-key now
    (ONLY2, S2, N2, 1, NEW, N2, 2),  # this node does not
]


@pytest.mark.parametrize(
    ("ours", "theirs", "current", "protocol", "action", "version", "chosen"), PROTOCOL_PLAN
)
def test_plan_stream_protocol(
    ours: Speaks,
    theirs: Speaks,
    current: str | None,
    protocol: int | None,
    action: EpochAction,
    version: str,
    chosen: int,
) -> None:
    assert plan_stream(ours, theirs, current, protocol) == StreamPlan(action, version, chosen)
    assert plan_stream(theirs, ours, current, protocol).protocol == chosen  # both sides agree


def test_this_node_speaks_protocol_2_and_1() -> None:
    assert NODE_SPEAKS.protocol == (2, 1)


@pytest.mark.parametrize(
    ("ours", "version"), [(V1, N1), (V12, N2), (V21, N2), (NODE_SPEAKS, N2), (P2, N1)]
)
def test_the_own_list_uses_the_most_recent_version(ours: Speaks, version: str) -> None:
    assert own_normalisation(ours) == version


def test_a_node_speaking_no_known_version_has_no_own_version() -> None:
    with pytest.raises(ValueError, match="wlx-norm"):
        own_normalisation(Speaks(normalisation=("other-1",)))


def test_a_recipient_takes_only_epoch_keys_it_speaks() -> None:
    assert accepts_epoch_key(V12, N2) and accepts_epoch_key(V1, N1)
    assert not accepts_epoch_key(V1, N2)


# ---------------------------------------------------------------- the card member

KEY = SigningKey.from_seed(bytes(32))
BOX = BoxKey.from_raw(bytes(range(32)))
TLS_KEY = tls.generate_key()
CERT = tls.node_certificate(TLS_KEY, "CN", not_before=0, not_after=2**32)


def card(speaks: Speaks = DEFAULT_SPEAKS) -> bytes:
    return make_card(KEY, BOX.public(), "CN", "cn:1", 1, CERT, tls_key=TLS_KEY, speaks=speaks)


def test_a_card_speaking_the_defaults_has_no_speaks_member() -> None:
    payload = json.loads(json.loads(card())["wlx_identity_card"])
    assert "speaks" not in payload
    assert parse_card(card()).speaks == DEFAULT_SPEAKS


def test_a_card_advertises_what_the_node_speaks() -> None:
    payload = json.loads(json.loads(card(ONLINE))["wlx_identity_card"])
    assert payload["speaks"] == {
        "protocol": [1],
        "normalisation": [N1, N2],
        "features": ["oprf-online"],
    }
    assert parse_card(card(ONLINE)).speaks == ONLINE


def _signed_with(speaks: Any) -> bytes:
    import base64

    from wlx.crypto.signing import ANYONE, Purpose, sign

    payload = json.loads(json.loads(card())["wlx_identity_card"])
    payload["speaks"] = speaks
    text = json.dumps(payload)
    signature = sign(KEY, Purpose.IDENTITY_CARD, "CN", ANYONE, text.encode())
    return json.dumps(
        {"wlx_identity_card": text, "signature": base64.b64encode(signature).decode()}
    ).encode()


@pytest.mark.parametrize(
    "speaks",
    [
        [],
        {"protocol": [1], "normalisation": [N1]},  # a list missing
        {"protocol": [1], "normalisation": [N1], "features": [], "more": []},
        {"protocol": [], "normalisation": [N1], "features": []},
        {"protocol": [0], "normalisation": [N1], "features": []},
        {"protocol": [True], "normalisation": [N1], "features": []},
        {"protocol": [1.0], "normalisation": [N1], "features": []},
        {"protocol": [1, 1], "normalisation": [N1], "features": []},
        {"protocol": [1], "normalisation": [], "features": []},
        {"protocol": [1], "normalisation": [N1, N1], "features": []},
        {"protocol": [1], "normalisation": ["WLX-NORM-1"], "features": []},
        {"protocol": [1], "normalisation": [N1 + "\n"], "features": []},
        {"protocol": [1], "normalisation": [N1], "features": [""]},
        {"protocol": [1], "normalisation": [N1], "features": [f"f{i}" for i in range(17)]},
    ],
)
def test_a_malformed_speaks_member_makes_the_card_malformed(speaks: Any) -> None:
    with pytest.raises(MalformedError, match="speaks"):
        parse_card(_signed_with(speaks))


# ---------------------------------------------------------------- a card refresh carries the advertisement


def test_a_later_card_with_the_same_keys_refreshes_what_a_peer_speaks(
    federation: FederationMaker,
) -> None:
    """B.1: a node that starts speaking more re-issues its card with the same
    keys; the peer replaces the stored card (announced or added by hand)."""
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    stored = cn.trusted("RU")
    assert stored is not None and stored.speaks == NODE_SPEAKS  # what wlx init writes
    more = Speaks(normalisation=(N3, N2, N1), features=("oprf-online",))

    def ru_card(issued_at: int, speaks: Speaks, cert: bytes | None = None) -> bytes:
        key = tls.key_from_pem(ru.tls_key)
        return make_card(
            ru.signing_key,
            ru.box_key.public(),
            "RU",
            ru.card.address,
            issued_at,
            cert or ru.tls_cert,
            tls_key=key,
            speaks=speaks,
        )

    older = ru_card(stored.issued_at - 1, more)
    assert lifecycle.accept_card(cn, older, from_peer="RU").speaks == NODE_SPEAKS
    refreshed = ru_card(stored.issued_at + 1, more)
    assert lifecycle.accept_card(cn, refreshed, from_peer="RU").speaks == more
    now = cn.trusted("RU")
    assert now is not None and now.speaks == more and now.raw == refreshed
    # A new TLS certificate under the same identity key is not a refresh.
    other_cert = tls.node_certificate(
        tls.key_from_pem(ru.tls_key), "RU", not_before=0, not_after=2**32
    )
    lifecycle.accept_card(cn, ru_card(stored.issued_at + 2, V1, other_cert), from_peer="RU")
    now = cn.trusted("RU")
    assert now is not None and now.raw == refreshed
