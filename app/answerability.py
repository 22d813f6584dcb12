"""Whether the passages found answer the question: keyword coverage, the figure check, the
city contrast, and the confidence they make with the dense similarity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .highlight import sentence_index
from .keyword import fold
from .query import Query
from .records import Hit
from .textnorm import normalise

if TYPE_CHECKING:
    from .index import SearchSettings


def coverage(query_tokens: list[str], text: str, idf: dict[str, float], unknown: float = 1.0) -> float:
    """IDF-weighted share of the question's tokens found in `text` (normalised).

    A token absent from `idf` (no passage has it) weighs `unknown`: pass the highest IDF
    so that a word the reports never use counts as the rarest, not the commonest.
    """
    return _covered(query_tokens, normalise(text), idf, unknown) if query_tokens else 0.0


def _covered(query_tokens: list[str], norm: str, idf: dict[str, float], unknown: float) -> float:
    total = sum(idf.get(t, unknown) for t in query_tokens)
    found = sum(idf.get(t, unknown) for t in query_tokens if t in norm)
    return found / total if total else 0.0


def figure_coverage(query_tokens: list[str], text: str, kind: str, idf: dict[str, float], unknown: float = 1.0) -> float:
    """`coverage` by the best sentence of `text` holding a figure of the `kind` asked for.

    A passage naming what the question asks about but giving no such figure next to it
    (the count of kindergartens asked, the passage mentioning kindergartens) covers nothing.
    """
    if not query_tokens:
        return 0.0
    return max((_covered(query_tokens, s.norm, idf, unknown) for s in sentence_index(text) if kind in s.figures), default=0.0)


def bigram_coverage(grams: frozenset[str], text: str) -> float:
    """Share of `grams` found in `text` (normalised, white space and punctuation removed).

    Substring tests rather than the passage's bigram set: passages are long, and memoising
    their bigram sets would hold tens of kilobytes for each passage ever compared."""
    if not grams:
        return 0.0
    t = fold(text)
    return sum(g in t for g in grams) / len(grams)


def city_contrast(grams: frozenset[str], named: list[str], others: list[str]) -> float:
    """How much better the best passage of other cities covers the question's bigrams than the
    best passage of the city it names: clearly positive when the fact is there, but for another city."""
    if not grams or not others:
        return 0.0
    return max(bigram_coverage(grams, t) for t in others) - max((bigram_coverage(grams, t) for t in named), default=0.0)


def confidence(query: Query, hits: list[Hit], others: list[str], idf: dict[str, float], max_idf: float, mode: str,
               settings: SearchSettings) -> float:  # fmt: skip
    """How likely the top passages answer the question: dense similarity plus keyword
    coverage, less the city contrast (`others`: passages of the cities the question does
    not name) beyond a margin.

    A question about a place none of the reports covers gets no confidence.
    """
    if not hits or (query.elsewhere and not query.cities):
        return -1.0
    content = query.content
    top = hits[:3]
    named = [h.chunk.text for h in top if h.doc.city in query.cities]  # the named city's best passages
    kind = query.figure if settings.figure_check else None
    if kind:  # the words asked about must stand next to a figure of the kind asked for
        cov = max(figure_coverage(content, h.chunk.text, kind, idf, max_idf) for h in top)
    else:
        cov = max(coverage(content, h.chunk.text, idf, max_idf) for h in top)
    if query.cities and not named:
        cov = 0.0
    dense = max(h.signals["dense"] for h in top) if mode != "keyword" else 0.8
    contrast = city_contrast(query.content_grams, named, others) if named else 0.0
    return dense + settings.w_coverage * cov - settings.w_contrast * max(0.0, contrast - settings.contrast_margin)
