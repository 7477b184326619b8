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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import grpc

from wlx.crypto.errors import InvalidIdentifier
from wlx.node import origin
from wlx.node.app import Node, init_node, open_node
from wlx.node.config import StorageConfig, check_address
from wlx.node.errors import InternalError, UserError, WlxError
from wlx.node.lookup import Hit, Query
from wlx.node.model import RecordError, parse_records
from wlx.node.status import from_rpc_error
from wlx.node.wire import hit_from_pb, query_to_pb
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

EXIT_ERROR = 1
EXIT_DENIED = 3
EXIT_INTERNAL = 70
LOOKUP_TIMEOUT = 10.0

log = logging.getLogger("wlx.cli")
F = TypeVar("F", bound=Callable[..., Any])

node_dir = click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), metavar="DIR"
)


def _setup_logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _open(directory: Path) -> Node:
    return open_node(directory)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what the node does to stderr.")
@click.version_option(package_name="wlx")
def cli(verbose: bool) -> None:
    """wlx: federated watchlist exchange.

    Each country runs a node; nodes exchange signed, encrypted deltas of
    their watchlists as keyed tokens, and answer border lookups locally.
    """
    _setup_logging(logging.INFO if verbose else logging.WARNING)


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
        storage = StorageConfig(backend="postgresql", dsn=dsn, schema=schema)
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
    node = _open(directory)
    try:
        if fingerprint:
            click.echo(node.card.fingerprint())
        else:
            click.echo(node.card.raw.decode("utf-8"), nl=False)
    finally:
        node.close()


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
def peer_add(
    directory: Path, card_file: Path, address: str, expect_fingerprint: str | None
) -> None:
    """Trust the node whose identity card is CARD_FILE."""
    check_address(address)
    try:
        card_bytes = card_file.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {card_file}: {exc.strerror}") from None
    node = _open(directory)
    try:
        card = origin.add_peer(node, card_bytes, address, expect_fingerprint)
    finally:
        node.close()
    click.echo(f"trusted peer {card.node_id} at {address}")
    click.echo(f"fingerprint: {card.fingerprint()} (compare it with the peer's operator)")


