"""Detail requests: the full record behind a hit, one at a time (§11).

Step 1 of the exchange is the hit (``wlx.node.incoming.lookup``); step 2, here, is
the record.  The requesting node signs a request naming the hit's ref, the
requesting authority, the officer, the purpose and the case, with a *hit
proof*: a keyed hash under the seal key of the identifier that matched,
which only a node whose officer actually presented that identifier can make.
The origin checks the proof and its own rules (listing live, not suspended,
shared with this peer, the peer's daily quota), logs the decision, and
answers, signed and encrypted to the requester, with the record or with the
reason it is withheld.  Both sides log request and outcome; the requesting
node passes the record to the officer and keeps none of it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass

from wlx.crypto.card import IdentityCard
from wlx.crypto.digests import payload_digest
from wlx.crypto.encoding import lp
from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import EpochKey, hit_proof
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core import normalisation
from wlx.node.core.errors import NotFound, Rejection, RejectReason, UserError
from wlx.node.core.node import Node
from wlx.node.core.policy import SharingPolicy
from wlx.node.outgoing.origin import MAX_CLOCK_SKEW
from wlx.node.outgoing.ownlist import load_record
from wlx.node.protocol import codec
from wlx.node.protocol.envelopes import open_envelope, seal_signed, sign_message, verify_request
from wlx.node.protocol.messages import DetailAnswer, DetailParams, Sealed, SignedRequest
from wlx.node.store.base import DetailRow, PeerRow, StoredRecord, Tx

log = logging.getLogger("wlx.detail")

DEFAULT_DAILY_QUOTA = 200
DAY = 86_400

Denial = str
"""One of "no-hit", "not-found", "expired", "suspended", "not-shared", "quota"."""


def proof_message(requester: str, origin: str, ref: str, nonce: bytes) -> bytes:
    """What a hit proof is bound to: requester, origin, ref and the request nonce."""
    return b"wlx/v1 hit-proof\x00" + lp(requester) + lp(origin) + lp(ref) + lp(nonce)


@dataclass(frozen=True)
class DetailOutcome:
    """What the officer gets: the record (JSON), or the origin's reason."""

    granted: bool
    denial: str
    record_json: str


# ---------------------------------------------------------------- origin side


def _proof_holds(node: Node, peer: str, stored: StoredRecord, params: DetailParams) -> bool:
    with node.store.read() as tx:
        state = tx.get_outbound(peer)
        if state is None or len(params.hit_proof) != 32:
            return False
        version = normalisation.of_epoch(tx, node.node_id, peer, state.epoch)
    key: EpochKey = node.epoch_key(
        node.node_id, peer, state.epoch, state.token_key, normalisation=version
    )
    message = proof_message(params.requester, params.origin, params.ref, params.nonce)
    found = False
    for ikey in load_record(node, stored).identifier_keys(version):
        # Check every key, without stopping early: constant work per record.
        found |= hmac.compare_digest(key.hit_proof(ikey.value, message), params.hit_proof)
    return found


def _decide(
    node: Node, peer: str, params: DetailParams, quota: int
) -> tuple[Denial, StoredRecord | None]:
    with node.store.read() as tx:
        recent = tx.count_details(peer, "in", node.now() - DAY)
        stored = tx.get_record(params.ref)
        row = tx.get_peer(peer)
    if recent >= quota:
        return "quota", None
    if stored is None or row is None:
        return "not-found", None
    if not SharingPolicy.from_json(row.policy).allows(load_record(node, stored)):
        return "not-shared", None
    if not _proof_holds(node, peer, stored, params):
        return "no-hit", None
    if stored.expires < node.today():
        return "expired", None
    if stored.suspended:
        return "suspended", None
    return "", stored


def answer(
    node: Node,
    request: SignedRequest,
    *,
    quota: int = DEFAULT_DAILY_QUOTA,
) -> Sealed:
    """Decide a peer's signed detail request; returns the signed, sealed answer.

    Raises:
        Rejection: the request does not verify (unknown signer, bad
            signature, wrong recipient, stale, malformed).
    """
    card: IdentityCard = verify_request(
        request,
        purpose=Purpose.DETAIL_REQUEST,
        me=node.node_id,
        trusted=node.trusted,
        now=node.now(),
        issued_at=lambda payload: codec.decode_detail_params(payload).issued_at,
        max_skew=MAX_CLOCK_SKEW,
    )
    params = codec.decode_detail_params(request.payload)
    if params.requester != request.signer or params.origin != node.node_id:
        raise Rejection(
            RejectReason.WRONG_SENDER
            if params.requester != request.signer
            else RejectReason.WRONG_RECIPIENT,
            "detail request names other parties",
        )
    denial, stored = _decide(node, card.node_id, params, quota)
    record = load_record(node, stored).to_json() if stored is not None else b""
    now = node.now()
    with node.store.write() as tx:
        tx.add_detail(
            DetailRow(
                at=now,
                peer=card.node_id,
                direction="in",
                ref=params.ref,
                officer=params.officer,
                purpose=params.purpose,
                case_id=params.case_id,
                outcome=denial or "granted",
            )
        )
        exchange_log.append(
            tx,
            node=node.node_id,
            time=now,
            kind=Event.DETAIL_IN,
            peer=card.node_id,
            ref=params.ref,
            authority=params.requesting_authority,
            officer=params.officer,
            purpose=params.purpose,
            case=params.case_id,
            outcome=denial or "granted",
            request=payload_digest(request.payload).hex(),
        )
    log.info(
        "detail request from %s (%s) for %s: %s",
        card.node_id,
        params.officer,
        params.ref,
        denial or "granted",
    )
    reply = DetailAnswer(
        origin=node.node_id,
        recipient=card.node_id,
        request_digest=payload_digest(request.payload),
        granted=not denial,
        denial=denial,
        record=record,
        answered_at=now,
    )
    return seal_signed(
        codec.encode_detail_answer(reply),
        Purpose.DETAIL_ANSWER,
        signer=node.node_id,
        key=node.signing_key,
        to=card,
    )


