"""The evaluation tool on tiny inline data: hit matching, ranks, metrics, calibration, chart."""

from __future__ import annotations

import json
import math

import pytest

from app.evaluate import (
    Question,
    Result,
    calibrate,
    chart,
    evidence_spans,
    external_eval,
    is_hit,
    load_questions,
    load_squad,
    metrics,
    score,
)
from app.index import SearchSettings
from app.records import Answer, Chunk, Document, Hit


def _q(evidence, doc_id="", qid="q1"):
    return Question(qid, "问题", "factoid", list(evidence), doc_id=doc_id)


def _answer(texts_docs, answered=True, confidence=1.0) -> Answer:
    hits = []
    for n, (text, doc_id) in enumerate(texts_docs):
        chunk = Chunk(f"{doc_id}#{n}", doc_id, n, text, 0, len(text))
        hits.append(Hit(chunk, Document(doc_id, "t", text), 1.0 - n / 10, (0, 0), {}))
    return Answer("问题", hits, answered, 0.0, confidence=confidence)


def test_a_hit_ignores_white_space_pinyin_and_script():
    passage = "全市中小學\n教師 工資收入水平不低於當地公務員，統(tǒng)籌推進。"
    assert is_hit(passage, ["教师工资收入", "统筹推进", "没有这句"]) == [0, 1]
    assert is_hit("教师", ["教师工资"]) == []


def test_score_ranks_only_passages_of_the_questions_own_paragraph():
    ans = _answer([("答案在此：1953年", "other"), ("无关", "own"), ("答案在此：1953年", "own")])
    assert score(ans, _q(["1953年"], doc_id="own")).ranks == [3]
    assert score(ans, _q(["1953年"])).ranks == [1, 3]  # no paragraph: any passage counts
    both = score(_answer([("192所", "a"), ("188所", "b")]), _q(["192所", "188所", "200所"]))
    assert both.covered == pytest.approx(2 / 3)  # sources found in the top 5


