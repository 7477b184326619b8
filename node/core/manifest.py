"""Passenger manifests: the formats airlines and border systems send, read into entries.

Pure: text in, ``Manifest`` out.  Formats (docs/manifests.md):

* ``paxlst``: UN/EDIFACT PAXLST (Advance Passenger Information), with its
  ``UNA`` service string (separators, ``?`` release character);
* ``csv``: a header row of ``id,names,dob,documents,mrz`` (any subset with
  at least one of names, documents, mrz);
* ``jsonl``: one object per line, ``{"id", "names", "dob", "documents", "mrz"}``;
* ``mrz``: machine-readable zones, one after the other (blank lines optional).

A file that cannot be read at all raises ``ManifestError`` naming the line
or segment.  A field of one person that cannot be used (a bad date, a
document without its issuing country, a wrong MRZ check digit) does not
stop the others: the entry keeps what is usable and lists what is not in
``Entry.unusable``, so the report shows it as not fully checked.  Messages
name lines, segments and fields, never a personal value.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from wlx.crypto.errors import InvalidIdentifier
from wlx.crypto.normalize import (
    normalize_country,
    normalize_document_number,
    normalize_name,
    parse_dob,
)
from wlx.node.core import mrz
from wlx.node.core.entries import Document, Entry
from wlx.node.core.errors import UserError
from wlx.node.core.textio import JsonLineError, json_objects


class ManifestFormat(StrEnum):
    """The formats of a manifest (``wlx screen --format``; ``format`` of a report)."""

    PAXLST = "paxlst"
    """UN/EDIFACT PAXLST."""
    CSV = "csv"
    JSONL = "jsonl"
    MRZ = "mrz"
    """MRZ lines, one document after another."""


FORMATS = tuple(f.value for f in ManifestFormat)
CSV_COLUMNS = ("id", "names", "dob", "documents", "mrz")
MAX_ENTRIES = 1_000_000


class ManifestError(UserError):
    """A manifest that cannot be read; names the line or segment, never a value."""


@dataclass(frozen=True)
class Manifest:
    """The people of one manifest, in file order."""

    format: ManifestFormat
    entries: tuple[Entry, ...]


def detect(text: str) -> ManifestFormat:
    """The format of a manifest from its first characters."""
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith(("UNA", "UNB", "UNH")):
        return ManifestFormat.PAXLST
    if head.startswith("{"):
        return ManifestFormat.JSONL
    first = head.split("\n", 1)[0].strip().upper()
    if len(first) in (30, 36, 44) and re.fullmatch(r"[A-Z0-9<]+", first) and "<" in first:
        return ManifestFormat.MRZ
    return ManifestFormat.CSV


def parse(
    text: str,
    fmt: str | None = None,
    *,
    today: datetime.date,
    limits: tuple[int, int] | None = None,
) -> Manifest:
    """Read a manifest (``fmt`` one of ``FORMATS``, or detected).

    ``limits``: the most names and documents the node takes per person; the
    rest of a person's are named as unusable, so one such person does not
    make the node refuse the whole batch.

    Raises:
        ManifestError: the file cannot be read in that format (line/segment named),
            holds nobody, or more than 1,000,000 people.
    """
    text = text.removeprefix("\ufeff")
    if fmt and fmt not in FORMATS:
        raise ManifestError(f"unknown manifest format {fmt!r} (one of {', '.join(FORMATS)})")
    form = ManifestFormat(fmt) if fmt else detect(text)
    parser = {
        ManifestFormat.PAXLST: _paxlst,
        ManifestFormat.CSV: _csv,
        ManifestFormat.JSONL: _jsonl,
        ManifestFormat.MRZ: _mrz_lines,
    }[form]
    entries = []
    for entry in parser(text, today):
        entries.append(usable(entry, limits))
        if len(entries) > MAX_ENTRIES:
            raise ManifestError(f"a manifest holds at most {MAX_ENTRIES:,} people")
    if not entries:
        raise ManifestError("the manifest holds nobody")
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        entries = [replace(e, id=f"{e.id} #{n}") for n, e in enumerate(entries, start=1)]
    return Manifest(form, tuple(entries))


# ------------------------------------------------------------------ shared


def usable(entry: Entry, limits: tuple[int, int] | None = None) -> Entry:
    """``entry`` with only the fields a lookup can use; the others named in ``unusable``.

    A person with one bad field is still checked on the rest: a bad date of
    birth leaves the documents, a bad document leaves the name and date.
    ``limits`` caps the names and documents kept (the rest are named).
    """
    problems = list(entry.unusable)
    if limits is not None:
        max_names, max_docs = limits
        if len(entry.names) > max_names:
            problems.append(f"names after the first {max_names} were not checked")
        if len(entry.documents) > max_docs:
            problems.append(f"documents after the first {max_docs} were not checked")
        entry = replace(entry, names=entry.names[:max_names], documents=entry.documents[:max_docs])
    dob = entry.dob
    if dob:
        try:
            parse_dob(dob)
        except InvalidIdentifier as exc:
            problems.append(f"date of birth: {exc}")
            dob = ""
    names = []
    for index, name in enumerate(entry.names, start=1):
        try:
            normalize_name(name)
            names.append(name)
        except InvalidIdentifier as exc:
            problems.append(f"name {index}: {exc}")
    docs = []
    for index, doc in enumerate(entry.documents, start=1):
        try:
            normalize_country(doc.country)
            normalize_document_number(doc.number)
            docs.append(doc)
        except InvalidIdentifier as exc:
            problems.append(f"document {index}: {exc}")
    if names and not dob and docs:
        problems.append("names without a date of birth were not checked (documents were)")
        names = []
    return replace(
        entry, names=tuple(names), dob=dob, documents=tuple(docs), unusable=tuple(problems)
    )


def _with_mrz(entry: Entry, text: str, today: datetime.date) -> Entry:
    """``entry`` with what a (lenient) MRZ adds; problems become ``unusable``."""
    try:
        read, problems = mrz.parse_lenient(mrz.split_lines(text), today)
    except mrz.MrzError as exc:
        return replace(entry, unusable=(*entry.unusable, str(exc)))
    names = entry.names + ((read.name,) if read.name else ())
    dob = entry.dob or read.dob
    docs = entry.documents
    if read.document_number and read.issuing_state:
        docs += (Document(read.document_type or "P", read.issuing_state, read.document_number),)
    return replace(
        entry, names=names, dob=dob, documents=docs, unusable=(*entry.unusable, *problems)
    )


def _documents(raw: Any, where: str) -> tuple[tuple[Document, ...], tuple[str, ...]]:
    """Documents from a list of "T:C:N" strings or {type, country, number} objects."""
    docs: list[Document] = []
    problems: list[str] = []
    for index, item in enumerate(raw, start=1):
        value = (
            (item.get("type", ""), item.get("country", ""), item.get("number", ""))
            if isinstance(item, dict)
            else item
        )
        try:
            docs.append(Document.parse(value))
        except UserError:
            problems.append(f"{where} document {index} is not TYPE:COUNTRY:NUMBER")
    return tuple(docs), tuple(problems)


# ------------------------------------------------------------------ JSON Lines


def _jsonl(text: str, today: datetime.date) -> Iterator[Entry]:
    try:
        for number, obj in json_objects(text):
            yield _json_entry(obj, number, today)
    except JsonLineError as exc:
        raise ManifestError(str(exc)) from None


def _json_entry(obj: dict[str, Any], number: int, today: datetime.date) -> Entry:
    names, dob, docs, text = (
        obj.get("names", []),
        obj.get("dob", ""),
        obj.get("documents", []),
        obj.get("mrz"),
    )
    if isinstance(names, str):
        names = [names]
    if not (
        isinstance(names, list)
        and all(isinstance(n, str) for n in names)
        and isinstance(dob, str)
        and isinstance(docs, list)
        and (text is None or isinstance(text, str))
    ):
        raise ManifestError(
            f"line {number}: names is a list of strings, dob and mrz strings, documents a list"
        )
    documents, problems = _documents(docs, "")
    entry = Entry(
        id=str(obj.get("id", number)),
        names=tuple(n for n in names if n.strip()),
        dob=dob.strip(),
        documents=documents,
        unusable=tuple(p.strip() for p in problems),
    )
    return _with_mrz(entry, text, today) if text else entry


# ------------------------------------------------------------------ CSV


def _csv(text: str, today: datetime.date) -> Iterator[Entry]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    for index, column in enumerate(header, start=1):
        if column in CSV_COLUMNS:
            continue
        hint = ""
        if column.strip().lower() in CSV_COLUMNS:
            hint = f" (write it as {column.strip().lower()!r}: lower case, no spaces)"
        elif ";" in column or "\t" in column:
            hint = " (fields must be separated by ',', not ';' or tabs)"
        raise ManifestError(
            f"line 1: header column {index} is not one of {', '.join(CSV_COLUMNS)}{hint}"
        )
    if not {"names", "documents", "mrz"} & set(header):
        raise ManifestError("line 1: the header needs a names, documents or mrz column")
    for row in reader:
        line = reader.line_num
        if None in row:
            raise ManifestError(f"line {line}: more values than header columns")
        values = {k: (v or "").strip() for k, v in row.items() if k is not None}
        docs, problems = _documents(
            [d for d in values.get("documents", "").split("|") if d.strip()], ""
        )
        entry = Entry(
            id=values.get("id") or str(line),
            names=tuple(n.strip() for n in values.get("names", "").split("|") if n.strip()),
            dob=values.get("dob", ""),
            documents=docs,
            unusable=tuple(p.strip() for p in problems),
        )
        mrz_text = values.get("mrz", "").replace("|", "\n")
        yield _with_mrz(entry, mrz_text, today) if mrz_text else entry


# ------------------------------------------------------------------ MRZ lines


def _mrz_lines(text: str, today: datetime.date) -> Iterator[Entry]:
    lines = [(n, line.strip().upper()) for n, line in enumerate(text.split("\n"), start=1)]
    lines = [(n, line) for n, line in lines if line]
    index = 0
    while index < len(lines):
        start, first = lines[index]
        count = {30: 3, 36: 2, 44: 2}.get(len(first))
        if count is None or index + count > len(lines):
            raise ManifestError(
                f"line {start}: not the start of an MRZ (3 lines of 30, or 2 of 36 or 44)"
            )
        block = [line for _, line in lines[index : index + count]]
        if len({len(b) for b in block}) != 1:
            raise ManifestError(f"line {start}: the lines of this MRZ differ in length")
        yield _with_mrz(Entry(id=f"line {start}"), "\n".join(block), today)
        index += count


# ------------------------------------------------------------------ UN/EDIFACT PAXLST


@dataclass(frozen=True)
class _Syntax:
    component: str = ":"
    element: str = "+"
    release: str = "?"
    terminator: str = "'"


def _segments(text: str) -> Iterator[tuple[int, list[list[str]]]]:
    """``(segment number, elements as lists of components)`` of an EDIFACT interchange."""
    syntax = _Syntax()
    body = text.lstrip()
    number = 0
    if body.startswith("UNA"):  # counted as segment 1, as people number the lines
        if len(body) < 9:
            raise ManifestError("segment 1 (UNA): the service string advice is cut short")
        una = body[3:9]
        syntax = _Syntax(una[0], una[1], una[3] if una[3] != " " else "", una[5])
        body = body[9:]
        number = 1
    release, terminator = syntax.release, syntax.terminator
    begin = search = 0
    while (at := body.find(terminator, search)) >= 0:
        # A terminator after an odd number of release characters is text (linear scan).
        run = 0
        while release and at - run - 1 >= begin and body[at - run - 1] == release:
            run += 1
        search = at + 1
        if run % 2:
            continue
        number += 1
        segment = body[begin:at].lstrip()
        begin = search
        if release and release in segment:
            yield number, _split_released(segment, syntax)
        else:
            yield number, [e.split(syntax.component) for e in segment.split(syntax.element)]
    if body[begin:].strip():
        raise ManifestError(f"segment {number + 1}: not terminated (missing {terminator})")


def _split_released(segment: str, syntax: _Syntax) -> list[list[str]]:
    """Split a segment holding release characters (rare: a char-by-char walk)."""
    elements: list[list[str]] = [[""]]
    escaped = False
    for char in segment:
        if escaped:
            elements[-1][-1] += char
            escaped = False
        elif char == syntax.release:
            escaped = True
        elif char == syntax.element:
            elements.append([""])
        elif char == syntax.component:
            elements[-1].append("")
        else:
            elements[-1][-1] += char
    return elements


def _element(segment: list[list[str]], index: int, component: int = 0) -> str:
    if index < len(segment) and component < len(segment[index]):
        return segment[index][component].strip()
    return ""


@dataclass
class _Passenger:
    number: int
    names: tuple[str, ...] = ()
    dob: str = ""
    docs: tuple[Document, ...] = ()
    problems: tuple[str, ...] = ()
    seat: str = ""
    doc_type: str = ""
    doc_number: str = ""
    doc_country: str = ""
    doc_segment: int = 0
    open_doc: bool = False

    def close_doc(self) -> None:
        if not self.open_doc:
            return
        self.open_doc = False
        where = f"document (DOC segment {self.doc_segment})"
        if not self.doc_number:
            self.problems += (f"{where} has no number",)
        elif not self.doc_country:
            self.problems += (f"{where} has no issuing country (LOC+91)",)
        else:
            self.docs += (Document(self.doc_type or "P", self.doc_country, self.doc_number),)

    def entry(self) -> Entry:
        self.close_doc()
        label = f"passenger {self.number}" + (f" seat {self.seat}" if self.seat else "")
        return Entry(
            id=label, names=self.names, dob=self.dob, documents=self.docs, unusable=self.problems
        )


def _edifact_date(value: str, fmt: str, today: datetime.date) -> str:
    """A DTM date of birth: YYMMDD (format 101, the default) or CCYYMMDD (102)."""
    if fmt == "102" or (not fmt and len(value) == 8):
        if not re.fullmatch(r"[0-9]{8}", value):
            raise ValueError
        datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    if not re.fullmatch(r"[0-9]{6}", value):
        raise ValueError
    try:
        return mrz.birth_date(value, today)
    except mrz.MrzError:
        raise ValueError from None


def _paxlst(text: str, today: datetime.date) -> Iterator[Entry]:
    current: _Passenger | None = None
    count = 0
    seen_header = False
    for number, seg in _segments(text):
        tag = seg[0][0]
        if not re.fullmatch(r"[A-Z]{3}", tag):
            raise ManifestError(f"segment {number}: not an EDIFACT segment tag")
        if tag in ("UNB", "UNH"):
            seen_header = True
            if tag == "UNH" and "PAXLST" not in _element(seg, 2):
                raise ManifestError(f"segment {number} (UNH): the message is not a PAXLST")
        if not seen_header:
            raise ManifestError(f"segment {number}: a PAXLST interchange starts with UNB or UNH")
        if tag == "NAD" and _element(seg, 1) in ("FL", "FM", "DDT", "DDU", "COT"):
            if current is not None:
                yield current.entry()
            count += 1
            current = _Passenger(count)
            parts = [c.strip() for c in (seg[4] if len(seg) > 4 else []) if c.strip()]
            if parts:
                # C080: surname, then given names.
                current.names = (" ".join([*parts[1:], parts[0]]),)
            else:
                current.problems += (f"name (NAD segment {number}) is missing",)
            continue
        if tag in {"CNT", "UNT"}:
            if current is not None:
                yield current.entry()
                current = None
            continue
        if current is None:
            continue  # flight and message segments
        if tag == "DTM" and _element(seg, 1) == "329":
            try:
                current.dob = _edifact_date(_element(seg, 1, 1), _element(seg, 1, 2), today)
            except ValueError:
                current.problems += (f"date of birth (DTM+329, segment {number}) is not a date",)
        elif tag == "DOC":
            current.close_doc()
            current.open_doc = True
            current.doc_segment = number
            current.doc_type = re.sub(r"[^A-Z0-9]", "", _element(seg, 1).upper())[:16]
            current.doc_number = _element(seg, 2)
            current.doc_country = ""
        elif tag == "LOC" and _element(seg, 1) == "91" and current.open_doc:
            current.doc_country = _element(seg, 2)
        elif tag == "RFF" and _element(seg, 1) == "SEA":
            current.seat = re.sub(r"[^A-Z0-9]", "", _element(seg, 1, 1).upper())[:8]
    if current is not None:
        yield current.entry()
