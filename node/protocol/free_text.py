"""The free text that reaches the signed, append-only exchange log: the stated
purpose of a lookup or detail request, and a detail request's case reference.
Pure.

What is written there stays forever and is cosigned by peers, so it is kept
short and plain: a *purpose* is one line of at most 64 printable characters
(letters, digits, spaces and punctuation; no control, format or line
separator characters); a *case* reference is at most 32 characters of
``A-Z a-z 0-9 . _ : / # -`` with no spaces.  The bounds leave room for
"border-check" or "arrest warrant 2026/114", not for a person's particulars;
a node cannot tell a name from a word, so the log also records which
credential wrote the text.
"""

from __future__ import annotations

import re
import unicodedata

MAX_PURPOSE = 64
MAX_CASE = 32
CASE = re.compile(r"[A-Za-z0-9._:/#-]*")
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


class FreeTextError(ValueError):
    """The text is refused; the message says what is allowed."""


def check_purpose(text: str) -> str:
    """The purpose, stripped.

    Raises:
        FreeTextError: empty, longer than 64 characters, or not one line of
            printable characters.
    """
    text = text.strip()
    if not text:
        raise FreeTextError("a purpose must be stated")
    if len(text) > MAX_PURPOSE:
        raise FreeTextError(f"a purpose is at most {MAX_PURPOSE} characters")
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in text):
        raise FreeTextError("a purpose is one line of printable characters")
    return text


def check_case(text: str) -> str:
    """The case reference, stripped (may be empty).

    Raises:
        FreeTextError: longer than 32 characters, or other characters than
            letters, digits and ``. _ : / # -``.
    """
    text = text.strip()
    if len(text) > MAX_CASE:
        raise FreeTextError(f"a case reference is at most {MAX_CASE} characters")
    if not CASE.fullmatch(text):
        raise FreeTextError("a case reference is letters, digits and . _ : / # - only (no spaces)")
    return text
