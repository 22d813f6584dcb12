"""Follow-ups through the one answer path (`answer(..., history=...)`) and every front end: the
answer says what was searched (`searched`), the chat offers the words as typed, the Gradio `ask`
endpoint, `reportqa ask --questions` and `reportqa chat` take the history, bad histories are named.
Unit tests on the tiny index with the fake encoder; one test through the real index."""

from __future__ import annotations

import json
from dataclasses import replace

import gradio as gr
import pytest
from conftest import call_ask, free_port

from app import ui
from app.answer import MAX_HISTORY, HistoryError, answer, answer_many, check_history
from app.cli import cli
from app.index import ReportIndex, SearchSettings
from app.records import Answer

SURE = replace(SearchSettings(), answer_threshold=-9.0)  # every question counts as answered
FIRST = "长治有多少所校外培训机构纳入平台管理？"
FOLLOW = "那忻州呢？"
MERGED = "忻州有多少所校外培训机构纳入平台管理？"
RATE = "长治學前教育毛入園率是多少？"
JSON_KEYS = {"id", "question", "answered", "answer", "passages", "notice", "confidence", "seconds"}


def passages(obj: dict) -> list[tuple[str, list[int]]]:
    return [(p["chunk_id"], p["highlight"]) for p in obj["passages"]]


# --------------------------------------------------------------------------- the answer path


def test_a_follow_up_is_searched_merged_with_its_history(tiny_index):
    ans = answer(tiny_index, FOLLOW, history=[FIRST])
    assert (ans.question, ans.searched, ans.rewritten) == (FOLLOW, MERGED, True)
    alone = answer(tiny_index, MERGED)
    assert [(h.chunk.id, h.score) for h in ans.hits] == [(h.chunk.id, h.score) for h in alone.hits]
    assert [h.score for h in ans.hits] != [h.score for h in answer(tiny_index, FOLLOW).hits]
    obj = ans.to_json("q1")
    assert JSON_KEYS <= set(obj) and obj["searched"] == MERGED and obj["question"] == FOLLOW and obj["id"] == "q1"


def test_what_is_asked_is_read_from_the_text_searched(tiny_index):
    ans = answer(tiny_index, "那忻州呢？", history=[RATE], settings=SURE)
    assert ans.searched == "忻州學前教育毛入園率是多少？"
    assert ans.answer == "96.7%"  # the answer line reads the figure the merged question asks for
    assert answer(tiny_index, "那忻州呢？", settings=SURE).answer is None


def test_a_standalone_question_or_no_history_is_searched_as_typed(tiny_index):
    for question, history in [(FIRST, [RATE, FOLLOW]), (FOLLOW, []), (FOLLOW, None), ("", [FIRST]), ("  ", [FIRST])]:
        ans = answer(tiny_index, question, history=history)
        assert ans.searched == ans.question == question.strip() and not ans.rewritten
        assert ans.to_json()["searched"] == ans.to_json()["question"]


def test_an_answer_made_without_a_search_still_says_what_was_searched():
    assert Answer("问题", [], False, 0.0).searched == "问题"
    assert Answer("那忻州呢？", [], False, 0.0, searched=MERGED).to_json()["searched"] == MERGED


