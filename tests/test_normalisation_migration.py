"""Moving a federation from wlx-norm-1 to wlx-norm-2 loses no listing (issue 15 item 4).

Stores made before epochs recorded their normalisation are simulated by
recording ``wlx-norm-1`` for every epoch before anything is listed.  The
origin then migrates: each peer gets a new epoch, and until the peer has the
new snapshot it keeps finding every listing through the old epoch's tokens.
"""

from __future__ import annotations

import pytest
from support.nodes import Federation, FederationMaker, NodeMaker, record

from wlx.crypto.normalize import NORMALISATION_1, NORMALISATION_2
from wlx.node.core import normalisation
from wlx.node.core.limits import RateLimited
from wlx.node.core.node import Node
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.incoming.receiver import _progress_blob, staged_progress
from wlx.node.outgoing import ownlist
from wlx.node.protocol.inbound import SnapshotProgress
from wlx.node.trust import lifecycle

CYRILLIC = Query(names=("Иван Петров",), dob="1975-11-02")
MRZ_STYLE = Query(names=("PETROV IVAN",), dob="1975-11-02")
DOCUMENT = Query(documents=(("P", "RUS", "751234567"),))


def _as_legacy(node: Node) -> None:
    with node.store.write() as tx:
        for state in tx.list_outbound():
            normalisation.record(tx, node.node_id, state.peer, state.epoch, NORMALISATION_1)
        for inbound in tx.list_inbound():
            if inbound.origin == node.node_id:
                normalisation.record(tx, node.node_id, node.node_id, 1, NORMALISATION_1)


def _refs(node: Node, query: Query) -> list[str]:
    return [hit.ref for hit in Lookup(node).check(query)]


def _version(node: Node, origin: str) -> str:
    with node.store.read() as tx:
        state = tx.get_inbound(origin)
        assert state is not None
        return normalisation.of_epoch(tx, origin, node.node_id, state.epoch)


@pytest.fixture
def legacy(federation: FederationMaker) -> Federation:
    fed = federation(["RU", "CN"])
    for running in fed.nodes.values():
        _as_legacy(running.node)
    listed = record(
        "RU-1",
        names=["Иван Петров"],
        dob="1975-11-02",
        documents=[{"type": "P", "country": "RUS", "number": "751234567"}],
    )
    ownlist.import_records(fed["RU"].node, [listed])
    assert fed.sync("CN", "RU").ok
    return fed


def test_a_legacy_epoch_keeps_working_with_norm_1_keys(legacy: Federation) -> None:
    cn = legacy["CN"].node
    assert _version(cn, "RU") == NORMALISATION_1
    assert _refs(cn, DOCUMENT) == ["RU-1"]
    assert _refs(cn, CYRILLIC) == ["RU-1"]
    assert _refs(cn, MRZ_STYLE) == []  # wlx-norm-1 does not transliterate


def test_migration_loses_no_listing_and_then_matches_across_scripts(legacy: Federation) -> None:
    ru, cn = legacy["RU"].node, legacy["CN"].node
    assert _refs(ru, MRZ_STYLE) == []
    assert lifecycle.migrate_normalisation(ru) == [("CN", 2)]
    # The origin's own index is rebuilt at once in wlx-norm-2.
    assert _version(ru, "RU") == NORMALISATION_2
    assert _refs(ru, MRZ_STYLE) == ["RU-1"]
    # The peer has not resynced: the old epoch's tokens still answer.
    assert _refs(cn, DOCUMENT) == ["RU-1"]
    assert _refs(cn, CYRILLIC) == ["RU-1"]
    report = legacy.sync("CN", "RU")
    assert report.ok and report.snapshot_entries == 1
    assert _version(cn, "RU") == NORMALISATION_2
    assert _refs(cn, DOCUMENT) == ["RU-1"]
    assert _refs(cn, CYRILLIC) == ["RU-1"]
    assert _refs(cn, MRZ_STYLE) == ["RU-1"]
    hit = Lookup(cn).check(MRZ_STYLE)[0]
    assert hit.matched_on == "name+dob (reordered, transliterated)" and hit.strength == "medium"
    # Idempotent: a second run starts nothing.
    assert lifecycle.migrate_normalisation(ru) == []


