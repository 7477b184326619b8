"""Records: a listed person, their documents and the listing, validated.

A record is what an operator imports (docs/records.md gives the JSON Lines
and CSV formats).  Validation is pure: text in, frozen records or a
``RecordError`` naming the line and the field out.  Messages name the field
and the rule, never the value (it may be a name or a document number).
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from wlx.crypto.errors import InvalidIdentifier
from wlx.crypto.normalize import (
    NORMALISATION,
    IdentifierKey,
    normalize_country,
    normalize_document_number,
    parse_dob,
    record_keys,
)
from wlx.node.core.errors import UserError
from wlx.node.core.textio import JsonLineError, json_objects

RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
TERM = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DOC_TYPE = re.compile(r"^[A-Z0-9]{1,16}$")
SEXES = frozenset({"M", "F", "X", ""})
MAX_NAMES = 32
MAX_DOCUMENTS = 32
MAX_TEXT = 256
FIELDS = (
    "id",
    "names",
    "dob",
    "nationality",
    "sex",
    "documents",
    "category",
    "action",
    "legal_basis",
    "authority",
    "expires",
    "tier",
)


class Tier(StrEnum):
    """A listing's tier (docs/protocol.md §15.1), as records and policies name it."""

    OFFLINE = "offline"
    ONLINE = "online"


class RecordError(UserError):
    """A record that cannot be imported; ``line`` is 1-based, 0 if unknown."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True)
class Document:
    """A travel or identity document, normalised."""

    type: str
    country: str
    number: str


@dataclass(frozen=True)
class Record:
    """One listed person and the listing, normalised and validated."""

    id: str
    names: tuple[str, ...]
    dob: str
    nationality: str
    sex: str
    documents: tuple[Document, ...]
    category: str
    action: str
    legal_basis: str
    authority: str
    expires: str
    tier: Tier | None = None
    """The record's own tier; None: the sharing policy's default (§15.1)."""

    def identifier_keys(self, version: str = NORMALISATION) -> list[IdentifierKey]:
        """The record's identifier keys (docs/protocol.md §2.6).

        Raises:
            RecordError: an identifier does not normalise under ``version``, or
                the record yields no key (crypto's ``InvalidIdentifier``,
                translated; the message never holds the value).
        """
        try:
            return list(_identifier_keys(self.names, self.dob, self.documents, version))
        except InvalidIdentifier as exc:
            raise RecordError(0, str(exc)) from None

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys, no spaces): the stored form."""
        obj: dict[str, Any] = {
            "action": self.action,
            "authority": self.authority,
            "category": self.category,
            "documents": [
                {"country": d.country, "number": d.number, "type": d.type} for d in self.documents
            ],
            "dob": self.dob,
            "expires": self.expires,
            "id": self.id,
            "legal_basis": self.legal_basis,
            "names": list(self.names),
            "nationality": self.nationality,
            "sex": self.sex,
        }
        if self.tier is not None:  # records without a tier keep the bytes they always had
            obj["tier"] = self.tier
        return _CANONICAL.encode(obj).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Record:
        """Load the stored form written by ``to_json`` (validated when it was
        imported; stored records are encrypted and authenticated at rest).

        Raises:
            RecordError: not the stored form of a record.
        """
        try:
            obj = json.loads(data)
            fields = {name: obj[name] for name in FIELDS if name != "tier"}
            tier = obj.get("tier")
            fields["tier"] = Tier(tier) if tier else None
            fields["names"] = tuple(fields["names"])
            fields["documents"] = tuple(Document(**d) for d in fields["documents"])
            return cls(**fields)
        except (ValueError, KeyError, TypeError):
            raise RecordError(0, "not a stored record") from None


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
"""``Record.to_json``'s encoder (made once: ``json.dumps`` with options builds one per call)."""


@functools.lru_cache(maxsize=65_536)
def _identifier_keys(
    names: tuple[str, ...], dob: str, documents: tuple[Document, ...], version: str
) -> tuple[IdentifierKey, ...]:
    """Identifier keys, cached: a record is keyed once, not once per peer."""
    docs = [(d.country, d.number) for d in documents]
    return tuple(record_keys(names, dob or None, docs, version))


def forget_keys() -> None:
    """Empty the cache of identifier keys: an import keys each record once
    (validation, then its listing), so its memory stays that of one chunk."""
    _identifier_keys.cache_clear()


