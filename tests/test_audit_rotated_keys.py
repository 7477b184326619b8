"""The offline verifier and rotated keys (issue 8, item 8): a key rotated out
signs nothing after the log entry that retired it, and one witness counts once
however many of its keys cosigned."""

from __future__ import annotations

import base64

import pytest
from support.audit import bundle_of, witnessed_federation
from support.nodes import Federation, FederationMaker

from wlx.crypto.checkpoint import cosign
from wlx.crypto.keys import SigningKey
from wlx.crypto.note import sign_note
from wlx.node.audit.offline.bundle import Bundle, decode, encode
from wlx.node.audit.offline.errors import AuditFailure
from wlx.node.audit.offline.names import checkpoint_text, log_signer, private_key, witness_name
from wlx.node.audit.offline.verify import Keyring, retired_keys, valid_at, verify_bundle
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.rpc.announce import announce
from wlx.node.rpc.cosign import checkpoint_round
from wlx.node.trust import lifecycle


def with_latest(data: bytes, signer: SigningKey, cosigners: list[tuple[str, SigningKey]]) -> bytes:
    """The bundle with its latest checkpoint signed by ``signer`` and cosigned
    by ``cosigners`` (witness id, key) instead."""
    bundle = decode(data)
    size = int(bundle.checkpoints[-1].split(b"\n")[1])
    root_line = bundle.checkpoints[-1].split(b"\n")[2]
    text = checkpoint_text(bundle.node, size, base64.b64decode(root_line))
    note = sign_note(text, [log_signer(bundle.node, signer)])
    for witness, key in cosigners:
        note += cosign(text, witness_name(witness), private_key(key), 1_800_000_000).encode()
    return encode(
        Bundle(
            bundle.node,
            bundle.card,
            bundle.entries,
            (*bundle.checkpoints[:-1], note),
            bundle.witnessed,
        )
    )


def ring(fed: Federation) -> Keyring:
    return Keyring.from_cards((n, fed[n].node.card.raw) for n in ("CN", "RU", "AR"))


def test_one_witness_with_two_keys_counts_once(federation: FederationMaker) -> None:
    fed = witnessed_federation(federation)
    ru_old = fed["RU"].node.signing_key
    lifecycle.rotate_keys(fed["RU"].node)  # not announced: CN's log does not retire the old key
    ru_new = fed["RU"].node.signing_key
    data = bundle_of(fed, "CN")
    both = with_latest(data, fed["CN"].node.signing_key, [("RU", ru_old), ("RU", ru_new)])
    verified = verify_bundle(both, ring(fed), min_cosigners=1)
    assert verified.latest.cosigners == ("RU",)
    with pytest.raises(AuditFailure) as err:
        verify_bundle(both, ring(fed), min_cosigners=2)
    assert err.value.check == "cosignatures" and "cosigned by 1 trusted" in err.value.detail


def test_a_witness_key_retired_by_the_log_does_not_count(federation: FederationMaker) -> None:
    fed = witnessed_federation(federation)
    ru_old = fed["RU"].node.signing_key
    lifecycle.rotate_keys(fed["RU"].node)
    assert "CN" in announce(fed["RU"].node)  # CN logs peer.rotated
    _, reports = checkpoint_round(fed["CN"].node)
    assert all(r.ok for r in reports)
    data = bundle_of(fed, "CN")
    assert verify_bundle(data, ring(fed), min_cosigners=2).latest.cosigners == ("AR", "RU")
    ar = fed["AR"].node.signing_key
    stolen = with_latest(data, fed["CN"].node.signing_key, [("RU", ru_old), ("AR", ar)])
    assert verify_bundle(stolen, ring(fed)).latest.cosigners == ("AR",)
    with pytest.raises(AuditFailure) as err:
        verify_bundle(stolen, ring(fed), min_cosigners=2)
    assert err.value.check == "cosignatures"


def test_a_nodes_retired_key_signs_nothing_after_its_rotation(federation: FederationMaker) -> None:
    fed = witnessed_federation(federation)
    cn_old = fed["CN"].node.signing_key
    lifecycle.rotate_keys(fed["CN"].node)
    announce(fed["CN"].node)
    Lookup(fed["CN"].node).check(Query(names=("Nobody Here",), dob="1990"))  # one more entry
    _, reports = checkpoint_round(fed["CN"].node)
    assert all(r.ok for r in reports)
    data = bundle_of(fed, "CN")
    verify_bundle(data, ring(fed), min_cosigners=2)
    witnesses = [("RU", fed["RU"].node.signing_key), ("AR", fed["AR"].node.signing_key)]
    old_signed = with_latest(data, cn_old, witnesses)
    with pytest.raises(AuditFailure) as err:
        verify_bundle(old_signed, ring(fed))
    assert err.value.check == "signature" and "retired" in err.value.detail


def test_retirement_table() -> None:
    entries = [
        {"idx": 0, "kind": "node.created"},
        {"idx": 4, "kind": "keys.rotated", "old_fingerprint": "a"},
        {"idx": 7, "kind": "peer.rotated", "peer": "RU", "old_fingerprint": "b"},
        {"idx": 9, "kind": "peer.rotated", "peer": "RU", "old_fingerprint": "b"},
        {"idx": 9, "kind": "lookup", "old_fingerprint": "c"},
    ]
    retired = retired_keys(entries, "CN")
    assert retired == {("CN", "a"): 5, ("RU", "b"): 7}
    assert valid_at(retired, "CN", "a", 5) and not valid_at(retired, "CN", "a", 6)
    assert valid_at(retired, "RU", "b", 7) and not valid_at(retired, "RU", "b", 8)
    assert valid_at(retired, "RU", "a", 100) and valid_at(retired, "AR", "c", 100)
