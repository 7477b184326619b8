"""Reconciling two nodes' logs: what one says it sent, the other says it got.

docs/audit.md §8.  Given two verified bundles A and B, for each direction
(origin O, recipient R) :func:`reconcile` matches

* every batch O logged as made for R (``batch.sent``: epoch, first_seq,
  last_seq, digest) with R's ``batch.applied`` / ``batch.duplicate`` of it:
  the digests must be equal.  A batch R does not record is *covered* by a
  snapshot R applied of that epoch at or after its last_seq, *superseded*
  when R holds a later epoch of O, and otherwise *pending* (not yet pulled,
  or after R's export).  A batch R applied that O does not record making,
  while O's log goes past it, is a discrepancy;
* every snapshot R applied with O's ``snapshot.sent`` of the same id (same
  epoch, position, chain digest and entry count), and its chain digest with
  O's batch ending at that position;
* every signed receipt of R that O logged (``receipt``) with R's own record
  of applying that batch or snapshot;
* every detail request R logged (``detail.out``) with O's record of
  answering it (``detail.in``, same request digest): same ref, purpose,
  case, officer and outcome;
* every online-tier evaluation R logged (``evaluate.out``) with O's record
  of it (``evaluate.in``, same request digest): same epoch, number of keys
  and, for a request O received, outcome;
* each checkpoint of O's log that R cosigned (bundle ``witnessed``) with
  O's entries: same root at that size (else O showed R another history);
  and R's refusals to cosign O's checkpoints (``witness.refused``);
* every acceptance declaration of R to O (``acceptance.confirmed`` with O's
  ``acceptance.received``, ``acceptance.received`` with R's
  ``acceptance.change``; ``acceptance.reconcile_acceptance``).

A *discrepancy* is a contradiction between the two logs; *pending* lists
what the two exports cannot settle (one is older than the other).  Timing
judgements that compare two nodes' clocks allow ``CLOCK_SKEW`` seconds.
Pure: verified bundles in, a report out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from wlx.crypto.digests import genesis_digest, skip_digest
from wlx.node.audit.offline.acceptance import reconcile_acceptance
from wlx.node.audit.offline.errors import AuditFailure
from wlx.node.audit.offline.events import EvaluateOutcome, Event
from wlx.node.audit.offline.verify import Verified
from wlx.node.protocol.messages import ReceiptKind

CLOCK_SKEW = 600
MAX_SKIPS = 10_000
"""Consecutive skips (snapshots with no batch in between) followed back."""
Key = tuple[int, int, int]
"""(epoch, first_seq, last_seq) of a batch."""


@dataclass
class Reconciliation:
    """The result: a summary line per direction, pending items, discrepancies."""

    summary: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    discrepancies: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return not self.discrepancies

    def lines(self) -> list[str]:
        out = list(self.summary)
        if self.pending:
            out.append(f"pending ({len(self.pending)}; not discrepancies):")
            out += [f"  - {p}" for p in self.pending]
        if self.discrepancies:
            out.append(f"DISCREPANCIES ({len(self.discrepancies)}):")
            out += [f"  - {d}" for d in self.discrepancies]
        else:
            out.append("no discrepancy")
        return out


def _int(entry: dict[str, Any], name: str) -> int:
    """The integer field ``name`` of ``entry``.

    Raises:
        AuditFailure: the entry lacks it (no node writes such an entry).
    """
    value = entry.get(name)
    if type(value) is not int:
        where = f"{entry.get('node')} entry {entry.get('idx')}"
        raise AuditFailure(where, "format", f"{entry.get('kind')} without an integer {name}")
    return value


def _str(entry: dict[str, Any], name: str) -> str:
    value = entry.get(name)
    return value if isinstance(value, str) else ""


def _of(v: Verified, kinds: tuple[str, ...], party: str, who: str) -> Iterator[dict[str, Any]]:
    """Entries of ``v`` of one of ``kinds`` whose field ``party`` is ``who``."""
    for entry in v.entries:
        if entry["kind"] in kinds and entry.get(party) == who:
            yield entry


def _batch(e: dict[str, Any]) -> Key:
    return _int(e, "epoch"), _int(e, "first_seq"), _int(e, "last_seq")


def _name(key: Key) -> str:
    return f"batch of epoch {key[0]}, seq {key[1]}-{key[2]}"


class _Direction:
    """Data from origin ``o`` to recipient ``r`` (and detail requests from r to o)."""

    def __init__(self, o: Verified, r: Verified, out: Reconciliation) -> None:
        self.o, self.r, self.out = o, r, out
        self.sent = {_batch(e): e for e in _of(o, (Event.BATCH_SENT,), "peer", r.node)}
        self.got: dict[Key, list[dict[str, Any]]] = {}
        for e in _of(r, (Event.BATCH_APPLIED, Event.BATCH_DUPLICATE), "origin", o.node):
            self.got.setdefault(_batch(e), []).append(e)
        self.snaps_sent = {
            _str(e, "snapshot"): e for e in _of(o, (Event.SNAPSHOT_SENT,), "peer", r.node)
        }
        self.snaps_got = list(_of(r, (Event.SNAPSHOT_APPLIED,), "origin", o.node))
        epochs = [k[0] for k in self.got] + [_int(e, "epoch") for e in self.snaps_got]
        self.r_epoch = max(epochs, default=0)
        o_epochs = [k[0] for k in self.sent] + [_int(e, "epoch") for e in self.snaps_sent.values()]
        self.o_epoch = max(o_epochs, default=0)
        self.receipts_held = list(_of(o, (Event.RECEIPT,), "peer", r.node))

    def o_went_past(self, epoch: int, seq: int, but: Key | None = None) -> bool:
        """O's log records making (or R acknowledging) O's list for R at or
        beyond (epoch, seq), other than batch ``but``."""
        return (
            self.o_epoch > epoch
            or any(k[0] == epoch and k[2] >= seq for k in self.sent if k != but)
            or any(
                _int(e, "epoch") == epoch and _int(e, "last_seq") >= seq for e in self.receipts_held
            )
        )

    def r_went_past(self, epoch: int, seq: int) -> bool:
        """R's log records applying O's list at or beyond (epoch, seq)."""
        return (
            self.r_epoch > epoch
            or any(k[0] == epoch and k[2] >= seq for k in self.got)
            or any(_int(e, "epoch") == epoch and _int(e, "at_seq") >= seq for e in self.snaps_got)
        )

    def flag(self, text: str) -> None:
        self.out.discrepancies.append(f"{self.o.node} -> {self.r.node}: {text}")

    def wait(self, text: str) -> None:
        self.out.pending.append(f"{self.o.node} -> {self.r.node}: {text}")

    def batches(self) -> str:
        o, r = self.o.node, self.r.node
        matched = covered = superseded = 0
        for key, sent in sorted(self.sent.items()):
            digest = _str(sent, "digest")
            got = self.got.get(key)
            if got:
                wrong = [g for g in got if _str(g, "digest") != digest]
                if wrong:
                    self.flag(
                        f"{_name(key)}: {o} logged digest {digest[:16]}... (its entry "
                        f"{sent['idx']}), {r} applied digest {_str(wrong[0], 'digest')[:16]}... "
                        f"(its entry {wrong[0]['idx']})"
                    )
                else:
                    matched += 1
            elif any(
                _int(s, "epoch") == key[0] and _int(s, "at_seq") >= key[2] for s in self.snaps_got
            ):
                covered += 1
            elif self.r_epoch > key[0]:
                superseded += 1
            else:
                self.wait(f"{_name(key)} ({o} entry {sent['idx']}) not yet applied by {r}")
        for key, got in sorted(self.got.items()):
            if key in self.sent:
                continue
            if self.o_went_past(key[0], key[2], but=key):
                self.flag(
                    f"{r} applied {_name(key)} (its entry {got[0]['idx']}) that {o}'s log "
                    "does not record making"
                )
            else:
                self.wait(f"{r} applied {_name(key)}, made after the end of {o}'s bundle")
        return (
            f"batches: {len(self.sent)} made for {r}; {matched} applied with the same digest, "
            f"{covered} covered by a snapshot, {superseded} superseded by a later epoch"
        )

    def snapshots(self) -> str:
        o, r = self.o.node, self.r.node
        matched = 0
        fields = ("epoch", "at_seq", "chain_digest", "entries")
        o_end = max((e["time"] for e in self.o.entries), default=0)
        for got in self.snaps_got:
            snap = _str(got, "snapshot")
            sent = self.snaps_sent.get(snap)
            if sent is None:
                text = f"{r} applied snapshot {snap[:16]}... (its entry {got['idx']})"
                if o_end > got["time"] + CLOCK_SKEW:
                    self.flag(f"{text}, which {o}'s log does not record sending")
                else:
                    self.wait(f"{text}, sent after the end of {o}'s bundle")
                continue
            differ = [f for f in fields if got.get(f) != sent.get(f)]
            if differ:
                self.flag(
                    f"snapshot {snap[:16]}...: {', '.join(differ)} differ between {o} "
                    f"(entry {sent['idx']}) and {r} (entry {got['idx']})"
                )
            else:
                matched += 1
            self._chain(got)
        applied = {_str(g, "snapshot") for g in self.snaps_got}
        for snap, sent in sorted(self.snaps_sent.items()):
            if snap not in applied:
                self.wait(
                    f"snapshot {snap[:16]}... ({o} entry {sent['idx']}) not applied by {r} "
                    "(rejected, interrupted, or after its export)"
                )
        return f"snapshots: {len(self.snaps_sent)} sent, {matched} applied as sent"

    def _chain(self, got: dict[str, Any]) -> None:
        """A snapshot continues O's hash chain after O's batch ending at its position."""
        o, snap = self.o.node, _str(got, "snapshot")[:16]
        epoch, at = _int(got, "epoch"), _int(got, "at_seq")
        if at <= 0:
            return
        batch = next((e for k, e in self.sent.items() if (k[0], k[2]) == (epoch, at)), None)
        if batch is None:
            if self._skipped_to(epoch, at) == _str(got, "chain_digest"):
                return  # O's stream skipped to that position (a snapshot's fast-forward)
            if self.o_went_past(epoch, at + 1):
                self.flag(
                    f"snapshot {snap}... continues {o}'s chain after seq {at}, but {o}'s log "
                    "records no batch ending there"
                )
        elif _str(batch, "digest") != _str(got, "chain_digest"):
            self.flag(
                f"snapshot {snap}... continues the chain at seq {at} with a digest other "
                f"than that of {o}'s batch ending there (entry {batch['idx']})"
            )

    def _skipped_to(self, epoch: int, at: int) -> str:
        """The chain digest at ``at`` if O's stream reached it by skips (§6.2:
        ``skip_digest`` of the position before, back to a batch O logged, or
        to the genesis); "" past ``MAX_SKIPS`` skips in a row."""
        ends = {k[2]: e for k, e in self.sent.items() if k[0] == epoch}
        skips, pos = 1, at - 1
        digest = genesis_digest(self.o.node, self.r.node, epoch)  # if pos reaches 0
        while pos > 0:
            if pos in ends:
                digest = bytes.fromhex(_str(ends[pos], "digest"))
                break
            if skips >= MAX_SKIPS:
                return ""
            skips, pos = skips + 1, pos - 1
        for _ in range(skips):
            digest = skip_digest(digest)
        return digest.hex()

    def receipts(self) -> str:
        o, r = self.o.node, self.r.node
        matched = 0
        for rc in self.receipts_held:
            epoch, last, digest = _int(rc, "epoch"), _int(rc, "last_seq"), _str(rc, "digest")
            past = self.r_went_past(epoch, last + 1)
            if rc.get("of") == ReceiptKind.SNAPSHOT:
                ok = any(
                    _int(s, "epoch") == epoch
                    and _int(s, "at_seq") == last
                    and _str(s, "chain_digest") == digest
                    for s in self.snaps_got
                )
                what = f"snapshot at epoch {epoch}, seq {last}"
            else:
                key = _batch(rc)
                ok = any(
                    g["kind"] == Event.BATCH_APPLIED and _str(g, "digest") == digest
                    for g in self.got.get(key, [])
                )
                past = past or key in self.got
                what = _name(key)
            if ok:
                matched += 1
            elif past:
                self.flag(
                    f"{o} holds {r}'s signed receipt for the {what} (entry {rc['idx']}), "
                    f"which {r}'s log does not record applying"
                )
            else:
                self.wait(f"{r}'s receipt for the {what} is after the end of {r}'s bundle")
        return f"receipts: {matched} of {r}'s signed receipts held by {o} match {r}'s log"

    def details(self) -> str:
        o, r = self.o.node, self.r.node
        asked = {_str(e, "request"): e for e in _of(self.r, (Event.DETAIL_OUT,), "origin", o)}
        answered = {
            _str(e, "request"): e
            for e in _of(self.o, (Event.DETAIL_IN,), "peer", r)
            if not e.get("replay")  # a replay repeats an answer: the first is compared
        }
        o_end = max((e["time"] for e in self.o.entries), default=0)
        matched = 0
        for request, out in asked.items():
            answer = answered.get(request)
            if answer is None:
                text = f"{r}'s detail request {request[:16]}... (its entry {out['idx']})"
                if o_end > out["time"] + CLOCK_SKEW:
                    self.flag(f"{text} is not in {o}'s log, which {r} says answered it")
                else:
                    self.wait(f"{text} was answered after the end of {o}'s bundle")
                continue
            differ = [
                f
                for f in ("ref", "purpose", "case", "officer", "outcome")
                if out.get(f) != answer.get(f)
            ]
            if differ:
                self.flag(
                    f"detail request {request[:16]}...: {', '.join(differ)} differ between "
                    f"{r} (entry {out['idx']}) and {o} (entry {answer['idx']})"
                )
            else:
                matched += 1
        for request, answer in answered.items():
            if request not in asked:
                self.wait(
                    f"{o} answered detail request {request[:16]}... (entry {answer['idx']}), "
                    f"not in {r}'s log (answer lost, or after its export)"
                )
        return f"detail requests: {len(asked)} by {r}, {matched} answered as {r} logged"

    def evaluations(self) -> str:
        """Online-tier evaluations (docs/protocol.md §15): R's requests against
        O's record of each, by request digest; counts and outcomes agree."""
        o, r = self.o.node, self.r.node
        asked = {_str(e, "request"): e for e in _of(self.r, (Event.EVALUATE_OUT,), "origin", o)}
        served = {_str(e, "request"): e for e in _of(self.o, (Event.EVALUATE_IN,), "peer", r)}
        o_end = max((e["time"] for e in self.o.entries), default=0)
        matched = 0
        for request, out in asked.items():
            got = served.get(request)
            reached = _str(out, "outcome") in (
                EvaluateOutcome.EVALUATED,
                EvaluateOutcome.QUOTA,
                EvaluateOutcome.STALE_EPOCH,
            )
            if got is None:
                text = f"{r}'s evaluate request {request[:16]}... (its entry {out['idx']})"
                if not reached:
                    continue  # unreachable, refused or rejected: O may never have seen it
                if o_end > out["time"] + CLOCK_SKEW:
                    self.flag(f"{text} is not in {o}'s log, which {r} says answered it")
                else:
                    self.wait(f"{text} was answered after the end of {o}'s bundle")
                continue
            differ = [f for f in ("epoch", "elements") if out.get(f) != got.get(f)]
            if reached and out.get("outcome") != got.get("outcome"):
                differ.append("outcome")
            if differ:
                self.flag(
                    f"evaluate request {request[:16]}...: {', '.join(differ)} differ between "
                    f"{r} (entry {out['idx']}) and {o} (entry {got['idx']})"
                )
            else:
                matched += 1
        for request, got in served.items():
            if request not in asked:
                self.wait(
                    f"{o} logged evaluate request {request[:16]}... (entry {got['idx']}), "
                    f"not in {r}'s log (after its export)"
                )
        evaluated = [e for e in served.values() if e.get("outcome") == EvaluateOutcome.EVALUATED]
        keys = sum(_int(e, "elements") for e in evaluated)
        return (
            f"evaluations: {len(asked)} requests by {r}, {matched} as {o} logged; "
            f"{o} evaluated {keys} keys for {r}"
        )

    def witnessing(self) -> str:
        o, r = self.o.node, self.r.node
        n = len(self.o.entries)
        checked = [c for peer, c in self.r.witnessed if peer == o]
        for c in checked:
            if c.size > n:
                self.wait(
                    f"{r} cosigned {o}'s checkpoint of size {c.size}, beyond the {n} entries of "
                    f"{o}'s bundle: it is older than {r}'s, or {o}'s log was cut back"
                )
            elif self.o.root_at(c.size) != c.root_hash:
                self.flag(
                    f"{r} cosigned a checkpoint of {o}'s log of size {c.size} whose root is "
                    f"not that of {o}'s entries: {o} showed {r} another history"
                )
        for e in _of(self.r, (Event.WITNESS_REFUSED,), "origin", o):
            self.flag(
                f"{r} refused to cosign {o}'s checkpoint of size {_int(e, 'size')} "
                f"({_str(e, 'reason')}: {_str(e, 'detail')}; {r}'s entry {e['idx']})"
            )
        cosigned = sum(1 for c in self.o.checkpoints if r in c.cosigners)
        return f"witnessing: {r} cosigned {cosigned} of {o}'s {len(self.o.checkpoints)} checkpoints"


def reconcile(a: Verified, b: Verified) -> Reconciliation:
    """Match what ``a`` and ``b`` logged of each other (see the module docstring).

    Raises:
        AuditFailure: an entry lacks a number this needs (a position, an epoch).
    """
    out = Reconciliation()
    if a.node == b.node:
        out.discrepancies.append(f"both bundles are of {a.node}")
        return out
    for o, r in ((a, b), (b, a)):
        d = _Direction(o, r, out)
        parts = [
            d.batches(),
            d.snapshots(),
            d.receipts(),
            d.details(),
            d.evaluations(),
            d.witnessing(),
        ]
        parts.append(reconcile_acceptance(o.node, o.entries, r.node, r.entries, d.flag, d.wait))
        out.summary += [f"{o.node} -> {r.node}:", *(f"  {p}" for p in parts)]
    return out
