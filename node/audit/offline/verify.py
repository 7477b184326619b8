"""Offline verification of an audit bundle, with nothing but identity cards.

docs/audit.md §7.  :func:`verify_bundle` takes the bundle's bytes and the
cards the auditor trusts, and either returns what it proved or raises
:class:`~wlx.node.audit.offline.errors.AuditFailure` naming the *first* failed
check, in this order:

1. the bundle's format and canonical form (``wlx.node.audit.offline.bundle``);
2. the node's identity card in the bundle is, byte for byte, one of the
   trusted cards of that node;
3. every entry: UTF-8 JSON object, format 1, ``idx`` equal to its position,
   ``node`` the bundle's node, a ``kind`` and a ``time``;
4. every checkpoint, smallest first: a signed note whose every signature
   line is by a known key and verifies (the node's identity key for the
   checkpoint, trusted peers' identity keys for cosignatures); its text a
   checkpoint of origin ``wlx.exchange/<NODE>``; its size above the
   previous one and within the entries; its root hash equal to the RFC 9162
   root of the entries it covers; and an RFC 9162 consistency proof from
   the previous checkpoint, computed from the entries, verifying between
   the two signed roots;
5. the latest checkpoint covers every entry and has at least
   ``min_cosigners`` cosignatures by trusted peers;
6. every witnessed checkpoint verifies with its log's trusted key.

A log that was altered, forked, re-signed, truncated or extended, or a
bundle with any byte changed, fails one of these.  A bundle can still be
an *older* export of an honest log (a prefix): compare it with a peer's
bundle (``wlx.node.audit.offline.reconcile``) to find a log cut back to a prefix.
"""

from __future__ import annotations

import datetime
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wlx.crypto import merkle
from wlx.crypto.card import parse_card
from wlx.crypto.checkpoint import Checkpoint
from wlx.crypto.errors import CryptoError, MalformedError, VerificationError
from wlx.crypto.keys import VerifyKey
from wlx.crypto.note import NoteVerifier, VerifiedSignature, open_note, parse_signature_line
from wlx.node.audit.offline import bundle as bundle_format
from wlx.node.audit.offline.bundle import ENTRY_FORMAT, Bundle
from wlx.node.audit.offline.errors import AuditFailure
from wlx.node.audit.offline.events import EvaluateOutcome, Event
from wlx.node.audit.offline.names import (
    log_origin,
    log_verifier,
    node_of_origin,
    node_of_witness,
    witness_verifier,
)
from wlx.node.core.errors import UserError

MAX_NOTE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Keyring:
    """The identity cards an auditor trusts, by node id.

    A node's keys are the identity key of each of its cards, and the key a
    rotated card names as the one it replaced (so one current card verifies
    checkpoints signed before and after a rotation).
    """

    keys: Mapping[str, tuple[VerifyKey, ...]]
    cards: Mapping[str, tuple[bytes, ...]]

    @classmethod
    def from_cards(cls, cards: Iterable[tuple[str, bytes]]) -> Keyring:
        """Build from ``(name, card file bytes)`` pairs (name: for messages).

        Raises:
            UserError: a card does not parse or its self-signature fails.
        """
        keys: dict[str, list[VerifyKey]] = {}
        raws: dict[str, list[bytes]] = {}
        for name, data in cards:
            try:
                card = parse_card(data)
            except CryptoError as exc:
                raise UserError(f"{name} is not a valid identity card ({exc})") from None
            node_keys = keys.setdefault(card.node_id, [])
            for key in (card.sign_key, card.previous_key):
                if key is not None and not any(key.same_as(k) for k in node_keys):
                    node_keys.append(key)
            raws.setdefault(card.node_id, []).append(data)
        return cls({n: tuple(k) for n, k in keys.items()}, {n: tuple(r) for n, r in raws.items()})

    def of(self, node_id: str) -> tuple[VerifyKey, ...]:
        """Every trusted identity key of ``node_id`` (empty: none)."""
        return self.keys.get(node_id, ())


@dataclass(frozen=True)
class CheckedCheckpoint:
    """A checkpoint that verified, and who cosigned it."""

    checkpoint: Checkpoint
    cosigners: tuple[str, ...]


