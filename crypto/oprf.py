"""RFC 9497 oblivious pseudorandom functions, suite ristretto255-SHA512.

Modes ``OPRF`` (0) and ``VOPRF`` (1): the client blinds its inputs, the
server evaluates the blinded elements under its secret key (and, in VOPRF
mode, proves with one batched DLEQ proof that it used the key whose public
half the client holds), the client unblinds and hashes.  The server learns
nothing of the inputs; the client learns nothing of the key, and cannot
compute an output without the server.

Pure: bytes in, bytes out; every random scalar comes from an injectable
``rng`` (``rng(64)`` bytes reduced modulo the group order, so a test can
inject a known scalar ``s`` as ``s || 0^32``).  Group arithmetic is
libsodium's (``wlx.crypto.ristretto``); hashing is SHA-512 (hashlib).

Checked against every ristretto255-SHA512 vector of RFC 9497 Appendix A.1.1
and A.1.2 and the SHA-512 vectors of RFC 9380 Appendix K.3
(``tests/crypto/vectors/oprf.json``).

Raises:
    MalformedError: an input too long to encode, a malformed element,
        scalar or proof, an input that hashes to the identity, or key
        derivation that finds no key (all negligible for honest inputs).
    VerificationError: a DLEQ proof that does not verify.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeVar

from wlx.crypto import ristretto as r255
from wlx.crypto.errors import MalformedError, VerificationError
from wlx.crypto.keys import Rng, system_rng

SUITE_ID = b"ristretto255-SHA512"
OUTPUT_LEN = 64
PROOF_LEN = 2 * r255.SCALAR_LEN
MAX_INPUT_LEN = 0xFFFF
A = TypeVar("A")
B = TypeVar("B")


class Mode(IntEnum):
    """RFC 9497 §3.1 protocol modes implemented here."""

    OPRF = 0
    VOPRF = 1


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _lp2(data: bytes) -> bytes:
    """``I2OSP(len(data), 2) || data``, the RFC's length prefix."""
    if len(data) > MAX_INPUT_LEN:
        raise MalformedError("an OPRF input is at most 65535 bytes")
    return _i2osp(len(data), 2) + data


def context_string(mode: Mode) -> bytes:
    """``"OPRFV1-" || I2OSP(mode, 1) || "-" || identifier`` (RFC 9497 §3.1)."""
    return b"OPRFV1-" + _i2osp(int(mode), 1) + b"-" + SUITE_ID


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 §5.3.1 ``expand_message_xmd`` with SHA-512.

    Raises:
        MalformedError: ``dst`` longer than 255 bytes, or ``len_in_bytes``
            outside 1..min(65535, 255 * 64).
    """
    b_in_bytes, s_in_bytes = 64, 128
    ell = -(-len_in_bytes // b_in_bytes)
    if len(dst) > 255:
        raise MalformedError("an expand_message_xmd DST is at most 255 bytes")
    if not 0 < len_in_bytes <= 65535 or ell > 255:
        raise MalformedError("expand_message_xmd length out of range")
    dst_prime = dst + _i2osp(len(dst), 1)
    msg_prime = bytes(s_in_bytes) + msg + _i2osp(len_in_bytes, 2) + b"\x00" + dst_prime
    b0 = hashlib.sha512(msg_prime).digest()
    b_i = hashlib.sha512(b0 + b"\x01" + dst_prime).digest()
    uniform = [b_i]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b0, b_i, strict=True))
        b_i = hashlib.sha512(mixed + _i2osp(i, 1) + dst_prime).digest()
        uniform.append(b_i)
    return b"".join(uniform)[:len_in_bytes]


def hash_to_group(msg: bytes, mode: Mode) -> bytes:
    """``HashToGroup`` of RFC 9497 §4.1: ristretto255_XMD:SHA-512_R255MAP_RO_.

    The DST is ``"HashToGroup-" || contextString``.
    """
    dst = b"HashToGroup-" + context_string(mode)
    return r255.from_hash(expand_message_xmd(msg, dst, r255.HASH_LEN))


def hash_to_scalar(msg: bytes, mode: Mode, dst: bytes | None = None) -> bytes:
    """``HashToScalar`` of RFC 9497 §4.1: 64 expanded bytes reduced modulo L.

    The DST defaults to ``"HashToScalar-" || contextString``.
    """
    if dst is None:
        dst = b"HashToScalar-" + context_string(mode)
    return r255.reduce(expand_message_xmd(msg, dst, r255.HASH_LEN))


def random_scalar(rng: Rng = system_rng) -> bytes:
    """A uniformly random non-zero scalar: ``rng(64)`` reduced modulo L."""
    for _ in range(8):
        s = r255.reduce(rng(r255.HASH_LEN))
        if not r255.is_zero(s):
            return s
    raise MalformedError("the random source gave only zero scalars")


@dataclass(frozen=True)
class KeyPair:
    """A server's OPRF key: secret scalar and public element ``sk * G``."""

    secret: bytes = field(repr=False)
    public: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> KeyPair:
        """The key pair of a secret scalar.

        Raises:
            MalformedError: not a canonical non-zero scalar.
        """
        r255.scalar(secret)
        return cls(secret, r255.mul_base(secret))


