"""Features of the learned reranker and answerability model (trust.py), computed from a
`search.Shortlist`: pure functions, no embedding, no file.

Per candidate passage: its fused, dense, word- and bigram-BM25 scores and their ranks, its
sentence-level similarity to the question (sentence vectors stored in the index), IDF-weighted
coverage of the question's words by the passage and by its best sentence, bigram coverage,
whether the highlighted sentence holds what the question asks for (a figure, a date, a person,
a place: regexes and jieba's part-of-speech tags), city and title agreement, and the coverage columns less the shortlist's highest. Per question: its
kind, its words' rarity, the adaptive dense weight and the hand-set confidence. The list
features describe the reranked first passage and its lead over the others.

The interrogatives below are the generic question words of Chinese and English, not a list
written after reading failures. Change any feature and bump FEATURE_VERSION: a model trained
on other features is refused (trust.py) until `reportqa train` rebuilds it.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np

from .figures import FIGURES
from .highlight import sentence_index, sentences_with
from .keyword import fold
from .query import content_bigrams, gram_set
from .textnorm import normalise

FEATURE_VERSION = 4  # 2: q_maxw relative to the index's highest IDF (was absolute: it grew with the index); 3: the list features describe the passage `reranked_order` puts first; 4: the coverage columns also less the shortlist's highest (`GAP_FEATURES`)

_Q_TYPES = {
    "who": re.compile(r"谁|哪位|哪些人|什么人|何人|\bwho\b|\bwhom\b"),
    "when": re.compile(r"何时|什么时候|哪一?年|几几年|哪一?天|何年|哪个时期|哪个朝代|什么年代|多少年|\bwhen\b|\bwhat year\b"),
    "where": re.compile(r"哪里|哪儿|何处|何地|在哪|什么地方|哪个(?:国家|城市|地区|省)|\bwhere\b"),
    "which": re.compile(r"哪个|哪些|哪一|哪种|哪项|哪所|哪家|哪部|哪|\bwhich\b"),
    "what": re.compile(r"什么|何|啥|\bwhat\b"),
    "why": re.compile(r"为什么|为何|原因|\bwhy\b"),
    "how": re.compile(r"如何|怎么|怎样|方式|方法|\bhow\b(?! (?:many|much))"),
    "yesno": re.compile(r"吗[？?]?$|是否|有没有|能否|会不会|是不是|\b(?:is|are|do|does|can)\b"),
}
_DATE = re.compile(
    r"\d{1,4}\s*年|\d{1,2}\s*月|\d{1,2}\s*日|[一二三四五六七八九十〇零]{2,4}年|[一二三四五六七八九十]+月|世纪|年代|朝|时期"
)
_NUM = re.compile(r"\d|[零〇一二两三四五六七八九十百千万亿]{2,}")
_KIND = {None: 0, "figure": 1, "money": 2, "rate": 3}

CAND_FEATURES = [
    "fused", "dense", "dense_max", "kw", "bg", "lr_fused", "lr_dense", "lr_kw", "lr_bg", "pos",
    "d_fused", "d_dense", "kw_rel", "bg_rel",
    "cov", "cov_sent", "bcov", "bcov_sent", "fig_cov", "top_tok", "top2_tok",
    "s_num", "s_date", "s_rate", "s_money", "s_person", "s_place", "s_org", "s_time",
    "m_who", "m_when", "m_where", "m_fig",
    "title_cov", "title_in_q", "city_named", "city_match", "elsewhere", "terms_cov",
    "log_len", "log_sent_len", "rows",
    "sbest_cov", "sbest2_cov", "sbest_bcov", "cov_nt", "bcov_nt", "n_sent",
    "ssim_max", "ssim_2nd", "ssim_hl", "d_ssim", "lr_ssim",
]  # fmt: skip
QUESTION_FEATURES = [
    "q_oov", "q_ntok", "q_maxw", "q_len", "q_english", "q_kind", "w_dense", "base_conf",
    "qt_who", "qt_when", "qt_where", "qt_which", "qt_what", "qt_why", "qt_how", "qt_yesno",
]  # fmt: skip
# The question-coverage columns again, less their highest in the shortlist (0 for the best passage):
# a tree then compares a passage with the others asked, not with every passage of the training data.
GAP_OF = ["cov", "cov_sent", "bcov", "bcov_sent", "sbest_cov", "sbest2_cov", "sbest_bcov", "cov_nt", "bcov_nt",
          "fig_cov", "terms_cov", "title_cov"]  # fmt: skip
GAP_FEATURES = [f"{c}_gap" for c in GAP_OF]
FEATURES = CAND_FEATURES + QUESTION_FEATURES + GAP_FEATURES
LIST_FEATURES = [
    "rr1", "rr2", "rr_margin", "rr_p1", "rr_mean", "n_cands",
    "t1_dense", "t1_cov", "t1_cov_sent", "t1_bcov", "t1_bcov_sent", "t1_fig_cov", "t1_top_tok", "t1_kw_rel", "t1_bg_rel",
    "t1_title_cov", "t1_title_in_q", "t1_city_match", "t1_lr_fused", "t1_m_any",
    "dense_top", "dense_gap12", "fused_gap12", "cov_max", "bcov_max", "city_miss", "same_doc12",
    "t1_sbest_cov", "t1_sbest_bcov", "t1_bcov_nt", "sbest_cov_max", "t1_ssim_max", "ssim_top", "t1_d_ssim",
] + QUESTION_FEATURES  # fmt: skip
_CF = {f: i for i, f in enumerate(CAND_FEATURES)}
_F = {f: i for i, f in enumerate(FEATURES)}
_Q = slice(len(CAND_FEATURES), len(CAND_FEATURES) + len(QUESTION_FEATURES))
_GAP_SRC, _GAP_DST = [_F[c] for c in GAP_OF], [_F[c] for c in GAP_FEATURES]


@lru_cache(maxsize=8192)
def _posseg_tags(sentence: str) -> tuple[bool, bool, bool, bool]:
    """(person, place, organisation, time) among jieba.posseg's tags of `sentence`."""
    import jieba.posseg as pseg

    tags = {w.flag for w in pseg.lcut(sentence[:200])}
    return ("nr" in tags or "nrfg" in tags or "nrt" in tags, "ns" in tags, "nt" in tags, "t" in tags)


