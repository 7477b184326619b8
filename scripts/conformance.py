"""The wlx conformance kit (docs/protocol.md, appendix C).

Exercises a node over the wire as an unknown implementation would, with the
``wlx.v1`` messages and the ``wlx.crypto`` primitives only (never the node's
own client code): pull, snapshot, receipts, announce, detail, lookup, the
witness protocol, and every rejection with its expected gRPC status.  Prints
one line per numbered MUST it checked, PASS or FAIL, then a summary; exits 1
if any check failed, 2 on a usage error.

The kit speaks for a *peer* the target trusts: ``--peer-dir`` names a node
directory (made by ``wlx init``, or by ``--new-peer``) whose card the
target's operator added with ``wlx peer add``, and which itself trusts the
target (``wlx peer add PEER_DIR TARGET_CARD``).  ``--credential`` files
issued by the target (``wlx credential issue``) add the officer checks
(role ``officer``) and the auditor checks (role ``auditor``).

Only read-only or idempotent operations are made against the target: it
serves a snapshot and batches to the peer (and continues an interrupted
snapshot, §7.4), records receipts of what it served, answers one detail
request (``no-hit``), cosigns the peer's log and logs the refusals the kit
provokes.  Last, the kit spends its own peer's rate limit (MUST-A.3-4), so
that peer is throttled for a few seconds afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from wlx.crypto import tls
from wlx.crypto.card import DEFAULT_SPEAKS, IdentityCard, Speaks
from wlx.crypto.checkpoint import verify_cosignature
from wlx.crypto.digests import genesis_digest, payload_digest
from wlx.crypto.encoding import lp
from wlx.crypto.envelope import open_sealed
from wlx.crypto.normalize import document_key, normalize_country, normalize_document_number
from wlx.crypto.signing import Purpose, sign, verify
from wlx.crypto.tokens import EpochKey
from wlx.node.protocol.versions import negotiate
from wlx.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    envelope_pb2,
    federation_pb2,
    lookup_pb2,
)

TIMEOUT = 20.0
MiB = 1024 * 1024
RATE_CALLS = 5_000
"""Calls the rate-limit check makes at most before it fails (the reference
peer bucket holds 200; a node with larger limits takes longer)."""


_Over = Callable[[int, int, bytes], dict[str, Any]]
"""Pull parameters from the current (epoch, at_seq, chain digest)."""


class Failed(Exception):
    """A check's expectation was not met (the message says what was seen)."""


@dataclass
class Result:
    must: str
    text: str
    ok: bool
    detail: str = ""


@dataclass
class Peer:
    """The identity the kit speaks for (a node directory the target trusts)."""

    node_id: str
    signing_key: Any
    box_key: Any
    tls_key: bytes
    tls_cert: bytes
    card_bytes: bytes
    directory: Path
    speaks: Speaks = DEFAULT_SPEAKS


@dataclass
class Credential:
    role: str
    node_id: str
    cert: bytes
    key: bytes
    node_cert: bytes


