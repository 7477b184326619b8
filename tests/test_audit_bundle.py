"""Audit bundles: export, offline verification, and every kind of tampering
failing with the right reason (docs/audit.md §6-§7)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from support.audit import (
    NODES,
    bundle_of,
    entries_of,
    forge,
    keyring,
    signing_keys,
    witnessed_federation,
)
from support.nodes import Federation, FederationMaker

from wlx.node.audit.offline.bundle import decode, encode, parse_json
from wlx.node.audit.offline.errors import AuditFailure
from wlx.node.audit.offline.verify import verify_bundle
from wlx.node.cli.main import main


@pytest.fixture
def fed(federation: FederationMaker) -> Federation:
    return witnessed_federation(federation)


def fails(data: bytes, fed: Federation, nodes: list[str] = NODES, **kw: Any) -> AuditFailure:
    with pytest.raises(AuditFailure) as err:
        verify_bundle(data, keyring(fed, nodes), **kw)
    return err.value


def with_entries(data: bytes, entries: list[bytes]) -> bytes:
    """The bundle with other entry lines (the header's count adjusted to match)."""
    b = decode(data)
    return encode(type(b)(b.node, b.card, tuple(entries), b.checkpoints, b.witnessed))


def test_exported_bundles_verify(fed: Federation) -> None:
    for node_id in NODES:
        verified = verify_bundle(bundle_of(fed, node_id), keyring(fed))
        peers = sorted(set(NODES) - {node_id})
        assert verified.node == node_id
        assert list(verified.latest.cosigners) == peers
        assert [p for p, _ in verified.witnessed] == peers
        assert verified.latest.checkpoint.size == len(verified.entries)
    report = verified.report()
    assert report[0] == "bundle of AR: verified" and "cosigned by CN, RU" in report[3]


def test_a_flipped_entry_byte_breaks_the_root(fed: Federation) -> None:
    data = bundle_of(fed, "CN")
    entries = list(decode(data).entries)
    j = len(entries) - 3
    digit = entries[j].index(b'"time":') + 8
    entries[j] = entries[j][:digit] + bytes([entries[j][digit] ^ 1]) + entries[j][digit + 1 :]
    err = fails(with_entries(data, entries), fed)
    assert err.check == "root" and err.where.startswith("checkpoint 0 (size")
    assert f"entry from 0 to {len(entries) - 1}" in err.detail


def test_a_dropped_entry_is_named(fed: Federation) -> None:
    data = bundle_of(fed, "CN")
    entries = list(decode(data).entries)
    del entries[5]
    err = fails(with_entries(data, entries), fed)
    assert (err.where, err.check) == ("entry 5", "position")
    assert "idx is 6" in err.detail


def test_a_truncated_log_is_caught(fed: Federation) -> None:
    data = bundle_of(fed, "RU")
    entries = list(decode(data).entries)
    err = fails(with_entries(data, entries[:-2]), fed)
    assert err.check == "coverage" and "truncated" in err.detail
    # Cut inside a line: the bundle no longer parses.
    assert fails(data[:-10], fed).check == "format"


def test_a_resigned_fork_without_cosignatures_is_caught(fed: Federation) -> None:
    data = bundle_of(fed, "CN")
    keys = signing_keys(fed)
    rows = entries_of(data)
    lookup = next(i for i, e in enumerate(rows) if e["kind"] == "detail.in")
    rows[lookup]["outcome"] = "not-found"  # CN rewrites history: it never disclosed the record
    forged = forge(data, keys, rows)  # every checkpoint re-signed by CN's own key
    err = fails(forged, fed)
    assert err.check == "cosignatures" and "cosigned by 0 trusted witnesses" in err.detail
    # Keeping the witnesses' old cosignature lines does not help: they do not verify.
    b = decode(forged)
    originals = decode(data).checkpoints
    stale = [
        n + old[old.index("— wlx.witness/".encode()) :]
        for n, old in zip(b.checkpoints, originals, strict=True)
    ]
    err = fails(encode(type(b)(b.node, b.card, b.entries, tuple(stale), b.witnessed)), fed)
    assert err.check == "cosignature" and "wlx.witness/" in err.detail
    # With colluding witnesses' keys it would verify: a witness is what stops it.
    assert verify_bundle(forge(data, keys, rows, cosigners=["RU"]), keyring(fed)).node == "CN"


def test_untrusted_cards_and_unknown_cosigners_fail(fed: Federation, tmp_path: Path) -> None:
    data = bundle_of(fed, "CN")
    err = fails(data, fed, nodes=["RU", "AR"])
    assert (err.where, err.check) == ("identity card", "card")
    err = fails(data, fed, nodes=["CN", "RU"])
    assert err.check == "signature" and "unknown key wlx.witness/AR" in err.detail
    # Not strict (reconcile without cards): unknown cosigners are ignored.
    verified = verify_bundle(data, keyring(fed, ["CN", "RU"]), strict=False)
    assert list(verified.latest.cosigners) == ["RU"]
    assert fails(data, fed, min_cosigners=3).check == "cosignatures"


def test_a_flipped_byte_anywhere_is_caught(fed: Federation) -> None:
    data = bundle_of(fed, "RU")
    ring = keyring(fed)
    verify_bundle(data, ring)
    rng = random.Random(4)
    # Every position, each with its lowest bit flipped and with a random other value.
    for pos in range(len(data)):
        for mask in (0x01, rng.randrange(2, 256)):
            tampered = data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1 :]
            with pytest.raises(AuditFailure):
                verify_bundle(tampered, ring)


