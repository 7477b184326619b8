"""The online tier's protocol (docs/protocol.md §15), sans I/O.

* the wire form of ``Evaluate`` (``EvaluateParams`` / ``EvaluateAnswer``),
  every size and shape checked when parsing;
* the origin's decision on an evaluation request (epoch, budget) and its
  answer;
* the requester's checks of an answer, which end in the tokens and seal
  keys of its query's identifier keys, or a ``Rejection`` naming what the
  origin got wrong;
* what a lookup says of an origin whose online listings it could not check.

Pure: keys, clocks and randomness are passed in; storage and gRPC are the
caller's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from wlx.crypto import online, oprf, ristretto
from wlx.crypto.digests import payload_digest
from wlx.crypto.errors import MalformedError, VerificationError
from wlx.crypto.keys import Rng, system_rng
from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.protocol.codec import malformed, parse_message
from wlx.node.protocol.envelopes import same_digest
from wlx.v1 import federation_pb2

MAX_EVALUATE = 10_000
"""Most blinded elements in one ``Evaluate`` call (§15.4)."""
DEFAULT_DAILY_BUDGET = 100_000
"""Evaluations per peer per UTC day unless configured (§15.5)."""
DAY = 86_400
WORKERS = max(1, min(8, os.cpu_count() or 1))
"""Threads for the group work of one evaluation (libsodium releases the GIL)."""


@dataclass(frozen=True)
class EvaluateParams:
    """A peer's signed request to evaluate blinded elements (§15.4)."""

    requester: str
    origin: str
    epoch: int
    issued_at: int
    nonce: bytes
    blinded: tuple[bytes, ...]


@dataclass(frozen=True)
class EvaluateAnswer:
    """The origin's signed evaluation of one request."""

    origin: str
    recipient: str
    epoch: int
    request_digest: bytes
    evaluated: tuple[bytes, ...]
    proof: bytes
    answered_at: int


NONCE_BYTES = 16


def _parse_params(payload: bytes) -> federation_pb2.EvaluateParams:
    return parse_message(federation_pb2.EvaluateParams, payload, "evaluate request")


def encode_evaluate_params(params: EvaluateParams) -> bytes:
    """Serialize an evaluation request (the bytes the requester signs)."""
    return federation_pb2.EvaluateParams(
        requester=params.requester,
        origin=params.origin,
        epoch=params.epoch,
        issued_at=params.issued_at,
        nonce=params.nonce,
        blinded=list(params.blinded),
    ).SerializeToString()


def decode_evaluate_params(payload: bytes) -> EvaluateParams:
    """Parse an evaluation request whose signature has verified (§15.4 rule 11).

    Raises:
        Rejection: malformed (bad nonce, epoch 0, no or too many elements, an
            element that is not a canonical non-identity ristretto255 element).
    """
    msg = _parse_params(payload)
    if len(msg.nonce) != NONCE_BYTES:
        raise malformed("a nonce is 16 bytes")
    if msg.epoch < 1:
        raise malformed("epochs start at 1")
    if not 1 <= len(msg.blinded) <= MAX_EVALUATE:
        raise malformed(f"an evaluate request has 1 to {MAX_EVALUATE} elements")
    try:
        blinded = tuple(ristretto.element(e) for e in msg.blinded)
    except MalformedError:
        raise malformed("a blinded element is not a ristretto255 element") from None
    return EvaluateParams(
        requester=msg.requester,
        origin=msg.origin,
        epoch=msg.epoch,
        issued_at=msg.issued_at,
        nonce=msg.nonce,
        blinded=blinded,
    )


def issued_at(payload: bytes) -> int:
    """The signed issue time of an evaluation request (for the clock window).

    Raises:
        Rejection: malformed.
    """
    return _parse_params(payload).issued_at


def encode_evaluate_answer(answer: EvaluateAnswer) -> bytes:
    """Serialize an evaluation answer (the bytes the origin signs)."""
    return federation_pb2.EvaluateAnswer(
        origin=answer.origin,
        recipient=answer.recipient,
        epoch=answer.epoch,
        request_digest=answer.request_digest,
        evaluated=list(answer.evaluated),
        proof=answer.proof,
        answered_at=answer.answered_at,
    ).SerializeToString()


def decode_evaluate_answer(payload: bytes) -> EvaluateAnswer:
    """Parse an evaluation answer whose signature has verified.

    Element validity is left to the proof check (``check_answer``).

    Raises:
        Rejection: malformed (sizes and counts).
    """
    msg = parse_message(federation_pb2.EvaluateAnswer, payload, "evaluate answer")
    if len(msg.request_digest) != 32:
        raise malformed("request_digest is 32 bytes")
    if not 1 <= len(msg.evaluated) <= MAX_EVALUATE:
        raise malformed(f"an evaluate answer has 1 to {MAX_EVALUATE} elements")
    if any(len(e) != ristretto.ELEMENT_LEN for e in msg.evaluated):
        raise malformed("an evaluated element is 32 bytes")
    if len(msg.proof) != oprf.PROOF_LEN:
        raise malformed("a proof is 64 bytes")
    return EvaluateAnswer(
        origin=msg.origin,
        recipient=msg.recipient,
        epoch=msg.epoch,
        request_digest=msg.request_digest,
        evaluated=tuple(msg.evaluated),
        proof=msg.proof,
        answered_at=msg.answered_at,
    )


