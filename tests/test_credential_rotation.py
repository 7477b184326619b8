"""Credentials survive a key rotation, and renew without a gap (issue 9, item 4).

A credential pins the node's credential CA, which ``wlx keys rotate`` does
not replace; the node presents a certificate its CA issued for its current
TLS key.  ``credential renew`` replaces a credential while the old one
keeps working.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import grpc
import pytest
from support.nodes import FakeClock, Federation, FederationMaker, record
from test_security import check, code_of

from wlx.crypto import tls
from wlx.node.core.errors import NotFound, UserError
from wlx.node.outgoing import ownlist
from wlx.node.rpc.transport import Credential, client_channel
from wlx.node.trust import credentials, lifecycle

DAY = 86_400


@pytest.fixture
def fed(federation: FederationMaker) -> Federation:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    return fed


@pytest.mark.parametrize("role", ["officer", "auditor", "operator"])
def test_a_credential_works_after_its_node_rotates_keys(fed: Federation, role: str) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    ru = fed["RU"].node
    issued = credentials.issue(ru, name=f"{role}-1", role=role)
    old_fingerprint = tls.fingerprint(ru.tls_cert)
    lifecycle.rotate_keys(ru)
    assert tls.fingerprint(ru.tls_cert) != old_fingerprint
    with client_channel(fed["RU"].address, issued) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == 1
        if role == "officer":
            assert check(channel) == ["CN-1"]


def test_a_credential_file_round_trips_and_pins_the_ca(fed: Federation, tmp_path: Path) -> None:
    ru = fed["RU"].node
    issued = credentials.issue(ru, name="post-1", role="officer")
    path = tmp_path / "post-1.json"
    path.write_bytes(issued.to_bytes())
    path.chmod(0o600)
    obj = json.loads(path.read_text())
    assert obj["wlx_credential"] == 2 and "node_cert" not in obj
    assert obj["ca_cert"] == ru.ca_cert.decode()
    assert Credential.load(path) == issued


def test_a_format_1_credential_still_works_until_a_rotation(
    fed: Federation, tmp_path: Path
) -> None:
    ru = fed["RU"].node
    issued = credentials.issue(ru, name="post-old", role="officer")
    legacy = dataclasses.replace(issued, ca_cert=b"", node_cert=ru.tls_cert)
    path = tmp_path / "old.json"
    path.write_bytes(legacy.to_bytes())
    path.chmod(0o600)
    assert json.loads(path.read_text())["wlx_credential"] == 1
    loaded = Credential.load(path)
    with client_channel(fed["RU"].address, loaded) as channel:
        assert check(channel) == ["CN-1"]
    # Renewing moves it to a credential that pins the CA.
    renewed = credentials.renew(ru, "post-old")
    lifecycle.rotate_keys(ru)
    with client_channel(fed["RU"].address, renewed) as channel:
        assert check(channel) == ["CN-1"]


def test_the_service_certificate_opens_no_node_as_a_client(fed: Federation) -> None:
    # The CA-issued server certificate is for serving only: with the node's
    # key it is still not a credential.
    ru = fed["RU"].node
    stolen = Credential(
        node_id="RU",
        address=fed["RU"].address,
        name="svc",
        role="officer",
        cert=ru.service_cert,
        key=ru.tls_key,
        ca_cert=ru.ca_cert,
    )
    with client_channel(fed["RU"].address, stolen) as channel:
        assert code_of(lambda: check(channel)) in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.UNAVAILABLE,
        )


def test_renew_leaves_no_gap_and_ends_the_old_credential(fed: Federation, clock: FakeClock) -> None:
    ru = fed["RU"].node
    old = credentials.issue(ru, name="post-2", role="officer")
    new = credentials.renew(ru, "post-2", overlap_days=2)
    assert new.role == "officer" and new.cert != old.cert
    for credential in (old, new):
        with client_channel(fed["RU"].address, credential) as channel:
            assert check(channel) == ["CN-1"]
    clock.advance(3 * DAY)
    with client_channel(fed["RU"].address, old) as channel:
        assert code_of(lambda: check(channel)) == grpc.StatusCode.UNAUTHENTICATED
    with client_channel(fed["RU"].address, new) as channel:
        assert check(channel) == ["CN-1"]


def test_renew_with_no_overlap_revokes_the_old_one_at_once(fed: Federation) -> None:
    ru = fed["RU"].node
    old = credentials.issue(ru, name="post-3", role="auditor")
    new = credentials.renew(ru, "post-3", overlap_days=0)
    assert new.role == "auditor"
    with client_channel(fed["RU"].address, old) as channel:
        assert code_of(lambda: check(channel)) == grpc.StatusCode.PERMISSION_DENIED
    states = {(c.serial, bool(c.revoked_at)) for c in credentials.listing(ru)}
    assert len(states) == 2 and sum(revoked for _, revoked in states) == 1


def test_renew_refuses_what_it_cannot_do(fed: Federation) -> None:
    ru = fed["RU"].node
    with pytest.raises(NotFound):
        credentials.renew(ru, "nobody")
    credentials.issue(ru, name="post-4", role="officer")
    with pytest.raises(UserError):
        credentials.renew(ru, "post-4", days=0)
    with pytest.raises(UserError):
        credentials.renew(ru, "post-4", overlap_days=-1)
