"""At rest and in logs: no raw personal identifier anywhere a thief or a log reader looks.

* "A receiving node's storage, read by someone who steals the disk, shows no
  names, document numbers or reasons": every byte of the receiving node's
  directory (SQLite database with its -wal/-shm files, configuration, card,
  keys) and, on PostgreSQL, every row of every table of its schema.
* The origin's own store holds its own records encrypted with its storage key.
* "No raw personal identifier in a receiving node's storage, in any log, or in
  an error message": all log output of the whole flow (imports, syncs,
  lookups, rejected inputs, invalid queries) and every error message.

Identifiers are searched as typed, in upper, lower and case-folded form, in
Unicode normal forms, as JSON escapes, normalised (per name part, too), as
identifier-key bytes, and as the unkeyed SHA-256 of each identifier key (raw
and hex): the digest a careless design would store instead of a keyed token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from support.nodes import PG_DSN, Federation, FederationMaker, StorageFactory

from wlx.crypto.errors import InvalidIdentifier
from wlx.crypto.normalize import (
    normalize_document_number,
    normalize_name,
    query_keys,
    record_keys,
)
from wlx.crypto.signing import Purpose
from wlx.node.core.errors import Rejection, UserError
from wlx.node.core.node import Node
from wlx.node.core.records import RecordError, RecordFormat, parse_records
from wlx.node.incoming import receiver
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.protocol.envelopes import seal_presigned
from wlx.node.protocol.messages import Sealed
from wlx.node.trust import credentials
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

WLX = str(Path(sys.executable).with_name("wlx"))
MIN_NEEDLE_BYTES = 6
"""Shorter byte strings could occur by chance in random bytes (keys, tokens)."""

LISTED: list[dict[str, Any]] = [
    {
        "id": "CN-ZQX-0001",
        "names": ["Zorbalak Quintessa-Vrümmel", "ЗОРБАЛАК Квинтессовна"],
        "dob": "1933-03-21",
        "nationality": "CHN",
        "sex": "F",
        "documents": [
            {"type": "P", "country": "CHN", "number": "ZQ7734159"},
            {"type": "ID", "country": "CHN", "number": "XK-9988-7766"},
        ],
        "category": "zqxcategory-terror",
        "action": "zqxaction-detain",
        "legal_basis": "Decree Q-7731 on Vrümmel smuggling",
        "authority": "Bureau Ximenorvath",
        "expires": "2099-12-31",
    },
    {
        "id": "CN-ZQX-0002",
        "names": ["王小明锋", "Wangxiao Mingfengzy"],
        "dob": "1944-04",
        "documents": [{"type": "P", "country": "CHN", "number": "E98765431"}],
        "category": "zqxcategory-fraud",
        "action": "zqxaction-refuse",
        "legal_basis": "Statute Plorvenix 88",
        "authority": "Xorbank Prosecutor",
        "expires": "2098-01-31",
    },
    {
        "id": "CN-ZQX-0003",
        "names": ["محمد عبدالزقوانيات", "Ελευθέριος Παπαζωγλάκης"],
        "dob": "1955",
        "documents": [{"type": "P", "country": "GRC", "number": "AE4417782"}],
        "category": "zqxcategory-missing",
        "action": "zqxaction-inform",
        "legal_basis": "Interpol Ypsilonnotice",
        "authority": "Gendarmerie Quivrolle",
        "expires": "2097-06-30",
    },
    {
        "id": "CN-ZQX-0004",
        "names": ["Þórgrímur Ærøsköldsson", "O'Brannigvey Łukaszewiczowa"],
        "dob": "1966-06-16",
        "documents": [{"type": "P", "country": "ISL", "number": "IS00A77Q21"}],
        "category": "zqxcategory-sanction",
        "action": "zqxaction-report",
        "legal_basis": "Regulation Brunhaldia 12/2030",
        "authority": "Office Tramblevoss",
        "expires": "2096-02-29",
    },
    {  # never looked up: not even its ref may appear at a receiver
        "id": "CN-NEVERHIT-77",
        "names": ["Quillimbert Frozzaglione"],
        "dob": "1922-02-22",
        "documents": [{"type": "P", "country": "ITA", "number": "YA1357913"}],
        "category": "zqxcategory-other",
        "action": "zqxaction-watch",
        "legal_basis": "Ordinance Frizzolato",
        "authority": "Prefettura Zampognara",
        "expires": "2095-03-03",
    },
]
LOOKED_UP = LISTED[:4]
NEVER_HIT = LISTED[4]
# Queries that miss: officers typed these; they must not be kept either.
MISSES = [
    Query(names=("Kwamenazi Obradovitchka",), dob="1977-07-07"),
    Query(documents=(("P", "RUS", "MZ5566778"),)),
    Query(names=("Йорданка Хрустальщикова",), dob="1988-08"),
]
# Queries with an invalid identifier: rejected with an error message.
INVALID = [
    Query(documents=(("P", "CHN", "ZQ77ÄÖ41Ü"),)),  # letters outside A-Z
    Query(documents=(("P", "QQ", "NV4411223"),)),  # not a country code
    Query(names=("Gribnaxle Tumbleweedor",), dob="1999-13-45"),  # not a date
    Query(names=("Hollivandra Pemberquist",)),  # a name without a date of birth
    Query(names=("Yxilophant Marbleskein " * 12,), dob="1970"),  # too long
    Query(names=("12345 67890 !!",), dob="1970"),  # no letters
]
INVALID_TEXT = [
    "ZQ77ÄÖ41Ü",
    "NV4411223",
    "Gribnaxle Tumbleweedor",
    "Hollivandra Pemberquist",
    "Yxilophant Marbleskein",
]


HEADERLESS_CSV = (
    "Zorbalak Quintessa-Vrümmel,CN-ZQX-0001,1933-03-21,CHN,F,P:CHN:ZQ7734159,"
    "zqxcategory-terror,zqxaction-detain,Decree Q-7731 on Vrümmel smuggling,"
    "Bureau Ximenorvath,2099-12-31\n"
)


def _forms(text: str) -> set[str]:
    out = {text, text.upper(), text.lower(), text.casefold(), text.strip()}
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        out |= {unicodedata.normalize(form, t) for t in list(out)}
    out |= {json.dumps(t)[1:-1] for t in list(out)}  # \uXXXX escapes of JSON
    return out


def _name_forms(name: str) -> set[str]:
    out = _forms(name)
    try:
        normalised = normalize_name(name)
    except InvalidIdentifier:
        return out
    out |= _forms(normalised)
    for part in normalised.split() + name.split():
        out |= _forms(part)
    return out


def _doc_forms(country: str, number: str) -> set[str]:
    out = _forms(number)
    try:
        normalised = normalize_document_number(number)
    except InvalidIdentifier:
        return out
    return out | _forms(normalised) | {country + normalised, f"{country}:{normalised}"}


def _key_needles(keys: Iterable[bytes]) -> set[bytes]:
    out: set[bytes] = set()
    for key in keys:
        digest = hashlib.sha256(key).digest()
        out |= {key, digest, digest.hex().encode(), digest.hex().upper().encode()}
        out |= {key.split(b"\x1f", 2)[-1]}  # the key without its version and kind prefix
    return out


def _encode(texts: Iterable[str]) -> set[bytes]:
    return {t.encode("utf-8") for t in texts}


def personal_needles(include_queries: bool = True) -> set[bytes]:
    """Names, dates of birth, document numbers (and their derived forms) of every
    listed person, and of the people looked up."""
    texts: set[str] = set()
    keys: list[bytes] = []
    for rec in LISTED:
        for name in rec["names"]:
            texts |= _name_forms(name)
        texts |= {rec["dob"], rec["dob"].replace("-", "")}
        for doc in rec["documents"]:
            texts |= _doc_forms(doc["country"], doc["number"])
        keys += [
            k.value
            for k in record_keys(
                rec["names"], rec["dob"], [(d["country"], d["number"]) for d in rec["documents"]]
            )
        ]
        keys += [
            k.value
            for k in query_keys(
                rec["names"], rec["dob"], [(d["country"], d["number"]) for d in rec["documents"]]
            )
        ]
    if include_queries:
        for query in MISSES:
            for name in query.names:
                texts |= _name_forms(name)
            for _, country, number in query.documents:
                texts |= _doc_forms(country, number)
            query_ikeys = query.keys()
            keys += [k.value for k in query_ikeys]
        for text in INVALID_TEXT:
            texts |= _name_forms(text)
    needles = _encode(texts) | _key_needles(keys)
    return {n for n in needles if len(n) >= MIN_NEEDLE_BYTES}


def reason_needles() -> set[bytes]:
    """The listing's reasons: legal basis, authority, category and action."""
    texts: set[str] = set()
    for rec in LISTED:
        for name in ("legal_basis", "authority", "category", "action"):
            texts |= _forms(rec[name])
    return {n for n in _encode(texts) if len(n) >= MIN_NEEDLE_BYTES}