@lru_cache(maxsize=8192)
def _sentence_flags(snorm: str) -> tuple[bool, ...]:
    """(number, date, rate, money, person, place, organisation, time) in a normalised sentence."""
    flags = (bool(_NUM.search(snorm)), bool(_DATE.search(snorm)), bool(FIGURES["rate"].search(snorm)),
             bool(FIGURES["money"].search(snorm)))  # fmt: skip
    return flags + _posseg_tags(snorm)


@lru_cache(maxsize=4096)
def _title_info(title: str) -> tuple[str, str, tuple[str, ...]]:
    ft = fold(title)
    return normalise(title), ft, tuple(ft[i : i + 2] for i in range(len(ft) - 1))


class _Idf:
    """An IDF table hashed by identity, so the question memo keys on the index it belongs to."""

    def __init__(self, idf: dict):
        self.idf = idf

    def __hash__(self):
        return id(self.idf)

    def __eq__(self, other):
        return isinstance(other, _Idf) and other.idf is self.idf


@lru_cache(maxsize=4096)
def _question_info(text: str, tokens: tuple[str, ...], content: tuple[str, ...], table: _Idf, max_idf: float) -> dict:
    idf = table.idf
    w = [idf.get(t, max_idf) for t in content]
    total = sum(w) or 1.0
    qn = normalise(text)
    top = sorted(zip(w, content), reverse=True)[:2]
    return dict(weights=w, total=total, oov=sum(wi for t, wi in zip(content, w) if t not in idf) / total,
                types={k: bool(p.search(qn)) for k, p in _Q_TYPES.items()}, top=[t for _, t in top],
                grams=content_bigrams(text), fq=fold(text), max_w=max(w, default=0.0) / max_idf if max_idf > 0 else 0.0)  # fmt: skip


@lru_cache(maxsize=4096)
def _with_figure(text: str, kind: str) -> np.ndarray:
    """The sentences (positions in `sentence_index(text)`) holding a figure of `kind` (read-only: shared)."""
    out = np.array([i for i, x in enumerate(sentence_index(text)) if kind in x.figures], np.int64)
    out.flags.writeable = False
    return out


def _gcov(grams: frozenset, text_grams: frozenset) -> float:
    return len(grams & text_grams) / len(grams) if grams else 0.0


def _cov(content, weights, total, norm) -> float:
    return sum([wi for t, wi in zip(content, weights) if t in norm]) / total if content else 0.0


