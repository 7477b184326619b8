"""Protocol 2 end to end (docs/protocol.md §4.3, appendix B): each listing
sealed once, a wrap per token; streams to protocol-1 peers stay protocol 1;
a receiver holds and opens both formats side by side."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

import pytest
from support.nodes import FederationMaker, StorageFactory, record
from test_rejections import execute

from wlx.crypto.card import Speaks
from wlx.crypto.normalize import IdentifierKey, KeyKind
from wlx.crypto.tokens import MIN_SEALED2, WRAP_LEN, EpochKey, kind_code
from wlx.node import detail
from wlx.node.core import normalisation
from wlx.node.core.node import Node
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import ownlist
from wlx.node.protocol.versions import NODE_SPEAKS
from wlx.node.rpc.announce import announce
from wlx.node.store.base import TokenRow
from wlx.node.trust import lifecycle

PROTOCOL_1 = replace(NODE_SPEAKS, protocol=(1,))
"""This software as it was before protocol 2 (wlx-norm-2, the online tier)."""
DOCUMENT = {"type": "P", "country": "CHN", "number": "E12345678"}


def keys_of(receiver: Node, source: Node, ref: str) -> tuple[EpochKey, list[IdentifierKey]]:
    """``source``'s epoch key of its stream to ``receiver``, and the
    identifier keys of its listing ``ref`` in that epoch's normalisation."""
    with source.store.read() as tx:
        state = tx.get_outbound(receiver.node_id)
        stored = tx.get_records([ref])[ref]
        assert state is not None
        version = normalisation.of_epoch(tx, source.node_id, receiver.node_id, state.epoch)
    key = source.epoch_key(
        source.node_id, receiver.node_id, state.epoch, state.token_key, normalisation=version
    )
    return key, ownlist.load_record(source, stored).identifier_keys(version)


def rows_of(receiver: Node, source: Node, ref: str) -> list[TokenRow]:
    """The receiver's token rows of ``source``'s listing ``ref`` (every key of it)."""
    key, ikeys = keys_of(receiver, source, ref)
    with receiver.store.read() as tx:
        return tx.find_tokens(source.node_id, [key.token(k.value) for k in ikeys])


def protocol_of(source: Node, peer: str) -> int:
    with source.store.read() as tx:
        state = tx.get_outbound(peer)
        assert state is not None
        return normalisation.protocol_of_epoch(tx, source.node_id, peer, state.epoch)


