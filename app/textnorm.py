"""Text normalisation shared by the keyword index, queries and the evaluation."""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache

_WS = re.compile(r"\s+")


@lru_cache(maxsize=1)
def jieba_module():
    """jieba, quiet and with its dictionary loaded (about a second, on first use)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC

    return OpenCC("t2s")


CACHED_CHARS = 1000  # strings up to this long are memoised: passages and sentences, normalised again for every question


def to_simplified(text: str) -> str:
    """Traditional to simplified Chinese (other text unchanged)."""
    if len(text) <= CACHED_CHARS:
        return _to_simplified_cached(text)
    return _t2s().convert(text) if text else text


@lru_cache(maxsize=1 << 15)
def _to_simplified_cached(text: str) -> str:
    # OpenCC is pure Python: it was 80% of a hybrid search's time before this cache
    return _t2s().convert(text) if text else text


def normalise(text: str) -> str:
    """Folding used for matching: NFKC, simplified script, lower case."""
    if len(text) <= CACHED_CHARS:
        return _normalise_cached(text)
    return to_simplified(unicodedata.normalize("NFKC", text)).lower()


@lru_cache(maxsize=1 << 15)
def _normalise_cached(text: str) -> str:
    return to_simplified(unicodedata.normalize("NFKC", text)).lower()


def squash(text: str) -> str:
    """`normalise` with all white space removed (evidence matching)."""
    return _WS.sub("", normalise(text))
