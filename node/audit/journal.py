"""Group commit for events that happen on the read path (lookups).

A lookup changes nothing but the exchange log, and must not answer before
its entry is durable.  Committing one transaction per lookup makes the
log's fsync the cost of every lookup; instead, lookups hand their entries to
one writer thread, which appends everything waiting in one transaction
(``exchange_log.record_many``: one lock and one write of each kind for the
group) and then releases every caller whose entry it committed.  Latency
stays one commit; throughput grows with concurrency.

(A caller committing its group itself, with no writer thread, was tried
and measured no better served: the next group then waits for a worker
thread to get the interpreter back, where the writer starts it at once.)
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event, Field
from wlx.node.core.errors import InternalError
from wlx.node.core.node import Node

log = logging.getLogger("wlx.audit")

MAX_GROUP = 512
WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class _Item:
    kind: Event
    fields: dict[str, Field]
    done: Future[int]


class Journal:
    """Appends entries from many threads, in groups; ``record`` returns once durable."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="wlx-journal", daemon=True)
        self._thread.start()

    def record(self, kind: Event, **fields: Field) -> int:
        """Append one entry; returns its index once committed.

        Raises:
            InternalError: the entry could not be committed.
        """
        item = _Item(kind, fields, Future())
        self._queue.put(item)
        try:
            return item.done.result(timeout=WAIT_SECONDS)
        except TimeoutError:
            raise InternalError("the exchange log did not commit in time") from None

    def close(self) -> None:
        """Commit what is queued and stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout=WAIT_SECONDS)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Item]) -> None:
        node = self._node
        try:
            with node.store.write() as tx:
                first = exchange_log.record_many(tx, node, [(i.kind, i.fields) for i in group])
        except Exception as exc:
            log.exception("could not commit %d exchange-log entries", len(group))
            for item in group:
                item.done.set_exception(InternalError(f"exchange log unavailable ({exc})"))
            return
        for index, item in enumerate(group, start=first):
            item.done.set_result(index)
