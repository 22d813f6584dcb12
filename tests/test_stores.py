"""The stores behind the search: the embedded one gives today's results; the Milvus one (through
Milvus Lite, a file in a temp folder) gives the same rows: dense top-k with filters equal to numpy
brute force, our BM25 as sparse vectors equal to bm25s, and a collection of another model refused."""

from __future__ import annotations

import importlib
import random

import numpy as np
import pytest

from app.errors import IndexMismatch, IndexMissing
from app.index import BuildSettings, ReportIndex
from app.keyword import KeywordIndex
from app.records import Document
from app.stores import EmbeddedStore, RowFilter, RowMeta, SparseBM25, StoreUnavailable, date_span, parse_store, store_candidates

SENTENCES = [
    "全市188所校外培训机构全部纳入全国校外教育培训监管与服务综合平台管理。",
    "2024年全市建设普惠性幼儿园6所，新增学位2700个。",
    "课后服务惠及学校481所、学生31万余名。",
    "全市学前教育毛入园率达到96.7%，义务教育巩固率持续提升。",
    "全市现有在校生598764人，教职工62192人，专任教师49990人。",
    "乡村教师生活补助覆盖所有乡村学校，教师队伍稳定。",
    "智慧教育平台建设推进数字化转型，数字校园覆盖率达到90%。",
    "高中阶段毛入学率达到95%，职业教育产教融合深入推进。",
    "学校体育课开足开齐，学生近视率下降1.2个百分点。",
    "双减政策落地见效，作业总量和时长明显减少。",
    "投入资金1138万元改造寄宿制学校，改善办学条件。",
    "The quick brown fox 测试 English words in a Chinese report.",
]
CITIES = ["长治", "忻州", "吕梁"]
DATES = ["2024", "2024-09", "2024-04-18", "2025-11-12", "", "2023-12"]
QUESTIONS = [
    "长治市有多少所校外培训机构纳入了全国平台管理？",
    "忻州學前教育毛入園率是多少",
    "How many full-time teachers does Lüliang have?",
    "课后服务惠及多少学生",
    "数字校园覆盖率",
    "学生近视率下降了多少",
    "没有任何关系的问题火星",
]


def toy_docs(n: int = 30, seed: int = 0) -> list[Document]:
    rnd = random.Random(seed)
    docs = []
    for i in range(n):
        text = "".join(rnd.choice(SENTENCES) for _ in range(rnd.randint(2, 9)))
        docs.append(Document(id=f"r{i:02d}", title=f"报告{i}", text=text, city=CITIES[i % 3], date=DATES[i % len(DATES)]))
    return docs


SMALL = BuildSettings(chunk_size=120, chunk_overlap=20, sentence_vectors=False)


@pytest.fixture(scope="module")
def toy_index():
    from conftest import FakeEncoder

    return ReportIndex.build(toy_docs(), FakeEncoder(), SMALL)


FILTERS = [
    None,
    RowFilter(cities=("长治",)),
    RowFilter(cities=("忻州", "吕梁")),
    RowFilter(reports=("r03", "r07", "r11")),
    RowFilter(date_from="2024-05", date_to="2024-12-31"),
    RowFilter(date_from="2025"),
    RowFilter(date_to="2023"),
    RowFilter(cities=("长治",), date_from="2024"),
    RowFilter(cities=("无此城",)),
]


def need(module: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} is not installed: pip install 'reportqa[{extra}]'")


# ---------------------------------------------------------------------- filters


def test_date_span_covers_what_the_date_names():
    assert date_span("2024") == (20240101, 20241231)
    assert date_span("2024-09") == (20240901, 20240931)
    assert date_span("2024-04-18") == (20240418, 20240418)
    assert date_span("2024年4月8日") == (20240408, 20240408)
    assert date_span("") == (0, 0) and date_span("unknown") == (0, 0)


