"""Keyword side: jieba search-mode tokens (and character bigrams) on simplified, folded text, scored with BM25 (bm25s)."""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from .textnorm import jieba_module as _jieba
from .textnorm import normalise
from .words import STOPWORDS

_KEEP = re.compile(r"[\w\u3400-\u9fff]")


def tokenize(text: str) -> list[str]:
    """Search-mode tokens of the simplified, lower-cased text, without stop words or punctuation."""
    if len(text) <= 300:  # questions: a search tokenises its question once per passage it highlights
        return list(_tokens_cached(text))
    return _tokens(text)


def _tokens(text: str) -> list[str]:
    toks = _jieba().lcut_for_search(normalise(text))
    return [t for t in (t.strip() for t in toks) if t and _KEEP.search(t) and t not in STOPWORDS]


@lru_cache(maxsize=4096)
def _tokens_cached(text: str) -> tuple[str, ...]:
    return tuple(_tokens(text))


def fold(text: str) -> str:
    """The simplified, lower-cased text without punctuation or spaces: what bigrams are taken from."""
    return re.sub(r"\W+", "", normalise(text))


def bigrams(text: str) -> list[str]:
    """Character bigrams of `fold(text)`: a second keyword signal that does not depend on
    jieba's word boundaries."""
    t = fold(text)
    return [t[i : i + 2] for i in range(len(t) - 1)]


class KeywordIndex:
    """BM25 over token lists; rows line up with the chunk list of the owning index."""

    def __init__(self, k1: float = 1.2, b: float = 0.75):
        import bm25s

        self.bm25 = bm25s.BM25(k1=k1, b=b)
        self.n = 0
        self.idf: dict[str, float] = {}

    def index(self, token_lists: list[list[str]]) -> None:
        from collections import Counter

        self.n = len(token_lists)
        if not token_lists:
            self.idf = {}
            return
        df = Counter(t for toks in token_lists for t in set(toks))
        self.idf = {t: math.log(1 + (self.n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.bm25.index([t or ["\u2205"] for t in token_lists], show_progress=False)

    def scores(self, tokens: list[str]) -> np.ndarray:
        if not self.n:
            return np.zeros(0, np.float32)
        vocab = self.bm25.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known or not self.n:
            return np.zeros(self.n, np.float32)
        return np.asarray(self.bm25.get_scores(known), dtype=np.float32)

    def save(self, folder: Path, idf: bool = True) -> None:
        """Write the index; `idf=False` leaves out the IDF table (only the word index's is used)."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        if self.n:
            self.bm25.save(str(folder), show_progress=False)
        if idf:
            (Path(folder) / "idf.json").write_text(json.dumps(self.idf, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, n: int) -> KeywordIndex:
        import bm25s

        self = cls.__new__(cls)
        self.bm25 = bm25s.BM25.load(str(folder)) if n else bm25s.BM25()
        self.n = n
        path = Path(folder) / "idf.json"
        self.idf = json.loads(path.read_text("utf-8")) if path.exists() else {}
        return self