# ---------------------------------------------------------------- requesting side


Transport = Callable[[PeerRow, SignedRequest], Sealed]
"""Sends a signed detail request to a peer; returns its sealed answer."""


def request(
    node: Node,
    *,
    origin: str,
    ref: str,
    purpose: str,
    case_id: str,
    officer: str,
    seal_key: bytes | None,
    send: Transport,
) -> DetailOutcome:
    """Ask ``origin`` for the record behind a hit, for an officer of this node.

    ``seal_key`` is the seal key of the identifier that hit (kept by the
    lookup service for a while after the hit); without it the origin will
    answer "no-hit".  The answer is verified (signed by the origin, for this
    node, answering exactly this request) before it is passed on.

    Raises:
        NotFound: ``origin`` is not a trusted peer.
        UserError: no purpose given.
        Rejection: the answer does not verify.
        Unavailable: the origin cannot be reached.
    """
    purpose = purpose.strip()
    if not purpose:
        raise UserError("a detail request must state its purpose")
    with node.store.read() as tx:
        peer = tx.get_peer(origin)
    if peer is None:
        raise NotFound(f"{origin} is not a trusted peer")
    nonce = node.rng(codec.NONCE_BYTES)
    params = DetailParams(
        requester=node.node_id,
        origin=origin,
        ref=ref,
        requesting_authority=node.config.authority or node.node_id,
        officer=officer,
        purpose=purpose,
        case_id=case_id,
        issued_at=node.now(),
        nonce=nonce,
        hit_proof=(
            _hit_proof(seal_key, node.node_id, origin, ref, nonce) if seal_key is not None else b""
        ),
    )
    payload = codec.encode_detail_params(params)
    signed = sign_message(
        payload,
        Purpose.DETAIL_REQUEST,
        signer=node.node_id,
        key=node.signing_key,
        recipient=origin,
    )
    sealed = send(peer, signed)
    reply = codec.decode_detail_answer(
        open_envelope(
            sealed,
            purpose=Purpose.DETAIL_ANSWER,
            me=node.node_id,
            box_key=node.box_key,
            expected_sender=origin,
            trusted=node.trusted,
        )
    )
    if reply.origin != origin or reply.recipient != node.node_id:
        raise Rejection(RejectReason.WRONG_RECIPIENT, "detail answer names other parties")
    if not hmac.compare_digest(reply.request_digest, payload_digest(payload)):
        raise Rejection(RejectReason.MALFORMED, "detail answer is for another request")
    outcome = reply.denial or "granted"
    with node.store.write() as tx:
        _log_out(
            node,
            tx,
            DetailRow(node.now(), origin, "out", ref, officer, purpose, case_id, outcome),
            request=payload_digest(payload).hex(),
        )
    log.info("detail request to %s for %s by %s: %s", origin, ref, officer, outcome)
    return DetailOutcome(reply.granted, reply.denial, reply.record.decode("utf-8"))


def _log_out(node: Node, tx: Tx, row: DetailRow, *, request: str) -> None:
    """Log a detail request this node made (to a peer, or of its own list)."""
    tx.add_detail(row)
    exchange_log.record(
        tx,
        node,
        kind=Event.DETAIL_OUT,
        origin=row.peer,
        ref=row.ref,
        officer=row.officer,
        purpose=row.purpose,
        case=row.case_id,
        outcome=row.outcome,
        request=request,
    )


def _hit_proof(seal_key: bytes, requester: str, origin: str, ref: str, nonce: bytes) -> bytes:
    return hit_proof(seal_key, proof_message(requester, origin, ref, nonce))


def own_record(node: Node, ref: str, *, officer: str, purpose: str, case_id: str) -> DetailOutcome:
    """An officer asks for a record of the node's own list: answered locally,
    and logged like any other detail request.

    Raises:
        NotFound: no such record.
    """
    with node.store.write() as tx:
        stored = tx.get_record(ref)
        if stored is None:
            raise NotFound(f"no record {ref!r} in this node's list")
        _log_out(
            node,
            tx,
            DetailRow(node.now(), node.node_id, "out", ref, officer, purpose, case_id, "granted"),
            request="",
        )
    return DetailOutcome(True, "", load_record(node, stored).to_json().decode("utf-8"))
