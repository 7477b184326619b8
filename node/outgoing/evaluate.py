"""The online tier at the origin (docs/protocol.md §15): keys and Evaluate.

``online_key`` derives each stream's VOPRF key from the node's OPRF seed
(itself derived from the storage key, so every front-end of the node has it
and it never leaves the node); ``tier_key`` says whether a record is online
for a peer; ``evaluate`` decides a peer's signed ``Evaluate`` request,
charging the peer's daily budget exactly (the count lives in the store,
updated under the stream's row lock, so all front-ends share it) and
logging counts only.
"""

from __future__ import annotations

import functools
import hashlib

from wlx.crypto import online as online_crypto
from wlx.crypto.digests import payload_digest
from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import EpochKey
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.audit.offline.events import EvaluateOutcome
from wlx.node.core.errors import Exhausted, PeerError, Rejection, RejectReason
from wlx.node.core.node import Node
from wlx.node.core.policy import SharingPolicy
from wlx.node.core.records import Record, Tier
from wlx.node.protocol import online as proto
from wlx.node.protocol.envelopes import sign_message, verify_request
from wlx.node.protocol.messages import SignedRequest
from wlx.node.store.base import Tx

PERSON_SEED = b"wlx1-oprf-seed"
META_CHARGED = "oprf/charged/"


def oprf_seed(node: Node) -> bytes:
    """The node's OPRF seed: ``BLAKE2b-256(key = storage key, person = "wlx1-oprf-seed")``."""
    return hashlib.blake2b(b"", digest_size=32, key=node.storage_key, person=PERSON_SEED).digest()


def online_key(node: Node, peer: str, epoch: int) -> online_crypto.OnlineKey:
    """The VOPRF key of this node's stream to ``peer`` in ``epoch``."""
    return _derive(oprf_seed(node), node.node_id, peer, epoch)


@functools.lru_cache(maxsize=256)
def _derive(seed: bytes, origin: str, peer: str, epoch: int) -> online_crypto.OnlineKey:
    return online_crypto.OnlineKey.derive(seed, origin, peer, epoch)


def tier_key(
    node: Node, policy: SharingPolicy, record: Record, key: EpochKey
) -> online_crypto.OnlineKey | None:
    """The stream's VOPRF key if ``record`` is online-tier for the stream's peer (§15.1).

    A node's index of its own list is always offline-tier.
    """
    if key.origin == key.recipient or policy.tier(record) != Tier.ONLINE:
        return None
    return online_key(node, key.recipient, key.epoch)


# ---------------------------------------------------------------- origin side


def _charged_key(peer: str, day: int) -> str:
    return f"{META_CHARGED}{peer}/{day}"


def charged_today(tx: Tx, peer: str, now: int) -> int:
    """Evaluations charged to ``peer`` in the current UTC day."""
    raw = tx.get_meta(_charged_key(peer, proto.day_of(now)))
    return int(raw.decode("ascii")) if raw else 0


def evaluate(node: Node, request: SignedRequest, *, budget: int) -> SignedRequest:
    """Decide and answer a peer's signed ``Evaluate`` request (§15.4).

    Returns the signed ``EvaluateAnswer``.

    Raises:
        Rejection: the request does not verify (§5.5) or is malformed.
        PeerError: ``stale-epoch``: not the current epoch of the peer's stream.
        Exhausted: ``quota``: the peer's daily budget cannot cover the request.
    """
    from wlx.node.outgoing.origin import MAX_CLOCK_SKEW  # origin imports this module

    now = node.now()
    card = verify_request(
        request,
        purpose=Purpose.EVALUATE_REQUEST,
        me=node.node_id,
        trusted=node.trusted,
        now=now,
        issued_at=proto.issued_at,
        max_skew=MAX_CLOCK_SKEW,
    )
    params = proto.decode_evaluate_params(request.payload)
    if params.requester != request.signer:
        raise Rejection(RejectReason.WRONG_SENDER, "evaluate request names another requester")
    if params.origin != node.node_id:
        raise Rejection(RejectReason.WRONG_RECIPIENT, "evaluate request for another origin")
    peer = card.node_id
    with node.store.write() as tx:
        state = tx.get_outbound(peer, for_update=True)  # serialises the peer's budget
        charged = charged_today(tx, peer, now)
        refusal = proto.decide_evaluate(
            params,
            current_epoch=state.epoch if state is not None else None,
            charged_today=charged,
            budget=budget,
        )
        if refusal is None:
            charged += len(params.blinded)
            tx.set_meta(_charged_key(peer, proto.day_of(now)), str(charged).encode("ascii"))
        exchange_log.record(
            tx,
            node,
            now,
            kind=Event.EVALUATE_IN,
            peer=peer,
            epoch=params.epoch,
            elements=len(params.blinded),
            outcome=(
                EvaluateOutcome(refusal) if refusal is not None else EvaluateOutcome.EVALUATED
            ),
            charged_today=charged,
            request=payload_digest(request.payload).hex(),
        )
    if refusal is proto.Refusal.QUOTA:
        raise Exhausted(f"quota: the daily evaluation budget of {peer} is spent")
    if refusal is proto.Refusal.STALE_EPOCH:
        raise PeerError("stale-epoch: not the current epoch of the stream; resync first")
    answer = proto.answer_evaluate(
        params,
        request.payload,
        online_key(node, peer, params.epoch),
        now=now,
        rng=node.rng,
        workers=proto.WORKERS,
    )
    return sign_message(
        proto.encode_evaluate_answer(answer),
        Purpose.EVALUATE_ANSWER,
        signer=node.node_id,
        key=node.signing_key,
        recipient=peer,
    )