def test_a_protocol_2_stream_syncs_opens_and_proves_its_hits(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = federation(["CN", "RU"], storage=backend)
    cn, ru = fed["CN"].node, fed["RU"].node
    listed = record("CN-1", names=["Иван Петров"], documents=[DOCUMENT])
    ownlist.import_records(cn, [listed, record("CN-2")])
    ownlist.suspend_record(cn, "CN-2", suspended=True)
    fed.sync_all()
    assert protocol_of(cn, "RU") == 2

    rows = rows_of(ru, cn, "CN-1")
    assert len(rows) == len(listed.identifier_keys()) > 2
    assert {len(r.wrap) for r in rows} == {WRAP_LEN}
    assert {r.sealed for r in rows} == {rows[0].sealed}  # sealed once for the listing
    assert len(rows[0].sealed) == MIN_SEALED2

    lookup = Lookup(ru)
    hits = lookup.check(Query(documents=(("P", "CHN", "E12345678"),)))
    assert [(h.origin, h.ref, h.matched_on, h.category, h.action) for h in hits] == [
        ("CN", "CN-1", "document", "wanted", "arrest")
    ]
    # The listing's key kind comes with the wrap: a reordered query of a
    # transliterated listing key is both (as under protocol 1).
    by_name = lookup.check(Query(names=("PETROV IVAN",), dob="1980-05-17"))
    assert [(h.ref, h.matched_on) for h in by_name] == [
        ("CN-1", "name+dob (reordered, transliterated)")
    ]
    suspended = lookup.check(Query(names=("Test Person CN 2",), dob="1980-05-17"))
    assert [(h.ref, h.suspended, h.action) for h in suspended] == [("CN-2", True, "")]

    seal_key = lookup.hits.recall("", "CN", "CN-1", ru.now())
    assert seal_key is not None
    outcome = detail.request(
        ru,
        origin="CN",
        ref="CN-1",
        purpose="check",
        case_id="",
        officer="post-1",
        seal_key=seal_key,
        send=lambda peer, signed: detail.answer(cn, signed, quota=5),
    )
    assert outcome.denial == "" and '"id":"CN-1"' in outcome.record_json.replace(" ", "")

    ownlist.remove_record(cn, "CN-1")
    assert fed.sync("RU", "CN").ok
    assert (
        rows_of(ru, cn, "CN-2")
        and lookup.check(Query(documents=(("P", "CHN", "E12345678"),))) == ()
    )


def test_protocol_1_and_2_origins_side_by_side_in_one_store(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = federation(["CN", "RU", "AR"], storage=backend)
    cn, ru, ar = fed["CN"].node, fed["RU"].node, fed["AR"].node
    # AR runs the software of before protocol 2: its streams get protocol-1
    # epochs, and so does CN's stream to it once its card arrives (AR could
    # not read protocol 2).
    assert lifecycle.speak(ar, PROTOCOL_1) == [("CN", 2), ("RU", 2)]
    assert sorted(announce(ar)) == ["CN", "RU"]  # the refreshed card reaches them
    ownlist.import_records(cn, [record("CN-1", names=["Same Person"])])
    ownlist.import_records(ar, [record("AR-1", names=["Same Person"])])
    fed.sync_all()
    assert (protocol_of(cn, "RU"), protocol_of(ar, "RU"), protocol_of(cn, "AR")) == (2, 1, 1)
    assert all(r.wrap for r in rows_of(ru, cn, "CN-1"))
    assert not any(r.wrap for r in rows_of(ru, ar, "AR-1"))
    assert not any(r.wrap for r in rows_of(ar, cn, "CN-1"))

    same = Query(names=("Same Person",), dob="1980-05-17")
    assert sorted((h.origin, h.ref, h.matched_on) for h in Lookup(ru).check(same)) == [
        ("AR", "AR-1", "name+dob"),
        ("CN", "CN-1", "name+dob"),
    ]
    assert sorted((h.origin, h.ref) for h in Lookup(ar).check(same)) == [
        ("AR", "AR-1"),
        ("CN", "CN-1"),
    ]

    # AR upgrades: its stream to RU moves to protocol 2 at its next epoch,
    # and RU's store then holds AR's listings in protocol 2.
    assert lifecycle.speak(ar, NODE_SPEAKS) == []
    assert sorted(announce(ar)) == ["CN", "RU"]
    assert protocol_of(ar, "RU") == 1
    lifecycle.new_epoch(ar, "RU")
    assert protocol_of(ar, "RU") == 2
    assert fed.sync("RU", "AR").ok
    assert all(r.wrap for r in rows_of(ru, ar, "AR-1"))
    assert len(Lookup(ru).check(same)) == 2


def test_a_peer_that_stops_speaking_protocol_2_gets_a_protocol_1_epoch(
    federation: FederationMaker,
) -> None:
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1")])
    fed.sync_all()
    assert protocol_of(cn, "RU") == 2
    lifecycle.speak(ru, PROTOCOL_1)  # rolled back to older software
    assert announce(ru) == ["CN"]  # its card reaches CN
    assert protocol_of(cn, "RU") == 1
    assert fed.sync("RU", "CN").ok
    assert not any(r.wrap for r in rows_of(ru, cn, "CN-1"))
    hits = Lookup(ru).check(Query(names=("Test Person CN 1",), dob="1980-05-17"))
    assert [h.ref for h in hits] == ["CN-1"]


def test_a_database_administrator_cannot_change_the_kind_of_a_match(
    federation: FederationMaker, backend: StorageFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The receiver's rows (no key, no identifier) do not let anyone relabel
    a wrap's kind code: XOR-ing in the difference of two codes and of their
    masks (a public constant while the mask was unkeyed) makes the entry
    open to nothing, logged as the store's damage, never another kind."""
    fed = federation(["CN", "RU"], storage=backend)
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1", names=["Иван Петров"], documents=[DOCUMENT])])
    fed.sync_all()
    lookup, query = Lookup(ru), Query(names=("IVAN PETROV",), dob="1980-05-17")
    assert [(h.ref, h.matched_on) for h in lookup.check(query)] == [
        ("CN-1", "name+dob (transliterated)")
    ]
    key, ikeys = keys_of(ru, cn, "CN-1")
    medium = next(k for k in ikeys if k.kind.value == "name+dob (transliterated)")
    (row,) = [r for r in rows_of(ru, cn, "CN-1") if r.token == key.token(medium.value)]
    old, new = kind_code(medium.kind), kind_code(KeyKind.NAME_DOB)

    def unkeyed(code: int) -> bytes:
        return hashlib.blake2b(bytes([code]), digest_size=16, person=b"wlx2-kind").digest()

    delta = bytes(a ^ b for a, b in zip(unkeyed(old), unkeyed(new), strict=True)) + bytes(
        [old ^ new]
    )
    forged = bytes(a ^ b for a, b in zip(row.wrap, delta, strict=True))
    execute(ru, "UPDATE tokens SET sealed = ? WHERE token = ?", (forged, row.token))
    with caplog.at_level(logging.INFO):
        hits = lookup.check(query)
    # The forged entry does not open (the weaker phonetic entry still does).
    assert [(h.ref, h.matched_on) for h in hits] == [("CN-1", "name+dob (phonetic)")]
    damaged = [r for r in caplog.records if "does not open" in r.getMessage()]
    assert [(r.name, r.getMessage()) for r in damaged] == [
        ("wlx.lookup", "a stored entry of CN does not open: store damaged or tampered")
    ]


def test_an_upserts_entries_are_in_token_order_whatever_their_kinds(
    federation: FederationMaker,
) -> None:
    """An entry's position in an upsert (and so in the receiver's
    ``entries.tokens``) says nothing of its identifier key's kind."""
    from wlx.node.protocol.outbound import upsert_for

    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    listed = record("CN-1", names=["Иван Петров", "Wang Wei"], documents=[DOCUMENT])
    ownlist.import_records(cn, [listed])
    fed.sync_all()
    key, ikeys = keys_of(ru, cn, "CN-1")
    assert len({k.kind for k in ikeys}) > 3
    for protocol in (1, 2):
        upsert = upsert_for(listed, 1, replace(key, protocol=protocol))
        tokens = [e.token for e in upsert.tokens]
        assert tokens == sorted(key.token(k.value) for k in ikeys)


def test_speaks_protocol_2() -> None:
    assert 2 in NODE_SPEAKS.protocol and Speaks().protocol == (1,)
