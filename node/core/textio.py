"""Reading JSON Lines safely: line breaks, hostile numbers and nesting, and hints.

``str.splitlines()`` also splits at U+2028, U+2029, U+0085 and other
characters that may stand inside a JSON string; JSON Lines are separated by
``\\n`` only (an optional ``\\r`` before it is dropped).  A number of more
than 4,300 digits or nesting deeper than 200 levels is refused with the
line, not a crash.  The first bad line of a file that is not JSON Lines
(a JSON array, pretty-printed JSON) gets a hint saying what to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from wlx.node.core.errors import UserError

MAX_DEPTH = 200


class JsonLineError(UserError):
    """A line that is not one JSON value; names the line, never its content."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def lines(text: str) -> Iterator[tuple[int, str]]:
    """``(1-based number, line)`` of ``text``, split at ``\\n`` only."""
    return numbered(text.split("\n"))


def numbered(source: Iterable[str]) -> Iterator[tuple[int, str]]:
    """``(1-based number, line)`` of lines that end at ``\\n`` (or not at
    all), without their ending: a file opened with ``newline="\\n"``, which
    splits at ``\\n`` only, is read one line at a time."""
    for number, line in enumerate(source, start=1):
        yield number, line.removesuffix("\n").removesuffix("\r")


def _depth_ok(line: str) -> bool:
    """False if brackets nest deeper than ``MAX_DEPTH`` (counted outside strings)."""
    if line.count("[") + line.count("{") <= MAX_DEPTH:
        return True  # the common case, without a scan in Python
    depth = 0
    in_string = escaped = False
    for char in line:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif char in "]}":
            depth -= 1
    return True


def _hint(first: str, number: int, line: str) -> str:
    stripped = line.strip()
    if number == 1 and stripped.startswith("["):
        return (
            "; the file is a JSON array, but one JSON object per line is expected"
            " (convert it with: jq -c '.[]' FILE)"
        )
    if stripped in ("{", "[") or (number > 1 and stripped.startswith('"')):
        return (
            "; the file looks like pretty-printed JSON, but one JSON object per line is expected"
            " (convert it with: jq -c . FILE)"
        )
    first = first.lstrip("\ufeff")
    if number == 1 and ("," in first or ";" in first) and not first.lstrip().startswith("{"):
        return "; this looks like CSV: give --format csv or name the file .csv"
    return ""


def json_lines(text: str | Iterable[tuple[int, str]]) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line of a JSON Lines
    ``text``, or of ``(number, line)`` pairs read one at a time (``numbered``).

    Raises:
        JsonLineError: the first line that is not one JSON value (with a hint
            for a JSON array, pretty-printed JSON or CSV), a number of more
            than 4,300 digits, or nesting deeper than 200 levels.
    """
    first: str | None = None
    for number, line in lines(text) if isinstance(text, str) else text:
        if first is None:
            first = line
        if not line.strip():
            continue
        if not _depth_ok(line):
            raise JsonLineError(number, f"JSON nested deeper than {MAX_DEPTH} levels")
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JsonLineError(
                number, f"not valid JSON ({exc.msg}){_hint(first, number, line)}"
            ) from None
        except (ValueError, RecursionError):
            # int() refuses more than 4,300 digits (CVE-2020-10735 limit).
            raise JsonLineError(number, "a number is too long (more than 4,300 digits)") from None
        yield number, value


def json_objects(text: str | Iterable[tuple[int, str]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Like ``json_lines``, but every value must be a JSON object.

    Raises:
        JsonLineError: as ``json_lines``, or a value that is not an object
            (with a hint for a JSON array on one line).
    """
    for number, value in json_lines(text):
        if not isinstance(value, dict):
            hint = ""
            if isinstance(value, list) and number == 1:
                hint = (
                    "; the file is a JSON array, but one JSON object per line is expected"
                    " (convert it with: jq -c '.[]' FILE)"
                )
            raise JsonLineError(number, f"not a JSON object{hint}")
        yield number, value
