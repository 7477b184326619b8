"""Officer, auditor and operator credentials: issued and revoked by the node.

A credential is a client certificate issued by the node's credential CA,
with its key, in one file (mode 0600) that also pins the node's credential
CA (which a key rotation does not replace, so credentials survive it).
The node keeps every credential's serial, name, role and validity; a
revoked or expired credential is refused on its next call.  ``renew``
replaces one while the old one keeps working for an overlap.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace

from wlx.crypto import tls
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core.errors import AlreadyExists, NotFound, UserError
from wlx.node.core.node import Node
from wlx.node.core.roles import ISSUABLE_ROLES, Role
from wlx.node.directory import cert_validity
from wlx.node.rpc.transport import Credential
from wlx.node.store.base import CredentialRow, Tx

log = logging.getLogger("wlx.credentials")

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DAY = 86_400


def _active(node: Node, name: str) -> list[CredentialRow]:
    now = node.now()
    with node.store.read() as tx:
        return [
            c
            for c in tx.list_credentials()
            if c.name == name and not c.revoked_at and c.expires_at >= now
        ]


def _check_days(days: int) -> None:
    if not 1 <= days <= 3650:
        raise UserError("a credential is valid for 1 to 3650 days")


def issue(node: Node, *, name: str, role: str, days: int = 365) -> Credential:
    """Issue a credential; returns it (the caller writes it to a 0600 file).

    Raises:
        UserError: invalid name, role or validity.
        AlreadyExists: an active credential has that name (renew it instead).
    """
    if not NAME.match(name):
        raise UserError("a credential name is 1-64 of A-Z, a-z, 0-9, '.', '_' and '-'")
    if role not in {r.value for r in ISSUABLE_ROLES}:
        raise UserError(f"a role is one of {', '.join(r.value for r in ISSUABLE_ROLES)}")
    _check_days(days)
    if _active(node, name):
        raise AlreadyExists(f"credential {name!r} exists; use wlx credential renew to replace it")
    return _issue(node, name=name, role=Role(role), days=days)


def renew(node: Node, name: str, *, days: int = 365, overlap_days: int = 7) -> Credential:
    """Issue a new credential of the same name and role as the active one.

    The old credential stays valid for ``overlap_days`` more (never longer
    than it was), so the holder is never without a working credential; with
    ``overlap_days=0`` it is revoked in the same transaction.  Both are
    logged in the exchange log.

    Raises:
        UserError: invalid validity or overlap.
        NotFound: no active credential has that name.
    """
    _check_days(days)
    if not 0 <= overlap_days <= 90:
        raise UserError("--overlap-days is 0 to 90")
    rows = _active(node, name)
    if not rows:
        raise NotFound(f"no active credential named {name!r}; issue one")
    now = node.now()
    ends = now + overlap_days * DAY

    def retire(tx: Tx) -> None:
        for row in rows:
            if overlap_days == 0:
                tx.put_credential(replace(row, revoked_at=now))
                exchange_log.record(
                    tx,
                    node,
                    kind=Event.CREDENTIAL_REVOKED,
                    name=row.name,
                    role=row.role,
                    serial=row.serial,
                )
            elif row.expires_at > ends:
                tx.put_credential(replace(row, expires_at=ends))

    credential = _issue(node, name=name, role=rows[0].role, days=days, also=retire)
    log.info("renewed credential %s; the old one ends in %d days", name, overlap_days)
    return credential


def _issue(
    node: Node, *, name: str, role: Role, days: int, also: Callable[[Tx], None] | None = None
) -> Credential:
    now = node.now()
    not_before, not_after = cert_validity(now, days)
    issued = tls.issue_client_certificate(
        tls.key_from_pem(node.ca_key),
        node.ca_cert,
        name=name,
        role=role,
        not_before=not_before,
        not_after=not_after,
        rng=node.rng,
    )
    with node.store.write() as tx:
        if also is not None:
            also(tx)
        tx.put_credential(CredentialRow(issued.serial, name, role, now, now + days * DAY))
        exchange_log.record(
            tx,
            node,
            now,
            kind=Event.CREDENTIAL_ISSUED,
            name=name,
            role=role,
            serial=issued.serial,
            expires_at=now + days * DAY,
        )
    log.info("issued %s credential %s (serial %s)", role, name, issued.serial)
    return Credential(
        node_id=node.node_id,
        address=node.config.advertise,
        name=name,
        role=role.value,
        cert=issued.cert_pem,
        key=issued.key_pem,
        ca_cert=node.ca_cert,
    )


def revoke(node: Node, name: str) -> int:
    """Revoke every active credential named ``name``; returns how many.

    Raises:
        NotFound: no active credential has that name.
    """
    rows = _active(node, name)
    if not rows:
        raise NotFound(f"no active credential named {name!r}")
    now = node.now()
    with node.store.write() as tx:
        for row in rows:
            tx.put_credential(replace(row, revoked_at=now))
            exchange_log.record(
                tx,
                node,
                now,
                kind=Event.CREDENTIAL_REVOKED,
                name=row.name,
                role=row.role,
                serial=row.serial,
            )
    log.info("revoked credential %s", name)
    return len(rows)


def listing(node: Node) -> list[CredentialRow]:
    """Every credential the node issued, newest first."""
    with node.store.read() as tx:
        return tx.list_credentials()
