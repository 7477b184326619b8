"""Properties of wlx-norm-2 name forms and keys (docs/protocol.md §2.8).

Known answers are in docs/vectors/normalisation-2.json (test_vectors.py);
these are the rules every input obeys.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wlx.crypto.errors import InvalidIdentifier
from wlx.crypto.names import name_forms, phonetic_code
from wlx.crypto.normalize import query_keys, query_keys_checked, record_keys

FAST = settings(max_examples=150, deadline=None)
WORD = st.text(
    st.characters(categories=["L", "M", "N"], exclude_characters="\x1f"), min_size=1, max_size=10
)
NAME = st.lists(WORD, min_size=1, max_size=4).map(" ".join)


def _values(keys: list) -> set[bytes]:  # type: ignore[type-arg]
    return {k.value for k in keys}


@FAST
@given(NAME, st.sampled_from(["1980-05-07", "1980-05", "1980"]))
def test_a_listing_is_found_by_its_own_name_and_date(name: str, dob: str) -> None:
    try:
        listed = _values(record_keys([name], dob, []))
    except InvalidIdentifier:
        return
    assert listed & _values(query_keys([name], dob, []))


@FAST
@given(NAME)
def test_case_and_unicode_form_do_not_change_the_forms(name: str) -> None:
    try:
        expected = name_forms(name)
    except InvalidIdentifier:
        return
    assume(unicodedata.normalize("NFC", name.upper()).casefold() == name.casefold())
    for form in ("NFC", "NFD", "NFKC"):
        assert name_forms(unicodedata.normalize(form, name)) == expected
    assert name_forms(name.upper()) == expected


@FAST
@given(NAME)
def test_latin_forms_are_lower_case_ascii(name: str) -> None:
    try:
        forms = name_forms(name)
    except InvalidIdentifier:
        return
    for parts in forms.latin:
        assert all(p and p.isascii() and p == p.lower() and p.isalnum() for p in parts)
    for code in forms.phonetic():
        assert code.isascii()


@pytest.mark.parametrize(
    ("listed", "queried"),
    [
        ("Ali bin Hassan", "Hassan bin Ali"),
        ("सुनील", "सनील"),
        ("สุดา", "สดา"),
        ("王伟", "汪伟"),
        ("Hassan Ali Khan", "Hussein Ali Khan"),
    ],
)
def test_the_issue_traps_stay_apart(listed: str, queried: str) -> None:
    assert not _values(record_keys([listed], "1980-05-07", [])) & _values(
        query_keys([queried], "1980-05-07", [])
    )


def test_phonetic_codes_fold_spellings_and_keep_names_apart() -> None:
    def code(text: str) -> str:
        return phonetic_code(tuple(text.split()))

    assert code("mikhail") == code("michail")
    assert code("hussein") == code("husain") == code("hussain")
    assert code("mohammed") == code("muhammad")
    assert code("hassan") != code("hussein")
    assert code("maria") != code("mario")
    assert code("alexander") != code("alexandra")


def test_names_that_differ_in_a_digit_stay_apart() -> None:
    """Metaphone ignores digits; a part holding one is kept whole in the code."""
    assert phonetic_code(("person", "cn", "1")) != phonetic_code(("person", "cn", "2"))
    assert not _values(record_keys(["Test Person CN 1"], "1980-05-07", [])) & _values(
        query_keys(["Test Person CN 2"], "1980-05-07", [])
    )


def test_an_unusable_field_is_named_and_the_rest_is_keyed() -> None:
    checked = query_keys_checked(["Wang Wei"], "1980-05-17", [("CN", "E1"), ("CHN", "E2")])
    assert checked.unusable == (
        "document 1: a country must be an ICAO three-letter code such as CHN",
    )
    assert any(k.kind.value == "document" for k in checked.keys)
    assert any(k.kind.value == "name+dob" for k in checked.keys)
    with pytest.raises(InvalidIdentifier, match=r"document 1: .*; names: a name needs"):
        query_keys_checked(["Wang Wei"], None, [("CN", "E1")])


def test_hangul_that_the_romanizer_cannot_take_whole_still_has_keys() -> None:
    """korean-romanizer 0.28.0 raises KeyError on some syllable pairs (found by
    hypothesis: a final ㄶ or ㅀ before certain initials); the run is then
    romanised syllable by syllable, never an internal error."""
    from wlx.crypto.romanize import national

    for pair in ("젆쮻", "뜒썾", "텧랑", "뷿미", "숋뺔"):
        assert national(pair).strip()
    assert record_keys([f"김 {pair}" for pair in ("젆쮻",)], "1980-05-17", [])


def test_a_nukta_after_another_scripts_letter_is_keyed_not_an_internal_error() -> None:
    """A lone Indic nukta after a letter of another Indic script (found by
    hypothesis: Devanagari ऄ then the Oriya nukta) is a run of its own with no
    letter before the nukta; it raised IndexError from a lookup or an import."""
    from wlx.crypto.romanize import indic_to_latin

    assert indic_to_latin("\u0904\u0b3c") == indic_to_latin("\u0904")
    assert record_keys(["Ravi \u0904\u0b3c"], "1980-05-17", [])
    assert query_keys_checked(["Ravi \u0904\u0b3c"], "1980-05-17", []).keys
