"""FollowTheMoney entities (the OpenSanctions data model) read as records.

Pure: JSON Lines of FtM entities in, validated ``Record``s and warnings out.
The mapping (docs/records.md, "FollowTheMoney"):

* ``Person`` entities become records: ``id`` from the entity id; ``names``
  from ``name`` and ``alias``, and ``firstName`` [``middleName``|``secondName``]
  ``lastName`` joined (``weakAlias`` is not used: too weak to act on);
  ``dob`` from ``birthDate`` (the first, in sorted order, when there are
  several: a warning says so); ``nationality`` from ``nationality`` or else
  ``citizenship`` (ISO 3166-1 alpha-2, turned into the three-letter code);
  ``sex`` from ``gender``; documents from ``passportNumber`` (type ``P``)
  and ``idNumber`` (type ``I``), issued by the person's one nationality (a
  number with no single nationality is skipped with a warning).
* ``Passport`` and ``Identification`` entities add a document to their
  ``holder`` (type ``P`` or ``I``, with their own ``country``).
* Every other schema is skipped and counted; so is a Person with no
  document and no name with a birth date (nothing a lookup could match).
* FtM has no listing terms: ``category``, ``action``, ``legal_basis``,
  ``authority`` and ``expires`` come from the operator (``ListingTerms``).

Errors name the line and the field, never a value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pycountry

from wlx.node.core.records import MAX_DOCUMENTS, MAX_NAMES, Record, RecordError, parse_record
from wlx.node.core.textio import JsonLineError, json_objects

DOCUMENT_SCHEMAS = {"Passport": "P", "Identification": "I"}
# Codes FtM uses that ISO 3166-1 does not define, with their ICAO 9303 codes.
_SPECIAL_COUNTRIES = {"xk": "RKS", "uk": "GBR", "su": "SUN", "cs": "SCG", "yucs": "YUG"}
_GENDER = {"male": "M", "female": "F", "other": "X"}


@dataclass(frozen=True)
class ListingTerms:
    """What FtM data does not say: the listing's category, action, basis, authority, end."""

    category: str
    action: str
    legal_basis: str
    authority: str
    expires: str


@dataclass
class FtmImport:
    """The records of an FtM file, what was skipped, and warnings (no personal values)."""

    records: list[Record] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)


def country_code(code: str) -> str | None:
    """The three-letter code of an FtM country (ISO alpha-2, lower case), or None."""
    code = code.strip().lower()
    if code in _SPECIAL_COUNTRIES:
        return _SPECIAL_COUNTRIES[code]
    country = pycountry.countries.get(alpha_2=code.upper()) if len(code) == 2 else None
    return str(country.alpha_3) if country is not None else None


def _values(props: Mapping[str, Any], name: str, line: int) -> list[str]:
    raw = props.get(name, [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise RecordError(line, f"property {name!r} must be a list of strings")
    return [v.strip() for v in raw if v.strip()]


def _names(props: Mapping[str, Any], line: int) -> list[str]:
    names = _values(props, "name", line) + _values(props, "alias", line)
    first = " ".join(_values(props, "firstName", line)[:1])
    middle = " ".join(
        (_values(props, "middleName", line) or _values(props, "secondName", line))[:1]
    )
    last = " ".join(_values(props, "lastName", line)[:1])
    if first and last:
        names.append(" ".join(p for p in (first, middle, last) if p))
    return list(dict.fromkeys(names))


def parse_ftm(text: str, terms: ListingTerms) -> FtmImport:
    """Records from FtM entities, one JSON object per line (all or nothing).

    Raises:
        RecordError: the first line that is not an FtM entity, or whose
            Person does not make a valid record (line and field named).
    """
    out = FtmImport()
    persons: dict[str, tuple[int, dict[str, Any], list[dict[str, str]]]] = {}
    held: list[tuple[int, str, dict[str, str]]] = []
    several_dobs = dropped_names = no_country = no_identifier = 0
    try:
        for line, entity in json_objects(text):
            schema, entity_id, props = (
                entity.get("schema"),
                entity.get("id"),
                entity.get("properties", {}),
            )
            if not isinstance(schema, str) or not isinstance(entity_id, str):
                raise RecordError(line, "an FtM entity has a string 'id' and 'schema'")
            if not isinstance(props, dict):
                raise RecordError(line, "an FtM entity's 'properties' is an object")
            if schema in DOCUMENT_SCHEMAS:
                for holder in _values(props, "holder", line):
                    for number in _values(props, "number", line)[:1]:
                        country = next(iter(_values(props, "country", line)), "")
                        doc = {
                            "type": DOCUMENT_SCHEMAS[schema],
                            "country": country_code(country) or "",
                            "number": number,
                        }
                        held.append((line, holder, doc))
                continue
            if schema != "Person":
                out.skipped[schema] += 1
                continue
            if entity_id in persons:
                raise RecordError(
                    line, f"entity id {entity_id!r} already on line {persons[entity_id][0]}"
                )
            names = _names(props, line)
            if len(names) > MAX_NAMES:
                dropped_names += 1
                names = names[:MAX_NAMES]
            dobs = sorted(set(_values(props, "birthDate", line)))
            several_dobs += len(dobs) > 1
            countries = [
                c
                for c in (
                    country_code(v)
                    for v in _values(props, "nationality", line)
                    or _values(props, "citizenship", line)
                )
                if c
            ]
            docs: list[dict[str, str]] = []
            for prop, kind in (("passportNumber", "P"), ("idNumber", "I")):
                for number in _values(props, prop, line):
                    if len(set(countries)) != 1:
                        no_country += 1
                        continue
                    docs.append({"type": kind, "country": countries[0], "number": number})
            gender = next(iter(_values(props, "gender", line)), "")
            obj: dict[str, Any] = {
                "id": entity_id,
                "names": names,
                "dob": dobs[0][:10] if dobs else "",
                "nationality": countries[0] if countries else "",
                "sex": _GENDER.get(gender.lower(), ""),
                "category": terms.category,
                "action": terms.action,
                "legal_basis": terms.legal_basis,
                "authority": terms.authority,
                "expires": terms.expires,
            }
            persons[entity_id] = (line, obj, docs)
    except JsonLineError as exc:
        raise RecordError(exc.line, str(exc).split(": ", 1)[1]) from None
    for _line, holder, doc in held:
        if holder in persons and doc["country"]:
            persons[holder][2].append(doc)
        elif holder in persons:
            no_country += 1
    for line, obj, docs in persons.values():
        unique = list({(d["country"], d["number"]): d for d in docs}.values())
        obj["documents"] = unique[:MAX_DOCUMENTS]
        if not obj["documents"] and not (obj["names"] and obj["dob"]):
            no_identifier += 1  # nothing a border lookup could match
            continue
        out.records.append(parse_record(obj, line))
    if no_identifier:
        out.warnings.append(
            f"{no_identifier} persons have no document and no name with a birth date: "
            "nothing a lookup could match, so they were skipped"
        )
    if several_dobs:
        out.warnings.append(
            f"{several_dobs} persons have several birth dates; the earliest was used"
        )
    if dropped_names:
        out.warnings.append(
            f"{dropped_names} persons have more than {MAX_NAMES} names; "
            f"the first {MAX_NAMES} were used"
        )
    if no_country:
        out.warnings.append(
            f"{no_country} document numbers have no single issuing country and were skipped"
        )
    return out
