"""Name forms of normalisation ``wlx-norm-2`` (docs/protocol.md §2.8).

A name is turned into *forms*, each an ordered tuple of parts:

* the **script form**: the name in its own script, case-folded, with only the
  true diacritics of alphabetic scripts removed (Indic vowel signs, the
  virama and Thai vowels and tone marks are letters of the name and stay),
  Arabic and Persian letter variants unified, Han in simplified characters;
* its **Latin forms**: the ICAO 9303 Part 3 transliteration (Latin letters
  with diacritics, Cyrillic), the plain transliteration of every script by
  ``anyascii`` (Han by ``pypinyin``), in lower-case ASCII;
* the **phonetic code** of each Latin form (weak: spelling variants such as
  Mikhail / Michail, Hussein / Husain).

Part order is kept: ``Ali bin Hassan`` and ``Hassan bin Ali`` are different
names.  Keys join the parts without a separator, so word division (``Wang
Xiaoming`` / ``Wang Xiao Ming``, ``王 伟`` / ``王伟``) does not matter.

Every table that decides bytes comes from a pinned library (``anyascii``,
``pypinyin``, ``opencc-python-reimplemented``, ``jellyfish``; versions in
pyproject.toml) or from ICAO 9303 Part 3 and is written out here and in the
spec.  Errors name the rule, never the name.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import jellyfish
import opencc  # type: ignore[import-untyped]
from anyascii import anyascii

from wlx.crypto.errors import InvalidIdentifier

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
# ICAO Doc 9303 Part 3, 8th ed., section 6, tables A and B (lower case; the
# input is case-folded, so ß is already "ss").
_ICAO_LATIN = {
    "ä": "ae",
    "å": "aa",
    "æ": "ae",
    "ö": "oe",
    "ø": "oe",
    "ü": "ue",
    "œ": "oe",
    "þ": "th",
    "ĳ": "ij",
    # Serbian and Croatian documents write Đ as DJ (ICAO 9303 has D, which the
    # plain Latin form keeps).
    "đ": "dj",
}
_ICAO_CYRILLIC = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "ґ": "g",
    "д": "d",
    "ђ": "d",
    "ѓ": "g",
    "е": "e",
    "ё": "e",
    "є": "ie",
    "ж": "zh",
    "з": "z",
    "ѕ": "dz",
    "и": "i",
    "і": "i",
    "ї": "i",
    "й": "i",
    "ј": "j",
    "к": "k",
    "л": "l",
    "љ": "lj",
    "м": "m",
    "н": "n",
    "њ": "nj",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "ћ": "c",
    "ќ": "k",
    "у": "u",
    "ў": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "џ": "dz",
    "ш": "sh",
    "щ": "shch",
    "ъ": "ie",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "iu",
    "я": "ia",
}
_ICAO = str.maketrans({**_ICAO_LATIN, **_ICAO_CYRILLIC})
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
_HAN = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))
# Surnames whose reading differs from the character's usual one (the
# readings of the Hundred Family Surnames), simplified characters.
_SURNAMES = {
    "曾": "zeng",
    "单": "shan",
    "区": "ou",
    "仇": "qiu",
    "解": "xie",
    "查": "zha",
    "朴": "piao",
    "乐": "yue",
    "盖": "ge",
    "缪": "miao",
    "覃": "qin",
    "翟": "zhai",
    "召": "shao",
    "员": "yun",
    "尉": "yu",
    "任": "ren",
    "华": "hua",
    "纪": "ji",
    "燕": "yan",
    "宿": "su",
    "谌": "chen",
    "冼": "xian",
    "洗": "xian",
    "车": "che",
    "沈": "shen",
    "长": "zhang",
    "重": "chong",
    "种": "chong",
    "秘": "bi",
    "繁": "po",
}
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _in(ranges: tuple[tuple[int, int], ...], char: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in ranges)


@functools.cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


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
    out: list[str] = []
    base = ""
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.category(char) == "Mn":
            if base and _in(_DIACRITIC_BASES, base):
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
        if parts and _in(_UNSPACED, parts[-1][-1]) and _in(_UNSPACED, part[0]):
            parts[-1] += part
        else:
            parts.append(part)
    return tuple(parts)


def _han_to_pinyin(text: str) -> str:
    """Each run of Han characters to space-separated pinyin syllables (§2.8.3).

    A run of two to four characters that starts a name with a surname of
    ``_SURNAMES`` takes the surname reading for its first character.
    """
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            from pypinyin import Style, lazy_pinyin  # slow to load: only for Han

            syllables = lazy_pinyin("".join(run), style=Style.NORMAL)
            if not out and 2 <= len(run) <= 4 and run[0] in _SURNAMES:
                syllables[0] = _SURNAMES[run[0]]
            # ü is written "v" by pypinyin; passports write YU (LYU, NYU).
            out.append(" " + " ".join(s.replace("v", "yu") for s in syllables) + " ")
            run.clear()

    for char in text:
        if _in(_HAN, char):
            run.append(char)
        else:
            flush()
            out.append(char)
    flush()
    return "".join(out)


# Brahmic scripts of India, each a 128-code-point block laid out alike (ISCII),
# by their names in indic-transliteration's sanscript.
_INDIC = {
    0x0900: "devanagari",
    0x0980: "bengali",
    0x0A00: "gurmukhi",
    0x0A80: "gujarati",
    0x0B00: "oriya",
    0x0B80: "tamil",
    0x0C00: "telugu",
    0x0C80: "kannada",
    0x0D00: "malayalam",
}
_ANUSVARA = re.compile(r"M(?=[pbm])|M")


def _indic_block(char: str) -> int | None:
    block = ord(char) & ~0x7F
    return block if block in _INDIC else None


def _indic_word(word: str, block: int) -> str:
    """One word of an Indic script in OPTITRANS, as names are spelled in Latin.

    The inherent vowel of a word-final consonant is not pronounced in the
    modern languages (राहुल is Rahul, not Rahula): it is dropped.  The
    anusvara is ``m`` before p, b, m and ``n`` elsewhere (गांधी: Gandhi).
    """
    # Imported when needed: loading it takes longer than most lookups.
    from indic_transliteration import sanscript  # type: ignore[import-untyped]

    latin = sanscript.transliterate(word, _INDIC[block], sanscript.OPTITRANS)
    latin = latin.replace(chr(block + 0x3C), "")  # a nukta OPTITRANS leaves as it is
    offset = ord(word.removesuffix(chr(block + 0x3C))[-1]) - block  # before a nukta
    if (0x15 <= offset <= 0x39 or 0x58 <= offset <= 0x5F) and latin.endswith("a"):
        latin = latin[:-1]
    return _ANUSVARA.sub(
        lambda m: "m" if m.end() < len(latin) and latin[m.end()] in "pbm" else "n", latin
    )


def _indic_to_latin(text: str) -> str:
    """Every run of one Indic script's characters (a word) to OPTITRANS."""
    out: list[str] = []
    run: list[str] = []
    block: int | None = None
    for char in [*text, " "]:
        this = _indic_block(char)
        if run and this != block:
            out.append(_indic_word("".join(run), block))  # type: ignore[arg-type]
            run = []
        if this is None:
            out.append(char)
        else:
            run.append(char)
        block = this
    return "".join(out[:-1])


