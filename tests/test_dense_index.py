"""`dense_index`: exact FAISS search against numpy brute force; the IVF above the switch keeps recall@10."""

from __future__ import annotations

import numpy as np
import pytest

from app import index as I
from app.bench import recall_at, synthetic_vectors
from app.index import ReportIndex, dense_index


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    """Clustered unit vectors, as embeddings are (random directions would be no test of an IVF)."""
    rng = np.random.default_rng(7)
    seeds = unit(rng.standard_normal((300, 32)) + 2.0)
    vectors = synthetic_vectors(seeds, 20_000, rng)
    queries = synthetic_vectors(seeds, 200, rng)
    return vectors, queries


def test_exact_index_equals_brute_force(data):
    vectors, queries = data
    index = dense_index(vectors)
    assert type(index).__name__ == "IndexFlatIP"
    sims, ids = index.search(queries, 10)
    brute = queries @ vectors.T
    ref = np.argsort(-brute, axis=1, kind="stable")[:, :10]
    assert np.allclose(sims, np.take_along_axis(brute, ref, axis=1), atol=1e-5)
    # ids agree wherever the scores are not tied
    assert (ids == ref).mean() > 0.99


def test_ivf_above_a_forced_threshold_keeps_recall(data):
    vectors, queries = data
    ivf = dense_index(vectors, exact_limit=1_000)
    assert "IVF" in type(ivf).__name__ and ivf.ntotal == len(vectors)
    _, exact = dense_index(vectors).search(queries, 10)
    _, approx = ivf.search(queries, 10)
    assert recall_at(approx, exact) >= 0.95


def test_empty_and_tiny_inputs():
    assert dense_index(np.zeros((0, 16), np.float32), 16).ntotal == 0
    assert dense_index(np.zeros((0,), np.float32), 16).d == 16
    one = unit(np.ones((1, 4)))
    assert dense_index(one, exact_limit=0).ntotal == 1  # an IVF of one list still works


def test_report_index_switches_and_reloads_the_saved_ivf(tiny_corpus, fake_encoder, tmp_path, monkeypatch):
    from app.load import load_corpus

    docs, _ = load_corpus([tiny_corpus])
    exact = ReportIndex.build(docs, fake_encoder)
    monkeypatch.setattr(I, "EXACT_LIMIT", 1)
    approx = ReportIndex.build(docs, fake_encoder)
    assert "IVF" in type(approx.dense).__name__
    q = "长治市有多少所校外培训机构纳入了全国平台管理？"
    assert [h.chunk.id for h in approx.search(q).hits] == [h.chunk.id for h in exact.search(q).hits]
    approx.save(tmp_path / "idx")
    read = []
    monkeypatch.setattr(I, "dense_index", lambda *a, **k: read.append("trained") or pytest.fail("trained again on load"))
    loaded = ReportIndex.load(tmp_path / "idx", fake_encoder)
    assert "IVF" in type(loaded.dense).__name__ and not read
    assert [h.chunk.id for h in loaded.search(q).hits] == [h.chunk.id for h in exact.search(q).hits]
