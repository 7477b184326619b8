"""The ``wlx`` command line.

Every error a user can cause ends in one line on stderr, ``error: ...``, and
exit status 1 (2 for a usage error); never a traceback (set ``WLX_DEBUG=1``
to see one for an internal error).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from wlx.node.cli import acceptance as peer_acceptance
from wlx.node.cli import admin, audit, officer
from wlx.node.cli.common import EXIT_ERROR, EXIT_INTERNAL, insecure_flag, node_at, node_dir, when
from wlx.node.cli.logs import setup_logging
from wlx.node.core.acceptance import preset
from wlx.node.core.config import Backend, StorageConfig, check_address
from wlx.node.core.errors import InternalError, Unavailable, UserError, WlxError
from wlx.node.core.node import Node
from wlx.node.core.records import Record, RecordError, RecordFormat, detect_format
from wlx.node.directory import init_node
from wlx.node.outgoing import origin, ownlist
from wlx.node.protocol.versions import NODE_SPEAKS
from wlx.node.trust import lifecycle

log = logging.getLogger("wlx.cli")
F = TypeVar("F", bound=Callable[..., Any])


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what the node does to stderr.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text or as JSON objects (UTC timestamps).",
)
@click.version_option(package_name="wlx")
def cli(verbose: bool, log_format: str) -> None:
    """wlx: federated watchlist exchange.

    Each country runs a node; nodes exchange signed, encrypted deltas of
    their watchlists as keyed tokens, and answer border lookups locally.
    """
    # Without -v only errors are logged: a command's failure is its own one
    # "error:" line (a warning such as a failed pull would repeat it).
    setup_logging(logging.INFO if verbose else logging.ERROR, log_format)


# ------------------------------------------------------------------ node set-up


@cli.command()
@node_dir
@click.option("--node-id", required=True, help="Node id, e.g. a country code: CN.")
@click.option("--listen", required=True, help="HOST:PORT to serve on, e.g. 127.0.0.1:7001.")
@click.option("--advertise", help="HOST:PORT peers use to reach this node (default: --listen).")
@click.option("--sync-interval", type=click.FloatRange(min=0.1), help="Seconds between pulls.")
@click.option(
    "--postgres",
    "dsn",
    metavar="DSN",
    help="Keep state in PostgreSQL (e.g. postgresql://127.0.0.1:5432/test) instead of SQLite.",
)
@click.option("--pg-schema", help="PostgreSQL schema for this node (default: wlx_<node id>).")
def init(
    directory: Path,
    node_id: str,
    listen: str,
    advertise: str | None,
    sync_interval: float | None,
    dsn: str | None,
    pg_schema: str | None,
) -> None:
    """Create a node in DIR: keys, configuration, identity card, empty store."""
    storage = StorageConfig()
    if dsn:
        schema = pg_schema or f"wlx_{node_id.lower().replace('-', '_')}"
        storage = StorageConfig(backend=Backend.POSTGRESQL, dsn=dsn, schema=schema)
    node = init_node(
        directory,
        node_id=node_id,
        listen=listen,
        advertise=advertise,
        storage=storage,
        sync_interval=sync_interval,
    )
    click.echo(f"created node {node.node_id} in {directory}")
    click.echo(f"identity fingerprint: {node.card.fingerprint()}")
    click.echo(f"give peers its card: wlx identity {directory} > {node.node_id}.card.json")
    node.close()


@cli.command()
@node_dir
@click.option("--fingerprint", is_flag=True, help="Print only the identity fingerprint.")
def identity(directory: Path, fingerprint: bool) -> None:
    """Print the node's public identity card (to give to peers out of band)."""
    with node_at(directory) as node:
        if fingerprint:
            click.echo(node.card.fingerprint())
        else:
            click.echo(node.card.raw.decode("utf-8"), nl=False)


@cli.group()
def peer() -> None:
    """Manage the trusted peers."""


