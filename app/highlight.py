"""The answering sentence of a passage: sentences as records, and the one to highlight."""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

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


@lru_cache(maxsize=1024)
def _joined_norms(text: str) -> tuple[str, list[int]]:
    """The normalised sentences of `text` joined by NUL, and where each starts in the joined string."""
    norms = [s.norm for s in sentence_index(text)]
    starts, pos = [], 0
    for norm in norms:
        starts.append(pos)
        pos += len(norm) + 1
    return "\0".join(norms), starts


def sentences_with(text: str, words: Sequence[str]) -> np.ndarray:
    """Matrix (sentences of `text` x `words`): whether each sentence's normalised text holds each word
    (`word in sentence.norm`), found by searching all the sentences at once."""
    joined, starts = _joined_norms(text)
    out = np.zeros((len(starts), len(words)), bool)
    for j, w in enumerate(words):
        if not w or "\0" in w:
            out[:, j] = [w in s.norm for s in sentence_index(text)]
            continue
        i = joined.find(w)
        while i >= 0:
            k = bisect_right(starts, i) - 1
            out[k, j] = True
            nxt = starts[k + 1] if k + 1 < len(starts) else len(joined)  # the next sentence
            i = joined.find(w, nxt)
    return out


@lru_cache(maxsize=64)
def _question_words(query: Query) -> tuple[tuple[str, ...], frozenset[str]]:
    """The question's highlight tokens in a fixed order (sums of the same weights in a set's order,
    which changes with the hash seed, could break a tie either way) and its highlight bigrams: once
    a question, not once a passage."""
    return tuple(sorted(query.highlight_tokens)), frozenset(query.highlight_grams)


def sentence_scores(text: str, query: Query) -> list[float]:
    """How much each sentence of `text` (`sentence_index`) shares with the question: its tokens
    (weighing their length), then character bigrams, each weighted by how few of the passage's
    sentences have it, so that the passage's topic (a name in every sentence) counts less than
    what the question asks about it. For a question asking for a figure, a sentence holding one
    of the kind asked for gains `FIGURE_BONUS`."""
    q_tokens, q_grams = _question_words(query)
    index = sentence_index(text)
    n = len(index)
    found = [([t for t in q_tokens if t in s.norm], sorted(q_grams & s.grams)) for s in index]
    df_tok: dict[str, int] = {}
    df_gram: dict[str, int] = {}
    for toks, grams in found:
        for w in toks:
            df_tok[w] = df_tok.get(w, 0) + 1
        for w in grams:
            df_gram[w] = df_gram.get(w, 0) + 1
    w_tok = {t: len(t) * math.log1p(n / df) for t, df in df_tok.items()}
    w_gram = {g: 0.5 * math.log1p(n / df) for g, df in df_gram.items()}
    return [sum(map(w_tok.__getitem__, toks)) + sum(map(w_gram.__getitem__, grams))
            + (FIGURE_BONUS if query.figure and query.figure in s.figures else 0.0) for s, (toks, grams) in zip(index, found)]  # fmt: skip


def blended_highlight(text: str, lexical: list[float], sims: np.ndarray, weight: float) -> tuple[int, int]:
    """The sentence of `text` with the best `sentence_scores` (`lexical`) relative to the best, plus its
    vector similarity to the question (`sims`, one per sentence of `sentence_index(text)`) `weight`
    times its gap to the best: the lexical score alone misses the answering sentence of a paraphrase.
    Without a similarity for every sentence, the lexical choice (`highlight`)."""
    if not weight > 0 or len(sims) != len(sentence_index(text)) or np.isnan(sims).any():  # NaN: no weight
        return best_sentence(text, lexical)
    lex = np.asarray(lexical, np.float64)
    top = lex.max()
    score = (lex / top if top > 0 else lex) + weight * (sims - sims.max())
    best = sentence_index(text)[int(np.argmax(score))]
    return best.start, best.end


def best_sentence(text: str, scores: list[float]) -> tuple[int, int]:
    """The span of the sentence of `text` with the highest of `scores` (one per sentence), the first of equals."""
    best = sentence_index(text)[scores.index(max(scores))]
    return best.start, best.end


def highlight(text: str, query: Query) -> tuple[int, int]:
    """The span of the sentence of `text` sharing most with the question (`sentence_scores`)."""
    return best_sentence(text, sentence_scores(text, query))
