"""The answering sentence of a passage: sentences as records, and the one to highlight."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

from .figures import figure_kinds
from .query import Query, gram_set
from .textnorm import normalise

SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;\n]*")
FIGURE_BONUS = 4.0  # what a sentence holding a figure of the kind asked for gains in `highlight`


@dataclass(frozen=True)
class Sentence:
    """One sentence of a passage: its span in the passage, normalised text, bigrams, kinds of figure."""

    start: int
    end: int
    norm: str
    grams: frozenset[str]
    figures: frozenset[str]


def sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences of `text` (without trailing line breaks)."""
    out = []
    for m in SENTENCE.finditer(text):
        s, e = m.span()
        while e > s and text[e - 1] == "\n":
            e -= 1
        if e > s and not text[s:e].isspace():  # a blank line is no sentence to highlight
            out.append((s, e))
    return out or [(0, len(text))]


@lru_cache(maxsize=1024)  # about 50 KB a passage, 110 KB a merged one
def sentence_index(text: str) -> tuple[Sentence, ...]:
    """The sentences of `text` as records; memoised, passages come back question after question."""
    out = []
    for s, e in sentences(text):
        norm = normalise(text[s:e])
        out.append(Sentence(s, e, norm, gram_set(text[s:e]), figure_kinds(norm)))
    return tuple(out)


def highlight(text: str, query: Query) -> tuple[int, int]:
    """The sentence of `text` sharing most with the question: its tokens (weighing their length),
    then character bigrams, each weighted by how few of the passage's sentences have it, so
    that the passage's topic (a name in every sentence) counts less than what the question
    asks about it. For a question asking for a figure, a sentence holding one of the kind
    asked for gains `FIGURE_BONUS`."""
    q_tokens = query.highlight_tokens
    q_grams = query.highlight_grams
    index = sentence_index(text)
    n = len(index)
    found = [([t for t in q_tokens if t in s.norm], q_grams & s.grams) for s in index]
    w_tok = {t: len(t) * math.log1p(n / df) for t, df in Counter(chain.from_iterable(f[0] for f in found)).items()}
    w_gram = {g: 0.5 * math.log1p(n / df) for g, df in Counter(chain.from_iterable(f[1] for f in found)).items()}
    best, best_score = (0, 0), -1.0
    for s, (toks, grams) in zip(index, found):
        score = sum(map(w_tok.__getitem__, toks)) + sum(map(w_gram.__getitem__, grams))
        if query.figure in s.figures:
            score += FIGURE_BONUS
        if score > best_score:
            best, best_score = (s.start, s.end), score
    return best
