"""The offline audit verifier runs with nothing but identity cards: it imports
none of the node's storage or transport (issue 8), so an auditor can run it
on a machine without gRPC or a database driver."""

from __future__ import annotations

import subprocess
import sys

BLOCKER = """
import sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"grpc", "psycopg", "psycopg_pool", "sqlite3", "_sqlite3"}:
            raise ImportError(f"{name} is not available to the offline verifier")
        return None

sys.meta_path.insert(0, Blocker())
import wlx.node.audit.offline.verify, wlx.node.audit.offline.bundle, wlx.node.audit.offline.reconcile
forbidden = sorted(
    m for m in sys.modules
    if m.split(".")[0] in {"grpc", "psycopg"}
    or m.startswith(("wlx.node.store", "wlx.node.rpc", "wlx.node.directory", "wlx.v1"))
)
print(",".join(forbidden))
"""


def test_the_offline_verifier_imports_no_storage_or_transport() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""