def derive_key_pair(seed: bytes, info: bytes, mode: Mode) -> KeyPair:
    """``DeriveKeyPair`` of RFC 9497 §3.2.1: a key from a 32-byte seed and info.

    Raises:
        MalformedError: seed not 32 bytes, info too long, or no non-zero key
            after 256 counters (``DeriveKeyPairError``; probability 2^-2000).
    """
    if len(seed) != 32:
        raise MalformedError("an OPRF key seed is 32 bytes")
    derive_input = seed + _lp2(info)
    dst = b"DeriveKeyPair" + context_string(mode)
    for counter in range(256):
        secret = hash_to_scalar(derive_input + _i2osp(counter, 1), mode, dst)
        if not r255.is_zero(secret):
            return KeyPair.from_secret(secret)
    raise MalformedError("OPRF key derivation failed")


@dataclass(frozen=True)
class Blinded:
    """A client's blinded input: what it keeps (``blind``) and sends (``element``)."""

    input: bytes = field(repr=False)
    blind: bytes = field(repr=False)
    element: bytes


def blind(data: bytes, mode: Mode, rng: Rng = system_rng) -> Blinded:
    """``Blind`` of RFC 9497 §3.3.1: ``blind * HashToGroup(input)``.

    Raises:
        MalformedError: input longer than 65535 bytes, or one that hashes to
            the identity (``InvalidInputError``).
    """
    if len(data) > MAX_INPUT_LEN:
        raise MalformedError("an OPRF input is at most 65535 bytes")
    r = random_scalar(rng)
    try:
        point = r255.element(hash_to_group(data, mode))
    except MalformedError:
        raise MalformedError("an OPRF input hashes to the identity") from None
    return Blinded(data, r, r255.mul(r, point))


def blind_batch(
    inputs: Sequence[bytes], mode: Mode, rng: Rng = system_rng, *, workers: int = 1
) -> list[Blinded]:
    """``blind`` for many inputs; the group work is spread over ``workers`` threads.

    Blinds are drawn from ``rng`` in input order, so the result equals
    ``[blind(x, mode, rng) for x in inputs]``.

    Raises:
        MalformedError: as ``blind``.
    """
    for data in inputs:
        if len(data) > MAX_INPUT_LEN:
            raise MalformedError("an OPRF input is at most 65535 bytes")
    scalars = [random_scalar(rng) for _ in inputs]

    def one(pair: tuple[bytes, bytes]) -> Blinded:
        data, r = pair
        try:
            point = r255.element(hash_to_group(data, mode))
        except MalformedError:
            raise MalformedError("an OPRF input hashes to the identity") from None
        return Blinded(data, r, r255.mul(r, point))

    return _map(one, list(zip(inputs, scalars, strict=True)), workers)


def blind_evaluate(secret: bytes, blinded_element: bytes) -> bytes:
    """``BlindEvaluate`` of RFC 9497 §3.3.1 (OPRF mode): ``sk * blindedElement``.

    Raises:
        MalformedError: ``blinded_element`` is not a non-identity element.
    """
    return r255.mul(secret, r255.element(blinded_element))


