"""RFC 9497 OPRF/VOPRF (ristretto255-SHA512) and RFC 9380 expand_message_xmd.

Every ristretto255-SHA512 vector of RFC 9497 Appendix A.1.1 and A.1.2 and
every SHA-512 vector of RFC 9380 Appendix K.3, from
tests/crypto/vectors/oprf.json, plus properties of the construction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wlx.crypto import oprf
from wlx.crypto import ristretto as r255
from wlx.crypto.errors import MalformedError, VerificationError
from wlx.crypto.oprf import Mode

VECTORS = json.loads((Path(__file__).parent / "vectors" / "oprf.json").read_text())
SUITES = {s["mode"]: s for s in VECTORS["oprf"]["suites"]}


def scalars_rng(*hex_scalars: str) -> Any:
    """An rng yielding the given scalars, as ``s || 0^32`` (reduces to ``s``)."""
    queue: Iterator[str] = iter(hex_scalars)

    def rng(n: int) -> bytes:
        assert n == 64
        return bytes.fromhex(next(queue)) + bytes(32)

    return rng


def split(field: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in field.split(",")]


def cases(mode: int) -> list[Any]:
    suite = SUITES[mode]
    return [pytest.param(suite, v, id=f"mode{mode}-{i}") for i, v in enumerate(suite["vectors"])]


# --- RFC 9380 expand_message_xmd ---------------------------------------------


@pytest.mark.parametrize("case", VECTORS["expand_message_xmd_sha512"]["tests"])
def test_expand_message_xmd_vectors(case: dict[str, Any]) -> None:
    dst = VECTORS["expand_message_xmd_sha512"]["DST"].encode()
    got = oprf.expand_message_xmd(case["msg"].encode(), dst, case["len_in_bytes"])
    assert got.hex() == case["uniform_bytes"]


def test_vector_file_is_complete() -> None:
    assert VECTORS["oprf"]["source"]["repository"] == "cfrg/draft-irtf-cfrg-voprf"
    assert sorted(SUITES) == [0, 1]
    assert [len(SUITES[m]["vectors"]) for m in (0, 1)] == [2, 3]
    assert len(VECTORS["expand_message_xmd_sha512"]["tests"]) == 10


@pytest.mark.parametrize("length", [0, 65536, 64 * 255 + 1])
def test_expand_message_xmd_rejects_lengths(length: int) -> None:
    with pytest.raises(MalformedError):
        oprf.expand_message_xmd(b"m", b"dst", length)


def test_expand_message_xmd_rejects_long_dst() -> None:
    with pytest.raises(MalformedError):
        oprf.expand_message_xmd(b"m", b"d" * 256, 64)


# --- RFC 9497 Appendix A -------------------------------------------------------


@pytest.mark.parametrize("mode", [0, 1])
def test_derive_key_pair_vectors(mode: int) -> None:
    suite = SUITES[mode]
    assert oprf.context_string(Mode(mode)).hex() in suite["groupDST"]
    key = oprf.derive_key_pair(
        bytes.fromhex(suite["seed"]), bytes.fromhex(suite["keyInfo"]), Mode(mode)
    )
    assert key.secret.hex() == suite["skSm"]
    if "pkSm" in suite:
        assert key.public.hex() == suite["pkSm"]


def test_hash_to_group_dst_matches_vectors() -> None:
    for mode, suite in SUITES.items():
        dst = b"HashToGroup-" + oprf.context_string(Mode(mode))
        assert dst.hex() == suite["groupDST"]


@pytest.mark.parametrize(("suite", "vector"), cases(0))
def test_oprf_vectors(suite: dict[str, Any], vector: dict[str, Any]) -> None:
    sk = bytes.fromhex(suite["skSm"])
    data = bytes.fromhex(vector["Input"])
    blinded = oprf.blind(data, Mode.OPRF, scalars_rng(vector["Blind"]))
    assert blinded.blind.hex() == vector["Blind"]
    assert blinded.element.hex() == vector["BlindedElement"]
    evaluated = oprf.blind_evaluate(sk, blinded.element)
    assert evaluated.hex() == vector["EvaluationElement"]
    output = oprf.finalize(data, blinded.blind, evaluated, Mode.OPRF)
    assert output.hex() == vector["Output"]
    assert oprf.evaluate(sk, data, Mode.OPRF).hex() == vector["Output"]


@pytest.mark.parametrize(("suite", "vector"), cases(1))
def test_voprf_vectors(suite: dict[str, Any], vector: dict[str, Any]) -> None:
    key = oprf.KeyPair.from_secret(bytes.fromhex(suite["skSm"]))
    assert key.public.hex() == suite["pkSm"]
    inputs = split(vector["Input"])
    blinds = vector["Blind"].split(",")
    assert len(inputs) == len(blinds) == vector["Batch"]
    rng = scalars_rng(*blinds)
    blinded = [oprf.blind(x, Mode.VOPRF, rng) for x in inputs]
    assert [b.element for b in blinded] == split(vector["BlindedElement"])
    evaluation = oprf.blind_evaluate_batch(
        key, [b.element for b in blinded], scalars_rng(vector["Proof"]["r"])
    )
    assert list(evaluation.elements) == split(vector["EvaluationElement"])
    assert evaluation.proof.hex() == vector["Proof"]["proof"]
    outputs = oprf.finalize_verified(key.public, blinded, evaluation)
    assert outputs == split(vector["Output"])
    assert [oprf.evaluate(key.secret, x, Mode.VOPRF) for x in inputs] == outputs


@pytest.mark.parametrize(("suite", "vector"), cases(1))
def test_voprf_vector_proofs_verify_and_tampering_raises(
    suite: dict[str, Any], vector: dict[str, Any]
) -> None:
    gen = r255.mul_base((1).to_bytes(32, "little"))
    pk = bytes.fromhex(suite["pkSm"])
    cs, ds = split(vector["BlindedElement"]), split(vector["EvaluationElement"])
    proof = bytes.fromhex(vector["Proof"]["proof"])
    oprf.verify_proof(gen, pk, cs, ds, proof, Mode.VOPRF)
    for i in range(len(proof)):
        bad = bytearray(proof)
        bad[i] ^= 0x01
        with pytest.raises(VerificationError):
            oprf.verify_proof(gen, pk, cs, ds, bytes(bad), Mode.VOPRF)
    with pytest.raises(VerificationError):
        oprf.verify_proof(gen, pk, cs, ds, proof, Mode.OPRF)  # other context string
    if len(cs) > 1:
        with pytest.raises(VerificationError):
            oprf.verify_proof(gen, pk, cs[::-1], ds, proof, Mode.VOPRF)


# --- properties ---------------------------------------------------------------

inputs = st.binary(min_size=0, max_size=80)
seeds = st.binary(min_size=32, max_size=32)


@settings(max_examples=25, deadline=None)
@given(data=inputs, seed=seeds)
def test_blind_unblind_equals_direct_evaluation(data: bytes, seed: bytes) -> None:
    """Finalize(Blind, BlindEvaluate) equals Hash(input, sk * HashToGroup(input))."""
    key = oprf.derive_key_pair(seed, b"wlx test", Mode.VOPRF)
    blinded = oprf.blind(data, Mode.VOPRF)
    evaluation = oprf.blind_evaluate_batch(key, [blinded.element])
    (output,) = oprf.finalize_verified(key.public, [blinded], evaluation)
    direct = r255.mul(key.secret, oprf.hash_to_group(data, Mode.VOPRF))
    assert output == oprf.finalize(data, r255.scalar(_ONE), direct, Mode.VOPRF)
    assert output == oprf.evaluate(key.secret, data, Mode.VOPRF)
    again = oprf.blind(data, Mode.VOPRF)
    assert again.element != blinded.element  # fresh blinds: the server cannot link
    (output2,) = oprf.finalize_verified(
        key.public, [again], oprf.blind_evaluate_batch(key, [again.element])
    )
    assert output2 == output


@settings(max_examples=25, deadline=None)
@given(data=inputs, seed1=seeds, seed2=seeds)
def test_same_input_two_keys_unrelated_outputs(data: bytes, seed1: bytes, seed2: bytes) -> None:
    if seed1 == seed2:
        return
    outs = []
    for seed in (seed1, seed2):
        key = oprf.derive_key_pair(seed, b"wlx test", Mode.VOPRF)
        b = oprf.blind(data, Mode.VOPRF)
        outs.append(
            oprf.finalize_verified(key.public, [b], oprf.blind_evaluate_batch(key, [b.element]))[0]
        )
    assert outs[0] != outs[1]
    # No shared prefix beyond chance: the two 512-bit outputs differ in about half their bits.
    differing = sum(bin(x ^ y).count("1") for x, y in zip(outs[0], outs[1], strict=True))
    assert 150 < differing < 362


def test_key_info_separates_keys() -> None:
    seed = bytes(range(32))
    a = oprf.derive_key_pair(seed, b"origin CN peer RU epoch 1", Mode.VOPRF)
    b = oprf.derive_key_pair(seed, b"origin CN peer RU epoch 2", Mode.VOPRF)
    assert a.secret != b.secret and a.public != b.public


@settings(max_examples=15, deadline=None)
@given(data=st.lists(inputs, min_size=1, max_size=5), position=st.integers(0, 200))
def test_tampered_evaluation_raises(data: list[bytes], position: int) -> None:
    key = oprf.derive_key_pair(bytes(32), b"k", Mode.VOPRF)
    blinded = [oprf.blind(x, Mode.VOPRF) for x in data]
    good = oprf.blind_evaluate_batch(key, [b.element for b in blinded])
    flat = bytearray(b"".join(good.elements) + good.proof)
    flat[position % len(flat)] ^= 0x04
    n = len(good.elements)
    bad = oprf.Evaluation(
        tuple(bytes(flat[32 * i : 32 * i + 32]) for i in range(n)), bytes(flat[32 * n :])
    )
    with pytest.raises(VerificationError):
        oprf.finalize_verified(key.public, blinded, bad)


def test_wrong_key_raises() -> None:
    key = oprf.derive_key_pair(bytes(32), b"k", Mode.VOPRF)
    other = oprf.derive_key_pair(bytes(32), b"other", Mode.VOPRF)
    blinded = [oprf.blind(b"x", Mode.VOPRF)]
    evaluation = oprf.blind_evaluate_batch(other, [blinded[0].element])
    with pytest.raises(VerificationError):
        oprf.finalize_verified(key.public, blinded, evaluation)


def test_count_mismatch_and_swapped_elements_raise() -> None:
    key = oprf.derive_key_pair(bytes(32), b"k", Mode.VOPRF)
    blinded = [oprf.blind(x, Mode.VOPRF) for x in (b"a", b"b")]
    ev = oprf.blind_evaluate_batch(key, [b.element for b in blinded])
    with pytest.raises(VerificationError):
        oprf.finalize_verified(key.public, blinded[:1], ev)
    swapped = oprf.Evaluation(ev.elements[::-1], ev.proof)
    with pytest.raises(VerificationError):
        oprf.finalize_verified(key.public, blinded, swapped)


@pytest.mark.parametrize(
    "element",
    [bytes(32), b"\xff" * 32, b"\x01" * 31, bytes.fromhex("01" + "00" * 31)],
    ids=["identity", "non-canonical", "short", "not-on-group"],
)
def test_server_rejects_bad_blinded_elements(element: bytes) -> None:
    key = oprf.derive_key_pair(bytes(32), b"k", Mode.VOPRF)
    with pytest.raises(MalformedError):
        oprf.blind_evaluate_batch(key, [element])
    with pytest.raises(MalformedError):
        oprf.blind_evaluate(key.secret, element)


def test_empty_batch_and_long_input_rejected() -> None:
    key = oprf.derive_key_pair(bytes(32), b"k", Mode.VOPRF)
    with pytest.raises(MalformedError):
        oprf.blind_evaluate_batch(key, [])
    with pytest.raises(MalformedError):
        oprf.blind(b"x" * 65536, Mode.VOPRF)


def test_scalar_and_key_checks() -> None:
    with pytest.raises(MalformedError):
        oprf.KeyPair.from_secret(r255.L.to_bytes(32, "little"))
    with pytest.raises(MalformedError):
        oprf.KeyPair.from_secret(bytes(32))
    with pytest.raises(MalformedError):
        oprf.derive_key_pair(bytes(31), b"", Mode.VOPRF)
    with pytest.raises(MalformedError):
        r255.scalar_invert(bytes(32))


def test_random_scalar_never_zero() -> None:
    calls = iter([bytes(64), bytes(64), bytes([5]) + bytes(63)])
    assert oprf.random_scalar(lambda n: next(calls)) == bytes([5]) + bytes(31)
    with pytest.raises(MalformedError):
        oprf.random_scalar(bytes)


def test_secret_not_in_repr() -> None:
    key = oprf.derive_key_pair(bytes(32), b"k", Mode.VOPRF)
    assert key.secret.hex() not in repr(key)
    b = oprf.blind(b"secret input", Mode.VOPRF)
    assert "secret input" not in repr(b) and b.blind.hex() not in repr(b)


_ONE = (1).to_bytes(32, "little")


def test_threads_give_the_same_bytes() -> None:
    """``workers`` only spreads the group work; every output is the same."""
    key = oprf.derive_key_pair(bytes(32), b"k", Mode.VOPRF)
    inputs = [i.to_bytes(4, "big") for i in range(300)]

    def counter() -> Any:
        state = [0]

        def rng(n: int) -> bytes:
            state[0] += 1
            return state[0].to_bytes(n, "little")

        return rng

    one = oprf.blind_batch(inputs, Mode.VOPRF, counter())
    four = oprf.blind_batch(inputs, Mode.VOPRF, counter(), workers=4)
    assert one == four
    serial = counter()
    assert one == [oprf.blind(x, Mode.VOPRF, serial) for x in inputs]
    r = bytes([7]) + bytes(63)
    ev1 = oprf.blind_evaluate_batch(key, [b.element for b in one], lambda _n: r)
    ev4 = oprf.blind_evaluate_batch(key, [b.element for b in one], lambda _n: r, workers=4)
    assert ev1 == ev4
    out1 = oprf.finalize_verified(key.public, one, ev1)
    assert oprf.finalize_verified(key.public, one, ev4, workers=4) == out1
    assert out1 == [oprf.evaluate(key.secret, x, Mode.VOPRF) for x in inputs]
    bad = oprf.Evaluation((*ev1.elements[:-1], ev1.elements[0]), ev1.proof)
    with pytest.raises(VerificationError):
        oprf.finalize_verified(key.public, one, bad, workers=4)
