"""The online tier at a recipient (docs/protocol.md §15.6): evaluations and lookups.

``remember_public_key`` / ``public_key`` keep the key each origin committed
in its snapshot; ``mark_online`` / ``holds_online`` record that an origin's
stream carries online listings this epoch; ``evaluate_at`` blinds identifier
keys, calls ``Evaluate`` through an injected transport, checks the answer and
returns each key's online token and seal key, or the reason the origin's
online listings cannot be checked; ``lookup_online`` does this for every
origin concerned and matches the results against the store.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from wlx.crypto import online as online_crypto
from wlx.crypto import ristretto
from wlx.crypto.digests import payload_digest
from wlx.crypto.encoding import u64
from wlx.crypto.errors import DecryptionError
from wlx.crypto.normalize import IdentifierKey, KeyKind
from wlx.crypto.signing import Purpose
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event, Field
from wlx.node.audit.journal import Journal
from wlx.node.audit.offline.events import EvaluateOutcome
from wlx.node.core import normalisation
from wlx.node.core.errors import (
    Exhausted,
    PeerError,
    PermissionDenied,
    Rejected,
    Rejection,
    RejectReason,
    Unavailable,
    WlxError,
)
from wlx.node.core.node import Node
from wlx.node.protocol import codec
from wlx.node.protocol import online as proto
from wlx.node.protocol.envelopes import sign_message, verify_signed
from wlx.node.protocol.messages import HitData, SignedRequest, SnapshotPart
from wlx.node.store.base import InboundState, Tx

log = logging.getLogger("wlx.online")

META_PUBLIC_KEY = "oprf/public-key/"
META_ONLINE = "oprf/online/"


def remember_public_key(tx: Tx, origin: str, epoch: int, public_key: bytes) -> None:
    """Keep the VOPRF key ``origin`` committed for ``epoch`` (with its snapshot)."""
    tx.set_meta(META_PUBLIC_KEY + origin, u64(epoch) + public_key)
    tx.set_meta(META_ONLINE + origin, b"")


def public_key(tx: Tx, origin: str, epoch: int) -> bytes:
    """The key ``origin`` committed for ``epoch``; empty if none."""
    return _committed_key(tx.get_meta(META_PUBLIC_KEY + origin), epoch)


def _committed_key(raw: bytes | None, epoch: int) -> bytes:
    """The key of a ``META_PUBLIC_KEY`` value if it is ``epoch``'s; empty if not."""
    if raw is None or len(raw) != 8 + ristretto.ELEMENT_LEN or raw[:8] != u64(epoch):
        return b""
    return raw[8:]


def staged_fields(part: SnapshotPart, before: Mapping[str, object]) -> dict[str, object]:
    """What a snapshot's staging keeps for the online tier, after ``part``:
    part 0's committed key, and whether any part carried an online listing
    (kept with the staging's progress, so that a resumed snapshot has them)."""
    key = before.get("oprf_public_key", "") if part.index else part.oprf_public_key.hex()
    online = bool(before.get("online")) if part.index else False
    return {
        "oprf_public_key": key,
        "online": online or any(e.online for e in part.entries),
    }


def apply_staged(tx: Tx, origin: str, epoch: int, fields: Mapping[str, object]) -> None:
    """With the swap of a staged snapshot: its key and online listings become
    the stream's.  A snapshot whose part 0 committed no key leaves none (its
    online listings are then reported not checked, never silently missed)."""
    raw = fields.get("oprf_public_key")
    remember_public_key(tx, origin, epoch, bytes.fromhex(raw) if isinstance(raw, str) else b"")
    if fields.get("online"):
        mark_online(tx, origin, epoch)


def mark_online(tx: Tx, origin: str, epoch: int) -> None:
    """Note that ``origin``'s stream carries online listings in ``epoch``.

    Kept until the epoch changes even if those listings go: asking an origin
    once too often costs budget, never a silent miss (§15.6).
    """
    tx.set_meta(META_ONLINE + origin, u64(epoch))


def holds_online(tx: Tx, origin: str, epoch: int) -> bool:
    """Whether lookups must ask ``origin`` to evaluate (§15.6)."""
    return tx.get_meta(META_ONLINE + origin) == u64(epoch)


Transport = Callable[[str, SignedRequest], SignedRequest]
"""Sends a signed Evaluate request to an origin; returns its signed answer.

Raises ``Unavailable`` (unreachable, timed out), ``Exhausted`` (quota),
``PeerError`` (stale epoch or other refusal), ``PermissionDenied``.
"""


@dataclass(frozen=True)
class Evaluated:
    """The outcome of asking one origin: keys in order, or why not checked."""

    origin: str
    keys: tuple[online_crypto.EntryKeys, ...] = ()
    not_checked: proto.NotChecked | None = None


