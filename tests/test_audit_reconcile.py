"""Reconciling two nodes' bundles: agreement, pending items, and each kind of
contradiction (docs/audit.md §8)."""

from __future__ import annotations

from typing import Any

import pytest
from support.audit import (
    bundle_of,
    entries_of,
    forge,
    keyring,
    signing_keys,
    witnessed_federation,
)
from support.nodes import Federation, FederationMaker, StorageFactory, record

from wlx.crypto.note import sign_note
from wlx.node.audit import witness
from wlx.node.audit.offline.names import checkpoint_text, log_signer
from wlx.node.audit.offline.reconcile import reconcile
from wlx.node.audit.offline.verify import Verified, verify_bundle
from wlx.node.core.errors import Rejection
from wlx.node.outgoing import ownlist
from wlx.node.rpc.cosign import checkpoint_round


def verified(fed: Federation, data: bytes) -> Verified:
    return verify_bundle(data, keyring(fed))


def both(fed: Federation, a: str = "CN", b: str = "RU") -> tuple[Verified, Verified]:
    return verified(fed, bundle_of(fed, a)), verified(fed, bundle_of(fed, b))


def test_bundles_of_an_honest_exchange_agree(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = witnessed_federation(federation, backend)
    cn, ru = both(fed)
    result = reconcile(cn, ru)
    assert result.agree and result.pending == [], result.lines()
    summary = "\n".join(result.summary)
    assert "CN -> RU:" in summary and "RU -> CN:" in summary
    assert "detail requests: 1 by RU, 1 answered as RU logged" in summary
    assert "snapshots: 1 sent, 1 applied as sent" in summary
    assert result.lines()[-1] == "no discrepancy"


def test_an_older_bundle_leaves_items_pending(federation: FederationMaker) -> None:
    fed = witnessed_federation(federation)
    ru_before = verified(fed, bundle_of(fed, "RU"))
    ownlist.import_records(fed["CN"].node, [record("CN-9")])
    fed.sync("RU", "CN")  # CN makes the batch, RU applies it: after RU's export
    checkpoint_round(fed["CN"].node)
    result = reconcile(verified(fed, bundle_of(fed, "CN")), ru_before)
    assert result.agree, result.discrepancies
    assert any("not yet applied by RU" in p for p in result.pending)
    assert any("after the end of RU's bundle" in p for p in result.pending)  # RU's receipt


def tamper(
    fed: Federation,
    node_id: str,
    change: Any,
    *,
    kind: str,
    match: dict[str, Any] | None = None,
    last: bool = False,
) -> Verified:
    """``node_id``'s bundle with the first (or last) entry of ``kind`` changed by
    ``change`` (dropped if it returns None), re-signed by the node and cosigned
    by the other nodes' keys: a lie that verifies on its own."""
    data = bundle_of(fed, node_id)
    rows = entries_of(data)
    found = [
        i
        for i, e in enumerate(rows)
        if e["kind"] == kind and all(e.get(k) == v for k, v in (match or {}).items())
    ]
    index = found[-1] if last else found[0]
    changed = change(dict(rows[index]))
    rows = rows[:index] + ([changed] if changed is not None else []) + rows[index + 1 :]
    others = [n for n in fed.nodes if n != node_id]
    return verified(fed, forge(data, signing_keys(fed), rows, cosigners=others))


def test_a_digest_mismatch_is_a_discrepancy(federation: FederationMaker) -> None:
    fed = witnessed_federation(federation)
    cn = verified(fed, bundle_of(fed, "CN"))
    ru = tamper(
        fed,
        "RU",
        lambda e: {**e, "digest": "00" * 32},
        kind="batch.applied",
        match={"origin": "CN"},
    )
    result = reconcile(cn, ru)
    assert not result.agree
    text = "\n".join(result.discrepancies)
    assert "CN -> RU: batch of epoch 1" in text and "RU applied digest 0000000000000000" in text
    # RU's own receipt, held by CN, contradicts RU's rewritten log too.
    assert "holds RU's signed receipt" in text
    # And RU's rewritten log is not the one CN cosigned.
    assert "CN cosigned a checkpoint of RU's log" in text and "another history" in text


def test_a_batch_received_but_never_logged_as_sent(federation: FederationMaker) -> None:
    fed = witnessed_federation(federation)
    ru = verified(fed, bundle_of(fed, "RU"))
    # CN's last batch for RU (the removal), which RU applied and acknowledged.
    cn = tamper(fed, "CN", lambda e: None, kind="batch.sent", match={"peer": "RU"}, last=True)
    text = "\n".join(reconcile(cn, ru).discrepancies)
    # RU's snapshot put it at seq 1 (CN's stream skipped to it: a fast-forward),
    # the removal came as batch 2.
    assert "RU applied batch of epoch 1, seq 2-2" in text and "does not record making" in text
    # A snapshot whose chain digest neither a batch nor a skip of CN's log gives.
    forged = "ab" * 32
    cn = tamper(
        fed,
        "CN",
        lambda e: {**e, "chain_digest": forged},
        kind="snapshot.sent",
        match={"peer": "RU"},
    )
    ru = tamper(
        fed,
        "RU",
        lambda e: {**e, "chain_digest": forged},
        kind="snapshot.applied",
        match={"origin": "CN"},
    )
    text = "\n".join(reconcile(cn, ru).discrepancies)
    assert "continues CN's chain after seq 1, but CN's log records no batch ending there" in text


def test_a_snapshot_after_a_fast_forward_agrees(federation: FederationMaker) -> None:
    """Issue 8.7: a snapshot at a position CN's stream skipped to is no discrepancy."""
    fed = witnessed_federation(federation)
    cn, ru = verified(fed, bundle_of(fed, "CN")), verified(fed, bundle_of(fed, "RU"))
    [snap] = [
        e
        for e in entries_of(bundle_of(fed, "RU"))
        if e["kind"] == "snapshot.applied" and e["origin"] == "CN"
    ]
    assert snap["at_seq"] == 1  # reached by a skip, not by a batch
    result = reconcile(cn, ru)
    assert result.agree, result.discrepancies


@pytest.mark.parametrize("field", ["outcome", "purpose"])
def test_a_rewritten_detail_request_is_a_discrepancy(
    federation: FederationMaker, field: str
) -> None:
    fed = witnessed_federation(federation)
    ru = verified(fed, bundle_of(fed, "RU"))
    cn = tamper(fed, "CN", lambda e: {**e, field: "rewritten"}, kind="detail.in")
    text = "\n".join(reconcile(ru, cn).discrepancies)
    assert "detail request" in text and f"{field} differ between RU" in text


def test_a_snapshot_applied_differently_is_a_discrepancy(federation: FederationMaker) -> None:
    fed = witnessed_federation(federation)
    cn = verified(fed, bundle_of(fed, "CN"))
    ru = tamper(
        fed,
        "RU",
        lambda e: {**e, "entries": e["entries"] + 1},
        kind="snapshot.applied",
        match={"origin": "CN"},
    )
    text = "\n".join(reconcile(cn, ru).discrepancies)
    assert "entries differ between CN" in text


def test_a_witness_refusal_is_reported(federation: FederationMaker) -> None:
    fed = witnessed_federation(federation)
    cn_node, ru_node = fed["CN"].node, fed["RU"].node
    with cn_node.store.read() as tx:
        latest = tx.latest_checkpoint()
    assert latest is not None
    fork = sign_note(
        checkpoint_text("CN", latest.size, bytes(32)), [log_signer("CN", cn_node.signing_key)]
    )
    with pytest.raises(Rejection):
        witness.add_checkpoint(ru_node, fork, latest.size, [], submitter="CN")
    checkpoint_round(ru_node)
    result = reconcile(*both(fed))
    assert any(
        "RU refused to cosign CN's checkpoint" in d and "fork" in d for d in result.discrepancies
    )


def test_an_entry_without_its_numbers_is_a_format_failure_not_a_minus_one() -> None:
    from wlx.node.audit.offline.errors import AuditFailure
    from wlx.node.audit.offline.reconcile import _int

    entry = {"node": "CN", "idx": 7, "kind": "batch.sent", "epoch": 1, "first_seq": "2"}
    assert _int(entry, "epoch") == 1
    for name in ("first_seq", "last_seq"):
        with pytest.raises(AuditFailure) as failure:
            _int(entry, name)
        assert (failure.value.where, failure.value.check) == ("CN entry 7", "format")