# ------------------------------------------------------------------ the command line


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main([*args])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_cli_export_verify_reconcile(
    fed: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cards = tmp_path / "cards"
    cards.mkdir()
    for node_id in NODES:
        (cards / f"{node_id}.card.json").write_bytes(fed[node_id].node.card.raw)
    fed.channel("CN", role="officer", name="post-cn-2")  # the log grows: a new checkpoint
    code, out, _ = run(capsys, "audit", "checkpoint", str(fed["CN"].node.paths.root))
    size = verify_bundle(bundle_of(fed, "CN"), keyring(fed)).latest.checkpoint.size
    assert code == 0 and out.splitlines()[0].startswith(
        f"checkpoint of CN's log: size {size}, root "
    )
    assert out.splitlines()[1:] == [f"AR: cosigned size {size}", f"RU: cosigned size {size}"]
    bundles = {}
    for node_id in ("CN", "RU"):
        bundles[node_id] = tmp_path / f"{node_id}.bundle.jsonl"
        code, out, _ = run(
            capsys, "audit", "export", str(fed[node_id].node.paths.root), str(bundles[node_id])
        )
        assert code == 0 and out.startswith(f"exported {node_id}'s log")
    code, out, err = run(capsys, "audit", "verify", str(bundles["CN"]), "--cards", str(cards))
    assert code == 0 and out.splitlines()[0] == "bundle of CN: verified" and err == ""
    code, out, _ = run(
        capsys, "audit", "reconcile", str(bundles["CN"]), str(bundles["RU"]), "--cards", str(cards)
    )
    assert code == 0 and out.splitlines()[-1] == "no discrepancy"

    # A tampered bundle: exit 1, one line naming the entry and the check.
    data = bundles["CN"].read_bytes()
    entries = list(decode(data).entries)
    del entries[3]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(with_entries(data, entries))
    code, out, err = run(capsys, "audit", "verify", str(bad), "--cards", str(cards))
    assert code == 1 and out == ""
    assert (
        err
        == f"error: {bad}: entry 3: position: idx is 4: an entry is missing, added or moved before it\n"
    )

    # User errors: one line each.
    for args, message in [
        (["audit", "verify", str(bad), "--cards", str(tmp_path / "none")], "no identity cards"),
        (["audit", "verify", str(tmp_path / "missing"), "--cards", str(cards)], "cannot read"),
        (["audit", "export", str(bad)], "give the node directory and OUT"),
    ]:
        code, _, err = run(capsys, *args)
        assert code == 1 and err.startswith("error: ") and message in err and err.count("\n") == 1


def test_reconcile_without_cards_uses_the_bundles_own(
    fed: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = []
    for node_id in ("RU", "AR"):
        path = tmp_path / f"{node_id}.jsonl"
        path.write_bytes(bundle_of(fed, node_id))
        paths.append(str(path))
    code, out, _ = run(capsys, "audit", "reconcile", *paths)
    assert code == 0 and "pass --cards" in out.splitlines()[0]
    assert json.loads(decode(Path(paths[0]).read_bytes()).entries[0])["kind"] == "node.created"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_bundle_json_is_rfc_8259_only(constant: str) -> None:
    """MUST-1.2-3: NaN and Infinity are not JSON, in a bundle either."""
    assert parse_json(b'{"a":1}') == {"a": 1}
    with pytest.raises(ValueError):
        parse_json(f'{{"a":{constant}}}'.encode())
