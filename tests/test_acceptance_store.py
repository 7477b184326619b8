"""The acceptance table of the ``Store`` interface (issue 16), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from test_store import opener, store  # noqa: F401 - fixtures

from wlx.node.store.base import DECLARED, LOCAL, AcceptanceRow, Store


class Boom(Exception):
    pass


def test_acceptance_rows_per_peer_and_side(store: Store) -> None:  # noqa: F811
    mine = AcceptanceRow("CN", LOCAL, 1, '{"decline":["political"]}', 10)
    theirs = AcceptanceRow("CN", DECLARED, 4, '{"decline":[]}', 11, 4)
    with store.write() as tx:
        tx.put_acceptance(mine)
        tx.put_acceptance(theirs)
        tx.put_acceptance(AcceptanceRow("AR", LOCAL, 2, "{}", 12, 1))
    with store.read() as tx:
        assert tx.get_acceptance("CN", LOCAL) == mine
        assert tx.get_acceptance("CN", DECLARED) == theirs
        assert tx.get_acceptance("RU", LOCAL) is None
        assert [r.peer for r in tx.list_acceptance(LOCAL)] == ["AR", "CN"]
        assert tx.list_acceptance(DECLARED) == [theirs]
    newer = AcceptanceRow("CN", LOCAL, 2, "{}", 20, 1)
    with store.write() as tx:
        tx.put_acceptance(newer)
    with store.read() as tx:
        assert tx.get_acceptance("CN", LOCAL) == newer
        assert tx.get_acceptance("CN", DECLARED) == theirs


def test_an_acceptance_change_rolls_back_with_its_transaction(store: Store) -> None:  # noqa: F811
    with store.write() as tx:
        tx.put_acceptance(AcceptanceRow("CN", LOCAL, 1, "{}", 10))
    with pytest.raises(Boom), store.write() as tx:
        tx.put_acceptance(AcceptanceRow("CN", LOCAL, 2, '{"decline":["x"]}', 11))
        raise Boom
    with store.read() as tx:
        row = tx.get_acceptance("CN", LOCAL)
        assert row is not None and row.version == 1


def test_only_the_two_sides_are_stored(store: Store) -> None:  # noqa: F811
    with pytest.raises(Exception), store.write() as tx:  # noqa: B017 - backend's own error type
        # A side that is not an AcceptanceSide, as a damaged caller might pass.
        tx.put_acceptance(AcceptanceRow("CN", "other", 1, "{}", 10))  # type: ignore[arg-type]
    with store.read() as tx:
        assert tx.get_acceptance("CN", "other") is None  # type: ignore[arg-type]  # no such side