def evaluate_at(
    node: Node,
    origin: str,
    epoch: int,
    public: bytes,
    identifier_keys: Sequence[bytes],
    send: Transport,
    journal: Journal | None = None,
) -> Evaluated:
    """Ask ``origin`` to evaluate ``identifier_keys`` blinded; check; unblind.

    Never raises for the origin's failures: the result says the origin's
    online listings are not checked, and why.  Logs counts only.
    """
    blinded = online_crypto.blind_keys(identifier_keys, node.rng, workers=proto.WORKERS)
    params = proto.EvaluateParams(
        requester=node.node_id,
        origin=origin,
        epoch=epoch,
        issued_at=node.now(),
        nonce=node.rng(proto.NONCE_BYTES),
        blinded=tuple(b.element for b in blinded),
    )
    payload = proto.encode_evaluate_params(params)
    signed = sign_message(
        payload,
        Purpose.EVALUATE_REQUEST,
        signer=node.node_id,
        key=node.signing_key,
        recipient=origin,
    )
    outcome = EvaluateOutcome.EVALUATED
    keys: tuple[online_crypto.EntryKeys, ...] = ()
    reason: proto.NotChecked | None = None
    try:
        answer_msg = send(origin, signed)
        verify_signed(
            answer_msg, purpose=Purpose.EVALUATE_ANSWER, me=node.node_id, trusted=node.trusted
        )
        if answer_msg.signer != origin:
            raise Rejection(RejectReason.WRONG_SENDER, "evaluate answer from another node")
        answer = proto.decode_evaluate_answer(answer_msg.payload)
        keys = tuple(
            proto.check_answer(
                answer,
                params=params,
                payload=payload,
                public_key=public,
                blinded=blinded,
                workers=proto.WORKERS,
            )
        )
    except Unavailable:
        outcome, reason = EvaluateOutcome.UNREACHABLE, proto.NotChecked.UNREACHABLE
    except Exhausted:
        outcome, reason = EvaluateOutcome.QUOTA, proto.NotChecked.QUOTA
    except Rejection as exc:
        outcome, reason = EvaluateOutcome.INVALID, proto.NotChecked.INVALID
        log.warning("%s's evaluate answer rejected: %s", origin, exc)
        _record_rejection(node, origin, exc)
    except (PeerError, PermissionDenied) as exc:
        stale = proto.Refusal.STALE_EPOCH in str(exc)  # the origin's words (§15.4)
        outcome = EvaluateOutcome.STALE_EPOCH if stale else EvaluateOutcome.REFUSED
        reason = proto.NotChecked.STALE_EPOCH if stale else proto.NotChecked.REFUSED
    except WlxError as exc:
        outcome, reason = EvaluateOutcome.REFUSED, proto.NotChecked.REFUSED
        log.warning("%s refused an evaluation: %s", origin, exc)
    fields: dict[str, Field] = {
        "origin": origin,
        "epoch": epoch,
        "elements": len(blinded),
        "outcome": outcome,
        "request": payload_digest(payload).hex(),
    }
    if journal is not None:
        journal.record(Event.EVALUATE_OUT, **fields)
    else:
        with node.store.write() as tx:
            exchange_log.record(tx, node, kind=Event.EVALUATE_OUT, **fields)
    return Evaluated(origin, keys, reason)


def _record_rejection(node: Node, origin: str, exc: Rejection) -> None:
    with node.store.write() as tx:
        exchange_log.record(
            tx,
            node,
            kind=Event.REJECTED,
            origin=origin,
            what=Rejected.RESPONSE,
            reason=exc.reason.value,
            detail=exc.detail,
        )


# ---------------------------------------------------------------- lookups


@dataclass(frozen=True)
class OnlineHit:
    """An online listing a query's identifier key opened (§15.6)."""

    index: int
    """Which query of the lookup."""
    kind: KeyKind
    origin: str
    hit: HitData
    seal_key: bytes = field(repr=False)
    synced_at: int = 0


@dataclass(frozen=True)
class OnlineResult:
    """The online part of a lookup: hits, and origins whose online listings were not checked."""

    hits: tuple[OnlineHit, ...] = ()
    not_checked: tuple[tuple[str, proto.NotChecked], ...] = ()


