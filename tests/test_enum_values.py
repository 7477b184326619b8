"""Every fixed set of values is an enum, and its values are pinned here
(issue 12, item 2): they are in stored rows, on the wire and in signed
exchange logs, so renaming a member must never change a byte."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest

from wlx.node.audit.offline.events import EvaluateOutcome, Event
from wlx.node.cli.screening import Checked
from wlx.node.core.config import Backend
from wlx.node.core.errors import Rejected, RejectReason
from wlx.node.core.manifest import FORMATS, ManifestFormat
from wlx.node.core.mrz import Layout
from wlx.node.core.records import RecordFormat, Tier
from wlx.node.core.roles import Role
from wlx.node.protocol.detail_rules import GRANTED, PROVEN, Denial, Direction
from wlx.node.protocol.lookup_rules import LookupCall
from wlx.node.protocol.messages import ChangeOp, ReceiptKind
from wlx.node.protocol.online import Refusal
from wlx.node.store import schema
from wlx.node.store.base import AcceptanceSide

DOCS = Path(__file__).resolve().parent.parent / "docs"

VALUES: list[tuple[type[StrEnum], list[str]]] = [
    (ChangeOp, ["upsert", "remove"]),
    (ReceiptKind, ["batch", "snapshot"]),
    (Denial, ["no-hit", "quota", "not-shared", "expired", "suspended"]),
    (Direction, ["in", "out"]),
    (Refusal, ["stale-epoch", "quota"]),
    (
        EvaluateOutcome,
        ["evaluated", "stale-epoch", "quota", "unreachable", "invalid", "refused"],
    ),
    (Rejected, ["batch", "snapshot", "response", "acceptance"]),
    (AcceptanceSide, ["local", "declared"]),
    (Tier, ["offline", "online"]),
    (Backend, ["sqlite", "postgresql"]),
    (Checked, ["full", "partial", "none"]),
    (Role, ["peer", "officer", "auditor", "operator"]),
    (Layout, ["TD1", "TD2", "TD3"]),
    (LookupCall, ["check", "screen"]),
    (RecordFormat, ["jsonl", "csv", "ftm"]),
    (ManifestFormat, ["paxlst", "csv", "jsonl", "mrz"]),
    (
        RejectReason,
        [
            "malformed",
            "too-large",
            "undecryptable",
            "unknown-signer",
            "wrong-sender",
            "bad-signature",
            "wrong-recipient",
            "stale-epoch",
            "unexpected-epoch",
            "gap",
            "rollback",
            "fork",
            "stale-request",
            "unknown-batch",
            "bad-proof",
        ],
    ),
]


@pytest.mark.parametrize(("enum", "values"), VALUES, ids=lambda v: getattr(v, "__name__", ""))
def test_the_values_are_pinned(enum: type[StrEnum], values: list[str]) -> None:
    assert [m.value for m in enum] == values
    for member in enum:  # and they are what is written: str(), f-strings, JSON
        assert str(member) == f"{member}" == member.value


def test_detail_outcomes() -> None:
    assert GRANTED == "granted" and GRANTED not in set(Denial)
    assert {"granted", "not-shared", "expired", "suspended"} == PROVEN


def test_refusals_are_evaluate_outcomes() -> None:
    assert {r.value for r in Refusal} <= {o.value for o in EvaluateOutcome}


def _checked(column: str) -> set[str]:
    match = re.search(rf"{column} TEXT NOT NULL CHECK \({column} IN \(([^)]*)\)\)", schema.TEMPLATE)
    assert match, column
    return {v.strip().strip("'") for v in match.group(1).split(",")}


@pytest.mark.parametrize(
    ("column", "enum"), [("op", ChangeOp), ("direction", Direction), ("side", AcceptanceSide)]
)
def test_the_schema_takes_exactly_the_enum(column: str, enum: type[StrEnum]) -> None:
    assert _checked(column) == {m.value for m in enum}


def test_every_event_is_documented_and_every_documented_kind_is_an_event() -> None:
    """docs/audit.md §1.2 lists the entry kinds, one table row each."""
    text = (DOCS / "audit.md").read_text("utf-8")
    section = text[text.index("| `node.created`") :]
    section = section[: section.index("\n\n")]
    documented = {
        kind
        for row in section.splitlines()
        for kind in re.findall(r"`([a-z.]+)`", row.split("|")[1])
    }
    assert documented == {e.value for e in Event}


def test_the_manifest_formats_offered_are_the_enum() -> None:
    assert FORMATS == ("paxlst", "csv", "jsonl", "mrz")
