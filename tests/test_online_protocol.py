"""The online tier's wire form and decisions (docs/protocol.md §15.4-§15.6), sans I/O."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wlx.crypto import online, oprf
from wlx.crypto.digests import payload_digest
from wlx.crypto.normalize import record_keys
from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.protocol import online as proto
from wlx.node.protocol.online import NotChecked, Refusal

SEED = bytes(range(32))
IKEYS = [k.value for k in record_keys(["Wang Wei", "Li Na"], "1980-05-17", [("CHN", "E12345678")])]


def request(n: int = 3, epoch: int = 2) -> tuple[proto.EvaluateParams, list[oprf.Blinded], bytes]:
    blinded = online.blind_keys(IKEYS[:n])
    params = proto.EvaluateParams(
        "RU", "CN", epoch, 1_700_000_000, bytes(16), tuple(b.element for b in blinded)
    )
    return params, blinded, proto.encode_evaluate_params(params)


def test_round_trip_and_answer_gives_the_origins_keys() -> None:
    params, blinded, payload = request()
    assert proto.decode_evaluate_params(payload) == params
    assert proto.issued_at(payload) == params.issued_at
    key = online.OnlineKey.derive(SEED, "CN", "RU", 2)
    answer = proto.answer_evaluate(params, payload, key, now=5)
    assert answer.request_digest == payload_digest(payload)
    answer = proto.decode_evaluate_answer(proto.encode_evaluate_answer(answer))
    keys = proto.check_answer(
        answer, params=params, payload=payload, public_key=key.public, blinded=blinded
    )
    assert keys == [key.entry_keys(ik) for ik in IKEYS[:2] + IKEYS[2:3]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nonce": b"x"}, "nonce"),
        ({"epoch": 0}, "epochs"),
        ({"blinded": ()}, "1 to"),
        ({"blinded": (bytes(32),)}, "element"),
        ({"blinded": (b"\xff" * 32,)}, "element"),
        ({"blinded": (b"\x01" * 31,)}, "element"),
    ],
)
def test_malformed_requests(change: dict[str, object], message: str) -> None:
    params, _, _ = request()
    payload = proto.encode_evaluate_params(dataclasses.replace(params, **change))  # type: ignore[arg-type]
    with pytest.raises(Rejection) as err:
        proto.decode_evaluate_params(payload)
    assert err.value.reason is RejectReason.MALFORMED and message in err.value.detail


def test_too_many_elements_and_garbage() -> None:
    params, _, _ = request(1)
    big = dataclasses.replace(params, blinded=params.blinded * (proto.MAX_EVALUATE + 1))
    with pytest.raises(Rejection):
        proto.decode_evaluate_params(proto.encode_evaluate_params(big))
    for garbage in (b"\xff\xff\xff", b"\x0a\xff"):
        with pytest.raises(Rejection):
            proto.decode_evaluate_params(garbage)
        with pytest.raises(Rejection):
            proto.decode_evaluate_answer(garbage)


@pytest.mark.parametrize(
    ("current", "charged", "budget", "n", "expected"),
    [
        (2, 0, 100, 3, None),
        (2, 97, 100, 3, None),  # exactly the budget
        (2, 98, 100, 3, Refusal.QUOTA),  # one over: refused whole
        (2, 0, 0, 1, Refusal.QUOTA),  # budget 0: tier off for this peer
        (3, 0, 100, 3, Refusal.STALE_EPOCH),
        (None, 0, 100, 3, Refusal.STALE_EPOCH),  # no stream to this peer
        (3, 100, 100, 3, Refusal.STALE_EPOCH),  # the epoch is checked first
    ],
)
def test_decide_evaluate(
    current: int | None, charged: int, budget: int, n: int, expected: Refusal | None
) -> None:
    params, _, _ = request(n)
    assert (
        proto.decide_evaluate(params, current_epoch=current, charged_today=charged, budget=budget)
        == expected
    )


def answer_for(
    params: proto.EvaluateParams, payload: bytes
) -> tuple[proto.EvaluateAnswer, online.OnlineKey]:
    key = online.OnlineKey.derive(SEED, "CN", "RU", params.epoch)
    return proto.answer_evaluate(params, payload, key, now=5), key


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"origin": "DE"}, RejectReason.WRONG_RECIPIENT),
        ({"recipient": "DE"}, RejectReason.WRONG_RECIPIENT),
        ({"epoch": 3}, RejectReason.MALFORMED),
        ({"request_digest": bytes(32)}, RejectReason.MALFORMED),
        ({"evaluated": ()}, RejectReason.MALFORMED),
        ({"proof": bytes(64)}, RejectReason.BAD_PROOF),
        ({"proof": b"\x01" + bytes(63)}, RejectReason.BAD_PROOF),
    ],
)
def test_bad_answers_are_rejected(change: dict[str, object], reason: RejectReason) -> None:
    params, blinded, payload = request()
    answer, key = answer_for(params, payload)
    bad = dataclasses.replace(answer, **change)  # type: ignore[arg-type]
    with pytest.raises(Rejection) as err:
        proto.check_answer(
            bad, params=params, payload=payload, public_key=key.public, blinded=blinded
        )
    assert err.value.reason is reason


def test_swapped_or_tampered_elements_and_another_key_fail_the_proof() -> None:
    params, blinded, payload = request()
    answer, key = answer_for(params, payload)
    swapped = dataclasses.replace(answer, evaluated=answer.evaluated[::-1])
    other = online.OnlineKey.derive(SEED, "CN", "RU", 7)
    tampered = bytearray(answer.evaluated[0])
    tampered[0] ^= 1
    cases = [
        (swapped, key.public),
        (answer, other.public),  # evaluated under a key other than the committed one
        (
            dataclasses.replace(answer, evaluated=(bytes(tampered), *answer.evaluated[1:])),
            key.public,
        ),
    ]
    for bad, public in cases:
        with pytest.raises(Rejection) as err:
            proto.check_answer(
                bad, params=params, payload=payload, public_key=public, blinded=blinded
            )
        assert err.value.reason is RejectReason.BAD_PROOF


def test_answer_needs_the_requesters_stream_key() -> None:
    params, _, payload = request()
    with pytest.raises(ValueError):
        proto.answer_evaluate(params, payload, online.OnlineKey.derive(SEED, "CN", "DE", 2), now=1)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"unreachable": True}, NotChecked.UNREACHABLE),
        ({"rejected": True}, NotChecked.INVALID),
        ({"refusal": "quota"}, NotChecked.QUOTA),
        ({"refusal": "stale-epoch"}, NotChecked.STALE_EPOCH),
        ({"refusal": "permission"}, NotChecked.REFUSED),
    ],
)
def test_not_checked_reasons(kwargs: dict[str, object], expected: NotChecked) -> None:
    assert proto.not_checked_reason(**kwargs) is expected  # type: ignore[arg-type]
    assert str(NotChecked.UNREACHABLE) == "origin unreachable"


def test_day_of() -> None:
    assert proto.day_of(0) == 0 and proto.day_of(86_399) == 0 and proto.day_of(86_400) == 1


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_decoders_raise_only_rejections(data: bytes) -> None:
    for decode in (proto.decode_evaluate_params, proto.decode_evaluate_answer, proto.issued_at):
        with contextlib.suppress(Rejection):
            decode(data)


@settings(max_examples=100, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_mutated_requests_parse_or_are_rejected(position: int, bit: int) -> None:
    _, _, payload = request()
    mutated = bytearray(payload)
    mutated[position % len(mutated)] ^= 1 << bit
    try:
        params = proto.decode_evaluate_params(bytes(mutated))
    except Rejection:
        return
    assert all(len(e) == 32 for e in params.blinded)
