"""``wlx audit report``: counts from verified bundles, and a self-contained HTML page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support.audit import NODES, bundle_of, keyring, witnessed_federation
from support.nodes import FederationMaker
from test_cli import fails, ok

from wlx.node.audit.offline.html_report import render
from wlx.node.audit.offline.summary import summarise
from wlx.node.audit.offline.verify import verify_bundle


class Page(HTMLParser):
    """Collects tags, attributes and text; checks tags are balanced."""

    VOID = frozenset({"meta", "br", "img", "link", "input", "hr", "line", "rect"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], parser.stack
    return parser


def test_summary_counts_what_the_logs_say(federation: FederationMaker) -> None:
    fed = witnessed_federation(federation)
    ring = keyring(fed)
    verified = [verify_bundle(bundle_of(fed, n), ring) for n in NODES]
    summary = summarise(verified)
    assert summary.nodes == NODES
    assert sum(summary.lookups_per_day.values()) == 1
    assert sum(summary.hits_per_day.values()) == 1
    assert summary.lookups_per_credential == {"RU:post-ru-1": 1}
    assert summary.details == {
        ("RU", "out", "CN", "granted"): 1,
        ("CN", "in", "RU", "granted"): 1,
    }
    by_peer = {(c.origin, c.peer): c for c in summary.confirmations}
    assert set(by_peer) == {("CN", "RU"), ("CN", "AR")}
    for confirmation in by_peer.values():
        assert len(confirmation.seconds) == 1 and confirmation.unconfirmed == 0
    coverage = {c.node: c for c in summary.coverage}
    assert coverage["CN"].latest_cosigners == ("AR", "RU")
    assert coverage["CN"].uncosigned == 0
    page = render(summary, generated=1_800_000_000, sources=["a.bundle"])
    _check_page(page)


def _check_page(page: str) -> Page:
    parsed = _parse(page)
    tags = [t for t, _ in parsed.tags]
    assert tags.count("svg") >= 5
    assert "script" not in tags and "link" not in tags and "img" not in tags
    for _, attrs in parsed.tags:
        for name, value in attrs.items():
            if name in ("src", "href") or (
                value and re.search(r"url\(|https?://(?!www\.w3\.org/2000/svg)", value)
            ):
                pytest.fail(f"external reference: {name}={value}")
    assert "default-src 'none'" in page
    for section in ("lookups", "credentials", "details", "removals", "rejections", "witnesses"):
        assert f'id="{section}"' in page
    return parsed


def test_report_command_writes_one_self_contained_page(
    federation: FederationMaker, tmp_path: Path
) -> None:
    fed = witnessed_federation(federation)
    paths = []
    for node_id in NODES:
        path = tmp_path / f"{node_id}.bundle.jsonl"
        path.write_bytes(bundle_of(fed, node_id))
        paths.append(path)
        (tmp_path / f"{node_id}.card.json").write_bytes(fed[node_id].node.card.raw)
    out = tmp_path / "report.html"
    line = ok("audit", "report", *paths, "--out", out, "--cards", tmp_path)
    assert line.startswith(f"wrote {out}: report of CN, RU, AR")
    page = out.read_text(encoding="utf-8")
    parsed = _check_page(page)
    text = " ".join(parsed.text)
    assert "RU:post-ru-1" in text and "granted" in text
    assert "Test Person" not in page  # no name of a listed person, ever
    fails("audit", "report", paths[0], paths[0], "--out", out, match="given twice")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    fails("audit", "report", bad, "--out", out, match="bundle")
