"""Online-tier tokens: keys of the listings that only the origin can match.

docs/protocol.md §15.  For an online listing the origin derives each
identifier key's token and seal key (which is also its hit-proof key,
§11.2) from the VOPRF output ``y = VOPRF(k, ik)`` (RFC 9497,
ristretto255-SHA512) under a secret ``k`` of one (origin, recipient, epoch)
stream that never leaves the origin.  The recipient gets ``y`` only by
asking the origin to evaluate a blinded ``ik`` (``Evaluate``, §15.4), so it
cannot compute a token for a guess without the origin.

Pure: the origin's OPRF seed and all randomness are passed in.

Raises:
    MalformedError: a seed that is not 32 bytes, or an OPRF output that is
        not 64 bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from wlx.crypto import oprf
from wlx.crypto.encoding import lp, u64
from wlx.crypto.errors import MalformedError
from wlx.crypto.keys import Rng, system_rng
from wlx.crypto.tokens import HIT_PROOF_LEN, TOKEN_LEN

SEED_LEN = 32
KEY_INFO_PREFIX = b"wlx/v1 oprf-key\x00"
PERSON_ONLINE_TOKEN = b"wlx1-otoken"
PERSON_ONLINE_SEAL = b"wlx1-oseal"
MODE = oprf.Mode.VOPRF


def key_info(origin: str, recipient: str, epoch: int) -> bytes:
    """The ``info`` of ``DeriveKeyPair`` for one stream.

    ``"wlx/v1 oprf-key" || 0x00 || lp(origin) || lp(recipient) || u64(epoch)``.
    """
    return KEY_INFO_PREFIX + lp(origin) + lp(recipient) + u64(epoch)


@dataclass(frozen=True)
class EntryKeys:
    """Token and seal key of one identifier key of an online listing."""

    token: bytes
    seal_key: bytes = field(repr=False)


def entry_keys(output: bytes, origin: str, recipient: str, epoch: int) -> EntryKeys:
    """Token and seal key from a VOPRF output ``y`` (64 bytes).

    ``token    = BLAKE2b-128(key = y, person = "wlx1-otoken", stream)``
    ``seal_key = BLAKE2b-256(key = y, person = "wlx1-oseal",  stream)``
    with ``stream = lp(origin) || lp(recipient) || u64(epoch)``.  The
    personalisations differ from the offline tier's, so an online token
    never equals an offline one.

    Raises:
        MalformedError: ``output`` is not 64 bytes.
    """
    if len(output) != oprf.OUTPUT_LEN:
        raise MalformedError("an OPRF output is 64 bytes")
    stream = lp(origin) + lp(recipient) + u64(epoch)
    token = hashlib.blake2b(
        stream, digest_size=TOKEN_LEN, key=output, person=PERSON_ONLINE_TOKEN
    ).digest()
    seal_key = hashlib.blake2b(
        stream, digest_size=HIT_PROOF_LEN, key=output, person=PERSON_ONLINE_SEAL
    ).digest()
    return EntryKeys(token, seal_key)


@dataclass(frozen=True)
class OnlineKey:
    """The origin's VOPRF key of one stream; the secret never leaves the origin."""

    pair: oprf.KeyPair = field(repr=False)
    origin: str
    recipient: str
    epoch: int

    @classmethod
    def derive(cls, seed: bytes, origin: str, recipient: str, epoch: int) -> OnlineKey:
        """``DeriveKeyPair(seed, key_info(origin, recipient, epoch))`` in VOPRF mode.

        Raises:
            MalformedError: ``seed`` is not 32 bytes.
        """
        if len(seed) != SEED_LEN:
            raise MalformedError("an OPRF seed is 32 bytes")
        if epoch < 1:
            raise MalformedError("epochs start at 1")
        return cls(
            oprf.derive_key_pair(seed, key_info(origin, recipient, epoch), MODE),
            origin,
            recipient,
            epoch,
        )

    @property
    def public(self) -> bytes:
        """The public key committed in the stream's snapshots (32 bytes)."""
        return self.pair.public

    def entry_keys(self, identifier_key: bytes) -> EntryKeys:
        """Token and seal key of ``identifier_key``, computed directly."""
        output = oprf.evaluate(self.pair.secret, identifier_key, MODE)
        return entry_keys(output, self.origin, self.recipient, self.epoch)

    def evaluate(
        self, blinded: Sequence[bytes], rng: Rng = system_rng, *, workers: int = 1
    ) -> oprf.Evaluation:
        """Evaluate a recipient's blinded elements, with one DLEQ proof.

        Raises:
            MalformedError: an empty batch or an element that is not a
                non-identity ristretto255 element.
        """
        return oprf.blind_evaluate_batch(self.pair, blinded, rng, workers=workers)


def blind_keys(
    identifier_keys: Sequence[bytes], rng: Rng = system_rng, *, workers: int = 1
) -> list[oprf.Blinded]:
    """The recipient's side: blind each identifier key for ``Evaluate``."""
    return oprf.blind_batch(identifier_keys, MODE, rng, workers=workers)


def unblind_keys(
    public: bytes,
    blinded: Sequence[oprf.Blinded],
    evaluation: oprf.Evaluation,
    *,
    origin: str,
    recipient: str,
    epoch: int,
    workers: int = 1,
) -> list[EntryKeys]:
    """Verify the origin's evaluation against ``public``, then derive the keys.

    Raises:
        VerificationError: the proof does not verify, or the counts differ
            (nothing is returned then).
    """
    outputs = oprf.finalize_verified(public, blinded, evaluation, workers=workers)
    return [entry_keys(y, origin, recipient, epoch) for y in outputs]
