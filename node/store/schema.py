"""The node's database schema, for SQLite and PostgreSQL.

One template; ``{blob}``, ``{int}``, ``{serial}`` and ``{norowid}`` are filled
in per dialect.  ``SCHEMA_VERSION`` is stored in ``meta`` and checked when a
node opens its store.
"""

from __future__ import annotations

SCHEMA_VERSION = 2
"""2: ``entries.sealed`` (a protocol-2 listing's sealed hit data, §4.3)."""

TEMPLATE = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value {blob} NOT NULL
);

-- The node's own list.  body is the record's JSON, encrypted at rest.
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    version {int} NOT NULL,
    body {blob} NOT NULL,
    expires TEXT NOT NULL,
    updated_at {int} NOT NULL,
    suspended {int} NOT NULL DEFAULT 0
);

-- Append-only change log of the own list (docs/protocol.md §6.1).
CREATE TABLE IF NOT EXISTS changes (
    seq {serial},
    record_id TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('upsert', 'remove')),
    version {int} NOT NULL,
    at {int} NOT NULL
);

-- Trust store: the peers whose identity cards the operator accepted.
CREATE TABLE IF NOT EXISTS peers (
    node_id TEXT PRIMARY KEY,
    card {blob} NOT NULL,
    address TEXT NOT NULL,
    added_at {int} NOT NULL,
    revoked_at {int} NOT NULL DEFAULT 0,
    policy TEXT NOT NULL DEFAULT '{{}}'
);

-- Officer, auditor and operator credentials issued by this node.
CREATE TABLE IF NOT EXISTS credentials (
    serial TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    issued_at {int} NOT NULL,
    expires_at {int} NOT NULL,
    revoked_at {int} NOT NULL DEFAULT 0
);

-- A rotated identity card not yet delivered to a peer.
CREATE TABLE IF NOT EXISTS announcements (
    peer TEXT PRIMARY KEY,
    card {blob} NOT NULL,
    made_at {int} NOT NULL
);

