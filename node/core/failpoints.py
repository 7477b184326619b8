"""Crash points for tests: ``WLX_FAILPOINT=name`` kills the process there.

Tests of crash safety start a real node process with this variable set and
check that, after a restart, nothing was lost or half-applied.
``WLX_FAILPOINT=name@N`` kills it at the N-th time the point is reached (for
instance after the third snapshot part was staged).  When the variable is
unset (always, in production) ``hit`` is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "WLX_FAILPOINT"
_hits: dict[str, int] = {}


def hit(name: str) -> None:
    """SIGKILL this process if ``WLX_FAILPOINT`` names this point (and count)."""
    wanted = os.environ.get(ENV)
    if wanted is None or not wanted.startswith(name):
        return
    point, _, count = wanted.partition("@")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
