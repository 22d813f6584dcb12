"""`reportqa bench` in quick mode with the fake encoder: the figures are all there and sane.

Timings are not checked against thresholds (they depend on the machine); only their shape.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import ROOT, FakeEncoder

from app import bench
from app.bench import format_table, pad_questions, recall_at, run_bench, synthetic_vectors


@pytest.fixture(scope="module")
def result():
    return run_bench(FakeEncoder(), ROOT, quick=True, growth_sizes=(2_000, 5_000), echo=lambda m: None)


def test_quick_run_has_every_figure(result):
    assert {"machine", "encoder", "indexing", "latency", "cold_start", "growth", "exact_limit", "serving_rss_mb"} <= set(result)
    assert result["machine"]["cpus"] >= 1 and result["machine"]["versions"]["faiss-cpu"]
    has_benchmarks = (ROOT.parent / "shared" / "benchmarks" / "cmrc2018_trial.json").exists()
    assert [r["corpus"] for r in result["indexing"]] == ["reports", "cmrc2018"][: 1 + has_benchmarks]
    for r in result["indexing"]:
        assert r["chunks"] > 0 and r["raw_encode_chunks_per_s"] > 0 and r["pipeline_chunks_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["pipeline_chunks_per_s"] / r["raw_encode_chunks_per_s"])
    from app.chunk import chunk_document
    from app.index import BuildSettings
    from app.load import load_corpus

    docs, _ = load_corpus([ROOT / "corpus"])
    s = BuildSettings()
    assert result["indexing"][0]["chunks"] == sum(len(chunk_document(d, s.chunk_size, s.chunk_overlap)) for d in docs)


def test_latency_covers_200_questions_per_mode(result):
    for r in result["latency"]:
        assert r["questions"] == 200
        for k in ("embed", "keyword", "dense", "hybrid"):
            assert r[k]["n"] == 200 and 0 < r[k]["p50_ms"] <= r[k]["p95_ms"]
        assert r["hybrid_over_embed_p50"] > 0


def test_growth_rows(result):
    assert [g["n"] for g in result["growth"]] == [2_000, 5_000]
    for g in result["growth"]:
        assert g["exact"]["bytes"] == g["n"] * g["dim"] * 4
        assert g["ivf"]["nlist"] >= 1 and g["ivf"]["build_s"] >= 0
        recalls = [s["recall@10"] for s in g["ivf"]["sweep"]]
        assert all(0 <= x <= 1 for x in recalls) and recalls == sorted(recalls)  # more lists searched, no less recall
        assert g["auto"] == "exact"  # far below the switch


def test_cold_start_is_skipped_for_a_stand_in_encoder(result):
    assert "skipped" in result["cold_start"]


def test_table_and_json(result):
    text = format_table(result)
    for head in ("Indexing", "Query latency", "Growth", "hybrid/embed p50", "IVF recall@10", "reranking adds"):
        assert head in text
    assert json.loads(json.dumps(result)) == result


def test_synthetic_vectors_are_unit_and_near_their_seeds():
    import numpy as np

    rng = np.random.default_rng(1)
    seeds = rng.standard_normal((50, 16)).astype(np.float32) + 3.0
    seeds /= np.linalg.norm(seeds, axis=1, keepdims=True)
    x = synthetic_vectors(seeds, 1000, np.random.default_rng(0), block=300)
    assert x.shape == (1000, 16) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert (x @ seeds.T).max(1).mean() > 0.9  # near a real vector, as real neighbours are


def test_helpers():
    assert pad_questions(["a", "b"], ["b", "c"], 5) == ["a", "b", "c", "a", "b"]
    assert pad_questions(["a", "b", "c"], [], 2) == ["a", "b"]
    import numpy as np

    assert recall_at(np.array([[1, 2, 3]]), np.array([[3, 2, 9]]), k=3) == pytest.approx(2 / 3)


def test_cli_bench_json(monkeypatch):
    monkeypatch.setattr("app.cli.make_encoder", FakeEncoder)
    monkeypatch.setattr(bench, "QUICK_SIZES", (1_000,))
    res = CliRunner().invoke(__import__("app.cli", fromlist=["cli"]).cli, ["bench", "--quick", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["quick"] and [g["n"] for g in out["growth"]] == [1_000]


def test_latency_measures_what_reranking_adds(tiny_index, result):
    """With a query cache (as the real encoder has), the search is timed with and without the
    learned models, interleaved, and the table shows the difference."""
    from app import trust
    from app.bench import bench_latency

    class CachingFake(FakeEncoder):
        cache_size = 1024

    tiny_index.encoder = CachingFake()
    tiny_index.trust = trust.shipped()  # the reranking path, whatever the fake vectors say
    qs = ["长治市有多少所校外培训机构？", "忻州的幼儿园", "吕梁教师培训"] * 4
    row = bench_latency("tiny", tiny_index, qs, tiny_index.encoder)
    assert row["hybrid_repeated"]["n"] == row["fused_repeated"]["n"] == len(qs)
    assert row["rerank_added_p50_ms"] == row["hybrid_repeated"]["p50_ms"] - row["fused_repeated"]["p50_ms"]
    r = dict(result, latency=[row])  # the quick run's other figures around this row
    assert f"/ +{row['rerank_added_p50_ms']:.2f}" in format_table(r)