def finalize(data: bytes, blind_scalar: bytes, evaluated_element: bytes, mode: Mode) -> bytes:
    """``Finalize`` of RFC 9497 §3.3.1: ``Hash(input, blind^-1 * evaluated, "Finalize")``.

    In VOPRF mode call ``finalize_verified``, which checks the proof first.

    Raises:
        MalformedError: ``evaluated_element`` is not a non-identity element.
    """
    unblinded = r255.mul(r255.scalar_invert(blind_scalar), r255.element(evaluated_element))
    return hashlib.sha512(_lp2(data) + _lp2(unblinded) + b"Finalize").digest()


def evaluate(secret: bytes, data: bytes, mode: Mode) -> bytes:
    """``Evaluate`` of RFC 9497 §3.3.1: the server's own, unblinded output.

    Equal to what a client gets for ``data`` through ``blind``,
    ``blind_evaluate`` and ``finalize`` under the same key.

    Raises:
        MalformedError: input longer than 65535 bytes, or one that hashes to
            the identity.
    """
    if len(data) > MAX_INPUT_LEN:
        raise MalformedError("an OPRF input is at most 65535 bytes")
    try:
        point = r255.element(hash_to_group(data, mode))
    except MalformedError:
        raise MalformedError("an OPRF input hashes to the identity") from None
    issued = r255.mul(secret, point)
    return hashlib.sha512(_lp2(data) + _lp2(issued) + b"Finalize").digest()


# --- VOPRF: batched DLEQ proofs (RFC 9497 §2.2) -------------------------------


def _composite_weights(
    b: bytes, cs: Sequence[bytes], ds: Sequence[bytes], mode: Mode
) -> list[bytes]:
    if len(cs) != len(ds) or not cs:
        raise MalformedError("a DLEQ proof covers one or more pairs of elements")
    if len(cs) > 0xFFFF:
        raise MalformedError("a DLEQ proof covers at most 65535 pairs")
    seed_dst = b"Seed-" + context_string(mode)
    seed = hashlib.sha512(_lp2(b) + _lp2(seed_dst)).digest()
    return [
        hash_to_scalar(_lp2(seed) + _i2osp(i, 2) + _lp2(c) + _lp2(d) + b"Composite", mode)
        for i, (c, d) in enumerate(zip(cs, ds, strict=True))
    ]


