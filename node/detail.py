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
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from wlx.crypto.card import IdentityCard
from wlx.crypto.digests import payload_digest
from wlx.crypto.encoding import lp
from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import HIT_PROOF_LEN, EpochKey, hit_proof
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core import metrics, normalisation
from wlx.node.core.errors import NotFound, UserError
from wlx.node.core.node import Node
from wlx.node.core.policy import SharingPolicy
from wlx.node.outgoing import previous_epochs
from wlx.node.outgoing.evaluate import online_key
from wlx.node.outgoing.origin import MAX_CLOCK_SKEW
from wlx.node.outgoing.ownlist import load_record, record_context
from wlx.node.protocol import codec, free_text
from wlx.node.protocol.detail_checks import check_answer, check_request_parties
from wlx.node.protocol.detail_rules import (
    GRANTED,
    PROVEN,
    Answered,
    DetailDecision,
    DetailFacts,
    Direction,
    decide_detail,
    decide_replay,
)
from wlx.node.protocol.envelopes import open_envelope, seal_signed, sign_message, verify_request
from wlx.node.protocol.messages import DetailAnswer, DetailParams, Sealed, SignedRequest
from wlx.node.store.base import DetailRow, PeerRow, StoredRecord, Tx

log = logging.getLogger("wlx.detail")

DEFAULT_DAILY_QUOTA = 200
DAY = 86_400


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


_STAND_IN = (
    b'{"action":"refer","authority":"-","category":"-","dob":"1970-01-01",'
    b'"documents":[{"country":"XXA","number":"X00000000","type":"P"}],"expires":"9999-12-31",'
    b'"id":"-","legal_basis":"-","names":["Stand In Person"],"nationality":"XXA","sex":"X"}'
)
"""A typical listing (one name with a full date of birth, one document),
sealed and checked in place of a ref that does not exist."""


def _stand_in(node: Node) -> StoredRecord:
    """A stored record for a ref that does not exist, so that "not found" does
    the work of "wrong proof" (opened, parsed, every key tried) and takes as
    long as a typical record's."""
    expires = "9999-12-31"
    body = node.seal_at_rest(_STAND_IN, record_context("-", 0, False, expires))
    return StoredRecord("-", 0, body, expires, 0)


def _proof_holds(
    node: Node, keys: list[EpochKey], stored: StoredRecord | None, message: bytes, proof: bytes
) -> bool:
    """Whether ``proof`` is a hit proof of one of the record's identifiers under
    one of ``keys`` (each with its epoch's normalisation); constant work per
    record (every key is tried), and a ref that does not exist is checked
    against a stand-in record: its answer and its work are a wrong proof's."""
    if len(proof) != HIT_PROOF_LEN or not keys:
        return False
    found = False
    record = load_record(node, stored if stored is not None else _stand_in(node))
    online_keys = [online_key(node, key.recipient, key.epoch) for key in keys]
    for key, okey in zip(keys, online_keys, strict=True):
        for ikey in record.identifier_keys(key.normalisation):
            # Both tiers (a listing's tier may just have changed), every key:
            # constant work per record.
            found |= hmac.compare_digest(key.hit_proof(ikey.value, message), proof)
            online_seal = okey.entry_keys(ikey.value).seal_key
            found |= hmac.compare_digest(hit_proof(online_seal, message), proof)
    return found and stored is not None


def _decide(
    node: Node,
    tx: Tx,
    *,
    counterpart: str,
    direction: Direction,
    keys: list[EpochKey],
    ref: str,
    message: bytes,
    proof: bytes,
    quota: int,
    policy: SharingPolicy | None,
) -> tuple[DetailDecision, StoredRecord | None]:
    """Gather the facts inside ``tx`` (which also records the outcome) and decide."""
    tx.lock_audit()  # serialises this read of the quota with its update
    stored = tx.get_record(ref)
    proven = _proof_holds(node, keys, stored, message, proof)
    record = load_record(node, stored) if proven and stored is not None else None
    decision = decide_detail(
        DetailFacts(
            proof_holds=record is not None,
            shared=record is not None and (policy is None or policy.allows(record)),
            expired=stored is not None and stored.expires < node.today(),
            suspended=stored is not None and stored.suspended,
            used_today=tx.count_details(counterpart, direction, node.now() - DAY, sorted(PROVEN)),
            quota=quota,
        )
    )
    return decision, stored if decision.granted else None


_ANSWERED_META = "detail/answered/"


def _answered(tx: Tx, peer: str, now: int) -> dict[str, Answered]:
    """``peer``'s charged requests whose validity window is still open, by
    request digest (hex).  Bounded by the daily quota."""
    raw = tx.get_meta(_ANSWERED_META + peer)
    entries = json.loads(raw) if raw else {}
    return {
        digest: Answered(until, outcome, version)
        for digest, (until, outcome, version) in entries.items()
        if until >= now
    }


