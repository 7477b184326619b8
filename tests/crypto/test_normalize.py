"""Properties of identifier normalisation (docs/protocol.md §2).

The known answers are in docs/vectors/normalisation.json (test_vectors.py);
these are the rules every input obeys: a normalised name normalises to
itself, the order and case of its parts do not matter, and bad input fails
with ``InvalidIdentifier`` only, whose message never repeats the input.
"""

from __future__ import annotations

import calendar
import contextlib
import unicodedata
from collections.abc import Callable
from random import Random

import pytest
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st

from wlx.crypto.errors import InvalidIdentifier
from wlx.crypto.normalize import (
    MAX_NAME_CHARS,
    SEP,
    IdentifierKey,
    KeyKind,
    PartialDate,
    document_key,
    name_dob_key,
    normalize_country,
    normalize_document_number,
    normalize_name,
    parse_dob,
    query_keys,
    record_keys,
)

# Letters of the scripts names are most often written in, upper and lower case.
CASED = st.characters(
    categories=["Lu", "Ll"],
    include_characters="ßøæłđðþœıħŧŋ'’-",
    max_codepoint=0x052F,  # Latin, IPA, Greek, Cyrillic
)
WORD = st.text(
    st.characters(categories=["L", "N", "M"], exclude_characters=SEP), min_size=1, max_size=12
)
ANY_TEXT = st.text(max_size=300)
FAST = settings(max_examples=150, deadline=None)


def normal_or_none(text: str) -> str | None:
    try:
        return normalize_name(text)
    except InvalidIdentifier:
        return None


@FAST
@given(ANY_TEXT)
def test_a_normalised_name_normalises_to_itself(text: str) -> None:
    once = normal_or_none(text)
    if once is None:
        reject()
    assert normalize_name(once) == once


@FAST
@given(ANY_TEXT)
def test_a_normalised_name_is_sorted_parts_joined_by_one_space(text: str) -> None:
    out = normal_or_none(text)
    if out is None:
        reject()
    parts = out.split(" ")
    assert all(parts) and parts == sorted(parts)
    assert unicodedata.is_normalized("NFC", out)
    assert not any(unicodedata.category(c) == "Mn" for c in out)


@FAST
@given(st.lists(WORD, min_size=1, max_size=5), st.randoms(use_true_random=False))
def test_part_order_does_not_matter(words: list[str], random: Random) -> None:
    name = " ".join(words)
    expected = normal_or_none(name)
    assume(expected is not None)
    shuffled = list(words)
    random.shuffle(shuffled)
    assert normalize_name("  ".join(shuffled)) == expected
    assert normalize_name("-".join(shuffled)) == expected
    assert normalize_name(", ".join(reversed(shuffled))) == expected


@FAST
@given(st.text(CASED, min_size=1, max_size=40))
def test_case_does_not_matter(text: str) -> None:
    expected = normal_or_none(text)
    assume(expected is not None)
    assert normalize_name(text.upper()) == expected
    assert normalize_name(text.lower()) == expected
    assert normalize_name(text.swapcase()) == expected


@FAST
@given(st.text(CASED, min_size=1, max_size=40))
def test_compatibility_and_composition_forms_do_not_matter(text: str) -> None:
    expected = normal_or_none(text)
    assume(expected is not None)
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        assert normalize_name(unicodedata.normalize(form, text)) == expected


def test_apostrophes_vanish_and_other_punctuation_separates() -> None:
    for apostrophe in "'`\u00b4\u02b9\u02bb\u02bc\u2018\u2019\u2032":
        assert normalize_name(f"O{apostrophe}Brien") == "obrien"
    for separator in " -.,;/()_\t\n\u00a0\u3000":
        assert normalize_name(f"Anna{separator}Maria") == "anna maria"


def test_spacing_marks_stay_in_their_word() -> None:
    # Devanagari vowel sign AA (U+093E) is Mc: राम and मार are different names.
    assert normalize_name("राम") != normalize_name("मार")
    assert normalize_name("राम") == "राम"


