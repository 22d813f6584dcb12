"""A question parsed once, at the door, into a `Query` that every step of the search reads:
normalised text, tokens, bigrams, cities named, the kind of figure asked, the translation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from .figures import asked_figure
from .keyword import bigrams, tokenize
from .textnorm import normalise, to_simplified
from .words import CITY_ALIASES, CITY_NAMES, OTHER_PLACES, QUESTION_WORDS

_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")


@dataclass(frozen=True)
class Query:
    """One question as the search sees it."""

    text: str  # as asked
    terms: tuple[str, ...]  # Chinese terms of an English question (CC-CEDICT), else empty
    dense_text: str  # what is embedded: the question, with its terms appended when translated
    words: tuple[str, ...]  # keyword tokens of the question (jieba search mode, no stop words)
    tokens: tuple[str, ...]  # ... then the terms
    grams: tuple[str, ...]  # character bigrams of the question, then of each term (bigram BM25)
    cities: frozenset[str]  # corpus cities named (simplified)
    elsewhere: bool  # names a place none of the reports is about
    figure: str | None  # the kind of figure asked: rate, money, figure (see `figures`)
    english: tuple[str, ...] = ()  # stemmed English words of an English question, for the gloss index

    @property
    def content(self) -> list[str]:
        """Tokens saying what is asked about: the tokens without city names."""
        return [t for t in self.tokens if not is_place_token(t)]

    @property
    def highlight_tokens(self) -> set[str]:
        """Words and terms, for choosing the answering sentence."""
        return set(self.words) | set(self.terms)

    @property
    def highlight_grams(self) -> set[str]:
        """Bigrams of the question and of each term, for choosing the answering sentence."""
        out = set(gram_set(self.text))
        for t in self.terms:
            out |= gram_set(t)
        return out

    @property
    def content_grams(self) -> frozenset[str]:
        return content_bigrams(self.text)


def parse_query(text: str, vocabulary: Mapping[str, float] | None = None, known_cities: Iterable[str] = (), *,
                translate: bool = True, dense_terms: bool = True, terms: Iterable[str] | None = None) -> Query:  # fmt: skip
    """Parse `text`. English questions get Chinese terms found in `vocabulary` (word -> IDF)
    unless `terms` are given; `known_cities` are the cities of the indexed reports."""
    from .gloss import english_words
    from .translate import is_english
    from .translate import translate as to_chinese

    english = is_english(text)
    if terms is None:
        terms = to_chinese(text, vocabulary or {}) if translate and english else []
    terms = tuple(terms)
    cities, elsewhere = mentioned_cities(text, known_cities)
    words = tuple(tokenize(text))
    return Query(
        text=text,
        terms=terms,
        dense_text=f"{text} {' '.join(terms)}" if terms and dense_terms else text,
        words=words,
        tokens=words + terms,
        grams=tuple(bigrams(text)) + tuple(g for t in terms for g in bigrams(t)),
        cities=frozenset(cities),
        elsewhere=elsewhere,
        figure=asked_figure(text),
        english=tuple(english_words(text)) if english else (),
    )


@lru_cache(maxsize=1 << 15)
def gram_set(text: str) -> frozenset[str]:
    """The set of character bigrams of `text`; memoised: the same passages' sentences come back
    question after question."""
    return frozenset(bigrams(text))


def mentioned_cities(question: str, known: Iterable[str] = ()) -> tuple[set[str], bool]:
    """Corpus cities a question names (simplified names), and whether it names another place.

    `known` are the cities of the indexed reports: a report added about another city makes
    that city one of ours (by its simplified name).
    """
    q = question.lower().replace("u\u0308", "ü")
    ours = {city for city, names in CITY_ALIASES.items() if any(n in q for n in names)}
    extra = set()
    if known:
        qs = to_simplified(q)
        extra = {c for c in known if c and c not in CITY_ALIASES and c in qs}
    other = any(p in q for p in OTHER_PLACES if not extra or to_simplified(p) not in extra)
    return ours | extra, other


def is_place_token(token: str) -> bool:
    """A token naming a corpus city, or a piece of one such as jieba's `州市` of `忻州市`."""
    return any(n in token or token in n + "市" for n in CITY_NAMES)


@lru_cache(maxsize=4096)
def content_bigrams(question: str) -> frozenset[str]:
    """Character bigrams of what a question is about: its Chinese text (simplified) without
    city names and question words; digits, Latin letters and punctuation split it."""
    s = normalise(question)
    for names in CITY_ALIASES.values():
        for n in names:
            s = s.replace(normalise(n), " ")
    for w in QUESTION_WORDS:
        s = s.replace(w, " ")
    return frozenset(run[i : i + 2] for run in _CJK_RUN.findall(s) for i in range(len(run) - 1))