-- Origin side: one stream per recipient, and the signed batches kept for it.
CREATE TABLE IF NOT EXISTS outbound (
    peer TEXT PRIMARY KEY,
    epoch {int} NOT NULL,
    token_key {blob} NOT NULL,
    change_pos {int} NOT NULL,
    last_seq {int} NOT NULL,
    last_digest {blob} NOT NULL,
    epoch_started_at {int} NOT NULL,
    acked_seq {int} NOT NULL DEFAULT 0,
    acked_at {int} NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS outbox (
    peer TEXT NOT NULL,
    epoch {int} NOT NULL,
    last_seq {int} NOT NULL,
    first_seq {int} NOT NULL,
    digest {blob} NOT NULL,
    signed {blob} NOT NULL,
    created_at {int} NOT NULL,
    PRIMARY KEY (peer, epoch, last_seq)
){norowid};

-- Recipient side: cursor and epoch key per origin (the node itself included).
CREATE TABLE IF NOT EXISTS inbound (
    origin TEXT PRIMARY KEY,
    epoch {int} NOT NULL,
    token_key {blob} NOT NULL,
    seq {int} NOT NULL,
    digest {blob} NOT NULL,
    synced_at {int} NOT NULL,
    last_error TEXT NOT NULL,
    last_error_at {int} NOT NULL,
    origin_head {int} NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS applied (
    origin TEXT NOT NULL,
    epoch {int} NOT NULL,
    last_seq {int} NOT NULL,
    digest {blob} NOT NULL,
    PRIMARY KEY (origin, epoch, last_seq)
){norowid};

-- Listings held, by keyed handle. tokens is the concatenation of the
-- listing's 16-byte tokens (to delete them without a second index).  sealed
-- is a protocol-2 listing's sealed hit data (docs/protocol.md §4.3), empty
-- for a protocol-1 listing.
CREATE TABLE IF NOT EXISTS entries (
    origin TEXT NOT NULL,
    handle {blob} NOT NULL,
    expires TEXT NOT NULL,
    tokens {blob} NOT NULL,
    sealed {blob} NOT NULL DEFAULT {empty_blob},
    PRIMARY KEY (origin, handle)
){norowid};

-- sealed: a protocol-1 token's own sealed hit data, or, when the listing's
-- entries.sealed is not empty (protocol 2), the token's 17-byte wrap.
CREATE TABLE IF NOT EXISTS tokens (
    origin TEXT NOT NULL,
    token {blob} NOT NULL,
    handle {blob} NOT NULL,
    sealed {blob} NOT NULL,
    PRIMARY KEY (origin, token, handle)
){norowid};

-- Which rows of entries and tokens hold which origin's listings: their
-- origin column names a *slot*.  An origin's listings are those of its
-- 'live' slot (the origin's own id when it has none).  A snapshot is staged
-- into a slot of its own and swapped in by making that slot live, and 'old'
-- slots are deleted in chunks afterwards (docs/scaling.md).
CREATE TABLE IF NOT EXISTS slots (
    slot TEXT PRIMARY KEY,
    origin TEXT NOT NULL,
    snapshot_id {blob} NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('live', 'staged', 'old'))
);

-- An import into the own list being staged, then published in chunks
-- (docs/operations.md, "Importing records"): one row per record of the
-- file (kind 'add', 'update' or 'same'), its sealed body and version as
-- computed against base_version (0: no such record then), and its listing
-- in the own index (handle, and tokens: the listing's protocol in one byte,
-- then in protocol 2 the sealed hit data's length in two bytes, the sealed
-- hit data, each token with its 17-byte wrap, in protocol 1 each token, the
-- length of its sealed hit data in two bytes, the sealed hit data.  An
-- earlier version packed protocol 1 without the byte).  The meta key own_import
-- says which import these rows belong to and whether it was published.
CREATE TABLE IF NOT EXISTS import_records (
    import_id {blob} NOT NULL,
    id TEXT NOT NULL,
    line {int} NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('add', 'update', 'same')),
    base_version {int} NOT NULL,
    version {int} NOT NULL,
    body {blob} NOT NULL,
    expires TEXT NOT NULL,
    suspended {int} NOT NULL,
    handle {blob} NOT NULL,
    tokens {blob} NOT NULL,
    PRIMARY KEY (import_id, id)
){norowid};

-- Recipient side: the snapshot of each origin being staged, and how far it
-- got (kept across restarts, so that an interrupted snapshot resumes).
CREATE TABLE IF NOT EXISTS staged_snapshots (
    origin TEXT PRIMARY KEY,
    snapshot_id {blob} NOT NULL,
    progress {blob} NOT NULL
);

-- Origin side: positions a stream reached without a batch ending there (a
-- skip, or the fast-forward before a snapshot), with their anchor digest,
-- so that a peer whose cursor a snapshot put there can continue from it.
CREATE TABLE IF NOT EXISTS stream_anchors (
    peer TEXT NOT NULL,
    epoch {int} NOT NULL,
    seq {int} NOT NULL,
    digest {blob} NOT NULL,
    PRIMARY KEY (peer, epoch, seq)
){norowid};

-- Origin side: signed receipts from peers, and the removals each peer has
-- not yet acknowledged (docs/protocol.md §8.4).
CREATE TABLE IF NOT EXISTS receipts (
    peer TEXT NOT NULL,
    epoch {int} NOT NULL,
    kind TEXT NOT NULL,
    last_seq {int} NOT NULL,
    first_seq {int} NOT NULL,
    digest {blob} NOT NULL,
    applied_at {int} NOT NULL,
    received_at {int} NOT NULL,
    signed {blob} NOT NULL,
    PRIMARY KEY (peer, epoch, kind, last_seq)
){norowid};

CREATE TABLE IF NOT EXISTS sent_removals (
    peer TEXT NOT NULL,
    epoch {int} NOT NULL,
    seq {int} NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (peer, epoch, seq)
){norowid};

-- Recipient side: receipts made but not yet delivered to their origin.
CREATE TABLE IF NOT EXISTS pending_receipts (
    id {serial},
    origin TEXT NOT NULL,
    signed {blob} NOT NULL
);

-- Detail requests, both ways: "in" (a peer asked us), "out" (we asked).
CREATE TABLE IF NOT EXISTS detail_requests (
    id {serial},
    at {int} NOT NULL,
    peer TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    ref TEXT NOT NULL,
    officer TEXT NOT NULL,
    purpose TEXT NOT NULL,
    case_id TEXT NOT NULL,
    outcome TEXT NOT NULL
);

-- The exchange log (docs/audit.md): RFC 9162 Merkle tree leaves (entry
-- bytes and their leaf hashes) and the completed perfect subtrees.
CREATE TABLE IF NOT EXISTS audit_entries (
    idx {int} PRIMARY KEY,
    entry {blob} NOT NULL,
    leaf {blob} NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_nodes (
    level {int} NOT NULL,
    idx {int} NOT NULL,
    hash {blob} NOT NULL,
    PRIMARY KEY (level, idx)
){norowid};

-- Signed checkpoints of the exchange log, every one kept, and the witnesses'
-- cosignatures of them (docs/audit.md §3-§4).
CREATE TABLE IF NOT EXISTS checkpoints (
    size {int} PRIMARY KEY,
    root {blob} NOT NULL,
    note {blob} NOT NULL,
    made_at {int} NOT NULL
);

CREATE TABLE IF NOT EXISTS cosignatures (
    size {int} NOT NULL,
    witness TEXT NOT NULL,
    line TEXT NOT NULL,
    timestamp {int} NOT NULL,
    PRIMARY KEY (size, witness)
){norowid};

-- As a witness: every checkpoint of a peer's log this node cosigned, and the
-- signed checkpoints it refused (evidence of a fork or rollback).
CREATE TABLE IF NOT EXISTS witnessed (
    origin TEXT NOT NULL,
    size {int} NOT NULL,
    root {blob} NOT NULL,
    note {blob} NOT NULL,
    cosigned_at {int} NOT NULL,
    PRIMARY KEY (origin, size)
){norowid};

-- Restore declarations accepted from peers' logs (each one once).
CREATE TABLE IF NOT EXISTS witnessed_restores (
    entry_hash {blob} PRIMARY KEY,
    origin TEXT NOT NULL,
    at {int} NOT NULL
);

CREATE TABLE IF NOT EXISTS witness_refusals (
    note_hash {blob} PRIMARY KEY,
    origin TEXT NOT NULL,
    at {int} NOT NULL,
    reason TEXT NOT NULL,
    note {blob} NOT NULL
);

-- Acceptance policies (docs/protocol.md §6.6): side 'local' is this node's
-- policy for an origin (what it holds and how it maps actions, and in delivered
-- the version the origin confirmed). Side 'declared' is what a peer declared
-- to this node as its origin (categories only).
CREATE TABLE IF NOT EXISTS acceptance (
    peer TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('local', 'declared')),
    version {int} NOT NULL,
    policy TEXT NOT NULL,
    delivered {int} NOT NULL DEFAULT 0,
    changed_at {int} NOT NULL,
    PRIMARY KEY (peer, side)
){norowid};

-- Shared by every front-end of the store (docs/scaling.md): each caller's
-- rate-limit bucket, and the hits remembered for detail requests (by a keyed
-- handle of caller and ref, the seal key encrypted at rest: no ref in the
-- clear).  A store served by one process keeps both in memory.
CREATE TABLE IF NOT EXISTS rate_buckets (
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    tokens {real} NOT NULL,
    stamp {real} NOT NULL,
    day_start {real} NOT NULL,
    day_used {real} NOT NULL,
    PRIMARY KEY (role, name)
){norowid};

CREATE TABLE IF NOT EXISTS hit_memory (
    handle {blob} NOT NULL,
    origin TEXT NOT NULL,
    until {int} NOT NULL,
    seal_key {blob} NOT NULL,
    PRIMARY KEY (handle, origin)
){norowid};

CREATE TABLE IF NOT EXISTS rejections (
    id {serial},
    at {int} NOT NULL,
    origin TEXT NOT NULL,
    what TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""

SQLITE = {
    "blob": "BLOB",
    "int": "INTEGER",
    "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "norowid": " WITHOUT ROWID",
    "real": "REAL",
    "truncate": "DELETE FROM",  # without WHERE: SQLite frees the pages, visits no row
    "secure_delete": "PRAGMA secure_delete",  # see SqlTx.drop_imports
    "empty_blob": "x''",
}
POSTGRES = {
    "blob": "BYTEA",
    "int": "BIGINT",
    "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    "norowid": "",
    "real": "DOUBLE PRECISION",
    "truncate": "TRUNCATE",
    "empty_blob": "'\\x'::bytea",
}


RETIRED = ("staged_tokens", "staged_entries")
"""Tables of earlier versions, dropped at open (a snapshot staged in them
starts over: its progress no longer has a staged slot)."""


def migrations(dialect: dict[str, str]) -> dict[int, list[str]]:
    """The statements taking a store from schema version ``n`` (the key) to
    ``n + 1``, run in the transaction that opens the store."""
    return {
        1: [
            f"ALTER TABLE entries ADD COLUMN sealed {dialect['blob']} NOT NULL "
            f"DEFAULT {dialect['empty_blob']}"
        ],
    }


def statements(dialect: dict[str, str]) -> list[str]:
    """The schema's statements for one dialect (CREATE, and DROP of retired tables)."""
    creates = [s.strip() for s in TEMPLATE.format(**dialect).split(";") if s.strip()]
    return creates + [f"DROP TABLE IF EXISTS {table}" for table in RETIRED]