def test_a_name_at_the_length_limit_is_accepted_and_one_more_is_not() -> None:
    assert normalize_name("a" * MAX_NAME_CHARS) == "a" * MAX_NAME_CHARS
    with pytest.raises(InvalidIdentifier):
        normalize_name("a" * (MAX_NAME_CHARS + 1))


CANARY = "Zq9Xv"
PARSERS: list[Callable[[str], object]] = [
    normalize_name,
    parse_dob,
    normalize_country,
    normalize_document_number,
    lambda s: record_keys([s], s, [(s, s)]),
    lambda s: query_keys([s], s, [(s, s)]),
    lambda s: query_keys([s], None, []),
    lambda s: record_keys([], s, []),
]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(range(len(PARSERS))), ANY_TEXT)
def test_bad_input_raises_only_invalid_identifier(index: int, text: str) -> None:
    with contextlib.suppress(InvalidIdentifier):
        PARSERS[index](text)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(range(len(PARSERS))), ANY_TEXT, ANY_TEXT)
def test_error_messages_never_contain_the_input(index: int, before: str, after: str) -> None:
    text = before + CANARY + after
    try:
        PARSERS[index](text)
    except InvalidIdentifier as exc:
        message = str(exc)
        assert CANARY.lower() not in message.lower()


@FAST
@given(st.integers(1800, 9999), st.integers(0, 12), st.integers(0, 31))
def test_dates_parse_to_their_precision_or_fail_cleanly(year: int, month: int, day: int) -> None:
    text = f"{year:04d}-{month:02d}-{day:02d}"
    invalid = (month == 0 and day != 0) or (
        month != 0 and day > calendar.monthrange(year, month)[1]
    )
    try:
        date = parse_dob(text)
    except InvalidIdentifier:
        assert invalid
        return
    assert not invalid
    assert date.year == year
    assert date.month == (month or None)
    assert date.day == (day if month and day else None)
    assert parse_dob(date.iso()) == date
    coarser = date.coarser()
    assert coarser[0] == date and coarser[-1] == PartialDate(year)
    strengths = [d.kind().strength for d in coarser]
    assert strengths == sorted(set(strengths))


def test_kinds_are_ordered_strongest_first() -> None:
    kinds = [KeyKind.DOCUMENT, KeyKind.NAME_DOB, KeyKind.NAME_DOB_MONTH, KeyKind.NAME_DOB_YEAR]
    assert [k.strength for k in kinds] == [0, 1, 2, 3]
    assert [k.level for k in kinds] == ["strong", "strong", "weak", "weak"]
    assert KeyKind.name("dob", "transliterated").level == "medium"
    assert KeyKind.name("dob", "phonetic").level == "weak"
    assert KeyKind.name("dob", "swapped day/month").level == "weak"


@pytest.mark.parametrize(
    "kind",
    [
        KeyKind.DOCUMENT,
        KeyKind.NAME_DOB_YEAR,
        KeyKind.name("dob", "transliterated", "reordered"),
        KeyKind.name("dob-month", "phonetic"),
    ],
)
def test_kind_labels_parse_back(kind: KeyKind) -> None:
    assert KeyKind.parse(kind.value) == kind


@pytest.mark.parametrize(
    "text", ["", "name", "name+dob ()", "name+dob (magic)", "name+dob (reordered", "doc"]
)
def test_unknown_kind_labels_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an identifier kind"):
        KeyKind.parse(text)


def test_a_hit_takes_the_coarser_date_and_every_qualifier_of_both_sides() -> None:
    queried = KeyKind.name("dob", "reordered")
    listed = KeyKind.name("dob-year", "transliterated")
    assert queried.combine(listed) == KeyKind.name("dob-year", "reordered", "transliterated")