def test_metrics_hit_mrr_ndcg_and_refusals():
    results = [
        Result(_q(["x"], qid="a"), [1], True, 1.0),
        Result(_q(["x"], qid="b"), [3, 4], False, 0.5),
        Result(_q(["x"], qid="c"), [], True, 0.9),
        Result(_q([], qid="u1"), [], False, 0.1),
        Result(_q([], qid="u2"), [], True, 0.95),
    ]
    m = metrics(results)
    assert m["n"] == 3 and m["hit@1"] == pytest.approx(1 / 3) and m["hit@5"] == pytest.approx(2 / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3) / 3)
    ndcg_b = (1 / math.log2(4) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert m["ndcg@10"] == pytest.approx((1 + ndcg_b + 0) / 3)
    assert (m["wrongly_refused"], m["unanswerable"], m["refused"]) == (1, 2, 1)
    assert metrics(results[:1])["highlight"] == 0.0
    results[1].highlighted = True
    assert metrics(results)["highlight"] == 0.5  # of a and b, the questions with a hit


def test_highlight_counts_when_the_best_hits_highlight_overlaps_the_evidence():
    text = "改造6所的计划已公布。乡镇寄宿制学校改造逐步实施。目前已完成改造6所。"
    first, second, third = (0, 10), (10, 24), (24, len(text))

    def scored(span, evidence, texts=(text,)):
        hits = [Hit(Chunk(f"d#{n}", "d", n, t, 0, len(t)), Document("d", "t", t), 1.0, span, {}) for n, t in enumerate(texts)]
        return score(Answer("问题", hits, True, 0.0), _q(evidence))

    assert scored(third, ["已完成改造6所"]).highlighted
    assert not scored(first, ["已完成改造6所"]).highlighted  # shares 改造6所, but is not where the evidence is
    assert not scored(second, ["已完成改造6所"]).highlighted
    assert scored(second, ["改造逐步实施。目前已完成"]).highlighted  # evidence across two sentences: either one
    assert scored(third, ["改造逐步实施。目前已完成"]).highlighted
    assert scored(first, ["改造6所"]).highlighted  # any occurrence of the evidence counts
    assert not scored((0, 0), ["已完成改造6所"]).highlighted
    # the best hit is the first passage holding the evidence, not the first passage shown
    assert scored(third, ["已完成改造6所"], ("无关的一段话。无关的第二句话。第三句也无关。", text)).highlighted
    assert metrics([scored(third, ["6所"]), scored(second, ["6所"])])["highlight"] == 0.5


def test_evidence_is_located_through_white_space_pinyin_and_script():
    passage = "全市中小學\n教師 工資收入水平，統(tǒng)籌推進。"
    (a, b), = evidence_spans(passage, ["教师工资收入", "没有这句"])
    assert passage[a:b] == "教師 工資收入"
    (a, b), = evidence_spans(passage, ["统筹推进"])
    assert passage[a:b] == "統(tǒng)籌推進"


def test_calibrate_refuses_most_unanswerable_within_the_allowed_wrong_refusals():
    pos = [Result(_q(["x"], qid=f"p{i}"), [1], True, c) for i, c in enumerate([0.80] + [1.0 + i / 100 for i in range(19)])]
    neg = [Result(_q([], qid=f"n{i}"), [], True, c) for i, c in enumerate([0.70, 0.85, 0.95, 1.5])]
    t = calibrate(pos + neg)  # 5% of 20 answerable: one may be wrongly refused (the 0.80)
    assert 0.95 < t < 1.0
    assert sum(r.confidence < t for r in pos) == 1 and sum(r.confidence < t for r in neg) == 3
    assert calibrate(pos + neg, max_wrong=0.0) == pytest.approx((0.70 + 0.80) / 2)  # midway below the lowest answerable


def test_question_files_and_squad_sets_load(tmp_path):
    f = tmp_path / "qs.jsonl"
    f.write_text(json.dumps({"id": 7, "question": "几所？", "evidence": ["3所"]}, ensure_ascii=False) + "\n\n", "utf-8")
    (q,) = load_questions(f)
    assert (q.id, q.category, q.evidence) == ("7", "all", ["3所"])
    squad = {"data": [{"title": "T", "paragraphs": [{"context": " 段落一。 ", "qas": [
        {"id": "a", "question": "问？", "answers": [{"text": "段落"}, {"text": "段落"}, {"text": " "}]},
        {"id": "b", "question": "无答案？", "answers": []}]}]}]}  # fmt: skip
    (tmp_path / "s.json").write_text(json.dumps(squad, ensure_ascii=False), "utf-8")
    docs, qs = load_squad(tmp_path / "s.json", "x")
    assert [d.text for d in docs] == ["段落一。"] and [(q.id, q.evidence, q.doc_id) for q in qs] == [("a", ["段落"], "x-0-0")]


def test_chart_writes_a_png(tmp_path):
    path = tmp_path / "c.png"
    chart({"reports": {"keyword": [0.8, 0.9, 1.0], "hybrid": [0.9, 1.0, 1.0]}, "empty": {}}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_external_sets_are_indexed_once_and_report_wrong_refusals(tmp_path, fake_encoder):
    bench = tmp_path / "shared" / "benchmarks"
    bench.mkdir(parents=True)
    paras = [("全市建设普惠性幼儿园6所。", "建设了多少所普惠性幼儿园？", "6所"), ("学生31万余名参加课后服务。", "多少学生参加课后服务？", "31万")]
    squad = {"data": [{"title": "T", "paragraphs": [{"context": c, "qas": [{"id": str(i), "question": q, "answers": [{"text": a}]}]}
                                                    for i, (c, q, a) in enumerate(paras)]}]}  # fmt: skip
    (bench / "cmrc2018_trial.json").write_text(json.dumps(squad, ensure_ascii=False), "utf-8")
    said = []
    for threshold in (-1.0, 99.0):
        summary: dict = {"sets": {}}
        lines = external_eval(tmp_path / "proj", tmp_path / "out", fake_encoder, SearchSettings(answer_threshold=threshold),
                              summary, {}, said.append)  # fmt: skip
        hybrid = summary["sets"]["cmrc2018"]["hybrid"]
        assert hybrid["hit@1"] == 1.0
        # every external question has an answer: each one below the threshold is wrongly refused
        assert hybrid["wrongly_refused"] == (0 if threshold < 0 else 2)
        assert any("wrongly_refused" in ln for ln in lines)
    assert sum("built" in s for s in said) == 1  # the second run reused the cached index
    assert any("skipping drcd" in s for s in said)
