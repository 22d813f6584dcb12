"""Pure functions of retrieval: score fusion, de-duplication of overlapping passages,
and choosing the answering sentence to highlight."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from itertools import chain

import numpy as np

from .keyword import bigrams, fold, tokenize
from .records import Chunk
from .textnorm import normalise, to_simplified

SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;\n]*")


def minmax(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi - lo < 1e-9 else (x - lo) / (hi - lo)


def ranks(scores: np.ndarray) -> np.ndarray:
    """Rank of each entry (0 = best)."""
    order = np.argsort(-scores, kind="stable")
    r = np.empty_like(order)
    r[order] = np.arange(len(order))
    return r


def fuse(dense: np.ndarray, keyword: np.ndarray, method: str = "rrf", w_dense: float = 0.5, rrf_k: int = 60) -> np.ndarray:
    """Combine two score vectors over the same rows.

    `rrf`: weighted reciprocal rank; `score`: weighted min-max normalised scores.
    Rows with no keyword match get no keyword credit either way.
    """
    if method == "rrf":
        d = 1.0 / (rrf_k + ranks(dense) + 1)
        k = np.where(keyword > 0, 1.0 / (rrf_k + ranks(keyword) + 1), 0.0)
        return w_dense * d + (1 - w_dense) * k
    if method == "score":
        return w_dense * minmax(dense) + (1 - w_dense) * minmax(keyword)
    raise ValueError(f"unknown fusion method {method!r}")


def top_rows(x: np.ndarray, k: int, positive: bool = True) -> np.ndarray:
    """Indices of the `k` highest entries of `x` (only those above 0 if `positive`)."""
    k = min(k, len(x))
    if k <= 0:
        return np.zeros(0, np.int64)
    rows = np.argpartition(-x, k - 1)[:k]
    return rows[x[rows] > 0] if positive else rows


def ranked(scores: np.ndarray, m: int) -> np.ndarray:
    """Rows of the `m` best scores, best first, ties in row order: the head of a stable full
    sort, without sorting every row of a large index."""
    if m >= len(scores):
        return np.argsort(-scores, kind="stable")
    if m <= 0:
        return np.zeros(0, np.int64)
    kth = np.partition(-scores, m - 1)[m - 1]
    better = np.flatnonzero(-scores < kth)
    better = better[np.argsort(-scores[better], kind="stable")]
    tied = np.flatnonzero(-scores == kth)[: m - len(better)]  # in row order, as a stable sort leaves them
    return np.concatenate([better, tied])


def dense_weight(coverage: float, w_max: float, w_min: float) -> float:
    """Weight of the dense score: `w_max` when the best keyword passage holds none of the
    question's words, falling linearly to `w_min` when it holds them all."""
    return w_max - (w_max - w_min) * min(max(coverage, 0.0), 1.0)


def fuse_candidates(dense: np.ndarray, keyword: np.ndarray, bigram: np.ndarray, w_dense: float, w_bigram: float) -> np.ndarray:
    """Min-max normalised fusion over candidate rows only (the union of each signal's best):
    the scale of each signal is then the same whatever the size of the corpus.
    The keyword side mixes word BM25 and character-bigram BM25 by `w_bigram`."""
    kw = (1 - w_bigram) * minmax(keyword) + w_bigram * minmax(bigram)
    return w_dense * minmax(dense) + (1 - w_dense) * kw


def distinct(order: list[int], chunks: list[Chunk], k: int, merge_up_to: int = 0) -> list[list[int]]:
    """Group the best rows of `order` into at most `k` passages that never overlap.

    A row overlapping an earlier pick of the same report is merged into it while the
    merged stretch stays within `merge_up_to` characters, else skipped: the same text
    is never shown twice, and an answer in the overlapping neighbour is not lost.
    """
    groups: list[list[int]] = []
    spans: list[tuple[str, int, int]] = []
    for i in order:
        c = chunks[i]
        hit = [g for g, (d, s, e) in enumerate(spans) if d == c.doc_id and c.start < e and s < c.end]
        if hit:
            g = hit[0]
            d, s, e = spans[g]
            if len(hit) == 1 and max(e, c.end) - min(s, c.start) <= merge_up_to:
                groups[g].append(i)
                spans[g] = (d, min(s, c.start), max(e, c.end))
            continue
        if len(groups) == k:
            break
        groups.append([i])
        spans.append((c.doc_id, c.start, c.end))
    return groups