@peer.command("list")
@node_dir
def peer_list(directory: Path) -> None:
    """List the trusted peers."""
    from wlx.crypto.card import parse_card

    node = _open(directory)
    try:
        with node.store.read() as tx:
            peers = tx.list_peers()
    finally:
        node.close()
    for row in peers:
        click.echo(f"{row.node_id}\t{row.address}\t{parse_card(row.card).fingerprint()}")


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
    type=click.Choice(["jsonl", "csv"]),
    help="File format (default: from the file name; .csv is CSV, anything else JSON Lines).",
)
def records_import(directory: Path, file: Path, fmt: str | None) -> None:
    """Import records from a JSON Lines or CSV FILE: all of them, or none."""
    fmt = fmt or ("csv" if file.suffix.lower() == ".csv" else "jsonl")
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{file} is not UTF-8 text") from None
    try:
        parsed = parse_records(text, fmt)
    except RecordError as exc:
        raise UserError(f"{file}: {exc}; nothing was imported") from None
    node = _open(directory)
    try:
        result = origin.import_records(node, parsed)
    finally:
        node.close()
    click.echo(
        f"imported {len(parsed)} records: {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )


@records.command("remove")
@node_dir
@click.argument("record_id")
def records_remove(directory: Path, record_id: str) -> None:
    """Remove the record RECORD_ID; peers receive the removal at their next sync."""
    node = _open(directory)
    try:
        origin.remove_record(node, record_id)
    finally:
        node.close()
    click.echo(f"removed {record_id}")


@records.command("suspend")
@node_dir
@click.argument("record_id")
def records_suspend(directory: Path, record_id: str) -> None:
    """Suspend RECORD_ID while it is contested: peers still see the hit, with no action."""
    node = _open(directory)
    try:
        changed = origin.suspend_record(node, record_id, suspended=True)
    finally:
        node.close()
    click.echo(f"suspended {record_id}" if changed else f"{record_id} was already suspended")


@records.command("reinstate")
@node_dir
@click.argument("record_id")
def records_reinstate(directory: Path, record_id: str) -> None:
    """Lift the suspension of RECORD_ID."""
    node = _open(directory)
    try:
        changed = origin.suspend_record(node, record_id, suspended=False)
    finally:
        node.close()
    click.echo(f"reinstated {record_id}" if changed else f"{record_id} was not suspended")


@records.command("count")
@node_dir
def records_count(directory: Path) -> None:
    """Print how many records the node lists."""
    node = _open(directory)
    try:
        with node.store.read() as tx:
            click.echo(tx.count_records())
    finally:
        node.close()


# ------------------------------------------------------------------ running


@cli.command()
@node_dir
@click.option("--sync-interval", type=click.FloatRange(min=0.1), help="Seconds between pulls.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve Prometheus metrics.")
def serve(directory: Path, sync_interval: float | None, metrics_port: int | None) -> None:
    """Run the node: serve peers and officers, and pull from peers on an interval."""
    from prometheus_client import start_http_server

    from wlx.node.server import build_server
    from wlx.node.sync import SyncLoop

    logging.getLogger().setLevel(logging.INFO)
    node = _open(directory)
    server, port = build_server(node, node.config.listen)
    server.start()
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1")
    interval = sync_interval or node.config.sync_interval
    loop = SyncLoop(node, interval)
    loop.start()
    log.info("node %s serving on port %d, syncing every %.1fs", node.node_id, port, interval)
    stopped = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        log.info("stopping (%s)", signal.Signals(signum).name)
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, lambda *_: loop.trigger())
    stopped.wait()
    server.stop(grace=5).wait()
    loop.stop()
    node.close()


@cli.command()
@node_dir
@click.option("--peer", "only", help="Only this peer.")
def sync(directory: Path, only: str | None) -> None:
    """Pull once from every peer now, and exit (non-zero if any pull failed)."""
    from wlx.node.sync import describe, sync_all

    node = _open(directory)
    try:
        reports = sync_all(node, only)
    finally:
        node.close()
    if only and not reports:
        raise UserError(f"no trusted peer {only}")
    for report in reports:
        click.echo(describe(report), err=not report.ok)
    failed = any(not r.ok for r in reports)
    if failed:
        sys.exit(EXIT_ERROR)


@cli.command()
@node_dir
def maintain(directory: Path) -> None:
    """Housekeeping now: purge expired listings, enforce retention, compact the logs."""
    from wlx.node.maintenance import maintain as run

    node = _open(directory)
    try:
        report = run(node)
    finally:
        node.close()
    click.echo(
        f"purged {report.purged} expired listings, removed {report.retired} expired own "
        f"records, compacted {report.compacted_batches} batches and "
        f"{report.compacted_changes} change-log entries"
    )


@cli.command()
@node_dir
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(directory: Path, as_json: bool) -> None:
    """Where the node stands with each peer: freshness of their lists here, and
    how far each has confirmed this node's list (unconfirmed removals)."""
    from dataclasses import asdict

    from wlx.node.node_status import node_status

    node = _open(directory)
    try:
        state = node_status(node)
    finally:
        node.close()
    if as_json:
        out = asdict(state)
        for peer, row in zip(state.peers, out["peers"], strict=True):
            row["behind"] = peer.behind
        click.echo(json.dumps(out))
        return
    click.echo(f"node {state.node_id}: {state.own_records} own records")
    for p in state.peers:
        click.echo(f"peer {p.peer} at {p.address}")
        if p.epoch:
            click.echo(
                f"  its list here: {p.listings} listings, epoch {p.epoch} at {p.seq}"
                f" ({p.behind} behind), last sync {_when(p.last_sync)}"
            )
        else:
            click.echo("  its list here: none yet (no snapshot received)")
        if p.last_error:
            click.echo(f"  last error ({_when(p.last_error_at)}): {p.last_error}")
        click.echo(
            f"  our list there: epoch {p.sent_epoch}, made up to {p.sent_seq}, "
            f"confirmed up to {p.acked_seq}" + (f" ({_when(p.acked_at)})" if p.acked_at else "")
        )
        if p.unconfirmed_removals:
            shown = ", ".join(p.unconfirmed_removals[:10])
            more = len(p.unconfirmed_removals) - 10
            click.echo(
                f"  removals not yet confirmed: {shown}" + (f" and {more} more" if more > 0 else "")
            )


