"""Security defences end to end on real nodes (SECURITY.md maps threats here).

Mutual TLS bound to identity cards, roles on every RPC, credential
revocation and expiry, rate limits, sharing policies, key rotation, new
epochs and peer revocation.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from support.nodes import FakeClock, Federation, FederationMaker, record

from wlx.crypto import tls
from wlx.node.core.errors import AlreadyExists, NotFound, PermissionDenied
from wlx.node.core.limits import LimitSettings, Rate
from wlx.node.core.policy import SharingPolicy
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.rpc.announce import announce
from wlx.node.rpc.server import build_server
from wlx.node.rpc.transport import Credential, client_channel, peer_channel
from wlx.node.trust import credentials, lifecycle
from wlx.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    federation_pb2,
    federation_pb2_grpc,
    lookup_pb2,
    lookup_pb2_grpc,
)

DAY = 86_400


def person(ref: str) -> lookup_pb2.Person:
    return lookup_pb2.Person(names=[f"Test Person {ref.replace('-', ' ')}"], dob="1980-05-17")


def by_name(ref: str) -> Query:
    return Query(names=(f"Test Person {ref.replace('-', ' ')}",), dob="1980-05-17")


def check(channel: grpc.Channel, ref: str = "CN-1") -> list[str]:
    stub = lookup_pb2_grpc.LookupStub(channel)
    response = stub.Check(lookup_pb2.CheckRequest(person=person(ref), purpose="test"), timeout=5)
    return [h.ref for h in response.hits]


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    code: grpc.StatusCode = error.code()
    return code


def audit_kinds(fed: Federation, node_id: str) -> list[str]:
    from wlx.node.audit import exchange_log

    with fed[node_id].node.store.read() as tx:
        return [json.loads(e)["kind"] for _, e in tx.audit_entries(0, exchange_log.size(tx))]


@pytest.fixture
def fed(federation: FederationMaker) -> Federation:
    fed = federation(["CN", "RU", "AR"])
    ownlist.import_records(fed["CN"].node, [record("CN-1"), record("CN-2", category="missing")])
    fed.sync_all()
    return fed


# ---------------------------------------------------------------- mutual TLS


def test_a_self_signed_certificate_is_refused_at_the_handshake(fed: Federation) -> None:
    key = tls.generate_key()
    cert = tls.node_certificate(key, "RU", not_before=0, not_after=4_000_000_000)
    forged = Credential(
        node_id="RU",
        address=fed["RU"].address,
        name="mallory",
        role="officer",
        cert=cert,
        key=tls.key_to_pem(key),
        node_cert=fed["RU"].node.tls_cert,
    )
    with client_channel(fed["RU"].address, forged) as channel:
        assert code_of(lambda: check(channel)) == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_signed_by_another_nodes_ca_is_refused(fed: Federation) -> None:
    # A credential that CN issued does not open RU.
    issued = credentials.issue(fed["CN"].node, name="post-cn", role="officer")
    stolen = dataclasses.replace(issued, node_id="RU", node_cert=fed["RU"].node.tls_cert)
    with client_channel(fed["RU"].address, stolen) as channel:
        assert code_of(lambda: check(channel)) == grpc.StatusCode.UNAVAILABLE


def test_a_client_refuses_a_server_with_another_certificate(fed: Federation) -> None:
    # An officer's credential for RU, pointed at CN's address: CN's certificate
    # is not the one pinned, so the client refuses the handshake.
    issued = credentials.issue(fed["RU"].node, name="post-ru", role="officer")
    with client_channel(fed["CN"].address, issued) as channel:
        assert code_of(lambda: check(channel)) == grpc.StatusCode.UNAVAILABLE


def test_an_untrusted_node_cannot_connect_to_peers(
    fed: Federation, make_node: Callable[..., Any]
) -> None:
    outsider = make_node("XX")
    card = fed["CN"].node.card
    with peer_channel(outsider, card, fed["CN"].address) as channel:
        stub = federation_pb2_grpc.FederationStub(channel)
        call = lambda: list(stub.Pull(federation_pb2.PullRequest(), timeout=5))  # noqa: E731
        assert code_of(call) == grpc.StatusCode.UNAVAILABLE


# ---------------------------------------------------------------- roles

LOOKUP = ("Lookup", "Check")
STATUS = ("Admin", "Status")
PULL = ("Federation", "Pull")


def call_as(channel: grpc.Channel, method: tuple[str, str]) -> Callable[[], object]:
    service, _ = method
    if service == "Lookup":
        return lambda: check(channel)
    if service == "Admin":
        return lambda: admin_pb2_grpc.AdminStub(channel).Status(admin_pb2.StatusRequest())
    stub = federation_pb2_grpc.FederationStub(channel)
    return lambda: list(stub.Pull(federation_pb2.PullRequest(), timeout=5))


@pytest.mark.parametrize(
    ("role", "method"),
    [
        ("officer", STATUS),
        ("officer", PULL),
        ("auditor", LOOKUP),
        ("auditor", STATUS),
        ("auditor", PULL),
        ("operator", LOOKUP),
        ("operator", PULL),
    ],
)
def test_every_role_boundary_holds(fed: Federation, role: str, method: tuple[str, str]) -> None:
    channel = fed.channel("RU", role=role)
    assert code_of(call_as(channel, method)) == grpc.StatusCode.PERMISSION_DENIED
    assert "access.denied" in audit_kinds(fed, "RU")


def test_each_role_can_do_its_own_job(fed: Federation) -> None:
    assert check(fed.channel("RU", role="officer")) == ["CN-1"]
    status = admin_pb2_grpc.AdminStub(fed.channel("RU", role="operator")).Status(
        admin_pb2.StatusRequest()
    )
    assert status.node_id == "RU"


def test_a_peer_cannot_look_up(fed: Federation) -> None:
    ru = fed["RU"].node
    with peer_channel(ru, fed["CN"].node.card, fed["CN"].address) as channel:
        assert code_of(lambda: check(channel)) == grpc.StatusCode.PERMISSION_DENIED


def test_a_revoked_credential_is_refused_and_logged(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    channel = fed.channel("RU", name="post-9")
    assert check(channel) == ["CN-1"]
    credentials.revoke(fed["RU"].node, "post-9")
    assert code_of(lambda: check(channel)) == grpc.StatusCode.PERMISSION_DENIED
    assert any("revoked" in r.getMessage() for r in caplog.records)
    kinds = audit_kinds(fed, "RU")
    assert kinds.count("credential.revoked") == 1 and "access.denied" in kinds
    with pytest.raises(NotFound):
        credentials.revoke(fed["RU"].node, "post-9")


def test_an_expired_credential_is_refused(fed: Federation, clock: FakeClock) -> None:
    issued = credentials.issue(fed["RU"].node, name="post-short", role="officer", days=1)
    with client_channel(fed["RU"].address, issued) as channel:
        assert check(channel) == ["CN-1"]
        clock.advance(2 * DAY)
        assert code_of(lambda: check(channel)) == grpc.StatusCode.UNAUTHENTICATED


def test_one_active_credential_per_name(fed: Federation) -> None:
    credentials.issue(fed["RU"].node, name="post-1", role="officer")
    with pytest.raises(AlreadyExists):
        credentials.issue(fed["RU"].node, name="post-1", role="auditor")


# ---------------------------------------------------------------- limits


def test_an_officer_bursting_past_the_limit_is_throttled_and_logged(fed: Federation) -> None:
    ru = fed["RU"].node
    keys = len(by_name("CN-1").keys())  # a lookup costs one token per identifier key
    ru.config = dataclasses.replace(
        ru.config,
        limits=dataclasses.replace(
            LimitSettings(), officer=Rate(per_minute=0.001, burst=5 * keys, per_day=1000 * keys)
        ),
    )
    server, port = build_server(ru, "127.0.0.1:0")
    server.start()
    try:
        issued = credentials.issue(ru, name="busy-post", role="officer")
        with client_channel(f"127.0.0.1:{port}", issued) as channel:
            for _ in range(5):
                assert check(channel) == ["CN-1"]
            assert code_of(lambda: check(channel)) == grpc.StatusCode.RESOURCE_EXHAUSTED
            # A manifest costs the keys of all its people: 3 people > what is left.
            stub = lookup_pb2_grpc.LookupStub(channel)
            entries = [lookup_pb2.ScreenEntry(id=str(i), person=person("CN-1")) for i in range(3)]
            screen = lambda: stub.Screen(  # noqa: E731
                lookup_pb2.ScreenRequest(entries=entries, purpose="manifest")
            )
            assert code_of(screen) == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        server.stop(grace=None)
    assert "throttled" in audit_kinds(fed, "RU")


def test_a_lookup_must_name_a_purpose(fed: Federation) -> None:
    stub = lookup_pb2_grpc.LookupStub(fed.channel("RU"))
    request = lookup_pb2.CheckRequest(person=person("CN-1"), purpose=" ")
    assert code_of(lambda: stub.Check(request)) == grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------- sharing policy


def held(fed: Federation, at: str, origin_id: str) -> int:
    with fed[at].node.store.read() as tx:
        return tx.count_entries(origin_id)


def test_narrowing_a_policy_sends_removals_and_widening_sends_records(fed: Federation) -> None:
    cn = fed["CN"].node
    assert held(fed, "RU", "CN") == 2
    removed, added = origin.set_policy(cn, "RU", SharingPolicy.make(categories=["wanted"]))
    assert (removed, added) == (1, 0)
    assert fed.sync("RU", "CN").ok
    assert held(fed, "RU", "CN") == 1
    assert [h.ref for h in Lookup(fed["RU"].node).check(by_name("CN-2"))] == []
    # AR's policy is untouched.
    assert held(fed, "AR", "CN") == 2
    # New listings follow the policy too.
    ownlist.import_records(cn, [record("CN-3", category="missing"), record("CN-4")])
    assert fed.sync("RU", "CN").ok
    assert held(fed, "RU", "CN") == 2
    # Detail requests for what is not shared are denied.
    removed, added = origin.set_policy(cn, "RU", SharingPolicy())
    assert (removed, added) == (0, 2)
    assert fed.sync("RU", "CN").ok
    assert held(fed, "RU", "CN") == 4
    assert "policy.change" in audit_kinds(fed, "CN")


def test_a_new_peer_gets_only_what_its_policy_shares(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn = fed["CN"].node
    ownlist.import_records(cn, [record("CN-1"), record("CN-2", action="locate")])
    origin.set_policy(cn, "RU", SharingPolicy.make(actions=["locate"], exclude=["CN-9"]))
    report = fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries == 1


# ---------------------------------------------------------------- key lifecycle


def test_rotation_end_to_end(fed: Federation) -> None:
    cn = fed["CN"].node
    old = cn.card
    card = lifecycle.rotate_keys(cn)
    assert card.previous_key is not None and card.previous_key.same_as(old.sign_key)
    assert not card.sign_key.same_as(old.sign_key)
    assert (cn.paths.previous_keys / "tls.pem").exists()
    # Delivered to every peer over the old TLS identity; they accept it.
    assert sorted(announce(cn)) == ["AR", "RU"]
    assert not (cn.paths.previous_keys / "tls.pem").exists()
    for peer in ("RU", "AR"):
        trusted = fed[peer].node.trusted("CN")
        assert trusted is not None and trusted.sign_key.same_as(card.sign_key)
        assert "peer.rotated" in audit_kinds(fed, peer)
    # The new epoch arrives by snapshot signed with the new key; lookups go on.
    ownlist.import_records(cn, [record("CN-5")])
    report = fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries == 3
    assert [h.ref for h in Lookup(fed["RU"].node).check(by_name("CN-5"))] == ["CN-5"]
    # And CN pulls from RU with its new TLS identity.
    assert fed.sync("CN", "RU").ok
    assert "keys.rotated" in audit_kinds(fed, "CN")


def test_a_card_not_endorsed_by_the_trusted_key_is_refused(fed: Federation) -> None:
    from wlx.node.directory import init_node

    # Announcing a card for another node than oneself is refused.
    with pytest.raises(PermissionDenied):
        lifecycle.accept_card(fed["RU"].node, fed["CN"].node.card.raw, from_peer="AR")
    # A fresh, unendorsed card for CN: refused as a rotation, refused as a new peer.
    fake_cn = init_node(
        fed["CN"].node.paths.root.parent / "fake-cn", node_id="CN", listen="127.0.0.1:0"
    )
    try:
        with pytest.raises(PermissionDenied):
            lifecycle.accept_card(fed["RU"].node, fake_cn.card.raw, from_peer="CN")
        with pytest.raises(AlreadyExists):
            origin.add_peer(fed["RU"].node, fake_cn.card.raw, fed["CN"].address)
    finally:
        fake_cn.close()


def test_a_new_epoch_replaces_every_token(fed: Federation) -> None:
    ru = fed["RU"].node
    before = _all_tokens(ru)
    assert lifecycle.new_epoch(fed["CN"].node, "RU") == [("RU", 2)]
    report = fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries == 2
    after = _all_tokens(ru)
    assert before and after and not before & after
    assert [h.ref for h in Lookup(ru).check(by_name("CN-1"))] == ["CN-1"]


def _all_tokens(node: Any) -> set[bytes]:
    import sqlite3

    with sqlite3.connect(node.paths.root / "wlx.db") as db:
        return {
            r[0]
            for r in db.execute(
                "SELECT token FROM tokens WHERE origin IN "
                "(SELECT slot FROM slots WHERE origin = 'CN' AND state = 'live')"
            )
        }


def test_revoking_a_peer_refuses_it_purges_it_and_sends_it_nothing(fed: Federation) -> None:
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(ru, [record("RU-1")])
    assert fed.sync("CN", "RU").ok
    assert held(fed, "CN", "RU") == 1
    assert lifecycle.revoke_peer(cn, "RU") == 1
    assert held(fed, "CN", "RU") == 0
    assert cn.trusted("RU") is None
    # RU's pulls are refused at the handshake; CN sends it nothing more.
    ownlist.import_records(cn, [record("CN-7")])
    report = fed.sync("RU", "CN")
    assert not report.ok
    assert [h.ref for h in Lookup(ru).check(by_name("CN-7"))] == []
    # CN no longer pulls from RU either.
    assert fed.sync("CN", "RU").error
    assert "peer.revoke" in audit_kinds(fed, "CN")
    # Trusting it again starts a new epoch: RU resyncs and gets everything.
    origin.add_peer(cn, ru.card.raw, fed["RU"].address)
    report = fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries == 3


def test_insecure_dev_serves_plaintext_and_says_so(
    make_node: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    node = make_node("DEV")
    ownlist.import_records(node, [record("DEV-1")])
    node.insecure_dev = True
    server, port = build_server(node, "127.0.0.1:0")
    server.start()
    try:
        assert any("INSECURE-DEV" in r.getMessage() for r in caplog.records)
        with client_channel(f"127.0.0.1:{port}", None) as channel:
            assert check(channel, "DEV-1") == ["DEV-1"]
    finally:
        server.stop(grace=None)
    # Without the flag, the same plaintext client gets nowhere.
    node.insecure_dev = False
    server, port = build_server(node, "127.0.0.1:0")
    server.start()
    try:
        with client_channel(f"127.0.0.1:{port}", None) as channel:
            assert code_of(lambda: check(channel, "DEV-1")) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(grace=None)