def merged_chunk(rows: list[int], chunks: list[Chunk], doc_text: str) -> Chunk:
    """One passage covering the chunks in `rows` (contiguous after merging)."""
    if len(rows) == 1:
        return chunks[rows[0]]
    parts = sorted((chunks[i] for i in rows), key=lambda c: c.start)
    start, end = parts[0].start, max(c.end for c in parts)
    cid = f"{parts[0].doc_id}#" + "+".join(str(c.n) for c in parts)
    return Chunk(cid, parts[0].doc_id, parts[0].n, doc_text[start:end], start, end)


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


@lru_cache(maxsize=1 << 15)
def _grams(text: str) -> frozenset[str]:
    # memoised: the same passages' sentences come back question after question
    return frozenset(bigrams(text))


FIGURE_BONUS = 4.0  # what a sentence holding a figure of the kind asked for gains in `highlight`


def highlight(text: str, query: str, terms: list[str] | None = None) -> tuple[int, int]:
    """The sentence of `text` sharing most with the question: its tokens (weighing their length),
    then character bigrams, each weighted by how few of the passage's sentences have it, so
    that the passage's topic (a name in every sentence) counts less than what the question
    asks about it. For a question asking for a figure, a sentence holding one of the kind
    asked for gains `FIGURE_BONUS`."""
    q_tokens = set(tokenize(query)) | set(terms or [])
    q_grams = set(_grams(query))
    for t in terms or []:
        q_grams |= _grams(t)
    kind = asked_figure(query)
    index = _sentence_index(text)
    n = len(index)
    found = [([t for t in q_tokens if t in norm], q_grams & grams) for _, _, norm, grams, _ in index]
    w_tok = {t: len(t) * math.log1p(n / df) for t, df in Counter(chain.from_iterable(f[0] for f in found)).items()}
    w_gram = {g: 0.5 * math.log1p(n / df) for g, df in Counter(chain.from_iterable(f[1] for f in found)).items()}
    best, best_score = (0, 0), -1.0
    for (s, e, _, _, figures), (toks, grams) in zip(index, found):
        score = sum(map(w_tok.__getitem__, toks)) + sum(map(w_gram.__getitem__, grams))
        if kind in figures:
            score += FIGURE_BONUS
        if score > best_score:
            best, best_score = (s, e), score
    return best


@lru_cache(maxsize=1024)  # about 50 KB a passage, 110 KB a merged one
def _sentence_index(text: str) -> tuple[tuple[int, int, str, frozenset[str], frozenset[str]], ...]:
    """Each sentence's span, normalised text, bigrams and kinds of figure (see `asked_figure`);
    memoised like `_grams`."""
    out = []
    for s, e in sentences(text):
        norm = normalise(text[s:e])
        out.append((s, e, norm, _grams(text[s:e]), frozenset(k for k, p in _FIGURES.items() if p.search(norm))))
    return tuple(out)


# Cities: the corpus's own and their spellings; others that a question might name instead.
CITY_ALIASES = {
    "长治": ("长治", "長治", "changzhi"),
    "忻州": ("忻州", "xinzhou"),
    "吕梁": ("吕梁", "呂梁", "lüliang", "luliang", "lvliang"),
}
OTHER_PLACES = (
    "太原", "大同", "阳泉", "陽泉", "晋城", "晉城", "朔州", "晋中", "晉中", "运城", "運城", "临汾", "臨汾",
    "上海", "广州", "廣州", "深圳", "天津", "重庆", "重慶", "成都", "武汉", "武漢", "杭州", "南京", "西安",
    "taiyuan", "datong", "yangquan", "jincheng", "shuozhou", "jinzhong", "yuncheng", "linfen",
    "shanghai", "guangzhou", "shenzhen", "tianjin", "chongqing", "chengdu", "wuhan", "hangzhou", "nanjing", "xi'an",
)  # fmt: skip


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


_CITY_NAMES = tuple(n for ns in CITY_ALIASES.values() for n in ns)


def is_place_token(token: str) -> bool:
    """A token naming a corpus city, or a piece of one such as jieba's `州市` of `忻州市`."""
    return any(n in token or token in n + "市" for n in _CITY_NAMES)


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