@dataclass(frozen=True)
class Verified:
    """What verifying a bundle proved, and its parsed contents (for reconciling)."""

    bundle: Bundle
    entries: tuple[dict[str, Any], ...]
    leaves: tuple[bytes, ...]
    checkpoints: tuple[CheckedCheckpoint, ...]
    witnessed: tuple[tuple[str, Checkpoint], ...]
    """``(peer, checkpoint of its log this node cosigned)``."""
    kinds: Mapping[str, int] = field(default_factory=dict)

    @property
    def node(self) -> str:
        return self.bundle.node

    @property
    def latest(self) -> CheckedCheckpoint:
        return self.checkpoints[-1]

    def root_at(self, size: int) -> bytes:
        """RFC 9162 root of the first ``size`` entries."""
        return merkle.root(self.leaves, size)

    def report(self) -> list[str]:
        """A short report, a line each."""
        latest = self.latest
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items()))
        witnessed = ", ".join(f"{p} at size {c.size}" for p, c in self.witnessed) or "none"
        return [
            f"bundle of {self.node}: verified",
            f"  entries: {len(self.entries)} ({kinds})",
            f"  checkpoints: {len(self.checkpoints)}; every signature, root and consistency "
            "step verified",
            f"  latest: size {latest.checkpoint.size}, cosigned by "
            f"{', '.join(latest.cosigners) or 'no witness'}",
            f"  witnessed: {witnessed}",
            *evaluation_volume(self.entries),
        ]


