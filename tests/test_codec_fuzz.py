"""Fuzz the parsers: their only rule is "parse, or raise our error".

In the style of h11's fuzz tests: feed every decoder of
``wlx.node.protocol.codec`` random bytes, valid payloads with random
mutations, and well-formed protobuf messages with random field values, and
assert that the only exception that ever escapes is ``Rejection`` (reason
``malformed`` or ``too-large``).  The crypto parsers (identity cards, signed
notes, checkpoints) are held to ``MalformedError``/``VerificationError``, and
the whole receive path (open the envelope, check the signature, parse the
payload) to ``Rejection``.

The seeds are the valid messages of docs/vectors/messages.json, so mutations
start from bytes a real origin sends.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wlx.crypto import envelope as hpke_envelope
from wlx.crypto import tls
from wlx.crypto.card import make_card, parse_card
from wlx.crypto.checkpoint import Checkpoint
from wlx.crypto.errors import MalformedError, VerificationError
from wlx.crypto.keys import BoxKey, SigningKey
from wlx.crypto.note import Ed25519Signer, open_note, sign_note
from wlx.crypto.signing import Purpose
from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.protocol import codec
from wlx.node.protocol.envelopes import open_envelope, seal_signed
from wlx.node.protocol.messages import (
    DetailAnswer,
    DetailParams,
    HitData,
    Receipt,
    ReceiptKind,
    Sealed,
    SignedRequest,
)
from wlx.v1 import envelope_pb2, federation_pb2

MESSAGES: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "docs" / "vectors" / "messages.json").read_text()
)

DECODERS: dict[str, Callable[[bytes], object]] = {
    "batch": codec.decode_batch_payload,
    "snapshot_part": codec.decode_snapshot_part,
    "pull": codec.decode_pull_params,
    "snapshot": codec.decode_snapshot_params,
    "signed": codec.decode_signed_bytes,
    "hit": codec.decode_hit,
    "receipt": codec.decode_receipt,
    "detail_params": codec.decode_detail_params,
    "detail_answer": codec.decode_detail_answer,
}


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


SEEDS: dict[str, bytes] = {
    "batch1": _h(MESSAGES["batches"][0]["payload"]),
    "batch2": _h(MESSAGES["batches"][1]["payload"]),
    "snapshot_part": _h(MESSAGES["snapshot_part"]["payload"]),
    "pull": _h(MESSAGES["pull_params"]["payload"]),
    "snapshot": _h(MESSAGES["snapshot_params"]["payload"]),
    "signed": _h(MESSAGES["batches"][0]["signed_message"]),
    "hit": codec.encode_hit(
        HitData("CN", "CN-0001", "wanted", "arrest", "2099-12-31", "document", 3)
    ),
    "receipt": codec.encode_receipt(
        Receipt("CN", "RU", 1, ReceiptKind.BATCH, 1, 2, bytes(range(32)), 1_800_000_000)
    ),
    "detail_params": codec.encode_detail_params(
        DetailParams("RU", "CN", "CN-0001", "Border Guard", "officer-7", "check", "", 1, bytes(16))
    ),
    "detail_answer": codec.encode_detail_answer(
        DetailAnswer("CN", "RU", bytes(32), True, "", b'{"id":"CN-0001"}', 1)
    ),
}


def test_every_seed_decodes() -> None:
    # The fuzz starts from valid inputs, so that mutations reach deep checks.
    for name, decoder in DECODERS.items():
        decoder(SEEDS["batch1" if name == "batch" else name])
    codec.decode_batch_payload(SEEDS["batch2"])


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes] = SEEDS) -> bytes:
    """A seed with one to four random edits (h11's mutation fuzzing)."""
    data = bytearray(draw(st.sampled_from(sorted(seeds.values()))))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and at < len(data):
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x08, 0x0A, 0x12]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[at:]
        else:
            other = draw(st.sampled_from(sorted(seeds.values())))
            data[at:] = other[draw(st.integers(0, len(other))) :]
    return bytes(data)


