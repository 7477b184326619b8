"""The fast paths of wlx-norm-2 key derivation give exactly the bytes of the
straightforward rules (docs/protocol.md §2.8).

``norm2`` makes keys from cached per-name plans, ``names`` and ``romanize``
skip a transliterator when a text holds none of its script, and pure
per-part work is memoised.  Here every one of them is checked against the
plain computation on random names of many scripts: the reference below is
the rule as §2.8.5 states it, one key at a time, over the uncached forms.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable

import opencc  # type: ignore[import-untyped]
from anyascii import anyascii
from hypothesis import given, settings
from hypothesis import strategies as st

from wlx.crypto import names, norm2, romanize
from wlx.crypto.errors import InvalidIdentifier
from wlx.crypto.normalize import (
    SEP,
    IdentifierKey,
    KeyKind,
    PartialDate,
    normalize_document_number,
)

EXAMPLES = settings(max_examples=300, deadline=None)
SCRIPTS = (
    (0x0041, 0x007A),  # ASCII letters and some punctuation
    (0x00C0, 0x024F),  # Latin with diacritics
    (0x0370, 0x03FF),  # Greek
    (0x0400, 0x04FF),  # Cyrillic
    (0x0600, 0x06FF),  # Arabic
    *((block, block + 0x7F) for block in range(0x0900, 0x0D80, 0x80)),  # each Indic script
    (0x0E00, 0x0E7F),  # Thai
    (0x3040, 0x30FF),  # Kana
    (0x3400, 0x4DBF),  # Han Extension A
    (0x4E00, 0x9FFF),  # Han, traditional and simplified
    (0xF900, 0xFAFF),  # Han compatibility ideographs
    (0xAC00, 0xD7AF),  # Hangul
    (0x20000, 0x2A6DF),  # Han Extension B
)
ODD = st.sampled_from(" -'.,0123456789\u0301\u0308\u0640\u200c\u00ad\u3000")
WORD = st.sampled_from(SCRIPTS).flatmap(
    lambda r: st.text(st.characters(min_codepoint=r[0], max_codepoint=r[1]) | ODD, max_size=8)
)
T2S = opencc.OpenCC("t2s")  # not names._t2s(): its own tables
NAME = st.lists(WORD, min_size=1, max_size=4).map(" ".join)
DATE = st.builds(
    lambda y, m, d: PartialDate(y, m, d if m else None),
    st.integers(1900, 2020),
    st.none() | st.integers(1, 12),
    st.none() | st.integers(1, 28),
)


def _key(kind: KeyKind, space: str, form: str, when: str) -> IdentifierKey:
    return IdentifierKey(kind, SEP.join((norm2.VERSION, space, form, when)).encode("utf-8"))


def _dated(quals: tuple[str, ...], space: str, form: str, date: PartialDate, query: bool) -> list:  # type: ignore[type-arg]
    keys = []
    for index, coarse in enumerate(date.coarser()):
        at = KeyKind.name(coarse.kind().date, *quals)
        marked = not query and index > 0
        keys.append(_key(at, space, form, ("~" if marked else "") + coarse.iso()))
        if query and index == 0 and date.day is None:
            keys.append(_key(at, space, form, "~" + coarse.iso()))
    return keys


def _code(parts: tuple[str, ...]) -> str:
    return "-".join(names._part_code.__wrapped__(part) for part in parts)


def reference_record(forms: names.NameForms, date: PartialDate) -> list[IdentifierKey]:
    """§2.8.5 for a listing, one key at a time."""
    tag = "latin" if all(c.isascii() for c in "".join(forms.script)) else "other"
    script = "".join(forms.script)
    keys = _dated((), "name", script, date, False)
    for parts in forms.latin:
        if "".join(parts) != script:
            keys += _dated(("transliterated",), f"translit-{tag}", "".join(parts), date, False)
        if date.day is not None:
            kind = KeyKind.name("dob", "phonetic")
            keys.append(_key(kind, f"phonetic-{tag}", _code(parts), date.iso()))
    return keys


def reference_query(forms: names.NameForms, date: PartialDate) -> list[IdentifierKey]:
    """§2.8.5 for a query, one key at a time."""
    latin = all(c.isascii() for c in "".join(forms.script))
    script = "".join(forms.script)
    spaced: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [("name", forms.script, ())]
    for parts in forms.latin:
        by: tuple[str, ...] = () if "".join(parts) == script else ("transliterated",)
        spaced += [("name", parts, by)] if by else []
        spaced += [
            (f"translit-{t}", parts, by) for t in (("latin", "other") if latin else ("latin",))
        ]
    other = norm2.swapped(date)
    keys = []
    for space, parts, by_script in spaced:
        orders: list[tuple[tuple[str, ...], tuple[str, ...]]] = [(parts, ())]
        if len(parts) >= 2:
            for rotated in (parts[-1:] + parts[:-1], parts[1:] + parts[:1]):
                orders += [(rotated, ("reordered",))] if rotated != parts else []
        for ordered, by_order in orders:
            form = "".join(ordered)
            keys += _dated(by_script + by_order, space, form, date, True)
            if other is not None and not by_order:
                kind = KeyKind.name("dob", *by_script, *by_order, "swapped day/month")
                keys.append(_key(kind, space, form, other.iso()))
            if space != "name" and date.day is not None:
                kind = KeyKind.name("dob", "phonetic", *by_order)
                code = _code(ordered)
                keys.append(_key(kind, space.replace("translit", "phonetic"), code, date.iso()))
    return keys


def reference_forms(name: str) -> names.NameForms:
    """``name_forms`` with every transliterator run on every text."""
    text = names._prepare(name)
    stripped = T2S.convert(names._strip_marks(text))
    script = names._parts(stripped.translate(names._FOLD))
    if not any(unicodedata.category(c)[0] == "L" for c in "".join(script)):
        raise InvalidIdentifier("a name has no letters")
    simplified = T2S.convert(text).translate(romanize.ICAO)
    icao = romanize.national(romanize.greek_elot(names._strip_marks(simplified)))
    latin = set()
    for form in (icao, stripped):
        ascii_ = anyascii(romanize._optitrans_runs(romanize._pinyin_runs(form)))
        latin.add(tuple(names._NOT_ALNUM.sub(" ", ascii_.lower().translate(names._DELETE)).split()))
    latin.discard(())
    return names.NameForms(script, tuple(sorted(latin)))


def _outcome(fn: Callable[..., object], *args: object) -> object:
    """The result, or the error: the fast path must fail exactly where the plain one does."""
    try:
        return fn(*args)
    except InvalidIdentifier as exc:
        return f"{type(exc).__name__}: {exc}"


@EXAMPLES
@given(NAME, DATE)
def test_keys_are_those_of_the_plain_rules(name: str, date: PartialDate) -> None:
    expected = _outcome(reference_forms, name)
    assert _outcome(names.name_forms, name) == expected
    for _ in range(2):  # cold, then from the caches
        if isinstance(expected, names.NameForms):
            assert norm2.record_name_keys(name, date) == reference_record(expected, date)
            assert norm2.query_name_keys(name, date) == reference_query(expected, date)
        else:
            assert _outcome(norm2.record_name_keys, name, date) == expected
            assert _outcome(norm2.query_name_keys, name, date) == expected


@EXAMPLES
@given(NAME)
def test_skipped_transliterators_would_not_have_changed_the_text(text: str) -> None:
    assert names._simplified(text) == T2S.convert(text)
    assert names.strip_diacritics(text) == names._strip_marks(text)
    assert romanize.han_to_pinyin(text) == romanize._pinyin_runs(text)
    indic = _outcome(romanize.indic_to_latin, text)
    assert indic == _outcome(romanize._optitrans_runs, text)
    for part in text.split():
        assert names._part_code(part) == names._part_code.__wrapped__(part)


def test_no_t2s_key_holds_a_character_below_the_bound() -> None:
    """``names._simplified`` skips texts below ``_FIRST_T2S``: no dictionary key may."""
    converter = names._t2s()
    converter.convert("")  # loads the dictionaries
    chars = {
        char
        for _, _, table in itertools.chain.from_iterable(converter._dict_chain_data)
        for key in table
        for char in key
    }
    assert chars and min(chars) >= names._FIRST_T2S


def _reference_number(number: str) -> str:
    text = unicodedata.normalize("NFKC", number).upper()
    text = "".join(c for c in text if unicodedata.category(c)[0] in "LN")
    if not text or len(text) > 32 or not text.isascii() or not text.isalnum():
        raise InvalidIdentifier("unusable")
    return text


@EXAMPLES
@given(st.text(st.characters(max_codepoint=0x7F) | st.characters(), max_size=40))
def test_document_numbers_are_those_of_the_plain_rule(number: str) -> None:
    expected = _outcome(_reference_number, number)
    got = _outcome(normalize_document_number, number)
    assert got == expected or (isinstance(got, str) and isinstance(expected, str))
