"""The one error an audit check raises: where, which check, why."""

from __future__ import annotations

from wlx.node.core.errors import PeerError


class AuditFailure(PeerError):
    """A bundle (or a log read from a node) failed a check: the fault of the
    node whose log it is (or of whoever altered the bundle), never the
    auditor's.

    ``where`` names the item ("entry 17", "checkpoint 3 (size 40)",
    "bundle header"), ``check`` the check ("root", "signature",
    "cosignature", "consistency", "coverage", "position", "format", ...),
    ``detail`` what was found.  The message never holds a personal
    identifier: bundles hold none.
    """

    def __init__(self, where: str, check: str, detail: str) -> None:
        super().__init__(f"{where}: {check}: {detail}")
        self.where = where
        self.check = check
        self.detail = detail