def parse_or_reject(decoder: Callable[[bytes], object], data: bytes) -> None:
    try:
        decoder(data)
    except Rejection as rejection:
        assert rejection.reason in (RejectReason.MALFORMED, RejectReason.TOO_LARGE)


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.sampled_from(sorted(DECODERS)), st.binary(max_size=512))
def test_random_bytes(name: str, data: bytes) -> None:
    parse_or_reject(DECODERS[name], data)


@FUZZ
@given(st.sampled_from(sorted(DECODERS)), mutated())
def test_mutated_valid_payloads(name: str, data: bytes) -> None:
    parse_or_reject(DECODERS[name], data)


# ---------------------------------------------------------------- well-formed protobuf, random values

U64 = st.integers(0, 2**64 - 1)
SIZES = st.sampled_from([0, 1, 12, 15, 16, 17, 27, 28, 31, 32, 33, 64])


def blob() -> st.SearchStrategy[bytes]:
    return SIZES.flatmap(lambda n: st.binary(min_size=n, max_size=n))


def text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["", "CN", "RU", "2099-12-31", "2099-12-31\n", "9999-99-99", "batch"]),
        st.text(max_size=20),
    )


def upsert() -> st.SearchStrategy[federation_pb2.Upsert]:
    token = st.builds(federation_pb2.TokenEntry, token=blob(), sealed=blob())
    return st.builds(
        federation_pb2.Upsert,
        handle=blob(),
        expires=text(),
        tokens=st.lists(token, max_size=3),
    )


def op() -> st.SearchStrategy[federation_pb2.Op]:
    return st.one_of(
        st.just(federation_pb2.Op()),
        st.builds(lambda u: federation_pb2.Op(upsert=u), upsert()),
        st.builds(lambda h: federation_pb2.Op(remove=federation_pb2.Remove(handle=h)), blob()),
    )


MESSAGE_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "batch": st.builds(
        federation_pb2.BatchPayload,
        version=st.integers(0, 3),
        origin=text(),
        recipient=text(),
        epoch=st.one_of(st.integers(0, 3), U64),
        first_seq=st.one_of(st.integers(0, 3), U64),
        last_seq=st.one_of(st.integers(0, 5), U64),
        prev_digest=blob(),
        created_at=st.integers(-(2**63), 2**63 - 1),
        ops=st.lists(op(), max_size=4),
    ),
    "snapshot_part": st.builds(
        federation_pb2.SnapshotPart,
        version=st.integers(0, 2),
        epoch=st.integers(0, 2),
        snapshot_id=blob(),
        index=st.integers(0, 2),
        at_seq=U64,
        chain_digest=blob(),
        prev_part_digest=blob(),
        epoch_key=st.one_of(
            st.none(),
            st.builds(
                federation_pb2.EpochKey,
                token_key=blob(),
                normalisation=st.sampled_from(["", "wlx-norm-1", "wlx-norm-2"]),
            ),
        ),
        entries=st.lists(upsert(), max_size=3),
        final=st.booleans(),
        total_entries=U64,
    ),
    "pull": st.builds(
        federation_pb2.PullParams,
        epoch=U64,
        after_seq=U64,
        after_digest=blob(),
        issued_at=st.integers(-(2**63), 2**63 - 1),
        nonce=blob(),
        max_batches=st.integers(0, 2**32 - 1),
    ),
    "snapshot": st.builds(federation_pb2.SnapshotParams, nonce=blob(), requester=text()),
    "signed": st.builds(
        envelope_pb2.SignedMessage,
        payload=blob(),
        signature=blob(),
        signer=text(),
        recipient=text(),
        purpose=st.sampled_from([p.value for p in Purpose] + ["", "Batch", "other"]),
    ),
    "receipt": st.builds(
        federation_pb2.Receipt,
        epoch=st.integers(0, 2),
        kind=st.sampled_from(["batch", "snapshot", "", "x"]),
        first_seq=st.integers(0, 3),
        last_seq=st.integers(0, 3),
        digest=blob(),
    ),
    "detail_params": st.builds(
        federation_pb2.DetailParams,
        ref=st.text(max_size=300),
        purpose=st.text(max_size=300),
        officer=st.text(max_size=300),
        nonce=blob(),
    ),
    "detail_answer": st.builds(
        federation_pb2.DetailAnswer,
        request_digest=blob(),
        granted=st.booleans(),
        denial=text(),
        record=blob(),
    ),
}


