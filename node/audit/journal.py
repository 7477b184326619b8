"""Group commit for events that happen on the read path (lookups).

A lookup changes nothing but the exchange log, and must not answer before
its entry is durable.  Committing one transaction per lookup makes the
log's fsync the cost of every lookup; instead, concurrent lookups share
commits.  The first caller to find no commit in progress becomes the
*leader*: it takes every entry waiting (its own first among them, up to
``MAX_GROUP``), appends them in one transaction
(``exchange_log.record_many``: one lock and one write of each kind for the
group), then releases every caller whose entry it committed.  Callers that
arrive meanwhile wait; when the commit ends, one of those still waiting
leads the next group.  Latency stays one commit (and a lone caller commits
in its own thread, with no hand-over to another); throughput grows with
concurrency.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event, Field
from wlx.node.core.errors import InternalError
from wlx.node.core.node import Node

log = logging.getLogger("wlx.audit")

MAX_GROUP = 512
WAIT_SECONDS = 30.0


@dataclass
class _Item:
    kind: Event
    fields: dict[str, Field]
    index: int | None = None
    error: InternalError | None = None
    done: bool = False


class Journal:
    """Appends entries from many threads, in groups; ``record`` returns once durable."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._cond = threading.Condition()
        self._waiting: list[_Item] = []
        self._committing = False

    def record(self, kind: Event, **fields: Field) -> int:
        """Append one entry; returns its index once committed.

        Raises:
            InternalError: the entry could not be committed (in time).
        """
        item = _Item(kind, fields)
        deadline = time.monotonic() + WAIT_SECONDS
        with self._cond:
            self._waiting.append(item)
        while group := self._lead_or_wait(item, deadline):
            self._commit(group)
        if item.error is not None:
            raise item.error
        assert item.index is not None
        return item.index

    def close(self) -> None:
        """Wait for a commit in progress (entries are committed by their callers)."""
        deadline = time.monotonic() + WAIT_SECONDS
        with self._cond:
            while self._committing and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)

    def _lead_or_wait(self, item: _Item, deadline: float) -> list[_Item]:
        """Wait while another caller commits; then the group this caller is
        to commit, or nothing once ``item`` is done.

        Raises:
            InternalError: not committed by ``deadline``.
        """
        with self._cond:
            while self._committing and not item.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise InternalError("the exchange log did not commit in time")
                self._cond.wait(left)
            if item.done:
                return []
            self._committing = True
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            return group

    def _commit(self, group: list[_Item]) -> None:
        """Append ``group`` in one transaction, then release its callers (and
        let the next leader in) whatever happened."""
        node = self._node
        error: InternalError | None = InternalError("the exchange log's commit was interrupted")
        first = 0
        try:
            with node.store.write() as tx:
                first = exchange_log.record_many(tx, node, [(i.kind, i.fields) for i in group])
            error = None
        except Exception as exc:
            log.exception("could not commit %d exchange-log entries", len(group))
            error = InternalError(f"exchange log unavailable ({exc})")
        finally:
            with self._cond:
                for index, item in enumerate(group, start=first):
                    item.index, item.error, item.done = index, error, True
                self._committing = False
                self._cond.notify_all()