# ---------------------------------------------------------------- origin side


class Refusal(StrEnum):
    """Why the origin evaluates nothing for a well-formed request (§15.4)."""

    STALE_EPOCH = "stale-epoch"
    QUOTA = "quota"


def decide_evaluate(
    params: EvaluateParams, *, current_epoch: int | None, charged_today: int, budget: int
) -> Refusal | None:
    """Rules 12 and 13 of §15.4: ``None`` to evaluate (and charge), else why not.

    ``current_epoch`` is the origin's epoch of its stream to the requester
    (None: no stream); ``charged_today`` the evaluations already charged to
    the requester this UTC day; ``budget`` its daily budget (0: no online tier).
    """
    if current_epoch is None or params.epoch != current_epoch:
        return Refusal.STALE_EPOCH
    if charged_today + len(params.blinded) > budget:
        return Refusal.QUOTA
    return None


def day_of(now: int) -> int:
    """The UTC day number a budget is counted in."""
    return now // DAY


def answer_evaluate(
    params: EvaluateParams,
    payload: bytes,
    key: online.OnlineKey,
    *,
    now: int,
    rng: Rng = system_rng,
    workers: int = 1,
) -> EvaluateAnswer:
    """Evaluate an admitted request under the stream's key, with one proof.

    ``payload`` is the request's bytes as signed (its digest is answered).
    """
    if key.recipient != params.requester or key.epoch != params.epoch:
        raise ValueError("the key is not the requester's stream key for this epoch")
    evaluation = key.evaluate(params.blinded, rng, workers=workers)
    return EvaluateAnswer(
        origin=key.origin,
        recipient=params.requester,
        epoch=params.epoch,
        request_digest=payload_digest(payload),
        evaluated=evaluation.elements,
        proof=evaluation.proof,
        answered_at=now,
    )


# ---------------------------------------------------------------- requester side


def check_answer(
    answer: EvaluateAnswer,
    *,
    params: EvaluateParams,
    payload: bytes,
    public_key: bytes,
    blinded: Sequence[oprf.Blinded],
    workers: int = 1,
) -> list[online.EntryKeys]:
    """The requester's checks of an answer whose signature verified (§15.4).

    Returns the token and seal key of each blinded identifier key, in order.

    Raises:
        Rejection: ``wrong-recipient`` (parties), ``malformed`` (epoch,
            digest, count), ``bad-proof`` (the proof does not verify against
            the committed key).  Nothing is returned then.
    """
    if answer.origin != params.origin or answer.recipient != params.requester:
        raise Rejection(RejectReason.WRONG_RECIPIENT, "evaluate answer for other nodes")
    if answer.epoch != params.epoch:
        raise malformed("evaluate answer for another epoch")
    if not same_digest(answer.request_digest, payload_digest(payload)):
        raise malformed("evaluate answer to another request")
    if len(answer.evaluated) != len(params.blinded) or len(blinded) != len(params.blinded):
        raise malformed("evaluate answer with the wrong number of elements")
    if any(b.element != e for b, e in zip(blinded, params.blinded, strict=True)):
        raise ValueError("blinded inputs do not match the request")  # our own bug
    evaluation = oprf.Evaluation(answer.evaluated, answer.proof)
    try:
        return online.unblind_keys(
            public_key,
            blinded,
            evaluation,
            origin=params.origin,
            recipient=params.requester,
            epoch=params.epoch,
            workers=workers,
        )
    except VerificationError:
        raise Rejection(RejectReason.BAD_PROOF, "the evaluation proof does not verify") from None


class NotChecked(StrEnum):
    """Why a lookup could not check an origin's online listings (§15.6)."""

    UNREACHABLE = "origin unreachable"
    QUOTA = "evaluation budget exhausted"
    STALE_EPOCH = "list out of date"
    INVALID = "invalid answer"
    REFUSED = "refused by origin"


def not_checked_reason(
    *, unreachable: bool = False, refusal: str = "", rejected: bool = False
) -> NotChecked:
    """The reason shown for an origin whose online listings were not checked."""
    if unreachable:
        return NotChecked.UNREACHABLE
    if rejected:
        return NotChecked.INVALID
    if refusal == Refusal.QUOTA:
        return NotChecked.QUOTA
    if refusal == Refusal.STALE_EPOCH:
        return NotChecked.STALE_EPOCH
    return NotChecked.REFUSED