@dataclass
class Kit:
    address: str
    peer: Peer
    target: IdentityCard
    credentials: dict[str, Credential]
    results: list[Result] = field(default_factory=list)
    snapshot: tuple[int, int, bytes] | None = None
    head: federation_pb2.StreamHead | None = None
    prefixes: list[str] = field(default_factory=list)
    """Rejection messages that did not begin with their reason (MUST-A.3-3)."""
    prefix_checks: int = 0
    listed: tuple[str, str] | None = None
    """(country, number) of a document the target lists, for the granted detail path."""
    epoch_key: bytes = b""
    entries: list[federation_pb2.Upsert] = field(default_factory=list)
    parts: int = 0
    """How many parts the last full snapshot had (resuming needs two)."""
    unimplemented: set[str] = field(default_factory=set)
    """Checks that met UNIMPLEMENTED: a method path not served (MUST-A.1-1)."""

    # ------------------------------------------------------------ plumbing

    def check(self, must: str, text: str, body: Callable[[], None]) -> None:
        try:
            body()
        except Failed as exc:
            self.results.append(Result(must, text, False, str(exc)))
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                self.unimplemented.add(must)
            self.results.append(Result(must, text, False, _status(exc)))
        except Exception as exc:  # noqa: BLE001 - a check that crashes fails, with why
            self.results.append(Result(must, text, False, f"{type(exc).__name__}: {exc}"))
        else:
            self.results.append(Result(must, text, True))

    def channel(self, *, key: bytes | None = None, cert: bytes | None = None) -> grpc.Channel:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.target.tls_cert,
            private_key=key or self.peer.tls_key,
            certificate_chain=cert or self.peer.tls_cert,
        )
        options = [
            ("grpc.ssl_target_name_override", tls.node_dns_name(self.target.node_id)),
            ("grpc.max_send_message_length", 64 * MiB),
            ("grpc.max_receive_message_length", 64 * MiB),
        ]
        return grpc.secure_channel(self.address, credentials, options=options)

    def signed(
        self,
        payload: bytes,
        purpose: Purpose,
        *,
        signer: str | None = None,
        recipient: str | None = None,
        sign_as: Purpose | None = None,
    ) -> envelope_pb2.SignedMessage:
        signer = self.peer.node_id if signer is None else signer
        recipient = self.target.node_id if recipient is None else recipient
        signature = sign(self.peer.signing_key, sign_as or purpose, signer, recipient, payload)
        return envelope_pb2.SignedMessage(
            payload=payload,
            signature=signature,
            signer=signer,
            recipient=recipient,
            purpose=purpose.value,
        )

    def pull_params(self, **over: Any) -> bytes:
        fields: dict[str, Any] = {
            "requester": self.peer.node_id,
            "origin": self.target.node_id,
            "epoch": 0,
            "after_seq": 0,
            "after_digest": b"",
            "issued_at": int(time.time()),
            "nonce": os.urandom(16),
            "max_batches": 0,
        }
        fields.update(over)
        return federation_pb2.PullParams(**fields).SerializeToString()

    def pull(self, signed: envelope_pb2.SignedMessage) -> list[federation_pb2.PullResponse]:
        with self.channel() as ch:
            stub = ch.unary_stream(
                "/wlx.v1.Federation/Pull",
                request_serializer=federation_pb2.PullRequest.SerializeToString,
                response_deserializer=federation_pb2.PullResponse.FromString,
            )
            return list(stub(federation_pb2.PullRequest(request=signed), timeout=TIMEOUT))

    def open(self, env: envelope_pb2.SealedEnvelope, purpose: Purpose) -> bytes:
        """Open an envelope from the target as §5.4 says; the signed payload."""
        expect(env.version == 1, f"envelope version {env.version}")
        expect(env.purpose == purpose.value, f"envelope purpose {env.purpose!r}")
        expect(env.sender == self.target.node_id, f"envelope sender {env.sender!r}")
        expect(env.recipient == self.peer.node_id, f"envelope recipient {env.recipient!r}")
        plain = open_sealed(
            env.ciphertext,
            self.peer.box_key,
            purpose=purpose.value,
            sender=self.target.node_id,
            recipient=self.peer.node_id,
        )
        inner = envelope_pb2.SignedMessage.FromString(plain)
        expect(len(inner.signature) == 64, "inner signature is not 64 bytes")
        expect(inner.purpose == purpose.value, f"inner purpose {inner.purpose!r}")
        expect(inner.signer == self.target.node_id, f"inner signer {inner.signer!r}")
        expect(inner.recipient == self.peer.node_id, f"inner recipient {inner.recipient!r}")
        verify(
            self.target.sign_key,
            inner.signature,
            purpose,
            self.target.node_id,
            self.peer.node_id,
            inner.payload,
        )
        return bytes(inner.payload)

    def refused(
        self, call: Callable[[], object], code: grpc.StatusCode, *, contains: str = ""
    ) -> None:
        try:
            call()
        except grpc.RpcError as exc:
            got = exc.code()
            details = str(exc.details())
            if got == grpc.StatusCode.UNIMPLEMENTED:
                self.unimplemented.add(code.name)
            expect(got == code, f"expected {code.name}, got {_status(exc)}")
            if contains:  # a rejection's message begins with its reason (MUST-A.3-3)
                self.prefix_checks += 1
                if not details.startswith(f"{contains}: "):
                    self.prefixes.append(details)
                expect(
                    details.startswith(f"{contains}: "),
                    f"status message {details!r} does not begin with {contains!r}",
                )
            return
        raise Failed(f"expected {code.name}, the call succeeded")

    # ------------------------------------------------------------ TLS

    def tls_checks(self) -> None:
        def server_certificate() -> None:
            der, version = _handshake(self.address, self.target, self.peer)
            pinned = x509.load_pem_x509_certificate(self.target.tls_cert)
            expect(
                der == pinned.public_bytes(serialization.Encoding.DER),
                "the server's certificate is not the one of its identity card",
            )
            names = tls.dns_names(self.target.tls_cert)
            want = tls.node_dns_name(self.target.node_id)
            expect(names == [want], f"certificate names {names}, expected [{want!r}]")
            expect(version == "TLSv1.3", f"negotiated {version}")

        self.check(
            "MUST-1.3-1",
            "server presents its card's certificate, SAN <id>.node.wlx, over TLS 1.3",
            server_certificate,
        )

        def stranger() -> None:
            key = tls.generate_key()
            now = int(time.time())
            cert = tls.node_certificate(key, "STRANGER", not_before=now - 60, not_after=now + 3600)
            with self.channel(key=tls.key_to_pem(key), cert=cert) as ch:
                stub = ch.unary_stream(
                    "/wlx.v1.Federation/Pull",
                    request_serializer=federation_pb2.PullRequest.SerializeToString,
                    response_deserializer=federation_pb2.PullResponse.FromString,
                )
                signed = self.signed(self.pull_params(), Purpose.PULL)
                self.refused(
                    lambda: list(stub(federation_pb2.PullRequest(request=signed), timeout=5)),
                    grpc.StatusCode.UNAVAILABLE,
                )

        self.check(
            "MUST-1.3-2",
            "a client certificate that is no trust anchor is refused at the handshake",
            stranger,
        )

        def peer_may_not_look_up() -> None:
            with self.channel() as ch:
                check = ch.unary_unary(
                    "/wlx.v1.Lookup/Check",
                    request_serializer=lookup_pb2.CheckRequest.SerializeToString,
                    response_deserializer=lookup_pb2.CheckResponse.FromString,
                )
                request = lookup_pb2.CheckRequest(
                    person=lookup_pb2.Person(
                        documents=[lookup_pb2.Document(type="P", country="CHN", number="E1")]
                    ),
                    purpose="conformance",
                )
                self.refused(
                    lambda: check(request, timeout=TIMEOUT), grpc.StatusCode.PERMISSION_DENIED
                )

        self.check(
            "MUST-1.3-3", "a peer may not call Lookup (PERMISSION_DENIED)", peer_may_not_look_up
        )

    # ------------------------------------------------------------ pull and snapshot

    def pull_checks(self) -> None:
        def no_cursor() -> None:
            items = self.pull(self.signed(self.pull_params(), Purpose.PULL))
            expect(len(items) == 2, f"{len(items)} items, expected head and resync")
            expect(items[0].WhichOneof("item") == "head", "the first item is not a StreamHead")
            expect(items[1].WhichOneof("item") == "resync", "the second item is not a resync")
            self.head = items[0].head
            expect(items[1].resync.reason == "no-cursor", f"reason {items[1].resync.reason!r}")
            expect(
                items[1].resync.epoch == items[0].head.epoch >= 1,
                "the resync does not carry the stream's epoch",
            )

        self.check(
            "MUST-8.2-1",
            "Pull with epoch 0: StreamHead, then exactly one ResyncRequired no-cursor",
            no_cursor,
        )
        self.check(
            "MUST-7.2-1",
            "Snapshot: every part opens, verifies, chains; part 0 keys the agreed normalisation",
            self._snapshot,
        )
        if self.snapshot is None:
            return
        epoch, at_seq, chain = self.snapshot

        def at_cursor() -> None:
            params = self.pull_params(epoch=epoch, after_seq=at_seq, after_digest=chain)
            items = self.pull(self.signed(params, Purpose.PULL))
            expect(items and items[0].WhichOneof("item") == "head", "no StreamHead first")
            kinds = [i.WhichOneof("item") for i in items[1:]]
            expect("resync" not in kinds, f"a resync at the snapshot's position: {items[-1]}")
            prev, last = chain, at_seq
            for item in items[1:]:
                payload = self.open(item.batch, Purpose.BATCH)
                batch = federation_pb2.BatchPayload.FromString(payload)
                expect(batch.first_seq == last + 1, "batches do not follow the cursor")
                expect(batch.prev_digest == prev, "a batch does not chain")
                prev, last = payload_digest(payload), batch.last_seq

        self.check(
            "MUST-8.2-9",
            "Pull at the snapshot's position: no resync; batches follow and chain",
            at_cursor,
        )
        self.compaction_checks()  # before MUST-8.2-2, which may start a new epoch
        cases: list[tuple[str, str, _Over, str]] = [
            (
                "MUST-8.2-3",
                "Pull past the stream's head: resync unknown-position",
                lambda e, _s, c: {"epoch": e, "after_seq": 10**12, "after_digest": c},
                "unknown-position",
            ),
            (
                "MUST-8.2-7",
                "Pull with another digest at the position: resync fork",
                lambda e, s_, _c: {"epoch": e, "after_seq": s_, "after_digest": bytes(32)},
                "fork",
            ),
            (
                # Last: an origin may start a new epoch when a peer holds a higher
                # one (it was restored from a backup); the answer names it.
                "MUST-8.2-2",
                "Pull in another epoch: resync new-epoch",
                lambda e, s_, c: {"epoch": e + 1, "after_seq": s_, "after_digest": c},
                "new-epoch",
            ),
        ]
        for must, text, over, reason in cases:

            def resync(over: _Over = over, reason: str = reason) -> None:
                self.ensure_current()
                assert self.snapshot is not None
                items = self.pull(
                    self.signed(self.pull_params(**over(*self.snapshot)), Purpose.PULL)
                )
                last = items[-1] if items else None
                expect(
                    last is not None and last.WhichOneof("item") == "resync",
                    "no ResyncRequired",
                )
                assert last is not None
                expect(last.resync.reason == reason, f"reason {last.resync.reason!r}")
                expect(
                    last.resync.epoch == items[0].head.epoch,
                    "the resync does not carry the stream's epoch",
                )

            self.check(must, text, resync)

    def ensure_current(self) -> None:
        """Re-take the snapshot if the target started a new epoch since (an
        operator's `wlx epoch new`, a migration at start): epochs may change
        at any time, and the checks that follow need the current one."""
        for _ in range(3):
            if self.snapshot is None:
                return
            epoch, at_seq, chain = self.snapshot
            params = self.pull_params(epoch=epoch, after_seq=at_seq, after_digest=chain)
            items = self.pull(self.signed(params, Purpose.PULL))
            if not items or items[-1].WhichOneof("item") != "resync":
                return
            self.entries.clear()
            self._snapshot()

    def snapshot_call(
        self, resume: federation_pb2.SnapshotResume | None = None, *, stop_after: int = 0
    ) -> list[tuple[bytes, federation_pb2.SnapshotPart]]:
        """Ask for a snapshot (or its continuation); the parts opened, as
        (payload, part).  With ``stop_after``, the stream is cancelled once
        that many parts arrived: an interrupted snapshot (§7.4)."""
        params = federation_pb2.SnapshotParams(
            requester=self.peer.node_id,
            origin=self.target.node_id,
            issued_at=int(time.time()),
            nonce=os.urandom(16),
            resume=resume,
        ).SerializeToString()
        signed = self.signed(params, Purpose.SNAPSHOT)
        parts = []
        with self.channel() as ch:
            stub = ch.unary_stream(
                "/wlx.v1.Federation/Snapshot",
                request_serializer=federation_pb2.SnapshotRequest.SerializeToString,
                response_deserializer=envelope_pb2.SealedEnvelope.FromString,
            )
            call = stub(federation_pb2.SnapshotRequest(request=signed), timeout=TIMEOUT)
            for env in call:
                payload = self.open(env, Purpose.SNAPSHOT_PART)
                parts.append((payload, federation_pb2.SnapshotPart.FromString(payload)))
                if stop_after and len(parts) >= stop_after:
                    call.cancel()  # type: ignore[no-untyped-call]  # unannotated in grpc-stubs
                    break
        return parts

    def _snapshot(self) -> None:
        got = self.snapshot_call()
        expect(got, "no parts")
        prev = b""
        entries = 0
        first: federation_pb2.SnapshotPart | None = None
        for index, (payload, part) in enumerate(got):
            expect(part.version == 1, "part version is not 1")
            expect(part.index == index, f"part {index} has index {part.index}")
            expect(part.origin == self.target.node_id, "part names another origin")
            expect(part.recipient == self.peer.node_id, "part names another recipient")
            expect(part.prev_part_digest == prev, f"part {index} does not chain")
            expect(len(part.snapshot_id) == 16, "snapshot id is not 16 bytes")
            if index == 0:
                first = part
                expect(part.HasField("epoch_key"), "part 0 has no epoch key")
                expect(len(part.epoch_key.token_key) == 32, "the epoch key is not 32 bytes")
                agreed = negotiate(self.target.speaks, self.peer.speaks).normalisation
                expect(
                    part.epoch_key.normalisation == agreed,
                    f"normalisation {part.epoch_key.normalisation!r}, expected {agreed!r} "
                    "(the highest both cards advertise, appendix B.2)",
                )
                if part.at_seq == 0:
                    expect(
                        part.chain_digest
                        == genesis_digest(self.target.node_id, self.peer.node_id, part.epoch),
                        "chain digest at 0 is not the genesis digest",
                    )
            else:
                assert first is not None
                expect(not part.HasField("epoch_key"), "a later part carries a key")
                for name in ("snapshot_id", "epoch", "at_seq", "chain_digest"):
                    expect(getattr(part, name) == getattr(first, name), f"{name} changed")
            entries += len(part.entries)
            self.entries.extend(part.entries)
            final = part.final
            expect(final == (index == len(got) - 1), "final is not on the last part only")
            if final:
                expect(part.total_entries == entries, "total_entries does not match")
            prev = payload_digest(payload)
        assert first is not None
        self.snapshot = (first.epoch, first.at_seq, first.chain_digest)
        self.epoch_key = bytes(first.epoch_key.token_key)
        self.parts = len(got)

    # ------------------------------------------------------------ resuming, compaction

    def resume_checks(self) -> None:
        """§7.4: a snapshot interrupted after part 0 continues from part 1
        with the token the origin made; with one it did not make (or another
        count), a new snapshot starts.  One interrupted snapshot serves both
        checks (the bad tokens first: a new snapshot leaves the old token
        valid while the stream still continues from its position)."""
        if self.parts < 2:
            return  # resuming needs a snapshot of two parts (over 1,000 listings)
        cut: list[tuple[bytes, federation_pb2.SnapshotPart]] = []

        def interrupted() -> tuple[bytes, federation_pb2.SnapshotPart]:
            if not cut:
                self.ensure_current()
                got = self.snapshot_call(stop_after=1)
                expect(got, "no parts")
                payload, part = got[0]
                expect(part.index == 0 and not part.final, "the snapshot has one part now")
                expect(part.resume_token, "part 0 of several carries no resume_token")
                cut.append((payload, part))
            return cut[0]

        def resume(token: bytes, entries: int) -> federation_pb2.SnapshotResume:
            payload, first = interrupted()
            return federation_pb2.SnapshotResume(
                snapshot_id=first.snapshot_id,
                next_index=1,
                prev_part_digest=payload_digest(payload),
                token=token,
                entries=entries,
            )

        def restarted() -> None:
            _, first = interrupted()
            for token, count in (
                (os.urandom(len(first.resume_token)), len(first.entries)),
                (first.resume_token, len(first.entries) + 1),
            ):
                got = self.snapshot_call(resume(token, count), stop_after=1)
                expect(got, "no parts")
                part = got[0][1]
                expect(part.index == 0, f"answered part {part.index}, expected a new part 0")
                expect(part.HasField("epoch_key"), "the new part 0 has no epoch key")
                expect(part.snapshot_id != first.snapshot_id, "the new snapshot reuses the id")

        self.check(
            "MUST-7.4-2",
            "Snapshot resumed with a token it did not make, or another count: a new part 0",
            restarted,
        )

        def continued() -> None:
            payload, first = interrupted()
            rest = self.snapshot_call(resume(first.resume_token, len(first.entries)))
            if rest and rest[0][1].index == 0:
                # The list changed meanwhile (the stream moved on, §7.4 "otherwise"):
                # interrupt a snapshot again, once.
                cut.clear()
                payload, first = interrupted()
                rest = self.snapshot_call(resume(first.resume_token, len(first.entries)))
            expect(rest, "no parts")
            prev, entries = payload_digest(payload), len(first.entries)
            handles = [bytes(e.handle) for e in first.entries]
            for offset, (body, part) in enumerate(rest):
                expect(part.index == 1 + offset, f"part {part.index}, expected {1 + offset}")
                expect(part.prev_part_digest == prev, f"part {part.index} does not chain")
                expect(not part.HasField("epoch_key"), "a continued part carries a key")
                for name in ("snapshot_id", "epoch", "at_seq", "chain_digest"):
                    expect(getattr(part, name) == getattr(first, name), f"{name} changed")
                expect(part.final == (offset == len(rest) - 1), "final not on the last part only")
                entries += len(part.entries)
                handles += [bytes(e.handle) for e in part.entries]
                prev = payload_digest(body)
            expect(rest[-1][1].total_entries == entries, "total_entries does not count all parts")
            expect(len(set(handles)) == len(handles), "a listing is sent twice")
            full = {bytes(e.handle) for e in self.entries}
            expect(set(handles) == full, "the parts hold other listings than a whole snapshot")

        self.check(
            "MUST-7.4-1",
            "Snapshot interrupted after part 0, resumed with its token: the rest, chained",
            continued,
        )

    def compaction_checks(self) -> None:
        """§8.2 row 4: a stream past genesis whose first batches are gone
        answers a pull from genesis with compacted (or, if it still keeps
        batches from 1, with them, chained: row 9)."""
        if self.snapshot is None or self.snapshot[1] == 0:
            return  # the stream is at genesis: nothing is compacted

        def from_genesis() -> None:
            self.ensure_current()
            assert self.snapshot is not None
            epoch = self.snapshot[0]
            genesis = genesis_digest(self.target.node_id, self.peer.node_id, epoch)
            params = self.pull_params(epoch=epoch, after_seq=0, after_digest=genesis)
            items = self.pull(self.signed(params, Purpose.PULL))
            expect(items and items[0].WhichOneof("item") == "head", "no StreamHead first")
            last = items[-1]
            if last.WhichOneof("item") == "resync":
                expect(last.resync.reason == "compacted", f"reason {last.resync.reason!r}")
                expect(last.resync.epoch == epoch, "the resync does not carry the epoch")
                return
            prev, seq = genesis, 0
            for item in items[1:]:
                payload = self.open(item.batch, Purpose.BATCH)
                batch = federation_pb2.BatchPayload.FromString(payload)
                expect(batch.first_seq == seq + 1, "batches from genesis do not start at 1")
                expect(batch.prev_digest == prev, "a batch from genesis does not chain")
                prev, seq = payload_digest(payload), batch.last_seq
            expect(seq >= 1, "neither compacted nor batches, at genesis of a stream past it")

        self.check(
            "MUST-8.2-4",
            "Pull from genesis when the stream's first batches are gone: resync compacted",
            from_genesis,
        )

    # ------------------------------------------------------------ rate limits

    def rate_checks(self) -> None:
        """A.3: a caller over its rate gets RESOURCE_EXHAUSTED, reason
        ``rate limit`` (or ``daily quota``).  The kit's peer spends its own
        bucket with empty Acknowledge calls (nothing to record), last of all:
        it is throttled for a few seconds after."""

        def exhausted() -> None:
            with self.channel() as ch:
                stub = ch.unary_unary(
                    "/wlx.v1.Federation/Acknowledge",
                    request_serializer=federation_pb2.AcknowledgeRequest.SerializeToString,
                    response_deserializer=federation_pb2.AcknowledgeResponse.FromString,
                )
                for _ in range(RATE_CALLS):
                    try:
                        stub(federation_pb2.AcknowledgeRequest(), timeout=TIMEOUT)
                    except grpc.RpcError as exc:
                        expect(
                            exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"expected RESOURCE_EXHAUSTED, got {_status(exc)}",
                        )
                        details = str(exc.details())
                        self.prefix_checks += 1
                        if not details.startswith(("rate limit: ", "daily quota ")):
                            self.prefixes.append(details)
                            raise Failed(f"status message {details!r} names no limit") from None
                        return
            raise Failed(f"no RESOURCE_EXHAUSTED after {RATE_CALLS} calls")

        self.check(
            "MUST-A.3-4",
            "a peer over its rate: RESOURCE_EXHAUSTED, message 'rate limit: ...'",
            exhausted,
        )

    # ------------------------------------------------------------ signed requests

    def request_checks(self) -> None:
        pull = federation_pb2.PullRequest
        code = grpc.StatusCode
        now = int(time.time())
        cases: list[tuple[str, str, Callable[[], envelope_pb2.SignedMessage], grpc.StatusCode, str]]
        cases = [
            (
                "MUST-5.5-1",
                "a SignedMessage with a 63-byte signature: INVALID_ARGUMENT malformed",
                lambda: _with(self.signed(self.pull_params(), Purpose.PULL), signature=bytes(63)),
                code.INVALID_ARGUMENT,
                "malformed",
            ),
            (
                "MUST-5.5-2",
                "signed by another node than the TLS peer: PERMISSION_DENIED",
                lambda: self.signed(self.pull_params(), Purpose.PULL, signer="ZZ-UNKNOWN"),
                code.PERMISSION_DENIED,
                "",
            ),
            (
                "MUST-5.5-4",
                "purpose snapshot on Pull: INVALID_ARGUMENT malformed",
                lambda: self.signed(self.pull_params(), Purpose.SNAPSHOT),
                code.INVALID_ARGUMENT,
                "malformed",
            ),
            (
                "MUST-5.5-5",
                "addressed to another node: PERMISSION_DENIED wrong-recipient",
                lambda: self.signed(self.pull_params(), Purpose.PULL, recipient="ZZ-OTHER"),
                code.PERMISSION_DENIED,
                "wrong-recipient",
            ),
            (
                "MUST-5.5-6",
                "a signature that does not verify: UNAUTHENTICATED bad-signature",
                lambda: self.signed(self.pull_params(), Purpose.PULL, sign_as=Purpose.SNAPSHOT),
                code.UNAUTHENTICATED,
                "bad-signature",
            ),
            (
                "MUST-5.5-7",
                "a 15-byte nonce: INVALID_ARGUMENT malformed",
                lambda: self.signed(self.pull_params(nonce=bytes(15)), Purpose.PULL),
                code.INVALID_ARGUMENT,
                "malformed",
            ),
            (
                "MUST-5.5-8",
                "issued 301 s ago: UNAUTHENTICATED stale-request",
                lambda: self.signed(self.pull_params(issued_at=now - 400), Purpose.PULL),
                code.UNAUTHENTICATED,
                "stale-request",
            ),
            (
                "MUST-5.5-8",
                "issued 301 s ahead: UNAUTHENTICATED stale-request",
                lambda: self.signed(self.pull_params(issued_at=now + 400), Purpose.PULL),
                code.UNAUTHENTICATED,
                "stale-request",
            ),
            (
                "MUST-5.5-9",
                "payload requester is not the signer: PERMISSION_DENIED wrong-sender",
                lambda: self.signed(self.pull_params(requester="ZZ-OTHER"), Purpose.PULL),
                code.PERMISSION_DENIED,
                "wrong-sender",
            ),
            (
                "MUST-5.5-10",
                "payload origin is another node: PERMISSION_DENIED wrong-recipient",
                lambda: self.signed(self.pull_params(origin="ZZ-OTHER"), Purpose.PULL),
                code.PERMISSION_DENIED,
                "wrong-recipient",
            ),
        ]
        for must, text, make, status, reason in cases:

            def case(
                make: Callable[[], envelope_pb2.SignedMessage] = make,
                status: grpc.StatusCode = status,
                reason: str = reason,
            ) -> None:
                signed = make()
                self.refused(lambda: self.pull(signed), status, contains=reason)

            self.check(must, text, case)

        def undecodable() -> None:
            with self.channel() as ch:
                raw = ch.unary_stream(
                    "/wlx.v1.Federation/Pull", request_serializer=None, response_deserializer=None
                )
                self.refused(
                    lambda: list(raw(b"\xff\xff\xff\xff\xff", timeout=TIMEOUT)),
                    code.INVALID_ARGUMENT,
                )

        self.check("MUST-A.3-1", "bytes that are no PullRequest: INVALID_ARGUMENT", undecodable)

        def oversized() -> None:
            signed = self.signed(self.pull_params(), Purpose.PULL)
            big = pull(request=_with(signed, payload=bytes(10 * MiB)))
            self.refused(lambda: self.pull(big.request), code.RESOURCE_EXHAUSTED)

        self.check("MUST-A.3-2", "a message over 9 MiB: RESOURCE_EXHAUSTED", oversized)

    # ------------------------------------------------------------ receipts

    def receipt(self, **over: Any) -> envelope_pb2.SignedMessage:
        assert self.snapshot is not None
        epoch, at_seq, chain = self.snapshot
        fields: dict[str, Any] = {
            "origin": self.target.node_id,
            "recipient": self.peer.node_id,
            "epoch": epoch,
            "kind": "snapshot",
            "first_seq": 0,
            "last_seq": at_seq,
            "digest": chain,
            "applied_at": int(time.time()),
        }
        fields.update(over)
        return self.signed(federation_pb2.Receipt(**fields).SerializeToString(), Purpose.RECEIPT)

    def acknowledge(self, receipts: list[envelope_pb2.SignedMessage]) -> int:
        with self.channel() as ch:
            stub = ch.unary_unary(
                "/wlx.v1.Federation/Acknowledge",
                request_serializer=federation_pb2.AcknowledgeRequest.SerializeToString,
                response_deserializer=federation_pb2.AcknowledgeResponse.FromString,
            )
            answer = stub(federation_pb2.AcknowledgeRequest(receipts=receipts), timeout=TIMEOUT)
        return int(answer.recorded)

    def receipt_checks(self) -> None:
        if self.snapshot is None:
            self.results.append(
                Result("MUST-8.4-1", "receipts (no snapshot to acknowledge)", False)
            )
            return

        def recorded() -> None:
            got = self.acknowledge([self.receipt()])
            expect(got == 1, f"recorded {got}, expected 1")
            got = self.acknowledge([self.receipt()])
            expect(got == 1, f"a repeat: recorded {got}, expected 1")

        self.check("MUST-8.4-1", "a snapshot receipt is recorded, a repeat counts too", recorded)

        def skipped() -> None:
            bad = [
                self.receipt(digest=bytes(32)),  # unknown-batch
                self.receipt(kind="batch", first_seq=1, last_seq=10**9),  # unknown-batch
                _with(self.receipt(), signature=bytes(64)),  # bad-signature
                self.receipt(origin="ZZ-OTHER"),  # wrong-sender / wrong-recipient
                self.signed(b"\xff\xff", Purpose.RECEIPT),  # malformed
            ]
            got = self.acknowledge([*bad, self.receipt()])
            expect(got == 1, f"recorded {got}, expected only the valid receipt")

        self.check(
            "MUST-8.4-2",
            "a receipt that fails is skipped, the others recorded (count in the answer)",
            skipped,
        )
        self.check(
            "MUST-8.4-3",
            "a receipt signed by another node than the TLS peer: PERMISSION_DENIED",
            lambda: self.refused(
                lambda: self.acknowledge(
                    [self.receipt(), self.signed(b"", Purpose.RECEIPT, signer="ZZ")]
                ),
                grpc.StatusCode.PERMISSION_DENIED,
            ),
        )
        self.check(
            "MUST-8.4-4",
            "more than 1,000 receipts in one call: INVALID_ARGUMENT",
            lambda: self.refused(
                lambda: self.acknowledge([self.receipt()] * 1001), grpc.StatusCode.INVALID_ARGUMENT
            ),
        )
        self.check(
            "MUST-8.4-5",
            "an entry that is no SignedMessage (63-byte signature): INVALID_ARGUMENT",
            lambda: self.refused(
                lambda: self.acknowledge([_with(self.receipt(), signature=bytes(63))]),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        )

    # ------------------------------------------------------------ detail, announce

    def detail_checks(self) -> None:
        def no_hit() -> None:
            params = federation_pb2.DetailParams(
                requester=self.peer.node_id,
                origin=self.target.node_id,
                ref="CONFORMANCE-NO-SUCH-REF",
                requesting_authority="conformance kit",
                officer="conformance",
                purpose="conformance test",
                issued_at=int(time.time()),
                nonce=os.urandom(16),
                hit_proof=os.urandom(32),
            ).SerializeToString()
            with self.channel() as ch:
                stub = ch.unary_unary(
                    "/wlx.v1.Federation/RequestDetail",
                    request_serializer=federation_pb2.DetailRequest.SerializeToString,
                    response_deserializer=envelope_pb2.SealedEnvelope.FromString,
                )
                env = stub(
                    federation_pb2.DetailRequest(
                        request=self.signed(params, Purpose.DETAIL_REQUEST)
                    ),
                    timeout=TIMEOUT,
                )
            answer = federation_pb2.DetailAnswer.FromString(self.open(env, Purpose.DETAIL_ANSWER))
            expect(answer.origin == self.target.node_id, "answer names another origin")
            expect(answer.recipient == self.peer.node_id, "answer names another recipient")
            expect(answer.request_digest == payload_digest(params), "request_digest mismatch")
            expect(not answer.granted and not answer.record, "granted without a valid proof")
            expect(answer.denial == "no-hit", f"denial {answer.denial!r}")

        self.check(
            "MUST-11.1-1",
            "RequestDetail without a valid hit proof: a sealed, signed no-hit answer",
            no_hit,
        )

        def detail_malformed() -> None:
            params = federation_pb2.DetailParams(
                requester=self.peer.node_id,
                origin=self.target.node_id,
                ref="X",
                purpose="",
                issued_at=int(time.time()),
                nonce=os.urandom(16),
            ).SerializeToString()
            with self.channel() as ch:
                stub = ch.unary_unary(
                    "/wlx.v1.Federation/RequestDetail",
                    request_serializer=federation_pb2.DetailRequest.SerializeToString,
                    response_deserializer=envelope_pb2.SealedEnvelope.FromString,
                )
                request = federation_pb2.DetailRequest(
                    request=self.signed(params, Purpose.DETAIL_REQUEST)
                )
                self.refused(
                    lambda: stub(request, timeout=TIMEOUT),
                    grpc.StatusCode.INVALID_ARGUMENT,
                    contains="malformed",
                )

        self.check(
            "MUST-11.1-2", "a detail request without a purpose: INVALID_ARGUMENT", detail_malformed
        )

    def granted_checks(self) -> None:
        """With a document the target lists: find it in the snapshot by its
        token, open its hit data, prove the hit and get the record (§4, §11)."""
        if self.listed is None or self.snapshot is None:
            return
        self.ensure_current()
        country, number = self.listed
        state: dict[str, Any] = {}

        def found() -> None:
            assert self.snapshot is not None
            ikey = document_key(country, number).value
            epoch = self.snapshot[0]
            key = EpochKey(self.epoch_key, self.target.node_id, self.peer.node_id, epoch)
            token = key.token(ikey)
            for upsert in self.entries:
                for entry in upsert.tokens:
                    if entry.token == token:
                        hit = _open_entry(key, ikey, upsert, entry)
                        expect(hit.origin == self.target.node_id, f"hit origin {hit.origin!r}")
                        expect(key.handle(hit.ref) == upsert.handle, "handle is not of the ref")
                        state.update(key=key, ikey=ikey, ref=hit.ref)
                        return
            raise Failed("no token of the listed document in the snapshot")

        self.check(
            "MUST-4.3-1",
            "the listed document's token is in the snapshot; its hit data opens"
            " (protocol 1: naming it; protocol 2: sealed once per listing)",
            found,
        )
        if not state:
            return

        def granted() -> None:
            nonce = os.urandom(16)
            message = (
                b"wlx/v1 hit-proof\x00"
                + lp(self.peer.node_id)
                + lp(self.target.node_id)
                + lp(state["ref"])
                + lp(nonce)
            )
            params = federation_pb2.DetailParams(
                requester=self.peer.node_id,
                origin=self.target.node_id,
                ref=state["ref"],
                requesting_authority="conformance kit",
                officer="conformance",
                purpose="conformance test",
                issued_at=int(time.time()),
                nonce=nonce,
                hit_proof=state["key"].hit_proof(state["ikey"], message),
            ).SerializeToString()
            with self.channel() as ch:
                stub = ch.unary_unary(
                    "/wlx.v1.Federation/RequestDetail",
                    request_serializer=federation_pb2.DetailRequest.SerializeToString,
                    response_deserializer=envelope_pb2.SealedEnvelope.FromString,
                )
                env = stub(
                    federation_pb2.DetailRequest(
                        request=self.signed(params, Purpose.DETAIL_REQUEST)
                    ),
                    timeout=TIMEOUT,
                )
            answer = federation_pb2.DetailAnswer.FromString(self.open(env, Purpose.DETAIL_ANSWER))
            expect(answer.granted, f"denied: {answer.denial!r}")
            expect(answer.request_digest == payload_digest(params), "request_digest mismatch")
            record = json.loads(answer.record, parse_constant=_no_constant)
            canonical = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
            expect(answer.record == canonical, "the record is not in canonical JSON")
            expect(record.get("id") == state["ref"], "the record is not the one asked")
            expect(
                [d["number"] for d in record["documents"] if d["country"] == country],
                "the record does not hold the document",
            )

        self.check(
            "MUST-R-3",
            "a detail request with a valid hit proof is granted the record, in canonical JSON",
            granted,
        )

    def announce_checks(self) -> None:
        def announce(card: bytes) -> str:
            with self.channel() as ch:
                stub = ch.unary_unary(
                    "/wlx.v1.Federation/AnnounceCard",
                    request_serializer=federation_pb2.AnnounceRequest.SerializeToString,
                    response_deserializer=federation_pb2.AnnounceResponse.FromString,
                )
                return str(
                    stub(federation_pb2.AnnounceRequest(card=card), timeout=TIMEOUT).fingerprint
                )

        def same_card() -> None:
            got = announce(self.peer.card_bytes)
            want = self.peer.signing_key.public().fingerprint()
            expect(got == want, f"fingerprint {got}, expected {want}")

        self.check(
            "MUST-1.4-1", "AnnounceCard with the trusted card: a no-op, its fingerprint", same_card
        )
        self.check(
            "MUST-1.4-2",
            "AnnounceCard with bytes that are no card: INVALID_ARGUMENT",
            lambda: self.refused(lambda: announce(b"{}"), grpc.StatusCode.INVALID_ARGUMENT),
        )
        self.check(
            "MUST-1.4-3",
            "AnnounceCard of the target's own card (another node's): PERMISSION_DENIED",
            lambda: self.refused(
                lambda: announce(self.target.raw), grpc.StatusCode.PERMISSION_DENIED
            ),
        )

    # ------------------------------------------------------------ witness

    def witness_checks(self) -> None:
        def cosign() -> None:
            from wlx.node.audit import exchange_log
            from wlx.node.audit.checkpoints import make_checkpoint
            from wlx.node.audit.offline.names import checkpoint_text, witness_verifier
            from wlx.node.directory import open_node

            node = open_node(self.peer.directory)
            try:
                checkpoint = make_checkpoint(node)
                with node.store.read() as tx:
                    proof = exchange_log.consistency_proof(tx, 0, checkpoint.size)
            finally:
                node.close()
            request = audit_pb2.AddCheckpointRequest(
                checkpoint=checkpoint.note, old_size=0, consistency_proof=proof
            )
            with self.channel() as ch:
                answer = audit_pb2_grpc.WitnessStub(ch).AddCheckpoint(request, timeout=TIMEOUT)
                if answer.WhichOneof("result") == "conflict_size":  # cosigned before: from there
                    raise Failed(
                        f"the witness already cosigned size {answer.conflict_size}; "
                        "use a fresh peer directory"
                    )
            verify_cosignature(
                checkpoint_text(self.peer.node_id, checkpoint.size, checkpoint.root),
                answer.cosignature,
                witness_verifier(self.target.node_id, self.target.sign_key),
            )

        self.check("MUST-A.5-1", "Witness.AddCheckpoint: a cosignature that verifies", cosign)

        def garbage() -> None:
            with self.channel() as ch:
                stub = audit_pb2_grpc.WitnessStub(ch)
                request = audit_pb2.AddCheckpointRequest(checkpoint=b"not a note\n")
                self.refused(
                    lambda: stub.AddCheckpoint(request, timeout=TIMEOUT),
                    grpc.StatusCode.INVALID_ARGUMENT,
                    contains="malformed",
                )

        self.check(
            "MUST-A.5-2", "a checkpoint that is no note: INVALID_ARGUMENT malformed", garbage
        )

    # ------------------------------------------------------------ officer and auditor

    def officer_checks(self, credential: Credential) -> None:
        def channel() -> grpc.Channel:
            return self.channel(key=credential.key, cert=credential.cert)

        def call(request: lookup_pb2.CheckRequest) -> lookup_pb2.CheckResponse:
            with channel() as ch:
                stub = ch.unary_unary(
                    "/wlx.v1.Lookup/Check",
                    request_serializer=lookup_pb2.CheckRequest.SerializeToString,
                    response_deserializer=lookup_pb2.CheckResponse.FromString,
                )
                return stub(request, timeout=TIMEOUT)  # type: ignore[no-any-return]

        doc = lookup_pb2.Document(type="P", country="XXA", number="CONFORMANCE1")

        def answered() -> None:
            response = call(
                lookup_pb2.CheckRequest(
                    person=lookup_pb2.Person(documents=[doc]), purpose="conformance test"
                )
            )
            kinds = {"document", "name+dob", "name+dob-month", "name+dob-year"}
            for hit in response.hits:
                expect(hit.matched_on in kinds, f"matched_on {hit.matched_on!r}")

        self.check("MUST-9.1-1", "Lookup.Check answers an officer", answered)
        self.check(
            "MUST-9.1-2",
            "Check without a purpose: INVALID_ARGUMENT",
            lambda: self.refused(
                lambda: call(lookup_pb2.CheckRequest(person=lookup_pb2.Person(documents=[doc]))),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        )
        self.check(
            "MUST-9.1-3",
            "a person with 9 documents: INVALID_ARGUMENT, before any work",
            lambda: self.refused(
                lambda: call(
                    lookup_pb2.CheckRequest(
                        person=lookup_pb2.Person(documents=[doc] * 9), purpose="conformance test"
                    )
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        )

        def officer_may_not_pull() -> None:
            with channel() as ch:
                stub = ch.unary_stream(
                    "/wlx.v1.Federation/Pull",
                    request_serializer=federation_pb2.PullRequest.SerializeToString,
                    response_deserializer=federation_pb2.PullResponse.FromString,
                )
                signed = self.signed(self.pull_params(), Purpose.PULL)
                self.refused(
                    lambda: list(stub(federation_pb2.PullRequest(request=signed), timeout=TIMEOUT)),
                    grpc.StatusCode.PERMISSION_DENIED,
                )

        self.check(
            "MUST-1.3-4",
            "an officer may not call Federation (PERMISSION_DENIED)",
            officer_may_not_pull,
        )

    def auditor_checks(self, credential: Credential) -> None:
        def info() -> None:
            with self.channel(key=credential.key, cert=credential.cert) as ch:
                answer = audit_pb2_grpc.AuditorStub(ch).GetLogInfo(
                    audit_pb2.GetLogInfoRequest(), timeout=TIMEOUT
                )
            expect(answer.node_id == self.target.node_id, f"node_id {answer.node_id!r}")
            expect(answer.identity_card == self.target.raw, "identity_card is not the target's")

        self.check("MUST-A.5-3", "Auditor.GetLogInfo names the node and its card", info)

        def checkpoint() -> None:
            from wlx.crypto.note import open_note
            from wlx.node.audit.offline.names import log_origin, log_verifier

            with self.channel(key=credential.key, cert=credential.cert) as ch:
                signed = audit_pb2_grpc.AuditorStub(ch).GetCheckpoint(
                    audit_pb2.GetCheckpointRequest(), timeout=TIMEOUT
                )
            text, _ = open_note(
                signed.note, [log_verifier(self.target.node_id, self.target.sign_key)]
            )
            lines = text.split("\n")
            expect(lines[0] == log_origin(self.target.node_id), f"origin {lines[0]!r}")
            expect(lines[1] == str(signed.size), "the note's size is not the answer's")

        self.check(
            "MUST-A.5-4",
            "Auditor.GetCheckpoint: a note of wlx.exchange/<id> signed by the node's key",
            checkpoint,
        )

    # ------------------------------------------------------------ all

    def run(self) -> None:
        self.tls_checks()
        self.pull_checks()
        self.resume_checks()
        self.request_checks()
        self.receipt_checks()
        self.detail_checks()
        self.granted_checks()
        self.announce_checks()
        self.witness_checks()
        if "officer" in self.credentials:
            self.officer_checks(self.credentials["officer"])
        if "auditor" in self.credentials:
            self.auditor_checks(self.credentials["auditor"])
        self.rate_checks()  # last: the kit's peer is throttled after it
        self.results.append(
            Result(
                "MUST-A.1-1",
                "every method path called is served (no UNIMPLEMENTED)",
                not self.unimplemented,
                ", ".join(sorted(self.unimplemented)),
            )
        )
        self.results.append(
            Result(
                "MUST-A.3-3",
                f"each rejection's status message begins with its reason ({self.prefix_checks})",
                self.prefix_checks > 0 and not self.prefixes,
                "; ".join(self.prefixes[:3]),
            )
        )


# ---------------------------------------------------------------- helpers


def _no_constant(name: str) -> Any:
    raise Failed(f"{name} is not JSON (RFC 8259)")


def expect(condition: object, detail: str) -> None:
    if not condition:
        raise Failed(detail)


def _status(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else ""
    return f"{getattr(code, 'name', code)}: {details}"


def _with(msg: envelope_pb2.SignedMessage, **over: Any) -> envelope_pb2.SignedMessage:
    copy = envelope_pb2.SignedMessage()
    copy.CopyFrom(msg)
    for name, value in over.items():
        setattr(copy, name, value)
    return copy


def _handshake(address: str, target: IdentityCard, peer: Peer) -> tuple[bytes, str]:
    """A raw TLS handshake (ALPN h2) with the peer's certificate: the server's
    certificate (DER) and the negotiated version."""
    host, _, port = address.rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # compared with the pinned certificate below
    context.set_alpn_protocols(["h2"])
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert.write_bytes(peer.tls_cert)
        key.write_bytes(peer.tls_key)
        key.chmod(0o600)
        context.load_cert_chain(cert, key)
    name = tls.node_dns_name(target.node_id)
    with (
        socket.create_connection((host.strip("[]"), int(port)), timeout=TIMEOUT) as sock,
        context.wrap_socket(sock, server_hostname=name) as s,
    ):
        der = s.getpeercert(binary_form=True)
        return der or b"", str(s.version())


def usage_error(message: str) -> NoReturn:
    """One line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_peer(directory: Path, target_id: str) -> tuple[Peer, IdentityCard]:
    """The peer identity of a node directory and its trusted card of the target.

    Raises:
        SystemExit: not a node directory, or it does not trust the target.
    """
    from wlx.node.directory import open_node

    node = open_node(directory)
    try:
        target = node.trusted(target_id)
        if target is None:
            usage_error(
                f"{directory} does not trust {target_id}; run "
                f"`wlx peer add {directory} TARGET-CARD.json --address HOST:PORT`"
            )
        return (
            Peer(
                node.node_id,
                node.signing_key,
                node.box_key,
                node.tls_key,
                node.tls_cert,
                node.card.raw,
                directory,
                node.card.speaks,
            ),
            target,
        )
    finally:
        node.close()


def load_credential(path: Path) -> Credential:
    import json

    try:
        obj = json.loads(path.read_text("utf-8"))
        return Credential(
            str(obj["role"]),
            str(obj["node_id"]),
            str(obj["cert"]).encode(),
            str(obj["key"]).encode(),
            str(obj.get("node_cert") or obj.get("ca_cert") or "").encode(),
        )
    except (OSError, ValueError, KeyError, TypeError):
        usage_error(f"{path} is not a wlx credential file")


def new_peer(directory: Path, node_id: str) -> None:
    """Make a throwaway peer node directory and say what the operator does next."""
    wlx = str(Path(sys.executable).with_name("wlx"))
    subprocess.run(
        [wlx, "init", str(directory), "--node-id", node_id, "--listen", "127.0.0.1:0"], check=True
    )
    card = directory.parent / f"{directory.name}.card.json"
    card.write_bytes((directory / "card.json").read_bytes())
    print(
        f"made peer {node_id} in {directory}; now\n"
        f"  on the target: wlx peer add TARGET-DIR {card} --address UNUSED-HOST:PORT\n"
        f"  here:          wlx peer add {directory} TARGET-CARD.json --address TARGET:PORT\n"
        "then run the kit with --peer-dir",
        file=sys.stderr,
    )


def _open_entry(
    key: EpochKey,
    ikey: bytes,
    upsert: federation_pb2.Upsert,
    entry: federation_pb2.TokenEntry,
) -> federation_pb2.HitData:
    """Open the hit data of a listed document's token entry (§4.3): its own
    seal (protocol 1: 284 bytes, naming the document) or the listing's, sealed
    once with matched_on empty and a 17-byte wrap per token naming the kind
    of its key (protocol 2)."""
    if upsert.sealed:
        expect(len(entry.wrap) == 17 and not entry.sealed, "a protocol-2 entry is a wrap only")
        size = len(upsert.sealed) - 12 - 16
        expect(size > 0 and size % 256 == 0, f"sealed listing is {len(upsert.sealed)} bytes")
        opened, kind = key.open_listing(ikey, upsert.handle, entry.wrap, upsert.sealed)
        hit = federation_pb2.HitData.FromString(opened)
        expect(hit.matched_on == "", f"matched_on {hit.matched_on!r} in a protocol-2 listing")
        expect(kind.value == "document", f"the wrap names {kind.value!r}")
        return hit
    hit = federation_pb2.HitData.FromString(key.open(ikey, upsert.handle, entry.sealed))
    expect(hit.matched_on == "document", f"matched_on {hit.matched_on!r}")
    expect(len(entry.sealed) == 284, f"sealed is {len(entry.sealed)} bytes")
    return hit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/conformance", description=__doc__.split("\n")[0])
    parser.add_argument("address", metavar="HOST:PORT")
    parser.add_argument("--credential", type=Path, action="append", default=[])
    parser.add_argument("--peer-dir", type=Path)
    parser.add_argument("--target", help="the target's node id (default: from a credential)")
    parser.add_argument("--new-peer", type=Path, help="make a throwaway peer directory and stop")
    parser.add_argument("--new-peer-id", default="CONFORMANCE")
    parser.add_argument(
        "--listed-document",
        metavar="TYPE:COUNTRY:NUMBER",
        help="a document the target lists and shares with the peer: adds the hit and "
        "granted detail checks",
    )
    args = parser.parse_args(argv)
    if args.new_peer:
        new_peer(args.new_peer, args.new_peer_id)
        return 0
    if args.peer_dir is None:
        parser.error("--peer-dir is required (or --new-peer DIR to make one)")
    credentials = {c.role: c for c in map(load_credential, args.credential)}
    target_id = args.target or next((c.node_id for c in credentials.values()), None)
    if target_id is None:
        parser.error("name the target with --target or give a --credential it issued")
    peer, target = load_peer(args.peer_dir, target_id)
    kit = Kit(args.address, peer, target, credentials)
    if args.listed_document:
        parts = args.listed_document.split(":")
        if len(parts) != 3:
            usage_error("--listed-document is TYPE:COUNTRY:NUMBER")
        try:
            kit.listed = (normalize_country(parts[1]), normalize_document_number(parts[2]))
        except ValueError as exc:
            usage_error(f"--listed-document: {exc}")
    kit.run()
    for r in kit.results:
        line = f"{r.must:<12} {'PASS' if r.ok else 'FAIL'}  {r.text}"
        print(line + (f"\n{'':<19}{r.detail}" if r.detail else ""))
    failed = [r for r in kit.results if not r.ok]
    musts = {r.must for r in kit.results}
    print(
        f"{len(kit.results) - len(failed)} of {len(kit.results)} checks passed "
        f"({len(musts)} MUSTs); {len(failed)} failed"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
