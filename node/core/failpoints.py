"""Crash points for tests: ``WLX_FAILPOINT=name`` kills the process there.

Tests of crash safety start a real node process with this variable set and
check that, after a restart, nothing was lost or half-applied.  When the
variable is unset (always, in production) ``hit`` is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "WLX_FAILPOINT"


def hit(name: str) -> None:
    """SIGKILL this process if ``WLX_FAILPOINT`` names this point."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