def test_a_history_over_twenty_is_cut_to_its_last_questions(tiny_index):
    follow = ["那吕梁呢？", "那长治呢？"] * (MAX_HISTORY // 2)
    assert answer(tiny_index, FOLLOW, history=[FIRST, *follow[1:]]).searched == MERGED  # 20: the subject is read
    assert answer(tiny_index, FOLLOW, history=[FIRST, *follow]).searched == FOLLOW  # 21: it is not
    assert check_history(["a"] * 30 + ["b"]) == ["a"] * (MAX_HISTORY - 1) + ["b"]


@pytest.mark.parametrize(
    "history, field",
    [([FIRST, 3], "history.1"), ([None], "history.0"), ([FIRST] * 25 + [b"x"], "history.25"), (FIRST, "history"),
     (3, "history"), ({"q": FIRST}, "history")],
)  # fmt: skip
def test_a_history_that_is_not_a_list_of_strings_is_an_error_naming_the_field(tiny_index, history, field):
    with pytest.raises(HistoryError, match=rf"^{field}: ") as e:
        answer(tiny_index, FOLLOW, history=history)
    assert e.value.field == field and isinstance(e.value, TypeError)


def test_answer_many_takes_one_history_per_question(tiny_index):
    got = answer_many(tiny_index, [FOLLOW, FOLLOW, FIRST], histories=[[FIRST], None, [RATE]])
    assert [a.searched for a in got] == [MERGED, FOLLOW, FIRST]
    with pytest.raises(ValueError, match="histories"):
        answer_many(tiny_index, [FOLLOW], histories=[])


def test_control_characters_in_the_history_are_cleaned_like_a_question(tiny_index):
    assert answer(tiny_index, FOLLOW, history=["长治有多少所校外培训机构\x00纳入平台管理？\x1b"]).searched == MERGED


# --------------------------------------------------------------------------- the chat


def chat(index, tmp_path) -> ui.ChatUI:
    return ui.ChatUI(index, feedback_path=tmp_path / "fb.sqlite3", settings=SURE)


@pytest.mark.parametrize("lang, says, offers", [("zh", "检索的是：", "按原话检索："), ("en", "Searched for: ", "Search the words as typed: ")])
def test_the_chat_reads_a_follow_up_with_its_earlier_questions(tiny_index, tmp_path, lang, says, offers):
    c = chat(tiny_index, tmp_path)
    _, history, records = c.respond(FIRST, [], {}, 3, "", "", lang)
    _, history = c.start(FOLLOW, history, lang)[:2]
    history, records, _, _, typed_button, typed = c.finish(FOLLOW, history, records, 3, "", "", lang)
    reply = history[3]["content"]
    assert f'<p class="rq-searched">{says}{MERGED}</p>' in reply
    assert typed_button["visible"] is True and typed_button["value"] == offers + FOLLOW and typed == FOLLOW
    want = answer(tiny_index, FOLLOW, history=[FIRST], top_k=3, settings=SURE)
    assert [p["chunk_id"] for p in records[3]["passages"]] == [h.chunk.id for h in want.hits]
    assert records[3]["question"] == FOLLOW and records[3]["filters"]["searched"] == MERGED

    # one click: the words as typed, whatever came before
    _, history = c.start(typed, history, lang)[:2]
    history, records, _, _, typed_button, _ = c.finish_as_typed(typed, history, records, 3, "", "", lang)
    assert "rq-searched" not in history[5]["content"] and typed_button["visible"] is False
    alone = answer(tiny_index, FOLLOW, top_k=3, settings=SURE)
    assert [p["chunk_id"] for p in records[5]["passages"]] == [h.chunk.id for h in alone.hits]


def test_a_standalone_question_in_a_conversation_is_not_rewritten(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path)
    _, history, records = c.respond(FIRST, [], {}, 3, "", "")
    _, history, records = c.respond(RATE, history, records, 3, "", "")
    assert "rq-searched" not in history[3]["content"] and "filters" in records[3]
    assert "searched" not in records[3]["filters"]


def test_the_earlier_questions_come_from_the_kept_records():
    records = {"5": {"question": "c"}, 1: {"question": "a"}, 3: {"question": "b"}, 7: {"question": "later"},
               "x": {"question": "junk"}, 9: "junk", 11: {"question": 4}}  # fmt: skip
    assert ui.earlier_questions(records, 7) == ["a", "b", "c"]
    assert ui.earlier_questions({}, 3) == [] and ui.earlier_questions(None, 3) == []


def test_the_gradio_ask_followup_endpoint_takes_a_history(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path)
    got = c.api_ask_followup(FOLLOW, 3, [FIRST])
    want = answer(tiny_index, FOLLOW, history=[FIRST], top_k=3, settings=SURE).to_json()
    assert got["searched"] == MERGED and passages(got) == passages(want)
    assert c.api_ask(FOLLOW, 3)["searched"] == FOLLOW == c.api_ask_followup(FOLLOW, 3)["searched"]
    for bad, field in (([FIRST, 3], "history.1"), ("长治", "history")):
        with pytest.raises(gr.Error, match=field):
            c.api_ask_followup(FOLLOW, 3, bad)


def c_json(app, *args) -> dict:
    """What the chat's `ask_dated` handler answers, through JSON as over HTTP."""
    return json.loads(json.dumps(app.chat.api_ask_dated(*args)))


def test_the_gradio_ask_dated_endpoint_takes_the_date_filter(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path)
    got = c.api_ask_dated(FIRST, 5, [], "2024-02", "")
    want = answer(tiny_index, FIRST, top_k=5, date_from="2024-02", settings=SURE).to_json()
    assert passages(got) == passages(want) and got["passages"] and "a" not in {p["doc_id"] for p in got["passages"]}
    assert "a" in {p["doc_id"] for p in c.api_ask_dated(FIRST, 5, [], "2024", "2024-01")["passages"]}
    assert got["notice"] == want["notice"] and "undated" in got["notice"]  # b and c have no date: kept, and said so
    assert passages(c.api_ask_dated(FIRST, 5, None, None, None)) == passages(c.api_ask_followup(FIRST, 5))  # no filter
    for dates, says in ((("2025-13", ""), "date_from: '2025-13' is not a date"), (("2025", "2024"), "date_from: 2025 is after")):
        with pytest.raises(gr.Error, match=says):
            c.api_ask_dated(FIRST, 5, [], *dates)


def test_over_http_ask_keeps_its_two_inputs_and_ask_followup_takes_the_history(tiny_index, tmp_path):
    port = free_port()
    app = ui.launch(tiny_index, port=port, feedback_path=tmp_path / "fb.sqlite3", settings=SURE, block=False)
    try:
        event, got = call_ask(port, [FOLLOW, 3])  # what callers sent before: still answered
        assert event == "complete" and got[0]["searched"] == FOLLOW
        event, got = call_ask(port, [FOLLOW, 3, [FIRST]], "ask_followup")
        assert event == "complete" and (got[0]["question"], got[0]["searched"]) == (FOLLOW, MERGED)
        event, got = call_ask(port, [FOLLOW, 3, [FIRST, 3]], "ask_followup")
        assert event == "error" and "history.1" in json.dumps(got)
        event, got = call_ask(port, [FOLLOW, 3, [FIRST], "2024-02", ""], "ask_dated")  # report a (2024-01-01) left out
        assert event == "complete" and passages(got[0]) == passages(c_json(app, FOLLOW, 3, [FIRST], "2024-02", ""))
        assert got[0]["searched"] == MERGED and "a" not in {p["doc_id"] for p in got[0]["passages"]}
        event, got = call_ask(port, [FOLLOW, 3, [], "", "2024-13"], "ask_dated")
        assert event == "error" and "date_to: '2024-13' is not a date" in got["error"]
    finally:
        app.close()


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def index_dir(runner, encoder, tiny_corpus, tmp_path):
    folder = tmp_path / "idx"
    result = runner.invoke(cli, ["index", "--corpus", str(tiny_corpus), "--index", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def test_ask_questions_lines_may_carry_a_history(runner, index_dir, encoder, tmp_path):
    lines = [{"id": "1", "question": FIRST}, {"id": "2", "question": FOLLOW, "history": [FIRST]},
             {"id": "3", "question": FOLLOW, "history": []}, {"id": "4", "question": FIRST, "history": [RATE] * 30}]  # fmt: skip
    f = tmp_path / "q.jsonl"
    f.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), "utf-8")
    result = runner.invoke(cli, ["ask", "--json", "--top-k", "3", "--index", str(index_dir), "--questions", str(f)])
    assert result.exit_code == 0, result.output
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["id"], o["question"], o["searched"]) for o in got] == [("1", FIRST, FIRST), ("2", FOLLOW, MERGED),
                                                                     ("3", FOLLOW, FOLLOW), ("4", FIRST, FIRST)]  # fmt: skip
    built = ReportIndex.load(index_dir, encoder)
    assert passages(got[1]) == passages(answer(built, FOLLOW, history=[FIRST], top_k=3).to_json())
    plain = runner.invoke(cli, ["ask", "--index", str(index_dir), "--questions", str(f)])
    assert plain.exit_code == 0 and plain.stdout.count(f"Searched for: {MERGED}") == 1