def _when(ts: int) -> str:
    import datetime

    if not ts:
        return "never"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# ------------------------------------------------------------------ lookups


def _parse_doc(text: str) -> tuple[str, str, str]:
    parts = text.split(":")
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise UserError("--doc is TYPE:COUNTRY:NUMBER, e.g. P:CHN:E12345678")
    return parts[0].strip(), parts[1].strip(), parts[2].strip()


def _hit_json(hit: Hit) -> dict[str, Any]:
    return {
        "origin": hit.origin,
        "ref": hit.ref,
        "category": hit.category,
        "action": hit.action,
        "matched_on": hit.matched_on,
        "also_matched": list(hit.also_matched),
        "expires": hit.expires,
        "list_synced_at": hit.list_synced_at,
        "suspended": hit.suspended,
    }


def _stub(address: str) -> tuple[grpc.Channel, lookup_pb2_grpc.LookupStub]:
    check_address(address)
    channel = grpc.insecure_channel(address)
    return channel, lookup_pb2_grpc.LookupStub(channel)


@cli.command()
@click.option("--node", "address", required=True, help="HOST:PORT of the local node.")
@click.option("--doc", "docs", multiple=True, help="Document TYPE:COUNTRY:NUMBER (repeatable).")
@click.option("--name", "names", multiple=True, help="Full name, any order (repeatable).")
@click.option("--dob", default="", help="Date of birth: YYYY-MM-DD, YYYY-MM or YYYY.")
@click.option("--purpose", default="border-check", show_default=True, help="Why you look up.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def lookup(
    address: str,
    docs: Sequence[str],
    names: Sequence[str],
    dob: str,
    purpose: str,
    as_json: bool,
) -> None:
    """Check one person against every list the node holds."""
    query = Query(names=tuple(names), dob=dob, documents=tuple(_parse_doc(d) for d in docs))
    query.keys()  # reject an unusable query here, with the same message the node gives
    channel, stub = _stub(address)
    try:
        response = stub.Check(
            lookup_pb2.CheckRequest(person=query_to_pb(query), purpose=purpose),
            timeout=LOOKUP_TIMEOUT,
        )
    except grpc.RpcError as exc:
        raise from_rpc_error(exc, f"node at {address}") from None
    finally:
        channel.close()
    hits = [hit_from_pb(h) for h in response.hits]
    if as_json:
        click.echo(json.dumps({"hits": [_hit_json(h) for h in hits]}))
        return
    if not hits:
        click.echo("no hit")
        return
    for hit in hits:
        also = f" (also {', '.join(hit.also_matched)})" if hit.also_matched else ""
        action = "SUSPENDED, no action" if hit.suspended else f"action {hit.action}"
        click.echo(
            f"HIT {hit.origin} {hit.ref}: {hit.category}, {action}, "
            f"matched on {hit.matched_on}{also}, expires {hit.expires}, "
            f"list as of {_when(hit.list_synced_at)}"
        )


