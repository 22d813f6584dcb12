"""The search path, as named steps over a loaded `ReportIndex`:

1. `candidates`: dense similarity, word BM25 and character-bigram BM25 of the best rows a search
   may return (the row mask of the city and report filters), from the index's store (`stores.py`:
   FAISS and bm25s by default, or a Milvus collection);
2. `fuse_scores`: the signals fused into one score (adaptive min-max over the candidates);
3. `order_rows`: rows ranked, those of a city the question names first;
4. `passages`: overlapping rows merged into passages, each with its answering sentence;
5. `answerability.confidence`: whether those passages answer the question.

The question is parsed once into a `Query` (query.py) that every step reads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import fusion as F
from .answerability import confidence, coverage
from .highlight import best_sentence, blended_highlight, highlight, sentence_index, sentence_scores
from .query import Query
from .records import Answer, Hit

if TYPE_CHECKING:
    from .index import ReportIndex, SearchSettings

# The hand-set confidence's threshold: `calibrate()` on eval/questions.jsonl (0.8976), for the
# keyword and dense baselines and for an index searched without the learned model.
HAND_THRESHOLD = 0.898


@dataclass
class Signals:
    """Per-row scores of one question: -1 dense where not computed, 0 keyword where no match."""

    dense: np.ndarray
    keyword: np.ndarray
    bigram: np.ndarray | None = None
    gloss: np.ndarray | None = None  # English questions: BM25 of their words over the passages' glosses
    rows: np.ndarray | None = None  # the fusion's candidate rows (hybrid mode)
    w_dense: float = 1.0  # the dense weight the fusion used


def candidates(index: ReportIndex, query: Query, qvec: np.ndarray | None, mode: str, settings: SearchSettings,
               top_k: int, mask: np.ndarray | None) -> Signals:  # fmt: skip
    """Dense similarity of the best rows and keyword scores of the candidate rows, within `mask`,
    read from the index's store (`stores.store_candidates`: FAISS and bm25s, or Milvus)."""
    from .stores import store_candidates

    return store_candidates(index.store, query, qvec, mode, settings, top_k, mask)


def fuse_scores(index: ReportIndex, query: Query, qvec: np.ndarray | None, sig: Signals, mode: str,
                settings: SearchSettings) -> np.ndarray:  # fmt: skip
    """One score a row: a single signal in the dense and keyword modes, else their fusion."""
    if mode == "dense":
        return sig.dense
    if mode == "keyword":
        return sig.keyword
    # Min-max over the candidates (dense best, keyword best, bigram best), -1 elsewhere;
    # candidates the dense search did not return get their exact similarity in `sig.dense`.
    dense, kw, bg = sig.dense, sig.keyword, sig.bigram
    cand = dense > -1.0
    cand[F.top_rows(kw, settings.candidates)] = True
    cand[F.top_rows(bg, settings.candidates)] = True
    if sig.gloss is not None:
        cand[F.top_rows(sig.gloss, settings.candidates)] = True
    rows = np.flatnonzero(cand)
    dense[rows] = index.vectors[rows] @ qvec
    best = int(np.argmax(kw))
    cov = coverage(list(query.tokens), index.chunks[best].text, index.keyword.idf) if kw[best] > 0 else 0.0
    w = F.dense_weight(cov, settings.w_dense_max, settings.w_dense_min)
    sig.rows, sig.w_dense = rows, w
    fused = np.full(len(dense), -1.0, np.float32)
    gl = sig.gloss[rows] if sig.gloss is not None else None
    fused[rows] = F.fuse_candidates(dense[rows], kw[rows], bg[rows], w, settings.w_bigram, gl, settings.w_gloss)
    return fused


def order_rows(index: ReportIndex, query: Query, fused: np.ndarray, mode: str, settings: SearchSettings, top_k: int,
               mask: np.ndarray | None) -> tuple[list[int], np.ndarray]:  # fmt: skip
    """The best rows within `mask`, best first (those of a city the question names first in the
    hybrid mode), and the best rows of the cities it does not name (for the city contrast)."""
    m = max(settings.candidates, 4 * top_k)  # rows `distinct` may need for `top_k` passages
    pool = np.flatnonzero(mask) if mask is not None else None
    others = np.zeros(0, np.int64)
    if query.cities:  # rows of the cities the question names, best first, then the others
        named_mask = np.zeros(len(fused), bool)
        for c in query.cities:
            named_mask |= index.chunk_city == index.city_codes.get(c, -1)
        if pool is None:
            named, rest = np.flatnonzero(named_mask), np.flatnonzero(~named_mask)
        else:
            named, rest = pool[named_mask[pool]], pool[~named_mask[pool]]
        others = rest[F.ranked(fused[rest], m)]
        if settings.city_first and mode == "hybrid":
            return np.concatenate([named[F.ranked(fused[named], m)], others])[:m].tolist(), others
    if pool is None:
        return F.ranked(fused, m).tolist(), others
    return pool[F.ranked(fused[pool], m)].tolist(), others