def test_a_bad_history_line_is_an_error_line_naming_the_field_and_the_others_are_answered(runner, index_dir, tmp_path):
    lines = [{"id": "1", "question": FIRST}, {"id": "2", "question": FOLLOW, "history": [FIRST, 7]},
             {"id": "3", "question": FOLLOW, "history": FIRST}, {"id": "4", "question": FOLLOW, "history": [FIRST]}]  # fmt: skip
    f = tmp_path / "q.jsonl"
    f.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), "utf-8")
    result = runner.invoke(cli, ["ask", "--json", "--index", str(index_dir), "--questions", str(f)])
    assert result.exit_code == 1
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in got] == ["1", "2", "3", "4"]
    assert got[1]["field"] == "history.1" and f"{f}:2: history.1: must be a string" in got[1]["error"]
    assert got[2]["field"] == "history" and f"{f}:3: history: must be a list" in got[2]["error"]
    assert got[1]["passages"] == [] and got[1]["answered"] is False and got[0]["passages"] and got[3]["searched"] == MERGED
    assert set(got[0]) <= set(got[1])  # an error line carries every key of an answer object: consumers read them alike
    assert "2 lines" in result.stderr and "list of strings" in result.stderr
    plain = runner.invoke(cli, ["ask", "--index", str(index_dir), "--questions", str(f)])
    assert plain.exit_code == 1 and f"error: {f}:2: history.1: must be a string" in plain.stderr
    assert plain.stdout.count("\n[1] ") == 2  # lines 1 and 4 answered (a passage line, not the confidence line naming [1])


