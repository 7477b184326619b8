"""Log lines for people (text) or for log collectors (``--log-format json``).

Both use UTC timestamps.  A JSON line is one object: ``time`` (RFC 3339,
UTC, milliseconds), ``level``, ``logger``, ``message``, and for an
exception its ``error`` type only.  The node never logs a name, a date of
birth or a document number (SECURITY.md); the JSON form adds nothing the
text form does not have, and leaves out traceback text, which could carry
an exception's arguments.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        out = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__
        return json.dumps(out, ensure_ascii=False)


def text_formatter() -> logging.Formatter:
    """``2026-12-01T14:22:03.123Z INFO wlx.sync: message`` (UTC)."""
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    return formatter


def setup_logging(level: int, log_format: str = "text") -> None:
    """Log to stderr at ``level`` in ``log_format`` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else text_formatter())
    root = logging.getLogger()
    if root.handlers:  # as logging.basicConfig: the first set-up wins, others change nothing
        return
    root.addHandler(handler)
    root.setLevel(level)
