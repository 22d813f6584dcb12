"""The `reportqa` command driven with CliRunner and the fake encoder."""

from __future__ import annotations

import json

import pytest

from app.answer import MAX_QUESTION, prepare_question
from app.cli import cli

CONFLICT = "长治市有多少所校外培训机构纳入了全国平台管理？"
PASSAGE_KEYS = {"rank", "doc_id", "title", "city", "text", "start", "end", "score", "highlight"}


@pytest.fixture
def index_dir(runner, encoder, tiny_corpus, tmp_path):
    folder = tmp_path / "idx"
    result = runner.invoke(cli, ["index", "--corpus", str(tiny_corpus), "--index", str(folder)])
    assert result.exit_code == 0, result.output
    assert "indexed 3 documents" in result.stderr
    return folder


def ask_json(runner, index_dir, *args) -> list[dict]:
    result = runner.invoke(cli, ["ask", "--json", "--index", str(index_dir), *args])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    return [json.loads(line) for line in lines]


def test_ask_json_prints_one_object_with_cited_passages(runner, index_dir, tiny_corpus):
    (obj,) = ask_json(runner, index_dir, CONFLICT)
    assert {"id", "question", "answered", "passages", "notice", "seconds"} <= set(obj)
    assert obj["id"] is None and obj["question"] == CONFLICT
    assert isinstance(obj["answered"], bool)
    passages = obj["passages"]
    assert 1 <= len(passages) <= 5
    assert [p["rank"] for p in passages] == list(range(1, len(passages) + 1))
    raw = {p.stem: p.read_text("utf-8") for p in tiny_corpus.glob("*.txt")}
    for p in passages:
        assert PASSAGE_KEYS <= set(p)
        assert isinstance(p["score"], float)
        s, e = p["highlight"]
        assert isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(p["text"])
        assert p["end"] - p["start"] == len(p["text"])
        assert raw[p["doc_id"]][p["start"] : p["end"]] == p["text"]  # tiny files need no cleaning
    top3 = {p["doc_id"] for p in passages[:3]}
    assert {"a", "b"} <= top3
    a = next(p for p in passages if p["doc_id"] == "a")
    assert (a["title"], a["city"]) == ("报告甲", "长治")


def test_top_k_and_modes(runner, index_dir):
    for mode in ("hybrid", "dense", "keyword"):
        (obj,) = ask_json(runner, index_dir, "--top-k", "2", "--mode", mode, "忻州學前教育毛入園率是多少")
        assert len(obj["passages"]) == 2
        assert obj["passages"][0]["doc_id"] == "c"


def test_ask_questions_file_keeps_order_and_ids(runner, index_dir, tmp_path):
    qfile = tmp_path / "qs.jsonl"
    items = [
        {"id": "q-1", "question": "課後服務惠及多少學生"},
        {"id": 7, "question": CONFLICT},
        {"id": "q-3", "question": "忻州学前教育毛入园率是多少"},
        {"id": "empty", "question": ""},
    ]
    qfile.write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n\n", encoding="utf-8")
    out = ask_json(runner, index_dir, "--questions", str(qfile))
    assert [o["id"] for o in out] == ["q-1", 7, "q-3", "empty"]
    assert [o["question"] for o in out] == [i["question"] for i in items]
    assert out[0]["passages"][0]["doc_id"] == "b"
    assert out[2]["passages"][0]["doc_id"] == "c"
    assert out[3]["answered"] is False and out[3]["passages"] == []


@pytest.mark.parametrize("question", ["", "   ", "\x00\x01\x7f", "\n\t"])
def test_empty_question_is_not_answered(runner, index_dir, question):
    (obj,) = ask_json(runner, index_dir, question)
    assert obj["answered"] is False
    assert obj["passages"] == []
    assert "empty" in obj["notice"]


def test_ask_without_an_index_says_how_to_build_one(runner, encoder, tmp_path):
    result = runner.invoke(cli, ["ask", "--index", str(tmp_path / "none"), CONFLICT])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "reportqa index" in message


def test_damaged_index_is_one_line_too(runner, index_dir):
    live = index_dir / (index_dir / "CURRENT").read_text().strip()
    (live / "vectors.npy").write_bytes(b"junk")
    result = runner.invoke(cli, ["ask", "--json", "--index", str(index_dir), CONFLICT])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "reportqa index" in result.stderr


def test_question_and_questions_file_together_is_a_usage_error(runner, index_dir, tmp_path):
    qfile = tmp_path / "qs.jsonl"
    qfile.write_text('{"id": 1, "question": "x"}\n')
    result = runner.invoke(cli, ["ask", "--index", str(index_dir), "--questions", str(qfile), "问题"])
    assert result.exit_code == 2
    result = runner.invoke(cli, ["ask", "--index", str(index_dir)])
    assert result.exit_code == 2


def test_bad_questions_file_names_the_line(runner, index_dir, tmp_path):
    qfile = tmp_path / "qs.jsonl"
    qfile.write_text('{"id": 1, "question": "ok"}\n{"id": 2}\n', encoding="utf-8")
    result = runner.invoke(cli, ["ask", "--json", "--index", str(index_dir), "--questions", str(qfile)])
    assert result.exit_code == 1
    assert "qs.jsonl:2" in result.stderr
    assert "Traceback" not in result.output