def passages(index: ReportIndex, query: Query, order: list[int], fused: np.ndarray, sig: Signals, top_k: int,
             settings: SearchSettings) -> list[Hit]:  # fmt: skip
    """Up to `top_k` passages from the ranked rows, overlapping neighbours merged, each highlighted."""
    merge = 2 * index.build_settings.chunk_size if settings.merge_overlaps else 0
    hits = []
    for rows in F.distinct(order, index.chunks, top_k, merge):
        i = rows[0]
        doc = index.docs[index.chunks[i].doc_id]
        c = F.merged_chunk(rows, index.chunks, doc.text)
        hits.append(Hit(c, doc, float(fused[i]), highlight(c.text, query),
                        {"dense": float(sig.dense[i]), "keyword": float(sig.keyword[i])}))  # fmt: skip
    return hits


@dataclass
class Candidate:
    """A passage in the shortlist the reranker reorders, with the signals of its best row."""

    hit: Hit
    rows: list[int]  # the chunk rows merged into it, best first
    pos: int  # its place in the fused (city-first) order
    fused: float
    dense: float
    dense_max: float  # the best dense similarity of its rows
    keyword: float
    bigram: float
    ranks: tuple[
        int, int, int, int
    ]  # 0-based ranks of fused, dense, word and bigram scores among the fusion's candidates (99: none)
    sentence_sims: np.ndarray  # the question's similarity to each of its sentences (empty without sentence vectors)
    sentence_hl: int  # which of them is the highlighted one (-1: none matches)
    lexical: list[float]  # `highlight.sentence_scores` of its text (what chose its highlight)


@dataclass
class Shortlist:
    """Everything the reranker and the answerability model read about one question."""

    query: Query
    candidates: list[Candidate]
    w_dense: float
    base_conf: float  # the hand-set confidence of the fused order (`answerability.confidence`)


def _ranks_among(x: np.ndarray, rows: np.ndarray, positive: bool = False) -> dict[int, int]:
    order = rows[np.argsort(-x[rows], kind="stable")]
    if positive:
        order = order[x[order] > 0]
    return {int(r): i for i, r in enumerate(order)}


def _sentence_sims(index: ReportIndex, rows: list[int], passage_start: int, hl: tuple[int, int], qvec) -> tuple[np.ndarray, int]:
    picks, spans = index.sentences.of_passage(tuple(rows), index.chunks)
    if not len(picks) or qvec is None:
        return np.zeros(0, np.float32), -1
    sims = index.sentences.vectors[picks] @ qvec
    return sims, spans.get((passage_start + hl[0], passage_start + hl[1]), -1)


def _blend_highlights(index: ReportIndex, sl: Shortlist, hits: list[Hit], weight: float) -> None:
    """Each reranked hit highlights the sentence `highlight.blended_highlight` picks with the sentence
    vectors (the candidates' features keep the lexical highlight the model was trained on)."""
    by_hit = {id(c.hit): c for c in sl.candidates}
    for h in hits:
        c = by_hit.get(id(h))
        if c is None or not len(c.sentence_sims):
            continue
        _, spans = index.sentences.of_passage(tuple(c.rows), index.chunks)
        pos = [spans.get((h.chunk.start + x.start, h.chunk.start + x.end), -1) for x in sentence_index(h.chunk.text)]
        sims = np.array([c.sentence_sims[p] if p >= 0 else np.nan for p in pos], np.float64)
        h.highlight = blended_highlight(h.chunk.text, c.lexical, sims, weight)