def evaluation_volume(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Online-tier evaluations per peer and UTC day (docs/protocol.md §15.5), a line each.

    ``evaluate.in`` entries: what this node evaluated for each peer (and
    refused); ``evaluate.out``: what it asked of each origin.
    """
    volume: dict[tuple[str, str, str], list[int]] = {}
    for entry in entries:
        kind = entry.get("kind")
        if kind not in (Event.EVALUATE_IN, Event.EVALUATE_OUT):
            continue
        party = str(entry.get("peer") if kind == Event.EVALUATE_IN else entry.get("origin"))
        day = datetime.datetime.fromtimestamp(int(entry["time"]), datetime.UTC).date().isoformat()
        counts = volume.setdefault((str(kind), party, day), [0, 0])
        if entry.get("outcome") == EvaluateOutcome.EVALUATED:
            counts[0] += int(entry.get("elements", 0))
        else:
            counts[1] += int(entry.get("elements", 0))
    lines = []
    for (kind, party, day), (done, refused) in sorted(volume.items()):
        what = "evaluated for" if kind == Event.EVALUATE_IN else "evaluations by"
        lines.append(f"  online tier: {day} {what} {party}: {done} ({refused} not evaluated)")
    return lines


class _Tree:
    """RFC 9162 roots and proofs over the bundle's leaves, with every perfect
    subtree kept (O(n) memory, O(log^2 n) per root or proof)."""

    def __init__(self, leaves: tuple[bytes, ...]) -> None:
        self.leaves = leaves
        self._interior: dict[tuple[int, int], bytes] = {}
        compact = merkle.CompactRange()
        for leaf in leaves:
            for level, index, h in compact.append(leaf):
                self._interior[(level, index)] = h

    def _node(self, level: int, index: int) -> bytes | None:
        return self._interior.get((level, index))

    def root(self, size: int) -> bytes:
        return merkle.root(self.leaves, size, interior=self._node)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(self.leaves, old, new, interior=self._node)


def _check_card(bundle: Bundle, keyring: Keyring) -> None:
    if bundle.card not in keyring.cards.get(bundle.node, ()):
        raise AuditFailure(
            "identity card",
            "card",
            f"the bundle's card of {bundle.node} is not one of the trusted cards of {bundle.node}",
        )


def _entry(i: int, line: bytes, node: str) -> dict[str, Any]:
    where = f"entry {i}"
    try:
        obj = bundle_format.parse_json(line)
    except ValueError:
        raise AuditFailure(where, "format", "not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise AuditFailure(where, "format", "not a JSON object")
    if obj.get("v") != ENTRY_FORMAT or type(obj.get("v")) is not int:
        raise AuditFailure(where, "format", f"entry format is not {ENTRY_FORMAT}")
    idx = obj.get("idx")
    if type(idx) is not int:
        raise AuditFailure(where, "format", "idx is not an integer")
    if idx != i:
        raise AuditFailure(
            where, "position", f"idx is {idx}: an entry is missing, added or moved before it"
        )
    if obj.get("node") != node:
        raise AuditFailure(where, "node", f"entry of another node than {node}")
    kind, time = obj.get("kind"), obj.get("time")
    if not isinstance(kind, str) or not kind:
        raise AuditFailure(where, "format", "kind is not a name")
    if type(time) is not int or time < 0:
        raise AuditFailure(where, "format", "time is not a Unix time")
    return obj


Retired = Mapping[tuple[str, str], int]
"""``(node id, identity key fingerprint) -> size``: a key rotated out at log
entry ``size - 1`` signs (or cosigns) checkpoints of at most ``size`` entries."""


def retired_keys(entries: Iterable[Mapping[str, Any]], node: str) -> dict[tuple[str, str], int]:
    """When each rotated-out key of ``node`` and of its peers was retired, by the
    node's log (the first entry per key):

    * ``keys.rotated`` at index ``i``: the node's old key may still sign the
      checkpoint that covers its own retirement (size ``i + 1``), never a larger;
    * ``peer.rotated`` at index ``i``: the peer had rotated before the node
      learnt of it, so its old key cosigns checkpoints of at most ``i`` entries.
    """
    retired: dict[tuple[str, str], int] = {}
    for entry in entries:
        kind, old, idx = entry.get("kind"), entry.get("old_fingerprint"), entry.get("idx")
        if not isinstance(old, str) or type(idx) is not int:
            continue
        if kind == Event.KEYS_ROTATED:
            retired.setdefault((node, old), idx + 1)
        elif kind == Event.PEER_ROTATED and isinstance(entry.get("peer"), str):
            retired.setdefault((str(entry["peer"]), old), idx)
    return retired


def valid_at(retired: Retired, node: str, fingerprint: str, size: int) -> bool:
    """Whether ``node``'s key ``fingerprint`` may sign a checkpoint of ``size``."""
    limit = retired.get((node, fingerprint))
    return limit is None or size <= limit


def _open(
    note: bytes,
    where: str,
    log_name: str,
    verifiers: list[NoteVerifier],
    strict: bool,
    keys: Mapping[tuple[str, bytes], str] | None = None,
    valid: Callable[[str, str], bool] | None = None,
) -> tuple[str, tuple[str, ...]]:
    """Open a note; return its text and the node ids of its distinct verified
    cosigners.  With ``keys`` (``(name, key id) -> key fingerprint``) and
    ``valid`` (``(node id, fingerprint) -> still valid for this note``), only
    signatures by keys valid for the note count."""
    try:
        text, verified = open_note(note, verifiers, max_size=MAX_NOTE_BYTES)
    except MalformedError as exc:
        raise AuditFailure(where, "format", str(exc)) from None
    except VerificationError as exc:
        check = "cosignature" if str(exc).startswith("cosignature") else "signature"
        raise AuditFailure(where, check, str(exc)) from None
    if strict:  # every line must be by a key the auditor knows, once
        known = {(v.name, v.key_id) for v in verifiers}
        decoded = note.decode("utf-8")
        block = decoded[decoded.rfind("\n\n") + 2 : -1]
        seen: set[tuple[str, bytes]] = set()
        for line in block.split("\n"):
            name, raw = parse_signature_line(line)
            if (name, raw[:4]) not in known:
                raise AuditFailure(where, "signature", f"signature line by unknown key {name}")
            if (name, raw[:4]) in seen:
                raise AuditFailure(where, "signature", f"repeated signature line by {name}")
            seen.add((name, raw[:4]))

    def counts(v: VerifiedSignature, node: str) -> bool:
        if keys is None or valid is None:
            return True
        return valid(node, keys[(v.name, v.key_id)])

    log_node = log_name.rsplit("/", 1)[-1]
    signed = [v for v in verified if v.name == log_name and v.timestamp is None]
    if not signed:
        raise AuditFailure(where, "signature", f"not signed by the identity key of {log_name}")
    if not any(counts(v, log_node) for v in signed):
        raise AuditFailure(
            where,
            "signature",
            f"signed only by a key of {log_node} retired by a key rotation before this checkpoint",
        )
    cosigners = tuple(
        sorted(
            {
                node_of_witness(v.name)
                for v in verified
                if v.timestamp is not None and counts(v, node_of_witness(v.name))
            }
        )
    )
    return text, cosigners


def _parse_checkpoint(text: str, where: str, origin: str) -> Checkpoint:
    try:
        checkpoint = Checkpoint.parse(text)
    except MalformedError as exc:
        raise AuditFailure(where, "format", str(exc)) from None
    if checkpoint.origin != origin:
        raise AuditFailure(where, "origin", f"origin is not {origin}")
    if checkpoint.extensions:
        raise AuditFailure(where, "format", "has extension lines")
    return checkpoint


def _checkpoints(
    bundle: Bundle, keyring: Keyring, tree: _Tree, strict: bool, retired: Retired
) -> list[CheckedCheckpoint]:
    node, n = bundle.node, len(tree.leaves)
    origin = log_origin(node)
    by_key: list[tuple[VerifyKey, NoteVerifier]] = [
        (k, log_verifier(node, k)) for k in keyring.of(node)
    ]
    by_key += [
        (key, witness_verifier(peer, key))
        for peer, keys in sorted(keyring.keys.items())
        if peer != node
        for key in keys
    ]
    verifiers = [v for _, v in by_key]
    keys = {(v.name, v.key_id): k.fingerprint() for k, v in by_key}
    checked: list[CheckedCheckpoint] = []
    prev: Checkpoint | None = None
    for k, note in enumerate(bundle.checkpoints):
        size = _claimed_size(note)
        text, cosigners = _open(
            note,
            f"checkpoint {k}",
            origin,
            verifiers,
            strict,
            keys,
            functools.partial(_valid, retired, size),
        )
        cp = _parse_checkpoint(text, f"checkpoint {k}", origin)
        where = f"checkpoint {k} (size {cp.size})"
        if prev is not None and cp.size <= prev.size:
            raise AuditFailure(where, "order", f"size not above checkpoint {k - 1}'s {prev.size}")
        if cp.size > n:
            raise AuditFailure(
                where, "coverage", f"covers {cp.size} entries, the bundle holds {n}: truncated log"
            )
        if tree.root(cp.size) != cp.root_hash:
            since = f"; checkpoint {k - 1} (size {prev.size}) matched" if prev else ""
            raise AuditFailure(
                where,
                "root",
                f"the root hash is not that of entries 0..{cp.size - 1}{since}, so an entry "
                f"from {prev.size if prev else 0} to {cp.size - 1} (or this root) was altered",
            )
        if prev is not None:
            proof = tree.consistency(prev.size, cp.size)
            try:
                merkle.verify_consistency(prev.size, cp.size, prev.root_hash, cp.root_hash, proof)
            except CryptoError as exc:  # pragma: no cover - implied by the two root checks
                raise AuditFailure(where, "consistency", str(exc)) from None
        checked.append(CheckedCheckpoint(cp, cosigners))
        prev = cp
    return checked


def _valid(retired: Retired, size: int, who: str, fingerprint: str) -> bool:
    return valid_at(retired, who, fingerprint, size)


def _claimed_size(note: bytes) -> int:
    """The size line of a checkpoint note, read before it is verified (only to
    choose which keys are valid for it; the signatures cover it)."""
    lines = note.split(b"\n", 2)
    try:
        return int(lines[1]) if len(lines) > 2 and lines[1].isdigit() else 0
    except ValueError:  # pragma: no cover - isdigit() admits only ASCII digits here
        return 0


def _witnessed(bundle: Bundle, keyring: Keyring, strict: bool) -> list[tuple[str, Checkpoint]]:
    out: list[tuple[str, Checkpoint]] = []
    for w, note in enumerate(bundle.witnessed):
        where = f"witnessed checkpoint {w}"
        try:
            peer = node_of_origin(note.split(b"\n", 1)[0].decode("utf-8"))
        except (UnicodeDecodeError, MalformedError):
            raise AuditFailure(where, "format", "not a wlx exchange log checkpoint") from None
        if peer == bundle.node or (out and peer <= out[-1][0]):
            raise AuditFailure(where, "order", "not one per peer, by peer, other than the node")
        keys = keyring.of(peer)
        if not keys:
            if strict:
                raise AuditFailure(where, "signature", f"no trusted card of {peer}")
            continue
        verifiers: list[NoteVerifier] = [log_verifier(peer, k) for k in keys]
        text, _ = _open(note, where, log_origin(peer), verifiers, strict)
        out.append((peer, _parse_checkpoint(text, where, log_origin(peer))))
    return out


def verify_bundle(
    data: bytes, keyring: Keyring, *, min_cosigners: int = 1, strict: bool = True
) -> Verified:
    """Verify a bundle (see the module docstring); return what it proved.

    ``strict`` (the default) refuses a signature line by a key not in
    ``keyring``; without it such lines are ignored (as signed-note allows),
    and witnessed checkpoints of unknown logs are skipped.

    Raises:
        AuditFailure: the first check that failed.
    """
    bundle = bundle_format.decode(data)
    _check_card(bundle, keyring)
    entries = tuple(_entry(i, line, bundle.node) for i, line in enumerate(bundle.entries))
    leaves = tuple(merkle.leaf_hash(line) for line in bundle.entries)
    tree = _Tree(leaves)
    checkpoints = _checkpoints(bundle, keyring, tree, strict, retired_keys(entries, bundle.node))
    if not checkpoints:
        raise AuditFailure("bundle", "coverage", "holds no checkpoint")
    latest = checkpoints[-1]
    where = f"checkpoint {len(checkpoints) - 1} (size {latest.checkpoint.size})"
    if latest.checkpoint.size != len(entries):
        raise AuditFailure(
            where,
            "coverage",
            f"the latest checkpoint covers {latest.checkpoint.size} of the {len(entries)} "
            "entries: the rest are covered by no signature",
        )
    if len(latest.cosigners) < min_cosigners:
        raise AuditFailure(
            where,
            "cosignatures",
            f"cosigned by {len(latest.cosigners)} trusted witnesses, {min_cosigners} required: "
            "the latest checkpoint is not witnessed",
        )
    witnessed = _witnessed(bundle, keyring, strict)
    return Verified(
        bundle=bundle,
        entries=entries,
        leaves=leaves,
        checkpoints=tuple(checkpoints),
        witnessed=tuple(witnessed),
        kinds=dict(Counter(str(e["kind"]) for e in entries)),
    )
