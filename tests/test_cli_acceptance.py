"""``wlx peer accept``, ``peer add --acceptance``, and the policy in
``peer list`` and ``status`` (issue 16), driven as an operator would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import blank, card_of, fails, nodes, ok  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def test_peer_add_writes_an_explicit_default_policy(nodes: Path) -> None:  # noqa: F811
    cn, ru = nodes / "cn", nodes / "ru"
    out = ok("peer", "add", ru, card_of(cn), "--address", "127.0.0.1:7001")
    assert "acceptance policy for CN: accepts everything" in out
    listed = ok("peer", "list", ru).strip().split("\t")
    assert (
        listed[3].startswith("we hold: accepts everything") and "origin not told yet" in listed[3]
    )
    again = ok("peer", "add", ru, card_of(cn), "--address", "127.0.0.1:7009")
    assert "acceptance policy" not in again  # an existing policy is kept


def test_peer_add_with_a_preset(nodes: Path) -> None:  # noqa: F811
    cn, ru = nodes / "cn", nodes / "ru"
    out = ok(
        "peer", "add", ru, card_of(cn), "--address", "127.0.0.1:7001", "--acceptance", "inform-only"
    )
    assert "maps: *->inform-only" in out
    assert "*->inform-only" in ok("peer", "accept", ru, "CN")


def test_peer_add_with_an_unknown_preset_changes_nothing(nodes: Path) -> None:  # noqa: F811
    cn, ru = nodes / "cn", nodes / "ru"
    fails(
        "peer",
        "add",
        ru,
        card_of(cn),
        "--address",
        "127.0.0.1:1",
        "--acceptance",
        "x",
        match="preset",
    )
    assert ok("peer", "list", ru) == ""


def test_peer_accept_sets_shows_and_reports_in_status(nodes: Path) -> None:  # noqa: F811
    cn, ru = nodes / "cn", nodes / "ru"
    ok("peer", "add", ru, card_of(cn), "--address", "127.0.0.1:7001")
    out = ok(
        "peer", "accept", ru, "CN",
        "--decline", "political", "--decline", "exit-ban", "--map", "arrest=refer-to-supervisor",
    )  # fmt: skip
    assert "declines: exit-ban, political" in out and "arrest->refer-to-supervisor" in out
    assert "told at the next sync" in out
    shown = ok("peer", "accept", ru, "CN")
    assert "declines: exit-ban, political" in shown and "origin not told yet" in shown
    text = ok("status", ru)
    assert "we hold of its list: declines: exit-ban, political" in text
    [peer] = json.loads(ok("status", ru, "--json"))["peers"]
    we = peer["acceptance"]["we_accept"]
    assert we["policy"]["decline"] == ["exit-ban", "political"]
    assert we["policy"]["actions"] == {"arrest": "refer-to-supervisor"}
    assert we["applied_by_origin"] == 0 and peer["acceptance"]["it_accepts"] is None
    ok("peer", "accept", ru, "CN", "--accept", "wanted", "--map", "*=inform-only")
    assert "accepts only: wanted" in ok("peer", "list", ru)
    ok("peer", "accept", ru, "CN", "--all")
    assert "accepts everything" in ok("peer", "accept", ru, "CN")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["XX", "--decline", "political"], "not a trusted peer"),
        (["XX"], "not a trusted peer"),
        (["CN", "--map", "arrest"], "ACTION=LOCAL"),
        (["CN", "--decline", "no/slash"], "short term"),
        (["CN", "--accept", "wanted", "--decline", "wanted"], "both accepted and declined"),
        (["CN", "--all", "--decline", "political"], "give it alone"),
        (["CN", "--preset", "nope"], "preset"),
    ],
)
def test_peer_accept_refusals_change_nothing(
    nodes: Path,  # noqa: F811
    args: list[str],
    match: str,
) -> None:
    cn, ru = nodes / "cn", nodes / "ru"
    ok("peer", "add", ru, card_of(cn), "--address", "127.0.0.1:7001")
    before = ok("peer", "accept", ru, "CN")
    fails("peer", "accept", ru, *args, match=match)
    assert ok("peer", "accept", ru, "CN") == before