def candidate_features(shortlist, idf: dict, max_idf: float) -> np.ndarray:
    """Matrix (candidates x FEATURES) of a `search.Shortlist`."""
    q = shortlist.query
    cands = shortlist.candidates
    content = tuple(q.content)
    qi = _question_info(q.text, q.tokens, content, _Idf(idf), max_idf)
    weights, total, kind, types, grams = qi["weights"], qi["total"], q.figure, qi["types"], qi["grams"]
    X = np.zeros((len(cands), len(FEATURES)), np.float32)
    if not cands:
        return X
    top_dense = max(c.dense for c in cands)
    top_fused = max(c.fused for c in cands)
    top_kw = max(c.keyword for c in cands) or 1.0
    top_bg = max(c.bigram for c in cands) or 1.0
    cities = q.cities
    tset = [normalise(t) for t in q.terms]
    wmap = dict(zip(content, weights))
    uniq, uw, wv = list(wmap), np.array(list(wmap.values()), np.float64), np.array(weights, np.float64)
    cols = [uniq.index(t) for t in content]  # each word of the question (repeats too) -> its column of `hits`
    titles: dict[str, tuple] = {}
    for j, c in enumerate(cands):
        text = c.hit.chunk.text
        norm = normalise(text)
        s, e = c.hit.highlight
        sent = text[s:e] if e > s else text
        snorm = normalise(sent)
        index = sentence_index(text)
        # which of the question's (distinct) words each sentence has, and their weight
        hits = sentences_with(text, uniq)
        sc = hits @ uw / total
        # `answerability.figure_coverage`: the best sentence holding a figure of the kind asked for
        # (it counts a word the question repeats each time)
        fig = -1.0
        if kind:
            with_fig = _with_figure(text, kind)
            sf = sc if len(uniq) == len(content) else hits[:, cols] @ wv / total
            fig = float(sf[with_fig].max()) if len(with_fig) else 0.0
        s_num, s_date, s_rate, s_money, per, pla, org, tim = _sentence_flags(snorm)
        tl = titles.get(c.hit.doc.title)
        if tl is None:  # what depends on the report's title only, once per report
            tnorm, ft, tg = _title_info(c.hit.doc.title)
            # what the question asks beyond the passage's topic: its words and bigrams not in the title
            nt = [(t, wi) for t, wi in zip(content, weights) if t not in tnorm]
            tl = titles[c.hit.doc.title] = (_cov(content, weights, total, tnorm), (sum(g in qi["fq"] for g in tg) / len(tg)) if tg else 0.0,
                                            nt, sum(wi for _, wi in nt), frozenset(g for g in grams if g not in ft))  # fmt: skip
        t_cov, t_in_q, nt, tot_nt, g_nt = tl
        pg, sg = gram_set(text), gram_set(sent)
        r_fused, r_dense, r_kw, r_bg = c.ranks
        row = [
            c.fused, c.dense, c.dense_max, c.keyword, c.bigram,
            math.log1p(r_fused), math.log1p(r_dense), math.log1p(r_kw), math.log1p(r_bg), c.pos,
            c.fused - top_fused, c.dense - top_dense, c.keyword / top_kw, c.bigram / top_bg,
            _cov(content, weights, total, norm), _cov(content, weights, total, snorm), _gcov(grams, pg), _gcov(grams, sg),
            fig, float(bool(qi["top"]) and qi["top"][0] in norm), float(len(qi["top"]) > 1 and qi["top"][1] in norm),
            s_num, s_date, s_rate, s_money, per, pla, org, tim,
            float(types["who"] and per), float(types["when"] and (s_date or tim)), float(types["where"] and pla),
            float(bool(kind) and fig > 0),
            t_cov, t_in_q,
            float(bool(cities)), (1.0 if c.hit.doc.city in cities else 0.0) if cities else -1.0, float(q.elsewhere),
            (sum(t in norm for t in tset) / len(tset)) if tset else -1.0,
            math.log1p(len(text)), math.log1p(e - s), len(c.rows),
        ]  # fmt: skip
        # the best single sentence, and pair of adjacent sentences, by the question's words
        pair = (hits[:-1] | hits[1:]) @ uw / total if len(index) > 1 else sc
        sb = max([len(grams & x.grams) for x in index]) / len(grams) if grams else 0.0
        row += [float(sc.max()) if len(sc) else 0.0, float(pair.max()) if len(pair) else 0.0, sb,
                (sum([wi for t, wi in nt if t in norm]) / tot_nt) if tot_nt else -1.0,
                _gcov(g_nt, pg) if g_nt else -1.0, len(index)]  # fmt: skip
        if len(c.sentence_sims):
            ss = np.sort(c.sentence_sims)[::-1]
            h = c.sentence_hl
            row += [ss[0], ss[1] if len(ss) > 1 else ss[0], c.sentence_sims[h] if h >= 0 else ss[0], 0.0, 0.0]
        else:
            row += [np.nan] * 5
        X[j, : len(CAND_FEATURES)] = row
    c_ss, c_d, c_r = _CF["ssim_max"], _CF["d_ssim"], _CF["lr_ssim"]
    if not np.isnan(X[:, c_ss]).all():
        X[:, c_d] = X[:, c_ss] - np.nanmax(X[:, c_ss])
        r = np.argsort(np.argsort(-np.nan_to_num(X[:, c_ss], nan=-9), kind="stable"), kind="stable")
        X[:, c_r] = np.log1p(r)
    else:
        X[:, c_d] = X[:, c_r] = np.nan
    qrow = [qi["oov"], len(content), qi["max_w"], len(q.text), float(bool(q.terms)), _KIND[kind], shortlist.w_dense,
            shortlist.base_conf] + [float(types[k]) for k in ("who", "when", "where", "which", "what", "why", "how", "yesno")]  # fmt: skip
    X[:, _Q] = qrow
    V = X[:, _GAP_SRC]
    X[:, _GAP_DST] = V - V.max(axis=0)
    return X


