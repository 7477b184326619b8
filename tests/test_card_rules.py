"""A peer's card cannot carry another node's TLS certificate (issue 8, item 4):
the certificate must name the card's node, prove possession of its key for
this identity, and be no other peer's.  A table of the pure decision, then
the attack on real nodes (``peer add`` and a self-endorsed rotation)."""

from __future__ import annotations

import pytest
from support.nodes import Federation, FederationMaker, record
from test_rejections import dump

from wlx.crypto import tls
from wlx.crypto.card import DEFAULT_SPEAKS, IdentityCard, Speaks, make_card, parse_card
from wlx.crypto.errors import VerificationError
from wlx.crypto.keys import BoxKey, SigningKey, system_rng
from wlx.node.core.errors import PermissionDenied, UserError
from wlx.node.outgoing import origin, ownlist
from wlx.node.protocol.card_rules import check_card, check_rotation
from wlx.node.trust import lifecycle

RNG = system_rng
KEY_AR, KEY_RU = tls.generate_key(RNG), tls.generate_key(RNG)


def cert(key: object, node_id: str) -> bytes:
    return tls.node_certificate(key, node_id, not_before=0, not_after=10**10, rng=RNG)  # type: ignore[arg-type]


CERT_AR, CERT_RU = cert(KEY_AR, "AR"), cert(KEY_RU, "RU")
CERT_AR_WITH_RU_KEY = cert(KEY_RU, "AR")
ID_AR = SigningKey.generate(RNG)


def card(
    node_id: str = "AR", pem: bytes = CERT_AR, tls_key: object = KEY_AR, **kw: object
) -> IdentityCard:
    raw = make_card(
        kw.get("key", ID_AR),  # type: ignore[arg-type]
        BoxKey.generate(RNG).public(),
        node_id,
        "ar:1",
        0,
        pem,
        previous=kw.get("previous"),  # type: ignore[arg-type]
        tls_key=tls_key,  # type: ignore[arg-type]
        speaks=kw.get("speaks", DEFAULT_SPEAKS),  # type: ignore[arg-type]
    )
    return parse_card(raw)


OK = card()
REFUSED = [
    (card(pem=CERT_RU, tls_key=KEY_RU), {}, "does not name AR"),  # RU's own certificate
    (card(pem=CERT_AR, tls_key=None), {}, "possession"),
    (card(pem=CERT_AR_WITH_RU_KEY, tls_key=None), {}, "possession"),  # RU's key, AR's name
    (OK, {OK.tls_fingerprint: "RU"}, "already RU's"),
    (card(node_id="CN", pem=cert(KEY_AR, "CN")), {}, "own identity card"),
]


def test_a_card_with_its_own_bound_certificate_is_accepted() -> None:
    check_card(OK, me="CN", my_tls_fingerprint="00", held={})
    check_card(OK, me="CN", my_tls_fingerprint="00", held={OK.tls_fingerprint: "AR"})


@pytest.mark.parametrize(("given", "held", "why"), REFUSED)
def test_a_card_with_anothers_certificate_is_refused(
    given: IdentityCard, held: dict[str, str], why: str
) -> None:
    with pytest.raises(PermissionDenied, match=why):
        check_card(given, me="CN", my_tls_fingerprint="00", held=held)


def test_this_nodes_own_certificate_is_refused() -> None:
    with pytest.raises(PermissionDenied, match="own TLS certificate"):
        check_card(OK, me="CN", my_tls_fingerprint=OK.tls_fingerprint, held={})


def test_a_proof_of_possession_made_for_another_identity_does_not_verify() -> None:
    other = SigningKey.generate(RNG)
    pop = tls.sign_possession(KEY_AR, "AR", other.public().raw)
    with pytest.raises(VerificationError):
        tls.verify_possession(CERT_AR, "AR", ID_AR.public().raw, pop)
    with pytest.raises(VerificationError):
        tls.verify_possession(CERT_RU, "AR", other.public().raw, pop)


def test_a_rotation_must_be_endorsed() -> None:
    new = SigningKey.generate(RNG)
    check_rotation(card(key=new, previous=ID_AR), OK)
    check_rotation(OK, OK)
    with pytest.raises(PermissionDenied, match="not endorsed"):
        check_rotation(card(key=new), OK)


def _stolen_card(fed: Federation, pem: bytes, tls_key: object = None) -> bytes:
    """AR's rotated card, endorsed by AR's trusted key, carrying ``pem``."""
    ar = fed["AR"].node
    return make_card(
        SigningKey.generate(),
        BoxKey.generate().public(),
        "AR",
        fed["AR"].address,
        ar.now(),
        pem,
        previous=ar.signing_key,
        tls_key=tls_key,  # type: ignore[arg-type]
    )


def test_a_peer_cannot_take_another_peers_tls_certificate(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU", "AR"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1")])
    fed.sync_all()
    stolen = _stolen_card(fed, ru.card.tls_cert)
    same_key = _stolen_card(fed, cert(tls.key_from_pem(ru.paths.tls_key.read_bytes()), "AR"))
    before = dump(cn)
    for forged in (stolen, same_key):
        with pytest.raises(PermissionDenied):
            lifecycle.accept_card(cn, forged, from_peer="AR")
        with pytest.raises(PermissionDenied):
            origin.add_peer(cn, forged, fed["AR"].address)
    # RU's own card, re-announced as a new node by the operator: the certificate is RU's.
    assert dump(cn) == before
    # RU is still RU to CN: it still gets CN's changes.
    ownlist.import_records(cn, [record("CN-2")])
    report = fed.sync("RU", "CN")
    assert report.ok and report.ops == 1


def test_a_card_speaking_nothing_in_common_is_refused_with_what_to_do() -> None:
    """MUST-B.2-1: no common protocol or normalisation: refused when added."""
    norm2 = card(speaks=Speaks(normalisation=("wlx-norm-2",)))
    with pytest.raises(UserError, match=r"no-common-normalisation.*upgrade one"):
        check_card(norm2, me="CN", my_tls_fingerprint="00", held={})
    both = Speaks(normalisation=("wlx-norm-1", "wlx-norm-2"))
    check_card(norm2, me="CN", my_tls_fingerprint="00", held={}, my_speaks=both)
    v2 = card(speaks=Speaks(protocol=(2,)))
    with pytest.raises(UserError, match="no-common-protocol"):
        check_card(v2, me="CN", my_tls_fingerprint="00", held={})
