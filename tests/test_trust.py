"""The learned reranker and answerability model: the model file, its refusal of other features,
its use in the search, and `reportqa train` reproducible on tiny data with the fake encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tiny_models

from app import features as FT
from app import trust
from app.errors import ModelError
from app.index import SearchSettings
from app.search import HAND_THRESHOLD

CONFLICT = "长治市有多少所校外培训机构纳入了全国平台管理？"


@pytest.fixture
def model_file(tmp_path):
    ranker, ans = tiny_models()
    path = tmp_path / "trust.json"
    trust.write(path, ranker, ans, [-1.0, 0.0, 1.0], [0.1, 0.5, 0.9], 0.5, {"test": True})
    return path


def test_a_model_file_round_trips(model_file):
    m = trust.load(model_file)
    assert m.threshold == 0.5 and m.feature_version == FT.FEATURE_VERSION and len(m.sha256) == 64
    assert m.calibrated(np.array([-5.0, 0.0, 5.0])).tolist() == [0.1, 0.5, 0.9]
    X = np.zeros((3, len(FT.FEATURES)))
    X[:, 0] = [-1.0, 2.0, 0.5]
    assert m.rank(X).shape == (3,)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"feature_version": FT.FEATURE_VERSION + 1}, "features v"), ({"features": ["fused"]}, "features v"), ({"format": 99}, "format 99")],
)
def test_a_model_of_other_features_or_format_is_refused_naming_the_fix(model_file, change, message):
    doc = json.loads(model_file.read_text())
    model_file.write_text(json.dumps(doc | change))
    with pytest.raises(ModelError, match=message) as e:
        trust.load(model_file)
    assert "reportqa train" in str(e.value)


def test_a_damaged_model_file_is_refused(tmp_path):
    bad = tmp_path / "trust.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match="reportqa train"):
        trust.load(bad)
    assert trust.shipped(tmp_path / "absent.json") is None


def test_the_search_reranks_and_calibrates_through_the_model(tiny_index, model_file):
    tiny_index.trust = trust.load(model_file)
    ans = tiny_index.search(CONFLICT, top_k=3)
    assert ans.hits and 0.0 <= ans.confidence <= 1.0
    assert ans.answered == (ans.confidence >= 0.5)
    assert ans.calibrated  # the chat may read the confidence as a probability (records.Answer.sure)
    assert ans.threshold == tiny_index.trust.threshold  # what `answered` and the JSON's state were judged by
    scores = [h.score for h in ans.hits]
    assert scores == sorted(scores, reverse=True)  # the reranker's order
    assert all("fused" in h.signals and "rerank" in h.signals for h in ans.hits)
    # a place no report covers: no confidence
    assert tiny_index.search("太原市有多少所培训机构？").confidence == 0.0
    # the baselines and the switch keep the hand-set path
    assert "rerank" not in tiny_index.search(CONFLICT, mode="keyword").hits[0].signals
    keyword = tiny_index.search(CONFLICT, mode="keyword")
    assert not keyword.calibrated and keyword.threshold == HAND_THRESHOLD
    assert "rerank" not in tiny_index.search(CONFLICT, settings=SearchSettings(rerank=False)).hits[0].signals


def test_features_have_their_named_width_and_describe_the_shortlist(tiny_index):
    from app.search import shortlists

    (sl,) = shortlists(tiny_index, tiny_index.queries([CONFLICT]))
    X = FT.candidate_features(sl, tiny_index.keyword.idf, tiny_index.max_idf)
    assert X.shape == (len(sl.candidates), len(FT.FEATURES))
    col = FT.FEATURES.index
    assert X[0, col("d_fused")] == 0.0 and (X[:, col("d_fused")] <= 0).all()  # the fused best leads
    assert X[0, col("city_named")] == 1.0 and X[:, col("q_kind")].max() == 1.0  # 长治 named; 多少 asks a figure
    assert not np.isnan(X[:, col("ssim_max")]).any()  # sentence vectors are in the index
    L = FT.list_features(X, -np.arange(len(X), dtype=float), [c.hit.doc.id for c in sl.candidates])
    assert L.shape == (len(FT.LIST_FEATURES),) and L[FT.LIST_FEATURES.index("n_cands")] == len(X)
    assert L[FT.LIST_FEATURES.index("q_kind")] == 1.0 and L[-1] == X[0, col("qt_yesno")]  # the question's own columns
    # each coverage column again, less the shortlist's highest: 0 for the best passage, below it for the rest
    for c in FT.GAP_OF:
        gap = X[:, col(f"{c}_gap")]
        assert gap == pytest.approx(X[:, col(c)] - X[:, col(c)].max()) and gap.max() == 0.0
    assert (X[:, col("cov_gap")] < 0).any()  # the passages do not all cover the question alike


def test_figure_coverage_feature_is_the_hand_set_confidences_figure_coverage(tiny_index):
    """`fig_cov` computes `answerability.figure_coverage` from the shortlist's word matrix; a word the
    question repeats counts each time in both."""
    from app.answerability import figure_coverage
    from app.search import shortlists

    question = "纳入平台的培训机构和校外培训机构有多少所？"
    (sl,) = shortlists(tiny_index, tiny_index.queries([question]))
    content = list(sl.query.content)
    assert len(set(content)) < len(content)  # 培训机构 twice
    X = FT.candidate_features(sl, tiny_index.keyword.idf, tiny_index.max_idf)
    want = [figure_coverage(content, c.hit.chunk.text, sl.query.figure, tiny_index.keyword.idf, tiny_index.max_idf) for c in sl.candidates]
    assert X[:, FT.FEATURES.index("fig_cov")] == pytest.approx(want) and max(want) > 0


def test_question_features_do_not_grow_with_the_index(tiny_corpus, fake_encoder):
    """The same question and passages, in an index ten times larger (unrelated reports added):
    the question's features stay in [0, 1] and equal. An absolute IDF grew with log(N), and a model
    trained on half-size indexes refused 80% of answerable DRCD questions asked of the whole set."""
    from app.index import ReportIndex
    from app.load import load_corpus
    from app.records import Document
    from app.search import shortlists

    docs, _ = load_corpus([tiny_corpus])
    filler = [Document(f"x{i}", f"其他{i}", f"第{i}篇：天气晴朗，市民出行{i}次，公园游客{i * 7}人。") for i in range(20 * len(docs))]
    rows = []
    for corpus in (docs, docs + filler):
        index = ReportIndex.build(corpus, fake_encoder)
        (sl,) = shortlists(index, index.queries([CONFLICT + "哪个数字最罕见"]))
        X = FT.candidate_features(sl, index.keyword.idf, index.max_idf)
        rows.append(X[0, FT.FEATURES.index("q_maxw")])
    assert all(0.0 < r <= 1.0 for r in rows)
    assert rows[0] == pytest.approx(rows[1])  # the question's rarest word is absent from both: the top of the scale


def test_the_reranked_order_puts_a_named_citys_passages_first():
    col = FT.FEATURES.index("city_match")
    X = np.zeros((4, len(FT.FEATURES)))
    rr = np.array([0.5, 2.0, 1.0, 3.0])
    X[:, col] = [1, 0, 1, 0]  # passages 0 and 2 are of the city named
    assert FT.reranked_order(X, rr).tolist() == [2, 0, 3, 1]
    X[:, col] = -1  # no city named: the reranker's order alone
    assert FT.reranked_order(X, rr).tolist() == [3, 1, 2, 0]
    X[:, col] = 0  # a city named that no passage is of: the reranker's order alone
    assert FT.reranked_order(X, rr).tolist() == [3, 1, 2, 0]
    X[:, col] = [1, 0, 1, 0]
    L = FT.list_features(X, rr)
    assert L[FT.LIST_FEATURES.index("rr1")] == 1.0 and L[FT.LIST_FEATURES.index("t1_city_match")] == 1.0  # passage 2 described


def test_without_answer_removes_the_sentences_holding_it():
    from app.records import Document
    from app.train import without_answer

    doc = Document("a", "t", "全市有幼儿园672所。小学521所。初中100所。")
    cut = without_answer(doc, ["521所"])
    assert cut is not None and cut.text == "全市有幼儿园672所。初中100所。"
    assert without_answer(Document("b", "t", "只有一句521所。"), ["521所"]) is None


def _tiny_project(tmp_path, tiny_corpus):
    """A project (corpus, questions) and a benchmark folder, all tiny."""
    import shutil

    root = tmp_path / "proj"
    shutil.copytree(tiny_corpus, root / "corpus")
    (root / "eval").mkdir()
    qs = [{"id": "q1", "question": CONFLICT, "category": "conflict", "evidence": ["188所"]},
          {"id": "q2", "question": "忻州学前教育毛入园率是多少", "category": "factoid", "evidence": ["96.7%"]},
          {"id": "q3", "question": "太原有多少学生", "category": "unanswerable", "evidence": []}]  # fmt: skip
    (root / "eval" / "questions.jsonl").write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in qs), encoding="utf-8")
    (root / "eval" / "heldout.jsonl").write_text(json.dumps(qs[1] | {"id": "h1"}, ensure_ascii=False), encoding="utf-8")
    bench = tmp_path / "bench"
    bench.mkdir()
    texts = ["北京是中国的首都，人口两千多万。", "上海是中国最大的城市，位于长江口。", "长江是中国最长的河流，全长六千多公里。",
             "黄河是中国第二长河，被称为母亲河。"]  # fmt: skip
    qa = [("中国的首都是哪里？", "北京"), ("中国最大的城市是哪个？", "上海"), ("中国最长的河流是什么？", "长江"), ("哪条河被称为母亲河？", "黄河")]
    data = {"data": [{"title": f"条目{i}", "paragraphs": [{"context": t, "qas": [{"id": f"x{i}", "question": q, "answers": [{"text": a}]}]},
                                                         {"context": t[::-1], "qas": []}]}  # fmt: skip
                     for i, (t, (q, a)) in enumerate(zip(texts, qa))]}
    for f in ("drcd_dev.json", "cmrc2018_trial.json"):
        (bench / f).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return root, bench


def test_train_is_reproducible_on_tiny_data(tmp_path, tiny_corpus, fake_encoder):
    from app.train import train

    root, bench = _tiny_project(tmp_path, tiny_corpus)
    quiet = lambda m: None  # noqa: E731
    first = train(root, bench, tmp_path / "cache", fake_encoder, tmp_path / "a.json", echo=quiet)
    again = train(root, bench, tmp_path / "cache2", fake_encoder, tmp_path / "b.json", echo=quiet)
    assert first["sha256"] == again["sha256"] and (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    m = trust.load(tmp_path / "a.json")
    assert 0.0 <= m.threshold <= 1.0
    assert set(first["ranking"]) >= {"reports", "heldout", "cmrc2018", "drcd", "cmrc2018-od", "drcd-od"}
    assert first["refusal"]["reports"]["answerable"] == 2 and first["refusal"]["reports"]["unanswerable"] == 1
    assert json.loads((tmp_path / "a.json").read_text())["provenance"]["seed"] == 13


def _synthetic_groups(seed: int = 0):
    """Groups as `build_groups` makes them, from numbers alone: the answering candidate has the
    highest `fused` score but for noise, so a reranker has something to learn and to miss."""
    from app.train import Group, assign_folds

    rng = np.random.default_rng(seed)
    groups = []
    for ds, n, arts in (("reports", 30, 5), ("cmrc2018", 40, 10), ("drcd", 40, 10), ("cmrc2018-od", 40, 10),
                        ("drcd-od", 40, 10), ("heldout", 10, 1)):  # fmt: skip
        for i in range(n):
            answerable = ds in ("cmrc2018", "drcd", "heldout") or i % 3 > 0
            X = rng.random((6, len(FT.FEATURES))).astype(np.float32)
            labels = np.zeros(6, np.int64)
            if answerable:
                j = int(rng.integers(6))
                labels[j] = 1
                X[j, FT.FEATURES.index("fused")] += 0.6
            X[:, FT.FEATURES.index("city_match")] = -1.0
            groups.append(Group(ds, f"{ds}-{i}", "?", "test", answerable, f"{ds.split('-')[0]}-{i % arts}", X, labels,
                                [f"d{k}" for k in range(6)], 0.5))  # fmt: skip
    assign_folds(groups)
    return groups


def test_perturbed_copies_move_the_features_by_their_last_bits_only():
    from app.train import perturbed

    groups = _synthetic_groups()
    before = [g.X.copy() for g in groups]
    a, b, c = perturbed(groups, 1), perturbed(groups, 1), perturbed(groups, 2)
    assert all(np.array_equal(g.X, x) for g, x in zip(groups, before))  # the groups given are untouched
    assert all(np.array_equal(x.X, y.X) for x, y in zip(a, b))  # seeded
    assert not all(np.array_equal(x.X, y.X) for x, y in zip(a, c))
    rel = max(float(np.max(np.abs(p.X - g.X) / np.maximum(np.abs(g.X), 1e-6))) for p, g in zip(a, groups))
    assert 0 < rel < 1e-2
    assert all(p.labels is g.labels and p.dataset == g.dataset and p.fold == g.fold for p, g in zip(a, groups))


def test_the_spread_brackets_the_fit_and_is_reported_per_set():
    from app.train import fit, format_spread, spread, summary

    t = fit(_synthetic_groups(), echo=lambda m: None)
    own = summary(t)
    s = spread(t, fits=2, echo=lambda m: None)
    assert s["fits"] == 3
    for ds, band in s["hit@1"].items():
        assert band["min"] <= own["ranking"][ds]["reranked"]["hit@1"] <= band["max"]
        assert band["min"] <= band["mean"] <= band["max"]
    assert set(s["refused"]) >= {"reports"} and "heldout" in s["wrongly_refused"]
    assert set(s["open_domain"]) == {"cmrc2018-od", "drcd-od"}
    table = format_spread(s)
    assert all(f"| {ds} |" in table for ds in s["hit@1"])


def test_train_reports_the_spread_without_changing_the_model(tmp_path, tiny_corpus, fake_encoder):
    from app.train import format_spread, train

    root, bench = _tiny_project(tmp_path, tiny_corpus)
    quiet = lambda m: None  # noqa: E731
    plain = train(root, bench, tmp_path / "cache", fake_encoder, tmp_path / "a.json", echo=quiet)
    spread = train(root, bench, tmp_path / "cache", fake_encoder, tmp_path / "b.json", echo=quiet, spread_fits=1)
    assert "spread" not in plain and spread["spread"]["fits"] == 2
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert "| reports |" in format_spread(spread["spread"])
