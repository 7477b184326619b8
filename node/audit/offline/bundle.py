"""The audit bundle: a node's exchange log, checkpoints and cosignatures in one file.

docs/audit.md §6.  A bundle is UTF-8 text, one item per line, each line
ending in ``\\n``:

1. a header, canonical JSON:
   ``{"card":...,"checkpoints":K,"entries":N,"format":"wlx-audit-bundle/1",
   "node":...,"witnessed":W}`` -- ``card`` is the node's identity card file
   as a string;
2. the N log entries, 0 to N-1, each exactly the bytes that were hashed
   into the log (an entry is canonical JSON: it never holds a raw newline);
3. K lines ``{"checkpoint":NOTE}``: the checkpoints, smallest first, each a
   signed note with the node's signature and its witnesses' cosignatures;
4. W lines ``{"witnessed":NOTE}``: for each peer whose log the node
   witnesses (by node id), the largest checkpoint of it the node cosigned.

"Canonical JSON" is UTF-8 JSON with sorted keys, no insignificant
whitespace, and only the escapes JSON requires -- Python's
``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.
:func:`decode` accepts a line only if re-encoding what it parsed gives the
same bytes, so every byte of a bundle is either covered by a hash or a
signature, or fixed by this format: no byte can change unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wlx.crypto.card import check_node_id
from wlx.crypto.errors import MalformedError
from wlx.node.audit.offline.errors import AuditFailure

ENTRY_FORMAT = 1
"""The ``v`` of every exchange-log entry (docs/audit.md §1)."""

FORMAT = "wlx-audit-bundle/1"
HEADER_KEYS = frozenset({"card", "checkpoints", "entries", "format", "node", "witnessed"})


@dataclass(frozen=True)
class Bundle:
    """A node's exchange log as exported (nothing here is verified yet)."""

    node: str
    card: bytes
    """The node's identity card file."""
    entries: tuple[bytes, ...]
    checkpoints: tuple[bytes, ...]
    """Signed notes, with cosignature lines, smallest size first."""
    witnessed: tuple[bytes, ...]
    """Peers' signed checkpoint notes that the node cosigned, by peer."""


def canonical_json(obj: Any) -> bytes:
    """The canonical JSON encoding of ``obj`` (see the module docstring)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("repeated name")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def parse_json(data: bytes) -> Any:
    """Parse UTF-8 JSON (RFC 8259 only: no NaN or Infinity) refusing repeated names.

    Raises:
        ValueError: not UTF-8 JSON, or an object repeats a name.
    """
    try:
        return json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_repeats, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(str(exc)) from None


def encode(bundle: Bundle) -> bytes:
    """The bundle's bytes.

    Raises:
        ValueError: an entry holds a newline or is not UTF-8, or a note or
            the card is not UTF-8.
    """
    for entry in bundle.entries:
        if b"\n" in entry:
            raise ValueError("an entry holds a newline")
        entry.decode("utf-8")
    header = {
        "card": bundle.card.decode("utf-8"),
        "checkpoints": len(bundle.checkpoints),
        "entries": len(bundle.entries),
        "format": FORMAT,
        "node": bundle.node,
        "witnessed": len(bundle.witnessed),
    }
    lines = [
        canonical_json(header),
        *bundle.entries,
        *(canonical_json({"checkpoint": n.decode("utf-8")}) for n in bundle.checkpoints),
        *(canonical_json({"witnessed": n.decode("utf-8")}) for n in bundle.witnessed),
    ]
    return b"".join(line + b"\n" for line in lines)


def _json_line(line: bytes, where: str) -> Any:
    try:
        obj = parse_json(line)
    except ValueError:
        raise AuditFailure(where, "format", "not a JSON line") from None
    if canonical_json(obj) != line:
        raise AuditFailure(where, "format", "not in canonical JSON form")
    return obj


def _count(header: dict[str, Any], key: str) -> int:
    value = header[key]
    if type(value) is not int or value < 0:
        raise AuditFailure("bundle header", "format", f"{key} is not a count")
    return value


def _notes(lines: Sequence[bytes], key: str, what: str) -> tuple[bytes, ...]:
    notes = []
    for i, line in enumerate(lines):
        obj = _json_line(line, f"{what} {i}")
        if not isinstance(obj, dict) or set(obj) != {key} or not isinstance(obj[key], str):
            raise AuditFailure(f"{what} {i}", "format", f'not a {{"{key}": NOTE}} line')
        notes.append(obj[key].encode("utf-8"))
    return tuple(notes)


def decode(data: bytes) -> Bundle:
    """Parse a bundle strictly (format and canonical form; no cryptography).

    Raises:
        AuditFailure: naming the line and the check that failed.
    """
    if not data.endswith(b"\n"):
        raise AuditFailure("bundle", "format", "does not end in a newline (truncated?)")
    lines = data[:-1].split(b"\n")
    header = _json_line(lines[0], "bundle header")
    if not isinstance(header, dict) or set(header) != HEADER_KEYS:
        raise AuditFailure("bundle header", "format", f"fields are not {sorted(HEADER_KEYS)}")
    if header["format"] != FORMAT:
        raise AuditFailure("bundle header", "format", f"format is not {FORMAT}")
    node, card = header["node"], header["card"]
    try:
        if not isinstance(node, str) or not isinstance(card, str):
            raise MalformedError("node or card is not a string")
        check_node_id(node)
    except MalformedError as exc:
        raise AuditFailure("bundle header", "format", str(exc)) from None
    n, k, w = (_count(header, key) for key in ("entries", "checkpoints", "witnessed"))
    if len(lines) - 1 != n + k + w:
        raise AuditFailure(
            "bundle",
            "format",
            f"holds {len(lines) - 1} lines after the header, but the header announces "
            f"{n} entries, {k} checkpoints and {w} witnessed checkpoints",
        )
    return Bundle(
        node=node,
        card=card.encode("utf-8"),
        entries=tuple(lines[1 : 1 + n]),
        checkpoints=_notes(lines[1 + n : 1 + n + k], "checkpoint", "checkpoint"),
        witnessed=_notes(lines[1 + n + k :], "witnessed", "witnessed checkpoint"),
    )