# ELOT 743 (ISO 843 type 2), the transliteration of Greek passports:
# digraphs first, then single letters (input case-folded, without tonos).
_GREEK_LETTERS = str.maketrans(
    {
        "α": "a",
        "β": "v",
        "γ": "g",
        "δ": "d",
        "ε": "e",
        "ζ": "z",
        "η": "i",
        "θ": "th",
        "ι": "i",
        "κ": "k",
        "λ": "l",
        "μ": "m",
        "ν": "n",
        "ξ": "x",
        "ο": "o",
        "π": "p",
        "ρ": "r",
        "σ": "s",
        "ς": "s",
        "τ": "t",
        "υ": "y",
        "φ": "f",
        "χ": "ch",
        "ψ": "ps",
        "ω": "o",
    }
)
_GREEK_DIGRAPHS = re.compile(r"(?<![α-ω])(μπ|ντ|γκ)|ου|γγ|γκ|γξ|γχ|([αεη])υ(?=(.?))")
_GREEK_VOICED = set("αεηιουωβγδζλμνρ")


def _greek_digraph(match: re.Match[str]) -> str:
    text = match.group(0)
    if match.group(1):
        return {"μπ": "b", "ντ": "d", "γκ": "g"}[text]
    if match.group(2):
        vowel = {"α": "a", "ε": "e", "η": "i"}[match.group(2)]
        return vowel + ("v" if match.group(3) in _GREEK_VOICED else "f")
    return {"ου": "ou", "γγ": "ng", "γκ": "nk", "γξ": "nx", "γχ": "nch", "μπ": "mp", "ντ": "nt"}[
        text
    ]


