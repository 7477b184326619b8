"""The parties of a detail request and of its answer (§11.2, §11.3) as tables:
the request names its signer and us, the answer the origin asked, us and
exactly this request."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.protocol.detail_checks import check_answer, check_request_parties
from wlx.node.protocol.messages import DetailAnswer, DetailParams

REQUEST = DetailParams("RU", "CN", "R-1", "RU", "o-1", "screening", "c-1", 0, b"n" * 16)

PARTY_CASES = [
    # (requester named, origin named, signer, me, reason or None if the parties are right)
    ("RU", "CN", "RU", "CN", None),
    ("RU", "CN", "BY", "CN", RejectReason.WRONG_SENDER),
    ("RU", "KP", "RU", "CN", RejectReason.WRONG_RECIPIENT),
    # Both wrong: the sender is named.
    ("RU", "KP", "BY", "CN", RejectReason.WRONG_SENDER),
]


@pytest.mark.parametrize(("requester", "origin", "signer", "me", "reason"), PARTY_CASES)
def test_a_detail_request_names_its_signer_and_this_node(
    requester: str, origin: str, signer: str, me: str, reason: RejectReason | None
) -> None:
    params = replace(REQUEST, requester=requester, origin=origin)
    if reason is None:
        check_request_parties(params, signer=signer, me=me)
        return
    with pytest.raises(Rejection) as caught:
        check_request_parties(params, signer=signer, me=me)
    assert caught.value.reason == reason


DIGEST = b"d" * 32
ANSWER = DetailAnswer("CN", "RU", DIGEST, True, "", b"{}", 0)

ANSWER_CASES = [
    # (origin named, recipient named, request digest, reason or None if it is this answer)
    ("CN", "RU", DIGEST, None),
    ("KP", "RU", DIGEST, RejectReason.WRONG_RECIPIENT),
    ("CN", "BY", DIGEST, RejectReason.WRONG_RECIPIENT),
    ("CN", "RU", b"e" * 32, RejectReason.MALFORMED),
    # Other parties first, whatever it answers.
    ("KP", "RU", b"e" * 32, RejectReason.WRONG_RECIPIENT),
]


@pytest.mark.parametrize(("origin", "recipient", "digest", "reason"), ANSWER_CASES)
def test_a_detail_answer_is_from_the_origin_for_us_and_this_request(
    origin: str, recipient: str, digest: bytes, reason: RejectReason | None
) -> None:
    reply = replace(ANSWER, origin=origin, recipient=recipient, request_digest=digest)
    if reason is None:
        check_answer(reply, origin="CN", me="RU", request_digest=DIGEST)
        return
    with pytest.raises(Rejection) as caught:
        check_answer(reply, origin="CN", me="RU", request_digest=DIGEST)
    assert caught.value.reason == reason
