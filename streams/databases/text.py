"""Text shared by the databases: identifier patterns to draw from, names to normalise.

A *pattern* spells an identifier's shape one character at a time: ``A`` an upper-case
letter, ``9`` a digit, ``X`` either, ``#`` a VIN character (no I, O or Q); anything else
is literal. ``draw(rng, "99AA99999")`` gives a French passport number such as ``12AB34567``.
Runs of the same class are drawn in one call, which keeps a million draws to seconds.

``normalise`` is how names and titles are compared: case-folded (``ß`` -> ``ss``),
accents stripped (NFKD, combining marks dropped), hyphens, apostrophes and other
punctuation turned into spaces, whitespace collapsed. ``name_key`` also sorts the words, so
"DUPONT Jean" and "Jean Dupont" meet, as they do in a nominal search.
"""

from __future__ import annotations

import random
import re
import string
import unicodedata
from functools import cache
from itertools import groupby

__all__ = [
    "compile_pattern",
    "draw",
    "name_key",
    "normalise",
    "normalise_identifier",
    "tokens",
]

_LETTERS = string.ascii_uppercase
_DIGITS = string.digits
_VIN_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_CLASSES = {"A": _LETTERS, "X": _LETTERS + _DIGITS, "#": _VIN_LETTERS + _DIGITS}
_NOT_WORD = re.compile(r"[^\w]+")
_SEPARATORS = re.compile(r"[\s./-]+")

Run = tuple[str, int]  # (class letter or literal text, length)


@cache
def compile_pattern(pattern: str) -> tuple[Run, ...]:
    """The pattern as runs of one class; literals are kept whole."""
    runs: list[Run] = []
    for char, group in groupby(pattern):
        length = len(list(group))
        if char in _CLASSES or char == "9":
            runs.append((char, length))
        else:
            runs.append((char * length, 0))
    return tuple(runs)


def draw(rng: random.Random, pattern: str) -> str:
    """One identifier of shape ``pattern``, from ``rng``."""
    parts: list[str] = []
    for kind, length in compile_pattern(pattern):
        if length == 0:
            parts.append(kind)
        elif kind == "9":
            parts.append(str(rng.randrange(10**length)).zfill(length))
        else:
            parts.append("".join(rng.choices(_CLASSES[kind], k=length)))
    return "".join(parts)


def normalise(text: str) -> str:
    """Case-folded, accent-free, punctuation as spaces, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", bare.replace("'", "").replace("’", "")).split())


def tokens(text: str) -> list[str]:
    """The normalised words of ``text``."""
    return normalise(text).split()


def name_key(name: str) -> str:
    """A person's name as a lookup key: normalised words in sorted order."""
    return " ".join(sorted(tokens(name)))


def normalise_identifier(identifier: str) -> str:
    """A document number or plate as stored: upper case, no spaces, dots, slashes or dashes."""
    return _SEPARATORS.sub("", identifier).upper()