def test_chat_reads_stdin_as_a_conversation(runner, index_dir, encoder):
    stdin = "\n".join([FIRST, FOLLOW, "/typed", "", "/new", FOLLOW, "/quit", "never asked"]) + "\n"
    result = runner.invoke(cli, ["chat", "--json", "--top-k", "3", "--index", str(index_dir)], input=stdin)
    assert result.exit_code == 0, result.output
    got = [json.loads(line) for line in result.stdout.splitlines()]  # --json: every line of stdout is an answer object
    assert [(o["question"], o["searched"]) for o in got] == [(FIRST, FIRST), (FOLLOW, MERGED), (FOLLOW, FOLLOW), (FOLLOW, FOLLOW)]
    assert passages(got[1]) == passages(answer(ReportIndex.load(index_dir, encoder), FOLLOW, history=[FIRST], top_k=3).to_json())
    assert "(a new conversation)" in result.stderr

    plain = runner.invoke(cli, ["chat", "--index", str(index_dir)], input=f"{FIRST}\n{FOLLOW}\n")
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.count("Searched for:") == 1 and f"Searched for: {MERGED}\n(type /typed" in plain.stdout
    assert plain.stdout.count("\n[1] ") == 2
    nothing = runner.invoke(cli, ["chat", "--index", str(index_dir)], input="/typed\n")
    assert nothing.exit_code == 0 and "nothing to search as typed" in nothing.stdout


def test_chat_keeps_only_the_last_twenty_questions(runner, index_dir):
    stdin = "\n".join([FIRST] + ["那吕梁呢？", "那长治呢？"] * 10 + [FOLLOW]) + "\n"
    result = runner.invoke(cli, ["chat", "--json", "--index", str(index_dir)], input=stdin)
    assert json.loads(result.stdout.splitlines()[-1])["searched"] == FOLLOW  # its subject was 21 questions back


# --------------------------------------------------------------------------- every front end, on the real index


