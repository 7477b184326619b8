"""A node directory: its configuration file and its key files.

Layout (docs/operations.md)::

    DIR/node.toml          configuration
    DIR/card.json          the node's public identity card
    DIR/keys/identity.pem  Ed25519 identity key   (mode 0600)
    DIR/keys/box.pem       X25519 box key         (mode 0600)
    DIR/keys/storage.key   32-byte storage key    (mode 0600)
    DIR/keys/tls.pem       P-256 TLS key          (mode 0600)
    DIR/keys/ca.pem        P-256 credential CA key (mode 0600)
    DIR/keys/ca.crt        credential CA certificate
    DIR/wlx.db             SQLite store (default backend)

Private key files are created with mode 0600 and refused when group or
others may read them.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import tomli_w

from wlx.crypto.card import check_node_id
from wlx.crypto.errors import MalformedError
from wlx.node.core.errors import NotFound, UserError
from wlx.node.core.limits import PER_PERSON_OFFICER, LimitSettings, Rate

CONFIG_FILE = "node.toml"
CARD_FILE = "card.json"
KEY_DIR = "keys"
IDENTITY_KEY = "identity.pem"
BOX_KEY = "box.pem"
STORAGE_KEY = "storage.key"
TLS_KEY = "tls.pem"
CA_KEY = "ca.pem"
CA_CERT = "ca.crt"
PREVIOUS_DIR = "previous"
SQLITE_FILE = "wlx.db"
DEFAULT_SYNC_INTERVAL = 30.0
_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")


ROLES = ("officer", "peer", "auditor", "operator")

_TEXT, _WHOLE, _NUMBER, _TABLE = "text", "a whole number", "a number", "a table"
SETTINGS: dict[str, str] = {
    "node_id": _TEXT,
    "listen": _TEXT,
    "advertise": _TEXT,
    "authority": _TEXT,
    "sync_interval": _NUMBER,
    "retention_grace_days": _WHOLE,
    "outbox_keep_days": _WHOLE,
    "detail_quota": _WHOLE,
    "oprf_daily_budget": _WHOLE,
    "storage": _TABLE,
    "limits": _TABLE,
    "metrics": _TABLE,
}
"""Every top-level setting of ``node.toml`` and the type of its value."""
SECTIONS: dict[str, dict[str, str]] = {
    "storage": {"backend": _TEXT, "path": _TEXT, "dsn": _TEXT, "schema": _TEXT},
    "limits": {
        f"{role}_{facet}": _NUMBER for role in ROLES for facet in ("per_minute", "burst", "per_day")
    },
    "metrics": {"address": _TEXT, "port": _WHOLE, "stale_after": _NUMBER},
}
"""The settings of each section."""
_HINTS = {
    "metrics_port": "the metrics port is `port` in the [metrics] section "
    "(or wlx serve --metrics-port)",
    "insecure_dev": "--insecure-dev is an option of the commands, never a setting",
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == _TEXT:
        return isinstance(value, str)
    if kind == _TABLE:
        return isinstance(value, dict)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (kind == _NUMBER and isinstance(value, float))


def _unknown(name: str, shown: str, valid: list[str], *, section: bool) -> str:
    if name in _HINTS:
        return f"unknown setting {shown}: {_HINTS[name]}"
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    what = "section" if section else "setting"
    if close:
        guess = f"[{close[0]}]" if section else shown.replace(name, close[0])
        return f"unknown {what} {shown} (did you mean {guess}?)"
    return f"unknown {what} {shown} (valid: {', '.join(valid)})"


def config_mistakes(data: dict[str, Any]) -> list[str]:
    """Every unknown or wrongly typed setting in parsed ``node.toml`` data,
    one line each, naming the nearest valid setting.  Pure."""
    mistakes = []
    for key, value in data.items():
        kind = SETTINGS.get(key)
        if kind is None:
            valid = list(SECTIONS) if isinstance(value, dict) else list(SETTINGS)
            shown = f"[{key}]" if isinstance(value, dict) else repr(key)
            mistakes.append(_unknown(key, shown, valid, section=isinstance(value, dict)))
        elif not _type_ok(value, kind):
            what = f"[{key}] must be a section" if kind == _TABLE else f"{key} must be {kind}"
            mistakes.append(f"{what}, not {_toml_type(value)}")
        elif kind == _TABLE:
            fields = SECTIONS[key]
            for name, inner in value.items():
                shown = f"{key}.{name}"
                if name not in fields:
                    mistakes.append(_unknown(name, shown, list(fields), section=False))
                elif not _type_ok(inner, fields[name]):
                    mistakes.append(f"{shown} must be {fields[name]}, not {_toml_type(inner)}")
    return mistakes


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text ({value[:40]!r})"
    if isinstance(value, float):
        return f"a fraction ({value})"
    return f"{type(value).__name__} ({value})"


def _limits(table: Any) -> LimitSettings:
    """Rate limits from the ``[limits]`` table; missing settings keep defaults,
    and the officer defaults of before lookups were charged per key
    (``PER_PERSON_OFFICER``) become today's."""
    defaults = LimitSettings()
    rates = {}
    for role in ROLES:
        base = defaults.for_role(role)
        rate = Rate(
            per_minute=float(table.get(f"{role}_per_minute", base.per_minute)),
            burst=float(table.get(f"{role}_burst", base.burst)),
            per_day=float(table.get(f"{role}_per_day", base.per_day)),
        )
        if min(rate.per_minute, rate.burst, rate.per_day) <= 0:
            raise ValueError(f"limits for {role} must be positive")
        if role == "officer" and rate == PER_PERSON_OFFICER:
            rate = base  # written before lookups were charged per key (docs/operations.md)
        rates[role] = rate
    return LimitSettings(**rates)


