"""The errors that ``wlx.crypto`` raises.

Every check in this package raises one of these; none returns a bool.  The
messages never contain secret or personal data: they name the check that
failed, not the input that failed it.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error raised by ``wlx.crypto``."""


class MalformedError(CryptoError):
    """Bytes that do not parse as the structure they claim to be."""


class VerificationError(CryptoError):
    """A signature, digest, proof or binding did not verify."""


class DecryptionError(CryptoError):
    """A ciphertext did not open.

    Deliberately opaque (one error for a wrong key, a wrong context and a
    tampered ciphertext), as in pyca/cryptography's ``InvalidTag``.
    """


class InvalidIdentifier(ValueError):
    """An identifier (name, date, document, country) that cannot be normalised.

    The message says which rule failed, never the rejected value, so it is
    safe to log and to show to the officer who typed it.
    """