def _greek_elot(text: str) -> str:
    """Greek letters to Latin by ELOT 743 (Greek passports)."""
    return _GREEK_DIGRAPHS.sub(_greek_digraph, text).translate(_GREEK_LETTERS)


_THAI = ((0x0E00, 0x0E7F),)
_HANGUL = ((0xAC00, 0xD7AF),)


def _runs(text: str, ranges: tuple[tuple[int, int], ...], convert: Callable[[str], str]) -> str:
    """Replace each maximal run of characters in ``ranges`` by ``convert(run)``."""
    return re.sub(
        "[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges) + "]+",
        lambda m: f" {convert(m.group(0))} ",
        text,
    )


def _thai_rtgs(run: str) -> str:
    # Loaded when needed: PyThaiNLP is large.
    from pythainlp.transliterate import romanize

    return str(romanize(run, engine="royin"))


def _hangul_rr(run: str) -> str:
    from korean_romanizer.romanizer import Romanizer  # type: ignore[import-untyped]

    return str(Romanizer(run).romanize())


def _national(text: str) -> str:
    """Thai by the Royal Thai General System, Hangul by Revised Romanisation."""
    return _runs(_runs(text, _THAI, _thai_rtgs), _HANGUL, _hangul_rr)


def _ascii_parts(text: str) -> tuple[str, ...]:
    """anyascii, lower case, everything but a-z and 0-9 separates (apostrophes vanish)."""
    latin = anyascii(_indic_to_latin(text)).lower().translate(_DELETE)
    return tuple(_NOT_ALNUM.sub(" ", latin).split())


@functools.lru_cache(maxsize=65_536)
def name_forms(name: str) -> NameForms:
    """The script form and the Latin forms of one name (§2.8.1-§2.8.3).

    Raises:
        InvalidIdentifier: longer than 256 characters, or no letters.
    """
    text = _prepare(name)
    stripped = _t2s().convert(strip_diacritics(text))
    script = _parts(stripped.translate(_FOLD))
    if not any(unicodedata.category(c)[0] == "L" for part in script for c in part):
        raise InvalidIdentifier("a name has no letters")
    latin: set[tuple[str, ...]] = set()
    icao = _national(_greek_elot(strip_diacritics(_t2s().convert(text).translate(_ICAO))))
    latin.add(_ascii_parts(_han_to_pinyin(icao)))
    latin.add(_ascii_parts(_han_to_pinyin(stripped)))
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
    with doubled letters made single (after ``=``).  So Hussein / Husain /
    Hussain and Mohammed / Muhammad share a code, while Hassan (a-a) and
    Hussein (u-i), Sunil (u-i) and Sanil (a-i), Maria and Mario, Alexander and
    Alexandra stay apart.
    """
    return "-".join(_part_code(part) for part in parts)


def _part_code(part: str) -> str:
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