def check_address(address: str) -> str:
    """Return ``address`` if it is ``HOST:PORT`` (IPv6 hosts in brackets).

    Raises:
        UserError: it is not.
    """
    match = _ADDRESS.match(address)
    if match is None or not 0 <= int(match.group(2)) <= 65535:
        raise UserError(f"address {address!r} is not HOST:PORT")
    return address


class Backend(StrEnum):
    """Where a node keeps its state (``storage.backend`` in node.toml)."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class StorageConfig:
    """Where the node keeps its state."""

    backend: Backend = Backend.SQLITE
    path: str = SQLITE_FILE
    """SQLite file, relative to the node directory."""
    dsn: str = ""
    """PostgreSQL connection string."""
    schema: str = ""
    """PostgreSQL schema holding this node's tables."""


@dataclass(frozen=True)
class MetricsConfig:
    """The operations HTTP endpoint (``[metrics]``): /metrics, /healthz, /readyz."""

    address: str = "127.0.0.1"
    """Interface to listen on (no client certificate is asked there)."""
    port: int | None = None
    """Port; None: not served (``wlx serve --metrics-port`` overrides)."""
    stale_after: float = 0.0
    """Seconds after which a peer's list counts as stale for /readyz and the
    gRPC health service; 0: ten sync intervals, at least 300 s."""

    def staleness_bound(self, sync_interval: float) -> float:
        """The bound in seconds."""
        return self.stale_after or max(300.0, 10 * sync_interval)

    @classmethod
    def from_table(cls, table: Any) -> MetricsConfig:
        """Parse ``[metrics]``.

        Raises:
            ValueError: not a table, an unknown key, or a bad value.
        """
        if not isinstance(table, dict):
            raise ValueError("[metrics] must be a table")
        unknown = sorted(set(table) - {"address", "port", "stale_after"})
        if unknown:
            raise ValueError(f"unknown setting metrics.{unknown[0]} (address, port, stale_after)")
        address = str(table.get("address", "127.0.0.1"))
        try:
            check_address(f"{address}:0")
        except UserError:
            raise ValueError("metrics.address must be a host name or an IP address") from None
        port = table.get("port")
        if port is not None and (not isinstance(port, int) or not 0 <= port <= 65535):
            raise ValueError("metrics.port must be a port number 0-65535")
        stale_after = float(table.get("stale_after", 0.0))
        if stale_after < 0:
            raise ValueError("metrics.stale_after must be 0 or more seconds")
        return cls(address, port, stale_after)

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {"address": self.address, "stale_after": self.stale_after}
        if self.port is not None:
            table["port"] = self.port
        return table