def test_row_filter_as_mask_and_as_milvus_expression():
    meta = RowMeta(np.array(["长治", "忻州", "长治"], object), np.array(["a", "b", "c"], object),
                   np.array([20240101, 20240901, 0]), np.array([20241231, 20240931, 0]))  # fmt: skip
    assert RowFilter(cities=("长治",)).mask(meta).tolist() == [True, False, True]
    assert RowFilter(date_from="2024-06").mask(meta).tolist() == [True, True, False]  # undated: outside any range
    assert RowFilter(date_to="2024-03").mask(meta).tolist() == [True, False, False]
    assert RowFilter(reports=("b", "c"), date_from="2024").mask(meta).tolist() == [False, True, False]
    f = RowFilter(cities=("长治", 'a"b'), reports=("r1",), date_from="2024-06", date_to="2024")
    assert f.expression() == ('city in ["长治", "a\\"b"] and report in ["r1"] and date_lo > 0 and date_hi >= 20240601 '
                              "and date_lo <= 20241231")  # fmt: skip
    assert RowFilter().expression() == "" and not RowFilter().active
    assert RowFilter.of() is None and RowFilter.of(city="忻州") == RowFilter(cities=("忻州",))


def test_store_specs():
    assert parse_store("milvus:/tmp/x/index.db") == "/tmp/x/index.db"
    assert parse_store("milvus://db.example:19530") == "http://db.example:19530"
    assert parse_store("") is None
    with pytest.raises(ValueError, match="milvus:PATH.db"):
        parse_store("milvus:/tmp/x")
    with pytest.raises(ValueError, match="milvus://HOST:19530"):
        parse_store("redis://x")


# ---------------------------------------------------------------------- embedded store: today's search


def _answers(index, questions, mode, **kw):
    """What a person sees of each answer (passages, highlights, answered), and the scores apart."""
    from app.answer import answer_many

    found = answer_many(index, questions, top_k=5, mode=mode, **kw)
    return [[(h.chunk.id, h.highlight) for h in a.hits] + [a.answered] for a in found], [
        [h.score for h in a.hits] + [a.confidence] for a in found
    ]


def _same(got, want):
    """The same passages, highlights and decisions; scores equal to float32 rounding."""
    assert got[0] == want[0]
    for g, w in zip(got[1], want[1]):
        assert np.allclose(np.asarray(g, float), np.asarray(w, float), atol=1e-5)


def _through(store_of):
    """`search.candidates` replaced by the store's."""

    def candidates(index, query, qvec, mode, settings, top_k, mask):
        return store_candidates(store_of(index), query, qvec, mode, settings, top_k, mask)

    return candidates


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "dense"])
def test_embedded_store_gives_todays_search_results(tiny_index, toy_index, monkeypatch, mode):
    from app import search

    cases = [
        (tiny_index, {}),
        (tiny_index, {"city": "长治"}),
        (toy_index, {}),
        (toy_index, {"city": "忻州"}),
        (toy_index, {"report": "r04"}),
    ]
    today = [_answers(ix, QUESTIONS, mode, **kw) for ix, kw in cases]
    monkeypatch.setattr(search, "candidates", _through(EmbeddedStore))
    for (ix, kw), want in zip(cases, today):
        _same(_answers(ix, QUESTIONS, mode, **kw), want)


def test_embedded_store_top_rows_equal_brute_force(toy_index):
    store = EmbeddedStore(toy_index)
    q = toy_index.encoder.queries(["课后服务惠及学生"])[0]
    for f in FILTERS:
        mask = store.mask(f)
        sims = toy_index.vectors @ q
        allowed = np.flatnonzero(mask) if mask is not None else np.arange(len(sims))
        rows, got = store.dense_top(q, 10, f)
        want = allowed[np.argsort(-sims[allowed], kind="stable")][:10]
        assert set(rows.tolist()) == set(want.tolist()), f
        assert np.allclose(got, sims[rows], atol=1e-5)
        assert list(got) == sorted(got, reverse=True)


