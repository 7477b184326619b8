"""``wlx credential``, ``wlx keys``, ``wlx epoch``: security administration.

Run by the node's operator on the node directory.
"""

from __future__ import annotations

from pathlib import Path

import click

from wlx.node import backup
from wlx.node.cli.common import node_at, node_dir, when
from wlx.node.core.config import Backend, write_private
from wlx.node.core.errors import UserError
from wlx.node.rpc.announce import announce
from wlx.node.rpc.auth import ISSUABLE_ROLES
from wlx.node.trust import credentials, lifecycle


@click.group()
def credential() -> None:
    """Issue and revoke officer, auditor and operator credentials."""


@credential.command("issue")
@node_dir
@click.option(
    "--role", required=True, type=click.Choice([r.value for r in ISSUABLE_ROLES]), help="Role."
)
@click.option("--name", required=True, help="Who or what holds it, e.g. post-17.")
@click.option("--days", default=365, show_default=True, type=int, help="Validity.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Credential file to write, mode 0600 (default: NAME.credential.json).",
)
def credential_issue(directory: Path, role: str, name: str, days: int, out: Path | None) -> None:
    """Issue a credential: a client certificate and key in one file (mode 0600)."""
    path = out or Path(f"{name}.credential.json")
    if path.exists():
        raise UserError(f"{path} exists already; not overwriting a credential")
    with node_at(directory) as node:
        issued = credentials.issue(node, name=name, role=role, days=days)
    write_private(path, issued.to_bytes())
    click.echo(f"issued {role} credential {name} for node {issued.node_id}: {path}")


@credential.command("renew")
@node_dir
@click.argument("name")
@click.option("--days", default=365, show_default=True, type=int, help="Validity of the new one.")
@click.option(
    "--overlap-days",
    default=7,
    show_default=True,
    type=int,
    help="Days the old credential keeps working (0: revoked now).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Credential file to write, mode 0600 (default: NAME.credential.json).",
)
def credential_renew(
    directory: Path, name: str, days: int, overlap_days: int, out: Path | None
) -> None:
    """Issue a new credential NAME (same role) while the old one keeps working.

    Also the way to move a credential issued before this version (which
    pinned the node's TLS certificate) to one that survives key rotations.
    """
    path = out or Path(f"{name}.credential.json")
    if path.exists():
        raise UserError(f"{path} exists already; not overwriting a credential (give --out)")
    with node_at(directory) as node:
        issued = credentials.renew(node, name, days=days, overlap_days=overlap_days)
    write_private(path, issued.to_bytes())
    old = "revoked" if overlap_days == 0 else f"works {overlap_days} more days at most"
    click.echo(f"renewed {issued.role} credential {name}: {path} (the old one {old})")


@credential.command("revoke")
@node_dir
@click.argument("name")
def credential_revoke(directory: Path, name: str) -> None:
    """Revoke the credential NAME: its next call is refused."""
    with node_at(directory) as node:
        credentials.revoke(node, name)
    click.echo(f"revoked {name}")


@credential.command("list")
@node_dir
def credential_list(directory: Path) -> None:
    """List the credentials the node issued."""
    with node_at(directory) as node:
        rows = credentials.listing(node)
        now = node.now()
    for row in rows:
        state = (
            f"revoked {when(row.revoked_at)}"
            if row.revoked_at
            else ("expired" if row.expires_at < now else f"valid until {when(row.expires_at)}")
        )
        click.echo(f"{row.name}\t{row.role}\t{row.serial}\t{state}")


@click.group()
def keys() -> None:
    """Manage the node's own keys."""


@keys.command("rotate")
@node_dir
def keys_rotate(directory: Path) -> None:
    """New identity, box and TLS keys; peers accept the new card on the old key's word.

    The new card is delivered to every peer now (over the old TLS identity)
    or, for peers that cannot be reached, by `wlx serve` later.  Every
    peer's stream starts a new epoch.
    """
    with node_at(directory) as node:
        card = lifecycle.rotate_keys(node)
        delivered = announce(node)
        with node.store.read() as tx:
            pending = [peer for peer, _ in tx.list_announcements()]
    click.echo(f"new identity fingerprint: {card.fingerprint()}")
    if delivered:
        click.echo(f"new card delivered to: {', '.join(delivered)}")
    if pending:
        click.echo(f"not yet delivered (will retry): {', '.join(pending)}")
    click.echo(
        "credentials keep working (they pin the credential CA); a credential file holding "
        "node_cert (format 1) does not: wlx credential renew DIR NAME"
    )


@click.group()
def epoch() -> None:
    """Token epochs: the pairwise keys peers hold tokens under."""


@epoch.command("new")
@node_dir
@click.option("--peer", help="Only this peer (default: every peer).")
def epoch_new(directory: Path, peer: str | None) -> None:
    """Start a new token epoch: peers resync under a fresh key; old tokens are dropped."""
    with node_at(directory) as node:
        started = lifecycle.new_epoch(node, peer)
    for name, number in started:
        click.echo(f"{name}: epoch {number}")


@click.command("backup")
@node_dir
@click.argument("out", type=click.Path(path_type=Path))
def backup_cmd(directory: Path, out: Path) -> None:
    """Back up the node in DIR to the new directory OUT (safe while it serves).

    OUT holds the configuration, every key (mode 0600) and, for SQLite, a
    consistent copy of the store.  Keep it as safe as the keys themselves.
    """
    with node_at(directory) as node:
        info = backup.backup(node, out)
    click.echo(f"backed up node {info.node_id} to {out}")
    if info.backend == Backend.POSTGRESQL:
        schema = node.config.storage.schema
        click.echo(
            f"the store is in PostgreSQL: also run pg_dump --schema={schema} "
            "(docs/operations.md, section 9)"
        )


@click.command("restore")
@click.argument("source", metavar="BACKUP", type=click.Path(file_okay=False, path_type=Path))
@node_dir
def restore_cmd(source: Path, directory: Path) -> None:
    """Restore the node backed up in BACKUP into DIR (new or empty), and declare it.

    The exchange log records the restore; every peer resyncs in a new epoch
    at its next pull, and witnesses accept the log from the restore on.
    """
    node = backup.restore(source, directory)
    try:
        click.echo(f"restored node {node.node_id} into {directory}")
        click.echo("start it with wlx serve; peers resync in new epochs at their next pull")
    finally:
        node.close()


COMMANDS = (credential, keys, epoch, backup_cmd, restore_cmd)