@peer.command("add")
@node_dir
@click.argument("card_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--address", required=True, help="HOST:PORT of the peer's node.")
@click.option(
    "--expect-fingerprint",
    help="Refuse the card unless its fingerprint is this (as read to you out of band).",
)
@click.option(
    "--replace",
    "replace_key",
    is_flag=True,
    help="The peer has a new identity key its old one did not endorse: revoke the old one "
    "(purging its listings) and trust this card.",
)
@click.option(
    "--acceptance",
    "acceptance_preset",
    help="Acceptance policy preset for this origin (default accept-all; see `wlx peer accept`).",
)
def peer_add(
    directory: Path,
    card_file: Path,
    address: str,
    expect_fingerprint: str | None,
    replace_key: bool,
    acceptance_preset: str | None,
) -> None:
    """Trust the node whose identity card is CARD_FILE.

    Adding the card of a trusted peer again updates its address.  A card
    with another identity key is refused (both fingerprints shown) unless
    the old key endorsed it (a key rotation) or --replace is given.
    """
    check_address(address)
    if acceptance_preset is not None:
        preset(acceptance_preset)  # an unknown preset: refused before anything changes
    try:
        card_bytes = card_file.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {card_file}: {exc.strerror}") from None
    with node_at(directory) as node:
        card = origin.add_peer(
            node, card_bytes, address, expect_fingerprint, replace_key=replace_key
        )
        accepts = peer_acceptance.write_default(node, card.node_id, acceptance_preset)
    click.echo(f"trusted peer {card.node_id} at {address}")
    click.echo(f"fingerprint: {card.fingerprint()} (compare it with the peer's operator)")
    if accepts is not None:
        click.echo(f"acceptance policy for {card.node_id}: {accepts}")


@peer.command("list")
@node_dir
def peer_list(directory: Path) -> None:
    """List the trusted peers, and what this node holds of each (``peer accept``)."""
    from wlx.crypto.card import parse_card

    with node_at(directory) as node, node.store.read() as tx:
        peers = [(row, peer_acceptance.describe_local(tx, row.node_id)) for row in tx.list_peers()]
    for row, accepts in peers:
        fingerprint = parse_card(row.card).fingerprint()
        click.echo(f"{row.node_id}\t{row.address}\t{fingerprint}\twe hold: {accepts}")


@peer.command("revoke")
@node_dir
@click.argument("peer_id", metavar="PEER")
def peer_revoke(directory: Path, peer_id: str) -> None:
    """Stop trusting PEER: refuse it, purge everything it sent, send it nothing more."""
    with node_at(directory) as node:
        purged = lifecycle.revoke_peer(node, peer_id)
    click.echo(f"revoked {peer_id}; purged {purged} of its listings")


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v for v in value.split(",") if v.strip()]


@peer.command("policy")
@node_dir
@click.argument("peer_id", metavar="PEER")
@click.option("--categories", help="Share only these categories (comma-separated).")
@click.option("--actions", help="Share only listings requesting these actions.")
@click.option("--records", "record_ids", help="Share only these record ids.")
@click.option("--exclude", help="Never share these record ids.")
@click.option(
    "--online-categories",
    help="Put these categories on the online tier for PEER (docs/protocol.md §15).",
)
@click.option("--all", "share_all", is_flag=True, help="Share everything (clear the policy).")
def peer_policy(
    directory: Path,
    peer_id: str,
    categories: str | None,
    actions: str | None,
    record_ids: str | None,
    exclude: str | None,
    online_categories: str | None,
    share_all: bool,
) -> None:
    """Show or set what PEER receives of this node's list.

    Narrowing sends PEER removals of what it may no longer hold; widening
    sends what it now may.
    """
    from wlx.node.core.policy import SharingPolicy

    with node_at(directory) as node:
        with node.store.read() as tx:
            row = tx.get_peer(peer_id)
        if row is None or row.revoked_at:
            raise UserError(f"{peer_id} is not a trusted peer")
        facets = (categories, actions, record_ids, exclude, online_categories)
        if not share_all and all(v is None for v in facets):
            click.echo(f"{peer_id} receives: {SharingPolicy.from_json(row.policy).describe()}")
            return
        policy = (
            SharingPolicy()
            if share_all
            else SharingPolicy.make(
                categories=_csv(categories),
                actions=_csv(actions),
                records=_csv(record_ids),
                exclude=_csv(exclude) or (),
                online_categories=_csv(online_categories) or (),
            )
        )
        removed, added = origin.set_policy(node, peer_id, policy)
    click.echo(
        f"{peer_id} now receives: {policy.describe()} ({removed} removals, {added} additions sent)"
    )


peer.add_command(peer_acceptance.peer_accept)


# ------------------------------------------------------------------ records


@cli.group()
def records() -> None:
    """Manage the node's own list."""