# What kind of figure a question asks for: a rate's value (多少, 几 or 百分之几 right after the
# rate word: not 率领 "lead", not "what does the rate depend on") is answered by a percentage,
# fraction or ratio, a sum of money by an amount, any other "how many" by a number.
_RATE_WORD = r"(?:率|比例|比率|比重|占比|百分比)"
_ASKS_RATE = re.compile(
    rf"{_RATE_WORD}(?:大约|约|大概)?(?:是|为|达|达到|有)?(?:多少|几|百分之几|多高|多大)|多少的?{_RATE_WORD}|百分之几|百分之多少|几成"
    r"|\bwhat (?:percentage|percent|share|proportion|fraction) of\b"
    r"|\bwhat(?: is|'s| was| are| were) (?:the )?(?:[\w'-]+ ){0,5}(?:rate|ratio|share|proportion|percentage)\b",
    re.I,
)  # fmt: skip
_ASKS_MONEY = re.compile(
    r"多少(?:钱|[万亿]?(?:美|港|日|欧)?元(?![素件]))|(?:金额|费用|经费|学费|资金)(?:是|为|有|达|共)?多少"
    r"|\bhow much money\b|\bhow many yuan\b",
    re.I,
)  # fmt: skip
_ASKS_FIGURE = re.compile(
    r"多少|(?<![这近前些好十])几(?![乎何经度])|(?<![许很诸众])多(?:大(?!程度)|高|长|久|远)|\bhow (?:many|much|long|big|large|old)\b",
    re.I,
)  # fmt: skip
_NUMBER = r"(?:\d[\d.,]*|[零〇一二两三四五六七八九十百千万亿]+)"
_FIGURES = {
    "rate": re.compile(r"\d\s*[%‰]|[百千]?分之|\d\s*成|[一二两三四五六七八九]成|\d\s*[:∶比]\s*\d|一半|过半|半数"
                       r"|率(?:为|是|达到?|约为?|仅为?|超过)?\s*\d"),
    "money": re.compile(rf"{_NUMBER}\s*[余多几]?\s*[十百千万亿]*\s*[余多]?\s*(?:元|美元|港元|日元|欧元|韩元|英镑|镑|美金|港币|新台币)"
                        r"|(?:人民币|\$|¥)\s*\d|\d\s*[余多]?\s*[万亿](?![名人所个家项位])"),
    "figure": re.compile(r"\d|第[零〇一二两三四五六七八九十百]+|数[十百千万]|几十|十几"
                         r"|[零〇一二两三四五六七八九十百千万]+\s*[余多几]?\s*[所个名人位项家批次场期部种门倍天年元万亿岁座条级户亩米台辆册本届节周月]"),
}  # fmt: skip


@lru_cache(maxsize=4096)
def asked_figure(question: str) -> str | None:
    """`rate`, `money` or `figure` when the question asks for one (of the question as written,
    simplified), else None."""
    q = normalise(question)
    for kind, pattern in (("rate", _ASKS_RATE), ("money", _ASKS_MONEY), ("figure", _ASKS_FIGURE)):
        if pattern.search(q):
            return kind
    return None


def figure_coverage(query_tokens: list[str], text: str, kind: str, idf: dict[str, float], unknown: float = 1.0) -> float:
    """`coverage` by the best sentence of `text` holding a figure of the `kind` asked for.

    A passage naming what the question asks about but giving no such figure next to it
    (the count of kindergartens asked, the passage mentioning kindergartens) covers nothing.
    """
    if not query_tokens:
        return 0.0
    return max((_covered(query_tokens, norm, idf, unknown) for _, _, norm, _, kinds in _sentence_index(text) if kind in kinds),
               default=0.0)  # fmt: skip


# Removed before comparing a question's characters with passages: they ask, they do not say what about.
QUESTION_WORDS = (
    "是多少", "多少", "是什么", "什么", "是谁", "谁", "哪些", "哪个", "哪里", "哪", "几", "吗", "呢", "吧",
    "有没有", "是否", "怎么样", "怎样", "怎么", "如何", "请问", "一共", "大概", "啥", "的", "了", "有", "是", "全市", "市",
)  # fmt: skip
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")


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


def bigram_coverage(grams: frozenset[str], text: str) -> float:
    """Share of `grams` found in `text` (normalised, white space and punctuation removed).

    Substring tests rather than `_grams(text)`: passages are long, and memoising their bigram
    sets would hold tens of kilobytes for each passage ever compared."""
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