@FUZZ
@given(
    st.sampled_from(sorted(MESSAGE_STRATEGIES)).flatmap(
        lambda name: st.tuples(st.just(name), MESSAGE_STRATEGIES[name])
    )
)
def test_well_formed_messages_with_random_values(item: tuple[str, Any]) -> None:
    name, message = item
    parse_or_reject(DECODERS[name], message.SerializeToString())


def test_a_batch_of_5001_operations_is_rejected() -> None:
    ops = [federation_pb2.Op(remove=federation_pb2.Remove(handle=bytes(16)))] * 5001
    payload = federation_pb2.BatchPayload(
        version=1, epoch=1, first_seq=1, last_seq=5001, prev_digest=bytes(32), ops=ops
    ).SerializeToString()
    with pytest.raises(Rejection) as info:
        codec.decode_batch_payload(payload)
    assert info.value.reason is RejectReason.MALFORMED


def test_deeply_nested_groups_are_rejected_and_shallow_ones_skipped() -> None:
    # Field 15 as a group (wire type 3): start tags 0x7b, end tags 0x7c.  Unknown
    # groups are parsed recursively; too deep must still be a rejection.
    for name, decoder in DECODERS.items():
        seed = SEEDS["batch1" if name == "batch" else name]
        parse_or_reject(decoder, b"\x7b" * 10_000)
        parse_or_reject(decoder, seed + b"\x7b" * 5_000 + b"\x7c" * 5_000)
        decoder(seed + b"\x7b" * 3 + b"\x7c" * 3)  # unknown fields are ignored


@settings(max_examples=100, deadline=None)
@given(
    st.builds(
        envelope_pb2.SealedEnvelope,
        version=st.integers(0, 3),
        sender=text(),
        recipient=text(),
        purpose=st.sampled_from([p.value for p in Purpose] + ["", "x"]),
        ciphertext=st.binary(max_size=64),
    )
)
def test_decode_sealed(message: envelope_pb2.SealedEnvelope) -> None:
    try:
        sealed = codec.decode_sealed(message)
    except Rejection as rejection:
        assert rejection.reason is RejectReason.MALFORMED
    else:
        assert sealed.ciphertext == message.ciphertext


def test_decode_sealed_refuses_more_than_8_mib() -> None:
    message = envelope_pb2.SealedEnvelope(
        version=1, sender="CN", recipient="RU", purpose="batch", ciphertext=bytes(8 * 2**20 + 1)
    )
    with pytest.raises(Rejection) as info:
        codec.decode_sealed(message)
    assert info.value.reason is RejectReason.TOO_LARGE


# ---------------------------------------------------------------- the whole receive path

CN_KEY = SigningKey.from_seed(_h(MESSAGES["origin_sign_seed"]))
RU_BOX = BoxKey.from_raw(_h(MESSAGES["sealed_batch"]["recipient_private_key"]))
CERT = tls.node_certificate(tls.generate_key(), "CN", not_before=0, not_after=2**32)
CN_CARD = parse_card(make_card(CN_KEY, BoxKey.generate().public(), "CN", "cn:1", 0, CERT))
RU_CARD = parse_card(make_card(SigningKey.generate(), RU_BOX.public(), "RU", "ru:1", 0, CERT))


def receive(sealed: Sealed) -> None:
    """Open, verify and parse a batch, as a recipient does before deciding."""
    try:
        payload = open_envelope(
            sealed,
            purpose=Purpose.BATCH,
            me="RU",
            box_key=RU_BOX,
            expected_sender="CN",
            trusted=lambda node_id: CN_CARD if node_id == "CN" else None,
        )
        codec.decode_batch_payload(payload)
    except Rejection as rejection:
        assert rejection.reason is not RejectReason.TOO_LARGE


def test_the_receive_path_accepts_the_vector() -> None:
    sealed = seal_signed(SEEDS["batch1"], Purpose.BATCH, signer="CN", key=CN_KEY, to=RU_CARD)
    payload = open_envelope(
        sealed,
        purpose=Purpose.BATCH,
        me="RU",
        box_key=RU_BOX,
        expected_sender="CN",
        trusted=lambda node_id: CN_CARD if node_id == "CN" else None,
    )
    assert payload == SEEDS["batch1"]


