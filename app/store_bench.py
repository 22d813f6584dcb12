"""`reportqa bench-stores`: the figures behind the Milvus store and Ray embedding (issue #17).

1. keyword agreement on CMRC 2018: top-10 of our BM25 as Milvus sparse vectors and of Milvus's
   built-in BM25 (jieba analyzer) against bm25s, with their latencies and hit@k;
2. BM25 (bm25s) query time at 10^4-10^6 synthetic passages drawn from the CMRC vocabulary;
3. dense search, FAISS against Milvus Lite, at 10^4 and 10^5 synthetic vectors;
4. Ray embedding rate with 1 and 2 local workers against in process, on the same real passages;
5. what 10^6 and 10^7 passages cost to index and serve, from the measured rates.

Everything is cached under `--cache` (default /tmp/stores_cache); the report goes to `--out`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import fusion as F
from .bench import percentiles, recall_at, rss_mb, synthetic_vectors
from .index import EXACT_LIMIT, IVF_NPROBE, BuildSettings, ReportIndex, dense_index
from .keyword import KeywordIndex, bigrams, tokenize
from .stores import EmbeddedStore, MilvusStore, RowFilter, connect, store_candidates

if TYPE_CHECKING:
    from .config import Config

CMRC = "cmrc2018_trial.json"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------------- the CMRC index


def cmrc_index(bench_dir: Path, cache: Path, encoder, reuse_from: Sequence[Path] = ()) -> tuple[ReportIndex, list]:
    """The CMRC paragraphs indexed as `reportqa eval --external` does, cached in `cache/cmrc2018`
    (vectors reused from `reuse_from` index folders made with the same model)."""
    from .errors import ReportQAError
    from .evaluate import load_squad
    from .index import corpus_fingerprint

    docs, qs = load_squad(bench_dir / CMRC, "cmrc2018")
    settings = BuildSettings(context=False)
    folder = cache / "cmrc2018"
    for f in (folder, *reuse_from):
        try:
            idx = ReportIndex.load(f, encoder, settings, verify=False)
            if idx.fingerprint == corpus_fingerprint(docs):
                if f != folder:
                    idx.save(folder)
                return idx, qs
        except ReportQAError:
            pass
    reuse: dict = {}
    for f in reuse_from:
        reuse |= ReportIndex.saved_vectors(f, encoder.name)
    idx = ReportIndex.build(docs, encoder, settings, reuse=reuse)
    idx.save(folder)
    return idx, qs


def question_vectors(index: ReportIndex, questions: list, cache: Path) -> np.ndarray:
    path = cache / "cmrc2018_questions.npy"
    if path.exists():
        v = np.load(path)
        if len(v) == len(questions):
            return v
    v = index.encoder.queries([q.dense_text for q in index.queries([q.question for q in questions])])
    np.save(path, v)
    return v


# ---------------------------------------------------------------------- 1. keyword agreement


def builtin_bm25(client, name: str, texts: list[str], stop_words: Sequence[str] = (), k1: float = 1.2, b: float = 0.75) -> str:
    """A collection scored by Milvus's own BM25 function over `texts` (jieba analyzer, search mode)."""
    from pymilvus import DataType, Function, FunctionType

    if client.has_collection(name):
        client.drop_collection(name)
    analyzer: dict = {"tokenizer": {"type": "jieba", "mode": "search"}}
    if stop_words:
        analyzer["filter"] = [{"type": "stop", "stop_words": sorted(stop_words)}]
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params=analyzer)
    schema.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sp"])
    )
    ip = client.prepare_index_params()
    ip.add_index("sp", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": k1, "bm25_b": b})
    client.create_collection(name, schema=schema)
    client.create_index(name, ip, sync=False)
    client.load_collection(name)
    for s in range(0, len(texts), 256):
        client.insert(name, [{"id": i, "text": texts[i]} for i in range(s, min(s + 256, len(texts)))])
    client.flush(name)
    return name


def _builtin_top(client, name: str, text: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    res = client.search(name, data=[text], anns_field="sp", limit=k, output_fields=["id"], search_params={"metric_type": "BM25"})
    hits = res[0] if res else []
    # Milvus Lite 3.2 returns the BM25 score negated (its distance convention); a server returns it as is
    rows = np.array([h["id"] for h in hits], np.int64)
    scores = np.abs(np.array([h["distance"] for h in hits], np.float32))
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order]


def _hit_ranks(index: ReportIndex, rows: np.ndarray, q) -> int | None:
    from .evaluate import is_hit

    for r, i in enumerate(rows.tolist(), 1):
        c = index.chunks[i]
        if c.doc_id == q.doc_id and is_hit(c.text, q.evidence):
            return r
    return None


def keyword_agreement(index: ReportIndex, questions: list, cache: Path, echo: Callable = print, k: int = 10) -> dict:
    """Top-k of each keyword variant against bm25s's, per field, over every CMRC question."""
    from .textnorm import normalise
    from .words import STOPWORDS

    uri = str(cache / "milvus" / "cmrc.db")
    client = connect(uri)
    t0 = time.perf_counter()
    own = MilvusStore.create(uri, index, name="cmrc", client=client)
    build_own = time.perf_counter() - t0
    emb = EmbeddedStore(index)
    texts = [c.text for c in index.chunks]  # context=False: what is embedded and keyword-indexed
    t0 = time.perf_counter()
    builtin_bm25(client, "builtin_raw", texts)
    build_raw = time.perf_counter() - t0
    builtin_bm25(client, "builtin_norm", [normalise(t) for t in texts], STOPWORDS)
    queries = index.queries([q.question for q in questions])
    variants = ("bm25s", "milvus_own", "milvus_builtin_raw", "milvus_builtin_normalised")
    tops: dict[str, list[np.ndarray]] = {v: [] for v in variants}
    times: dict[str, list[float]] = {v: [] for v in variants}
    fields: dict[str, dict] = {}
    for q, query in zip(questions, queries):
        for v in variants:
            t = time.perf_counter()
            if v == "bm25s":
                rows, _ = emb.keyword_top("word", query.tokens, k)
                emb._last.clear()  # time the scoring, not the cache
            elif v == "milvus_own":
                rows, _ = own.keyword_top("word", query.tokens, k)
            elif v == "milvus_builtin_raw":
                rows, _ = _builtin_top(client, "builtin_raw", q.question, k)
            else:
                rows, _ = _builtin_top(client, "builtin_norm", normalise(q.question), k)
            times[v].append(time.perf_counter() - t)
            tops[v].append(rows)
        for field, tokens in (("bigram", query.grams), ("gloss", query.english)):
            a, _ = emb.keyword_top(field, tokens, k)
            b_, _ = own.keyword_top(field, tokens, k)
            f = fields.setdefault(field, {"overlap": [], "same_list": []})
            if len(a) or len(b_):
                f["overlap"].append(len(set(a.tolist()) & set(b_.tolist())) / max(len(a), len(b_)))
                f["same_list"].append(a.tolist() == b_.tolist())
    out: dict = {"questions": len(questions), "passages": len(index.chunks), "k": k,
                 "build_s": {"milvus_own": build_own, "milvus_builtin_raw": build_raw}, "variants": {}}  # fmt: skip
    ref = tops["bm25s"]
    for v in variants:
        overlap = [
            len(set(a.tolist()) & set(r.tolist())) / max(len(a), len(r)) if len(a) or len(r) else 1.0
            for a, r in zip(tops[v], ref)
        ]
        ranks = [_hit_ranks(index, rows, q) for rows, q in zip(tops[v], questions)]
        out["variants"][v] = {
            "overlap@10": float(np.mean(overlap)), "same_top10_list": float(np.mean([a.tolist() == r.tolist() for a, r in zip(tops[v], ref)])),
            "same_top1": float(np.mean([(a[:1].tolist() == r[:1].tolist()) for a, r in zip(tops[v], ref)])),
            "hit@1": float(np.mean([r is not None and r <= 1 for r in ranks])), "hit@5": float(np.mean([r is not None and r <= 5 for r in ranks])),
            "hit@10": float(np.mean([r is not None for r in ranks])), **percentiles(times[v]),
        }  # fmt: skip
        echo(f"keyword {v:26s} " + "  ".join(f"{a}={b:.3f}" for a, b in out["variants"][v].items() if isinstance(b, float)))
    out["own_other_fields"] = {f: {"overlap@10": float(np.mean(d["overlap"])), "same_top10_list": float(np.mean(d["same_list"])), "questions": len(d["overlap"])}
                               for f, d in fields.items() if d["overlap"]}  # fmt: skip
    out["candidates_step"] = candidates_latency(index, questions, own, emb)
    echo(f"keyword other fields {out['own_other_fields']}; candidates step {out['candidates_step']}")
    return out


def candidates_latency(index: ReportIndex, questions: list, milvus: MilvusStore, emb: EmbeddedStore, n: int = 200) -> dict:
    """The hybrid candidates step (dense, word, bigram, fill-ins, exact vectors) on each store, ms a question."""
    from .index import SearchSettings

    settings = SearchSettings()
    queries = index.queries([q.question for q in questions[:n]])
    qvecs = index.encoder.queries([q.dense_text for q in queries])
    out = {}
    for name, store in (("embedded", emb), ("milvus_lite", milvus)):
        times = []
        for query, qv in zip(queries, qvecs):
            t = time.perf_counter()
            sig = store_candidates(store, query, qv, "hybrid", settings, 5, None)
            rows = np.flatnonzero(sig.dense > -1)
            store.vectors(rows)
            times.append(time.perf_counter() - t)
        filtered = []
        for query, qv in zip(queries[:50], qvecs[:50]):
            t = time.perf_counter()
            store_candidates(
                store, query, qv, "hybrid", settings, 5, RowFilter(reports=tuple(f"cmrc2018-{a}-0" for a in range(20)))
            )
            filtered.append(time.perf_counter() - t)
        out[name] = {**percentiles(times), "filtered_p50_ms": percentiles(filtered)["p50_ms"]}
    return out


# ---------------------------------------------------------------------- 1b. the same answers


class _MemoQueries:
    """An encoder whose question vectors are computed once (both stores search the same questions)."""

    def __init__(self, encoder):
        self.encoder, self.name, self.dim = encoder, encoder.name, encoder.dim
        self.memo: dict[str, np.ndarray] = {}

    def queries(self, texts):
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            self.memo.update(zip(todo, self.encoder.queries(todo)))
        return np.array([self.memo[t] for t in texts], np.float32).reshape(len(texts), self.dim)

    def passages(self, texts, progress=None):
        return self.encoder.passages(texts, progress)


def same_answers(index: ReportIndex, questions: list, uri: str, name: str, modes: Sequence[str] = ("hybrid", "fused", "keyword", "dense"),
                 echo: Callable = print) -> dict:  # fmt: skip
    """Each mode's answers through the embedded store and through a Milvus collection of the same
    index at `uri`: the share of questions with the same top 5 (passages in the same order), and
    hit@1/5/10 of each (`evaluate.metrics`) with their difference."""
    from .evaluate import evaluate, metrics
    from .index import SearchSettings

    index.encoder = _MemoQueries(index.encoder)
    emb = EmbeddedStore(index)
    t0 = time.perf_counter()
    milvus = MilvusStore.create(uri, index, name=name)
    out: dict = {"questions": len(questions), "passages": len(index.chunks), "milvus_build_s": time.perf_counter() - t0, "modes": {}}
    for mode in modes:
        got = {}
        for label, store in (("embedded", emb), ("milvus", milvus)):
            index._store = store
            t = time.perf_counter()
            res = evaluate(index, questions, mode, SearchSettings())
            got[label] = (res, time.perf_counter() - t)
        # `evaluate` keeps the ranks of hits only: compare the passages themselves on a second pass
        tops = {}
        from dataclasses import replace

        from .answer import answer_many

        settings = SearchSettings() if mode != "fused" else replace(SearchSettings(), rerank=False)
        for label, store in (("embedded", emb), ("milvus", milvus)):
            index._store = store
            answers = answer_many(index, [q.question for q in questions], top_k=5, mode="hybrid" if mode == "fused" else mode,
                                  settings=settings)  # fmt: skip
            tops[label] = [[(h.chunk.doc_id, h.chunk.start, h.chunk.end) for h in a.hits] for a in answers]
        same = float(np.mean([a == b for a, b in zip(tops["embedded"], tops["milvus"])]))
        me, mm = metrics(got["embedded"][0]), metrics(got["milvus"][0])
        row = {"same_top5": same, "embedded": {k: me[k] for k in ("hit@1", "hit@5", "hit@10")},
               "milvus": {k: mm[k] for k in ("hit@1", "hit@5", "hit@10")},
               "max_abs_hit_diff": max(abs(me[k] - mm[k]) for k in ("hit@1", "hit@5", "hit@10")),
               "ms_per_question": {lbl: 1000 * dt / len(questions) for lbl, (_, dt) in got.items()}}  # fmt: skip
        out["modes"][mode] = row
        echo(f"same answers {name} {mode}: same top-5 {same:.3f}, hit diff {row['max_abs_hit_diff']:.4f}, {row}")
    index._store = None
    index.encoder = index.encoder.encoder
    return out


# ---------------------------------------------------------------------- 2. BM25 at scale


def synthetic_keyword(lengths: np.ndarray, probs: np.ndarray, vocab: list[str], seed: int = 0, k1: float = 1.2, b: float = 0.75,
                      block: int = 50_000) -> KeywordIndex:  # fmt: skip
    """A bm25s index (its CSC score matrix, filled directly) over len(lengths) passages whose tokens
    are drawn from `probs` over `vocab`: what `KeywordIndex.index` would build from those token
    lists (checked at 10^4), without holding them. Two passes over the same draws: document
    frequencies first, then the weights placed column by column."""
    import bm25s

    n, v = len(lengths), len(vocab)
    cdf = np.cumsum(probs)
    cdf /= cdf[-1]

    def draws(s: int, e: int):
        rng = np.random.default_rng((seed, s))
        lens = lengths[s:e]
        toks = np.minimum(np.searchsorted(cdf, rng.random(int(lens.sum()))), v - 1).astype(np.int64)
        docs = np.repeat(np.arange(s, e, dtype=np.int64), lens)
        key, tf = np.unique(toks * n + docs, return_counts=True)  # sorted by term, then document
        return (key // n).astype(np.int32), (key % n).astype(np.int32), tf.astype(np.float32)

    df = np.zeros(v, np.int64)
    for s in range(0, n, block):
        t, _, _ = draws(s, min(s + block, n))
        df += np.bincount(t, minlength=v)
    indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
    data = np.empty(int(indptr[-1]), np.float32)
    indices = np.empty(int(indptr[-1]), np.int32)
    cursor = indptr[:-1].copy()
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    avgdl = float(lengths.mean())
    for s in range(0, n, block):
        t, d, tf = draws(s, min(s + block, n))
        counts = np.bincount(t, minlength=v)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        pos = cursor[t] + (np.arange(len(t)) - first[t])
        dl = lengths[d].astype(np.float32)
        data[pos] = idf[t] * tf / (tf + k1 * (1 - b + b * dl / avgdl))  # bm25s's Lucene variant: no (k1 + 1) factor
        indices[pos] = d
        cursor += counts
    kw = KeywordIndex.__new__(KeywordIndex)
    kw.bm25 = bm25s.BM25(k1=k1, b=b)
    kw.bm25.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": n}
    kw.bm25.vocab_dict = {t: i for i, t in enumerate(vocab)}
    kw.bm25.unique_token_ids_set = set(range(v))
    kw.bm25.nonoccurrence_array = None  # the Lucene variant has no score for absent terms
    kw.n = n
    kw.idf = {}
    return kw


def _distribution(token_lists: list[list[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    from collections import Counter

    counts = Counter(t for toks in token_lists for t in toks)
    vocab = sorted(counts)
    return vocab, np.array([counts[t] for t in vocab], np.float64), np.array([len(t) for t in token_lists], np.int64)


def bm25_scaling(index: ReportIndex, questions: list, sizes: Sequence[int], echo: Callable = print, n_queries: int = 200,
                 fields: Sequence[str] = ("word", "bigram")) -> dict:  # fmt: skip
    """bm25s query time (all rows scored, then the best 50 taken, as the search does) per size and field."""
    texts = [c.text for c in index.chunks]
    queries = index.queries([q.question for q in questions[:n_queries]])
    out: dict = {"check": {}, "rows": []}
    for field in fields:
        lists = [tokenize(t) for t in texts] if field == "word" else [bigrams(t) for t in texts]
        vocab, freq, lens = _distribution(lists)
        rng = np.random.default_rng(1)
        qtok = [list(q.tokens) if field == "word" else list(q.grams) for q in queries]
        # the synthetic matrix is bm25s's own: at 10^4, the same draws through KeywordIndex.index give the same scores
        n0 = 10_000
        lengths0 = rng.choice(lens, n0)
        syn = synthetic_keyword(lengths0, freq, vocab, seed=7)
        cdf = np.cumsum(freq) / freq.sum()
        ref_lists = []
        for s in range(0, n0, 50_000):
            r = np.random.default_rng((7, s))
            ids = np.minimum(np.searchsorted(cdf, r.random(int(lengths0[s : s + 50_000].sum()))), len(vocab) - 1)
            ref_lists += [[vocab[i] for i in part] for part in np.split(ids, np.cumsum(lengths0[s : s + 50_000])[:-1])]
        ref = KeywordIndex()
        t0 = time.perf_counter()
        ref.index(ref_lists)
        build_ref = time.perf_counter() - t0
        diff = max(float(np.abs(ref.scores(q) - syn.scores(q)).max()) for q in qtok[:50] if q)
        out["check"][field] = {"max_abs_diff_vs_bm25s_index_10k": diff, "bm25s_index_build_s_10k": build_ref}
        echo(
            f"bm25 {field}: synthetic matrix vs bm25s.index at 10^4: max |diff| {diff:.2e}; bm25s builds 10^4 in {build_ref:.1f}s"
        )
        del ref, ref_lists, syn
        for n in sizes:
            base = rss_mb()
            t0 = time.perf_counter()
            kw = synthetic_keyword(rng.choice(lens, n), freq, vocab, seed=n)
            build = time.perf_counter() - t0
            mem = rss_mb() - base
            score_t, top_t = [], []
            for q in qtok:
                t = time.perf_counter()
                s = kw.scores(q)
                t1 = time.perf_counter()
                F.top_rows(s, 50)
                t2 = time.perf_counter()
                score_t.append(t1 - t)
                top_t.append(t2 - t)
            nnz = len(kw.bm25.scores["data"])
            row = {"field": field, "n": n, "nnz": nnz, "bytes": nnz * 8 + (len(vocab) + 1) * 8, "rss_delta_mb": mem, "synth_build_s": build,
                   "score_all": percentiles(score_t), "score_and_top50": percentiles(top_t), "load": _load()}  # fmt: skip
            out["rows"].append(row)
            echo(
                f"bm25 {field} n={n}: nnz {nnz:,}, query p50 {row['score_and_top50']['p50_ms']:.2f} ms p95 {row['score_and_top50']['p95_ms']:.2f} ms"
            )
            del kw
    return out


# ---------------------------------------------------------------------- 3. dense: FAISS and Milvus Lite


def _milvus_dense(client, name: str, vecs: np.ndarray, city: np.ndarray, index_type: str, nlist: int) -> float:
    from pymilvus import DataType

    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=vecs.shape[1])
    schema.add_field("city", DataType.VARCHAR, max_length=64)
    ip = client.prepare_index_params()
    ip.add_index("vec", index_type=index_type, metric_type="IP", params={"nlist": nlist} if index_type == "IVF_FLAT" else {})
    client.create_collection(name, schema=schema)
    client.create_index(name, ip, sync=False)
    t0 = time.perf_counter()
    for s in range(0, len(vecs), 2000):
        client.insert(name, [{"id": i, "vec": vecs[i].tolist(), "city": city[i]} for i in range(s, min(s + 2000, len(vecs)))])
    client.flush(name)
    client.load_collection(name)
    client.search(name, data=[vecs[0].tolist()], anns_field="vec", limit=1, output_fields=["id"])  # builds the index
    return time.perf_counter() - t0


def _milvus_search(client, name: str, q: np.ndarray, k: int, flt: str = "", nprobe: int = IVF_NPROBE) -> list[int]:
    res = client.search(name, data=[q.tolist()], anns_field="vec", limit=k, filter=flt, output_fields=["id"],
                        search_params={"metric_type": "IP", "params": {"nprobe": nprobe}})  # fmt: skip
    return [h["id"] for h in res[0]] + [-1] * (k - len(res[0]))


def dense_scaling(
    index: ReportIndex, qvecs: np.ndarray, sizes: Sequence[int], cache: Path, echo: Callable = print, k: int = 50
) -> list[dict]:
    """FAISS (the index's own choice: exact to EXACT_LIMIT, IVF above; OpenMP threads as they are and
    one) and Milvus Lite (FLAT, and IVF_FLAT with nlist 4 sqrt(n), nprobe 32), unfiltered and with a
    third of the rows allowed (FAISS: today's exact scan of the allowed rows). The searches of one
    question run back to back, so a busy moment of the shared machine hits every variant alike."""
    import faiss

    client = connect(str(cache / "milvus" / "dense.db"))
    rng = np.random.default_rng(0)
    queries = np.ascontiguousarray(qvecs, np.float32)
    threads = faiss.omp_get_max_threads()
    rows = []
    for n in sizes:
        vecs = synthetic_vectors(index.vectors, n, rng)
        city = np.array(["长治", "忻州", "吕梁"])[np.arange(n) % 3]
        exact = vecs @ queries.T
        exact_ids = np.argsort(-exact, axis=0)[:10].T
        allowed = np.flatnonzero(city == "长治")
        exact_f = allowed[np.argsort(-exact[allowed], axis=0)[:10].T]
        t0 = time.perf_counter()
        fx = dense_index(vecs)
        row: dict = {"n": n, "k": k, "queries": len(queries), "load_before": _load(),
                     "faiss": {"index": "flat" if n <= EXACT_LIMIT else "ivf", "build_s": time.perf_counter() - t0}}  # fmt: skip
        kinds = ["FLAT"] + (["IVF_FLAT"] if n > EXACT_LIMIT else [])
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
        for kind in kinds:
            row[f"milvus_{kind.lower()}"] = {
                "build_s": _milvus_dense(client, f"dense_{n}_{kind.lower()}", vecs, city, kind, nlist)
            }

        def faiss_search(q, fx=fx, one=False):
            if one:
                faiss.omp_set_num_threads(1)
            try:
                return fx.search(q[None, :], k)[1][0]
            finally:
                faiss.omp_set_num_threads(threads)

        def faiss_filtered(q, vecs=vecs, allowed=allowed):  # the search's exact path when a filter is set
            best = allowed[F.top_rows(vecs[allowed] @ q, k, positive=False)]
            return best[np.argsort(-(vecs[best] @ q))]

        variants = {
            "faiss": faiss_search,
            "faiss_1_thread": partial(faiss_search, one=True),
            "faiss_filtered_exact": faiss_filtered,
        }
        for kind in kinds:
            name = f"dense_{n}_{kind.lower()}"
            variants[f"milvus_{kind.lower()}"] = partial(_milvus_search, client, name, k=k)
            variants[f"milvus_{kind.lower()}_filtered"] = partial(_milvus_search, client, name, k=k, flt='city in ["长治"]')
        times: dict[str, list[float]] = {v: [] for v in variants}
        found: dict[str, list] = {v: [] for v in variants}
        for q in queries:
            for v, f in variants.items():
                t = time.perf_counter()
                found[v].append(list(f(q))[:10])
                times[v].append(time.perf_counter() - t)
        for v in variants:
            row[v] = row.get(v, {}) | {
                **percentiles(times[v]),
                "recall@10": recall_at(np.array(found[v]), exact_f if "filtered" in v else exact_ids),
            }
        for kind in kinds:
            client.drop_collection(f"dense_{n}_{kind.lower()}")
        row["load_after"] = _load()
        rows.append(row)
        echo(
            f"dense n={n}: "
            + "; ".join(
                f"{a} p50 {d['p50_ms']:.2f} ms r@10 {d['recall@10']:.3f}"
                for a, d in row.items()
                if isinstance(d, dict) and "p50_ms" in d
            )
        )
        del vecs, exact, fx
    return rows


# ---------------------------------------------------------------------- 4. Ray embedding rate


def ray_rates(texts: list[str], models: Path, echo: Callable = print, batch: int = 25, rounds: int = 2) -> dict:
    """Passages a second on the same texts, best of `rounds` rounds run in turn (the machine is
    shared: a busy moment then hits every variant alike): in process (ONNX Runtime's default
    threads, and one) and on a local Ray instance of two CPUs with 1 and 2 workers of one thread
    each. Start-up (Ray, then the workers loading the model) is timed apart."""
    import ray

    from .distributed import RayPool
    from .model import Embedder

    out: dict = {
        "passages": len(texts),
        "chars_per_passage": float(np.mean([len(t) for t in texts])),
        "batch": batch,
        "rounds": rounds,
    }
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out["ray_init_s"] = time.perf_counter() - t0
    ref = None
    best: dict[str, dict] = {}
    try:
        for r in range(rounds):
            for name in ("in_process_threads_default", "in_process_threads_1", "ray_1_worker", "ray_2_workers"):
                if name.startswith("in_process"):
                    enc = Embedder(models, threads=None if name.endswith("default") else 1)
                    enc.passages(texts[:8])  # load the model
                    t0 = time.perf_counter()
                    v = enc.passages(texts)
                    dt = time.perf_counter() - t0
                    extra: dict = {}
                    del enc
                else:
                    workers = 1 if name == "ray_1_worker" else 2
                    t0 = time.perf_counter()
                    with RayPool(model_dir=models, workers=workers) as pool:
                        pool.embed(texts[: 2 * workers], batch=1)  # start the workers: each loads the model
                        startup = time.perf_counter() - t0
                        t0 = time.perf_counter()
                        v = pool.embed(texts, batch=batch)
                        dt = time.perf_counter() - t0
                    extra = {"workers_startup_s": startup}
                ref = v if ref is None else ref
                cos = float(((v * ref).sum(1) / (np.linalg.norm(v, axis=1) * np.linalg.norm(ref, axis=1))).min())
                row = {
                    "s": dt,
                    "passages_per_s": len(texts) / dt,
                    "min_cosine_vs_first": cos,
                    "load": _load(),
                    "round": r,
                    **extra,
                }
                if name not in best or row["passages_per_s"] > best[name]["passages_per_s"]:
                    best[name] = row
                echo(f"round {r}: {name}: {row['passages_per_s']:.2f} passages/s, min cosine {cos:.6f}, load {row['load']}")
    finally:
        ray.shutdown()
    return out | best


# ---------------------------------------------------------------------- 5. on paper


def projection(results: dict) -> str:
    """Index and serve 10^6 and 10^7 passages on N machines, from the measured per-core rate."""
    ray = results.get("ray", {})
    per_core = ray.get("ray_1_worker", {}).get("passages_per_s") or ray.get("in_process_threads_1", {}).get("passages_per_s")
    if not per_core:
        return ""
    bm = {(r["field"], r["n"]): r for r in results.get("bm25", {}).get("rows", [])}
    lines = ["| passages | embedding, core-hours (passages; + sentences x2) | wall on 1 / 10 / 100 machines of 8 cores (passages + sentences) | vectors (passages; + sentences) | BM25 word + bigram | BM25 query, one shard |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for n in (10**6, 10**7):
        core_h = n / per_core / 3600
        walls = " / ".join(_hours(2 * core_h / (m * 8)) for m in (1, 10, 100))
        vec = n * 384 * 4
        nnz_w = bm.get(("word", 10**6), {}).get("nnz", 0) / 10**6 * n
        nnz_b = bm.get(("bigram", 10**6), {}).get("nnz", 0) / 10**6 * n
        q = [bm.get((f, 10**6), {}).get("score_and_top50", {}).get("p50_ms") for f in ("word", "bigram")]
        qms = sum(x for x in q if x) * n / 10**6 if all(q) else float("nan")
        lines.append(f"| {n:.0e} | {core_h:,.0f}; {2 * core_h:,.0f} | {walls} | {vec / 2**30:.1f} GiB; {10 * vec / 2**30:.0f} GiB | "
                     f"{(nnz_w + nnz_b) * 8 / 2**30:.1f} GiB | {qms:,.0f} ms (linear in rows) |")  # fmt: skip
    return "\n".join(lines)


def _hours(h: float) -> str:
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


# ---------------------------------------------------------------------- the run


def main(argv: Sequence[str], cfg: Config) -> dict:
    """`reportqa bench-stores [options]` (`cfg`: the CLI's paths and encoder)."""
    p = argparse.ArgumentParser(prog="reportqa bench-stores", description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=Path("/tmp/stores_cache"))
    p.add_argument("--out", type=Path, default=Path("/tmp/stores_perf.json"))
    p.add_argument("--parts", default="keyword,same,bm25,dense,ray", help="comma-separated: keyword, same, bm25, dense, ray")
    p.add_argument("--reports", type=Path, default=None,
                   help="with `same`: an index folder of the five reports (default: eval/cache/reports, as `reportqa eval` builds it)")
    p.add_argument("--bm25-sizes", default="10000,100000,1000000")
    p.add_argument("--dense-sizes", default="10000,100000")
    p.add_argument("--reuse", type=Path, action="append", default=[],
                   help="an index folder of the CMRC paragraphs whose vectors are reused (repeatable)")
    args = p.parse_args(argv)
    encoder = cfg.encoder()
    args.cache.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    index, qs = cmrc_index(
        cfg.root.parent / "shared" / "benchmarks", args.cache, encoder, [*args.reuse, cfg.root / "eval" / "cache" / "cmrc2018"]
    )
    parts = args.parts.split(",")
    results["machine"] = {"cpus": os.cpu_count(), "load_at_start": _load()}
    if "keyword" in parts:
        results["keyword"] = keyword_agreement(index, qs, args.cache)
    if "same" in parts:
        from .evaluate import load_questions

        reports = ReportIndex.load(args.reports or cfg.root / "eval" / "cache" / "reports", encoder, verify=False)
        qs_reports = load_questions(cfg.root / "eval" / "questions.jsonl") + load_questions(cfg.root / "eval" / "heldout.jsonl")
        uri = str(args.cache / "milvus" / "same.db")
        results["same_answers"] = {"reports": same_answers(reports, qs_reports, uri, "reports"),
                                   "cmrc2018": same_answers(index, qs, uri, "cmrc")}  # fmt: skip
    if "bm25" in parts:
        results["bm25"] = bm25_scaling(index, qs, [int(x) for x in args.bm25_sizes.split(",")])
    if "dense" in parts:
        qv = question_vectors(index, qs, args.cache)[:200]
        results["dense"] = dense_scaling(index, qv, [int(x) for x in args.dense_sizes.split(",")], args.cache)
    if "ray" in parts:
        results["ray"] = ray_rates([c.text for c in index.chunks[:200]], cfg.models)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(projection(results))
    return results