@cli.command()
@click.option("--node", "address", required=True, help="HOST:PORT of the local node.")
@click.argument("ref")
@click.option("--origin", "origin_id", help="Node id of the hit's origin (default: from the hit).")
@click.option("--purpose", required=True, help="Why the record is needed.")
@click.option("--case", "case_id", default="", help="Your case reference.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def detail(
    address: str, ref: str, origin_id: str | None, purpose: str, case_id: str, as_json: bool
) -> None:
    """Ask the origin of a hit for the full record REF (after a lookup that hit).

    The origin decides under its own rules; a denial prints its reason and
    exits with status 3.
    """
    channel, stub = _stub(address)
    try:
        result = stub.Detail(
            lookup_pb2.DetailQuery(
                origin=origin_id or "", ref=ref, purpose=purpose, case_id=case_id
            ),
            timeout=LOOKUP_TIMEOUT * 4,
        )
    except grpc.RpcError as exc:
        raise from_rpc_error(exc, f"node at {address}") from None
    finally:
        channel.close()
    if as_json:
        record = json.loads(result.record_json) if result.granted else None
        click.echo(
            json.dumps({"granted": result.granted, "denial": result.denial, "record": record})
        )
        return
    if not result.granted:
        click.echo(f"DENIED by the origin: {result.denial}")
        sys.exit(EXIT_DENIED)
    record = json.loads(result.record_json)
    for key in (
        "id",
        "names",
        "dob",
        "nationality",
        "sex",
        "documents",
        "category",
        "action",
        "legal_basis",
        "authority",
        "expires",
    ):
        value = record.get(key)
        if key == "documents":
            value = ", ".join(f"{d['type']}:{d['country']}:{d['number']}" for d in value)
        elif isinstance(value, list):
            value = "; ".join(value)
        click.echo(f"{key:<12} {value}")


@cli.command()
@click.option("--node", "address", required=True, help="HOST:PORT of the local node.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--purpose", default="manifest-screening", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def screen(address: str, file: Path, purpose: str, as_json: bool) -> None:
    """Screen a manifest: a JSON Lines FILE of {id, names, dob, documents} per person."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise UserError(f"cannot read {file} as UTF-8 text") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            docs = tuple((d["type"], d["country"], d["number"]) for d in obj.get("documents", []))
            query = Query(tuple(obj.get("names", [])), obj.get("dob", ""), docs)
            entry_id = str(obj.get("id", number))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise UserError(f"{file}: line {number}: not a manifest entry") from None
        entries.append(lookup_pb2.ScreenEntry(id=entry_id, person=query_to_pb(query)))
    channel, stub = _stub(address)
    try:
        response = stub.Screen(
            lookup_pb2.ScreenRequest(entries=entries, purpose=purpose), timeout=LOOKUP_TIMEOUT * 6
        )
    except grpc.RpcError as exc:
        raise from_rpc_error(exc, f"node at {address}") from None
    finally:
        channel.close()
    if as_json:
        out = [
            {"id": r.id, "hits": [_hit_json(hit_from_pb(h)) for h in r.hits], "error": r.error}
            for r in response.results
        ]
        click.echo(json.dumps({"results": out}))
        return
    hits = sum(len(r.hits) for r in response.results)
    errors = sum(1 for r in response.results if r.error)
    click.echo(f"screened {len(response.results)} people: {hits} hits, {errors} not checkable")
    for r in response.results:
        for h in r.hits:
            hit = hit_from_pb(h)
            click.echo(f"HIT {r.id}: {hit.origin} {hit.ref} {hit.category}, action {hit.action}")
        if r.error:
            click.echo(f"NOT CHECKED {r.id}: {r.error}")


# ------------------------------------------------------------------ entry point


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning errors into one line."""
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (UserError, InvalidIdentifier) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except InternalError as exc:
        if os.environ.get("WLX_DEBUG"):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INTERNAL)
    except WlxError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        if os.environ.get("WLX_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} (set WLX_DEBUG=1 for details)", err=True
        )
        sys.exit(EXIT_INTERNAL)