def reranked_order(X: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """The shortlist's order after reranking: by the reranker's score, the passages of the cities the
    question names first when it names one the shortlist has (the fused order's `city_first` rule, kept
    by the learned path). Ties keep the fused order."""
    o = np.argsort(-rr, kind="stable")
    if len(o):
        match = X[o, _F["city_match"]]  # 1: a named city's passage, 0: another city's, -1: no city named
        named = match == 1.0
        if named.any() and not named.all():
            o = np.concatenate([o[named], o[~named]])
    return o


def list_features(X: np.ndarray, rr: np.ndarray, doc_ids: list[str] | None = None) -> np.ndarray:
    """One row (LIST_FEATURES) for a question: `X` its candidate features, `rr` the reranker's
    scores in the same order. Describes the reranked first passage and the list around it."""
    out = np.zeros(len(LIST_FEATURES), np.float32)
    if not len(X):
        out[:] = np.nan
        return out
    o = reranked_order(X, rr)
    a = X[o[0]]
    r1 = float(rr[o[0]])
    r2 = float(rr[o[1]]) if len(o) > 1 else r1 - 5.0
    p = np.exp(rr - rr.max())
    ds = np.sort(X[:, _F["dense"]])[::-1]
    fs = np.sort(X[:, _F["fused"]])[::-1]
    m_any = max(a[_F["m_who"]], a[_F["m_when"]], a[_F["m_where"]], a[_F["m_fig"]])
    ssim = X[:, _F["ssim_max"]]
    vals = [
        r1, r2, r1 - r2, float(p[o[0]] / p.sum()), float(rr.mean()), len(X),
        a[_F["dense"]], a[_F["cov"]], a[_F["cov_sent"]], a[_F["bcov"]], a[_F["bcov_sent"]], a[_F["fig_cov"]],
        a[_F["top_tok"]], a[_F["kw_rel"]], a[_F["bg_rel"]], a[_F["title_cov"]], a[_F["title_in_q"]], a[_F["city_match"]],
        a[_F["lr_fused"]], m_any,
        ds[0], ds[0] - (ds[1] if len(ds) > 1 else ds[0] - 0.1), fs[0] - (fs[1] if len(fs) > 1 else 0.0),
        X[:, _F["cov"]].max(), X[:, _F["bcov"]].max(), float(a[_F["city_match"]] == 0.0),
        float(doc_ids is not None and len(o) > 1 and doc_ids[o[0]] == doc_ids[o[1]]),
        a[_F["sbest_cov"]], a[_F["sbest_bcov"]], a[_F["bcov_nt"]], X[:, _F["sbest_cov"]].max(),
        a[_F["ssim_max"]], np.nanmax(ssim) if not np.isnan(ssim).all() else np.nan, a[_F["d_ssim"]],
    ]  # fmt: skip
    out[: len(vals)] = vals
    out[len(vals) :] = a[_Q]
    return out