@pytest.mark.model
def test_every_front_end_searches_a_follow_up_alike(real_index, real_encoder, runner, monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from app import cli as cli_module
    from app.api import PREFIX, create_api
    from app.mcp_server import search_result

    first, follow = "长治市有多少所校外培训机构纳入了全国平台管理？", "那吕梁呢？"
    merged = "吕梁市有多少所校外培训机构纳入了全国平台管理？"
    folder = tmp_path / "index"
    real_index.save(folder)
    monkeypatch.setattr(cli_module, "make_encoder", lambda: real_encoder)

    library = answer(real_index, follow, history=[first], top_k=3).to_json()
    assert library["searched"] == merged
    want = passages(library)

    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps({"id": "c", "question": follow, "history": [first]}, ensure_ascii=False), "utf-8")
    by_cli = runner.invoke(cli, ["ask", "--json", "--top-k", "3", "--index", str(folder), "--questions", str(f)])
    assert by_cli.exit_code == 0, by_cli.output
    by_chat_cli = runner.invoke(cli, ["chat", "--json", "--top-k", "3", "--index", str(folder)], input=f"{first}\n{follow}\n")
    assert by_chat_cli.exit_code == 0, by_chat_cli.output

    c = ui.ChatUI(real_index, feedback_path=tmp_path / "fb.sqlite3")
    _, history, records = c.respond(first, [], {}, 3, "", "")
    _, history, records = c.respond(follow, history, records, 3, "", "")
    by_gradio = c.api_ask_followup(follow, 3, [first])

    with TestClient(create_api(lambda: real_index), base_url="http://127.0.0.1", client=("127.0.0.1", 5000)) as api:
        by_api = api.post(f"{PREFIX}/ask", json={"question": follow, "history": [first], "top_k": 3}).json()

    by_mcp = search_result(answer(real_index, follow, history=[first], top_k=3))
    for name, obj in [("ask --questions", json.loads(by_cli.stdout)), ("chat", json.loads(by_chat_cli.stdout.splitlines()[-1])),
                      ("gradio ask", by_gradio), ("JSON API", by_api), ("MCP", by_mcp)]:  # fmt: skip
        assert obj["searched"] == merged, name
        assert passages(obj) == want, name
    assert [p["chunk_id"] for p in records[3]["passages"]] == [c for c, _ in want]
    assert f"Searched for: {merged}" in history[3]["content"] or f"检索的是：{merged}" in history[3]["content"]


# --------------------------------------------------------------------------- reading a citation in its report


class Req:
    """What `ChatUI.on_report` reads of a Gradio request: the page's query."""

    def __init__(self, **query):
        self.query_params = query


def test_a_citation_links_to_its_passage_in_the_report_view(tiny_index, tmp_path):
    from conftest import Tags

    from app import views

    c = chat(tiny_index, tmp_path)
    _, history, records = c.respond(FIRST, [], {}, 3, "", "", "zh")
    links = [a["href"] for t, a in Tags(history[1]["content"]).tags if t == "a" and "rq-open" in a.get("class", "")]
    assert links == [views.report_url(p["doc_id"], int(p["chunk_id"].split("#")[1].split("+")[0])) for p in records[1]["passages"]]
    assert views.report_url("a", 0) == "?report=a&passage=0"

    shown = c.on_report("zh", Req(report="a", passage="0"))
    assert shown["visible"] is True
    page = Tags(shown["value"])
    doc = tiny_index.docs["a"]
    chunk = next(ch for ch in tiny_index.chunks if ch.doc_id == "a")
    assert "".join(page.text).endswith(doc.text) and doc.title in page.text  # the whole cleaned text
    here = shown["value"].split('<mark id="rq-here" class="rq-here">')[1].split("</mark>")[0]
    assert here == chunk.text and "返回问答" in page.text
    assert c.on_report("en", Req(report="nope"))["value"].count("There is no report nope.") == 1
    assert c.on_report("zh", Req()) == {"__type__": "update", "visible": False, "value": ""}
    assert c.on_report("zh", None)["visible"] is False
    assert c.on_report("zh", Req(report="a", passage="x"))["visible"] is True  # a bad passage: the first one


def test_the_report_view_steps_through_the_passages(fake_encoder):
    from conftest import Tags

    from app import views
    from app.index import ReportIndex as Index
    from app.records import Document

    text = "".join(f"第{i}段。" + "内容" * 200 + "\n" for i in range(4))
    index = Index.build([Document("r", "长报告", text, city="长治", date="2024", pages=(0, len(text) // 2))], fake_encoder)
    chunks = sorted((ch for ch in index.chunks if ch.doc_id == "r"), key=lambda ch: ch.n)
    assert len(chunks) >= 3
    first, middle, last = (views.report_html(index, "r", ch.n, "en") for ch in (chunks[0], chunks[1], chunks[-1]))
    hrefs = lambda markup: {a.get("class"): a["href"] for t, a in Tags(markup).tags if t == "a"}  # noqa: E731
    assert hrefs(first) == {"rq-back": "./", "rq-next": views.report_url("r", chunks[1].n)}
    assert hrefs(middle) == {"rq-back": "./", "rq-prev": views.report_url("r", chunks[0].n), "rq-next": views.report_url("r", chunks[2].n)}
    assert "rq-next" not in hrefs(last) and f"passage {len(chunks)} of {len(chunks)}" in last
    assert "passage 1 of" in first and "p. 1" in first and "p. 2" in last  # the page the passage is on
