"""``node.toml`` is checked at start: every unknown or wrongly typed setting
is one line naming the nearest valid one (issue 9, item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import init, wlx

from wlx.node.core.config import NodeConfig, config_mistakes
from wlx.node.core.errors import UserError

BASE = 'node_id = "CN"\nlisten = "127.0.0.1:7001"\n'

CASES = [
    # (extra TOML, the one expected line)
    ("detail_quotas = 10", "unknown setting 'detail_quotas' (did you mean 'detail_quota'?)"),
    ("sync_intervall = 5", "unknown setting 'sync_intervall' (did you mean 'sync_interval'?)"),
    ("[storage]\npathh = 'x.db'", "unknown setting storage.pathh (did you mean storage.path?)"),
    ("[storge]\npath = 'x.db'", "unknown section [storge] (did you mean [storage]?)"),
    ("metrics_port = 9101", "unknown setting 'metrics_port': the metrics port is `port` in"),
    ("[metrics]\nprot = 9101", "unknown setting metrics.prot (did you mean metrics.port?)"),
    (
        "[limits]\nofficer_per_minit = 5",
        "unknown setting limits.officer_per_minit (did you mean limits.officer_per_minute?)",
    ),
    ("colour = 'red'", "unknown setting 'colour' (valid: node_id, listen,"),
    ("sync_interval = '30'", "sync_interval must be a number, not text ('30')"),
    ("sync_interval = true", "sync_interval must be a number, not true/false (true)"),
    ("detail_quota = 2.5", "detail_quota must be a whole number, not a fraction (2.5)"),
    ("outbox_keep_days = [1]", "outbox_keep_days must be a whole number, not a list"),
    ("storage = 'sqlite'", "[storage] must be a section, not text ('sqlite')"),
    ("[storage]\npath = 3", "storage.path must be text, not int (3)"),
    ("[limits]\npeer_burst = 'x'", "limits.peer_burst must be a number, not text ('x')"),
    ("[storage]\nbackend = 'postgresql'", "storage.dsn and storage.schema are needed"),
]


@pytest.mark.parametrize(("extra", "expected"), CASES)
def test_each_mistake_is_one_line_naming_the_fix(extra: str, expected: str) -> None:
    with pytest.raises(UserError) as caught:
        NodeConfig.from_toml(BASE + extra + "\n")
    lines = str(caught.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("node.toml: " + expected), lines[0]


def test_every_mistake_is_reported_at_once() -> None:
    text = BASE + "detail_quotas = 1\nsync_intervall = 2\n[storage]\npathh = 'x'\n"
    with pytest.raises(UserError) as caught:
        NodeConfig.from_toml(text)
    assert len(str(caught.value).splitlines()) == 3


def test_a_valid_configuration_round_trips_without_mistakes() -> None:
    config = NodeConfig.from_toml(
        BASE + "sync_interval = 5\ndetail_quota = 7\n[metrics]\nport = 9101\nstale_after = 60\n"
    )
    assert config.sync_interval == 5.0 and config.detail_quota == 7
    again = NodeConfig.from_toml(config.to_toml())
    assert again.to_toml() == config.to_toml()
    import tomllib

    assert config_mistakes(tomllib.loads(config.to_toml())) == []


def test_a_misspelled_setting_stops_every_command(tmp_path: Path) -> None:
    node = init(tmp_path / "cn", "CN")
    config = node / "node.toml"
    text = config.read_text()
    assert 'path = "wlx.db"' in text
    config.write_text("sync_intervall = 5\n" + text.replace('path = "wlx.db"', 'pathh = "x"'))
    run = wlx("records", "count", node)
    lines = run.err.splitlines()
    assert run.code == 1 and len(lines) == 2, run
    assert all(line.startswith("error: node.toml: unknown setting") for line in lines), lines
    assert "did you mean 'sync_interval'?" in lines[0]
