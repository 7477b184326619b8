"""Rolling out wlx-norm-2 peer by peer, with real nodes on loopback
(docs/protocol.md §2.9, appendix B.2, B.3; issue 14).

CN runs the current software; RU advertises only ``wlx-norm-1`` (its card
says so, as every card made before appendix B did).  Each origin keys its
stream with the version both speak; each side's lookups key a query per
origin's epoch.  When RU upgrades, its card is re-issued and announced, and
both streams move to ``wlx-norm-2`` in a new epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from support.nodes import Federation, NodeMaker, Running, record

from wlx.crypto.card import DEFAULT_SPEAKS
from wlx.crypto.normalize import NORMALISATION_1, NORMALISATION_2
from wlx.node.core import normalisation
from wlx.node.core.node import Node
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.protocol.versions import NODE_SPEAKS
from wlx.node.rpc.announce import announce
from wlx.node.rpc.server import build_server
from wlx.node.trust import lifecycle

RU_CYRILLIC = Query(names=("Иван Петров",), dob="1975-11-02")
RU_LATIN = Query(names=("PETROV IVAN",), dob="1975-11-02")  # matches only under wlx-norm-2
RU_DOCUMENT = Query(documents=(("P", "RUS", "751234567"),))
CN_CYRILLIC = Query(names=("Ольга Смирнова",), dob="1981-03-04")
CN_LATIN = Query(names=("SMIRNOVA OLGA",), dob="1981-03-04")
CN_DOCUMENT = Query(documents=(("P", "CHN", "E12345678"),))


@pytest.fixture
def mixed(make_node: NodeMaker) -> Iterator[Federation]:
    """CN (wlx-norm-2 and -1) and RU (wlx-norm-1 only), trusting each other."""
    fed = Federation()
    servers: list[grpc.Server] = []
    for node_id in ("CN", "RU"):
        node = make_node(node_id)
        if node_id == "RU":
            lifecycle.speak(node, DEFAULT_SPEAKS)  # the software of before appendix B
        server, port = build_server(node, "127.0.0.1:0")
        server.start()
        servers.append(server)
        fed.nodes[node_id] = Running(node, server, port)
    origin.add_peer(fed["CN"].node, fed["RU"].node.card.raw, fed["RU"].address)
    origin.add_peer(fed["RU"].node, fed["CN"].node.card.raw, fed["CN"].address)
    ownlist.import_records(
        fed["RU"].node,
        [
            record(
                "RU-1",
                names=["Иван Петров"],
                dob="1975-11-02",
                documents=[{"type": "P", "country": "RUS", "number": "751234567"}],
            )
        ],
    )
    ownlist.import_records(
        fed["CN"].node,
        [
            record(
                "CN-1",
                names=["Ольга Смирнова"],
                dob="1981-03-04",
                documents=[{"type": "P", "country": "CHN", "number": "E12345678"}],
            )
        ],
    )
    yield fed
    fed.close()
    for server in servers:
        server.stop(grace=None)


def _refs(node: Node, query: Query) -> list[str]:
    return sorted(hit.ref for hit in Lookup(node).check(query))


def _sent(node: Node, peer: str) -> tuple[int, str]:
    """The epoch and normalisation of ``node``'s stream to ``peer``."""
    with node.store.read() as tx:
        state = tx.get_outbound(peer)
        assert state is not None
        return state.epoch, normalisation.of_epoch(tx, node.node_id, peer, state.epoch)


def _received(node: Node, origin_id: str) -> tuple[int, str]:
    """The epoch and normalisation of what ``node`` holds from ``origin_id``."""
    with node.store.read() as tx:
        state = tx.get_inbound(origin_id)
        assert state is not None
        return state.epoch, normalisation.of_epoch(tx, origin_id, node.node_id, state.epoch)


def _sync_both(fed: Federation) -> None:
    assert fed.sync("CN", "RU").ok
    assert fed.sync("RU", "CN").ok


def test_a_new_and_an_old_node_federate_on_norm_1(mixed: Federation) -> None:
    cn, ru = mixed["CN"].node, mixed["RU"].node
    assert _sent(cn, "RU") == (1, NORMALISATION_1)  # CN's own choice for an old peer
    assert _sent(ru, "CN") == (1, NORMALISATION_1)
    _sync_both(mixed)
    assert _received(cn, "RU") == (1, NORMALISATION_1)
    assert _received(ru, "CN") == (1, NORMALISATION_1)
    # Each side finds the other's listing, by document and by name.
    assert _refs(cn, RU_DOCUMENT) == ["RU-1"] and _refs(cn, RU_CYRILLIC) == ["RU-1"]
    assert _refs(ru, CN_DOCUMENT) == ["CN-1"] and _refs(ru, CN_CYRILLIC) == ["CN-1"]
    # CN keys one query per version: its own list in wlx-norm-2 (the Latin
    # form finds CN-1), RU's epoch in wlx-norm-1 (it does not find RU-1).
    assert _refs(cn, CN_LATIN) == ["CN-1"]
    assert _refs(cn, RU_LATIN) == []
    assert _refs(ru, CN_LATIN) == [] and _refs(ru, RU_LATIN) == []
    # Nothing changes at the next start of either node.
    assert lifecycle.speak(cn, NODE_SPEAKS) == []
    assert lifecycle.speak(ru, DEFAULT_SPEAKS) == []