def _remember(tx: Tx, peer: str, digest: str, answered: Answered, now: int) -> None:
    """Remember a charged request until its window closes (``decide_replay``)."""
    entries = {d: [a.until, a.outcome, a.version] for d, a in _answered(tx, peer, now).items()}
    entries[digest] = [answered.until, answered.outcome, answered.version]
    tx.set_meta(_ANSWERED_META + peer, json.dumps(entries, sort_keys=True).encode())


def _decide_or_replay(
    node: Node, tx: Tx, params: DetailParams, peer: str, digest: str, quota: int
) -> tuple[DetailDecision, StoredRecord | None, bool]:
    """Decide ``peer``'s request (``digest``: of its signed payload) inside
    ``tx``: ``(decision, record to release, whether it is a replay)``.  A
    replay of a charged request is not charged again and releases nothing
    new (``decide_replay``); a charged request is remembered for its window."""
    row = tx.get_peer(peer)
    tx.lock_audit()  # serialises the replay check with the quota and its update
    first = _answered(tx, peer, node.now()).get(digest)
    if first is not None:
        stored = tx.get_record(params.ref)
        decision = decide_replay(first, stored.version if stored is not None else None)
        return decision, stored if decision.granted else None, True
    decision, stored = _decide(
        node,
        tx,
        counterpart=peer,
        direction=Direction.IN,
        keys=_peer_keys(node, tx, peer) if row is not None else [],
        ref=params.ref,
        message=proof_message(params.requester, params.origin, params.ref, params.nonce),
        proof=params.hit_proof,
        quota=quota,
        policy=SharingPolicy.from_json(row.policy) if row is not None else None,
    )
    if decision.counts:
        version = stored.version if stored is not None else 0
        answered = Answered(params.issued_at + MAX_CLOCK_SKEW, decision.outcome, version)
        _remember(tx, peer, digest, answered, node.now())
    return decision, stored, False


def _peer_keys(node: Node, tx: Tx, peer: str) -> list[EpochKey]:
    """The epoch keys under which ``peer``'s hit proofs are accepted: the
    current one, and the previous one for a grace period after a new epoch
    (``previous_epochs``)."""
    state = tx.get_outbound(peer)
    if state is None:
        return []
    me = node.node_id
    version = normalisation.of_epoch(tx, me, peer, state.epoch)
    keys = [node.epoch_key(me, peer, state.epoch, state.token_key, normalisation=version)]
    previous = previous_epochs.get(tx, peer, node.now())
    if previous is not None and previous[0] < state.epoch:
        old = normalisation.of_epoch(tx, me, peer, previous[0])
        keys.append(node.epoch_key(me, peer, previous[0], previous[1], normalisation=old))
    return keys


def answer(
    node: Node,
    request: SignedRequest,
    *,
    quota: int = DEFAULT_DAILY_QUOTA,
) -> Sealed:
    """Decide a peer's signed detail request; returns the signed, sealed answer.

    A replay of a charged request (same payload digest, within its validity
    window) is not charged again and releases nothing new
    (``detail_rules.decide_replay``); it is logged with ``replay``.

    Raises:
        Rejection: the request does not verify (unknown signer, bad
            signature, wrong recipient, stale, malformed).
    """
    card, params = _verified_request(node, request)
    now = node.now()
    digest = payload_digest(request.payload).hex()
    with node.store.write() as tx:
        decision, stored, replay = _decide_or_replay(node, tx, params, card.node_id, digest, quota)
        record = load_record(node, stored).to_json() if stored is not None else b""
        _log_in(node, tx, now, card.node_id, params, decision, digest, replay=replay)
    metrics.DETAILS.labels(Direction.IN, card.node_id, decision.outcome).inc()
    log.info(
        "detail request from %s (%s) for %s: %s",
        card.node_id,
        params.officer,
        params.ref,
        decision.outcome,
    )
    return _seal_answer(node, card, request, decision.denial or "", record, now)