def ref_needles(records: Iterable[dict[str, Any]]) -> set[bytes]:
    return {n for rec in records for n in _encode(_forms(rec["id"]))}


REF_TABLES = {"audit_entries", "detail_requests"}
"""Where a receiver keeps the refs of hits, by design: its exchange log (which
listings hit, never who was looked up) and its log of detail requests."""


def found_in(blob: bytes, needles: Iterable[bytes]) -> list[bytes]:
    return sorted(n for n in needles if n in blob)


# ------------------------------------------------------------------ reading it all


def directory_bytes(root: Path) -> bytes:
    """Every byte of every file under ``root`` (and the file names)."""
    parts = []
    for path in sorted(root.rglob("*")):
        parts.append(str(path.relative_to(root)).encode())
        if path.is_file():
            parts.append(path.read_bytes())
    assert parts, f"nothing under {root}"
    return b"\n".join(parts)


def _value_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def schema_bytes(schema: str) -> bytes:
    """Every value of every row of every table of a PostgreSQL schema."""
    parts: list[bytes] = []
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        ]
        assert "tokens" in tables and "entries" in tables
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                parts.extend(_value_bytes(v) for v in row)
    return b"\x00".join(parts)


def table_rows(node: Node) -> dict[str, bytes]:
    """Every value of every row, per table, on either backend."""
    out: dict[str, bytes] = {}
    if node.config.storage.backend == "postgresql":
        schema = node.config.storage.schema
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (schema,),
                )
            ]
            for table in tables:
                rows = conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
                out[table] = b"\x00".join(_value_bytes(v) for row in rows for v in row)
        return out
    db = sqlite3.connect(f"file:{node.paths.root / node.config.storage.path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
            out[table] = b"\x00".join(_value_bytes(v) for row in rows for v in row)
    finally:
        db.close()
    return out


def storage_bytes(node: Node) -> bytes:
    blob = directory_bytes(node.paths.root)
    if node.config.storage.backend == "postgresql":
        blob += b"\x00" + schema_bytes(node.config.storage.schema)
    return blob


# ------------------------------------------------------------------ the flow


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _grpc_errors(channel: grpc.Channel) -> list[str]:
    """Lookups with invalid identifiers over gRPC: the status details."""
    messages = []
    stub = lookup_pb2_grpc.LookupStub(channel)
    for query in INVALID:
        person = lookup_pb2.Person(
            names=list(query.names),
            dob=query.dob,
            documents=[
                lookup_pb2.Document(type=t, country=c, number=n) for t, c, n in query.documents
            ],
        )
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(lookup_pb2.CheckRequest(person=person, purpose="test"), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        messages.append(str(info.value.details()))
    entries = [
        lookup_pb2.ScreenEntry(
            id=f"seat-{i}",
            person=lookup_pb2.Person(
                names=list(q.names),
                dob=q.dob,
                documents=[
                    lookup_pb2.Document(type=t, country=c, number=n) for t, c, n in q.documents
                ],
            ),
        )
        for i, q in enumerate(INVALID + MISSES)
    ]
    response = stub.Screen(lookup_pb2.ScreenRequest(entries=entries, purpose="test"), timeout=10)
    errors = [r.error for r in response.results if r.error]
    assert len(errors) == len(INVALID)
    messages += errors
    return messages


def _detail_requests(channel: grpc.Channel) -> list[str]:
    """An officer at RU asks CN for the record behind a hit (granted), and for one
    without a hit (denied): the record passes through RU to the officer only."""
    rec = LOOKED_UP[1]
    doc = rec["documents"][0]
    stub = lookup_pb2_grpc.LookupStub(channel)
    person = lookup_pb2.Person(
        documents=[lookup_pb2.Document(type="P", country=doc["country"], number=doc["number"])]
    )
    hits = stub.Check(lookup_pb2.CheckRequest(person=person, purpose="test"), timeout=10).hits
    assert [h.ref for h in hits] == [rec["id"]]
    granted = stub.Detail(
        lookup_pb2.DetailQuery(origin="CN", ref=rec["id"], purpose="test", case_id="K-1"),
        timeout=20,
    )
    assert granted.granted and json.loads(granted.record_json)["names"] == rec["names"]
    denied = stub.Detail(
        lookup_pb2.DetailQuery(origin="CN", ref=LOOKED_UP[2]["id"], purpose="test"),
        timeout=20,
    )
    assert not denied.granted
    with pytest.raises(grpc.RpcError) as info:
        stub.Detail(lookup_pb2.DetailQuery(ref=LOOKED_UP[3]["id"], purpose="test"), timeout=20)
    return [denied.denial, str(info.value.details())]


def _rejected_inputs(fed: Federation) -> list[str]:
    """Feed RU batches it must reject: out of order, for another node, tampered."""
    cn, ru = fed["CN"].node, fed["RU"].node
    before = receiver.cursor(ru, "CN")
    assert before is not None
    state = origin.materialise(cn, "RU")
    assert state.last_seq > before.seq
    origin.materialise(cn, "AR")  # a batch made for another node
    with cn.store.read() as tx:
        rows = tx.outbox_after("RU", state.epoch, before.seq, 10)
        ar_rows = tx.outbox_after("AR", 1, 0, 1)
    assert len(rows) >= 2 and ar_rows
    ru_card = cn.trusted("RU")
    assert ru_card is not None
    messages = []
    candidates = [
        seal_presigned(rows[1].signed, Purpose.BATCH, sender="CN", to=ru_card),  # a gap
        seal_presigned(ar_rows[0].signed, Purpose.BATCH, sender="CN", to=ru_card),  # for AR
    ]
    good = seal_presigned(rows[0].signed, Purpose.BATCH, sender="CN", to=ru_card)
    tampered = bytearray(good.ciphertext)
    tampered[len(tampered) // 2] ^= 0x40
    candidates.append(Sealed(good.sender, good.recipient, good.purpose, bytes(tampered)))
    for sealed in candidates:
        with pytest.raises(Rejection) as info:
            receiver.apply_batch(ru, "CN", sealed)
        messages.append(str(info.value))
    assert receiver.cursor(ru, "CN") == before  # nothing of it was applied
    return messages


def _bad_imports() -> list[str]:
    """Import files with an invalid line that holds identifiers: the error messages."""
    bad = [
        {**LISTED[0], "dob": "1933-02-30"},
        {**LISTED[1], "documents": [{"type": "P", "country": "CHN", "number": "ZQ77ÄÖ41Ü"}]},
        {**LISTED[2], "documents": [{"type": "P", "country": "QQ", "number": "AE4417782"}]},
        {**LISTED[3], "names": ["Þórgrímur Ærøsköldsson" * 20]},
        {**LISTED[0], "expires": "Zorbalak"},
        {**LISTED[0], "sex": "Quintessa"},
        {**LISTED[0], "nationality": "Zorbalak"},
        {**LISTED[0], "tattoo": "unknown-field-value Zorbalak"},
        {**LISTED[0], "dob": "", "documents": []},
    ]
    messages = []
    for obj in bad:
        with pytest.raises(RecordError) as info:
            parse_records(_jsonl([LISTED[1], obj]), RecordFormat.JSONL)
        messages.append(str(info.value))
    with pytest.raises(RecordError) as info:
        parse_records(
            _jsonl([LISTED[0]]) + '{"id": "x", "names": ["Zorbalak Quintessa"', RecordFormat.JSONL
        )
    messages.append(str(info.value))
    # A CSV file without its header row: the first person's data is taken as the header.
    with pytest.raises(RecordError) as info:
        parse_records(HEADERLESS_CSV, RecordFormat.CSV)
    messages.append(str(info.value))
    return messages


def run_flow(fed: Federation, tmp_path: Path) -> list[str]:
    """Import, sync, look up (hits, misses, invalid), reject; returns error messages."""
    cn, ru = fed["CN"].node, fed["RU"].node
    import_file = tmp_path / "cn-list.jsonl"
    import_file.write_text(_jsonl(LISTED), encoding="utf-8")
    records = parse_records(import_file.read_text(encoding="utf-8"), RecordFormat.JSONL)
    result = ownlist.import_records(cn, records)
    assert result.added == len(LISTED)
    for peer in ("RU", "AR"):
        assert fed.sync(peer, "CN").ok

    # Officers' lookups at RU: hits on every kind of identifier, misses.
    lookup = Lookup(ru)
    for rec in LOOKED_UP:
        doc = rec["documents"][0]
        hits = lookup.check(Query(documents=((doc["type"], doc["country"], doc["number"]),)))
        assert [(h.origin, h.ref, h.matched_on) for h in hits] == [("CN", rec["id"], "document")]
        hits = lookup.check(Query(names=(rec["names"][-1].upper(),), dob=rec["dob"]))
        assert [h.ref for h in hits] == [rec["id"]]
        assert hits[0].category == rec["category"] and hits[0].action == rec["action"]
    for query in MISSES:
        assert lookup.check(query) == ()

    messages: list[str] = []
    for query in INVALID:
        with pytest.raises(UserError) as info:
            lookup.check(query)
        messages.append(str(info.value))
    officer = fed.channel("RU", name="post-ru-1")  # an officer's mutual-TLS connection
    messages += _grpc_errors(officer)
    messages += _detail_requests(officer)

    # Changes after the first sync: an update, a removal, a new listing.
    ownlist.import_records(
        cn,
        parse_records(
            _jsonl(
                [{**LISTED[0], "action": "zqxaction-arrest"}, {**LISTED[3], "id": "CN-ZQX-0005"}]
            ),
            RecordFormat.JSONL,
        ),
    )
    origin.materialise(cn, "RU")  # so that the next changes make a second batch
    ownlist.remove_record(cn, "CN-ZQX-0003")
    messages += _rejected_inputs(fed)
    with pytest.raises(UserError) as err:
        ownlist.remove_record(cn, "CN-ZQX-0003")
    messages.append(str(err.value))
    report = fed.sync("RU", "CN")
    assert report.ok and (report.batches, report.ops) == (2, 3), report
    assert lookup.check(Query(documents=(("P", "GRC", "AE4417782"),))) == ()
    assert [h.action for h in lookup.check(Query(documents=(("P", "CHN", "ZQ7734159"),)))] == [
        "zqxaction-arrest"
    ]
    messages += _bad_imports()
    return messages


def _cli_stderr(fed: Federation, tmp_path: Path) -> str:
    """The CLI, verbose, on invalid and valid lookups at RU and a bad import at CN."""
    credential = credentials.issue(fed["RU"].node, name="post-ru-cli", role="officer")
    cred_file = tmp_path / "officer.json"
    fd = os.open(cred_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(credential.to_bytes())
    node = ["--node", fed["RU"].address, "--credential", str(cred_file)]
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_text(_jsonl([{**LISTED[0], "dob": "1933-02-30"}]), encoding="utf-8")
    headerless = tmp_path / "headerless.csv"
    headerless.write_text(HEADERLESS_CSV, encoding="utf-8")
    runs = [
        ["lookup", *node, "--doc", "P:CHN:ZQ77ÄÖ41Ü"],
        ["lookup", *node, "--name", "Gribnaxle Tumbleweedor", "--dob", "1999-13-45"],
        ["lookup", *node, "--name", "Hollivandra Pemberquist"],
        ["lookup", *node, "--doc", "P:CHN:ZQ7734159", "--json"],
        ["lookup", *node, "--name", "Kwamenazi Obradovitchka", "--dob", "1977-07-07"],
        ["records", "import", str(fed["CN"].node.paths.root), str(bad_file)],
        ["records", "import", str(fed["CN"].node.paths.root), str(headerless)],
    ]
    stderr = []
    env = {**os.environ, "WLX_DEBUG": ""}
    for args in runs:
        proc = subprocess.run(
            [WLX, "-v", *args], capture_output=True, text=True, timeout=60, env=env, check=False
        )
        assert "Traceback" not in proc.stderr
        stderr.append(proc.stderr)
    assert (
        "CN-ZQX-0001"
        in subprocess.run(
            [WLX, *runs[3]], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    )
    return "\n".join(stderr)


# ------------------------------------------------------------------ the tests


def test_the_needles_find_what_they_look_for(tmp_path: Path) -> None:
    """The search itself works: the import file holds every kind of identifier."""
    blob = _jsonl(LISTED).encode("utf-8")
    persons = personal_needles()
    for rec in LISTED:
        assert found_in(blob, _encode(_name_forms(rec["names"][0])) & persons)
        assert found_in(blob, _encode(_forms(rec["documents"][0]["number"])))
        assert found_in(blob, _encode(_forms(rec["legal_basis"])) & reason_needles())
    ascii_blob = json.dumps(LISTED).encode()  # names as \uXXXX escapes
    assert found_in(ascii_blob, persons) and found_in(ascii_blob, reason_needles())
    keys = record_keys(["Zorbalak Quintessa-Vrümmel"], "1933-03-21", [])
    assert found_in(hashlib.sha256(keys[0].value).hexdigest().encode(), persons)
    assert len(persons) > 200


@pytest.fixture
def flown(
    federation: FederationMaker,
    backend: StorageFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> tuple[Federation, list[str]]:
    caplog.set_level(logging.DEBUG)
    fed = federation(["CN", "RU", "AR"], storage=backend)
    return fed, run_flow(fed, tmp_path)


def test_a_stolen_disk_of_the_receiving_node_shows_no_names_numbers_or_reasons(
    flown: tuple[Federation, list[str]],
) -> None:
    fed, _ = flown
    needles = personal_needles() | reason_needles() | ref_needles([NEVER_HIT])
    hit_refs = ref_needles(LOOKED_UP)
    for node_id in ("RU", "AR"):
        node = fed[node_id].node
        with node.store.read() as tx:
            assert tx.count_entries("CN") == 5  # it does hold CN's list, as tokens
        blob = storage_bytes(node)  # while open: the WAL holds the latest pages
        assert found_in(blob, needles) == []
        for table, rows in table_rows(node).items():
            assert found_in(rows, needles) == [], table
            if table not in REF_TABLES:
                assert found_in(rows, hit_refs) == [], table
        node.close()
        blob = storage_bytes(node)  # closed: everything checkpointed into the file
        assert found_in(blob, needles) == []
        if node.config.storage.backend == "sqlite":
            assert len(blob) > 20_000  # the database was read, not just the config


def test_the_origin_keeps_its_own_records_encrypted(
    flown: tuple[Federation, list[str]],
) -> None:
    fed, _ = flown
    cn = fed["CN"].node
    with cn.store.read() as tx:
        assert tx.count_records() == 5
    needles = personal_needles(include_queries=False) | reason_needles()
    assert found_in(storage_bytes(cn), needles) == []
    cn.close()
    assert found_in(storage_bytes(cn), needles) == []


def test_no_identifier_in_any_log_or_error_message(
    flown: tuple[Federation, list[str]], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    fed, messages = flown
    stderr = _cli_stderr(fed, tmp_path)
    assert len(messages) > 20 and all(messages)
    logged = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.get_records("setup") + caplog.records
    )
    assert "imported records" in logged and "rejected batch" in logged  # the log was captured
    assert "INVALID_ARGUMENT" in logged
    needles = personal_needles() | reason_needles()
    assert found_in(logged.encode("utf-8"), needles) == []
    assert found_in("\n".join(messages).encode("utf-8"), needles) == []
    assert found_in(stderr.encode("utf-8"), needles) == []
    assert "error:" in stderr