def test_upgrading_the_old_node_moves_both_streams_to_norm_2(mixed: Federation) -> None:
    cn, ru = mixed["CN"].node, mixed["RU"].node
    _sync_both(mixed)
    fingerprint = ru.card.fingerprint()
    # RU's new software starts: its card is re-issued, its stream to CN
    # (which speaks wlx-norm-2) starts epoch 2, its own index is rebuilt.
    assert lifecycle.speak(ru, NODE_SPEAKS) == [("CN", 2)]
    assert ru.card.speaks == NODE_SPEAKS and ru.card.fingerprint() == fingerprint
    assert _sent(ru, "CN") == (2, NORMALISATION_2)
    assert _refs(ru, RU_LATIN) == ["RU-1"]
    # CN still holds RU's old card and keeps wlx-norm-1 until it learns more.
    assert _sent(cn, "RU") == (1, NORMALISATION_1)
    assert announce(ru) == ["CN"]
    stored = cn.trusted("RU")
    assert stored is not None and stored.speaks == NODE_SPEAKS
    assert _sent(cn, "RU") == (2, NORMALISATION_2)
    # Until the snapshots arrive, each side still finds the other's listing
    # through the old epoch's tokens.
    assert _refs(cn, RU_DOCUMENT) == ["RU-1"] and _refs(ru, CN_CYRILLIC) == ["CN-1"]
    report = mixed.sync("CN", "RU")
    assert report.ok and report.snapshot_entries == 1
    report = mixed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries == 1
    assert _received(cn, "RU") == (2, NORMALISATION_2)
    assert _received(ru, "CN") == (2, NORMALISATION_2)
    assert _refs(cn, RU_LATIN) == ["RU-1"] and _refs(cn, RU_DOCUMENT) == ["RU-1"]
    assert _refs(ru, CN_LATIN) == ["CN-1"] and _refs(ru, CN_CYRILLIC) == ["CN-1"]
    # Only when needed: a second start and a second announcement change nothing.
    assert lifecycle.speak(ru, NODE_SPEAKS) == []
    assert lifecycle.speak(cn, NODE_SPEAKS) == []
    assert announce(ru) == []
    assert _sent(cn, "RU") == (2, NORMALISATION_2) and _sent(ru, "CN") == (2, NORMALISATION_2)


def test_a_refreshed_card_added_by_hand_starts_the_new_epoch(mixed: Federation) -> None:
    """A peer that cannot be reached gets the card file by hand (`wlx peer
    add`): the same renegotiation as an announcement."""
    cn, ru = mixed["CN"].node, mixed["RU"].node
    card = lifecycle.refresh_card(ru, NODE_SPEAKS)
    assert card is not None
    origin.add_peer(cn, card.raw, mixed["RU"].address)
    assert _sent(cn, "RU") == (2, NORMALISATION_2)
    origin.add_peer(cn, card.raw, mixed["RU"].address)  # again: nothing more
    assert _sent(cn, "RU") == (2, NORMALISATION_2)
    assert lifecycle.refresh_card(ru, NODE_SPEAKS) is None


def test_new_epochs_keep_the_agreed_version(mixed: Federation) -> None:
    """A re-key (``wlx epoch new``) and a key rotation stay on wlx-norm-1 for
    a peer that speaks nothing later (B.2-2)."""
    cn = mixed["CN"].node
    assert lifecycle.new_epoch(cn, "RU") == [("RU", 2)]
    assert _sent(cn, "RU") == (2, NORMALISATION_1)
    lifecycle.rotate_keys(cn)
    assert _sent(cn, "RU") == (3, NORMALISATION_1)
    assert announce(cn) == ["RU"]
    _sync_both(mixed)
    assert _received(mixed["RU"].node, "CN") == (3, NORMALISATION_1)
    assert _refs(mixed["RU"].node, CN_CYRILLIC) == ["CN-1"]


def test_an_old_node_refuses_a_norm_2_epoch(mixed: Federation) -> None:
    """MUST-B.2-3: RU does not advertise wlx-norm-2, so an epoch key naming
    it is malformed, and RU keeps what it had."""
    cn, ru = mixed["CN"].node, mixed["RU"].node
    _sync_both(mixed)
    lifecycle.new_epoch(cn, "RU")
    with cn.store.write() as tx:  # an origin that ignores RU's card
        normalisation.record(tx, "CN", "RU", 2, NORMALISATION_2)
    report = mixed.sync("RU", "CN")
    assert not report.ok and "normalisation this node does not speak" in str(report.error)
    assert _received(ru, "CN") == (1, NORMALISATION_1)
    assert _refs(ru, CN_DOCUMENT) == ["CN-1"]