@records.command("import")
@node_dir
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in RecordFormat]),
    help="File format (default: from the file name and content: .csv is CSV; FollowTheMoney "
    "entities are recognised; anything else JSON Lines).",
)
@click.option("--category", help="FtM only: the listings' category, e.g. sanctioned.")
@click.option("--action", help="FtM only: the requested action, e.g. refuse-entry.")
@click.option("--legal-basis", help="FtM only: the legal basis of the listings.")
@click.option("--authority", help="FtM only: the listing authority.")
@click.option("--expires", help="FtM only: last day the listings are valid, YYYY-MM-DD.")
@click.option(
    "--chunk-size",
    type=click.IntRange(1, 100_000),
    default=2_000,
    show_default=True,
    help="Records per transaction while staging and publishing.",
)
def records_import(
    directory: Path,
    file: Path,
    fmt: str | None,
    category: str | None,
    action: str | None,
    legal_basis: str | None,
    authority: str | None,
    expires: str | None,
    chunk_size: int,
) -> None:
    """Import records from a JSON Lines, CSV or FollowTheMoney FILE: all of them, or none.

    The file is read and staged in chunks, then published in short
    transactions: memory stays flat, lookups go on meanwhile, and an
    interrupted import leaves the list as it was, or (once published)
    completes when the node is next opened (docs/operations.md).

    FollowTheMoney (OpenSanctions) Person entities need the listing terms
    FtM does not carry: --category, --action, --legal-basis, --authority and
    --expires (docs/records.md).
    """
    from wlx.node.core.ftm import ListingTerms
    from wlx.node.outgoing import bulk_import

    form = RecordFormat(fmt) if fmt else detect_format(_first_line(file), file.name)
    terms = {
        "category": category,
        "action": action,
        "legal_basis": legal_basis,
        "authority": authority,
        "expires": expires,
    }
    warnings: list[str] = []
    if form == RecordFormat.FTM:
        missing = [f"--{k.replace('_', '-')}" for k, v in terms.items() if not v]
        if missing:
            raise UserError(
                f"a FollowTheMoney import needs {', '.join(missing)} (FtM has no listing terms)"
            )
        listing = ListingTerms(**{k: v or "" for k, v in terms.items()})
    elif any(terms.values()):
        raise UserError("--category, --action, ... are for --format ftm only")
    with node_at(directory) as node:
        watch = _ImportWatch(node.today())
        try:
            with _busy(f"importing {file.name}"):
                if form == RecordFormat.FTM:
                    numbered = _ftm_records(file, listing, warnings)
                else:
                    numbered = _file_records(file, form)
                result = bulk_import.import_stream(node, watch.watch(numbered), chunk=chunk_size)
        except RecordError as exc:
            raise UserError(f"{file}: {exc}; nothing was imported") from None
        except KeyboardInterrupt:
            if bulk_import.published_pending(node):
                raise UserError(
                    "interrupted while publishing: the import completes the next time "
                    "the node is opened (any wlx command)"
                ) from None
            raise UserError("interrupted: nothing was imported") from None
        if watch.late:
            warnings.append(
                f"{watch.late} records have already expired (first: {watch.first_late}); "
                "they match nothing and go at the next maintenance"
            )
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"imported {watch.count} records: {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )


def _first_line(file: Path) -> str:
    """The start of a file's first line (to recognise its format)."""
    try:
        with file.open(encoding="utf-8-sig", errors="replace", newline="\n") as source:
            return source.readline(64 * 1024)
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror}") from None


def _file_records(file: Path, fmt: RecordFormat) -> Iterator[tuple[int, Record]]:
    """``(line, record)`` of a JSON Lines or CSV file, read one line at a time.

    Raises:
        RecordError: a bad line, or no record at all.
        UserError: the file cannot be read, or is not UTF-8.
    """
    from wlx.node.core.records import parse_csv, parse_jsonl
    from wlx.node.core.textio import numbered

    empty = True
    try:
        with file.open(
            encoding="utf-8-sig", newline="" if fmt == RecordFormat.CSV else "\n"
        ) as source:
            parsed = parse_csv(source) if fmt == RecordFormat.CSV else parse_jsonl(numbered(source))
            for pair in parsed:
                empty = False
                yield pair
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"cannot read {file} as UTF-8 text; nothing was imported") from None
    if empty:
        raise RecordError(0, "the file holds no records")


