"""``wlx lookup``, ``wlx screen``, ``wlx detail``: what border officers run.

Each connects to the local node over mutual TLS with the officer's
credential file (``wlx credential issue``), which also pins the node's
certificate; ``--node`` defaults to the address in the credential.  All of
them go through ``wlx.client``, the same API a border system embeds.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from wlx.client import Client, Entry, Hit, read_mrz
from wlx.client.types import query_of
from wlx.node.cli.common import EXIT_DENIED, EXIT_ERROR, client_target, insecure_flag, when
from wlx.node.cli.screening import Report, report_json, report_lines
from wlx.node.core import manifest
from wlx.node.core.errors import UserError
from wlx.node.core.records import FIELDS
from wlx.node.protocol.lookup_rules import (
    MAX_DOCUMENTS_PER_PERSON,
    MAX_NAMES_PER_PERSON,
    MAX_SCREEN_ENTRIES,
)

EXIT_NOT_FULLY_CHECKED = 4
"""Exit status of ``wlx lookup --strict`` when a field of the person could not be used."""

node_option = click.option(
    "--node", "address", help="HOST:PORT of the node (default: from the credential)."
)
credential_option = click.option(
    "--credential",
    "credential_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your credential file (from wlx credential issue).",
)


def connect(address: str | None, credential_file: Path | None, insecure_dev: bool) -> Client:
    """A client for a CLI command (one-line errors for a missing credential or address)."""
    target, credential = client_target(address, credential_file, insecure_dev)
    return Client(target, credential)


def hit_json(hit: Hit) -> dict[str, Any]:
    """A hit as JSON (the fields of ``wlx lookup --json``)."""
    return {
        "origin": hit.origin,
        "ref": hit.ref,
        "category": hit.category,
        "action": hit.action,
        "matched_on": hit.matched_on,
        "strength": hit.strength,
        "also_matched": list(hit.also_matched),
        "expires": hit.expires,
        "list_synced_at": hit.list_synced_at,
        "suspended": hit.suspended,
    }


def _mrz_text(lines: Sequence[str]) -> str | None:
    if not lines:
        return None
    text = "\n".join(lines).replace("\\n", "\n")
    if text.strip() == "-":
        text = sys.stdin.read()
    read_mrz(text)  # refuse a bad MRZ before connecting (the error names the field)
    return text


@click.command()
@node_option
@credential_option
@insecure_flag
@click.option("--doc", "docs", multiple=True, help="Document TYPE:COUNTRY:NUMBER (repeatable).")
@click.option("--name", "names", multiple=True, help="Full name, any order (repeatable).")
@click.option("--dob", default="", help="Date of birth: YYYY-MM-DD, YYYY-MM or YYYY.")
@click.option(
    "--mrz",
    "mrz_lines",
    multiple=True,
    help="A line of the document's machine-readable zone (repeat per line, or - for stdin).",
)
@click.option("--purpose", default="border-check", show_default=True, help="Why you look up.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--strict", is_flag=True, help=f"Exit {EXIT_NOT_FULLY_CHECKED} if a field was unusable."
)
def lookup(
    address: str | None,
    credential_file: Path | None,
    insecure_dev: bool,
    docs: Sequence[str],
    names: Sequence[str],
    dob: str,
    mrz_lines: Sequence[str],
    purpose: str,
    as_json: bool,
    strict: bool,
) -> None:
    """Check one person against every list the node holds.

    With --mrz, the MRZ's check digits are verified and its name, date of
    birth and document are looked up.  A field that cannot be used (say a
    two-letter country) does not stop the check of the others; the output
    then says NOT FULLY CHECKED and which field, and --strict makes that a
    non-zero exit.
    """
    mrz = _mrz_text(mrz_lines)
    # Validate the query before connecting; the node leaves out the same fields.
    query = query_of(Entry.build("", names=names, dob=dob, documents=docs, mrz=mrz))
    unusable = query.checked().unusable
    with connect(address, credential_file, insecure_dev) as client:
        hits = client.lookup(names=names, dob=dob, documents=docs, mrz=mrz, purpose=purpose)
        not_checked = client.last_not_checked
    if as_json:
        out = {
            "hits": [hit_json(h) for h in hits],
            "not_checked": [{"origin": o, "reason": r} for o, r in not_checked],
            "fully_checked": not unusable and not not_checked,
        }
        click.echo(json.dumps({**out, "unusable": list(unusable)}))
    else:
        for origin_id, reason in not_checked:
            click.echo(
                f"NOT CHECKED: online listings of {origin_id} ({reason}); "
                "no hit from them is not a miss"
            )
        for hit in hits:
            also = f" (also {', '.join(hit.also_matched)})" if hit.also_matched else ""
            action = "SUSPENDED, no action" if hit.suspended else f"action {hit.action}"
            click.echo(
                f"HIT {hit.origin} {hit.ref}: {hit.category}, {action}, "
                f"matched on {hit.matched_on}{also} [{hit.strength}], expires {hit.expires}, "
                f"list as of {when(hit.list_synced_at)}"
            )
        for problem in unusable:
            click.echo(f"NOT USED {problem}")
        if unusable:
            click.echo(f"NOT FULLY CHECKED: {len(unusable)} field(s) could not be used")
        elif not hits:
            click.echo("no hit")
    if (unusable or not_checked) and strict:
        sys.exit(EXIT_NOT_FULLY_CHECKED)


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
    with connect(address, credential_file, insecure_dev) as client:
        result = client.detail(ref, purpose=purpose, case=case_id, origin=origin_id)
    if as_json:
        click.echo(
            json.dumps(
                {"granted": result.granted, "denial": result.denial, "record": result.record}
            )
        )
        if not result.granted:
            sys.exit(EXIT_DENIED)
        return
    if not result.granted or result.record is None:
        click.echo(f"DENIED by the origin: {result.denial}")
        sys.exit(EXIT_DENIED)
    for key in FIELDS:
        value = result.record.get(key)
        if key == "documents" and isinstance(value, list):
            value = ", ".join(f"{d['type']}:{d['country']}:{d['number']}" for d in value)
        elif isinstance(value, list):
            value = "; ".join(value)
        click.echo(f"{key:<12} {value}")


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A ``rich`` progress bar on stderr when it is a terminal; otherwise nothing.

    Yields a function taking the number of items done so far.
    """
    if not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def read_text(file: Path) -> str:
    """A file's UTF-8 text (one-line errors)."""
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"cannot read {file} as UTF-8 text") from None


