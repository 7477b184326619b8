"""Latin spellings of names written in other scripts (docs/protocol.md §2.8.3).

Each function turns the characters of one script into the Latin letters its
documents use, leaving every other character as it is: the ICAO 9303 Part 3
table (Latin letters with diacritics, Cyrillic), ELOT 743 (Greek), pinyin
(Han, via pypinyin), OPTITRANS (Brahmic scripts of India, via
indic-transliteration), RTGS (Thai, via PyThaiNLP) and Revised Romanisation
(Hangul, via korean-romanizer).  The large libraries are loaded only when a
name holds their script.  Input is case-folded and NFC.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Ranges = tuple[tuple[int, int], ...]


def in_ranges(ranges: Ranges, char: str) -> bool:
    """Whether ``char``'s code point lies in one of ``ranges`` (inclusive)."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in ranges)


def char_class(ranges: Ranges) -> str:
    """A regular-expression character class of ``ranges``."""
    return "[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges) + "]"


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
ICAO = str.maketrans({**_ICAO_LATIN, **_ICAO_CYRILLIC})

HAN: Ranges = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))
_ANY_HAN = re.compile(char_class(HAN))
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


def han_to_pinyin(text: str) -> str:
    """Each run of Han characters to space-separated pinyin syllables (§2.8.3).

    A run of two to four characters that starts a name with a surname of
    ``_SURNAMES`` takes the surname reading for its first character.
    """
    return _pinyin_runs(text) if _ANY_HAN.search(text) else text


def _pinyin_runs(text: str) -> str:
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
        if in_ranges(HAN, char):
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
_ANY_INDIC = re.compile(char_class(((min(_INDIC), max(_INDIC) + 0x7F),)))


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
    # The letter before a trailing nukta; a word that is only a nukta (a mark
    # after another script's letter) has none, and keeps its Latin as it is.
    stem = word.removesuffix(chr(block + 0x3C))
    offset = ord(stem[-1]) - block if stem else -1
    if (0x15 <= offset <= 0x39 or 0x58 <= offset <= 0x5F) and latin.endswith("a"):
        latin = latin[:-1]
    return _ANUSVARA.sub(
        lambda m: "m" if m.end() < len(latin) and latin[m.end()] in "pbm" else "n", latin
    )


def indic_to_latin(text: str) -> str:
    """Every run of one Indic script's characters (a word) to OPTITRANS."""
    return _optitrans_runs(text) if _ANY_INDIC.search(text) else text


def _optitrans_runs(text: str) -> str:
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


def greek_elot(text: str) -> str:
    """Greek letters to Latin by ELOT 743 (Greek passports)."""
    return _GREEK_DIGRAPHS.sub(_greek_digraph, text).translate(_GREEK_LETTERS)


_THAI = re.compile(char_class(((0x0E00, 0x0E7F),)) + "+")
_HANGUL = re.compile(char_class(((0xAC00, 0xD7AF),)) + "+")


def _runs(text: str, runs: re.Pattern[str], convert: Callable[[str], str]) -> str:
    """Replace each maximal run of characters matching ``runs`` by ``convert(run)``."""
    return runs.sub(lambda m: f" {convert(m.group(0))} ", text)


def _thai_rtgs(run: str) -> str:
    # Loaded when needed: PyThaiNLP is large.
    from pythainlp.transliterate import romanize

    return str(romanize(run, engine="royin"))


def _hangul_rr(run: str) -> str:
    """Revised Romanisation of a run of Hangul syllables.

    korean-romanizer 0.28.0 raises ``KeyError`` on some syllable pairs (a
    final ㄶ, ㅀ or ㅎ before certain initials); such a run is romanised one
    syllable at a time instead (docs/protocol.md §2.8.3), so every input has
    a key and none is an internal error.
    """
    from korean_romanizer.romanizer import Romanizer  # type: ignore[import-untyped]

    try:
        return str(Romanizer(run).romanize())
    except (KeyError, IndexError, ValueError):
        return "".join(str(Romanizer(syllable).romanize()) for syllable in run)


def national(text: str) -> str:
    """Thai by the Royal Thai General System, Hangul by Revised Romanisation."""
    return _runs(_runs(text, _THAI, _thai_rtgs), _HANGUL, _hangul_rr)
