"""The requester's loop (docs/protocol.md §8.3) as a table of cases."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from wlx.node.protocol.pull_loop import (
    FetchSnapshot,
    Finish,
    GiveUp,
    Pull,
    PullLoop,
    Step,
    batch_limit,
)

# Each event: ("pull", batches) | ("resync", reason) | ("snapshot",)
Event = tuple[object, ...]

CASES: list[tuple[str, Sequence[Event], Step]] = [
    ("up to date at once", [("pull", 0)], Finish()),
    ("fewer batches than asked: done", [("pull", 3)], Finish()),
    ("a full pull: pull again", [("pull", 50)], Pull()),
    ("full, then short", [("pull", 50), ("pull", 50), ("pull", 7)], Finish()),
    ("no cursor: snapshot", [("resync", "no-cursor")], FetchSnapshot("no-cursor")),
    ("after a snapshot: pull", [("resync", "no-cursor"), ("snapshot",)], Pull()),
    (
        "snapshot, then batches",
        [("resync", "no-cursor"), ("snapshot",), ("pull", 2)],
        Finish(),
    ),
    (
        "two resyncs in a row are allowed",
        [("resync", "no-cursor"), ("snapshot",), ("resync", "new-epoch")],
        FetchSnapshot("new-epoch"),
    ),
    (
        "a third resync in a row: give up",
        [
            ("resync", "no-cursor"),
            ("snapshot",),
            ("resync", "compacted"),
            ("snapshot",),
            ("resync", "compacted"),
        ],
        GiveUp("keeps asking for a resync (compacted)"),
    ),
    (
        "batches in between reset the count",
        [
            ("resync", "no-cursor"),
            ("snapshot",),
            ("resync", "compacted"),
            ("snapshot",),
            ("pull", 50),
            ("resync", "new-epoch"),
        ],
        FetchSnapshot("new-epoch"),
    ),
]


def run(events: Sequence[Event], *, max_pulls: int = 10_000) -> Step:
    loop = PullLoop(max_batches=50, max_pulls=max_pulls)
    assert loop.next == Pull()
    for event in events:
        if event[0] == "pull":
            assert isinstance(event[1], int)
            loop.pulled(batches=event[1], resync=None)
        elif event[0] == "resync":
            assert isinstance(event[1], str)
            loop.pulled(batches=0, resync=event[1])
        else:
            loop.snapshot_applied()
    return loop.next


@pytest.mark.parametrize(("name", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_pull_loop(name: str, events: Sequence[Event], expected: Step) -> None:
    assert run(events) == expected


def test_the_pull_budget_ends_the_round() -> None:
    assert run([("pull", 50), ("pull", 50)], max_pulls=2) == Finish()
    assert run([("resync", "no-cursor"), ("snapshot",)], max_pulls=1) == Finish()


def test_steps_out_of_order_are_a_bug() -> None:
    loop = PullLoop(max_batches=50)
    with pytest.raises(RuntimeError):
        loop.snapshot_applied()
    loop.pulled(batches=0, resync="no-cursor")
    with pytest.raises(RuntimeError):
        loop.pulled(batches=1, resync=None)


@pytest.mark.parametrize(
    ("asked", "carried", "expected"),
    [
        (0, 0, Finish()),  # 0 is the origin's default (50), never "unlimited"
        (0, 49, Finish()),
        (0, 50, Pull()),
        (100, 50, Pull()),  # above the origin's cap: 50 is a full pull
        (100, 49, Finish()),
        (10, 10, Pull()),
        (10, 9, Finish()),
    ],
)
def test_max_batches_zero_or_above_the_cap(asked: int, carried: int, expected: Step) -> None:
    """MUST-8.3-1: a pull that carried min(max_batches or 50, 50) batches may have more."""
    loop = PullLoop(max_batches=asked)
    assert loop.pulled(batches=carried, resync=None) == expected
    assert batch_limit(asked) == min(asked or 50, 50)
