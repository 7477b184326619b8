"""What the ``wlx`` command modules share: arguments, exit codes, formatting."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from wlx.node.core.config import check_address
from wlx.node.core.errors import UserError
from wlx.node.core.node import Node
from wlx.node.directory import open_node
from wlx.node.rpc.transport import Credential

EXIT_ERROR = 1
EXIT_DENIED = 3
EXIT_INTERNAL = 70

node_dir = click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), metavar="DIR"
)
insecure_flag = click.option(
    "--insecure-dev",
    is_flag=True,
    help="Plaintext gRPC without authentication. Development only, never in production.",
)


def open_dir(directory: Path, *, insecure_dev: bool = False) -> Node:
    """Open the node in ``directory`` (one-line errors on failure)."""
    return open_node(directory, insecure_dev=insecure_dev)


@contextmanager
def node_at(directory: Path, *, insecure_dev: bool = False) -> Iterator[Node]:
    """The node in ``directory``, open for the length of a ``with`` block."""
    node = open_dir(directory, insecure_dev=insecure_dev)
    try:
        yield node
    finally:
        node.close()


def when(ts: int) -> str:
    """A Unix time for people: ``2026-11-26 10:22:54Z``, or "never"."""
    if not ts:
        return "never"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def client_target(
    address: str | None, credential_file: Path | None, insecure_dev: bool
) -> tuple[str, Credential | None]:
    """Where a client command connects, and with which credential.

    Raises:
        UserError: no credential (and not --insecure-dev), or no address.
    """
    credential = None
    if credential_file is not None:
        credential = Credential.load(credential_file)
    elif not insecure_dev:
        raise UserError("give your credential with --credential FILE (from wlx credential issue)")
    target = address or (credential.address if credential else None)
    if not target:
        raise UserError("give the node's address with --node HOST:PORT")
    return check_address(target), credential
