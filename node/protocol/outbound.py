"""What an origin makes for a recipient: operations, batches, snapshots.

docs/protocol.md §4 (tokens and sealed hit data), §6.1 (batches), §7.1
(snapshots) and §8 (deciding a pull).  Pure: keys, clocks and randomness are
passed in; storage is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from wlx.crypto.card import IdentityCard
from wlx.crypto.digests import genesis_digest, payload_digest
from wlx.crypto.keys import Rng, SigningKey, system_rng
from wlx.crypto.online import OnlineKey
from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import EpochKey
from wlx.node.core.records import Record
from wlx.node.protocol import codec
from wlx.node.protocol.envelopes import same_digest, seal_signed, sign_message
from wlx.node.protocol.messages import (
    HitData,
    Op,
    PullParams,
    Remove,
    ResyncRequired,
    Sealed,
    TokenEntry,
    Upsert,
)

OPS_PER_BATCH = 1_000
ENTRIES_PER_PART = 1_000


def upsert_for(
    record: Record,
    version: int,
    key: EpochKey,
    rng: Rng = system_rng,
    *,
    suspended: bool = False,
    online: OnlineKey | None = None,
) -> Upsert:
    """The upsert of ``record`` for the key's recipient (§4.2-§4.4).

    One token per identifier key, the entries in ascending order of token
    bytes (not of identifier keys, whose order follows their kinds: an
    entry's position says nothing of its kind).  Protocol 1 (``key.protocol``): each
    token's hit data is sealed under that identifier's seal key and names the
    identifier kind that matched.  Protocol 2: the hit data (``matched_on``
    empty) is sealed once, and each token carries a wrap of the listing's
    key and of its identifier key's kind (§4.3).  A
    suspended listing still hits, flagged, and requests no action (§4.3).
    With ``online`` (the stream's VOPRF key), the listing is in the online
    tier: tokens and seal keys derive from the VOPRF output (§15.3), no
    offline token is made, and the hit data is sealed per token whatever the
    protocol.
    """
    if online is not None and (online.recipient, online.epoch) != (key.recipient, key.epoch):
        raise ValueError("the online key is not this stream's")
    handle = key.handle(record.id)
    ikeys = record.identifier_keys(key.normalisation)

    def hit_data(matched_on: str) -> bytes:
        return codec.encode_hit(
            HitData(
                origin=key.origin,
                ref=record.id,
                category=record.category,
                action="" if suspended else record.action,
                expires=record.expires,
                matched_on=matched_on,
                version=version,
                suspended=suspended,
            )
        )

    if online is None and key.protocol >= 2:
        listing, wraps = key.seal_listing_v2(
            handle, hit_data(""), [(k.value, k.kind) for k in ikeys], rng
        )
        tokens = tuple(TokenEntry(token, b"", wrap) for token, wrap in sorted(wraps))
        return Upsert(handle, record.expires, tokens, sealed=listing)
    hit_of: dict[str, bytes] = {}  # HitData differs only by matched_on: encoded once per kind
    entries = []
    for ikey in ikeys:
        kind = ikey.kind.value
        hit = hit_of.get(kind)
        if hit is None:
            hit = hit_of[kind] = hit_data(kind)
        entries.append((ikey.value, hit))
    if online is None:
        sealed = key.seal_listing(handle, entries, rng)
    else:
        sealed = []
        for value, hit in entries:
            entry = online.entry_keys(value)
            sealed.append((entry.token, key.seal_as(entry.token, entry.seal_key, handle, hit, rng)))
    return Upsert(
        handle,
        record.expires,
        tuple(TokenEntry(token, blob) for token, blob in sorted(sealed)),
        online=online is not None,
    )


def remove_for(record_id: str, key: EpochKey) -> Remove:
    """The removal of the listing ``record_id`` for the key's recipient."""
    return Remove(key.handle(record_id))


@dataclass(frozen=True)
class OutboxBatch:
    """A signed batch as the origin stores it, ready to encrypt and send."""

    first_seq: int
    last_seq: int
    digest: bytes
    signed: bytes
    """Serialized SignedMessage (payload and signature)."""


def build_batches(
    ops: Sequence[Op],
    *,
    origin: str,
    recipient: str,
    epoch: int,
    after_seq: int,
    prev_digest: bytes,
    created_at: int,
    key: SigningKey,
    max_ops: int = OPS_PER_BATCH,
) -> list[OutboxBatch]:
    """Cut ``ops`` into signed batches continuing the stream after ``after_seq``.

    Each batch's ``prev_digest`` is the digest of the one before it, the first
    one's is ``prev_digest``: the hash chain of §6.2.
    """
    batches = []
    seq, digest = after_seq, prev_digest
    for start in range(0, len(ops), max_ops):
        chunk = ops[start : start + max_ops]
        payload = codec.encode_batch_payload(
            origin=origin,
            recipient=recipient,
            epoch=epoch,
            first_seq=seq + 1,
            prev_digest=digest,
            created_at=created_at,
            ops=chunk,
        )
        signed = sign_message(payload, Purpose.BATCH, signer=origin, key=key, recipient=recipient)
        message = codec.encode_signed(
            signed.payload, signed.signature, origin, recipient, Purpose.BATCH
        )
        digest = payload_digest(payload)
        batches.append(OutboxBatch(seq + 1, seq + len(chunk), digest, message.SerializeToString()))
        seq += len(chunk)
    return batches


RESTORE_PENDING_META = "restore_pending"
"""Store meta key: JSON list of the peers whose stream restarts at their next
pull, set when the node is restored from a backup (``wlx.node.backup``)."""


def epoch_to_start(requested: int, current: int, *, restored: bool) -> int | None:
    """The epoch a recipient's stream must restart at before its pull is
    served, or None to serve it as it is.  Pure.

    After a restore from backup (``restored``: the peer has not pulled since),
    the peer may hold epochs and batches this node no longer remembers, so the
    stream restarts above both its epoch and ours.  A pull in an epoch above
    ours means the same (a restore that was not declared): never reuse an
    epoch number the peer has seen.
    """
    if restored or requested > current:
        return max(requested, current) + 1
    return None


def needs_snapshot(params: PullParams, epoch: int) -> ResyncRequired | None:
    """Rules 1-2 of §8.2: no cursor, or a cursor of another epoch, needs a
    snapshot whatever the stream holds (decided before any batch is made)."""
    if params.epoch == 0:
        return ResyncRequired("no-cursor", epoch)
    if params.epoch != epoch:
        return ResyncRequired("new-epoch", epoch)
    return None


def decide_pull(
    params: PullParams,
    *,
    epoch: int,
    last_seq: int,
    last_digest: bytes,
    oldest_seq: int,
    digest_at: Callable[[int], bytes | None],
    starts_at: Callable[[int], bool],
) -> ResyncRequired | int:
    """Where to continue a recipient's stream, or why it must resync (§8.2).

    ``oldest_seq`` is the first sequence number still in the origin's outbox
    (older batches were compacted away); ``starts_at(seq)`` says whether a
    kept batch begins at ``seq``.  Returns the sequence number after which
    to send batches.
    """
    resync = needs_snapshot(params, epoch)
    if resync is not None:
        return resync
    if params.after_seq > last_seq:
        return ResyncRequired("unknown-position", epoch)
    if params.after_seq + 1 < oldest_seq and params.after_seq != last_seq:
        # The batches right after the cursor are gone (even from genesis).
        return ResyncRequired("compacted", epoch)
    if params.after_seq == last_seq:
        expected: bytes | None = last_digest  # up to date: nothing to send
    elif params.after_seq == 0:
        expected = genesis_digest(params.origin, params.requester, epoch)
    else:
        expected = digest_at(params.after_seq)
    if expected is None:
        reason = "compacted" if params.after_seq < oldest_seq else "unknown-position"
        return ResyncRequired(reason, epoch)
    if not same_digest(expected, params.after_digest):
        return ResyncRequired("fork", epoch)
    if params.after_seq < last_seq and not starts_at(params.after_seq + 1):
        # The stream skipped past the cursor (compaction, or a snapshot
        # request fast-forwarded it): the next batch is not kept.
        return ResyncRequired("compacted", epoch)
    return params.after_seq


@dataclass(frozen=True)
class PartsStart:
    """Where a stream of snapshot parts begins: part 0, or after the parts a
    recipient staged (§7.4)."""

    index: int = 0
    prev_part_digest: bytes = b""
    entries_before: int = 0


def snapshot_parts(
    entries: Iterable[Upsert],
    *,
    origin: str,
    to: IdentityCard,
    key: SigningKey,
    epoch_key: EpochKey,
    at_seq: int,
    chain_digest: bytes,
    snapshot_id: bytes,
    created_at: int,
    part_size: int | None = None,
    start: PartsStart = PartsStart(),
    resume_token: Callable[[], bytes] = lambda: b"",
    on_final: Callable[[int], None] = lambda total: None,
    oprf_public_key: bytes = b"",
) -> Iterator[Sealed]:
    """Sign and seal a snapshot, part by part, holding one part in memory (§7.1).

    Part 0 carries the epoch key; every part chains to the one before; the
    last is marked final and states the total number of entries.  Each part
    but the last carries ``resume_token()``, called once the part's entries
    have been drawn from ``entries`` (before the next one is).  ``start``
    continues a snapshot whose first parts the recipient has.
    ``on_final(total)`` is called before the final part is handed over (so
    that the origin records the snapshot as sent even if the recipient stops
    reading right after it).
    """
    size = part_size or ENTRIES_PER_PART
    iterator = iter(entries)
    index, prev_digest, total = start.index, start.prev_part_digest, start.entries_before
    peeked: list[Upsert] = []
    while True:
        chunk = peeked + list(islice(iterator, size - len(peeked)))
        token = resume_token() if len(chunk) == size else b""
        peeked = list(islice(iterator, 1)) if len(chunk) == size else []
        final = not peeked
        total += len(chunk)
        payload = codec.encode_snapshot_part(
            origin=origin,
            recipient=to.node_id,
            epoch=epoch_key.epoch,
            snapshot_id=snapshot_id,
            index=index,
            at_seq=at_seq,
            chain_digest=chain_digest,
            prev_part_digest=prev_digest,
            token_key=epoch_key.key if index == 0 else None,
            normalisation=epoch_key.normalisation,
            entries=chunk,
            final=final,
            total_entries=total if final else 0,
            created_at=created_at,
            oprf_public_key=oprf_public_key if index == 0 else b"",
            resume_token=b"" if final else token,
        )
        sealed = seal_signed(payload, Purpose.SNAPSHOT_PART, signer=origin, key=key, to=to)
        if final:
            on_final(total)
        yield sealed
        if final:
            return
        prev_digest = payload_digest(payload)
        index += 1