def test_changes_made_before_the_peer_resyncs_reach_it(legacy: Federation) -> None:
    ru, cn = legacy["RU"].node, legacy["CN"].node
    lifecycle.migrate_normalisation(ru)
    ownlist.import_records(ru, [record("RU-2")])
    assert legacy.sync("CN", "RU").ok
    assert _refs(cn, Query(names=("Test Person RU 2",), dob="1980-05-17")) == ["RU-2"]
    assert _refs(cn, MRZ_STYLE) == ["RU-1"]


def test_new_nodes_start_on_the_current_version(federation: FederationMaker) -> None:
    fed = federation(["RU", "CN"])
    ru = fed["RU"].node
    assert _version(ru, "RU") == NORMALISATION_2
    assert lifecycle.migrate_normalisation(ru) == []
    with ru.store.read() as tx:
        state = tx.get_outbound("CN")
        assert state is not None
        assert normalisation.of_epoch(tx, "RU", "CN", state.epoch) == NORMALISATION_2


def test_a_staged_snapshot_remembers_its_normalisation(make_node: NodeMaker) -> None:
    """A snapshot resumed after a restart keeps the version its part 0 named."""
    node = make_node("RU")
    for version in (NORMALISATION_1, NORMALISATION_2):
        progress = SnapshotProgress(
            snapshot_id=b"s" * 16,
            epoch=2,
            at_seq=5,
            chain_digest=b"d" * 32,
            token_key=b"k" * 32,
            next_index=1,
            last_digest=b"l" * 32,
            entries=3,
            resume_token=b"",
            normalisation=version,
        )
        with node.store.write() as tx:  # as the receiver stages a part: entries and progress
            tx.stage_entries(progress.snapshot_id, "CN", [])
            tx.put_staged_snapshot("CN", progress.snapshot_id, _progress_blob(node, "CN", progress))
        staged = staged_progress(node, "CN")
        assert staged is not None and staged.normalisation == version


def test_a_lookup_during_a_migration_pays_for_the_keys_of_both_versions(
    legacy: Federation,
) -> None:
    """Issue 8 item 2: every key tested is charged, under each version in use."""
    cn = legacy["CN"].node
    lifecycle.migrate_normalisation(cn)  # CN's own index: wlx-norm-2; RU's list: still norm-1
    assert (_version(cn, "CN"), _version(cn, "RU")) == (NORMALISATION_2, NORMALISATION_1)
    lookup = Lookup(cn)
    charged: list[int] = []
    lookup.charge = lambda call, cost: charged.append(cost)
    assert [hit.ref for hit in lookup.check(CYRILLIC)] == ["RU-1"]
    both = sum(len(CYRILLIC.checked(v).keys) for v in (NORMALISATION_1, NORMALISATION_2))
    assert charged == [both]
    assert len(CYRILLIC.checked(NORMALISATION_1).keys) < both


def test_a_version_first_met_while_matching_is_charged_before_its_keys_are_tested(
    legacy: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An epoch that migrates between the charge and the match (here: the
    versions read at the start miss RU's norm-1 epoch) is still charged,
    before its keys are tested, and its keys are logged as tested."""
    cn = legacy["CN"].node
    lifecycle.migrate_normalisation(cn)
    lookup = Lookup(cn)
    monkeypatch.setattr(lookup, "_versions", set)
    charged: list[int] = []
    lookup.charge = lambda call, cost: charged.append(cost)
    assert [hit.ref for hit in lookup.check(CYRILLIC)] == ["RU-1"]
    first, late = (len(CYRILLIC.checked(v).keys) for v in (NORMALISATION_2, NORMALISATION_1))
    assert charged == [first, late]


def test_a_refused_late_version_tests_nothing(
    legacy: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refusing the keys of a version first met while matching stops the
    lookup before any of them is tested: no hit is shown."""
    cn = legacy["CN"].node
    lifecycle.migrate_normalisation(cn)
    lookup = Lookup(cn)
    monkeypatch.setattr(lookup, "_versions", set)
    calls: list[int] = []

    def charge(call: str, cost: int) -> None:
        calls.append(cost)
        if len(calls) > 1:
            raise RateLimited("rate limit: officer:x over its burst")

    lookup.charge = charge
    with pytest.raises(RateLimited):
        lookup.check(CYRILLIC)
    assert len(calls) == 2
