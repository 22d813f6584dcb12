"""The index with a fake encoder: build, search, save/load, damage, reuse; reference tests
for FAISS (against brute force) and BM25 (against a plain implementation)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from app import fusion as F
from app import query as Q
from app.errors import IndexMismatch, IndexMissing
from app.highlight import highlight
from app.index import BuildSettings, ReportIndex
from app.keyword import KeywordIndex, tokenize
from app.query import parse_query
from app.records import Chunk, Document

CONFLICT = "长治市有多少所校外培训机构纳入了全国平台管理？"


def _highlight(text, question, terms=None):
    return highlight(text, parse_query(question, terms=terms or ()))


class RandomEncoder:
    """Unrelated random unit vectors per text: no ties, for the FAISS reference test."""

    name = "random-32"
    dim = 32

    def _vec(self, text: str) -> np.ndarray:
        seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
        v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def queries(self, texts):
        return np.stack([self._vec(t) for t in texts])

    def passages(self, texts, progress=None):
        return np.stack([self._vec(t) for t in texts])


def long_docs() -> list[Document]:
    """Three reports long enough to give several overlapping chunks each at chunk_size=40."""
    sentences = {
        "x": ["长治市组建45个城乡义务教育学校共同体。", "优化289所学校办学条件。", "400名校长、5742名教师进行交流轮岗。",
              "全市188所校外培训机构全部纳入平台管理。", "课后服务惠及学校481所。", "建设普惠性幼儿园6所。"],
        "y": ["吕梁市现有在校生598764人。", "教职工62192人，专任教师49990人。", "全市各级各类学校1403所。",
              "其中幼儿园672所、小学521所。", "高中阶段毛入学率达到92%。"],
        "z": ["忻州市學前教育毛入園率達到96.7%。", "義務教育鞏固率達到99.9%。", "建成保德縣職業中學實訓基地。",
              "原平農校成為高水平中等職業學校建設單位。"],
    }  # fmt: skip
    city = {"x": "长治", "y": "吕梁", "z": "忻州"}
    return [Document(id=k, title=f"报告{k}", text="".join(v), city=city[k]) for k, v in sentences.items()]


SMALL = BuildSettings(chunk_size=40, chunk_overlap=15)


def results(answer) -> list[tuple[str, float, tuple[int, int]]]:
    return [(h.chunk.id, round(h.score, 6), h.highlight) for h in answer.hits]


# --------------------------------------------------------------------------- build and search


def test_build_tiny_index(tiny_index):
    assert set(tiny_index.docs) == {"a", "b", "c"}
    assert [c.id for c in tiny_index.chunks] == ["a#0", "b#0", "c#0"]
    assert tiny_index.vectors.shape == (3, 64)
    assert np.allclose(np.linalg.norm(tiny_index.vectors, axis=1), 1.0, atol=1e-5)
    assert tiny_index.dense.ntotal == 3


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_hits_cite_exact_offsets(tiny_index, mode):
    ans = tiny_index.search(CONFLICT, top_k=3, mode=mode)
    assert ans.hits
    for h in ans.hits:
        assert h.doc.text[h.chunk.start : h.chunk.end] == h.chunk.text
        s, e = h.highlight
        assert 0 <= s < e <= len(h.chunk.text)


def test_conflicting_figures_both_come_back(tiny_index):
    ans = tiny_index.search(CONFLICT, top_k=3)
    top = [h.doc.id for h in ans.hits[:3]]
    assert {"a", "b"} <= set(top)
    texts = " ".join(h.chunk.text for h in ans.hits)
    assert "188所" in texts and "192所" in texts


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "dense"])
def test_simplified_question_finds_traditional_text(tiny_index, mode):
    ans = tiny_index.search("忻州学前教育毛入园率是多少", top_k=3, mode=mode)
    assert ans.hits[0].doc.id == "c"
    assert "96.7%" in ans.hits[0].chunk.text


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "dense"])
def test_traditional_question_finds_simplified_text(tiny_index, mode):
    ans = tiny_index.search("課後服務惠及多少學生", top_k=3, mode=mode)
    assert ans.hits[0].doc.id == "b"
    s, e = ans.hits[0].highlight
    assert "课后服务" in ans.hits[0].chunk.text[s:e]


def test_search_many_matches_search(tiny_index):
    qs = [CONFLICT, "忻州学前教育毛入园率是多少", "課後服務惠及多少學生"]
    many = tiny_index.search_many(qs, top_k=2)
    assert [results(a) for a in many] == [results(tiny_index.search(q, top_k=2)) for q in qs]
    assert [a.question for a in many] == qs


def test_top_k_is_respected_and_hits_are_distinct(fake_encoder):
    idx = ReportIndex.build(long_docs(), fake_encoder, SMALL)
    assert len(idx.chunks) > 9
    for k in (1, 3, 6):
        ans = idx.search("全市学校和教师有多少", top_k=k)
        assert len(ans.hits) == k
        spans: dict[str, list[tuple[int, int]]] = {}
        for h in ans.hits:
            for s, e in spans.get(h.doc.id, []):
                assert not (h.chunk.start < e and s < h.chunk.end), "two overlapping passages returned"
            spans.setdefault(h.doc.id, []).append((h.chunk.start, h.chunk.end))


def test_city_named_in_question_ranks_first(fake_encoder):
    idx = ReportIndex.build(long_docs(), fake_encoder, SMALL)
    ans = idx.search("吕梁有多少所幼儿园", top_k=3)
    assert ans.hits[0].doc.id == "y"


# --------------------------------------------------------------------------- save and load


def test_save_load_round_trip_gives_identical_results(tiny_index, fake_encoder, tmp_path):
    live = tiny_index.save(tmp_path / "idx")
    assert (tmp_path / "idx" / "CURRENT").read_text().strip() == live.name
    for f in ("params.json", "docs.jsonl", "chunks.jsonl", "vectors.npy", "dense.faiss"):
        assert (live / f).is_file()
    params = json.loads((live / "params.json").read_text())
    assert params["model"] == fake_encoder.name and params["dim"] == 64 and params["chunks"] == 3
    loaded = ReportIndex.load(tmp_path / "idx", fake_encoder)
    loaded.trust = tiny_index.trust  # the same search path on both sides (conftest: the hand-set one)
    assert loaded.chunks == tiny_index.chunks
    assert loaded.docs == tiny_index.docs
    assert np.array_equal(loaded.vectors, tiny_index.vectors)
    for q in (CONFLICT, "忻州学前教育毛入园率是多少", "課後服務惠及多少學生"):
        for mode in ("hybrid", "dense", "keyword"):
            assert results(loaded.search(q, top_k=3, mode=mode)) == results(tiny_index.search(q, top_k=3, mode=mode))


def test_next_save_replaces_and_sweeps_the_old_build(tiny_index, tmp_path, monkeypatch):
    first = tiny_index.save(tmp_path / "idx")
    monkeypatch.setattr(os, "getpid", lambda: 424242)  # as the next run would be: another process
    second = tiny_index.save(tmp_path / "idx")
    assert second != first
    builds = sorted(p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith("build-"))
    assert builds == [second.name]


def test_two_saves_in_the_same_second(tiny_index, tmp_path):
    tiny_index.save(tmp_path / "idx")
    live = tiny_index.save(tmp_path / "idx")
    assert (tmp_path / "idx" / "CURRENT").read_text().strip() == live.name


@pytest.mark.parametrize("crash_at", ["np.save", "first os.replace", "CURRENT os.replace"])
def test_crash_mid_save_leaves_the_previous_index_usable(tiny_index, fake_encoder, tmp_path, monkeypatch, crash_at):
    folder = tmp_path / "idx"
    tiny_index.save(folder)
    before = {q: results(tiny_index.search(q, top_k=3)) for q in (CONFLICT, "課後服務惠及多少學生")}

    docs = list(tiny_index.docs.values())
    docs[0] = Document(**(docs[0].to_dict() | {"text": "全市新建幼儿园20所。"}))
    newer = ReportIndex.build(docs, fake_encoder)

    class Crash(Exception):
        pass

    real_replace = os.replace
    calls = []

    def replace(src, dst):
        calls.append(Path(dst).name)
        if (crash_at == "first os.replace" and len(calls) == 1) or (
            crash_at == "CURRENT os.replace" and Path(dst).name == "CURRENT"
        ):
            raise Crash("killed")
        return real_replace(src, dst)

    def bad_save(*a, **k):
        raise Crash("killed")

    if crash_at == "np.save":
        monkeypatch.setattr(np, "save", bad_save)
    else:
        monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Crash):
        newer.save(folder)
    monkeypatch.undo()

    again = ReportIndex.load(folder, fake_encoder)
    again.trust = tiny_index.trust
    assert {q: results(again.search(q, top_k=3)) for q in before} == before
    assert "全市新建幼儿园20所。" not in [c.text for c in again.chunks]

    # The next run (another process) saves, goes live and sweeps the half-written build away.
    monkeypatch.setattr(os, "getpid", lambda: 424242)
    newer.save(folder)
    assert "全市新建幼儿园20所。" in [c.text for c in ReportIndex.load(folder, fake_encoder).chunks]
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp") and p.is_dir()]
    assert leftovers == []
    assert len([p for p in folder.iterdir() if p.name.startswith("build-")]) == 1


@pytest.fixture
def saved(tiny_index, tmp_path):
    folder = tmp_path / "idx"
    live = tiny_index.save(folder)
    return folder, live


def test_truncated_vectors_are_refused(saved, fake_encoder):
    folder, live = saved
    data = (live / "vectors.npy").read_bytes()
    (live / "vectors.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexMismatch, match="reportqa index") as e:
        ReportIndex.load(folder, fake_encoder)
    assert "vectors.npy" in str(e.value)
    # Without checksum verification the damage is still caught when reading.
    with pytest.raises(IndexMismatch, match="reportqa index"):
        ReportIndex.load(folder, fake_encoder, verify=False)


def test_edited_chunks_are_refused(saved, fake_encoder):
    folder, live = saved
    p = live / "chunks.jsonl"
    p.write_text(p.read_text("utf-8").replace("188所", "999所"), encoding="utf-8")
    with pytest.raises(IndexMismatch, match="reportqa index") as e:
        ReportIndex.load(folder, fake_encoder)
    assert "chunks.jsonl" in str(e.value)


def test_dropped_chunk_line_is_refused_even_unverified(saved, fake_encoder):
    folder, live = saved
    p = live / "chunks.jsonl"
    p.write_text("\n".join(p.read_text("utf-8").splitlines()[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(IndexMismatch, match="reportqa index"):
        ReportIndex.load(folder, fake_encoder, verify=False)


def test_damaged_params_and_pointer_are_refused(saved, fake_encoder):
    folder, live = saved
    (live / "params.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(IndexMismatch, match="reportqa index"):
        ReportIndex.load(folder, fake_encoder)
    (folder / "CURRENT").write_text("build-that-is-gone\n")
    with pytest.raises(IndexMismatch, match="reportqa index"):
        ReportIndex.load(folder, fake_encoder)


def test_other_model_is_refused(saved):
    folder, _ = saved
    other = RandomEncoder()
    with pytest.raises(IndexMismatch, match="reportqa index") as e:
        ReportIndex.load(folder, other)
    assert "fake-bigram-64" in str(e.value) and "random-32" in str(e.value)


def test_other_settings_and_format_are_refused(saved, fake_encoder):
    folder, live = saved
    with pytest.raises(IndexMismatch, match="settings"):
        ReportIndex.load(folder, fake_encoder, settings=BuildSettings(chunk_size=100))
    assert ReportIndex.load(folder, fake_encoder, settings=BuildSettings()).chunks
    params = json.loads((live / "params.json").read_text())
    (live / "params.json").write_text(json.dumps(params | {"format_version": 999}))
    with pytest.raises(IndexMismatch, match="format"):
        ReportIndex.load(folder, fake_encoder)


def test_missing_index(tmp_path, fake_encoder):
    with pytest.raises(IndexMissing, match="reportqa index"):
        ReportIndex.load(tmp_path / "nothing-here", fake_encoder)


# --------------------------------------------------------------------------- reuse of vectors


def test_rebuild_reuses_vectors_of_unchanged_passages(fake_encoder):
    docs = long_docs()
    old = ReportIndex.build(docs, fake_encoder, SMALL)
    assert fake_encoder.passages_embedded == len(old.chunks)

    FakeEncoder = type(fake_encoder)
    enc = FakeEncoder()
    same = ReportIndex.build(docs, enc, SMALL, reuse=old.vector_cache())
    assert enc.passages_embedded == 0
    assert np.array_equal(same.vectors, old.vectors)
    assert same.hashes == old.hashes

    changed = list(docs)
    changed[1] = Document(**(docs[1].to_dict() | {"text": docs[1].text + "全市新增学位3000个。"}))
    enc2 = FakeEncoder()
    new = ReportIndex.build(changed, enc2, SMALL, reuse=old.vector_cache())
    new_hashes = set(new.hashes) - set(old.hashes)
    assert 0 < enc2.passages_embedded == len(new_hashes) < len(new.chunks)
    assert all(c.doc_id == "y" for c, h in zip(new.chunks, new.hashes, strict=True) if h in new_hashes)
    # Reused and fresh vectors are the same vectors.
    assert np.allclose(new.vectors, FakeEncoder().passages(_embedded_texts(new)), atol=1e-6)


def _embedded_texts(idx: ReportIndex) -> list[str]:
    from app.index import context_text

    return [context_text(c, idx.docs[c.doc_id], idx.build_settings) for c in idx.chunks]


def test_an_index_of_another_format_is_rebuilt_without_re_embedding(fake_encoder, tmp_path):
    """After an upgrade changes the index format, `update_index` still takes the saved vectors."""
    from app.changes import update_index

    docs = long_docs()
    folder = tmp_path / "idx"
    first = update_index(docs, folder, fake_encoder, SMALL)
    params = ReportIndex.live_folder(folder) / "params.json"
    params.write_text(json.dumps(json.loads(params.read_text()) | {"format_version": 0}))
    with pytest.raises(IndexMismatch, match="format 0"):
        ReportIndex.load(folder, fake_encoder)
    enc = type(fake_encoder)()
    again = update_index(docs, folder, enc, SMALL)
    assert enc.passages_embedded == 0 and again.embedded == 0 and again.reused == len(first.index.chunks)
    assert np.array_equal(again.index.vectors, first.index.vectors)
    # ... but not vectors of another model, nor from a damaged folder
    assert ReportIndex.saved_vectors(folder, "another-model") == {}
    assert ReportIndex.saved_vectors(tmp_path / "nothing", fake_encoder.name) == {}
    vectors = ReportIndex.live_folder(folder) / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-4] + b"\0\0\0\0")
    assert ReportIndex.saved_vectors(folder, fake_encoder.name) == {}


def test_progress_reports_reused_and_embedded(fake_encoder):
    docs = long_docs()
    old = ReportIndex.build(docs, fake_encoder, SMALL)
    seen = []
    ReportIndex.build(
        docs, fake_encoder, SMALL, progress=lambda done, total: seen.append((done, total)), reuse=old.vector_cache()
    )
    texts = len(old.chunks) + len(set(old.sentences.hashes))  # passages and their (distinct) sentences
    assert seen and seen[0] == seen[-1] == (texts, texts)  # everything reused: done from the start
    fresh = []
    ReportIndex.build(docs, fake_encoder, SMALL, progress=lambda done, total: fresh.append((done, total)))
    assert fresh[0] == (0, texts) and fresh[-1] == (texts, texts)
    assert [d for d, _ in fresh] == sorted(d for d, _ in fresh)


def test_sentences_are_embedded_once_and_located_in_their_passage(fake_encoder):
    idx = ReportIndex.build(long_docs(), fake_encoder, SMALL)
    st = idx.sentences
    assert len(st.vectors) == len(st.chunk) == len(st.hashes) > len(idx.chunks)
    for i in range(len(st.chunk)):
        chunk = idx.chunks[st.chunk[i]]
        assert st.of_chunk(int(st.chunk[i])).start <= i < st.of_chunk(int(st.chunk[i])).stop
        assert np.allclose(st.vectors[i], fake_encoder._vec(chunk.text[st.start[i] : st.end[i]].strip()))
    assert fake_encoder.sentences_embedded == len(set(st.hashes))  # overlapping chunks share sentences
    again = ReportIndex.build(long_docs(), fake_encoder, SMALL, reuse=idx.vector_cache())
    assert fake_encoder.sentences_embedded == len(set(st.hashes)) and np.array_equal(again.sentences.vectors, st.vectors)


# --------------------------------------------------------------------------- reference tests


def test_faiss_top_k_equals_brute_force():
    enc = RandomEncoder()
    idx = ReportIndex.build(long_docs(), enc, SMALL)
    n = len(idx.chunks)
    for q in ["教师", "幼儿园有多少", "毛入學率", "课后服务"]:  # (English questions get translated terms added)
        qv = enc.queries([q])
        sims, rows = idx.dense.search(qv, n)
        brute = idx.vectors @ qv[0]
        expected = np.argsort(-brute, kind="stable")
        assert rows[0].tolist() == expected.tolist()
        assert np.allclose(sims[0], brute[expected], atol=1e-5)
        # Dense mode ranks the same way: the first passage covers the best chunk
        # (possibly merged with an overlapping neighbour).
        ans = idx.search(q, top_k=1, mode="dense")
        best, got = idx.chunks[int(expected[0])], ans.hits[0].chunk
        assert got.doc_id == best.doc_id and got.start <= best.start and best.end <= got.end


def plain_bm25(docs: list[list[str]], query: list[str], k1: float = 1.2, b: float = 0.75) -> list[float]:
    n = len(docs)
    avgdl = sum(map(len, docs)) / n
    out = []
    for d in docs:
        s = 0.0
        for t in query:
            df = sum(t in x for x in docs)
            if not df:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = d.count(t)
            s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avgdl))
        out.append(s)
    return out


TOY = [
    "长治市校外培训机构全部纳入平台管理",
    "吕梁市专任教师49990人，教职工62192人",
    "忻州市學前教育毛入園率達到96.7%",
    "校外培训机构监管平台，培训机构治理，培训",
    "全市幼儿园672所，小学521所，幼儿园普惠",
    "课后服务惠及学生31万余名",
]


@pytest.mark.parametrize(
    "query", ["校外培训机构", "幼儿园有多少所", "教师人数", "学前教育入园率", "培训 平台 管理 幼儿园", "火星"]
)
def test_bm25_agrees_with_a_plain_implementation(query):
    docs = [tokenize(t) for t in TOY]
    ki = KeywordIndex()
    ki.index(docs)
    q = tokenize(query)
    ours = ki.scores(q)
    ref = np.array(plain_bm25(docs, q))
    # bm25s's lucene variant leaves out the constant (k1 + 1): same ranking, scaled scores.
    assert np.allclose(ours * (1.2 + 1), ref, rtol=1e-4, atol=1e-6)
    assert np.argsort(-ours, kind="stable").tolist() == np.argsort(-ref, kind="stable").tolist()
    for t, idf in ki.idf.items():
        df = sum(t in d for d in docs)
        assert idf == pytest.approx(math.log(1 + (len(docs) - df + 0.5) / (df + 0.5)))


def test_bm25_survives_save_and_load(tmp_path):
    docs = [tokenize(t) for t in TOY]
    ki = KeywordIndex()
    ki.index(docs)
    ki.save(tmp_path / "bm25")
    back = KeywordIndex.load(tmp_path / "bm25", len(docs))
    q = tokenize("校外培训机构幼儿园")
    assert np.allclose(back.scores(q), ki.scores(q))
    assert back.idf == pytest.approx(ki.idf)


def test_tokenize_folds_script_and_drops_stop_words():
    assert tokenize("學前教育") == tokenize("学前教育")
    toks = tokenize("长治市有多少所校外培训机构？")
    assert "多少" not in toks and "？" not in toks and "校外" in toks
    assert tokenize("How many teachers") == ["teachers"]


# --------------------------------------------------------------------------- pure search functions


def chunk(doc_id: str, start: int, end: int, n: int = 0) -> Chunk:
    return Chunk(f"{doc_id}#{n}", doc_id, n, "x" * (end - start), start, end)


def test_distinct_skips_overlapping_passages_of_the_same_report():
    chunks = [chunk("a", 0, 10, 0), chunk("a", 5, 15, 1), chunk("a", 10, 20, 2), chunk("b", 0, 10, 0), chunk("a", 14, 30, 3)]
    assert F.distinct([0, 1, 2, 3, 4], chunks, 5) == [[0], [2], [3]]
    assert F.distinct([1, 0, 2, 3], chunks, 5) == [[1], [3]]
    assert F.distinct([0, 1, 2, 3], chunks, 2) == [[0], [2]]
    assert F.distinct([], chunks, 3) == []


def test_distinct_merges_an_overlapping_neighbour_within_the_limit():
    chunks = [chunk("a", 0, 10, 0), chunk("a", 5, 15, 1), chunk("a", 10, 20, 2), chunk("b", 0, 10, 0)]
    # 0-15 fits in 15 characters; row 2 would stretch it to 0-20 and overlaps it, so it is skipped
    assert F.distinct([0, 1, 3, 2], chunks, 5, merge_up_to=15) == [[0, 1], [3]]
    assert F.distinct([0, 1, 3, 2], chunks, 5, merge_up_to=20) == [[0, 1, 2], [3]]
    text = "0123456789abcdefghij"
    merged = F.merged_chunk([1, 0], [Chunk("a#0", "a", 0, text[0:10], 0, 10), Chunk("a#1", "a", 1, text[5:15], 5, 15)], text)
    assert (merged.start, merged.end, merged.text, merged.id) == (0, 15, text[:15], "a#0+1")


def test_minmax_scales_to_unit_range_and_survives_a_flat_signal():
    assert np.allclose(F.minmax(np.array([4.0, 2.0, 0.0], np.float32)), [1.0, 0.5, 0.0])
    flat = F.minmax(np.zeros(3, np.float32))  # no keyword match at all: zeros, not a division by zero
    assert np.all(np.isfinite(flat)) and np.allclose(flat, 0.0)
    assert F.minmax(np.zeros(0, np.float32)).size == 0


def test_highlight_picks_the_answering_sentence():
    text = "全市现有在校生598764人。教职工62192人，专任教师49990人。下一步持续发力。"
    s, e = _highlight(text, "吕梁有多少专任教师")
    assert text[s:e] == "教职工62192人，专任教师49990人。"


def test_mentioned_cities():
    assert Q.mentioned_cities("長治市有多少學校") == ({"长治"}, False)
    assert Q.mentioned_cities("How many teachers does Lüliang have?")[0] == {"吕梁"}
    assert Q.mentioned_cities("太原市有多少学校") == (set(), True)


def test_empty_corpus_builds_an_index_that_answers_nothing(fake_encoder, tmp_path):
    from app.index import ReportIndex

    idx = ReportIndex.build([], fake_encoder)
    idx.save(tmp_path / "empty")
    again = ReportIndex.load(tmp_path / "empty", fake_encoder)
    ans = again.search("长治有多少所学校？")
    assert ans.hits == [] and not ans.answered
