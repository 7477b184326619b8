"""``wlx audit report``: an audit summary as one self-contained HTML page.

Pure: an ``AuditSummary`` in, the page's text out.  No script, no external
asset (the page forbids loading any with its Content-Security-Policy):
inline CSS, and charts as inline SVG with their numbers in tables beside
them, so the page reads the same printed, offline, or with a screen reader.
Every text from a bundle is HTML-escaped.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Sequence

from wlx.node.audit.offline.summary import AuditSummary

COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#4a5568")
CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:64rem;color:#1a202c;
padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #cbd5e0}
table{border-collapse:collapse;margin:.6rem 0}td,th{padding:.2rem .7rem;text-align:left;
border-bottom:1px solid #e2e8f0}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#4a5568;font-size:.9rem}svg{display:block;margin:.6rem 0;max-width:100%}
.legend span{display:inline-block;margin-right:1rem}.legend i{display:inline-block;width:.8rem;
height:.8rem;margin-right:.3rem;vertical-align:middle}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _when(ts: int) -> str:
    if not ts:
        return "never"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<span><i style="background:{COLOURS[i % len(COLOURS)]}"></i>{_e(n)}</span>'
        for i, n in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


def bar_chart(
    title: str, rows: Sequence[tuple[str, Sequence[float]]], series: Sequence[str]
) -> str:
    """Horizontal bars: one group per row, one bar per series value."""
    if not rows:
        return f'<p class="note">{_e(title)}: nothing in these bundles.</p>'
    top = max((v for _, values in rows for v in values), default=0) or 1
    bar, gap, label_w, chart_w = 14, 8, 190, 420
    group = bar * len(series) + gap
    height = group * len(rows) + gap
    parts = [
        f'<svg role="img" aria-label="{_e(title)}" width="{label_w + chart_w + 70}" '
        f'height="{height}" viewBox="0 0 {label_w + chart_w + 70} {height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    for r, (label, values) in enumerate(rows):
        y0 = gap + r * group
        parts.append(
            f'<text x="{label_w - 6}" y="{y0 + bar * len(series) / 2 + 4}" '
            f'text-anchor="end" font-size="12">{_e(label)}</text>'
        )
        for s, value in enumerate(values):
            width = chart_w * value / top
            y = y0 + s * bar
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="{bar - 2}" '
                f'fill="{COLOURS[s % len(COLOURS)]}"><title>{_e(label)}, {_e(series[s])}: '
                f"{value:g}</title></rect>"
                f'<text x="{label_w + width + 4:.1f}" y="{y + bar - 4}" font-size="11">'
                f"{value:g}</text>"
            )
    parts.append("</svg>")
    return (_legend(series) if len(series) > 1 else "") + "".join(parts)


def column_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float]]) -> str:
    """Vertical grouped columns over ``labels`` (e.g. days)."""
    if not labels:
        return f'<p class="note">{_e(title)}: nothing in these bundles.</p>'
    names = list(series)
    top = max((v for values in series.values() for v in values), default=0) or 1
    col, gap, chart_h, base = 16, 14, 180, 40
    group = col * len(names) + gap
    width = 50 + group * len(labels)
    parts = [
        f'<svg role="img" aria-label="{_e(title)}" width="{width}" height="{chart_h + base}" '
        f'viewBox="0 0 {width} {chart_h + base}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
        f'<line x1="40" y1="{chart_h}" x2="{width}" y2="{chart_h}" stroke="#718096"/>',
        f'<text x="36" y="12" text-anchor="end" font-size="11">{top:g}</text>',
        f'<text x="36" y="{chart_h}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, label in enumerate(labels):
        x0 = 46 + i * group
        for s, name in enumerate(names):
            value = series[name][i]
            h = (chart_h - 10) * value / top
            parts.append(
                f'<rect x="{x0 + s * col}" y="{chart_h - h:.1f}" width="{col - 2}" '
                f'height="{h:.1f}" fill="{COLOURS[s % len(COLOURS)]}"><title>{_e(label)}, '
                f"{_e(name)}: {value:g}</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + col * len(names) / 2}" y="{chart_h + 16}" text-anchor="middle" '
            f'font-size="10">{_e(label[5:] if len(label) == 10 else label)}</text>'
        )
    parts.append("</svg>")
    return _legend(names) + "".join(parts)


def _table(head: Sequence[str], rows: Sequence[Sequence[object]], numeric: set[int]) -> str:
    if not rows:
        return ""
    th = "".join(
        f'<th class="{"n" if i in numeric else ""}">{_e(h)}</th>' for i, h in enumerate(head)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"n" if i in numeric else ""}">{_e(v)}</td>' for i, v in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def render(summary: AuditSummary, *, generated: int, sources: Sequence[str]) -> str:
    """The whole page."""
    s = summary
    days = sorted(set(s.lookups_per_day) | set(s.hits_per_day))
    credentials = sorted(s.lookups_per_credential)
    detail_keys = sorted(s.details)
    sections = [
        '<h2 id="lookups">Lookups and hits per day</h2>',
        '<p class="note">People checked (one lookup checks one person; a manifest many) and '
        f"hits, per UTC day. People not checkable: {s.unchecked}.</p>",
        column_chart(
            "Lookups and hits per day",
            days,
            {
                "people checked": [s.lookups_per_day[d] for d in days],
                "hits": [s.hits_per_day[d] for d in days],
            },
        ),
        _table(
            ["day", "people checked", "hits"],
            [(d, s.lookups_per_day[d], s.hits_per_day[d]) for d in days],
            {1, 2},
        ),
        '<h2 id="credentials">Lookups and hits per credential</h2>',
        bar_chart(
            "Lookups and hits per credential",
            [(c, (s.lookups_per_credential[c], s.hits_per_credential[c])) for c in credentials],
            ("people checked", "hits"),
        ),
        _table(
            ["node:credential", "people checked", "hits"],
            [(c, s.lookups_per_credential[c], s.hits_per_credential[c]) for c in credentials],
            {1, 2},
        ),
        '<h2 id="details">Detail requests per peer and outcome</h2>',
        '<p class="note">"out": requests a node made to the origin of a hit; "in": requests '
        "an origin answered.</p>",
        bar_chart(
            "Detail requests per peer and outcome",
            [
                (f"{n} {d} {p}: {o}", (float(s.details[(n, d, p, o)]),))
                for n, d, p, o in detail_keys
            ],
            ("requests",),
        ),
        _table(
            ["node", "direction", "peer", "outcome", "requests"],
            [(*k, s.details[k]) for k in detail_keys],
            {4},
        ),
        '<h2 id="removals">Time for removals to be confirmed</h2>',
        "<p class=\"note\">From the origin's removal of a record to the peer's first signed "
        "receipt of a batch made at or after it.</p>",
        bar_chart(
            "Removal confirmation time per peer (seconds)",
            [
                (f"{c.origin} → {c.peer}", (c.median or 0.0, float(c.worst or 0)))
                for c in s.confirmations
            ],
            ("median", "worst"),
        ),
        _table(
            ["origin", "peer", "confirmed", "median", "worst", "not yet confirmed"],
            [
                (
                    c.origin,
                    c.peer,
                    len(c.seconds),
                    _duration(c.median),
                    _duration(c.worst),
                    c.unconfirmed,
                )
                for c in s.confirmations
            ],
            {2, 5},
        ),
        '<h2 id="rejections">Rejections and refused calls</h2>',
        bar_chart(
            "Rejections by origin and reason",
            [
                (f"{n} rejected {o}: {r}", (float(v),))
                for (n, o, r), v in sorted(s.rejections.items())
            ],
            ("rejections",),
        ),
        _table(
            ["node", "kind", "calls"],
            [(n, k, v) for (n, k), v in sorted(s.refusals.items())],
            {2},
        )
        or '<p class="note">No refused calls.</p>',
        '<h2 id="witnesses">Witnesses\' coverage</h2>',
        bar_chart(
            "Checkpoints cosigned per witness",
            [
                (f"{c.node} by {w}", (float(n), float(c.checkpoints)))
                for c in s.coverage
                for w, n in c.by_witness.items()
            ],
            ("cosigned", "checkpoints"),
        ),
        _table(
            ["log", "checkpoints", "not cosigned", "latest size", "latest cosigned by"],
            [
                (
                    c.node,
                    c.checkpoints,
                    c.uncosigned,
                    c.latest_size,
                    ", ".join(c.latest_cosigners) or "nobody",
                )
                for c in s.coverage
            ],
            {1, 2, 3},
        ),
    ]
    listing = "".join(f"<li>{_e(src)}</li>" for src in sources)
    entries = ", ".join(f"{_e(n)}: {s.entries[n]} entries" for n in s.nodes)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>wlx audit report: {_e(', '.join(s.nodes))}</title><style>{CSS}</style></head>"
        "<body><h1>wlx audit report</h1>"
        f"<p>Logs of <strong>{_e(', '.join(s.nodes))}</strong> ({entries}), verified "
        f"offline; events from {_when(s.first)} to {_when(s.last)}. Generated {_when(generated)}."
        '</p><p class="note">Counted from the signed exchange logs, which hold no name, date of '
        "birth or document number: lookups by credential and purpose, listings by reference.</p>"
        f'<ul class="note">{listing}</ul>' + "".join(sections) + "</body></html>\n"
    )
