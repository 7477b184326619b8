"""Name forms of normalisation ``wlx-norm-2`` (docs/protocol.md §2.8).

A name is turned into *forms*, each an ordered tuple of parts:

* the **script form**: the name in its own script, case-folded, with only the
  true diacritics of alphabetic scripts removed (Indic vowel signs, the
  virama and Thai vowels and tone marks are letters of the name and stay),
  Arabic and Persian letter variants unified, Han in simplified characters;
* its **Latin forms**, in lower-case ASCII: the spelling documents use
  (``wlx.crypto.romanize``: ICAO 9303 Part 3 for Latin letters with
  diacritics and Cyrillic, ELOT 743 for Greek, pinyin for Han, OPTITRANS for
  Indic scripts, RTGS for Thai, Revised Romanisation for Hangul, then
  ``anyascii``), and the plain transliteration by ``anyascii`` of the script
  form (Han and Indic scripts as above);
* the **phonetic code** of each Latin form (weak: spelling variants such as
  Mikhail / Michail, Hussein / Husain).

Part order is kept: ``Ali bin Hassan`` and ``Hassan bin Ali`` are different
names.  Keys join the parts without a separator, so word division (``Wang
Xiaoming`` / ``Wang Xiao Ming``, ``王 伟`` / ``王伟``) does not matter.

Every table that decides bytes comes from a pinned library (versions in
pyproject.toml) or from a standard and is written out in ``romanize`` and in
the spec.  Errors name the rule, never the name.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import jellyfish
import opencc  # type: ignore[import-untyped]
from anyascii import anyascii

from wlx.crypto.errors import InvalidIdentifier
from wlx.crypto.romanize import (
    ICAO,
    greek_elot,
    han_to_pinyin,
    in_ranges,
    indic_to_latin,
    national,
)

MAX_NAME_CHARS = 256

# Deleted before anything else: apostrophes (O'Brien = OBrien, as in the
# MRZ), Arabic tatweel (decoration), and the invisible joiners and soft
# hyphen, which sit *inside* a word.
_DELETE = dict.fromkeys(
    map(
        ord,
        "'`\u00b4\u02b9\u02bb\u02bc\u2018\u2019\u2032"  # apostrophes (as wlx-norm-1)
        "\u0640"  # ARABIC TATWEEL
        "\u200c\u200d\u00ad\u2060\ufeff",  # ZWNJ, ZWJ, SOFT HYPHEN, WORD JOINER, ZWNBSP
    )
)
# Arabic and Persian/Urdu spellings of the same letters (after NFKC, which
# already maps the presentation forms).
_ARABIC = str.maketrans(
    {
        "\u06cc": "\u064a",  # FARSI YEH -> YEH
        "\u0649": "\u064a",  # ALEF MAKSURA -> YEH
        "\u06a9": "\u0643",  # KEHEH -> KAF
        "\u06c1": "\u0647",  # HEH GOAL -> HEH
        "\u0629": "\u0647",  # TEH MARBUTA -> HEH
    }
)
# Letters that Unicode does not decompose, folded in the script form
# (as wlx-norm-1 step 4).
_FOLD = str.maketrans(
    {
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "ł": "l",
        "æ": "ae",
        "œ": "oe",
        "þ": "th",
        "ı": "i",
        "ħ": "h",
        "ŧ": "t",
        "ĸ": "k",
        "ŋ": "n",
    }
)
# Combining marks are diacritics (removed) only on a base letter of these
# blocks: Latin, IPA, Greek, Cyrillic, Armenian, Hebrew, Arabic, Syriac,
# Thaana, NKo (all below U+0800), Latin Extended Additional, Greek Extended,
# Cyrillic Extended-B/C, Latin Extended-C/D/E, Arabic Supplement/Extended-A,
# alphabetic presentation forms.  Marks on any other base (Indic, Thai,
# Lao, Tibetan, Myanmar, Khmer, Hangul...) are letters of the name.
_DIACRITIC_BASES = (
    (0x0000, 0x07FF),
    (0x08A0, 0x08FF),
    (0x1C80, 0x1C8F),
    (0x1E00, 0x1FFF),
    (0x2C60, 0x2C7F),
    (0x2DE0, 0x2DFF),
    (0xA640, 0xA69F),
    (0xA720, 0xA7FF),
    (0xAB30, 0xAB6F),
    (0xFB00, 0xFDFF),
    (0xFE70, 0xFEFF),
)
# Scripts written without spaces between the parts of a name: a space
# between two of their characters is ignored.
_UNSPACED = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x3134F),  # CJK Extensions B-G
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


# No key of OpenCC's t2s dictionaries holds a character below U+3400 (CJK
# Extension A; tests/crypto/test_norm2_plans.py checks the pinned tables), so
# a text without one is its own simplified form.
_FIRST_T2S = "\u3400"


@functools.cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _simplified(text: str) -> str:
    """Traditional Han characters to simplified (OpenCC ``t2s``)."""
    if not text or max(text) < _FIRST_T2S:
        return text
    return str(_t2s().convert(text))


@dataclass(frozen=True)
class NameForms:
    """The forms of one name; every tuple holds the parts in written order."""

    script: tuple[str, ...]
    latin: tuple[tuple[str, ...], ...]

    def phonetic(self) -> tuple[str, ...]:
        """The phonetic codes of the Latin forms (§2.8.4), sorted, unique."""
        return tuple(sorted({phonetic_code(parts) for parts in self.latin}))


def _prepare(name: str) -> str:
    """Steps 1-3: delete invisible characters, NFKC, case fold, unify Arabic."""
    if len(name) > MAX_NAME_CHARS:
        raise InvalidIdentifier(f"a name is longer than {MAX_NAME_CHARS} characters")
    text = unicodedata.normalize("NFKC", name.translate(_DELETE)).casefold()
    return text.translate(_DELETE).translate(_ARABIC)


def strip_diacritics(text: str) -> str:
    """Drop combining marks (``Mn``) whose base letter is of an alphabetic script."""
    return text if text.isascii() else _strip_marks(text)  # NFD and NFC keep ASCII


def _strip_marks(text: str) -> str:
    out: list[str] = []
    base = ""
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.category(char) == "Mn":
            if base and in_ranges(_DIACRITIC_BASES, base):
                continue
        else:
            base = char
        out.append(char)
    return unicodedata.normalize("NFC", "".join(out))


def _parts(text: str) -> tuple[str, ...]:
    """Separators to spaces; split; join parts of unspaced scripts (Han, Kana, Hangul)."""
    text = "".join(c if unicodedata.category(c)[0] in "LMN" else " " for c in text)
    parts: list[str] = []
    for part in text.split():
        if parts and in_ranges(_UNSPACED, parts[-1][-1]) and in_ranges(_UNSPACED, part[0]):
            parts[-1] += part
        else:
            parts.append(part)
    return tuple(parts)


def _ascii_parts(text: str) -> tuple[str, ...]:
    """anyascii, lower case, everything but a-z and 0-9 separates (apostrophes vanish)."""
    latin = anyascii(indic_to_latin(text)).lower().translate(_DELETE)
    return tuple(_NOT_ALNUM.sub(" ", latin).split())


@functools.lru_cache(maxsize=65_536)
def name_forms(name: str) -> NameForms:
    """The script form and the Latin forms of one name (§2.8.1-§2.8.3).

    Raises:
        InvalidIdentifier: longer than 256 characters, or no letters.
    """
    text = _prepare(name)
    bare = strip_diacritics(text)
    stripped = _simplified(bare)
    script = _parts(stripped.translate(_FOLD))
    if not any(unicodedata.category(c)[0] == "L" for part in script for c in part):
        raise InvalidIdentifier("a name has no letters")
    if text.isascii():  # no transliteration changes it: its one Latin form is the script form
        return NameForms(script, (script,))
    simplified = stripped if bare == text else _simplified(text)
    icao = national(greek_elot(strip_diacritics(simplified.translate(ICAO))))
    # Each text once: Han names are mostly the same text on both ways.
    latin = {_ascii_parts(han_to_pinyin(form)) for form in {icao, stripped}}
    latin.discard(())
    return NameForms(script, tuple(sorted(latin)))


# §2.8.4: spelling rewrites applied before Metaphone, in this order.
_PHONETIC_REWRITES = (
    ("tch", "ch"),
    ("kh", "h"),
    ("ch", "h"),
    ("ph", "f"),
    ("dh", "d"),
    ("q", "k"),
    ("y", "i"),
    ("w", "v"),
)
_VOWEL_RUN = re.compile(r"[aeiou]+")


def phonetic_code(parts: tuple[str, ...]) -> str:
    """Phonetic code of a Latin form (parts of a-z, 0-9): per part, Metaphone
    and vowel classes, parts joined by ``-``.

    Per part, after the rewrites above: the consonants as coded by Metaphone
    (Lawrence Philips, 1990, as implemented by jellyfish) without the leading
    vowel Metaphone keeps; each run of vowels
    as one class, ``i`` if it holds an i, else ``u`` if it holds an o or a u,
    else ``a``; and a part that ends in vowels keeps that last run verbatim
    with doubled letters made single (after ``=``).  A part holding a digit
    is its own code.  So Hussein / Husain /
    Hussain and Mohammed / Muhammad share a code, while Hassan (a-a) and
    Hussein (u-i), Sunil (u-i) and Sanil (a-i), Maria and Mario, Alexander and
    Alexandra stay apart.
    """
    return "-".join(_part_code(part) for part in parts)


@functools.lru_cache(maxsize=65_536)
def _part_code(part: str) -> str:
    if not part.isalpha():
        return part  # digits are not sounds: a part holding one is kept as it is
    text = part
    for old, new in _PHONETIC_REWRITES:
        text = text.replace(old, new)
    runs = _VOWEL_RUN.findall(text)
    vowels = "".join(
        "i" if "i" in run else "u" if ("o" in run or "u" in run) else "a" for run in runs
    )
    final = ""
    if runs and text.endswith(runs[-1]):
        final = "=" + re.sub(r"(.)\1+", r"\1", runs[-1])
    consonants = jellyfish.metaphone(text).lower().lstrip("aeiou")  # vowels are in `vowels`
    return f"{consonants}.{vowels}{final}"