def _text(obj: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = obj.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValueError(f"field {name!r} must be a string")
    value = value.strip()
    if required and not value:
        raise ValueError(f"field {name!r} is required")
    if len(value) > MAX_TEXT:
        raise ValueError(f"field {name!r} is longer than {MAX_TEXT} characters")
    return value


def _term(obj: Mapping[str, Any], name: str) -> str:
    value = _text(obj, name).lower().replace(" ", "-")
    if not TERM.match(value):
        raise ValueError(f"field {name!r} must be a short term of a-z, 0-9, '-' and '_'")
    return value


def _document(raw: Any, index: int) -> Document:
    if not isinstance(raw, Mapping):
        raise ValueError(f"documents[{index}] must be an object with type, country, number")
    doc_type = _text(raw, "type").upper()
    if not DOC_TYPE.match(doc_type):
        raise ValueError(f"documents[{index}].type must be 1-16 of A-Z and 0-9")
    try:
        country = normalize_country(_text(raw, "country"))
        number = normalize_document_number(_text(raw, "number"))
    except InvalidIdentifier as exc:
        raise ValueError(f"documents[{index}]: {exc}") from None
    return Document(doc_type, country, number)


def _expires(obj: Mapping[str, Any]) -> str:
    value = _text(obj, "expires")
    try:
        if len(value) != len("YYYY-MM-DD"):
            raise ValueError
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError("field 'expires' must be a date YYYY-MM-DD") from None


def _tier(obj: Mapping[str, Any]) -> Tier | None:
    value = _text(obj, "tier", required=False).lower()
    if not value:
        return None
    try:
        return Tier(value)
    except ValueError:
        raise ValueError("field 'tier' must be offline or online") from None


def parse_record(obj: Any, line: int) -> Record:
    """Validate one record object (a parsed JSON line or CSV row).

    Raises:
        RecordError: naming ``line`` and the first field that is wrong.
    """
    try:
        if not isinstance(obj, Mapping):
            raise ValueError("a record must be a JSON object")
        unknown = sorted(set(obj) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}")
        record_id = _text(obj, "id")
        if not RECORD_ID.match(record_id):
            raise ValueError(
                "field 'id' must be 1-64 of A-Z, a-z, 0-9 and ._:/- starting with a letter or digit"
            )
        names_raw = obj.get("names") or []
        if not isinstance(names_raw, list) or not all(isinstance(n, str) for n in names_raw):
            raise ValueError("field 'names' must be a list of strings")
        if len(names_raw) > MAX_NAMES:
            raise ValueError(f"field 'names' has more than {MAX_NAMES} entries")
        names = tuple(n.strip() for n in names_raw if n.strip())
        dob = _text(obj, "dob", required=False)
        if dob:
            dob = parse_dob(dob).iso()
        nationality = _text(obj, "nationality", required=False)
        if nationality:
            nationality = normalize_country(nationality)
        sex = _text(obj, "sex", required=False).upper()
        if sex not in SEXES:
            raise ValueError("field 'sex' must be M, F, X or empty")
        docs_raw = obj.get("documents") or []
        if not isinstance(docs_raw, list):
            raise ValueError("field 'documents' must be a list")
        if len(docs_raw) > MAX_DOCUMENTS:
            raise ValueError(f"field 'documents' has more than {MAX_DOCUMENTS} entries")
        documents = tuple(_document(d, i) for i, d in enumerate(docs_raw))
        record = Record(
            id=record_id,
            names=names,
            dob=dob,
            nationality=nationality,
            sex=sex,
            documents=documents,
            category=_term(obj, "category"),
            action=_term(obj, "action"),
            legal_basis=_text(obj, "legal_basis"),
            authority=_text(obj, "authority"),
            expires=_expires(obj),
            tier=_tier(obj),
        )
        record.identifier_keys()  # a record must yield at least one valid key
        return record
    except (ValueError, InvalidIdentifier, RecordError) as exc:
        raise RecordError(line, str(exc)) from None


def parse_jsonl(text: str | Iterable[tuple[int, str]]) -> Iterator[tuple[int, Record]]:
    """``(line number, record)`` of a JSON Lines file, one per non-blank line;
    ``text`` is the whole file or its ``(number, line)`` pairs read lazily
    (``textio.numbered``).

    Lines end at ``\\n`` only (U+2028 or U+0085 inside a string is text, not
    a line break).  A JSON array, pretty-printed JSON or CSV gets a hint.

    Raises:
        RecordError: for the first bad line (its number and what is wrong).
    """
    try:
        for number, obj in json_objects(text):
            yield number, parse_record(obj, number)
    except JsonLineError as exc:
        raise RecordError(exc.line, str(exc).split(": ", 1)[1]) from None


def _csv_row(row: Mapping[str, str | None]) -> dict[str, Any]:
    """Turn a CSV row into a record object.

    ``names`` is ``|``-separated; ``documents`` is ``|``-separated
    ``TYPE:COUNTRY:NUMBER`` triples.
    """
    obj: dict[str, Any] = {k: (v or "") for k, v in row.items() if k is not None}
    obj["names"] = [n for n in obj.get("names", "").split("|") if n.strip()]
    docs = []
    for triple in (t for t in obj.get("documents", "").split("|") if t.strip()):
        parts = triple.split(":")
        if len(parts) != 3:
            raise ValueError("documents must be TYPE:COUNTRY:NUMBER, separated by '|'")
        docs.append({"type": parts[0], "country": parts[1], "number": parts[2]})
    obj["documents"] = docs
    return obj


def parse_csv(text: str | Iterable[str]) -> Iterator[tuple[int, Record]]:
    """``(line number, record)`` of a CSV file with a header row of field names;
    ``text`` is the whole file or a file opened with ``newline=""``, read lazily.

    Line numbers count the header as line 1.

    Raises:
        RecordError: for the first bad row.
    """
    reader = csv.DictReader(io.StringIO(text, newline="") if isinstance(text, str) else text)
    header = reader.fieldnames or []
    unknown = [i for i, h in enumerate(header, start=1) if h not in FIELDS]
    if unknown:
        # By position, not by its text: in a file without a header row, the
        # "header" is the first person's names and document numbers.
        column = header[unknown[0] - 1]
        hint = ""
        if column.strip().lower() in FIELDS:  # a field name: safe to show
            hint = f"; write it as {column.strip().lower()!r} (lower case, no spaces)"
        elif ";" in column or "\t" in column:
            hint = "; separate fields with ',' (this file uses ';' or tabs)"
        elif column.lstrip().startswith(("{", "[")):
            hint = "; this looks like JSON: give --format jsonl"
        raise RecordError(
            1,
            f"header column {unknown[0]} is not a field name (fields: {', '.join(FIELDS)}){hint}",
        )
    for row in reader:
        line = reader.line_num
        if None in row:
            raise RecordError(line, "more values than header columns")
        try:
            obj = _csv_row(row)
        except ValueError as exc:
            raise RecordError(line, str(exc)) from None
        yield line, parse_record(obj, line)


class RecordFormat(StrEnum):
    """The formats of a record file (``wlx records import --format``)."""

    JSONL = "jsonl"
    CSV = "csv"
    FTM = "ftm"
    """FollowTheMoney entities (``wlx.node.core.ftm``)."""


def detect_format(text: str, filename: str) -> RecordFormat:
    """CSV for a .csv file, FtM when the first line is a FollowTheMoney
    entity (has "schema" and "properties"), else JSON Lines."""
    if filename.lower().endswith(".csv"):
        return RecordFormat.CSV
    first = text.lstrip("\ufeff \t\r\n").split("\n", 1)[0]
    if first.startswith("{") and '"schema"' in first and '"properties"' in first:
        return RecordFormat.FTM
    return RecordFormat.JSONL


def expired(records: list[Record], today: str) -> list[Record]:
    """The records whose ``expires`` is before ``today`` (YYYY-MM-DD): they would
    be imported, match nothing, and be removed at the next maintenance."""
    return [r for r in records if r.expires < today]


def parse_records(text: str, fmt: RecordFormat) -> list[Record]:
    """Every record of a file, or an error for the first bad one (all or nothing).

    ``fmt`` is JSONL or CSV.  Duplicate ids within the file are an error.

    Raises:
        RecordError: the first bad line; nothing is returned.
    """
    text = text.removeprefix("\ufeff")  # the byte-order mark spreadsheet programs write
    records = []
    seen: dict[str, int] = {}
    for line, record in parse_csv(text) if fmt == RecordFormat.CSV else parse_jsonl(text):
        if record.id in seen:
            raise RecordError(line, f"record id {record.id!r} already on line {seen[record.id]}")
        seen[record.id] = line
        records.append(record)
    if not records:
        raise RecordError(0, "the file holds no records")
    return records