def _ftm_records(file: Path, terms: Any, warnings: list[str]) -> Iterator[tuple[int, Record]]:
    """The Person records of a FollowTheMoney file (read whole: documents
    join their holders from anywhere in the file)."""
    from wlx.node.cli.officer import read_text
    from wlx.node.core.ftm import parse_ftm

    ftm = parse_ftm(read_text(file), terms)
    warnings.extend(ftm.warnings)
    if ftm.skipped:
        skipped = ", ".join(f"{n} {s}" for s, n in sorted(ftm.skipped.items()))
        warnings.append(f"skipped entities that are not persons: {skipped}")
    if not ftm.records:
        raise RecordError(0, "the file holds no Person entities")
    yield from enumerate(ftm.records, start=1)


class _ImportWatch:
    """Counts the records passing into an import, and those already expired."""

    def __init__(self, today: str) -> None:
        self.today = today
        self.count = self.late = 0
        self.first_late = ""

    def watch(self, numbered: Iterator[tuple[int, Record]]) -> Iterator[tuple[int, Record]]:
        for line, record in numbered:
            self.count += 1
            if record.expires < self.today:
                self.late += 1
                if not self.first_late:
                    self.first_late = f"{record.id}, expires {record.expires}"
            yield line, record


@contextmanager
def _busy(label: str) -> Iterator[None]:
    """A spinner on stderr while a long step runs, when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(label):
        yield


@records.command("remove")
@node_dir
@click.argument("record_id")
def records_remove(directory: Path, record_id: str) -> None:
    """Remove the record RECORD_ID; peers receive the removal at their next sync."""
    with node_at(directory) as node:
        ownlist.remove_record(node, record_id)
    click.echo(f"removed {record_id}")


@records.command("suspend")
@node_dir
@click.argument("record_id")
def records_suspend(directory: Path, record_id: str) -> None:
    """Suspend RECORD_ID while it is contested: peers still see the hit, with no action."""
    with node_at(directory) as node:
        changed = ownlist.suspend_record(node, record_id, suspended=True)
    click.echo(f"suspended {record_id}" if changed else f"{record_id} was already suspended")


@records.command("reinstate")
@node_dir
@click.argument("record_id")
def records_reinstate(directory: Path, record_id: str) -> None:
    """Lift the suspension of RECORD_ID."""
    with node_at(directory) as node:
        changed = ownlist.suspend_record(node, record_id, suspended=False)
    click.echo(f"reinstated {record_id}" if changed else f"{record_id} was not suspended")


@records.command("count")
@node_dir
def records_count(directory: Path) -> None:
    """Print how many records the node lists."""
    with node_at(directory) as node, node.store.read() as tx:
        click.echo(tx.count_records())


# ------------------------------------------------------------------ running


@cli.command()
@node_dir
@click.option("--sync-interval", type=click.FloatRange(min=0.1), help="Seconds between pulls.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve /metrics, /healthz and /readyz on this port (default: [metrics] port).",
)
@click.option(
    "--metrics-address", help="Interface for them (default: [metrics] address, 127.0.0.1)."
)
@click.option(
    "--listen",
    help="HOST:PORT to serve gRPC on (default: the node's listen setting); "
    "one per front-end when several serve a PostgreSQL store.",
)
@insecure_flag
def serve(
    directory: Path,
    sync_interval: float | None,
    metrics_port: int | None,
    metrics_address: str | None,
    listen: str | None,
    insecure_dev: bool,
) -> None:
    """Run the node: serve peers and officers, and pull from peers on an interval.

    On SIGTERM or SIGINT the node stops taking traffic (gRPC health and
    /readyz report it not ready), lets calls in progress finish, and exits.

    A node whose store is PostgreSQL may run several of these at once, each
    with its own --listen behind the operator's load balancer: all answer
    calls, one at a time (the leader) syncs, witnesses and does the
    housekeeping (docs/operations.md).  A SQLite store takes one.
    """
    from grpc_health.v1 import health

    from wlx.node.daemon import SyncLoop
    from wlx.node.rpc.auth import RefusalLog
    from wlx.node.rpc.ops import Operations, serve_http
    from wlx.node.rpc.server import SERVICES, build_server

    if listen is not None:
        check_address(listen)  # before anything starts: one line, nothing served
    logging.getLogger().setLevel(logging.INFO)
    with node_at(directory, insecure_dev=insecure_dev) as node, ExitStack() as only:
        if not node.store.shared:
            only.enter_context(_only_frontend(node, directory))
        # What this software speaks, in the card and per peer (B.2): a no-op
        # unless the card or a peer's card changed.
        lifecycle.speak(node, NODE_SPEAKS)
        settings = node.config.metrics
        refusals = RefusalLog(node)
        interval = sync_interval or node.config.sync_interval
        health_servicer = health.HealthServicer()
        ops = Operations(
            node,
            bound=settings.staleness_bound(interval),
            health_servicer=health_servicer,
            services=SERVICES,
        )
        port_setting = metrics_port if metrics_port is not None else settings.port
        http = None
        if port_setting is not None:  # bound first: a port in use fails before gRPC starts
            address = metrics_address or settings.address
            http, http_port = serve_http(ops, address, port_setting)
            log.info("metrics, /healthz and /readyz on http://%s:%d", address, http_port)
        server, port = build_server(
            node, listen or node.config.listen, refusals=refusals, health_servicer=health_servicer
        )
        server.start()
        ops.start()
        loop = SyncLoop(node, interval)
        loop.start()
        log.info("node %s serving on port %d, syncing every %.1fs", node.node_id, port, interval)
        stopped = threading.Event()

        def stop(signum: int, _frame: object) -> None:
            log.info("stopping (%s): draining", signal.Signals(signum).name)
            stopped.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda *_: loop.trigger())
        stopped.wait()
        # Report not ready, stop taking calls, let running ones end (streams are
        # cancelled after the grace period), stop the loop; the store then
        # refuses new transactions and waits for running ones before it closes.
        ops.drain()
        server.stop(grace=DRAIN_SECONDS).wait()
        loop.stop()
        ops.stop()
        refusals.drain()  # the counts of refusals still in their window
        if http is not None:
            http.shutdown()


DRAIN_SECONDS = 5.0


@contextmanager
def _only_frontend(node: Node, directory: Path) -> Iterator[None]:
    """Hold the SQLite store's serve lock for the life of this ``wlx serve``.

    Raises:
        UserError: another ``wlx serve`` of this node holds it (one line).
    """
    with ExitStack() as held:
        try:
            held.enter_context(node.store.exclusive("serve", timeout=0))
        except Unavailable:
            raise UserError(
                f"another wlx serve already runs on {directory}: a SQLite store takes one "
                "front-end (several need a PostgreSQL store, see docs/operations.md)"
            ) from None
        yield


optional_dir = click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), metavar="[DIR]", required=False
)
operator_credential = click.option(
    "--credential",
    "credential_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ask a running node instead, with an operator credential (from wlx credential issue).",
)
node_address = click.option("--node", "address", help="HOST:PORT (default: from the credential).")


def _dir_or_credential(
    directory: Path | None, credential_file: Path | None, remote_dev: bool = False
) -> Path | None:
    """The node directory, or None to ask the running node; one-line errors.

    ``remote_dev``: --insecure-dev with --node, a development node without credentials.
    """
    if directory is not None and credential_file is not None:
        raise UserError("give either the node's DIR or --credential, not both")
    if directory is None and credential_file is None and not remote_dev:
        raise UserError("give the node's DIR, or --credential FILE to ask a running node")
    return directory


@cli.command()
@optional_dir
@click.option("--peer", "only", help="Only this peer (with DIR).")
@operator_credential
@node_address
@insecure_flag
def sync(
    directory: Path | None,
    only: str | None,
    credential_file: Path | None,
    address: str | None,
    insecure_dev: bool,
) -> None:
    """Pull once from every peer now, and exit (non-zero if any pull failed).

    With --credential, the running node does it (wlx.client, operator role).
    """
    from wlx.node.rpc.sync_client import describe, sync_all

    if _dir_or_credential(directory, credential_file, insecure_dev and bool(address)) is None:
        from wlx.node.cli.officer import connect

        if only:
            raise UserError("--peer needs the node's DIR")
        with connect(address, credential_file, insecure_dev) as client:
            lines = client.sync()
        failed_lines = [line for line in lines if line.partition(": ")[2].startswith("failed")]
        for line in lines:
            bad = line in failed_lines
            click.echo(f"error: {line}" if bad else line, err=bad)
        if failed_lines:
            sys.exit(EXIT_ERROR)
        return
    assert directory is not None

    def waiting() -> None:
        click.echo("waiting for this node's running sync (wlx serve) to finish...", err=True)

    with node_at(directory, insecure_dev=insecure_dev) as node, _busy("pulling from peers"):
        reports = sync_all(node, only, on_wait=waiting)
    if only and not reports:
        raise UserError(f"no trusted peer {only}")
    for report in reports:
        click.echo(
            describe(report) if report.ok else f"error: {describe(report)}", err=not report.ok
        )
    failed = any(not r.ok for r in reports)
    if failed:
        sys.exit(EXIT_ERROR)


@cli.command()
@node_dir
def maintain(directory: Path) -> None:
    """Housekeeping now: purge expired listings, enforce retention, compact the logs."""
    from wlx.node.maintenance import maintain as run

    with node_at(directory) as node:
        report = run(node)
    click.echo(
        f"purged {report.purged} expired listings, removed {report.retired} expired own "
        f"records, compacted {report.compacted_batches} batches and "
        f"{report.compacted_changes} change-log entries"
    )


@cli.command()
@optional_dir
@operator_credential
@node_address
@insecure_flag
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(
    directory: Path | None,
    credential_file: Path | None,
    address: str | None,
    insecure_dev: bool,
    as_json: bool,
) -> None:
    """Where the node stands with each peer: freshness of their lists here, and
    how far each has confirmed this node's list (unconfirmed removals).

    With --credential, asks the running node (wlx.client, operator role).
    """
    from dataclasses import asdict

    from wlx.node.report import node_status

    accepting: dict[str, peer_acceptance.PeerAcceptance] = {}
    if _dir_or_credential(directory, credential_file, insecure_dev and bool(address)) is None:
        from wlx.node.cli.officer import connect

        with connect(address, credential_file, insecure_dev) as client:
            state = client.status()
    else:
        assert directory is not None
        with node_at(directory) as node:
            state = node_status(node)
            accepting = peer_acceptance.of_peers(node, [p.peer for p in state.peers])
    if as_json:
        out = asdict(state)
        for peer, row in zip(state.peers, out["peers"], strict=True):
            row["behind"] = peer.behind
            if peer.peer in accepting:
                row["acceptance"] = accepting[peer.peer].as_json
        click.echo(json.dumps(out))
        return
    click.echo(f"node {state.node_id}: {state.own_records} own records")
    for p in state.peers:
        click.echo(f"peer {p.peer} at {p.address}")
        if p.epoch:
            click.echo(
                f"  its list here: {p.listings} listings, epoch {p.epoch} at {p.seq}"
                f" ({p.behind} behind), last sync {when(p.last_sync)}"
            )
        else:
            click.echo("  its list here: none yet (no snapshot received)")
        if p.last_error:
            click.echo(f"  last error ({when(p.last_error_at)}): {p.last_error}")
        click.echo(
            f"  our list there: epoch {p.sent_epoch}, made up to {p.sent_seq}, "
            f"confirmed up to {p.acked_seq}" + (f" ({when(p.acked_at)})" if p.acked_at else "")
        )
        if p.peer in accepting:
            click.echo(f"  we hold of its list: {accepting[p.peer].we_hold}")
            if accepting[p.peer].it_holds is not None:
                click.echo(f"  it holds of ours: {accepting[p.peer].it_holds}")
        if p.unconfirmed_removals:
            shown = ", ".join(p.unconfirmed_removals[:10])
            more = len(p.unconfirmed_removals) - 10
            click.echo(
                f"  removals not yet confirmed: {shown}" + (f" and {more} more" if more > 0 else "")
            )


# ------------------------------------------------------------------ other command groups

for _command in (*officer.COMMANDS, *admin.COMMANDS, *audit.COMMANDS):
    cli.add_command(_command)


# ------------------------------------------------------------------ entry point


def _say_error(exc: Exception) -> None:
    """One ``error:`` line per mistake (a configuration can hold several)."""
    for line in str(exc).splitlines() or [type(exc).__name__]:
        click.echo(f"error: {line}", err=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning errors into one line."""
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        # One line like every other error, not click's usage block.
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see: {exc.ctx.command_path} --help)"
        message = " ".join(exc.format_message().split())
        click.echo(f"error: {message}{hint}", err=True)
        sys.exit(exc.exit_code)
    except UserError as exc:
        _say_error(exc)
        sys.exit(EXIT_ERROR)
    except InternalError as exc:
        if os.environ.get("WLX_DEBUG"):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INTERNAL)
    except WlxError as exc:
        _say_error(exc)
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        if os.environ.get("WLX_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} (set WLX_DEBUG=1 for details)", err=True
        )
        sys.exit(EXIT_INTERNAL)
