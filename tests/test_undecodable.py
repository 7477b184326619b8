"""Undecodable requests (issue 8, item 11): the caller is authenticated and
authorised first, then the request is decoded; bytes that are no message get
INVALID_ARGUMENT and one log line, never INTERNAL or a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import grpc
import pytest
from support.nodes import Federation, FederationMaker, record
from test_rejections import dump

from wlx.node.outgoing import ownlist
from wlx.node.rpc.transport import peer_channel

GARBAGE = b"\xff\xff\xff\xff\xff"


def raw_unary(channel: grpc.Channel, method: str) -> Callable[[bytes], bytes]:
    call: Callable[[bytes], bytes] = channel.unary_unary(
        method, request_serializer=None, response_deserializer=None
    )
    return call


def code_and_details(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    return error.code(), str(error.details())


@pytest.fixture
def fed(federation: FederationMaker) -> Federation:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    return fed


def test_an_undecodable_request_is_invalid_and_logged_once(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    cn = fed["CN"].node
    officer = fed.channel("CN")
    ru = fed["RU"].node
    card = ru.trusted("CN")
    assert card is not None
    peer = peer_channel(ru, card, fed["CN"].address)
    before = dump(cn)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        for channel, method in [
            (officer, "/wlx.v1.Lookup/Check"),
            (officer, "/wlx.v1.Lookup/Screen"),
            (peer, "/wlx.v1.Federation/RequestDetail"),
        ]:
            code, details = code_and_details(partial(raw_unary(channel, method), GARBAGE))
            assert code == grpc.StatusCode.INVALID_ARGUMENT, details
            assert "not a valid" in details
        stream = peer.unary_stream(
            "/wlx.v1.Federation/Pull", request_serializer=None, response_deserializer=None
        )
        code, _ = code_and_details(lambda: list(stream(GARBAGE)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    peer.close()
    refusals = [r for r in caplog.records if "does not decode" in r.getMessage()]
    assert all(r.name == "wlx.auth" for r in refusals)
    assert len(refusals) == 4
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert dump(cn) == before  # the exchange log has the four refusals (not compared)


def test_an_unauthorised_caller_is_refused_before_its_request_is_read(fed: Federation) -> None:
    auditor = fed.channel("CN", role="auditor")
    code, details = code_and_details(lambda: raw_unary(auditor, "/wlx.v1.Lookup/Check")(GARBAGE))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "may not call" in details
