"""``wlx audit``: checkpoints, export, and offline verification of exchange logs.

Thin: the checks are in ``wlx.node.audit`` (docs/audit.md).  ``verify`` and
``reconcile`` are offline and need only bundles and identity cards; every
failure is one ``error:`` line naming the item and the check, exit status 1.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import click

from wlx.node.audit import export
from wlx.node.audit.offline import verify
from wlx.node.audit.offline.bundle import decode
from wlx.node.audit.offline.errors import AuditFailure
from wlx.node.audit.offline.reconcile import reconcile
from wlx.node.cli.common import EXIT_ERROR, client_target, insecure_flag, node_at, node_dir
from wlx.node.core.errors import UserError
from wlx.node.rpc import audit_client
from wlx.node.rpc.cosign import checkpoint_round, describe
from wlx.node.rpc.transport import client_channel, client_endpoint

CARD_GLOB = "*.card.json"

bundle_arg = click.Path(dir_okay=False, path_type=Path)


@click.group("audit")
def audit() -> None:
    """The exchange log: checkpoints, bundles for auditors, offline verification."""


@audit.command("checkpoint")
@node_dir
@click.option("--peer", "only", help="Only this witness.")
@insecure_flag
def checkpoint(directory: Path, only: str | None, insecure_dev: bool) -> None:
    """Checkpoint the node's log now and have its peers cosign it (they must be
    serving); non-zero exit if a peer did not cosign."""
    with node_at(directory, insecure_dev=insecure_dev) as node:
        row, reports = checkpoint_round(node, only)
    if only and not reports:
        raise UserError(f"no trusted peer {only}")
    root = base64.b64encode(row.root).decode()
    click.echo(f"checkpoint of {node.node_id}'s log: size {row.size}, root {root}")
    for report in reports:
        click.echo(describe(report), err=not report.ok)
    if any(not r.ok for r in reports):
        sys.exit(EXIT_ERROR)


@audit.command("export")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[DIR] OUT")
@click.option("--node", "address", help="Export from the node at HOST:PORT (Auditor service).")
@click.option(
    "--credential",
    "credential_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your auditor credential file (with --node).",
)
@insecure_flag
def export_cmd(
    paths: tuple[Path, ...], address: str | None, credential_file: Path | None, insecure_dev: bool
) -> None:
    """Write the node's bundle to OUT: its entries, checkpoints with their
    cosignatures, and identity card (docs/audit.md §6).

    From the node directory DIR, or with --node from a running node's
    Auditor service.  The bundle ends at the newest cosigned checkpoint.
    """
    if address is not None or credential_file is not None:
        if len(paths) != 1:
            raise UserError("with --node, give only OUT")
        target, credential = client_target(address, credential_file, insecure_dev)
        channel = client_channel(target, credential)
        try:
            bundle = audit_client.from_auditor(channel, target, client_endpoint(target, credential))
        finally:
            channel.close()
    else:
        if len(paths) != 2:
            raise UserError("give the node directory and OUT (or --node HOST:PORT and OUT)")
        with node_at(paths[0]) as node:
            bundle = export.from_store(node)
    out = paths[-1]
    try:
        written = export.write_bundle(bundle, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    click.echo(
        f"exported {bundle.node}'s log to {out}: {len(bundle.entries)} entries, "
        f"{len(bundle.checkpoints)} checkpoints, {written} bytes"
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None


def _keyring(cards: Path) -> verify.Keyring:
    files = sorted(cards.glob(CARD_GLOB)) if cards.is_dir() else []
    if not files:
        raise UserError(f"no identity cards ({CARD_GLOB}) in {cards}")
    return verify.Keyring.from_cards((f.name, _read(f)) for f in files)


def _verify(
    path: Path, keyring: verify.Keyring, *, min_cosigners: int = 1, strict: bool = True
) -> verify.Verified:
    try:
        return verify.verify_bundle(
            _read(path), keyring, min_cosigners=min_cosigners, strict=strict
        )
    except AuditFailure as exc:
        raise AuditFailure(f"{path}: {exc.where}", exc.check, exc.detail) from None


@audit.command("verify")
@click.argument("bundle", type=bundle_arg)
@click.option(
    "--cards",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Directory of trusted identity cards ({CARD_GLOB}, as `wlx identity` prints them).",
)
@click.option(
    "--min-cosignatures",
    default=1,
    show_default=True,
    type=click.IntRange(min=0),
    help="Witness cosignatures the latest checkpoint needs.",
)
def verify_cmd(bundle: Path, cards: Path, min_cosignatures: int) -> None:
    """Verify BUNDLE offline: every root, signature, cosignature and consistency
    step.  Exit 0 with a report, or 1 naming the first failure."""
    verified = _verify(bundle, _keyring(cards), min_cosigners=min_cosignatures)
    for line in verified.report():
        click.echo(line)


@audit.command("reconcile")
@click.argument("bundle_a", type=bundle_arg)
@click.argument("bundle_b", type=bundle_arg)
@click.option(
    "--cards",
    type=click.Path(file_okay=False, path_type=Path),
    help="Verify both bundles against these trusted cards first (else the bundles' own cards).",
)
def reconcile_cmd(bundle_a: Path, bundle_b: Path, cards: Path | None) -> None:
    """Match what two nodes logged of each other: batches sent and applied with
    the same digest, snapshots, receipts, detail requests, cosigned checkpoints.
    Exit 1 if the logs contradict each other."""
    data = {p: _read(p) for p in (bundle_a, bundle_b)}
    if cards is not None:
        keyring = _keyring(cards)
        a, b = (_verify(p, keyring) for p in (bundle_a, bundle_b))
    else:
        try:
            own = [(str(p), decode(d).card) for p, d in data.items()]
        except AuditFailure as exc:
            raise AuditFailure(f"bundle: {exc.where}", exc.check, exc.detail) from None
        keyring = verify.Keyring.from_cards(own)
        a, b = (_verify(p, keyring, min_cosigners=0, strict=False) for p in data)
        click.echo("(bundles checked against their own cards; pass --cards to check those too)")
    result = reconcile(a, b)
    for line in result.lines():
        click.echo(line)
    if not result.agree:
        raise AuditFailure(
            f"{a.node} and {b.node}",
            "reconcile",
            f"{len(result.discrepancies)} discrepancies between their logs",
        )


def _own_cards(data: dict[Path, bytes]) -> verify.Keyring:
    try:
        return verify.Keyring.from_cards((str(p), decode(d).card) for p, d in data.items())
    except AuditFailure as exc:
        raise AuditFailure(f"bundle: {exc.where}", exc.check, exc.detail) from None


@audit.command("report")
@click.argument("bundles", nargs=-1, required=True, type=bundle_arg)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write (one self-contained page).",
)
@click.option(
    "--cards",
    type=click.Path(file_okay=False, path_type=Path),
    help="Verify the bundles against these trusted cards (else the bundles' own cards).",
)
def report_cmd(bundles: tuple[Path, ...], out: Path, cards: Path | None) -> None:
    """Verify BUNDLES and write a self-contained HTML report of them: lookups and
    hits per day and per credential, detail requests per peer and outcome, time
    for removals to be confirmed, rejections, witnesses' coverage."""
    import time

    from wlx.node.audit.offline.html_report import render
    from wlx.node.audit.offline.summary import summarise

    if len(set(bundles)) != len(bundles):
        raise UserError("a bundle is given twice")
    if cards is not None:
        keyring = _keyring(cards)
        verified = [_verify(p, keyring) for p in bundles]
    else:
        keyring = _own_cards({p: _read(p) for p in bundles})
        verified = [_verify(p, keyring, min_cosigners=0, strict=False) for p in bundles]
    nodes = [v.node for v in verified]
    if len(set(nodes)) != len(nodes):
        raise UserError("two bundles are of the same node's log; give the newest only")
    checked = "verified against --cards" if cards else "checked against their own cards"
    page = render(
        summarise(verified),
        generated=int(time.time()),
        sources=[f"{p.name}: {v.node}, {checked}" for p, v in zip(bundles, verified, strict=True)],
    )
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {out}: report of {', '.join(nodes)} ({len(page):,} bytes)")


COMMANDS = (audit,)
