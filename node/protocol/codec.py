"""Bytes <-> protocol dataclasses, with every size and shape checked.

The boundary of docs/protocol.md §6-§8: parsing either returns a dataclass
whose fields all satisfy the spec's invariants, or raises ``Rejection`` with
reason ``malformed`` (or ``too-large``).  Nothing else escapes; the fuzz test
in tests/test_codec_fuzz.py holds the parsers to that.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as PbMessage

from wlx.crypto import ristretto
from wlx.crypto.digests import DIGEST_LEN, payload_digest
from wlx.crypto.errors import MalformedError
from wlx.crypto.normalize import NORMALISATION, VERSIONS
from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import (
    HANDLE_LEN,
    MIN_SEALED2,
    NONCE_LEN,
    PAD2_BLOCK,
    TAG_LEN,
    TOKEN_KEY_LEN,
    TOKEN_LEN,
    WRAP_LEN,
)
from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.protocol import free_text
from wlx.node.protocol.messages import (
    Batch,
    DetailAnswer,
    DetailParams,
    HitData,
    Op,
    PullParams,
    Receipt,
    ReceiptKind,
    Remove,
    Sealed,
    SignedRequest,
    SnapshotParams,
    SnapshotPart,
    SnapshotResume,
    TokenEntry,
    Upsert,
)
from wlx.v1 import envelope_pb2, federation_pb2

PROTOCOL_VERSION = 1
MAX_ENVELOPE_BYTES = 8 * 1024 * 1024
"""Largest SealedEnvelope ciphertext a node accepts (and the origin makes)."""
MAX_OPS_PER_BATCH = 5_000
MAX_ENTRIES_PER_PART = 5_000
MAX_TOKENS_PER_UPSERT = 256
MAX_SEALED_BYTES = 2_048
NONCE_BYTES = 16
MAX_RESUME_TOKEN = 512
M = TypeVar("M", bound=PbMessage)
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def malformed(detail: str) -> Rejection:
    return Rejection(RejectReason.MALFORMED, detail)


def parse_message(cls: type[M], data: bytes, what: str) -> M:
    try:
        return cls.FromString(data)
    except (DecodeError, ValueError, RecursionError):
        raise malformed(f"{what} does not parse") from None


def _purpose(text: str) -> Purpose:
    try:
        return Purpose(text)
    except ValueError:
        raise malformed("unknown purpose") from None


# ---------------------------------------------------------------- envelopes


def encode_sealed(sealed: Sealed) -> envelope_pb2.SealedEnvelope:
    """The protobuf form of a sealed envelope."""
    return envelope_pb2.SealedEnvelope(
        version=PROTOCOL_VERSION,
        sender=sealed.sender,
        recipient=sealed.recipient,
        purpose=sealed.purpose.value,
        ciphertext=sealed.ciphertext,
    )


def decode_sealed(msg: envelope_pb2.SealedEnvelope) -> Sealed:
    """A sealed envelope from its protobuf form.

    Raises:
        Rejection: malformed (wrong version, unknown purpose) or too large.
    """
    if msg.version != PROTOCOL_VERSION:
        raise malformed("unsupported envelope version")
    if len(msg.ciphertext) > MAX_ENVELOPE_BYTES:
        raise Rejection(RejectReason.TOO_LARGE, "envelope larger than 8 MiB")
    return Sealed(msg.sender, msg.recipient, _purpose(msg.purpose), msg.ciphertext)


def encode_signed(
    payload: bytes, signature: bytes, signer: str, recipient: str, purpose: Purpose
) -> envelope_pb2.SignedMessage:
    """The protobuf form of a signed message."""
    return envelope_pb2.SignedMessage(
        payload=payload,
        signature=signature,
        signer=signer,
        recipient=recipient,
        purpose=purpose.value,
    )


def decode_signed(msg: envelope_pb2.SignedMessage) -> SignedRequest:
    """A signed message from its protobuf form (signature not yet checked).

    Raises:
        Rejection: malformed.
    """
    if len(msg.signature) != 64:
        raise malformed("a signature is 64 bytes")
    return SignedRequest(
        msg.payload, msg.signature, msg.signer, msg.recipient, _purpose(msg.purpose)
    )


def decode_signed_bytes(data: bytes) -> SignedRequest:
    """A signed message from its serialized form.

    Raises:
        Rejection: malformed.
    """
    return decode_signed(parse_message(envelope_pb2.SignedMessage, data, "signed message"))


# ---------------------------------------------------------------- operations


def _fill_upsert(msg: federation_pb2.Upsert, op: Upsert) -> None:
    """Set ``msg`` (a field already in its parent) to ``op``, built in place:
    protobuf copies every message assigned, and an upsert has up to 256
    token entries.  The serialised bytes do not depend on how it was built."""
    msg.handle = op.handle
    msg.expires = op.expires
    msg.online = op.online
    add = msg.tokens.add
    if op.sealed:  # protocol 2: one sealed listing, a wrap per token
        msg.sealed = op.sealed
        for t in op.tokens:
            add(token=t.token, wrap=t.wrap)
        return
    for t in op.tokens:
        add(token=t.token, sealed=t.sealed)


def _add_ops(field: Any, ops: Sequence[Op]) -> None:
    for op in ops:
        if isinstance(op, Upsert):
            _fill_upsert(field.add().upsert, op)
        else:
            field.add().remove.handle = op.handle


def _check_handle(handle: bytes) -> bytes:
    if len(handle) != HANDLE_LEN:
        raise malformed("a handle is 16 bytes")
    return handle


def _upsert(msg: federation_pb2.Upsert) -> Upsert:
    if not _DATE.fullmatch(msg.expires):
        raise malformed("expires is not YYYY-MM-DD")
    if not 1 <= len(msg.tokens) <= MAX_TOKENS_PER_UPSERT:
        raise malformed(f"an upsert has 1 to {MAX_TOKENS_PER_UPSERT} tokens")
    if msg.sealed:
        return _upsert_v2(msg)
    tokens = []
    for entry in msg.tokens:
        if len(entry.token) != TOKEN_LEN:
            raise malformed("a token is 16 bytes")
        if not NONCE_LEN + TAG_LEN <= len(entry.sealed) <= MAX_SEALED_BYTES:
            raise malformed("sealed hit data has the wrong size")
        if entry.wrap:
            raise malformed("a wrap in an upsert without a sealed listing")
        tokens.append(TokenEntry(entry.token, entry.sealed))
    return Upsert(_check_handle(msg.handle), msg.expires, tuple(tokens), online=msg.online)


def _upsert_v2(msg: federation_pb2.Upsert) -> Upsert:
    """A protocol-2 upsert (§4.3): the listing sealed once (a whole number of
    padding buckets), a 17-byte wrap and no sealed hit data per token; not in
    the online tier, whose entries are sealed per token (§15.3)."""
    size = len(msg.sealed)
    if not MIN_SEALED2 <= size <= MAX_SEALED_BYTES or (size - NONCE_LEN - TAG_LEN) % PAD2_BLOCK:
        raise malformed("a sealed listing has the wrong size")
    if msg.online:
        raise malformed("an online-tier upsert has no sealed listing")
    tokens = []
    for entry in msg.tokens:
        if len(entry.token) != TOKEN_LEN:
            raise malformed("a token is 16 bytes")
        if len(entry.wrap) != WRAP_LEN or entry.sealed:
            raise malformed(f"a token entry of a sealed listing has a {WRAP_LEN}-byte wrap only")
        tokens.append(TokenEntry(entry.token, b"", entry.wrap))
    return Upsert(_check_handle(msg.handle), msg.expires, tuple(tokens), sealed=msg.sealed)


def encode_upsert(op: Upsert) -> bytes:
    """Serialize one upsert (an ``Upsert`` message on its own: vectors, tests)."""
    msg = federation_pb2.Op()
    _fill_upsert(msg.upsert, op)
    return msg.upsert.SerializeToString()


def decode_upsert(data: bytes) -> Upsert:
    """Parse and check one serialized ``Upsert`` as a batch's would be.

    Raises:
        Rejection: malformed.
    """
    return _upsert(parse_message(federation_pb2.Upsert, data, "upsert"))


def _op(msg: federation_pb2.Op) -> Op:
    kind = msg.WhichOneof("kind")
    if kind == "upsert":
        return _upsert(msg.upsert)
    if kind == "remove":
        return Remove(_check_handle(msg.remove.handle))
    raise malformed("an operation is neither upsert nor remove")


def _check_digest(value: bytes, what: str) -> bytes:
    if len(value) != DIGEST_LEN:
        raise malformed(f"{what} is 32 bytes")
    return value


# ---------------------------------------------------------------- batches


def encode_batch_payload(
    *,
    origin: str,
    recipient: str,
    epoch: int,
    first_seq: int,
    prev_digest: bytes,
    created_at: int,
    ops: Sequence[Op],
) -> bytes:
    """Serialize a batch payload (the bytes the origin signs)."""
    msg = federation_pb2.BatchPayload(
        version=PROTOCOL_VERSION,
        origin=origin,
        recipient=recipient,
        epoch=epoch,
        first_seq=first_seq,
        last_seq=first_seq + len(ops) - 1,
        prev_digest=prev_digest,
        created_at=created_at,
    )
    _add_ops(msg.ops, ops)
    return msg.SerializeToString()


def decode_batch_payload(payload: bytes) -> Batch:
    """Parse and check a batch payload whose signature has verified.

    Raises:
        Rejection: malformed (bad version, empty or inconsistent sequence
            range, too many operations, bad field sizes).
    """
    msg = parse_message(federation_pb2.BatchPayload, payload, "batch payload")
    if msg.version != PROTOCOL_VERSION:
        raise malformed("unsupported batch version")
    if msg.epoch < 1 or msg.first_seq < 1:
        raise malformed("epoch and first_seq start at 1")
    if not 1 <= len(msg.ops) <= MAX_OPS_PER_BATCH:
        raise malformed(f"a batch has 1 to {MAX_OPS_PER_BATCH} operations")
    if msg.last_seq != msg.first_seq + len(msg.ops) - 1:
        raise malformed("sequence range does not match the number of operations")
    return Batch(
        origin=msg.origin,
        recipient=msg.recipient,
        epoch=msg.epoch,
        first_seq=msg.first_seq,
        last_seq=msg.last_seq,
        prev_digest=_check_digest(msg.prev_digest, "prev_digest"),
        created_at=msg.created_at,
        ops=tuple(_op(op) for op in msg.ops),
        digest=payload_digest(payload),
    )


# ---------------------------------------------------------------- snapshots


def encode_snapshot_part(
    *,
    origin: str,
    recipient: str,
    epoch: int,
    snapshot_id: bytes,
    index: int,
    at_seq: int,
    chain_digest: bytes,
    prev_part_digest: bytes,
    token_key: bytes | None,
    normalisation: str = NORMALISATION,
    entries: Sequence[Upsert],
    final: bool,
    total_entries: int,
    created_at: int,
    oprf_public_key: bytes = b"",
    resume_token: bytes = b"",
) -> bytes:
    """Serialize a snapshot part (the bytes the origin signs)."""
    msg = federation_pb2.SnapshotPart(
        version=PROTOCOL_VERSION,
        origin=origin,
        recipient=recipient,
        epoch=epoch,
        snapshot_id=snapshot_id,
        index=index,
        at_seq=at_seq,
        chain_digest=chain_digest,
        prev_part_digest=prev_part_digest,
        final=final,
        total_entries=total_entries,
        created_at=created_at,
        resume_token=resume_token,
    )
    for entry in entries:
        _fill_upsert(msg.entries.add(), entry)
    if token_key is not None:
        msg.epoch_key.CopyFrom(
            federation_pb2.EpochKey(
                token_key=token_key,
                normalisation=normalisation,
                oprf_public_key=oprf_public_key,
            )
        )
    return msg.SerializeToString()


def decode_snapshot_part(payload: bytes) -> SnapshotPart:
    """Parse and check a snapshot part whose signature has verified.

    Raises:
        Rejection: malformed.
    """
    msg = parse_message(federation_pb2.SnapshotPart, payload, "snapshot part")
    if msg.version != PROTOCOL_VERSION:
        raise malformed("unsupported snapshot version")
    if msg.epoch < 1:
        raise malformed("epochs start at 1")
    if len(msg.snapshot_id) != NONCE_BYTES:
        raise malformed("a snapshot id is 16 bytes")
    if len(msg.entries) > MAX_ENTRIES_PER_PART:
        raise malformed(f"a snapshot part has at most {MAX_ENTRIES_PER_PART} entries")
    token_key: bytes | None = None
    normalisation = ""
    oprf_public_key = b""
    if msg.index == 0:
        if not msg.HasField("epoch_key") or len(msg.epoch_key.token_key) != TOKEN_KEY_LEN:
            raise malformed("part 0 of a snapshot carries the 32-byte epoch key")
        if msg.epoch_key.normalisation not in VERSIONS:
            raise malformed("unsupported normalisation version")
        token_key, normalisation = msg.epoch_key.token_key, msg.epoch_key.normalisation
        oprf_public_key = _oprf_public_key(msg.epoch_key.oprf_public_key)
        if msg.prev_part_digest:
            raise malformed("part 0 of a snapshot has no previous part")
    else:
        if msg.HasField("epoch_key"):
            raise malformed("only part 0 of a snapshot carries the epoch key")
        _check_digest(msg.prev_part_digest, "prev_part_digest")
    if len(msg.resume_token) > MAX_RESUME_TOKEN:
        raise malformed(f"a resume token has at most {MAX_RESUME_TOKEN} bytes")
    return SnapshotPart(
        origin=msg.origin,
        recipient=msg.recipient,
        epoch=msg.epoch,
        snapshot_id=msg.snapshot_id,
        index=msg.index,
        at_seq=msg.at_seq,
        chain_digest=_check_digest(msg.chain_digest, "chain_digest"),
        prev_part_digest=msg.prev_part_digest,
        token_key=token_key,
        normalisation=normalisation,
        entries=tuple(_upsert(e) for e in msg.entries),
        final=msg.final,
        total_entries=msg.total_entries,
        created_at=msg.created_at,
        digest=payload_digest(payload),
        oprf_public_key=oprf_public_key,
        resume_token=msg.resume_token,
    )


def _oprf_public_key(value: bytes) -> bytes:
    """Empty (no online tier), or a canonical non-identity ristretto255 element."""
    if not value:
        return b""
    try:
        return ristretto.element(value)
    except MalformedError:
        raise malformed("the OPRF public key is not a ristretto255 element") from None


# ---------------------------------------------------------------- requests


def encode_pull_params(params: PullParams) -> bytes:
    """Serialize pull parameters (the bytes the requester signs)."""
    return federation_pb2.PullParams(
        requester=params.requester,
        origin=params.origin,
        epoch=params.epoch,
        after_seq=params.after_seq,
        after_digest=params.after_digest,
        issued_at=params.issued_at,
        nonce=params.nonce,
        max_batches=params.max_batches,
    ).SerializeToString()


def decode_pull_params(payload: bytes) -> PullParams:
    """Parse pull parameters whose signature has verified.

    Raises:
        Rejection: malformed.
    """
    msg = parse_message(federation_pb2.PullParams, payload, "pull parameters")
    if len(msg.nonce) != NONCE_BYTES:
        raise malformed("a nonce is 16 bytes")
    if msg.after_digest:
        _check_digest(msg.after_digest, "after_digest")
    return PullParams(
        requester=msg.requester,
        origin=msg.origin,
        epoch=msg.epoch,
        after_seq=msg.after_seq,
        after_digest=msg.after_digest,
        issued_at=msg.issued_at,
        nonce=msg.nonce,
        max_batches=msg.max_batches,
    )


def encode_snapshot_params(params: SnapshotParams) -> bytes:
    """Serialize snapshot request parameters (the bytes the requester signs)."""
    msg = federation_pb2.SnapshotParams(
        requester=params.requester,
        origin=params.origin,
        issued_at=params.issued_at,
        nonce=params.nonce,
    )
    if params.resume is not None:
        r = params.resume
        msg.resume.CopyFrom(
            federation_pb2.SnapshotResume(
                snapshot_id=r.snapshot_id,
                next_index=r.next_index,
                prev_part_digest=r.prev_part_digest,
                token=r.token,
                entries=r.entries,
            )
        )
    return msg.SerializeToString()


def decode_snapshot_params(payload: bytes) -> SnapshotParams:
    """Parse snapshot request parameters whose signature has verified.

    Raises:
        Rejection: malformed.
    """
    msg = parse_message(federation_pb2.SnapshotParams, payload, "snapshot parameters")
    if len(msg.nonce) != NONCE_BYTES:
        raise malformed("a nonce is 16 bytes")
    resume = None
    if msg.HasField("resume"):
        r = msg.resume
        if len(r.snapshot_id) != NONCE_BYTES:
            raise malformed("a snapshot id is 16 bytes")
        if r.next_index < 1:
            raise malformed("a snapshot resumes after its part 0")
        if len(r.token) > MAX_RESUME_TOKEN:
            raise malformed(f"a resume token has at most {MAX_RESUME_TOKEN} bytes")
        resume = SnapshotResume(
            r.snapshot_id,
            r.next_index,
            _check_digest(r.prev_part_digest, "prev_part_digest"),
            r.token,
            r.entries,
        )
    return SnapshotParams(msg.requester, msg.origin, msg.issued_at, msg.nonce, resume)


# ---------------------------------------------------------------- hit data


def encode_hit(hit: HitData) -> bytes:
    """Serialize hit data for sealing."""
    return federation_pb2.HitData(
        origin=hit.origin,
        ref=hit.ref,
        category=hit.category,
        action=hit.action,
        expires=hit.expires,
        matched_on=hit.matched_on,
        version=hit.version,
        suspended=hit.suspended,
    ).SerializeToString()


def decode_hit(data: bytes) -> HitData:
    """Parse hit data that opened (so the origin sealed it).

    Raises:
        Rejection: malformed.
    """
    msg = parse_message(federation_pb2.HitData, data, "hit data")
    return HitData(
        origin=msg.origin,
        ref=msg.ref,
        category=msg.category,
        action=msg.action,
        expires=msg.expires,
        matched_on=msg.matched_on,
        version=msg.version,
        suspended=msg.suspended,
    )


# ---------------------------------------------------------------- receipts


def encode_receipt(receipt: Receipt) -> bytes:
    """Serialize a receipt (the bytes the recipient signs)."""
    return federation_pb2.Receipt(
        origin=receipt.origin,
        recipient=receipt.recipient,
        epoch=receipt.epoch,
        kind=receipt.kind,
        first_seq=receipt.first_seq,
        last_seq=receipt.last_seq,
        digest=receipt.digest,
        applied_at=receipt.applied_at,
    ).SerializeToString()


def decode_receipt(payload: bytes) -> Receipt:
    """Parse a receipt whose signature has verified.

    Raises:
        Rejection: malformed.
    """
    msg = parse_message(federation_pb2.Receipt, payload, "receipt")
    try:
        kind = ReceiptKind(msg.kind)
    except ValueError:
        raise malformed("a receipt is for a batch or a snapshot") from None
    if msg.epoch < 1 or msg.first_seq > msg.last_seq:
        raise malformed("a receipt names a valid epoch and sequence range")
    return Receipt(
        origin=msg.origin,
        recipient=msg.recipient,
        epoch=msg.epoch,
        kind=kind,
        first_seq=msg.first_seq,
        last_seq=msg.last_seq,
        digest=_check_digest(msg.digest, "a receipt's digest"),
        applied_at=msg.applied_at,
    )


# ---------------------------------------------------------------- detail requests

MAX_DETAIL_TEXT = 256
MAX_RECORD_BYTES = 256 * 1024


def encode_detail_params(params: DetailParams) -> bytes:
    """Serialize a detail request (the bytes the requester signs)."""
    return federation_pb2.DetailParams(
        requester=params.requester,
        origin=params.origin,
        ref=params.ref,
        requesting_authority=params.requesting_authority,
        officer=params.officer,
        purpose=params.purpose,
        case_id=params.case_id,
        issued_at=params.issued_at,
        nonce=params.nonce,
        hit_proof=params.hit_proof,
    ).SerializeToString()


def decode_detail_params(payload: bytes) -> DetailParams:
    """Parse a detail request whose signature has verified.

    Raises:
        Rejection: malformed (fields too long, no purpose, bad nonce).
    """
    msg = parse_message(federation_pb2.DetailParams, payload, "detail request")
    if len(msg.nonce) != NONCE_BYTES:
        raise malformed("a nonce is 16 bytes")
    texts = (msg.ref, msg.requesting_authority, msg.officer, msg.purpose, msg.case_id)
    if any(len(t) > MAX_DETAIL_TEXT for t in texts):
        raise malformed(f"detail request fields are at most {MAX_DETAIL_TEXT} characters")
    if not msg.ref:
        raise malformed("a detail request names a ref")
    try:
        free_text.check_purpose(msg.purpose)
        free_text.check_case(msg.case_id)
    except free_text.FreeTextError as exc:
        raise malformed(f"detail request: {exc}") from None
    return DetailParams(
        requester=msg.requester,
        origin=msg.origin,
        ref=msg.ref,
        requesting_authority=msg.requesting_authority,
        officer=msg.officer,
        purpose=msg.purpose,
        case_id=msg.case_id,
        issued_at=msg.issued_at,
        nonce=msg.nonce,
        hit_proof=msg.hit_proof,
    )


def encode_detail_answer(answer: DetailAnswer) -> bytes:
    """Serialize a detail answer (the bytes the origin signs)."""
    return federation_pb2.DetailAnswer(
        origin=answer.origin,
        recipient=answer.recipient,
        request_digest=answer.request_digest,
        granted=answer.granted,
        denial=answer.denial,
        record=answer.record,
        answered_at=answer.answered_at,
    ).SerializeToString()


def decode_detail_answer(payload: bytes) -> DetailAnswer:
    """Parse a detail answer whose signature has verified.

    Raises:
        Rejection: malformed.
    """
    msg = parse_message(federation_pb2.DetailAnswer, payload, "detail answer")
    if len(msg.record) > MAX_RECORD_BYTES:
        raise Rejection(RejectReason.TOO_LARGE, "detail record larger than 256 KiB")
    if msg.granted == (not msg.record) or (not msg.granted and not msg.denial):
        raise malformed("a detail answer grants a record or states a denial")
    return DetailAnswer(
        origin=msg.origin,
        recipient=msg.recipient,
        request_digest=_check_digest(msg.request_digest, "request_digest"),
        granted=msg.granted,
        denial=msg.denial,
        record=msg.record,
        answered_at=msg.answered_at,
    )
