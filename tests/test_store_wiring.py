"""The search goes through `index.store`: on the default (embedded) store it gives exactly what it
gave before. `tests/data/store_golden.json` holds the answers of the tiny fake-encoder index (every
mode, filters, hand-set and learned path); they must come back bit for bit: the same passages,
highlights and decisions, and float scores to 1e-6 (another CPU's vector instructions may round
a float32 similarity's last bit the other way: 0.34044144 for 0.34044141). The hand-set path was recorded before the store was wired
in (dec2d81); the learned path with a fixed tiny model (`conftest.tiny_trust`), recorded again
after the wiring (d157762) when it stopped using the shipped model, which changes when retrained,
and again when its highlight took the sentence vectors (`highlight.blended_highlight`), and for
features v4 (the tiny model is fitted on random rows as wide as the features: wider rows, another model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import STRINGS, tiny_trust

GOLDEN = Path(__file__).resolve().parent / "data" / "store_golden.json"
QUESTIONS = [
    "长治市有多少所校外培训机构纳入了全国平台管理？",
    "忻州學前教育毛入園率是多少",
    "课后服务惠及多少学生",
    "普惠性幼儿园建了几所",
    "How many training institutions are on the platform?",
    "没有任何关系的问题火星",
    *STRINGS[3:9],
]
CASES = [{}, {"city": "长治"}, {"report": "b"}, {"date_from": "2024", "date_to": "2024-12"}]


def snapshot(index) -> list:
    """Every answer of QUESTIONS in each mode and filter case, as plain JSON."""
    from app.answer import answer_many

    out = []
    for mode in ("hybrid", "keyword", "dense"):
        for kw in CASES:
            for a in answer_many(index, QUESTIONS, top_k=5, mode=mode, **kw):
                out.append({"mode": mode, "filter": kw, "question": a.question, "answered": a.answered,
                            "confidence": float(a.confidence), "notice": a.notice,
                            "hits": [[h.chunk.id, h.chunk.start, h.chunk.end, list(h.highlight), float(h.score),
                                      {k: float(v) for k, v in h.signals.items()}] for h in a.hits]})  # fmt: skip
    return out


def indexes(tiny_corpus, fake_encoder) -> dict:
    """The tiny index on the hand-set path and on the learned (shipped model) path."""
    from app.index import ReportIndex
    from app.load import load_corpus

    docs, _ = load_corpus([tiny_corpus])
    hand = ReportIndex.build(docs, fake_encoder)
    hand.trust = None
    learned = ReportIndex.build(docs, fake_encoder)
    learned.trust = tiny_trust()
    return {"hand": hand, "learned": learned}


def same(got, want) -> bool:
    """Equal, floats within 1e-6 (relative)."""
    if isinstance(want, float) and isinstance(got, (int, float)):
        return got == pytest.approx(want, rel=1e-6, abs=1e-9)
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    return type(got) is type(want) and got == want


def test_same_compares_floats_to_a_millionth_and_all_else_exactly():
    assert same({"a": [1, "x", 0.34044141]}, {"a": [1, "x", 0.34044143]})
    assert not same({"a": [1, "x", 0.3405]}, {"a": [1, "x", 0.3404]})
    assert not same({"a": [2, "x", 0.34]}, {"a": [1, "x", 0.34]})
    assert not same({"a": [[41, 59]]}, {"a": [[40, 59]]})
    assert not same({"a": [1]}, {"a": [1, 2]})


def test_the_embedded_store_gives_the_answers_recorded_before_it(tiny_corpus, fake_encoder):
    from app.stores import EmbeddedStore

    want = json.loads(GOLDEN.read_text("utf-8"))
    for name, index in indexes(tiny_corpus, fake_encoder).items():
        assert isinstance(index.store, EmbeddedStore)
        got = json.loads(json.dumps(snapshot(index), ensure_ascii=False))
        assert len(got) == len(want[name])
        for g, w in zip(got, want[name]):
            assert same(g, w), (name, g["mode"], g["filter"], g["question"], g, w)


if __name__ == "__main__":  # records the golden answers (the hand-set path once, before the store was wired in)
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from conftest import TINY, TINY_MANIFEST, FakeEncoder

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        for name, text in TINY.items():
            (folder / name).write_text(text, encoding="utf-8")
        (folder / "manifest.json").write_text(TINY_MANIFEST, encoding="utf-8")
        got = {name: snapshot(ix) for name, ix in indexes(folder, FakeEncoder()).items() if name in sys.argv[1:] or not sys.argv[1:]}
    got = json.loads(GOLDEN.read_text("utf-8")) | got  # `python tests/test_store_wiring.py learned`: that path only
    GOLDEN.write_text(json.dumps(got, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}: {sum(map(len, got.values()))} answers")


def test_a_row_mask_becomes_ranges_of_ids_for_milvus():
    import re

    from app.stores import mask_expression

    rng = np.random.default_rng(0)
    for mask in [rng.random(50) < 0.5, np.repeat(rng.random(12) < 0.5, 9), np.ones(7, bool), np.zeros(7, bool),
                 np.r_[np.zeros(5, bool), np.ones(40, bool)]]:  # fmt: skip
        expr = mask_expression(mask)
        if mask.all():
            assert expr == ""
            continue
        ids = set()
        for a, b in re.findall(r"id >= (\d+) and id <= (\d+)", expr):
            ids |= set(range(int(a), int(b) + 1))
        for listed in re.findall(r"id in \[([^\]]*)\]", expr):
            ids |= {int(x) for x in listed.split(",") if x.strip()}
        assert ids == set(np.flatnonzero(mask).tolist()), expr
    assert mask_expression(np.repeat([True, False, True], 100)) == "(id >= 0 and id <= 99) or (id >= 200 and id <= 299)"


# ---------------------------------------------------------------------- through the CLI


def _ask(runner, index_dir, question, *extra) -> list[dict]:
    from app.cli import cli

    r = runner.invoke(cli, ["ask", "--json", "--index", str(index_dir), *extra, question], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout.strip().splitlines()[-1])


def _index(runner, *args):
    from app.cli import cli

    r = runner.invoke(cli, ["index", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


def _passages(ans: dict) -> list[tuple]:
    return [(p["doc_id"], p["start"], p["end"], tuple(p["highlight"])) for p in ans["passages"]]


# Ray first: a local Ray started in a process that already runs Milvus Lite's gRPC client timed
# out starting here (its forks); `reportqa index` also starts Ray (embedding) before Milvus (saving).
@pytest.mark.slow
def test_index_with_ray_workers_gives_the_in_process_vectors(runner, encoder, tiny_corpus, tmp_path, ray_local):
    from app.index import ReportIndex

    local, on_ray = tmp_path / "local", tmp_path / "ray"
    _index(runner, "--corpus", str(tiny_corpus), "--index", str(local))
    r = _index(runner, "--corpus", str(tiny_corpus), "--index", str(on_ray), "--workers", "ray")
    assert "3 documents" in r.stderr
    a, b = ReportIndex.load(local, encoder), ReportIndex.load(on_ray, encoder)
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    for x, y in ((a.vectors, b.vectors), (a.sentences.vectors, b.sentences.vectors)):
        cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
        assert len(cos) and cos.min() >= 0.9999


@pytest.fixture
def milvus_db(tmp_path):
    pytest.importorskip("pymilvus", reason="pymilvus is not installed: pip install 'reportqa[milvus]'")
    pytest.importorskip("milvus_lite", reason="milvus-lite is not installed: pip install 'reportqa[milvus]'")
    return tmp_path / "milvus" / "store.db"


@pytest.mark.slow
def test_a_milvus_lite_index_is_built_asked_added_to_and_removed_from(runner, encoder, tiny_corpus, tmp_path, milvus_db):
    from app.cli import cli
    from app.index import ReportIndex
    from app.stores import MilvusStore, StoreRef

    emb_dir, mv_dir = tmp_path / "emb", tmp_path / "mv"
    _index(runner, "--corpus", str(tiny_corpus), "--index", str(emb_dir))
    r = _index(runner, "--corpus", str(tiny_corpus), "--index", str(mv_dir), "--store", f"milvus:{milvus_db}")
    assert f"searched through milvus:{milvus_db}" in r.stderr
    params = ReportIndex.read_params(mv_dir)
    assert params["store"]["spec"] == f"milvus:{milvus_db}" and params["store"]["collection"]
    assert ReportIndex.read_params(emb_dir)["store"] == {"spec": "embedded"}
    # the same top 5 as the embedded index, filters included
    for q in QUESTIONS:
        for extra in ([], ["--city", "长治"], ["--report", "c"]):
            got, want = _ask(runner, mv_dir, q, *extra), _ask(runner, emb_dir, q, *extra)
            assert _passages(got) == _passages(want), (q, extra)
            assert got["answered"] == want["answered"] and abs(got["confidence"] - want["confidence"]) < 1e-4
    loaded = ReportIndex.load(mv_dir, encoder)
    assert isinstance(loaded.store, MilvusStore) and loaded.store.count() == len(loaded.chunks)
    # added: the new report's passage is in the collection and found through it
    new = tmp_path / "d.txt"
    new.write_text("吕梁市新建乡村寄宿制学校12所，惠及学生8600名。", encoding="utf-8")
    r = runner.invoke(cli, ["add", str(new), "--city", "吕梁", "--index", str(mv_dir)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    ans = _ask(runner, mv_dir, "吕梁新建了多少所寄宿制学校")
    assert ans["passages"][0]["doc_id"] == "d"
    after = ReportIndex.load(mv_dir, encoder)
    assert after.store.count() == len(after.chunks) == len(loaded.chunks) + 1
    assert after.store_ref.collection != loaded.store_ref.collection  # a new build went live
    assert loaded.store_ref.collection not in after.store.client.list_collections()  # the earlier one dropped
    # removed: gone from the collection too
    r = runner.invoke(cli, ["remove", "d", "--index", str(mv_dir)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    gone = ReportIndex.load(mv_dir, encoder)
    assert gone.store.count() == len(gone.chunks) == len(loaded.chunks)
    assert "d" not in {p["doc_id"] for p in _ask(runner, mv_dir, "吕梁新建了多少所寄宿制学校")["passages"]}
    # `index` without --store keeps the index's store; --store embedded goes back
    _index(runner, "--index", str(mv_dir))
    assert StoreRef.from_params(ReportIndex.read_params(mv_dir)).spec == f"milvus:{milvus_db}"
    _index(runner, "--index", str(mv_dir), "--store", "embedded")
    assert ReportIndex.read_params(mv_dir)["store"] == {"spec": "embedded"}
    assert ReportIndex.load(mv_dir, encoder).store_ref is None


@pytest.mark.slow
def test_a_milvus_index_whose_collection_is_gone_or_another_models_names_the_fix(runner, encoder, tiny_corpus, tmp_path,
                                                                                  milvus_db):  # fmt: skip
    from app.cli import cli
    from app.index import ReportIndex

    folder = tmp_path / "mv"
    _index(runner, "--corpus", str(tiny_corpus), "--index", str(folder), "--store", f"milvus:{milvus_db}")
    index = ReportIndex.load(folder, encoder)
    index.store.client.drop_collection(index.store_ref.collection)
    r = runner.invoke(cli, ["ask", "--index", str(folder), "培训机构"])
    assert r.exit_code == 1
    assert "is not at" in r.output and f"reportqa index --store milvus:{milvus_db}" in r.output


def test_a_bad_store_value_names_the_forms(runner, encoder, tiny_corpus, tmp_path):
    from app.cli import cli

    r = runner.invoke(cli, ["index", "--corpus", str(tiny_corpus), "--index", str(tmp_path / "x"), "--store", "redis://h"])
    assert r.exit_code == 2 and "milvus:PATH.db" in r.output and "milvus://HOST:19530" in r.output
    assert not (tmp_path / "x" / "CURRENT").exists()


@pytest.mark.slow
def test_an_unreachable_milvus_is_said_before_anything_is_embedded(runner, encoder, tiny_corpus, tmp_path):
    pytest.importorskip("pymilvus", reason="pymilvus is not installed: pip install 'reportqa[milvus]'")
    from conftest import free_port

    from app.cli import cli

    port = free_port()
    r = runner.invoke(cli, ["index", "--corpus", str(tiny_corpus), "--index", str(tmp_path / "x"), "--store", f"milvus://127.0.0.1:{port}"])
    assert r.exit_code == 1
    assert f"cannot reach Milvus at http://127.0.0.1:{port}" in r.output and "milvus:PATH.db" in r.output
    assert encoder.passages_embedded == 0 and not (tmp_path / "x" / "CURRENT").exists()


def test_an_index_made_before_the_stores_opens_on_the_embedded_store(tiny_index, tmp_path, fake_encoder):
    from app.index import ReportIndex
    from app.stores import EmbeddedStore

    tiny_index.save(tmp_path / "old")
    live = ReportIndex.live_folder(tmp_path / "old")
    params = json.loads((live / "params.json").read_text())
    del params["store"]  # as an index of before #17 records it
    (live / "params.json").write_text(json.dumps(params))
    assert isinstance(ReportIndex.load(tmp_path / "old", fake_encoder).store, EmbeddedStore)