@FAST
@given(st.text(st.characters(categories=["Lu", "Nd"], max_codepoint=0x7F), min_size=1, max_size=32))
def test_document_keys_ignore_case_spacing_and_filler(number: str) -> None:
    key = document_key("CHN", number)
    assert key.kind is KeyKind.DOCUMENT
    spaced = " ".join(number.lower()) + "<<"
    assert document_key("chn", spaced) == key
    assert key.value == SEP.join(("wlx-norm-2", "document", "CHN", number)).encode()
    assert document_key("CHN", number, "wlx-norm-1").value.startswith(b"wlx-norm-1\x1f")


def test_keys_of_a_record_are_found_by_a_query_with_a_finer_date() -> None:
    listed = set(record_keys(["Wang Wei"], "1980-05", [], "wlx-norm-1"))
    query = set(query_keys(["WEI Wang"], "1980-05-17", [], "wlx-norm-1"))
    assert listed <= query
    assert name_dob_key("wang wei", PartialDate(1980, 5)) in listed
    # but in wlx-norm-1 a listing with the full date is not found by a query knowing the month
    assert not set(record_keys(["Wang Wei"], "1980-05-17", [], "wlx-norm-1")) & set(
        query_keys(["Wang Wei"], "1980-05", [], "wlx-norm-1")
    )


def _values(keys: list[IdentifierKey]) -> set[bytes]:
    return {k.value for k in keys}


def test_norm2_a_full_date_listing_is_found_by_a_month_or_year_query() -> None:
    listed = _values(record_keys(["Wang Wei"], "1980-05-17", []))
    assert listed & _values(query_keys(["Wang Wei"], "1980-05", []))
    assert listed & _values(query_keys(["Wang Wei"], "1980", []))
    assert not listed & _values(query_keys(["Wang Wei"], "1981", []))


def test_norm2_day_and_month_swapped_are_found_and_labelled() -> None:
    listed = {k.value: k.kind for k in record_keys(["Wang Wei"], "1980-05-07", [])}
    query = query_keys(["Wang Wei"], "1980-07-05", [])
    kinds = {k.kind.combine(listed[k.value]) for k in query if k.value in listed}
    assert KeyKind.name("dob", "swapped day/month") in kinds
    # a day above 12 cannot be a month: no swapped key
    assert not any("swapped" in k.kind.value for k in query_keys(["A B"], "1980-05-17", []))


def test_record_keys_are_sorted_and_unique() -> None:
    keys = record_keys(
        ["Wang Wei", "wei WANG", "王伟"], "1980-05-17", [("CHN", "E1"), ("chn", "e1")], "wlx-norm-1"
    )
    assert keys == sorted(set(keys))
    assert len(keys) == 3
    keys = record_keys(["Wang Wei", "王伟"], "1980-05-17", [("CHN", "E1"), ("chn", "e1")])
    values = [k.value for k in keys]
    assert values == sorted(set(values))


# ---------------------------------------------------------------- white space (issue 14)


def test_the_white_space_set_is_exactly_what_python_strips() -> None:
    """MUST-2.2-1: the set is stated, and equals str.isspace on Unicode 14.0."""
    from wlx.crypto.normalize import WHITE_SPACE

    assert len(WHITE_SPACE) == len(set(WHITE_SPACE)) == 29
    assert set(WHITE_SPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


@pytest.mark.parametrize("space", ["\u00a0", "\u3000", "\u2028", "\x1f", "\x85", "\t"])
def test_listed_white_space_around_dates_and_countries_is_removed(space: str) -> None:
    from wlx.crypto.normalize import normalize_country, parse_dob

    assert parse_dob(f"{space}1980-05-17{space}").iso() == "1980-05-17"
    assert normalize_country(f"{space}chn{space}") == "CHN"


@pytest.mark.parametrize("other", ["\u200b", "\ufeff", "\u180e", "\u2060"])
def test_other_invisible_characters_are_not_white_space(other: str) -> None:
    from wlx.crypto.normalize import normalize_country, parse_dob

    with pytest.raises(InvalidIdentifier):
        parse_dob(f"{other}1980-05-17")
    with pytest.raises(InvalidIdentifier):
        normalize_country(f"chn{other}")
