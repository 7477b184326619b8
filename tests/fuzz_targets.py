"""Fuzz targets: every reader of untrusted bytes, as ``f(data) -> None``.

Each target feeds its input to one reader and swallows only the error
class that reader promises; anything else escaping is a bug.  Used by the
hypothesis properties (tests/test_untrusted_fuzz.py) and by the
coverage-guided run of ``scripts/fuzz`` (atheris).
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from test_codec_fuzz import DECODERS as CODEC_DECODERS

from wlx.crypto.errors import InvalidIdentifier
from wlx.node.audit import witness
from wlx.node.audit.offline import bundle
from wlx.node.audit.offline.errors import AuditFailure
from wlx.node.audit.offline.verify import Keyring, verify_bundle
from wlx.node.core import manifest
from wlx.node.core.config import NodeConfig
from wlx.node.core.errors import Rejection, RejectReason, UserError
from wlx.node.core.node import Node
from wlx.node.core.records import RecordFormat, parse_records
from wlx.node.rpc.transport import Credential

Target = Callable[[bytes], None]


def _codec(decoder: Callable[[bytes], object]) -> Target:
    def target(data: bytes) -> None:
        try:
            decoder(data)
        except Rejection as rejection:
            assert rejection.reason in (RejectReason.MALFORMED, RejectReason.TOO_LARGE)

    return target


DECODERS: dict[str, Target] = {name: _codec(d) for name, d in CODEC_DECODERS.items()}
"""The wire decoders of test_codec_fuzz.py, as targets."""


def decode_bundle_target(data: bytes) -> None:
    with contextlib.suppress(AuditFailure):
        bundle.decode(data)


def verify_bundle_target(cards: Sequence[tuple[str, bytes]]) -> Target:
    keyring = Keyring.from_cards(cards)

    def target(data: bytes) -> None:
        with contextlib.suppress(AuditFailure):
            verify_bundle(data, keyring)

    return target


def witness_restore_target(
    node: Node,
) -> Callable[[bytes, bytes, int, Sequence[bytes], int], None]:
    """A witness given a checkpoint note and a random restore claim."""

    def target(note: bytes, entry: bytes, index: int, proof: Sequence[bytes], old: int) -> None:
        with contextlib.suppress(Rejection, UserError):
            witness.add_checkpoint(
                node,
                note,
                old,
                [],
                submitter=None,
                restore=witness.RestoreClaim(entry, index, list(proof)),
            )

    return target


def records_target(fmt: str) -> Target:
    def target(data: bytes) -> None:
        with contextlib.suppress(UserError):
            parse_records(data.decode("utf-8", errors="replace"), RecordFormat(fmt))

    return target


_counter = itertools.count()


def _file(directory: Path, data: bytes, mode: int = 0o600) -> Path:
    path = directory / f"input-{os.getpid()}-{next(_counter)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def manifest_target(directory: Path) -> Target:
    """``wlx screen``'s reader of a manifest file (every format it detects)."""

    def target(data: bytes) -> None:
        path = _file(directory, data)
        try:
            manifest.parse(
                path.read_bytes().decode("utf-8", errors="replace"), today=datetime.date(2026, 1, 1)
            )
        except (UserError, InvalidIdentifier):
            pass
        finally:
            path.unlink()

    return target


def credential_target(directory: Path) -> Target:
    def target(data: bytes) -> None:
        path = _file(directory, data)
        try:
            Credential.load(path)
        except UserError:
            pass
        finally:
            path.unlink()

    return target


def config_target(data: bytes) -> None:
    with contextlib.suppress(UserError):
        NodeConfig.from_toml(data.decode("utf-8", errors="replace"))