def test_very_long_question_is_cut_with_a_notice(runner, index_dir):
    question = ("长治市校外培训机构" * 2500)[:20000]
    (obj,) = ask_json(runner, index_dir, question)
    assert obj["passages"]
    assert str(MAX_QUESTION) in obj["notice"]
    assert obj["question"] == question[:MAX_QUESTION]


@pytest.mark.parametrize(
    "question",
    [
        "长治\x00市\x1b[31m有多少\x07培训机构",
        "😀🎓 长治市培训机构？👍🏽",
        "<script>alert('x')</script><b>长治</b>&amp;",
        "\u202e\u200b\ufeff長治\u0301",
        "' OR 1=1; --",
        "\ud83d",  # a lone surrogate: what a broken terminal can hand over
    ],
)
def test_odd_questions_do_not_crash(runner, index_dir, question):
    (obj,) = ask_json(runner, index_dir, question)
    assert isinstance(obj["passages"], list)
    assert all(ord(ch) >= 32 for ch in obj["question"])


def test_plain_output_marks_the_highlight(runner, index_dir):
    (obj,) = ask_json(runner, index_dir, CONFLICT)
    first = obj["passages"][0]
    s, e = first["highlight"]
    sentence = first["text"][s:e]
    result = runner.invoke(cli, ["ask", "--index", str(index_dir), CONFLICT], color=True)
    assert result.exit_code == 0, result.output
    assert "[1] " in result.stdout and first["title"] in result.stdout and "chars " in result.stdout
    bold_underline = "\x1b[1m\x1b[4m"
    assert f"{bold_underline}{sentence}\x1b[0m" in result.stdout  # the answering sentence, and only it, marked
    assert result.stdout.count(bold_underline) == len(obj["passages"])


def test_index_if_stale_skips_an_unchanged_corpus(runner, encoder, tiny_corpus, tmp_path):
    folder = tmp_path / "idx"
    first = runner.invoke(cli, ["index", "--corpus", str(tiny_corpus), "--index", str(folder), "--if-stale"])
    assert first.exit_code == 0, first.output
    embedded = encoder.passages_embedded
    assert embedded == 3
    second = runner.invoke(cli, ["index", "--corpus", str(tiny_corpus), "--index", str(folder), "--if-stale"])
    assert second.exit_code == 0, second.output
    assert "up to date" in second.stderr
    assert encoder.passages_embedded == embedded

    # A changed report is re-embedded alone; the others' vectors are reused.
    (tiny_corpus / "b.txt").write_text("全市192所培训机构全部纳入平台管理。\n课后服务惠及学校500所。", encoding="utf-8")
    third = runner.invoke(cli, ["index", "--corpus", str(tiny_corpus), "--index", str(folder), "--if-stale"])
    assert third.exit_code == 0, third.output
    assert "up to date" not in third.stderr
    assert encoder.passages_embedded == embedded + 1


def test_index_reports_bad_files_and_refuses_an_empty_corpus(runner, encoder, tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "bin.txt").write_bytes(b"\x00\x01\x02")
    result = runner.invoke(cli, ["index", "--corpus", str(corpus), "--index", str(tmp_path / "idx")])
    assert result.exit_code == 1
    assert "bin.txt" in result.stderr and "Traceback" not in result.output
    missing = runner.invoke(cli, ["index", "--corpus", str(tmp_path / "nope"), "--index", str(tmp_path / "idx")])
    assert missing.exit_code == 1 and "nope" in missing.stderr


def test_prepare_question():
    assert prepare_question("  长治\x00市 \n") == ("长治市", "")
    q, notice = prepare_question("问" * (MAX_QUESTION + 1))
    assert len(q) == MAX_QUESTION and notice


def test_ask_filters_by_city_and_report(runner, index_dir):
    (obj,) = ask_json(runner, index_dir, "--city", "忻州", CONFLICT)
    assert obj["passages"] and {p["city"] for p in obj["passages"]} == {"忻州"}
    (obj,) = ask_json(runner, index_dir, "--report", "b", CONFLICT)
    assert [p["doc_id"] for p in obj["passages"]] == ["b"]
    missing = runner.invoke(cli, ["ask", "--index", str(index_dir), "--report", "nope", CONFLICT])
    assert missing.exit_code == 1 and "reportqa list" in missing.stderr


def test_plain_output_hedges_an_answer_under_an_even_chance(capsys):
    """Answered (above the threshold) but with a calibrated confidence under `records.SURE`: the plain
    output says it may not answer; the hand-set path's confidence (no probability) is not hedged."""
    from dataclasses import replace

    from app.cli import print_answer
    from app.records import Answer, Chunk, Document, Hit

    doc = Document("d", "报告", "全市有学校12所。", city="长治")
    hit = Hit(Chunk("d#0", "d", 0, doc.text, 0, len(doc.text)), doc, 1.0, (0, len(doc.text)))
    unsure = Answer("学校有多少所？", [hit], True, 0.0, confidence=0.12, calibrated=True)
    print_answer(unsure)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["Confidence that passage [1] answers: 0.12",
                         "Possible answer: the reports may not answer this; check the passages."]  # fmt: skip
    near = replace(unsure, answered=False, confidence=0.006, threshold=0.01)  # refused within half the threshold
    print_answer(near)
    assert capsys.readouterr().out.splitlines()[1] == "Possible answer: the reports may not answer this; check the passages."
    for sure in (replace(unsure, confidence=0.8), replace(unsure, calibrated=False), replace(near, confidence=0.004)):
        print_answer(sure)
        assert "Possible answer" not in capsys.readouterr().out
