"""Text normalisation shared by the keyword index, queries and the evaluation."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_WS = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional to simplified Chinese (other text unchanged)."""
    return _t2s().convert(text) if text else text


def normalise(text: str) -> str:
    """Folding used for matching: NFKC, simplified script, lower case."""
    return to_simplified(unicodedata.normalize("NFKC", text)).lower()


def squash(text: str) -> str:
    """`normalise` with all white space removed (evidence matching)."""
    return _WS.sub("", normalise(text))