def lookup_online(
    node: Node,
    keys_for: Callable[[str], Sequence[Sequence[IdentifierKey] | str]],
    send: Transport | None,
    journal: Journal | None = None,
    targets: Sequence[Target] | None = None,
) -> OnlineResult:
    """Match the queries' identifier keys against every origin's online listings.

    ``keys_for(version)`` gives each query's identifier keys under one
    normalisation version (a string for a query that could not be checked at
    all); each origin is asked with the keys of its epoch's version.  One
    ``Evaluate`` per origin that holds online listings here, concurrently;
    each distinct key is blinded once.  An origin that cannot be asked,
    refuses, answers wrongly, or whose list changed epoch meanwhile is
    reported in ``not_checked``: never a silent miss.  ``targets``: the
    ``targets`` the caller read in a transaction of its own (else read here).
    """
    if targets is None:
        with node.store.read() as tx:
            targets = online_targets(tx, node.node_id, tx.list_inbound())
    if not targets:
        return OnlineResult()
    not_checked: dict[str, proto.NotChecked] = {}
    asked: list[tuple[InboundState, Evaluated, Sequence[Sequence[IdentifierKey] | str]]] = []
    workers = min(MAX_CONCURRENT, len(targets))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = []
        for state, public, version in targets:
            keys = keys_for(version)
            unique = _unique(keys)
            if not unique:
                continue
            if not public:  # an epoch whose snapshot committed no key
                not_checked[state.origin] = proto.NotChecked.STALE_EPOCH
                continue
            if send is None:  # no way to reach origins configured
                not_checked[state.origin] = proto.NotChecked.UNREACHABLE
                continue
            futures.append(
                (
                    state,
                    keys,
                    pool.submit(
                        evaluate_at, node, state.origin, state.epoch, public, unique, send, journal
                    ),
                )
            )
        for state, keys, future in futures:
            evaluated = future.result()
            if evaluated.not_checked is not None:
                not_checked[state.origin] = evaluated.not_checked
            else:
                asked.append((state, evaluated, keys))
    hits = _match(node, asked, not_checked)
    return OnlineResult(tuple(hits), tuple(sorted(not_checked.items())))


Target = tuple[InboundState, bytes, str]
"""An origin whose online listings lookups must have evaluated: its stream's
state, the key it committed for the epoch (empty: none), the epoch's
normalisation version."""


def online_targets(tx: Tx, me: str, streams: Sequence[InboundState]) -> list[Target]:
    """Every ``Target`` among ``streams`` (``tx.list_inbound()``): those
    that ``holds_online``, read in one statement when none does (three when
    some do), however many origins."""
    states = [s for s in streams if s.epoch and s.origin != me]
    flags = tx.get_metas([META_ONLINE + s.origin for s in states])
    states = [s for s in states if flags.get(META_ONLINE + s.origin) == u64(s.epoch)]
    if not states:
        return []
    keys = tx.get_metas([META_PUBLIC_KEY + s.origin for s in states])
    versions = normalisation.of_epochs(tx, me, [(s.origin, s.epoch) for s in states])
    return [
        (s, _committed_key(keys.get(META_PUBLIC_KEY + s.origin), s.epoch), versions[s.origin])
        for s in states
    ]


def _unique(keys: Sequence[Sequence[IdentifierKey] | str]) -> list[bytes]:
    return sorted({k.value for entry in keys if not isinstance(entry, str) for k in entry})


MAX_CONCURRENT = 8


def _match(
    node: Node,
    asked: Sequence[tuple[InboundState, Evaluated, Sequence[Sequence[IdentifierKey] | str]]],
    not_checked: dict[str, proto.NotChecked],
) -> list[OnlineHit]:
    hits: list[OnlineHit] = []
    today = node.today()
    with node.store.read() as tx:
        for state, evaluated, keys in asked:
            unique = _unique(keys)
            now_state = tx.get_inbound(state.origin)
            if now_state is None or now_state.epoch != state.epoch:
                not_checked[state.origin] = proto.NotChecked.STALE_EPOCH  # resynced meanwhile
                continue
            entry_of = dict(zip(unique, evaluated.keys, strict=True))
            wanted: dict[bytes, list[tuple[int, IdentifierKey]]] = {}
            for index, entry in enumerate(keys):
                if isinstance(entry, str):
                    continue
                for ikey in entry:
                    wanted.setdefault(entry_of[ikey.value].token, []).append((index, ikey))
            epoch_key = node.epoch_key(state.origin, node.node_id, state.epoch, state.token_key)
            for row in tx.find_tokens(state.origin, list(wanted)):
                # A row with a wrap is a protocol-2 offline entry, never an
                # online one (§15.3): not opened here, nor logged as damage.
                if row.expires < today or row.wrap:
                    continue
                for index, ikey in wanted[row.token]:
                    seal_key = entry_of[ikey.value].seal_key
                    try:
                        data = codec.decode_hit(
                            epoch_key.open_as(row.token, seal_key, row.handle, row.sealed)
                        )
                    except (DecryptionError, Rejection):
                        log.error(
                            "a stored online entry of %s does not open: store damaged or tampered",
                            state.origin,
                        )
                        continue
                    hits.append(
                        OnlineHit(index, ikey.kind, state.origin, data, seal_key, state.synced_at)
                    )
    return hits
