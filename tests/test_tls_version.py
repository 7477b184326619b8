"""TLS 1.3 only (issue 8, item 16).  gRPC's TLS stack completes a TLS 1.2
handshake and offers no switch to refuse it, so the node refuses every call
whose connection is not TLS 1.3, before reading anything of it."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import grpc
import pytest
from support.nodes import FederationMaker

from wlx.node.core.errors import Unauthenticated
from wlx.node.rpc.auth import Role, identify
from wlx.node.rpc.status_codes import code_for
from wlx.node.trust import credentials


def test_a_call_over_tls_1_2_is_refused(federation: FederationMaker) -> None:
    fed = federation(["CN"])
    cn = fed["CN"].node
    officer = credentials.issue(cn, name="post-1", role="officer")
    context = {"x509_pem_cert": [officer.cert], "transport_security_type": [b"ssl"]}
    assert identify(cn, {**context, "ssl_tls_version": [b"TLSv1.3"]}).role is Role.OFFICER
    for version in ([b"TLSv1.2"], [b"TLSv1.1"], [], [b"TLSv1.3", b"TLSv1.2"]):
        with pytest.raises(Unauthenticated) as err:
            identify(cn, {**context, "ssl_tls_version": version})
        assert code_for(err.value) == grpc.StatusCode.UNAUTHENTICATED
        assert "TLS 1.3" in str(err.value)


def test_the_node_negotiates_tls_1_3(federation: FederationMaker, tmp_path: Path) -> None:
    """What a client that offers everything gets: TLS 1.3."""
    fed = federation(["CN"])
    officer = credentials.issue(fed["CN"].node, name="post-2", role="officer")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_bytes(officer.cert)
    key.write_bytes(officer.key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", fed["CN"].port), timeout=10) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        assert tls.version() == "TLSv1.3"
