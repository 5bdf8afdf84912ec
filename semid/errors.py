"""Errors raised by semid.

Every error a user can cause derives from :class:`SemidError` and from the
builtin that matches its nature, so ``except ValueError`` keeps working::

    SemidError
    ├── DataError (ValueError)            bad dataset content: file, line, field, value
    │   └── MissingFieldError             an item lacks a field a scheme needs
    ├── ParameterError (ValueError)       unknown scheme or parameter, bad value
    ├── CodeFormatError (ValueError)      a token string that does not parse
    ├── UnknownItemError (KeyError)       an item id the index does not hold
    ├── UnknownCodeError (KeyError)       a code that is not in the index
    ├── ArtifactError (OSError)           unreadable, corrupted or newer artifact,
    │                                     output that exists without overwrite
    ├── NotFittedError (RuntimeError)     a tokenizer used before ``fit``
    └── ColdStartUnsupportedError (RuntimeError)
                                          the scheme cannot encode unseen items

Messages say what went wrong, show the offending value, say what was expected
and, where there is one, the fix.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "CodeFormatError",
    "ColdStartUnsupportedError",
    "DataError",
    "MissingFieldError",
    "NotFittedError",
    "ParameterError",
    "SemidError",
    "UnknownCodeError",
    "UnknownItemError",
]


class SemidError(Exception):
    """Root of every error semid raises on purpose."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DataError(SemidError, ValueError):
    """A dataset file or record is malformed or inconsistent."""


class MissingFieldError(DataError):
    """Items lack a field that the chosen scheme needs (e.g. ``title``)."""


class ParameterError(SemidError, ValueError):
    """An unknown scheme or parameter name, or a parameter value out of range."""


class CodeFormatError(SemidError, ValueError):
    """A token string such as ``<a_12><b_5>`` that does not parse under a vocab."""


class UnknownItemError(SemidError, KeyError):
    """An item id that the index (or dataset) does not contain."""


class UnknownCodeError(SemidError, KeyError):
    """A code that no item of the index has."""


class ArtifactError(SemidError, OSError):
    """An artifact that is missing, corrupted, of a newer format, or in the way."""


class NotFittedError(SemidError, RuntimeError):
    """A tokenizer was used before :meth:`ItemTokenizer.fit`."""


class ColdStartUnsupportedError(SemidError, RuntimeError):
    """The scheme cannot derive a code for an item it was not fitted on."""