@settings(max_examples=150, deadline=None)
@given(mutated())
def test_the_receive_path_with_mutated_inner_messages(inner: bytes) -> None:
    # Encrypted correctly to RU, so the fuzz reaches the signed-message parser,
    # the signature check and (for validly signed payloads) the batch parser.
    ciphertext = hpke_envelope.seal(
        inner, RU_BOX.public(), purpose="batch", sender="CN", recipient="RU"
    )
    receive(Sealed("CN", "RU", Purpose.BATCH, ciphertext))


@settings(max_examples=150, deadline=None)
@given(mutated(), st.sampled_from(["CN", "AR", ""]), st.sampled_from(["RU", "AR", ""]))
def test_the_receive_path_with_signed_mutated_payloads(
    payload: bytes, sender: str, recipient: str
) -> None:
    # Validly signed and sealed by CN, so the fuzz reaches the payload parser.
    sealed = seal_signed(payload, Purpose.BATCH, signer="CN", key=CN_KEY, to=RU_CARD)
    receive(
        Sealed(
            sender or sealed.sender,
            recipient or sealed.recipient,
            sealed.purpose,
            sealed.ciphertext,
        )
    )


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), text(), text())
def test_the_receive_path_with_random_envelopes(ciphertext: bytes, sender: str, to: str) -> None:
    receive(Sealed(sender, to, Purpose.BATCH, ciphertext))


def test_a_signed_request_with_a_short_signature_is_malformed() -> None:
    message = envelope_pb2.SignedMessage(payload=b"", signature=bytes(63), purpose="pull")
    with pytest.raises(Rejection) as info:
        codec.decode_signed(message)
    assert info.value.reason is RejectReason.MALFORMED
    assert isinstance(
        codec.decode_signed(
            envelope_pb2.SignedMessage(payload=b"", signature=bytes(64), purpose="pull")
        ),
        SignedRequest,
    )


# ---------------------------------------------------------------- crypto parsers

CARD = make_card(CN_KEY, BoxKey.generate().public(), "CN", "cn.example:7001", 1_800_000_000, CERT)
CARD_SEEDS = {"card": CARD, "compact": json.dumps(json.loads(CARD)).encode()}
NOTE_SIGNER = Ed25519Signer("example.com/log", Ed25519PrivateKey.from_private_bytes(bytes(32)))
NOTE_TEXT = Checkpoint("example.com/log", 7, bytes(range(32))).to_text()
NOTE = sign_note(NOTE_TEXT, [NOTE_SIGNER])
NOTE_SEEDS = {"note": NOTE, "two": sign_note(NOTE_TEXT + "ext\n", [NOTE_SIGNER, NOTE_SIGNER])}
CRYPTO_ERRORS = (MalformedError, VerificationError)


def parse_card_or_fail(data: bytes) -> None:
    with contextlib.suppress(*CRYPTO_ERRORS):
        parse_card(data)


def open_note_or_fail(data: bytes) -> None:
    with contextlib.suppress(*CRYPTO_ERRORS):
        text, _ = open_note(data, [NOTE_SIGNER.verifier()])
        Checkpoint.parse(text)


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(CARD_SEEDS)))
def test_card_parser(data: bytes) -> None:
    parse_card_or_fail(data)


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(NOTE_SEEDS)))
def test_note_parser(data: bytes) -> None:
    open_note_or_fail(data)


@FUZZ
@given(st.text(max_size=200))
def test_checkpoint_parser(text_: str) -> None:
    with contextlib.suppress(MalformedError):
        Checkpoint.parse(text_)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["format", "node_id", "address", "sign_key", "box_key", "issued_at", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=50),
            st.lists(st.integers(), max_size=2),
        ),
    )
)
def test_card_payloads_of_any_shape(payload: dict[str, Any]) -> None:
    signature = base64.b64encode(bytes(64)).decode()
    data = json.dumps({"wlx_identity_card": json.dumps(payload), "signature": signature}).encode()
    parse_card_or_fail(data)
