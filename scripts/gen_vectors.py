"""Generate the protocol test vectors in docs/vectors/ from the implementation.

    .venv/bin/python scripts/gen_vectors.py          write docs/vectors/*.json
    .venv/bin/python scripts/gen_vectors.py --check  fail if a file would change

Every input is fixed: keys and seeds are SHA-256 of a label ("wlx test
vector: ..."), nonces come from a counter instead of the OS, so running it
again writes the same bytes.  The exception is HPKE (docs/protocol.md §5.3):
``cryptography`` draws the ephemeral key from the OS, so an HPKE ciphertext
is made once and then kept: when docs/vectors/envelopes.json or
messages.json already holds one that still opens to the expected plaintext,
it is reused; otherwise a new one is made.

The tests (tests/crypto/test_vectors.py) never run this script: they check
the implementation against the committed JSON.  Run it after an intended
change of the protocol, review the diff, and commit the JSON with the change.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wlx.crypto import atrest, envelope, online, oprf, ristretto, tls
from wlx.crypto.card import make_card
from wlx.crypto.digests import genesis_digest, payload_digest
from wlx.crypto.encoding import lp, u64
from wlx.crypto.errors import CryptoError, InvalidIdentifier
from wlx.crypto.keys import BoxKey, SigningKey
from wlx.crypto.names import name_forms, phonetic_code
from wlx.crypto.normalize import (
    NORMALISATION_1,
    NORMALISATION_2,
    KeyKind,
    normalize_country,
    normalize_document_number,
    normalize_name,
    parse_dob,
    query_keys,
    query_keys_checked,
    record_keys,
)
from wlx.crypto.online import OnlineKey
from wlx.crypto.signing import ANYONE, Purpose, sign, signing_input
from wlx.crypto.tokens import EpochKey, kind_code, listing_key, pad, pad2
from wlx.node.core.records import parse_record
from wlx.node.detail import proof_message
from wlx.node.protocol import codec, outbound
from wlx.node.protocol.messages import (
    DetailAnswer,
    DetailParams,
    HitData,
    PullParams,
    Receipt,
    ReceiptKind,
    Remove,
    SnapshotParams,
)
from wlx.v1 import envelope_pb2

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "vectors"


def fixed(label: str) -> bytes:
    """32 bytes that stand for a secret in the vectors: SHA-256 of a label."""
    return hashlib.sha256(f"wlx test vector: {label}".encode()).digest()


def counter_rng(start: int = 1) -> Callable[[int], bytes]:
    """An ``Rng`` returning n-byte big-endian counters start, start + 1, ..."""
    state = [start]

    def rng(n: int) -> bytes:
        value = state[0]
        state[0] += 1
        return value.to_bytes(n, "big")

    return rng


V1, V2 = NORMALISATION_1, NORMALISATION_2


def key_json(ikey: Any) -> dict[str, str]:
    return {"kind": ikey.kind.value, "text": ikey.value.decode("utf-8"), "hex": ikey.value.hex()}


def seq_rng(values: list[bytes]) -> Callable[[int], bytes]:
    """An ``Rng`` that returns ``values`` in turn (randomness the vectors fix)."""
    draws = iter(values)
    return lambda _n: next(draws)


def const_rng(value: bytes) -> Callable[[int], bytes]:
    """An ``Rng`` that returns ``value`` (a nonce or randomness the vectors fix)."""
    return lambda _n: value


def error_of(fn: Callable[[], object]) -> dict[str, str]:
    try:
        fn()
    except (InvalidIdentifier, CryptoError) as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    raise AssertionError("expected an error")


# ---------------------------------------------------------------- §2 normalisation

NAMES = [
    ("Wang Wei", "Latin, two parts"),
    ("WEI  wang", "case, part order and repeated spaces do not matter"),
    ("José María Ñúñez", "diacritics are stripped (NFD, drop Mn)"),
    ("François Müller-Lüdenscheidt", "hyphen separates"),
    ("Straße", "case folding turns ß into ss"),
    ("STRASSE", "matches Straße"),
    ("Søren Kierkegaard", "ø folds to o (fold table)"),
    ("Æsa Ødegård", "æ folds to ae, ø to o, å loses its ring"),
    ("Łukasz Żółć", "ł folds to l; ż, ó, ć lose their marks"),
    ("Đorđe Þórsson", "đ to d, þ to th"),
    ("Œdipe Ðuro", "œ to oe, ð to d"),
    ("O'Brien", "apostrophe deleted, not a separator"),
    ("O’Brien", "U+2019 right single quotation mark deleted too"),
    ("O´Brien", "U+00B4 acute accent deleted before NFKC (which would make it a space)"),
    ("Oʼbrien", "U+02BC modifier letter apostrophe deleted"),
    ("D`Angelo", "grave accent character deleted"),
    ("Jean-Luc Picard", "hyphen is a separator: three parts"),
    ("Smith, John (Jr.)", "punctuation separates"),
    ("Иванов Иван Иванович", "Cyrillic is kept, case-folded"),
    ("ИВАНОВ Иван", "Cyrillic case"),
    ("Ёлкин Йорш", "Cyrillic ё and й lose their breve/diaeresis (NFD)"),
    ("王伟", "Chinese: no case, no separator, one part"),
    ("王 伟", "a space makes two parts"),
    ("مُحَمَّد عَلِي", "Arabic harakat (Mn) are stripped"),
    ("محمد علي", "matches the form with harakat"),
    ("ΟΔΥΣΣΕΥΣ", "Greek capital sigma folds to σ"),
    ("Οδυσσεύς", "final sigma ς folds to σ; tonos stripped"),
    ("Ｗａｎｇ　Ｗｅｉ", "fullwidth letters and ideographic space (NFKC)"),
    ("김민준", "Hangul syllables are kept (NFD then NFC)"),
    ("ﾜﾝ ｳｪｲ", "halfwidth katakana become fullwidth (NFKC)"),
    ("İsmail Işık", "dotted İ folds to i; dotless ı folds to i (fold table)"),
    ("राम कुमार", "Devanagari: Mn vowel signs stripped, Mc vowel signs kept in the word"),
    ("राम", "Devanagari: the Mc vowel sign ा stays in its word"),
    ("मार", "so मार (other letter order) stays a different name"),
    ("Ĳsbrand", "the ligature ĳ becomes ij (NFKC)"),
    ("Louis XIV", "digits and letters kept"),
    ("Henry 8th", "digits are kept"),
    ("Anna-Maria  O'Neil-Smith", "mixed separators and apostrophe"),
]
NAMES_INVALID = [
    ("", "empty"),
    ("   ", "only spaces"),
    ("123 456", "digits only: no letter"),
    ("'-'", "punctuation only"),
    ("x" * 257, "longer than 256 characters"),
]
DATES = ["1980-05-17", "1980-05", "1980", "1980-00-00", "1980-05-00", "1980-00", " 1980-05-17 "]
DATES_INVALID = [
    ("1980-00-17", "a day with an unknown month"),
    ("1980-02-30", "not a real date"),
    ("1980-13-01", "no 13th month"),
    ("1799-12-31", "before 1800"),
    ("17-05-1980", "wrong order"),
    ("1980/05/17", "wrong separator"),
    ("1980-5-17", "month must have two digits"),
    ("１９８０", "fullwidth digits are not accepted"),
    ("", "empty"),
]
COUNTRIES = ["CHN", "chn", " rus ", "D", "d<<", "DEU", "GBR", "ＣＨＮ", "UTO", "D<<"]
COUNTRIES_INVALID = [("CN", "two letters"), ("CHNA", "four letters"), ("C1N", "a digit"), ("", "")]
NUMBERS = [
    "E12345678",
    "e12345678",
    "E 1234 5678",
    "E-123.456/78",
    "E1234567<<",
    "Ｅ１２３４５６７８",
]
NUMBERS_INVALID = [
    ("", "empty"),
    ("<<<", "only filler"),
    ("Ж12345", "a letter outside A-Z"),
    ("1" * 33, "longer than 32 characters"),
    ("١٢٣٤٥", "Arabic-Indic digits are digits, but not 0-9"),
]
RECORDS: list[dict[str, Any]] = [
    {
        "names": ["王伟", "Wang Wei"],
        "dob": "1980-05-17",
        "documents": [["CHN", "E12345678"]],
    },
    {"names": ["José María Ñúñez"], "dob": "1990-00-00", "documents": []},
    {"names": ["Иван Петров"], "dob": "1975-11", "documents": [["RUS", "75 1234567"]]},
    {"names": ["Ivan Petrov"], "dob": None, "documents": [["D", "C01X00T47"]]},
    {
        "names": ["Jean-Luc Picard", "Picard Jean Luc"],
        "dob": "2305-07-13",
        "documents": [["FRA", "12AB34567"], ["fra", "12ab34567"]],
    },
]
RECORDS_INVALID: list[dict[str, Any]] = [
    {"names": ["Wang Wei"], "dob": None, "documents": []},
    {"names": [], "dob": "1980-05-17", "documents": []},
    {"names": ["..."], "dob": "1980-05-17", "documents": [["CHN", "E1"]]},
    {"names": ["Wang Wei"], "dob": "1980-02-30", "documents": []},
    {"names": [], "dob": None, "documents": [["XX", "E1"]]},
]
QUERIES: list[dict[str, Any]] = [
    {"names": ["Wang Wei"], "dob": "1980-05-17", "documents": []},
    {"names": ["ÑÚÑEZ José-María"], "dob": "1990-03", "documents": []},
    {"names": ["wang wei"], "dob": "1980", "documents": []},
    {"names": [], "dob": None, "documents": [["chn", "e 1234 5678"]]},
    {"names": ["Petrov Ivan"], "dob": "1975-11-02", "documents": [["RUS", "751234567"]]},
]
QUERIES_INVALID: list[dict[str, Any]] = [
    {"names": ["Wang Wei"], "dob": None, "documents": []},
    {"names": [], "dob": "1980-05-17", "documents": []},
    {"names": [], "dob": None, "documents": []},
    {"names": ["Wang Wei"], "dob": "1980-13", "documents": []},
]


def normalisation() -> dict[str, Any]:
    def docs(case: dict[str, Any]) -> list[tuple[str, str]]:
        return [(c, n) for c, n in case["documents"]]

    return {
        "version": "wlx-norm-1",
        "unicode_version": "14.0.0",
        "names": [{"input": s, "output": normalize_name(s), "note": note} for s, note in NAMES],
        "names_invalid": [
            {"input": s, "note": note, **error_of(functools.partial(normalize_name, s))}
            for s, note in NAMES_INVALID
        ],
        "dates": [
            {"input": s, "output": parse_dob(s).iso(), "kind": parse_dob(s).kind().value}
            for s in DATES
        ],
        "dates_invalid": [
            {"input": s, "note": note, **error_of(functools.partial(parse_dob, s))}
            for s, note in DATES_INVALID
        ],
        "countries": [{"input": s, "output": normalize_country(s)} for s in COUNTRIES],
        "countries_invalid": [
            {"input": s, "note": note, **error_of(functools.partial(normalize_country, s))}
            for s, note in COUNTRIES_INVALID
        ],
        "document_numbers": [{"input": s, "output": normalize_document_number(s)} for s in NUMBERS],
        "document_numbers_invalid": [
            {"input": s, "note": note, **error_of(functools.partial(normalize_document_number, s))}
            for s, note in NUMBERS_INVALID
        ],
        "record_keys": [
            {**c, "keys": [key_json(k) for k in record_keys(c["names"], c["dob"], docs(c), V1)]}
            for c in RECORDS
        ],
        "record_keys_invalid": [
            {**c, **error_of(functools.partial(record_keys, c["names"], c["dob"], docs(c), V1))}
            for c in RECORDS_INVALID
        ],
        "query_keys": [
            {**c, "keys": [key_json(k) for k in query_keys(c["names"], c["dob"], docs(c), V1)]}
            for c in QUERIES
        ],
        "query_keys_invalid": [
            {**c, **error_of(functools.partial(query_keys, c["names"], c["dob"], docs(c), V1))}
            for c in QUERIES_INVALID
        ],
    }


# ---------------------------------------------------------------- §2.8 wlx-norm-2

NAMES_2 = [
    (
        "Jürgen Müller",
        "Latin: diacritics dropped in the script form; ICAO AE/OE/UE in a Latin form",
    ),
    ("JUERGEN MUELLER", "the MRZ spelling: meets Jürgen Müller's ICAO Latin form"),
    ("Åsa Lindström", "ICAO Å -> AA, Ö -> OE"),
    ("Søren Kierkegaard", "Ø: O in the script form, OE in the ICAO form"),
    ("Straße", "case folding makes ß ss"),
    ("O'Brien", "apostrophes are deleted"),
    ("Jean-Luc Picard", "hyphens separate; keys join the parts"),
    ("Ali bin Hassan", "part order is kept"),
    ("Hassan bin Ali", "not the same name as Ali bin Hassan"),
    ("Ольга Коваленко", "Cyrillic: ICAO table and anyascii"),
    ("Юрий Гагарин", "Ю -> IU, Й -> I (ICAO); Yu, Y (anyascii)"),
    ("Щукин Йосиф", "Щ -> SHCH"),
    ("Οδυσσεύς Ελύτης", "Greek: tonos dropped, anyascii"),
    ("王伟", "Han: pinyin"),
    ("王偉", "traditional Han: simplified first"),
    ("王 伟", "spaces between Han characters are ignored"),
    ("曾志伟", "a surname with its own reading (Zeng, not Ceng)"),
    ("吕布", "ü is YU as in passports"),
    ("محـمد", "Arabic tatweel deleted"),
    ("علی رضا", "Persian ی is Arabic ي"),
    ("کریم", "Persian ک is Arabic ك"),
    ("مُحَمَّد", "Arabic harakat are diacritics"),
    ("Mehr\u200cdad", "ZWNJ joins, it does not separate"),
    ("Jo\u00adhann", "a soft hyphen joins"),
    ("सुनील", "Devanagari vowel signs are letters"),
    ("सनील", "a different name from सुनील"),
    ("สุดา", "Thai vowels are letters"),
    ("สดา", "a different name from สุดา"),
    ("김 민준", "Hangul: the space is ignored"),
    ("राहुल गांधी", "Devanagari: OPTITRANS, final inherent vowel dropped, anusvara as n"),
    ("Κωνσταντίνος Παπαδόπουλος", "Greek: ELOT 743 (ου -> ou) and anyascii"),
    ("Ευάγγελος", "ELOT 743: ευ before a vowel is ev, γγ is ng"),
    ("สมชาย", "Thai: RTGS (PyThaiNLP royin) and anyascii"),
    ("박지성", "Hangul: Revised Romanisation and anyascii"),
    ("Đorđe Petrović", "Đ is DJ (Serbian documents) and D (ICAO)"),
    ("İbrahim", "the dot of İ is a diacritic"),
]
PHONETIC_2 = [
    "mikhail",
    "michail",
    "hussein",
    "husain",
    "hussain",
    "hassan",
    "mohammed",
    "muhammad",
    "sunil",
    "sanil",
    "yuri",
    "iurii",
    "osama",
    "usama",
    "tchaikovsky",
]
RECORDS_2: list[dict[str, Any]] = [
    {"names": ["Ольга Коваленко"], "dob": "1985-03-07", "documents": [["UKR", "FX123456"]]},
    {"names": ["王伟"], "dob": "1980-05", "documents": []},
    {"names": ["Jürgen Müller"], "dob": "1962-12-01", "documents": []},
]
QUERIES_2: list[dict[str, Any]] = [
    {"names": ["KOVALENKO OLGA"], "dob": "1985-07-03", "documents": []},
    {"names": ["Wang Wei"], "dob": "1980", "documents": []},
    {"names": ["Юрген Мюллер"], "dob": "1962-12-01", "documents": []},
]
QUERIES_PARTIAL_2: list[dict[str, Any]] = [
    {"names": ["Wang Wei"], "dob": "1980-05-17", "documents": [["CN", "E12345678"]]},
    {"names": ["..."], "dob": "1980-05-17", "documents": [["CHN", "E12345678"]]},
    {"names": ["Wang Wei"], "dob": "1980-13-01", "documents": [["CHN", "E12345678"]]},
]


def normalisation_2() -> dict[str, Any]:
    def docs(case: dict[str, Any]) -> list[tuple[str, str]]:
        return [(c, n) for c, n in case["documents"]]

    def forms(text: str) -> dict[str, Any]:
        f = name_forms(text)
        return {
            "script": "".join(f.script),
            "latin": ["".join(p) for p in f.latin],
            "phonetic": list(f.phonetic()),
        }

    def partial(c: dict[str, Any]) -> dict[str, Any]:
        checked = query_keys_checked(c["names"], c["dob"], docs(c), V2)
        return {
            **c,
            "keys": [key_json(k) for k in checked.keys],
            "unusable": list(checked.unusable),
        }

    return {
        "version": V2,
        "unicode_version": "14.0.0",
        "libraries": {
            "anyascii": "0.3.3",
            "pypinyin": "0.55.0",
            "opencc-python-reimplemented": "0.1.7",
            "jellyfish": "1.3.0",
            "indic-transliteration": "2.3.82",
            "pythainlp": "5.4.0",
            "korean-romanizer": "0.28.0",
        },
        "names": [{"input": s, "note": note, **forms(s)} for s, note in NAMES_2],
        "phonetic": [{"input": s, "output": phonetic_code((s,))} for s in PHONETIC_2],
        "record_keys": [
            {**c, "keys": [key_json(k) for k in record_keys(c["names"], c["dob"], docs(c), V2)]}
            for c in RECORDS_2
        ],
        "query_keys": [
            {**c, "keys": [key_json(k) for k in query_keys(c["names"], c["dob"], docs(c), V2)]}
            for c in QUERIES_2
        ],
        "query_keys_partial": [partial(c) for c in QUERIES_PARTIAL_2],
    }


# ---------------------------------------------------------------- §4 tokens

CN, RU, AR = "CN", "RU", "AR"
TOKEN_KEY = fixed("epoch token key CN->RU epoch 1")
KEY = EpochKey(TOKEN_KEY, CN, RU, 1)
REFS = ["CN-0001", "CN-0002", "ÜBER/7"]


def sample_keys() -> list[Any]:
    return record_keys(["王伟", "Wang Wei"], "1980-05-17", [("CHN", "E12345678")], V1)


def tokens() -> dict[str, Any]:
    coarser = [
        k for k in query_keys(["Wang Wei"], "1980-05-17", [], V1) if k.kind != KeyKind.NAME_DOB
    ]
    ikeys = sample_keys() + coarser
    hit = HitData(CN, "CN-0001", "wanted", "arrest", "2099-12-31", "document", 1)
    hit_bytes = codec.encode_hit(hit)
    handle = KEY.handle("CN-0001")
    seals = []
    rng = counter_rng()
    for ikey in ikeys[:2]:
        # The hit data names the kind of the key it is sealed under (§4.3).
        hit_bytes = codec.encode_hit(dataclasses.replace(hit, matched_on=ikey.kind.value))
        nonce_rng_value = rng(12)
        token, sealed = KEY.seal(ikey.value, handle, hit_bytes, const_rng(nonce_rng_value))
        seals.append(
            {
                "identifier_key": ikey.value.hex(),
                "handle": handle.hex(),
                "hit_data": hit_bytes.hex(),
                "padded": pad(hit_bytes).hex(),
                "nonce": nonce_rng_value.hex(),
                "aad": KEY._aad(handle, token).hex(),
                "token": token.hex(),
                "seal_key": KEY.seal_key(ikey.value).hex(),
                "sealed": sealed.hex(),
            }
        )
    other: dict[str, Any] = {
        "origin": CN,
        "recipient": AR,
        "epoch": 1,
        "key": fixed("epoch token key CN->AR epoch 1").hex(),
    }
    other_key = EpochKey(bytes.fromhex(other["key"]), CN, AR, 1)
    return {
        "epoch_key": {"key": TOKEN_KEY.hex(), "origin": CN, "recipient": RU, "epoch": 1},
        "derivations": [
            {
                "identifier_key_text": ikey.value.decode("utf-8"),
                "identifier_key": ikey.value.hex(),
                "token": KEY.token(ikey.value).hex(),
                "seal_key": KEY.seal_key(ikey.value).hex(),
            }
            for ikey in ikeys
        ],
        "handles": [{"ref": ref, "handle": KEY.handle(ref).hex()} for ref in REFS],
        "hit_data": {
            "fields": dataclasses.asdict(hit),
            "hex": codec.encode_hit(hit).hex(),
        },
        "seals": seals,
        "listing_seals": listing_seals(ikeys, hit),
        "hit_proofs": [
            {
                "seal_key": KEY.seal_key(ikey.value).hex(),
                "requester": RU,
                "origin": CN,
                "ref": "CN-0001",
                "nonce": nonce.hex(),
                "message": proof_message(RU, CN, "CN-0001", nonce).hex(),
                "proof": KEY.hit_proof(ikey.value, proof_message(RU, CN, "CN-0001", nonce)).hex(),
            }
            for ikey, nonce in [(ikeys[0], bytes(16)), (ikeys[1], bytes(range(16)))]
        ],
        "other_epoch_key": {
            **other,
            "derivations": [
                {"identifier_key": k.value.hex(), "token": other_key.token(k.value).hex()}
                for k in ikeys
            ],
        },
    }


def listing_seals(ikeys: list[Any], hit: HitData) -> list[dict[str, Any]]:
    """Protocol 2 (§4.3): a listing sealed once, a wrap per identifier key."""
    cases = []
    for ref, secret, nonce in [
        ("CN-0001", bytes(range(16)), bytes(range(100, 112))),
        ("CN-0002", fixed("listing secret CN-0002")[:16], fixed("listing nonce CN-0002")[:12]),
    ]:
        handle = KEY.handle(ref)
        hit_bytes = codec.encode_hit(dataclasses.replace(hit, ref=ref, matched_on=""))
        sealed, wraps = KEY.seal_listing_v2(
            handle, hit_bytes, [(k.value, k.kind) for k in ikeys], seq_rng([secret, nonce])
        )
        cases.append(
            {
                "handle": handle.hex(),
                "hit_data": hit_bytes.hex(),
                "padded": pad2(hit_bytes).hex(),
                "secret": secret.hex(),
                "nonce": nonce.hex(),
                "listing_key": listing_key(secret, handle).hex(),
                "aad": KEY.aad2(handle).hex(),
                "sealed": sealed.hex(),
                "entries": [
                    {
                        "identifier_key": k.value.hex(),
                        "kind": k.kind.value,
                        "kind_code": kind_code(k.kind),
                        "token": token.hex(),
                        "seal_key": KEY.seal_key(k.value).hex(),
                        "kind_mask": hashlib.blake2b(
                            lp(handle) + nonce + token + bytes([kind_code(k.kind)]),
                            digest_size=16,
                            key=KEY.seal_key(k.value),
                            person=b"wlx2-kind",
                        ).hexdigest(),
                        "wrap": wrap.hex(),
                    }
                    for k, (token, wrap) in zip(ikeys, wraps, strict=True)
                ],
            }
        )
    return cases


# ---------------------------------------------------------------- §15 online tier


def wide(label: str) -> bytes:
    """64 bytes for an ``rng(64)`` that must yield a fixed scalar: 32 fixed bytes, 32 zeros."""
    scalar = int.from_bytes(fixed(label), "little") % ristretto.L
    return scalar.to_bytes(32, "little") + bytes(32)


def online_tier() -> dict[str, Any]:
    seed = fixed("OPRF seed of CN")
    key = OnlineKey.derive(seed, CN, RU, 1)
    ikeys = sample_keys()
    derivations = []
    for ikey in ikeys:
        output = oprf.evaluate(key.pair.secret, ikey.value, oprf.Mode.VOPRF)
        entry = online.entry_keys(output, CN, RU, 1)
        derivations.append(
            {
                "identifier_key": ikey.value.hex(),
                "output": output.hex(),
                "token": entry.token.hex(),
                "seal_key": entry.seal_key.hex(),
            }
        )
    blinds = [wide(f"online blind {i}") for i in range(len(ikeys))]
    blinded = [
        oprf.blind(ikey.value, oprf.Mode.VOPRF, const_rng(b))
        for ikey, b in zip(ikeys, blinds, strict=True)
    ]
    proof_r = wide("online proof randomness")
    evaluation = key.evaluate([b.element for b in blinded], lambda _n: proof_r)
    hit = HitData(CN, "CN-0009", "wanted", "arrest", "2099-12-31", "document", 1)
    handle = KEY.handle("CN-0009")
    entry = key.entry_keys(ikeys[-1].value)
    nonce = bytes(range(12))
    sealed = KEY.seal_as(
        entry.token, entry.seal_key, handle, codec.encode_hit(hit), lambda _n: nonce
    )
    return {
        "suite": "RFC 9497 VOPRF (mode 0x01), ristretto255-SHA512",
        "seed": seed.hex(),
        "origin": CN,
        "recipient": RU,
        "epoch": 1,
        "key_info": online.key_info(CN, RU, 1).hex(),
        "secret_key": key.pair.secret.hex(),
        "public_key": key.public.hex(),
        "derivations": derivations,
        "evaluation": {
            "blinds": [b.blind.hex() for b in blinded],
            "blinded": [b.element.hex() for b in blinded],
            "evaluated": [e.hex() for e in evaluation.elements],
            "proof_randomness": proof_r[:32].hex(),
            "proof": evaluation.proof.hex(),
        },
        "seal": {
            "epoch_key": TOKEN_KEY.hex(),
            "identifier_key": ikeys[-1].value.hex(),
            "handle": handle.hex(),
            "hit_data": codec.encode_hit(hit).hex(),
            "nonce": nonce.hex(),
            "token": entry.token.hex(),
            "sealed": sealed.hex(),
        },
    }


# ---------------------------------------------------------------- §3, §5 envelopes

CN_SIGN = SigningKey.from_seed(fixed("CN identity key seed"))
RU_SIGN = SigningKey.from_seed(fixed("RU identity key seed"))
RU_BOX = BoxKey.from_raw(fixed("RU box key"))
CN_BOX = BoxKey.from_raw(fixed("CN box key"))


def signature_case(
    purpose: Purpose, signer: str, recipient: str, payload: bytes, key: SigningKey
) -> dict[str, Any]:
    return {
        "purpose": purpose.value,
        "signer": signer,
        "recipient": recipient,
        "payload": payload.hex(),
        "payload_digest": payload_digest(payload).hex(),
        "signing_input": signing_input(purpose, signer, recipient, payload).hex(),
        "signature": sign(key, purpose, signer, recipient, payload).hex(),
    }


def kept_hpke(
    old: dict[str, Any] | None, key: BoxKey, purpose: str, sender: str, recipient: str, pt: bytes
) -> bytes:
    """The HPKE ciphertext kept from the last run, or a fresh one (see the module doc)."""
    if old is not None and old.get("plaintext") == pt.hex():
        ciphertext = bytes.fromhex(old["ciphertext"])
        try:
            if (
                envelope.open_sealed(
                    ciphertext, key, purpose=purpose, sender=sender, recipient=recipient
                )
                == pt
            ):
                return ciphertext
        except CryptoError:
            pass
    return envelope.seal(pt, key.public(), purpose=purpose, sender=sender, recipient=recipient)


def load(name: str) -> dict[str, Any]:
    path = OUT / name
    return json.loads(path.read_text()) if path.exists() else {}


def envelopes() -> dict[str, Any]:
    old_cases = {
        (c["purpose"], c["plaintext"]): c
        for c in load("envelopes.json").get("hpke", {}).get("cases", [])
    }
    hpke_cases = []
    for purpose, sender, recipient, plaintext in [
        ("batch", CN, RU, b"wlx/v1 test plaintext"),
        ("snapshot-part", CN, RU, b""),
    ]:
        ct = kept_hpke(
            old_cases.get((purpose, plaintext.hex())), RU_BOX, purpose, sender, recipient, plaintext
        )
        hpke_cases.append(
            {
                "purpose": purpose,
                "sender": sender,
                "recipient": recipient,
                "info": envelope.hpke_info(purpose, sender, recipient).hex(),
                "plaintext": plaintext.hex(),
                "ciphertext": ct.hex(),
            }
        )
    payload = b"\x08\x01"
    return {
        "encoding": {
            "lp": [{"input": s, "hex": lp(s).hex()} for s in ["", "CN", "batch", "Üb"]],
            "u64": [{"input": n, "hex": u64(n).hex()} for n in [0, 1, 256, 2**64 - 1]],
        },
        "payload_digest": [
            {"payload": p.hex(), "digest": payload_digest(p).hex()}
            for p in [b"", payload, bytes(range(256))]
        ],
        "genesis_digest": [
            {
                "origin": o,
                "recipient": r,
                "epoch": e,
                "input": (b"wlx/v1 genesis\x00" + lp(o) + lp(r) + u64(e)).hex(),
                "digest": genesis_digest(o, r, e).hex(),
            }
            for o, r, e in [(CN, RU, 1), (CN, RU, 2), (RU, CN, 1), (CN, CN, 1)]
        ],
        "signatures": {
            "seed": CN_SIGN.seed().hex(),
            "public_key": CN_SIGN.public().raw.hex(),
            "fingerprint": CN_SIGN.public().fingerprint(),
            "cases": [
                signature_case(Purpose.BATCH, CN, RU, payload, CN_SIGN),
                signature_case(Purpose.SNAPSHOT_PART, CN, RU, payload, CN_SIGN),
                signature_case(Purpose.PULL, CN, RU, payload, CN_SIGN),
                signature_case(Purpose.SNAPSHOT, CN, AR, b"", CN_SIGN),
                signature_case(Purpose.IDENTITY_CARD, CN, ANYONE, b"{}", CN_SIGN),
            ],
        },
        "hpke": {
            "mode": "base",
            "kem_id": 0x0020,
            "kdf_id": 0x0001,
            "aead_id": 0x0003,
            "recipient_private_key": fixed("RU box key").hex(),
            "recipient_public_key": RU_BOX.public().raw.hex(),
            "cases": hpke_cases,
        },
    }


# ---------------------------------------------------------------- §1.2 cards


def kept_tls_cert() -> bytes:
    """The node's TLS certificate (§1.3) kept from the last run, or a new one.

    ECDSA signatures are randomised, so like HPKE ciphertexts the certificate
    is made once and kept; everything else in the card is deterministic.
    """
    old = load("cards.json").get("tls_cert")
    if old:
        try:
            tls.load_cert(old.encode())
            return str(old).encode()
        except CryptoError:
            pass
    key = tls.generate_key(counter_rng(4000))
    return tls.node_certificate(
        key, CN, not_before=1_800_000_000, not_after=2_500_000_000, rng=counter_rng(5000)
    )


def kept_bound_tls() -> tuple[Any, bytes]:
    """A TLS key (deterministic) and its certificate (kept, as ``kept_tls_cert``)
    for the card with a proof of possession."""
    key = tls.generate_key(counter_rng(4200))
    old = load("cards.json").get("tls_bound", {}).get("tls_cert")
    if old:
        try:
            cert = str(old).encode()
            if tls.load_cert(cert).public_key() == key.public_key():
                return key, cert
        except CryptoError:
            pass
    return key, tls.node_certificate(
        key, CN, not_before=1_800_000_000, not_after=2_500_000_000, rng=counter_rng(5200)
    )


def signed_card(payload: str, key: SigningKey = CN_SIGN) -> str:
    signature = sign(key, Purpose.IDENTITY_CARD, CN, ANYONE, payload.encode())
    return json.dumps(
        {"wlx_identity_card": payload, "signature": base64.b64encode(signature).decode()}
    )


def cards() -> dict[str, Any]:
    issued_at = 1_800_000_000
    cert = kept_tls_cert()
    card = make_card(CN_SIGN, CN_BOX.public(), CN, "cn.example:7001", issued_at, cert)
    outer = json.loads(card)
    payload = outer["wlx_identity_card"]
    fields = json.loads(payload)
    tampered = dict(fields, address="evil.example:7001")
    tampered_card = {
        "wlx_identity_card": json.dumps(tampered, sort_keys=True, separators=(",", ":")),
        "signature": outer["signature"],
    }
    new_key = SigningKey.from_seed(fixed("CN identity key seed, rotated"))
    rotated = make_card(
        new_key, CN_BOX.public(), CN, "cn.example:7001", issued_at + 86_400, cert, previous=CN_SIGN
    )
    rotated_outer = json.loads(rotated)
    rotated_payload = rotated_outer["wlx_identity_card"].encode()
    forged = dict(rotated_outer, endorsement=base64.b64encode(bytes(64)).decode())
    tls_key, bound_cert = kept_bound_tls()
    bound = make_card(
        CN_SIGN, CN_BOX.public(), CN, "cn.example:7001", issued_at, bound_cert, tls_key=tls_key
    )
    pop_message = tls.possession_message(CN, CN_SIGN.public().raw)
    return {
        "sign_seed": CN_SIGN.seed().hex(),
        "box_private_key": fixed("CN box key").hex(),
        "node_id": CN,
        "address": "cn.example:7001",
        "issued_at": issued_at,
        "sign_key": CN_SIGN.public().b64(),
        "box_key": CN_BOX.public().b64(),
        "tls_cert": cert.decode("ascii"),
        "tls_fingerprint": tls.fingerprint(cert),
        "fingerprint": CN_SIGN.public().fingerprint(),
        "payload": payload,
        "signing_input": signing_input(
            Purpose.IDENTITY_CARD, CN, ANYONE, payload.encode("utf-8")
        ).hex(),
        "signature": base64.b64decode(outer["signature"]).hex(),
        "card": card.decode("utf-8"),
        "rotation": {
            "new_sign_seed": new_key.seed().hex(),
            "issued_at": issued_at + 86_400,
            "payload": rotated_payload.decode(),
            "endorsement_signing_input": signing_input(
                Purpose.CARD_ROTATION, CN, ANYONE, rotated_payload
            ).hex(),
            "endorsement": base64.b64decode(rotated_outer["endorsement"]).hex(),
            "card": rotated.decode("utf-8"),
        },
        "tls_bound": {
            "note": "the card with tls_pop: the TLS key's deterministic ECDSA (RFC 6979)",
            # the P-256 private scalar of this public test key (big-endian hex), not a PEM file
            "tls_key_scalar": tls_key.private_numbers().private_value.to_bytes(32, "big").hex(),
            "tls_cert": bound_cert.decode("ascii"),
            "message": pop_message.hex(),
            "tls_pop": tls.sign_possession(tls_key, CN, CN_SIGN.public().raw).hex(),
            "card": bound.decode("utf-8"),
        },
        "invalid": [
            {
                "note": "address changed after signing",
                "card": json.dumps(tampered_card),
                "error": "VerificationError",
            },
            {
                "note": "issued_at is a string (correctly signed)",
                "card": signed_card(json.dumps({**fields, "issued_at": "1800000000"})),
                "error": "MalformedError",
            },
            {
                "note": "node id in lower case (correctly signed)",
                "card": signed_card(json.dumps({**fields, "node_id": "cn"})),
                "error": "MalformedError",
            },
            {
                "note": "a repeated member name (correctly signed)",
                "card": signed_card(payload[:-1] + ',"address":"evil.example:7001"}'),
                "error": "MalformedError",
            },
            {
                "note": "tls_cert is not a PEM certificate (correctly signed)",
                "card": signed_card(json.dumps({**fields, "tls_cert": "not a certificate"})),
                "error": "MalformedError",
            },
            {
                "note": "an endorsement that the previous key did not make",
                "card": json.dumps(forged),
                "error": "VerificationError",
            },
            {
                "note": "an endorsement without a previous key",
                "card": json.dumps(dict(outer, endorsement=rotated_outer["endorsement"])),
                "error": "MalformedError",
            },
            {
                "note": "a tls_pop made by another key (correctly signed)",
                "card": signed_card(
                    json.dumps(
                        {
                            **fields,
                            "tls_pop": base64.b64encode(
                                tls.sign_possession(
                                    tls.generate_key(counter_rng(4100)),
                                    CN,
                                    CN_SIGN.public().raw,
                                )
                            ).decode(),
                        },
                        sort_keys=True,
                        separators=(",", ":"),
                    )
                ),
                "error": "VerificationError",
            },
            {"note": "not JSON", "card": "wlx", "error": "MalformedError"},
            {"note": "a JSON array", "card": "[]", "error": "MalformedError"},
        ],
    }


# ---------------------------------------------------------------- §10 at rest


def at_rest() -> dict[str, Any]:
    key = fixed("storage key")
    cases = []
    rng = counter_rng(1000)
    record = parse_record(sample_record_obj(), line=0)
    for context, plaintext in [
        (f"record:CN-0001:1:0:{record.expires}", record.to_json()),
        ("epoch-key:CN:RU:1", TOKEN_KEY),
        ("epoch-key:CN:CN:1", fixed("epoch token key CN->CN epoch 1")),
    ]:
        nonce = rng(12)
        cases.append(
            {
                "context": context,
                "aad": (atrest.AAD_PREFIX + lp(context)).hex(),
                "nonce": nonce.hex(),
                "plaintext": plaintext.hex(),
                "blob": atrest.encrypt(key, plaintext, context, const_rng(nonce)).hex(),
            }
        )
    return {"storage_key": key.hex(), "cases": cases}


# ---------------------------------------------------------------- §6-§8 messages


def sample_record_obj() -> dict[str, Any]:
    return {
        "id": "CN-0001",
        "names": ["王伟", "Wang Wei"],
        "dob": "1980-05-17",
        "nationality": "CHN",
        "sex": "M",
        "documents": [{"type": "P", "country": "CHN", "number": "E12345678"}],
        "category": "wanted",
        "action": "arrest",
        "legal_basis": "Criminal Procedure Law art. 1",
        "authority": "Example Bureau",
        "expires": "2099-12-31",
    }


def signed_message(payload: bytes, purpose: Purpose, signer: str, recipient: str) -> bytes:
    key = CN_SIGN if signer == CN else RU_SIGN
    signature = sign(key, purpose, signer, recipient, payload)
    return codec.encode_signed(payload, signature, signer, recipient, purpose).SerializeToString()


def message_case(payload: bytes, purpose: Purpose, signer: str, recipient: str) -> dict[str, Any]:
    key = CN_SIGN if signer == CN else RU_SIGN
    return {
        "signer": signer,
        "recipient": recipient,
        "purpose": purpose.value,
        "payload": payload.hex(),
        "digest": payload_digest(payload).hex(),
        "signing_input": signing_input(purpose, signer, recipient, payload).hex(),
        "signature": sign(key, purpose, signer, recipient, payload).hex(),
        "signed_message": signed_message(payload, purpose, signer, recipient).hex(),
    }


def messages() -> dict[str, Any]:
    record = parse_record(sample_record_obj(), line=0)
    upsert = outbound.upsert_for(record, 1, KEY, counter_rng(2000))
    upsert_v2 = outbound.upsert_for(
        record, 1, dataclasses.replace(KEY, protocol=2), counter_rng(3000)
    )
    remove = Remove(KEY.handle("CN-0002"))
    genesis = genesis_digest(CN, RU, 1)
    created_at = 1_800_000_000
    batch1 = codec.encode_batch_payload(
        origin=CN,
        recipient=RU,
        epoch=1,
        first_seq=1,
        prev_digest=genesis,
        created_at=created_at,
        ops=[upsert, remove],
    )
    batch2 = codec.encode_batch_payload(
        origin=CN,
        recipient=RU,
        epoch=1,
        first_seq=3,
        prev_digest=payload_digest(batch1),
        created_at=created_at + 60,
        ops=[Remove(KEY.handle("CN-0001"))],
    )
    part0 = codec.encode_snapshot_part(
        origin=CN,
        recipient=RU,
        epoch=1,
        snapshot_id=counter_rng(3000)(16),
        index=0,
        at_seq=2,
        chain_digest=payload_digest(batch1),
        prev_part_digest=b"",
        token_key=TOKEN_KEY,
        entries=[upsert],
        final=True,
        total_entries=1,
        created_at=created_at + 30,
    )
    pull = codec.encode_pull_params(
        PullParams(RU, CN, 1, 2, payload_digest(batch1), created_at + 40, bytes(range(16)), 50)
    )
    snap = codec.encode_snapshot_params(
        SnapshotParams(RU, CN, created_at + 50, bytes(range(16, 32)))
    )
    receipt = codec.encode_receipt(
        Receipt(CN, RU, 1, ReceiptKind.BATCH, 1, 2, payload_digest(batch1), created_at + 45)
    )
    snapshot_receipt = codec.encode_receipt(
        Receipt(CN, RU, 1, ReceiptKind.SNAPSHOT, 0, 2, payload_digest(batch1), created_at + 35)
    )
    nonce = bytes(range(32, 48))
    document_key = record.identifier_keys()[0]
    detail_params = codec.encode_detail_params(
        DetailParams(
            requester=RU,
            origin=CN,
            ref="CN-0001",
            requesting_authority="Border Guard Service",
            officer="officer-17",
            purpose="secondary inspection",
            case_id="BG-2027-0042",
            issued_at=created_at + 70,
            nonce=nonce,
            hit_proof=KEY.hit_proof(document_key.value, proof_message(RU, CN, "CN-0001", nonce)),
        )
    )
    granted = codec.encode_detail_answer(
        DetailAnswer(
            CN, RU, payload_digest(detail_params), True, "", record.to_json(), created_at + 71
        )
    )
    denied = codec.encode_detail_answer(
        DetailAnswer(CN, RU, payload_digest(detail_params), False, "quota", b"", created_at + 71)
    )
    signed1 = signed_message(batch1, Purpose.BATCH, CN, RU)
    old = load("messages.json").get("sealed_batch")
    ciphertext = kept_hpke(
        {"plaintext": old["signed_message"], "ciphertext": old["ciphertext"]} if old else None,
        RU_BOX,
        "batch",
        CN,
        RU,
        signed1,
    )
    sealed_env = envelope_pb2.SealedEnvelope(
        version=1, sender=CN, recipient=RU, purpose="batch", ciphertext=ciphertext
    ).SerializeToString()
    return {
        "origin": CN,
        "recipient": RU,
        "origin_sign_seed": CN_SIGN.seed().hex(),
        "origin_public_key": CN_SIGN.public().raw.hex(),
        "requester_sign_seed": RU_SIGN.seed().hex(),
        "requester_public_key": RU_SIGN.public().raw.hex(),
        "epoch_key": {"key": TOKEN_KEY.hex(), "origin": CN, "recipient": RU, "epoch": 1},
        "record": sample_record_obj(),
        "record_version": 1,
        "seal_nonces": "the k-th seal of the upsert uses the 12-byte big-endian nonce 2000 + k",
        "genesis_digest": genesis.hex(),
        "batches": [
            {
                **message_case(batch1, Purpose.BATCH, CN, RU),
                "decoded": {
                    "version": 1,
                    "epoch": 1,
                    "first_seq": 1,
                    "last_seq": 2,
                    "prev_digest": genesis.hex(),
                    "created_at": created_at,
                    "ops": [
                        {
                            "upsert": {
                                "handle": upsert.handle.hex(),
                                "expires": upsert.expires,
                                "tokens": [
                                    {"token": t.token.hex(), "sealed": t.sealed.hex()}
                                    for t in upsert.tokens
                                ],
                            }
                        },
                        {"remove": {"handle": remove.handle.hex()}},
                    ],
                },
            },
            {
                **message_case(batch2, Purpose.BATCH, CN, RU),
                "decoded": {
                    "version": 1,
                    "epoch": 1,
                    "first_seq": 3,
                    "last_seq": 3,
                    "prev_digest": payload_digest(batch1).hex(),
                    "created_at": created_at + 60,
                    "ops": [{"remove": {"handle": KEY.handle("CN-0001").hex()}}],
                },
            },
        ],
        "snapshot_part": message_case(part0, Purpose.SNAPSHOT_PART, CN, RU),
        "pull_params": message_case(pull, Purpose.PULL, RU, CN),
        "snapshot_params": message_case(snap, Purpose.SNAPSHOT, RU, CN),
        "receipts": [
            message_case(receipt, Purpose.RECEIPT, RU, CN),
            message_case(snapshot_receipt, Purpose.RECEIPT, RU, CN),
        ],
        "detail_request": {
            **message_case(detail_params, Purpose.DETAIL_REQUEST, RU, CN),
            "hit_proof_identifier_key": document_key.value.hex(),
        },
        "detail_answers": [
            message_case(granted, Purpose.DETAIL_ANSWER, CN, RU),
            message_case(denied, Purpose.DETAIL_ANSWER, CN, RU),
        ],
        "sealed_batch": {
            "recipient_private_key": fixed("RU box key").hex(),
            "signed_message": signed1.hex(),
            "ciphertext": ciphertext.hex(),
            "sealed_envelope": sealed_env.hex(),
        },
        "upsert_v2": {
            "note": "the record's upsert in a protocol-2 epoch (§4.3): rng counters from 3000",
            "encoded": codec.encode_upsert(upsert_v2).hex(),
            "decoded": {
                "handle": upsert_v2.handle.hex(),
                "expires": upsert_v2.expires,
                "sealed": upsert_v2.sealed.hex(),
                "tokens": [
                    {"token": t.token.hex(), "wrap": t.wrap.hex()} for t in upsert_v2.tokens
                ],
            },
        },
    }


# ---------------------------------------------------------------- §6.3, §8.2 decisions


def d(n: int) -> bytes:
    """A stand-in 32-byte digest."""
    return bytes([n]) * 32


def decisions() -> dict[str, Any]:
    from wlx.node.core.errors import Rejection
    from wlx.node.protocol import inbound
    from wlx.node.protocol.messages import Batch, Cursor, ResyncRequired

    batch_cases: list[dict[str, Any]] = []

    def batch_case(
        note: str,
        cursor: tuple[int, int, bytes] | None,
        batch: dict[str, Any],
        applied: dict[int, bytes] | None = None,
    ) -> None:
        fields = {
            "origin": CN,
            "recipient": RU,
            "epoch": 1,
            "created_at": 0,
            "ops": (),
            **batch,
        }
        b = Batch(**fields)
        known = applied or {}
        try:
            result = inbound.decide_batch(
                b,
                me=RU,
                origin=CN,
                cursor=Cursor(*cursor) if cursor else None,
                digest_at=known.get,
            )
        except Rejection as exc:
            outcome: dict[str, Any] = {"reject": exc.reason.value}
        else:
            if isinstance(result, inbound.Duplicate):
                outcome = {"duplicate": True}
            else:
                c = result.cursor
                outcome = {"apply": {"epoch": c.epoch, "seq": c.seq, "digest": c.digest.hex()}}
        batch_cases.append(
            {
                "note": note,
                "me": RU,
                "expected_origin": CN,
                "cursor": (
                    {"epoch": cursor[0], "seq": cursor[1], "digest": cursor[2].hex()}
                    if cursor
                    else None
                ),
                "applied": {str(k): v.hex() for k, v in known.items()},
                "batch": {
                    k: (v.hex() if isinstance(v, bytes) else v)
                    for k, v in fields.items()
                    if k not in ("ops", "created_at")
                },
                **outcome,
            }
        )

    g = genesis_digest(CN, RU, 1)
    seq = {"first_seq": 1, "last_seq": 2, "prev_digest": g, "digest": d(2)}
    batch_case("continues the cursor", (1, 0, g), seq)
    batch_case("no snapshot applied yet", None, seq)
    batch_case("names another origin", (1, 0, g), {**seq, "origin": AR})
    batch_case("made for another recipient", (1, 0, g), {**seq, "recipient": AR})
    batch_case("older epoch", (2, 0, genesis_digest(CN, RU, 2)), seq)
    batch_case("newer epoch before its snapshot", (1, 0, g), {**seq, "epoch": 2})
    later = {"first_seq": 3, "last_seq": 5, "prev_digest": d(2), "digest": d(5)}
    batch_case("next batch", (1, 2, d(2)), later, {2: d(2)})
    batch_case("same batch again", (1, 5, d(5)), later, {2: d(2), 5: d(5)})
    batch_case("other batch ending at an applied position", (1, 5, d(5)), later, {5: d(9)})
    batch_case(
        "ends behind the cursor at no applied batch end", (1, 5, d(5)), {**later, "last_seq": 4}
    )
    batch_case("starts after a gap", (1, 1, d(1)), later, {1: d(1)})
    batch_case("overlaps the applied stream", (1, 4, d(4)), later, {4: d(4)})
    batch_case("does not chain to the cursor digest", (1, 2, d(7)), later, {2: d(7)})

    pull_cases: list[dict[str, Any]] = []
    state: dict[str, Any] = {
        "epoch": 2,
        "last_seq": 10,
        "last_digest": d(10).hex(),
        "oldest_seq": 4,
    }
    outbox = {5: d(5), 7: d(7), 10: d(10)}
    g2 = genesis_digest(CN, RU, 2)

    def pull_case(
        note: str,
        epoch: int,
        after_seq: int,
        after_digest: bytes,
        skipped: tuple[int, ...] = (),
        **kw: Any,
    ) -> None:
        st = {**state, **kw}
        # Batches kept begin at the oldest kept position and after each kept
        # batch's end, but where the stream skipped a position.
        ends = sorted(outbox)
        starts = sorted(
            s
            for s in {st["oldest_seq"], *(e + 1 for e in ends[:-1])}
            if s >= st["oldest_seq"] and s <= ends[-1] and s not in skipped
        )
        st["outbox_starts"] = starts
        params = PullParams(RU, CN, epoch, after_seq, after_digest, 0, bytes(16), 0)
        result = outbound.decide_pull(
            params,
            epoch=st["epoch"],
            last_seq=st["last_seq"],
            last_digest=bytes.fromhex(st["last_digest"]),
            oldest_seq=st["oldest_seq"],
            digest_at=outbox.get,
            starts_at=lambda seq: seq in starts,
        )
        outcome = (
            {"resync": result.reason}
            if isinstance(result, ResyncRequired)
            else {"continue_after": result}
        )
        pull_cases.append(
            {
                "note": note,
                "origin": CN,
                "requester": RU,
                "stream": {**st, "outbox_digests": {str(k): v.hex() for k, v in outbox.items()}},
                "params": {
                    "epoch": epoch,
                    "after_seq": after_seq,
                    "after_digest": after_digest.hex(),
                },
                **outcome,
            }
        )

    pull_case("the requester holds nothing", 0, 0, b"")
    pull_case("the requester's epoch is not the current one", 1, 7, d(7))
    pull_case("continue after an outbox batch", 2, 7, d(7))
    pull_case("up to date", 2, 10, d(10))
    pull_case("ahead of the origin", 2, 11, d(11))
    pull_case("digest differs from the batch there", 2, 7, d(8))
    pull_case("not a batch boundary", 2, 6, d(6))
    pull_case("compacted position", 2, 2, d(2))
    pull_case("from genesis, but batches 1-3 were compacted", 2, 0, g2)
    pull_case("from genesis, nothing compacted", 2, 0, g2, oldest_seq=1)
    pull_case("from genesis with the wrong digest", 2, 0, d(1), oldest_seq=1)
    pull_case("up to date, every batch compacted", 2, 10, d(10), oldest_seq=11)
    pull_case("behind, every batch compacted", 2, 7, d(7), oldest_seq=11)
    pull_case("the batch after the cursor was skipped", 2, 7, d(7), skipped=(8,))
    return {"batch": batch_cases, "pull": pull_cases}


# ---------------------------------------------------------------- main

# ---------------------------------------------------------------- records.md: canonical JSON

RECORD_INPUTS: list[tuple[str, dict[str, Any]]] = [
    ("the sample record (CJK name: \\u escapes)", {}),
    (
        "optional fields absent: empty strings and lists; dob at year precision",
        {
            "names": ["Li Na"],
            "dob": "1975-00-00",
            "nationality": None,
            "sex": "",
            "documents": [],
        },
    ),
    (
        "normalised on import: dob, countries, document number, type, sex, terms; names trimmed",
        {
            "names": ["  José Ñúñez\u3000", 'O\'Brien "Jr"'],
            "dob": " 1980-05-00 ",
            "nationality": " chn ",
            "sex": "m",
            "documents": [{"type": "p", "country": "d<<", "number": "e 1234-5678"}],
            "category": "Stolen Document",
        },
    ),
    (
        "escapes: quote, backslash, tab, control, astral plane (surrogate pair), DEL, slash",
        {
            "names": ["\U00020000 Wang"],
            "legal_basis": 'Art. 1\t"quoted" back\\slash \x01 \x7f a/b',
            "authority": "Ünïcödé Bureau — €",
        },
    ),
]


def records() -> dict[str, Any]:
    cases = []
    for what, overrides in RECORD_INPUTS:
        obj = {**sample_record_obj(), **overrides}
        canonical = parse_record(obj, line=0).to_json()
        cases.append(
            {
                "what": what,
                "input": obj,
                "canonical": canonical.decode("ascii"),
                "hex": canonical.hex(),
            }
        )
    return {"cases": cases}


# ---------------------------------------------------------------- appendix A: wire messages


def wire() -> dict[str, Any]:
    from wlx.node.core.errors import Rejection, RejectReason
    from wlx.node.rpc.status_codes import code_for
    from wlx.v1 import audit_pb2, federation_pb2

    msgs = load("messages.json")
    pull = envelope_pb2.SignedMessage.FromString(
        bytes.fromhex(msgs["pull_params"]["signed_message"])
    )
    snap = envelope_pb2.SignedMessage.FromString(
        bytes.fromhex(msgs["snapshot_params"]["signed_message"])
    )
    receipt = envelope_pb2.SignedMessage.FromString(
        bytes.fromhex(msgs["receipts"][0]["signed_message"])
    )
    detail = envelope_pb2.SignedMessage.FromString(
        bytes.fromhex(msgs["detail_request"]["signed_message"])
    )
    sealed = envelope_pb2.SealedEnvelope.FromString(
        bytes.fromhex(msgs["sealed_batch"]["sealed_envelope"])
    )

    def case(method: str, message: Any, note: str) -> dict[str, str]:
        return {
            "method": method,
            "message": type(message).DESCRIPTOR.full_name,
            "note": note,
            "hex": message.SerializeToString().hex(),
        }

    requests = [
        case("/wlx.v1.Federation/Pull", federation_pb2.PullRequest(request=pull), "pull_params"),
        case(
            "/wlx.v1.Federation/Snapshot",
            federation_pb2.SnapshotRequest(request=snap),
            "snapshot_params",
        ),
        case(
            "/wlx.v1.Federation/Acknowledge",
            federation_pb2.AcknowledgeRequest(receipts=[receipt]),
            "receipts[0]",
        ),
        case(
            "/wlx.v1.Federation/RequestDetail",
            federation_pb2.DetailRequest(request=detail),
            "detail_request",
        ),
        case(
            "/wlx.v1.Federation/AnnounceCard",
            federation_pb2.AnnounceRequest(card=load("cards.json")["card"].encode()),
            "cards.json card",
        ),
        case(
            "/wlx.v1.Witness/AddCheckpoint",
            audit_pb2.AddCheckpointRequest(
                checkpoint=b"(a signed checkpoint note, docs/audit.md \xc2\xa73)",
                old_size=1,
                consistency_proof=[bytes(32)],
            ),
            "shape only: the note is not signed",
        ),
    ]
    responses = [
        case(
            "/wlx.v1.Federation/Pull",
            federation_pb2.PullResponse(
                head=federation_pb2.StreamHead(epoch=1, last_seq=2, as_of=1_800_000_000)
            ),
            "the first item of every Pull stream",
        ),
        case(
            "/wlx.v1.Federation/Pull",
            federation_pb2.PullResponse(batch=sealed),
            "a batch item: messages.json sealed_batch",
        ),
        case(
            "/wlx.v1.Federation/Pull",
            federation_pb2.PullResponse(
                resync=federation_pb2.ResyncRequired(reason="no-cursor", epoch=1)
            ),
            "the last item when the cursor cannot be continued",
        ),
        case(
            "/wlx.v1.Federation/Acknowledge",
            federation_pb2.AcknowledgeResponse(recorded=1),
            "",
        ),
        case(
            "/wlx.v1.Federation/AnnounceCard",
            federation_pb2.AnnounceResponse(fingerprint=load("cards.json")["fingerprint"]),
            "",
        ),
        case(
            "/wlx.v1.Witness/AddCheckpoint",
            audit_pb2.AddCheckpointResponse(conflict_size=7),
            "the witness cosigned size 7 before",
        ),
    ]
    statuses = [
        {
            "reason": reason.value,
            "code": code_for(Rejection(reason, "detail")).name,
            "code_number": code_for(Rejection(reason, "detail")).value[0],
            "message_starts_with": f"{reason.value}: ",
        }
        for reason in RejectReason
    ]
    return {"requests": requests, "responses": responses, "statuses": statuses}


FILES: dict[str, Callable[[], dict[str, Any]]] = {
    "normalisation.json": normalisation,
    "normalisation-2.json": normalisation_2,
    "tokens.json": tokens,
    "envelopes.json": envelopes,
    "cards.json": cards,
    "atrest.json": at_rest,
    "messages.json": messages,
    "decisions.json": decisions,
    "online.json": online_tier,
    "records.json": records,
    "wire.json": wire,
}


GENERATOR = (
    "scripts/gen_vectors.py (rerun: .venv/bin/python scripts/gen_vectors.py; --check verifies)"
)


def render(data: dict[str, Any]) -> str:
    return json.dumps({"generator": GENERATOR, **data}, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, make in FILES.items():
        text = render(make())
        path = OUT / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        elif not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote docs/vectors/{name}")
    if stale:
        print(f"stale vectors: {', '.join(stale)}; run scripts/gen_vectors.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
