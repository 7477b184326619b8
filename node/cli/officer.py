"""``wlx lookup``, ``wlx screen``, ``wlx detail``: what border officers run.

Each connects to the local node over mutual TLS with the officer's
credential file (``wlx credential issue``), which also pins the node's
certificate; ``--node`` defaults to the address in the credential.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import grpc

from wlx.node.cli.common import EXIT_DENIED, client_target, insecure_flag, when
from wlx.node.core.errors import UserError, WlxError
from wlx.node.core.records import FIELDS
from wlx.node.incoming.lookup import Hit, Query
from wlx.node.rpc.status_codes import from_rpc_error
from wlx.node.rpc.transport import client_channel, client_endpoint
from wlx.node.rpc.wire import hit_from_pb, query_to_pb
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

LOOKUP_TIMEOUT = 10.0

node_option = click.option(
    "--node", "address", help="HOST:PORT of the node (default: from the credential)."
)
credential_option = click.option(
    "--credential",
    "credential_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your credential file (from wlx credential issue).",
)


def _stub(
    address: str | None, credential_file: Path | None, insecure_dev: bool
) -> tuple[Callable[[grpc.RpcError], WlxError], grpc.Channel, lookup_pb2_grpc.LookupStub]:
    """A stub for the node, and how to explain a failed call to it."""
    target, credential = client_target(address, credential_file, insecure_dev)
    channel = client_channel(target, credential)
    endpoint = client_endpoint(target, credential)

    def failure(exc: grpc.RpcError) -> WlxError:
        return from_rpc_error(exc, f"your node at {target}", endpoint)

    return failure, channel, lookup_pb2_grpc.LookupStub(channel)


def _parse_doc(text: str) -> tuple[str, str, str]:
    parts = text.split(":")
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise UserError("--doc is TYPE:COUNTRY:NUMBER, e.g. P:CHN:E12345678")
    return parts[0].strip(), parts[1].strip(), parts[2].strip()


def hit_json(hit: Hit) -> dict[str, Any]:
    """A hit as JSON (the fields of ``wlx lookup --json``)."""
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


@click.command()
@node_option
@credential_option
@insecure_flag
@click.option("--doc", "docs", multiple=True, help="Document TYPE:COUNTRY:NUMBER (repeatable).")
@click.option("--name", "names", multiple=True, help="Full name, any order (repeatable).")
@click.option("--dob", default="", help="Date of birth: YYYY-MM-DD, YYYY-MM or YYYY.")
@click.option("--purpose", default="border-check", show_default=True, help="Why you look up.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def lookup(
    address: str | None,
    credential_file: Path | None,
    insecure_dev: bool,
    docs: Sequence[str],
    names: Sequence[str],
    dob: str,
    purpose: str,
    as_json: bool,
) -> None:
    """Check one person against every list the node holds."""
    query = Query(names=tuple(names), dob=dob, documents=tuple(_parse_doc(d) for d in docs))
    query.keys()  # reject an unusable query here, with the same message the node gives
    failure, channel, stub = _stub(address, credential_file, insecure_dev)
    try:
        response = stub.Check(
            lookup_pb2.CheckRequest(person=query_to_pb(query), purpose=purpose),
            timeout=LOOKUP_TIMEOUT,
        )
    except grpc.RpcError as exc:
        raise failure(exc) from None
    finally:
        channel.close()
    hits = [hit_from_pb(h) for h in response.hits]
    if as_json:
        click.echo(json.dumps({"hits": [hit_json(h) for h in hits]}))
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
            f"list as of {when(hit.list_synced_at)}"
        )


@click.command()
@node_option
@credential_option
@insecure_flag
@click.argument("ref")
@click.option("--origin", "origin_id", help="Node id of the hit's origin (default: from the hit).")
@click.option("--purpose", required=True, help="Why the record is needed.")
@click.option("--case", "case_id", default="", help="Your case reference.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def detail(
    address: str | None,
    credential_file: Path | None,
    insecure_dev: bool,
    ref: str,
    origin_id: str | None,
    purpose: str,
    case_id: str,
    as_json: bool,
) -> None:
    """Ask the origin of a hit for the full record REF (after a lookup that hit).

    The origin decides under its own rules; a denial prints its reason and
    exits with status 3.
    """
    failure, channel, stub = _stub(address, credential_file, insecure_dev)
    try:
        result = stub.Detail(
            lookup_pb2.DetailQuery(
                origin=origin_id or "", ref=ref, purpose=purpose, case_id=case_id
            ),
            timeout=LOOKUP_TIMEOUT * 4,
        )
    except grpc.RpcError as exc:
        raise failure(exc) from None
    finally:
        channel.close()
    if as_json:
        record = json.loads(result.record_json) if result.granted else None
        click.echo(
            json.dumps({"granted": result.granted, "denial": result.denial, "record": record})
        )
        if not result.granted:
            sys.exit(EXIT_DENIED)
        return
    if not result.granted:
        click.echo(f"DENIED by the origin: {result.denial}")
        sys.exit(EXIT_DENIED)
    record = json.loads(result.record_json)
    for key in FIELDS:
        value = record.get(key)
        if key == "documents":
            value = ", ".join(f"{d['type']}:{d['country']}:{d['number']}" for d in value)
        elif isinstance(value, list):
            value = "; ".join(value)
        click.echo(f"{key:<12} {value}")


def _manifest(file: Path) -> list[lookup_pb2.ScreenEntry]:
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
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
            # ValueError: bad JSON, or a number of over 4,300 digits; RecursionError: nesting
            raise UserError(f"{file}: line {number}: not a manifest entry") from None
        entries.append(lookup_pb2.ScreenEntry(id=entry_id, person=query_to_pb(query)))
    return entries


@click.command()
@node_option
@credential_option
@insecure_flag
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--purpose", default="manifest-screening", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def screen(
    address: str | None,
    credential_file: Path | None,
    insecure_dev: bool,
    file: Path,
    purpose: str,
    as_json: bool,
) -> None:
    """Screen a manifest: a JSON Lines FILE of {id, names, dob, documents} per person."""
    entries = _manifest(file)
    failure, channel, stub = _stub(address, credential_file, insecure_dev)
    try:
        response = stub.Screen(
            lookup_pb2.ScreenRequest(entries=entries, purpose=purpose), timeout=LOOKUP_TIMEOUT * 6
        )
    except grpc.RpcError as exc:
        raise failure(exc) from None
    finally:
        channel.close()
    if as_json:
        out = [
            {"id": r.id, "hits": [hit_json(hit_from_pb(h)) for h in r.hits], "error": r.error}
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
            action = "SUSPENDED, no action" if hit.suspended else f"action {hit.action}"
            click.echo(f"HIT {r.id}: {hit.origin} {hit.ref} {hit.category}, {action}")
        if r.error:
            click.echo(f"NOT CHECKED {r.id}: {r.error}")


COMMANDS = (lookup, detail, screen)