@click.command()
@node_option
@credential_option
@insecure_flag
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(manifest.FORMATS),
    help="Manifest format (default: recognised from the content).",
)
@click.option("--purpose", default="manifest-screening", show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_SCREEN_ENTRIES),
    default=MAX_SCREEN_ENTRIES,
    show_default=True,
    help="People per call to the node.",
)
@click.option("--strict", is_flag=True, help="Exit 1 if anyone was not fully checked.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def screen(
    address: str | None,
    credential_file: Path | None,
    insecure_dev: bool,
    file: Path,
    fmt: str | None,
    purpose: str,
    batch_size: int,
    strict: bool,
    as_json: bool,
) -> None:
    """Screen a manifest FILE: UN/EDIFACT PAXLST, CSV, JSON Lines or MRZ lines.

    Large manifests are sent in batches.  The report lists every hit, every
    person not fully checked and why, and the counts (docs/manifests.md).
    """
    try:
        parsed = manifest.parse(
            read_text(file),
            fmt,
            today=datetime.datetime.now(datetime.UTC).date(),
            limits=(MAX_NAMES_PER_PERSON, MAX_DOCUMENTS_PER_PERSON),
        )
    except manifest.ManifestError as exc:
        raise UserError(f"{file}: {exc}") from None
    with (
        connect(address, credential_file, insecure_dev) as client,
        progress_bar(len(parsed.entries), "screening") as progress,
    ):
        client.batch_size = batch_size
        results = client.screen(parsed.entries, purpose=purpose, progress=progress)
    report = Report.of(parsed, results, batch_size=client.batch_size)
    if as_json:
        click.echo(json.dumps(report_json(report, hit_json)))
    else:
        for line in report_lines(report):
            click.echo(line)
    if strict and report.not_fully_checked:
        sys.exit(EXIT_ERROR)


COMMANDS = (lookup, detail, screen)