# ---------------------------------------------------------------------- our BM25 as sparse vectors


def test_sparse_bm25_inner_product_is_the_bm25s_score():
    docs = [["教育", "学校", "学校"], ["教师", "教育"], ["学生"], [], ["学校", "学生", "教师", "教师", "教师"]]
    kw = KeywordIndex()
    kw.index(docs)
    sp = SparseBM25.of(kw)
    assert sp.n == 5 and all(sp.rows)  # every row has a term: bm25s gives an empty one "\u2205"
    for q in (["学校"], ["教师", "学校", "教师"], ["学生", "无此词"], ["无此词"], []):
        want = kw.scores(q) if q else np.zeros(5)
        vec = sp.query(q)
        got = [sum(w * row.get(t, 0.0) for t, w in vec.items()) for row in sp.rows]
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), q


# ---------------------------------------------------------------------- Milvus Lite


@pytest.fixture(scope="module")
def milvus(toy_index, tmp_path_factory):
    need("pymilvus", "milvus")
    need("milvus_lite", "milvus")
    from app.stores import MilvusStore

    uri = str(tmp_path_factory.mktemp("milvus") / "store.db")
    return MilvusStore.create(uri, toy_index, name="toy")


@pytest.mark.slow
def test_milvus_dense_top_k_with_filters_equals_numpy(milvus, toy_index):
    queries = toy_index.encoder.queries(QUESTIONS)
    meta = RowMeta.of(toy_index)
    for f in [*FILTERS, (toy_index.chunk_city == 0)]:
        mask = f if isinstance(f, np.ndarray) else (f.mask(meta) if f is not None else np.ones(len(toy_index.chunks), bool))
        allowed = np.flatnonzero(mask)
        for q in queries:
            rows, sims = milvus.dense_top(q, 8, f)
            brute = toy_index.vectors[allowed] @ q
            want = allowed[np.argsort(-brute, kind="stable")][:8]
            assert len(rows) == len(want), f
            assert np.allclose(sims, np.sort(brute)[::-1][:8], atol=1e-5), f  # the same similarities, ties aside
            assert np.allclose(toy_index.vectors[rows] @ q, sims, atol=1e-5)
            assert set(rows.tolist()) <= set(allowed.tolist())


@pytest.mark.slow
def test_milvus_keyword_top_k_equals_bm25s(milvus, toy_index):
    emb = EmbeddedStore(toy_index)
    queries = toy_index.queries(QUESTIONS)
    for q in queries:
        for field, tokens in (("word", q.tokens), ("bigram", q.grams), ("gloss", q.english)):
            for f in (None, RowFilter(cities=("长治",)), RowFilter(date_from="2024-05")):
                rows, scores = milvus.keyword_top(field, tokens, 10, f)
                want_rows, want = emb.keyword_top(field, tokens, 10, f)
                assert np.allclose(scores, want, rtol=1e-5, atol=1e-6), (field, q.text, f)
                all_scores = emb.keyword_scores(field, tokens, np.arange(emb.count()))
                assert np.allclose(all_scores[rows], scores, rtol=1e-5, atol=1e-6)  # the same rows, ties aside
            some = np.array([0, 3, 5, 17, len(toy_index.chunks) - 1])
            assert np.allclose(
                milvus.keyword_scores(field, tokens, some), emb.keyword_scores(field, tokens, some), rtol=1e-5, atol=1e-6
            )
    rows = np.array([7, 0, 12])
    assert np.allclose(milvus.vectors(rows), toy_index.vectors[rows], atol=1e-6)
    assert milvus.count() == len(toy_index.chunks)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hybrid", "keyword", "dense"])