@dataclass(frozen=True)
class NodeConfig:
    """The contents of ``node.toml``."""

    node_id: str
    listen: str
    advertise: str
    sync_interval: float = DEFAULT_SYNC_INTERVAL
    storage: StorageConfig = StorageConfig()
    authority: str = ""
    """Name of the authority the node acts for, in detail requests
    (default: the node id)."""
    retention_grace_days: int = 0
    """Own records are removed this many days after they expire."""
    outbox_keep_days: int = 30
    """Batches are kept at most this long for a peer that has not
    acknowledged them; a peer further behind resyncs from a snapshot."""
    detail_quota: int = 200
    """Detail requests each peer may make per 24 hours."""
    limits: LimitSettings = field(default_factory=LimitSettings)
    """Rate limits per role (``[limits]``)."""
    metrics: MetricsConfig = MetricsConfig()
    """The operations HTTP endpoint (``[metrics]``)."""
    oprf_daily_budget: int = 100_000
    """Online-tier evaluations each peer may have per UTC day (docs/protocol.md §15.5)."""

    def to_toml(self) -> str:
        """The file's text."""
        storage: dict[str, Any] = {"backend": self.storage.backend}
        if self.storage.backend == Backend.SQLITE:
            storage["path"] = self.storage.path
        else:
            storage["dsn"] = self.storage.dsn
            storage["schema"] = self.storage.schema
        return tomli_w.dumps(
            {
                "node_id": self.node_id,
                "listen": self.listen,
                "advertise": self.advertise,
                "authority": self.authority or self.node_id,
                "sync_interval": self.sync_interval,
                "retention_grace_days": self.retention_grace_days,
                "outbox_keep_days": self.outbox_keep_days,
                "detail_quota": self.detail_quota,
                "oprf_daily_budget": self.oprf_daily_budget,
                "storage": storage,
                "metrics": self.metrics.to_table(),
                "limits": {
                    f"{role}_{facet}": getattr(getattr(self.limits, role), facet)
                    for role in ROLES
                    for facet in ("per_minute", "burst", "per_day")
                },
            }
        )

    @classmethod
    def from_toml(cls, text: str) -> NodeConfig:
        """Parse and check the file's text.

        Raises:
            UserError: not TOML, or a setting is missing or invalid.
        """
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{CONFIG_FILE} is not valid TOML ({exc})") from None
        except (ValueError, RecursionError):  # a 4,300-digit number; nesting too deep
            raise UserError(f"{CONFIG_FILE} is not valid TOML (a value is too large)") from None
        mistakes = config_mistakes(data)
        if mistakes:
            raise UserError("\n".join(f"{CONFIG_FILE}: {m}" for m in mistakes))
        try:
            node_id = check_node_id(str(data["node_id"]))
            listen = check_address(str(data["listen"]))
            advertise = check_address(str(data.get("advertise", listen)))
            sync_interval = float(data.get("sync_interval", DEFAULT_SYNC_INTERVAL))
            authority = str(data.get("authority", ""))
            grace = int(data.get("retention_grace_days", 0))
            keep = int(data.get("outbox_keep_days", 30))
            quota = int(data.get("detail_quota", 200))
            budget = int(data.get("oprf_daily_budget", 100_000))
            limits = _limits(data.get("limits", {}))
            metrics = MetricsConfig.from_table(data.get("metrics", {}))
            raw_storage = data.get("storage", {})
            backend = str(raw_storage.get("backend", Backend.SQLITE))
            if backend not in set(Backend):
                raise UserError(f"{CONFIG_FILE}: storage.backend is 'sqlite' or 'postgresql'")
            storage = StorageConfig(
                backend=Backend(backend),
                path=str(raw_storage.get("path", SQLITE_FILE)),
                dsn=str(raw_storage.get("dsn", "")),
                schema=str(raw_storage.get("schema", "")),
            )
        except KeyError as exc:
            raise UserError(f"{CONFIG_FILE} lacks the setting {exc.args[0]!r}") from None
        except (MalformedError, ValueError, TypeError, AttributeError) as exc:
            raise UserError(f"{CONFIG_FILE}: {exc}") from None
        if storage.backend == Backend.POSTGRESQL and not (storage.dsn and storage.schema):
            raise UserError(
                f"{CONFIG_FILE}: storage.dsn and storage.schema are needed for PostgreSQL"
            )
        if sync_interval <= 0:
            raise UserError(f"{CONFIG_FILE}: sync_interval must be positive")
        if grace < 0 or keep < 1 or quota < 0 or budget < 0:
            raise UserError(
                f"{CONFIG_FILE}: retention_grace_days >= 0, outbox_keep_days >= 1, "
                "detail_quota >= 0, oprf_daily_budget >= 0"
            )
        return cls(
            node_id,
            listen,
            advertise,
            sync_interval,
            storage,
            authority,
            grace,
            keep,
            quota,
            limits,
            metrics,
            budget,
        )


@dataclass(frozen=True)
class NodePaths:
    """The files of one node directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def card(self) -> Path:
        return self.root / CARD_FILE

    @property
    def keys(self) -> Path:
        return self.root / KEY_DIR

    @property
    def identity_key(self) -> Path:
        return self.keys / IDENTITY_KEY

    @property
    def box_key(self) -> Path:
        return self.keys / BOX_KEY

    @property
    def storage_key(self) -> Path:
        return self.keys / STORAGE_KEY

    @property
    def tls_key(self) -> Path:
        return self.keys / TLS_KEY

    @property
    def ca_key(self) -> Path:
        return self.keys / CA_KEY

    @property
    def ca_cert(self) -> Path:
        return self.keys / CA_CERT

    @property
    def previous_keys(self) -> Path:
        """Keys replaced by the last rotation, kept until every peer has the new card."""
        return self.keys / PREVIOUS_DIR

    def load_config(self) -> NodeConfig:
        """Read ``node.toml``.

        Raises:
            NotFound: the directory is not a node directory.
            UserError: the configuration is invalid.
        """
        try:
            text = self.config.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFound(f"{self.root} is not a wlx node directory (no {CONFIG_FILE})") from None
        except OSError as exc:
            raise UserError(f"cannot read {self.config}: {exc.strerror}") from None
        return NodeConfig.from_toml(text)


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and write ``data``; never overwrites.

    Raises:
        AlreadyExists-like ``UserError``: the file exists.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UserError(f"{path} exists already; not overwriting a key") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def read_private(path: Path) -> bytes:
    """Read a private key file, refusing one that others may read.

    Raises:
        NotFound: the file does not exist.
        UserError: group or others have any access to it.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise NotFound(f"key file {path} is missing") from None
    except OSError as exc:
        raise UserError(f"cannot read key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UserError(
                f"key file {path} is accessible to others (mode {stat.S_IMODE(mode):04o}); "
                f"run: chmod 600 {path}"
            )
        return handle.read()


def write_public(path: Path, data: bytes) -> None:
    """Write a public file (config, card) atomically, mode 0644."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