def _verified_request(node: Node, request: SignedRequest) -> tuple[IdentityCard, DetailParams]:
    """The signer's card and the parameters of a detail request that verifies.

    Raises:
        Rejection: see ``answer``.
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
    check_request_parties(params, signer=request.signer, me=node.node_id)
    return card, params


def _log_in(
    node: Node,
    tx: Tx,
    now: int,
    peer: str,
    params: DetailParams,
    decision: DetailDecision,
    digest: str,
    *,
    replay: bool,
) -> None:
    """Log a peer's detail request and its outcome: in the details table
    (what the quota counts) unless it is a replay, and in the exchange log."""
    if not replay:  # the details table is what the quota counts
        tx.add_detail(
            DetailRow(
                at=now,
                peer=peer,
                direction=Direction.IN,
                ref=params.ref,
                officer=params.officer,
                purpose=params.purpose,
                case_id=params.case_id,
                outcome=decision.outcome,
            )
        )
    exchange_log.record(
        tx,
        node,
        now,
        kind=Event.DETAIL_IN,
        peer=peer,
        ref=params.ref,
        authority=params.requesting_authority,
        officer=params.officer,
        purpose=params.purpose,
        case=params.case_id,
        outcome=decision.outcome,
        request=digest,
        **({"replay": True} if replay else {}),
    )


def _seal_answer(
    node: Node, card: IdentityCard, request: SignedRequest, denial: str, record: bytes, now: int
) -> Sealed:
    """The answer to ``request`` (the record, or the denial), signed and sealed to ``card``."""
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
        UserError: no purpose given, or a purpose or case the log does not take
            (``wlx.node.protocol.free_text``).
        Rejection: the answer does not verify.
        Unavailable: the origin cannot be reached.
    """
    try:
        purpose, case_id = free_text.check_purpose(purpose), free_text.check_case(case_id)
    except free_text.FreeTextError as exc:
        raise UserError(str(exc)) from None
    with node.store.read() as tx:
        peer = tx.get_peer(origin)
    if peer is None:
        raise NotFound(f"{origin} is not a trusted peer")
    payload, signed = _signed_request(node, origin, ref, purpose, case_id, officer, seal_key)
    reply = _opened_answer(node, origin, send(peer, signed), payload)
    outcome = reply.denial or GRANTED  # the origin's word, shown as is (§11.4)
    with node.store.write() as tx:
        _log_out(
            node,
            tx,
            DetailRow(node.now(), origin, Direction.OUT, ref, officer, purpose, case_id, outcome),
            request=payload_digest(payload).hex(),
        )
    metrics.DETAILS.labels(Direction.OUT, origin, outcome).inc()
    log.info("detail request to %s for %s by %s: %s", origin, ref, officer, outcome)
    return DetailOutcome(reply.granted, reply.denial, reply.record.decode("utf-8"))


def _signed_request(
    node: Node,
    origin: str,
    ref: str,
    purpose: str,
    case_id: str,
    officer: str,
    seal_key: bytes | None,
) -> tuple[bytes, SignedRequest]:
    """A detail request to ``origin`` (with a hit proof if ``seal_key`` is
    known): its payload, and the payload signed for ``origin``."""
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
    return payload, signed


def _opened_answer(node: Node, origin: str, sealed: Sealed, payload: bytes) -> DetailAnswer:
    """``origin``'s answer to the request ``payload``, opened and checked.

    Raises:
        Rejection: the answer does not verify, or is not this request's.
    """
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
    check_answer(reply, origin=origin, me=node.node_id, request_digest=payload_digest(payload))
    return reply


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


def own_record(
    node: Node,
    ref: str,
    *,
    officer: str,
    purpose: str,
    case_id: str,
    seal_key: bytes | None,
    quota: int = DEFAULT_DAILY_QUOTA,
) -> DetailOutcome:
    """An officer asks for a record of the node's own list: decided locally by
    the same rules as a peer's request (§11.3: a hit proof from this officer's
    recent lookup, live, not suspended, within the node's own daily quota),
    and logged like any other detail request.

    ``seal_key`` is the seal key of the identifier that hit (from the lookup
    service's memory of this caller's hits); without it the answer is the
    uniform denial.
    """
    nonce = node.rng(codec.NONCE_BYTES)
    message = proof_message(node.node_id, node.node_id, ref, nonce)
    proof = hit_proof(seal_key, message) if seal_key is not None else b""
    now = node.now()
    with node.store.write() as tx:
        state = tx.get_inbound(node.node_id)
        keys = (
            [
                node.epoch_key(
                    node.node_id,
                    node.node_id,
                    state.epoch,
                    state.token_key,
                    normalisation=normalisation.of_epoch(
                        tx, node.node_id, node.node_id, state.epoch
                    ),
                )
            ]
            if state is not None
            else []
        )
        decision, stored = _decide(
            node,
            tx,
            counterpart=node.node_id,
            direction=Direction.OUT,
            keys=keys,
            ref=ref,
            message=message,
            proof=proof,
            quota=quota,
            policy=None,
        )
        _log_out(
            node,
            tx,
            DetailRow(
                now, node.node_id, Direction.OUT, ref, officer, purpose, case_id, decision.outcome
            ),
            request="",
        )
    metrics.DETAILS.labels("own", node.node_id, decision.outcome).inc()
    log.info("detail request for own record %s by %s: %s", ref, officer, decision.outcome)
    record = load_record(node, stored).to_json().decode("utf-8") if stored is not None else ""
    return DetailOutcome(decision.granted, decision.denial or "", record)