def test_search_through_milvus_gives_todays_results(milvus, toy_index, monkeypatch, mode):
    from app import search

    cases = [{}, {"city": "长治"}, {"report": "r05"}]
    today = [_answers(toy_index, QUESTIONS, mode, **kw) for kw in cases]
    monkeypatch.setattr(search, "candidates", _through(lambda index: milvus))
    for kw, want in zip(cases, today):
        _same(_answers(toy_index, QUESTIONS, mode, **kw), want)


@pytest.mark.slow
def test_milvus_collection_of_another_model_or_build_is_refused(milvus, toy_index):
    from app.stores import MilvusStore

    uri = milvus.uri
    ok = MilvusStore.for_index(uri, toy_index, name="toy")
    assert ok.collection == milvus.collection
    with pytest.raises(
        IndexMismatch, match=r"built with model 'fake-bigram-64', not 'e5'.*reportqa index --store milvus:.*store\.db"
    ):
        MilvusStore.open(uri, model="e5", name="toy")
    with pytest.raises(IndexMismatch, match="384-dimensional|holds 64-dimensional"):
        MilvusStore.open(uri, model="fake-bigram-64", dim=384, name="toy")
    with pytest.raises(IndexMismatch, match="other settings"):
        MilvusStore.open(uri, model="fake-bigram-64", settings=BuildSettings(), name="toy")
    with pytest.raises(IndexMismatch, match="another build of the corpus"):
        MilvusStore.open(uri, model="fake-bigram-64", fingerprint="0" * 64, name="toy")
    with pytest.raises(IndexMissing, match="no reportqa collection 'nothing'.*reportqa index --store"):
        MilvusStore.open(uri, model="fake-bigram-64", name="nothing")


@pytest.mark.slow
def test_a_new_build_replaces_the_live_collection(milvus, toy_index):
    from conftest import FakeEncoder

    from app.stores import MilvusStore

    again = MilvusStore.create(milvus.uri, toy_index, name="toy")  # the same build: reused, nothing written
    assert again.collection == milvus.collection
    other = ReportIndex.build(toy_docs(12, seed=1), FakeEncoder(), SMALL)
    new = MilvusStore.create(milvus.uri, other, name="toy2")
    assert new.count() == len(other.chunks)
    newer = MilvusStore.create(milvus.uri, ReportIndex.build(toy_docs(8, seed=2), FakeEncoder(), SMALL), name="toy2")
    names = new.client.list_collections()
    assert newer.collection in names and new.collection not in names and milvus.collection in names
    assert MilvusStore.open(milvus.uri, model="fake-bigram-64", name="toy2").count() == newer.count()
    # written but not live: the alias still serves the previous build until `make_live`
    latest = ReportIndex.build(toy_docs(5, seed=3), FakeEncoder(), SMALL)
    pending = MilvusStore.create(milvus.uri, latest, name="toy2", live=False)
    assert MilvusStore.open(milvus.uri, model="fake-bigram-64", name="toy2").collection == newer.collection
    assert MilvusStore.open(milvus.uri, model="fake-bigram-64", collection=pending.collection).count() == len(latest.chunks)
    pending.make_live()
    assert MilvusStore.open(milvus.uri, model="fake-bigram-64", name="toy2").collection == pending.collection
    with pytest.raises(IndexMismatch, match="not at .*reportqa index --store"):
        MilvusStore.open(milvus.uri, model="fake-bigram-64", collection=newer.collection)  # dropped by the switch


def test_unreachable_milvus_names_the_uri_and_the_fix():
    need("pymilvus", "milvus")
    from conftest import free_port

    from app.stores import connect

    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailable, match=rf"cannot reach Milvus at {uri}.*milvus:PATH.db"):
        connect(uri, timeout=2)


def test_missing_pymilvus_names_the_extra(monkeypatch):
    import sys

    from app.stores import connect

    monkeypatch.setitem(sys.modules, "pymilvus", None)  # import pymilvus now raises ImportError
    with pytest.raises(StoreUnavailable, match=r"pip install 'reportqa\[milvus\]'"):
        connect("/tmp/never.db")