def shortlist(index: ReportIndex, query: Query, qvec: np.ndarray, settings: SearchSettings, top_k: int,
              mask: np.ndarray | None, k: int) -> Shortlist:  # fmt: skip
    """Up to `k` passages in fused order with their signals, for the reranker (hybrid mode)."""
    sig = candidates(index, query, qvec, "hybrid", settings, top_k, mask)
    fused = fuse_scores(index, query, qvec, sig, "hybrid", settings)
    order, others = order_rows(index, query, fused, "hybrid", settings, top_k, mask)
    merge = 2 * index.build_settings.chunk_size if settings.merge_overlaps else 0
    rows_c = sig.rows if sig.rows is not None else np.zeros(0, np.int64)
    rk = [_ranks_among(fused, rows_c), _ranks_among(sig.dense, rows_c), _ranks_among(sig.keyword, rows_c, True),
          _ranks_among(sig.bigram, rows_c, True)]  # fmt: skip
    cands = []
    for pos, rows in enumerate(F.distinct(order, index.chunks, k, merge)):
        i = rows[0]
        doc = index.docs[index.chunks[i].doc_id]
        c = F.merged_chunk(rows, index.chunks, doc.text)
        lexical = sentence_scores(c.text, query)
        hl = best_sentence(c.text, lexical)  # `highlight`, its scores kept for `_blend_highlights`
        hit = Hit(c, doc, float(fused[i]), hl, {"dense": float(sig.dense[i]), "keyword": float(sig.keyword[i])})
        sims, h = _sentence_sims(index, rows, c.start, hl, qvec)
        cands.append(Candidate(hit, rows, pos, float(fused[i]), float(sig.dense[i]), float(max(sig.dense[j] for j in rows)),
                               float(sig.keyword[i]), float(sig.bigram[i]), tuple(r.get(i, 99) for r in rk), sims, h, lexical))  # fmt: skip
    best_others = [index.chunks[i].text for i in others[fused[others] > -1.0][: settings.contrast_passages]]
    base = confidence(query, [c.hit for c in cands[:top_k]], best_others, index.keyword.idf, index.max_idf, "hybrid", settings)
    return Shortlist(query, cands, sig.w_dense, base)


def shortlists(index: ReportIndex, queries: Sequence[Query], settings: SearchSettings | None = None, top_k: int = 5,
               k: int | None = None, mask: np.ndarray | None = None, qvecs: np.ndarray | None = None) -> list[Shortlist]:  # fmt: skip
    """The reranker's shortlist of each question (what `reportqa train` learns from); `qvecs`: the
    questions' vectors when already computed."""
    from .index import SearchSettings

    settings = settings or SearchSettings()
    if not len(index.chunks) or not queries:
        return [Shortlist(q, [], 1.0, -1.0) for q in queries]
    if qvecs is None:
        qvecs = index.encoder.queries([q.dense_text for q in queries])
    return [shortlist(index, q, v, settings, top_k, mask, k or settings.rerank_candidates) for q, v in zip(queries, qvecs)]


def search(index: ReportIndex, queries: Sequence[Query], top_k: int = 5, mode: str = "hybrid",
           settings: SearchSettings | None = None, mask: np.ndarray | None = None) -> list[Answer]:  # fmt: skip
    """Answer parsed `queries` from `index`; their embeddings are computed in one batch."""
    from .index import SearchSettings

    settings = settings or SearchSettings()
    t0 = time.perf_counter()
    n = len(index.chunks)
    if mask is not None and not mask.any():
        n = 0  # nothing the filters allow
    qvecs = index.encoder.queries([q.dense_text for q in queries]) if mode != "keyword" and n and queries else None
    out = []
    for qi, query in enumerate(queries):
        t1 = time.perf_counter()
        if not n:
            out.append(Answer(query.text, [], False, 0.0))
            continue
        qvec = qvecs[qi] if qvecs is not None else None
        model = index.trust if mode == "hybrid" and settings.rerank else None
        if model is not None:  # the learned path: a shortlist reranked, a calibrated confidence
            sl = shortlist(index, query, qvec, settings, top_k, mask, max(settings.rerank_candidates, top_k))
            hits, conf = model.apply(sl, index, top_k)
            if settings.sentence_sim_weight > 0:
                _blend_highlights(index, sl, hits, settings.sentence_sim_weight)
            threshold = model.threshold
        else:  # the hand-set path (the keyword and dense baselines, or no model)
            sig = candidates(index, query, qvec, mode, settings, top_k, mask)
            fused = fuse_scores(index, query, qvec, sig, mode, settings)
            order, others = order_rows(index, query, fused, mode, settings, top_k, mask)
            hits = passages(index, query, order, fused, sig, top_k, settings)
            best_others = [index.chunks[i].text for i in others[fused[others] > -1.0][: settings.contrast_passages]]
            conf = confidence(query, hits, best_others, index.keyword.idf, index.max_idf, mode, settings)
            threshold = HAND_THRESHOLD
        if settings.answer_threshold is not None:
            threshold = settings.answer_threshold
        elapsed = time.perf_counter() - t1 + ((t1 - t0) / len(queries) if qi == 0 else 0.0)
        out.append(Answer(query.text, hits, bool(hits) and conf >= threshold, elapsed, confidence=conf,
                          calibrated=model is not None, threshold=threshold))  # fmt: skip
    return out