def _weighted_sum(weights: Sequence[bytes], points: Sequence[bytes], workers: int = 1) -> bytes:
    def partial(pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
        total = r255.IDENTITY
        for w, p in pairs:
            total = r255.add(total, r255.mul(w, p))
        return total

    pairs = list(zip(weights, points, strict=True))
    total = r255.IDENTITY
    for part in _map_chunks(partial, pairs, workers):
        total = r255.add(total, part)
    return total


PARALLEL_MIN = 64
"""Below this many items per thread, threads cost more than they save."""


def _map_chunks(fn: Callable[[Sequence[A]], B], items: Sequence[A], workers: int) -> list[B]:
    """``fn`` of each of up to ``workers`` consecutive chunks of ``items``, in order.

    libsodium's group operations release the GIL (ctypes), so threads run
    them in parallel; the order of results is that of the chunks.
    """
    count = max(1, min(workers, len(items) // PARALLEL_MIN))
    if count == 1:
        return [fn(items)]
    size = -(-len(items) // count)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        return list(pool.map(fn, chunks))


def _map(fn: Callable[[A], B], items: Sequence[A], workers: int) -> list[B]:
    """``[fn(x) for x in items]``, over up to ``workers`` threads."""
    parts = _map_chunks(lambda chunk: [fn(x) for x in chunk], items, workers)
    return [y for part in parts for y in part]


def _challenge(b: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes, mode: Mode) -> bytes:
    transcript = b"".join(_lp2(x) for x in (b, m, z, t2, t3)) + b"Challenge"
    return hash_to_scalar(transcript, mode)


def generate_proof(
    k: bytes,
    a: bytes,
    b: bytes,
    cs: Sequence[bytes],
    ds: Sequence[bytes],
    mode: Mode,
    rng: Rng = system_rng,
    *,
    workers: int = 1,
) -> bytes:
    """``GenerateProof`` of RFC 9497 §2.2.1: ``k`` is log_A(B) = log_C[i](D[i]).

    Uses ``ComputeCompositesFast``.  Returns ``c || s`` (64 bytes).
    """
    weights = _composite_weights(b, cs, ds, mode)
    m = _weighted_sum(weights, cs, workers)
    z = r255.mul(k, m)
    r = random_scalar(rng)
    t2, t3 = r255.mul(r, a), r255.mul(r, m)
    c = _challenge(b, m, z, t2, t3, mode)
    s = r255.scalar_sub(r, r255.scalar_mul(c, k))
    return c + s


def verify_proof(
    a: bytes,
    b: bytes,
    cs: Sequence[bytes],
    ds: Sequence[bytes],
    proof: bytes,
    mode: Mode,
    *,
    workers: int = 1,
) -> None:
    """``VerifyProof`` of RFC 9497 §2.2.2, with ``ComputeComposites``.

    Raises:
        VerificationError: the proof is malformed or does not show that one
            key maps ``a`` to ``b`` and every ``cs[i]`` to ``ds[i]``.
    """
    try:
        if len(proof) != PROOF_LEN:
            raise MalformedError("a DLEQ proof is 64 bytes")
        c, s = r255.scalar(proof[:32]), r255.scalar(proof[32:])
        for point in (a, b, *cs, *ds):
            r255.element(point)
        weights = _composite_weights(b, cs, ds, mode)
        m = _weighted_sum(weights, cs, workers)
        z = _weighted_sum(weights, ds, workers)
        t2 = r255.add(r255.mul(s, a), r255.mul(c, b))
        t3 = r255.add(r255.mul(s, m), r255.mul(c, z))
        expected = _challenge(b, m, z, t2, t3, mode)
    except MalformedError:
        raise VerificationError("the OPRF proof does not verify") from None
    if not hmac.compare_digest(expected, c):
        raise VerificationError("the OPRF proof does not verify")


@dataclass(frozen=True)
class Evaluation:
    """A server's answer to a batch: one evaluated element per blinded one, one proof."""

    elements: tuple[bytes, ...]
    proof: bytes


def blind_evaluate_batch(
    key: KeyPair, blinded_elements: Sequence[bytes], rng: Rng = system_rng, *, workers: int = 1
) -> Evaluation:
    """VOPRF ``BlindEvaluate`` (RFC 9497 §3.3.2) for a whole batch, one proof.

    Raises:
        MalformedError: an empty batch or a blinded element that is not a
            non-identity element (nothing is evaluated then).
    """
    if not blinded_elements:
        raise MalformedError("an OPRF batch has one or more elements")
    checked = [r255.element(e) for e in blinded_elements]
    evaluated = tuple(_map(lambda e: r255.mul(key.secret, e), checked, workers))
    gen = r255.mul_base(_ONE)
    proof = generate_proof(
        key.secret, gen, key.public, checked, evaluated, Mode.VOPRF, rng, workers=workers
    )
    return Evaluation(evaluated, proof)


def finalize_verified(
    public: bytes, blinded: Sequence[Blinded], evaluation: Evaluation, *, workers: int = 1
) -> list[bytes]:
    """VOPRF ``Finalize`` (RFC 9497 §3.3.2) for a batch: verify, unblind, hash.

    Raises:
        VerificationError: a count mismatch, or the proof does not verify
            against ``public`` (no output is returned then).
    """
    if len(evaluation.elements) != len(blinded):
        raise VerificationError("the OPRF evaluation does not match the request")
    gen = r255.mul_base(_ONE)
    sent = [b.element for b in blinded]
    verify_proof(
        gen, public, sent, evaluation.elements, evaluation.proof, Mode.VOPRF, workers=workers
    )
    return _map(
        lambda pair: finalize(pair[0].input, pair[0].blind, pair[1], Mode.VOPRF),
        list(zip(blinded, evaluation.elements, strict=True)),
        workers,
    )


_ONE = (1).to_bytes(r255.SCALAR_LEN, "little")
