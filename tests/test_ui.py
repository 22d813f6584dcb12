"""The chat without a browser: formatting is pure HTML built from records (`views`), votes go to
SQLite (`feedback`), the handlers are methods of `ChatUI` called directly, and the `/ask` API
answers through gradio_client (all on the fake tiny index)."""

from __future__ import annotations

import html
import json
import re
import sqlite3
import threading
from dataclasses import replace

import gradio as gr
import pytest
from conftest import ALLOWED_TAGS, Tags, free_port

from app import ui, views
from app.answer import DEFAULT_TOP_K, EMPTY_NOTICE, answer
from app.answerline import answer_line
from app.changes import Change, Update
from app.cli import cli
from app.feedback import FeedbackStore, feedback_record, vote_value
from app.index import ReportIndex, SearchSettings
from app.records import Answer, Chunk, Document, Hit

EVIL = "<img src=x onerror=alert(1)>"
Q = "长治市有多少所校外培训机构纳入了全国平台管理？"
SURE = replace(SearchSettings(), answer_threshold=-9.0)  # every question counts as answered
NEVER = replace(SearchSettings(), answer_threshold=9.0)  # no question counts as answered


def marked(markup: str, tag: str = "mark") -> list[str]:
    """Text inside each <tag>...</tag> (not nested), unescaped."""
    out, pos = [], 0
    while (i := markup.find(f"<{tag}", pos)) >= 0:
        j = markup.index(">", i) + 1
        k = markup.index(f"</{tag}>", j)
        out.append(html.unescape(markup[j:k]))
        pos = k
    return out


def ask(index, q=Q, **kw) -> Answer:
    return answer(index, q, **({"settings": SURE} | kw))


def chat(index, tmp_path, **kw) -> ui.ChatUI:
    return ui.ChatUI(index, **({"feedback_path": tmp_path / "fb.sqlite3", "settings": SURE} | kw))


# --------------------------------------------------------------------------- formatting (views)


def test_citation_shows_number_title_city_source_date_and_highlight(tiny_index):
    ans = ask(tiny_index, top_k=2)
    out = views.format_answer(ans, tiny_index)
    assert ans.answered and len(ans.hits) == 2
    text = "".join(Tags(out).text)
    for r, h in enumerate(ans.hits, 1):
        assert f"[{r}]" in text and h.doc.title in text and h.doc.city in text
        s, e = h.highlight
        assert h.chunk.text[s:e] in marked(out)
    assert "甲报" in text and "2024-01-01" in text and "乙报" in text
    assert {"188所" in m for m in marked(out)} == {True, False}
    assert "retrieved in" in text and "rq-time" in out


def test_highlight_is_exactly_the_answering_sentence(tiny_index):
    h = ask(tiny_index, top_k=1).hits[0]
    s, e = h.highlight
    got = views.passage_html(h)
    assert html.unescape(got.replace("<mark>", "").replace("</mark>", "")) == h.chunk.text
    assert marked(got) == [h.chunk.text[s:e]]


def test_passage_with_no_highlight_or_one_out_of_range_is_plain_escaped_text():
    doc = Document("d", "报告", "甲<b>乙</b>丙。")
    chunk = Chunk("d#0", "d", 0, doc.text, 0, len(doc.text))
    for span in ((0, 0), (5, 2), (-3, 0)):
        assert views.passage_html(Hit(chunk, doc, 1.0, span)) == html.escape(doc.text)
    assert views.passage_html(Hit(chunk, doc, 1.0, (8, 99))) == "甲&lt;b&gt;乙&lt;/b<mark>&gt;丙。</mark>"


def test_context_shows_surrounding_text_with_the_passage_marked():
    text = "前" * 500 + "本段落。答案在这里。" + "后" * 500
    doc = Document("d", "报告", text, city="吕梁")
    start = 500
    chunk = Chunk("d#3", "d", 3, text[start : start + 10], start, start + 10)
    hit = Hit(chunk, doc, 1.0, (4, 10))
    out = views.context_html(hit, None, width=300)
    assert html.unescape(Tags(out).text[0]) == "…" + "前" * 300
    assert "".join(Tags(out).text).endswith("后" * 300 + "…")
    assert marked(out, "mark") == ["本段落。<strong>答案在这里。</strong>"]
    assert marked(out, "strong") == ["答案在这里。"]


def test_context_at_the_edges_of_the_report_has_no_ellipsis(tiny_index):
    h = ask(tiny_index, top_k=1).hits[0]
    out = views.context_html(h, tiny_index)
    doc = tiny_index.docs[h.doc.id]
    assert "…" not in out
    assert "".join(Tags(out).text) == doc.text
    assert "<details" in views.format_answer(ask(tiny_index), tiny_index)


def test_a_paged_report_cites_the_page_of_the_answering_sentence():
    text = "第一页的内容。" + "第二页：新建幼儿园23所。"
    doc = Document("p", "报告", text, city="忻州", date="2024-09", pages=(0, 7))
    chunk = Chunk("p#0", "p", 0, text, 0, len(text))
    out = views.citation_html(1, Hit(chunk, doc, 1.0, (7, len(text))))
    assert "忻州 · 2024-09 · p. 2" in "".join(Tags(out).text)
    assert 'lang="zh-Hans"' in out
    assert "忻州 · 2024-09 · 第 2 页" in "".join(Tags(views.citation_html(1, Hit(chunk, doc, 1.0, (7, len(text))), lang="zh")).text)
    undated = replace(doc, date="")  # a report without a date is marked so (a date filter keeps it)
    assert "忻州 · undated · p. 2" in "".join(Tags(views.citation_html(1, Hit(chunk, undated, 1.0, (7, len(text))))).text)


@pytest.mark.parametrize("date", ["", "近期"])
def test_a_report_without_a_readable_date_is_undated_in_its_citation_and_its_view_alike(date, fake_encoder):
    text = "忻州市新建公办幼儿园23所，新增学位4600个。"
    doc = Document("p", "报告", text, city="忻州", source="教育局", date=date)
    index = ReportIndex.build([doc], fake_encoder)
    hit = Hit(index.chunks[0], doc, 1.0, (0, len(text)))
    for lang, word in [("zh", "日期不详"), ("en", "undated")]:
        cited = "".join(Tags(views.citation_html(1, hit, lang=lang)).text)
        shown = "".join(Tags(views.report_html(index, "p", 0, lang)).text)
        assert f"忻州 · 教育局 · {word}" in cited and f"忻州 · 教育局 · {word}" in shown
        assert "近期" not in cited + shown.replace(text, "")
    dated = replace(doc, date="2024-09")
    assert "忻州 · 教育局 · 2024-09" in "".join(Tags(views.report_html(ReportIndex.build([dated], fake_encoder), "p", 0)).text)


def test_not_answered_says_so_and_still_shows_the_closest_passages(tiny_index):
    ans = ask(tiny_index, "火星上有几所学校", settings=NEVER)
    assert not ans.answered and ans.hits
    out = views.format_answer(ans, tiny_index)
    assert views.NOT_ANSWERED in out
    assert "Closest passages (may not answer)" in out
    assert out.count('class="rq-cite"') == len(ans.hits)
    assert "Sources differ" not in out


def test_the_conflict_panel_lists_each_value_with_its_source(tiny_index):
    ans = ask(tiny_index, top_k=2)
    assert {h.doc.id for h in ans.hits} == {"a", "b"}  # both 长治: 188所 and 192所 of the same institutions
    line = answer_line(ans)
    assert line.conflict and [s.value.text for s in line.stated] == ["188所", "192所"]
    out = views.differ_html(line)
    assert "Sources differ:" in out and "报告甲" in out and "报告乙" in out
    assert [html.unescape(v) for v in re.findall(r'<b class="rq-value">(.*?)</b>', out)] == ["188所", "192所"]
    assert "Sources differ:" in views.format_answer(ans, tiny_index)
    assert "报告说法不一" in views.format_answer(ans, tiny_index, lang="zh")
    assert answer_line(ask(tiny_index, top_k=2, report="a")).conflict is False


def test_empty_question_answers_nothing_with_a_notice(tiny_index):
    for q in ("", "   ", "\x00\x07", None):
        ans = answer(tiny_index, q)
        assert (ans.answered, ans.hits, ans.notice) == (False, [], EMPTY_NOTICE)
        out = views.format_answer(ans, tiny_index)
        assert views.NOT_ANSWERED in out and "Closest" not in out and EMPTY_NOTICE in out


def test_an_error_is_a_chat_message_with_its_text_escaped():
    out = views.error_html(ValueError(f"index damaged {EVIL}"))
    assert "Something went wrong" in out and "<img" not in out and EVIL in "".join(Tags(out).text)


def _evil_index(fake_encoder) -> ReportIndex:
    text = f"长治市校外培训机构{EVIL}共188所。<script>alert('x')</script>全部纳入平台管理。\n" + "其他内容。" * 80
    docs = [
        Document(
            "evil",
            f"标题{EVIL}",
            text,
            city="长治<b>",
            source="<script>alert(2)</script>",
            date='2024"><i>',
            url="javascript:alert(3)",
        ),
        Document("ok", "正常报告", "全市192所培训机构全部纳入平台管理。", city="长治", url="https://example.org/r?a=1&b=<x>"),
    ]
    return ReportIndex.build(docs, fake_encoder)


def test_report_and_question_text_cannot_inject_html(fake_encoder):
    index = _evil_index(fake_encoder)
    ans = ask(index, f"校外培训机构{EVIL}<script>alert(1)</script>")
    assert {h.doc.id for h in ans.hits} == {"evil", "ok"}
    out = views.format_answer(ans, index) + views.question_html(ans.question)
    parsed = Tags(out)
    assert {t for t, _ in parsed.tags} <= ALLOWED_TAGS
    assert not [a for _, attrs in parsed.tags for a in attrs if a.startswith("on")]
    assert "<img" not in out and "<script" not in out and "<i>" not in out and "javascript:" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out and "&lt;script&gt;" in out
    text = "".join(parsed.text)
    assert EVIL in text and "<script>alert('x')</script>" in text and "长治<b>" in text
    links = [attrs["href"] for t, attrs in parsed.tags if t == "a"]
    assert [x for x in links if not x.startswith("?")] == ["https://example.org/r?a=1&b=<x>"]  # escaped, intact once parsed
    assert sorted(x for x in links if x.startswith("?")) == sorted(views.report_url(h.doc.id, h.chunk.n) for h in ans.hits)
    view = views.report_html(index, "evil", 0)
    assert {t for t, _ in Tags(view).tags} <= ALLOWED_TAGS | {"nav", "h2"} and "<script" not in view and "<img" not in view
    assert EVIL in "".join(Tags(view).text) and "javascript:" not in view


# --------------------------------------------------------------------------- search with filters


def test_filters_keep_only_the_chosen_city_or_report(tiny_index):
    ans = ask(tiny_index, top_k=3, city="忻州")
    assert [h.doc.city for h in ans.hits] == ["忻州"]
    ans = ask(tiny_index, top_k=3, report="b")
    assert [h.doc.id for h in ans.hits] == ["b"]
    ans = ask(tiny_index, top_k=5, city="长治")
    assert [h.doc.id for h in ans.hits] == ["a", "b"]
    assert len(ask(tiny_index, top_k=1, city="长治").hits) == 1


def test_a_filtered_answer_is_judged_on_the_passages_kept(tiny_index):
    """`answered` compares the confidence of the filtered passages themselves with the threshold; it no
    longer also requires the best passage overall to be among them."""
    assert answer(tiny_index, Q).hits[0].doc.id == "a"
    assert answer(tiny_index, Q, city="长治").answered and answer(tiny_index, Q, report="a").answered
    only_b = answer(tiny_index, Q, report="b")  # report b's passage says it less well
    assert only_b.hits and not only_b.answered
    assert "Closest passages (may not answer)" in views.format_answer(only_b, tiny_index)
    below, above = (replace(SearchSettings(), answer_threshold=only_b.confidence + d) for d in (-0.01, 0.01))
    assert answer(tiny_index, Q, report="b", settings=below).answered  # though a's passage ranks first overall
    assert not answer(tiny_index, Q, report="b", settings=above).answered
    assert not answer(tiny_index, Q, city="长治", settings=NEVER).answered


def test_filters_matching_nothing_say_so(tiny_index):
    ans = ask(tiny_index, city="忻州", report="a")
    assert (ans.hits, ans.answered) == ([], False)
    assert "no passage matches" in ans.notice
    assert views.NOT_ANSWERED in views.format_answer(ans, tiny_index)


# --------------------------------------------------------------------------- feedback


def _record(tiny_index) -> dict:
    return feedback_record(ask(tiny_index, top_k=2), {"top_k": 2, "city": "", "doc_id": ""})


def test_feedback_is_stored_with_question_and_passages(tiny_index, tmp_path):
    store = FeedbackStore(tmp_path / "data" / "feedback.sqlite3")
    rec = _record(tiny_index)
    store.add(rec, vote_value(True))
    store.add(rec, vote_value(False))
    rows = store.rows()
    assert [r["vote"] for r in rows] == [1, -1]
    assert rows[0]["question"] == Q
    assert rows[0]["answered"] == 1 and rows[0]["filters"]["top_k"] == 2
    assert [(p["rank"], p["doc_id"], p["chunk_id"]) for p in rows[0]["passages"]] == [(1, "a", "a#0"), (2, "b", "b#0")]
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute(
        "SELECT feedback_id, rank, doc_id, chunk_id FROM feedback_passage ORDER BY feedback_id, rank"
    ).fetchall() == [
        (1, 1, "a", "a#0"),
        (1, 2, "b", "b#0"),
        (2, 1, "a", "a#0"),
        (2, 2, "b", "b#0"),
    ]
    assert vote_value(None) == 0 and vote_value("Like") == 0


def test_concurrent_votes_lose_no_rows(tiny_index, tmp_path):
    path = tmp_path / "fb.sqlite3"
    stores = [FeedbackStore(path), FeedbackStore(path)]  # two stores: as two server processes would
    rec = _record(tiny_index)
    threads, per = 16, 25
    errors = []

    def work(n):
        try:
            for i in range(per):
                stores[n % 2].add(rec | {"question": f"q{n}-{i}"}, 1 if i % 2 else -1)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    rows = stores[0].rows()
    assert len(rows) == threads * per
    assert {r["question"] for r in rows} == {f"q{n}-{i}" for n in range(threads) for i in range(per)}
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM feedback_passage").fetchone()[0] == threads * per * 2


def test_serve_stores_votes_where_the_cli_says(runner, encoder, tiny_corpus, tmp_path, monkeypatch):
    """The library reads no environment: `reportqa serve` hands the UI $REPORTQA_DATA/feedback.sqlite3."""
    seen = {}
    monkeypatch.setattr(ui, "launch", lambda index, **kw: seen.update(kw, index=index))
    folder = tmp_path / "idx"
    assert runner.invoke(cli, ["index", "--corpus", str(tiny_corpus), "--index", str(folder)]).exit_code == 0
    result = runner.invoke(cli, ["serve", "--index", str(folder), "--port", "7999"])
    assert result.exit_code == 0, result.output
    assert seen["feedback_path"] == tmp_path / "data" / "feedback.sqlite3"
    assert (seen["index_dir"], seen["host"], seen["port"], seen["allow_add"]) == (folder, "127.0.0.1", 7999, False)
    assert set(seen["index"].docs) == {"a", "b", "c"}


# --------------------------------------------------------------------------- the handlers, called directly


def test_respond_adds_the_question_and_its_answer_and_keeps_a_record_to_vote_on(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path)
    box, history, records = c.respond(f"  {Q}\x00 ", [], {}, 2, "", "")
    assert box == "" and [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == views.question_html(Q)
    assert '<p class="rq-lead">2 passages from 2 reports:' in history[1]["content"]
    assert '<b class="rq-value">188所</b>' in history[1]["content"]  # the answer line
    assert list(records) == [1] and records[1]["filters"] == {"top_k": 2, "city": "", "doc_id": ""}
    # a second question keeps the first, and its record sits at its own message
    _, history, records = c.respond("学前教育毛入园率", history, records, None, "忻州", "")
    assert len(history) == 4 and list(records) == [1, 3]
    assert records[3]["filters"] == {"top_k": DEFAULT_TOP_K, "city": "忻州", "doc_id": ""}
    assert [p["doc_id"] for p in records[3]["passages"]] == ["c"]
    _, history, records = c.respond("", [], {}, 3, "", "")
    assert history[0]["content"] == "(empty question)" and EMPTY_NOTICE in history[1]["content"]


def test_respond_turns_an_error_into_a_message_and_keeps_no_record(tiny_index, tmp_path, monkeypatch):
    from app.errors import ReportQAError

    def broken(*a, **kw):
        raise ReportQAError("the index is damaged: run `reportqa index`")

    monkeypatch.setattr(ui, "answer", broken)
    _, history, records = chat(tiny_index, tmp_path).respond(Q, [], {}, 3, "", "")
    assert "Something went wrong: the index is damaged" in history[1]["content"] and records == {}


def test_on_like_stores_the_vote_on_that_answer(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path)
    _, history, records = c.respond(Q, [], {}, 2, "", "")
    _, history, records = c.respond("课后服务惠及学校", history, records, 1, "", "b")
    c.on_like(records, gr.LikeData(None, {"index": 1, "value": history[1]["content"], "liked": True}))
    c.on_like(records, gr.LikeData(None, {"index": [3, 0], "value": "", "liked": False}))
    c.on_like(records, gr.LikeData(None, {"index": 0, "value": "", "liked": True}))  # the question: no vote
    rows = c.feedback.rows()
    assert [(r["question"], r["vote"]) for r in rows] == [(Q, 1), ("课后服务惠及学校", -1)]
    assert rows[1]["filters"]["doc_id"] == "b" and [p["chunk_id"] for p in rows[1]["passages"]] == ["b#0"]


def test_without_a_feedback_path_no_vote_is_kept_nor_offered(tiny_index):
    c = ui.ChatUI(tiny_index)
    _, _, records = c.respond(Q, [], {}, 2, "", "")
    c.on_like(records, gr.LikeData(None, {"index": 1, "value": "", "liked": True}))
    app = c.create_app()
    assert app.feedback is None and "thumbs" not in c.footer(tiny_index)
    assert "on_like" not in {f.name for f in app.fns.values()}


def test_api_ask_is_the_cli_json_and_checks_top_k(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path)
    got = c.api_ask(Q)
    want = answer(tiny_index, Q, settings=SURE).to_json()
    assert {k: v for k, v in got.items() if k != "seconds"} == {k: v for k, v in want.items() if k != "seconds"}
    assert len(got["passages"]) == min(DEFAULT_TOP_K, len(tiny_index.chunks))
    assert [len(c.api_ask(Q, k)["passages"]) for k in (None, 0, 1, 2.0, 999)] == [3, 1, 1, 2, 3]
    for bad in ("many", [], float("inf")):
        with pytest.raises(gr.Error, match="top_k must be a whole number from 1 to 50"):
            c.api_ask(Q, bad)
    assert c.api_ask(None)["notice"] == EMPTY_NOTICE


def test_reports_for_a_city_offers_only_its_reports(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path)
    assert [v for _, v in c.reports_for("长治")["choices"]] == ["", "b", "a"]  # by city, date, title
    assert [v for _, v in c.reports_for("忻州")["choices"]] == ["", "c"]
    assert [v for _, v in c.reports_for("")["choices"]] == ["", "c", "b", "a"]
    assert c.reports_for("长治")["value"] == ""


def test_on_load_shows_the_index_served_now(tiny_index, tiny_corpus, fake_encoder, tmp_path):
    folder = tmp_path / "idx"
    tiny_index.save(folder)
    c = chat(tiny_index, tmp_path, index_dir=folder)
    c.live.check_every = 0.0
    cities, reports, footer = c.on_load()
    assert [v for _, v in cities["choices"]] == ["", "忻州", "长治"] and footer.startswith("3 reports, 3 passages.")
    extra = Document("jc", "晋城市教育简报", "全年教育经费投入68.3亿元。", city="晋城")
    ReportIndex.build([*tiny_index.docs.values(), extra], fake_encoder).save(folder)  # as `reportqa add` would
    cities, reports, footer = c.on_load()
    assert "晋城" in {v for _, v in cities["choices"]} and footer.startswith("4 reports")
    assert ("晋城市教育简报 (晋城)", "jc") in reports["choices"]
    with_panel = chat(tiny_index, tmp_path, index_dir=folder, add_panel=True).on_load()
    assert len(with_panel) == 4 and ("报告甲 (长治) · shipped", "a") in with_panel[3]["choices"]


class FakeChanges:
    """`changes.add` / `changes.remove` as the panel calls them: records the call, returns a `Change`."""

    def __init__(self, live, new_index, kind="added"):
        self.live, self.new, self.kind, self.calls = live, new_index, kind, []

    def __call__(self, index_dir, *args, encoder, old, progress=None, **kw):
        self.calls.append((index_dir, args, encoder, old, self.live.lock.locked()))
        self.kw = kw
        if progress:
            progress(1, 1)
        docs = [d for d in self.new.docs.values() if d.id == "jc"] or [self.live.index.docs["a"]]
        return Change(docs, Update(self.new, 1, len(self.new.chunks) - 1, True, index_dir / "build-new"), self.kind)


def test_on_add_and_on_remove_go_through_changes_and_swap_the_served_index(tiny_index, fake_encoder, tmp_path, monkeypatch):
    from app import changes

    folder = tmp_path / "idx"
    c = chat(tiny_index, tmp_path, index_dir=folder, add_panel=True)
    extra = Document("jc", "晋城市教育简报", "全年教育经费投入68.3亿元。", city="晋城")
    bigger = ReportIndex.build([*tiny_index.docs.values(), extra], fake_encoder)
    add = FakeChanges(c.live, bigger)
    monkeypatch.setattr(changes, "add", add)
    message, cities, reports, footer, removable = c.on_add(str(tmp_path / "jc.txt"), "", "晋城", "", "晋城市教育局")
    assert message == "Added ‘晋城市教育简报’ (晋城 · 1 passage); you can ask about it now. The collection holds 4 reports."
    assert add.kw == {"replace": False}
    (index_dir, args, encoder, old, locked), = add.calls
    assert (index_dir, args[0], encoder, old, locked) == (folder, [tmp_path / "jc.txt"], fake_encoder, tiny_index, True)
    assert args[1] == {"title": "", "city": "晋城", "date": "", "source": "晋城市教育局"}
    assert c.live.index is bigger and c.live.build == "build-new"
    assert footer.startswith("4 reports") and ("晋城市教育简报 (晋城) · shipped", "jc") in removable["choices"]
    _, history, _ = c.respond("晋城市教育经费投入多少", [], {}, 1, "", "")
    assert "68.3亿元" in history[1]["content"]  # the next question searches the new index

    smaller = ReportIndex.build([tiny_index.docs["b"], tiny_index.docs["c"]], fake_encoder)
    remove = FakeChanges(c.live, smaller, kind="corpus")
    monkeypatch.setattr(changes, "remove", remove)
    message, *_, footer, removable = c.on_remove("a")
    assert message.startswith("‘报告甲’ is a shipped report: it is no longer searched") and message.endswith("holds 2 reports.")
    assert remove.calls[0][:2] == (folder, ("a",)) and remove.calls[0][3] is bigger and remove.calls[0][4]
    assert c.live.index is smaller and "a" not in {v for _, v in removable["choices"]}


def test_the_panel_adds_and_removes_a_report_for_real(tiny_corpus, fake_encoder, tmp_path):
    from app.changes import build_from

    folder = tmp_path / "idx"
    c = chat(build_from([tiny_corpus], folder, fake_encoder).index, tmp_path, index_dir=folder, add_panel=True)
    report = tmp_path / "晋城教育简报.txt"
    report.write_text("晋城市2024年教育工作简报\n全年教育经费投入68.3亿元，较上年增长6.2%。", encoding="utf-8")
    before = fake_encoder.passages_embedded
    message, *_, footer, removable = c.on_add(str(report), "", "晋城", "", "晋城市教育局")
    assert message == "Added ‘晋城市2024年教育工作简报’ (晋城 · 1 passage); you can ask about it now. The collection holds 4 reports."
    assert ("晋城市2024年教育工作简报 (晋城) · added by you", "晋城教育简报") in removable["choices"]
    assert ("报告甲 (长治) · shipped", "a") in removable["choices"]
    assert fake_encoder.passages_embedded - before == 1 and footer.startswith("4 reports")
    # the same file again: told in the user's words, and replaced when asked
    message, *_ = c.on_add(str(report), "", "晋城", "", "晋城市教育局", False, "zh")
    assert message.startswith("《晋城教育简报》已经添加过了") and "--replace" not in message
    message, *_ = c.on_add(str(report), "", "晋城", "", "晋城市教育局", True, "zh")
    assert message.startswith("已添加《晋城市2024年教育工作简报》") and "共有 4 份报告" in message
    # removal asks first, in words telling an added report from a shipped one
    text, confirm = c.ask_remove("晋城教育简报", "zh")
    assert text.startswith("确定删除您添加的《晋城市2024年教育工作简报》") and confirm["visible"] is True
    text, confirm = c.ask_remove("a", "zh")
    assert "是随附报告" in text and confirm["visible"] is True
    assert c.ask_remove(None, "zh")[0] == "请先选择要删除的报告。" and c.cancel_remove()[1]["visible"] is False
    assert "晋城教育简报" in ReportIndex.load(folder, fake_encoder).docs  # saved for the next start
    _, history, _ = c.respond("晋城市教育经费投入多少", [], {}, 1, "晋城", "")
    assert "68.3亿元" in history[1]["content"] and "晋城 · 晋城市教育局" in history[1]["content"]
    message, *_ = c.on_remove("晋城教育简报")
    assert message == "Removed ‘晋城市2024年教育工作简报’, which you had added. The collection holds 3 reports."
    message, *_ = c.on_remove("a", "zh")
    assert message == "《报告甲》是随附报告：它已不再被检索（文件保留，可以恢复）。共有 2 份报告。"
    assert set(ReportIndex.load(folder, fake_encoder).docs) == set(c.live.index.docs) == {"b", "c"}


def test_a_refused_change_is_a_message_and_the_index_stays(tiny_index, tmp_path, monkeypatch):
    from app import changes
    from app.errors import ReportQAError

    def refuse(*a, **kw):
        raise ReportQAError("empty.txt: no usable text")

    monkeypatch.setattr(changes, "add", refuse)
    monkeypatch.setattr(changes, "remove", refuse)
    c = chat(tiny_index, tmp_path, index_dir=tmp_path / "idx", add_panel=True)
    message, *updates = c.on_add(str(tmp_path / "empty.txt"), "", "", "", "")
    assert message == "Not added: empty.txt: no usable text" and updates == [gr.update()] * 4
    assert c.on_remove("a")[0] == "Not removed: empty.txt: no usable text" and c.live.index is tiny_index
    assert c.on_add(None, "", "", "", "")[0] == "Choose a report file first."
    assert c.on_remove(None)[0] == "Choose a report to remove first."
    assert not c.live.lock.locked()


# --------------------------------------------------------------------------- one answer for every front end


def _chat_passages(reply: str, record: dict) -> list[tuple[str, str]]:
    """(chunk id, highlighted sentence) of each citation of a chat reply."""
    quotes = re.findall(r'<blockquote class="rq-passage">(.*?)</blockquote>', reply, re.S)
    return [(p["chunk_id"], (marked(q) or [""])[0]) for p, q in zip(record["passages"], quotes, strict=True)]


def _json_passages(obj: dict) -> list[tuple[str, str]]:
    return [(p["chunk_id"], p["text"][slice(*p["highlight"])]) for p in obj["passages"]]


@pytest.mark.parametrize(
    "question", [Q, "忻州學前教育毛入園率是多少", "How many after-school programmes?", "课后服务惠及学校481所"]
)
def test_the_cli_the_chat_and_the_ask_endpoint_give_the_same_passages(question, runner, encoder, tiny_corpus, tmp_path):
    folder = tmp_path / "idx"
    assert runner.invoke(cli, ["index", "--corpus", str(tiny_corpus), "--index", str(folder)]).exit_code == 0
    result = runner.invoke(cli, ["ask", "--json", "--top-k", "3", "--index", str(folder), question])
    assert result.exit_code == 0, result.output
    by_cli = json.loads(result.stdout)
    c = ui.ChatUI(ReportIndex.load(folder, encoder), feedback_path=tmp_path / "fb.sqlite3")  # default settings, as the CLI
    by_api = c.api_ask(question, 3)
    _, history, records = c.respond(question, [], {}, 3, "", "")
    assert by_cli["passages"] and _json_passages(by_api) == _json_passages(by_cli)
    assert _chat_passages(history[1]["content"], records[1]) == _json_passages(by_cli)
    assert by_api["answered"] == by_cli["answered"] == records[1]["answered"]
    assert {k: v for k, v in by_api.items() if k != "seconds"} == {k: v for k, v in by_cli.items() if k != "seconds"}

    # with filters: `ask --city/--report` and the chat's filter menus
    index = c.live.index
    for city, report in (("长治", ""), ("", "b"), ("忻州", ""), ("长治", "a"), ("忻州", "a")):
        args = ["ask", "--json", "--top-k", "3", "--index", str(folder), "--city", city, "--report", report, question]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        want = json.loads(result.stdout)
        _, history, records = c.respond(question, [], {}, 3, city, report)
        assert _chat_passages(history[1]["content"], records[1]) == _json_passages(want), (city, report)
        assert records[1]["answered"] == want["answered"]
        assert _json_passages(want) == _json_passages(answer(index, question, top_k=3, city=city, report=report).to_json())
        assert all((not city or p["city"] == city) and (not report or p["doc_id"] == report) for p in want["passages"])


# --------------------------------------------------------------------------- the app and its API


def test_create_app_builds_without_launching(tiny_index, tmp_path):
    app = ui.create_app(tiny_index, feedback_path=tmp_path / "fb.sqlite3")
    assert isinstance(app, gr.Blocks) and isinstance(app.chat, ui.ChatUI)
    assert not app.is_running and app.share is False
    assert (tmp_path / "fb.sqlite3").exists() and app.feedback.path == tmp_path / "fb.sqlite3"
    assert {"ask", "ask_followup"} <= {fn.api_name for fn in app.fns.values()}
    assert not [b for b in app.blocks.values() if isinstance(b, gr.Accordion)]  # no panel unless asked


def test_the_panel_needs_an_index_folder(tiny_index, tmp_path):
    def panels(**kw):
        app = ui.create_app(tiny_index, feedback_path=tmp_path / "fb.sqlite3", **kw)
        return [b.label for b in app.blocks.values() if isinstance(b, gr.Accordion)]

    assert panels(index_dir=tmp_path / "idx", add_panel=True) == ["添加或删除报告（仅限本机）"]
    assert panels(add_panel=True) == [] and panels(index_dir=tmp_path / "idx") == []


def test_launch_offers_the_panel_on_loopback_only_unless_allowed(monkeypatch, tiny_index, tmp_path):
    seen = {}

    def start_server(app, host, port):
        seen.update(host=host, port=port, chat=chat_of(app))
        raise RuntimeError("stop here")  # no server needed: the app is built

    def chat_of(app):
        mounted = next(r.app for r in app.routes if getattr(r, "path", None) == "")
        return mounted.get_blocks().chat

    monkeypatch.setattr(ui, "start_server", start_server)
    monkeypatch.setattr(ui.ChatUI, "warm", lambda self: None)
    for host, allow, key, folder, shown in [
        ("127.0.0.1", False, None, tmp_path, True),
        ("localhost", False, None, tmp_path, True),
        ("::1", False, None, tmp_path, True),
        ("0.0.0.0", False, "k", tmp_path, False),
        ("0.0.0.0", True, "k", tmp_path, True),
        ("127.0.0.1", False, None, None, False),
    ]:
        with pytest.raises(ui.ReportQAError, match="--port"):
            ui.launch(tiny_index, host=host, port=7999, index_dir=folder, allow_add=allow, api_key=key)
        assert seen["chat"].add_panel is shown and seen["chat"].index_dir == folder, host
        assert seen["chat"].keyed is bool(key) and (seen["host"], seen["port"]) == (host, 7999)


@pytest.fixture
def served(tiny_index, tmp_path):
    port = free_port()
    app = ui.launch(tiny_index, port=port, feedback_path=tmp_path / "fb.sqlite3", settings=SURE, block=False)
    yield f"http://127.0.0.1:{port}/", app
    app.close()


def test_ask_api_returns_the_cli_json(served, tiny_index):
    from gradio_client import Client

    url, _ = served
    client = Client(url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert list(api) == ["/ask", "/ask_followup", "/ask_dated"]
    assert [p["parameter_name"] for p in api["/ask"]["parameters"]] == ["question", "top_k"]
    assert [p["parameter_name"] for p in api["/ask_followup"]["parameters"]] == ["question", "top_k", "history"]
    assert [p["parameter_name"] for p in api["/ask_dated"]["parameters"]] == ["question", "top_k", "history", "date_from", "date_to"]
    got = client.predict(Q, api_name="/ask")
    want = answer(tiny_index, Q, settings=SURE).to_json()
    assert {k: v for k, v in got.items() if k != "seconds"} == {k: v for k, v in want.items() if k != "seconds"}
    assert got["answered"] and "188所" in got["passages"][0]["text"]
    assert len(client.predict(Q, 1, api_name="/ask")["passages"]) == 1
    follow = client.predict("那忻州呢？", 3, ["长治有多少所校外培训机构纳入平台管理？"], api_name="/ask_followup")
    assert (follow["question"], follow["searched"]) == ("那忻州呢？", "忻州有多少所校外培训机构纳入平台管理？")
    dated = client.predict(Q, 5, [], "2024-02", "", api_name="/ask_dated")  # report a is dated 2024-01-01
    assert dated["passages"] and "a" not in {p["doc_id"] for p in dated["passages"]}
    empty = client.predict("", api_name="/ask")
    assert (empty["answered"], empty["passages"], empty["notice"]) == (False, [], EMPTY_NOTICE)


def test_ask_api_serves_concurrent_users_their_own_answers(served):
    from gradio_client import Client

    url, _ = served
    questions = {"长治市校外培训机构纳入平台管理": "a", "课后服务惠及学校": "b", "學前教育毛入園率": "c"}
    got: dict[str, str] = {}

    def one(q):
        got[q] = Client(url, verbose=False).predict(q, 1, api_name="/ask")["passages"][0]["doc_id"]

    ts = [threading.Thread(target=one, args=(q,)) for q in list(questions) * 3]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert got == questions


def test_no_public_link_and_no_files_served(served, tmp_path):
    import httpx

    url, app = served
    assert app.share is False and app.share_url is None
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    for path in (secret, ui.__file__, "/etc/passwd"):
        r = httpx.get(f"{url}gradio_api/file={path}")
        assert r.status_code == 403 and "do not serve" not in r.text


# --------------------------------------------------------------------------- the answer line (answerline)


def _hit(text: str, doc_id: str = "d", city: str = "长治", sentence: str | None = None) -> Hit:
    doc = Document(doc_id, f"报告{doc_id}", text, city=city, source="某报")
    s = text.index(sentence) if sentence else 0
    e = s + len(sentence) if sentence else len(text)
    return Hit(Chunk(f"{doc_id}#0", doc_id, 0, text, 0, len(text)), doc, 1.0, (s, e))


@pytest.mark.parametrize(
    "question, kind",
    [
        ("长治有多少所幼儿园？", "figure"),
        ("忻州學前教育毛入園率是多少", "rate"),
        ("长治校外培训平台交易资金有多少，占全省比例是多少？", "money"),
        ("宣讲会是哪一年举行的？", "date"),
        ("长治出台了什么文件推动传统文化进校园？", "name"),
        ("宣讲会在哪里举行？", "place"),
        ("重庆的外贸总值排名第几？", "ordinal"),
        ("长治教育有什么特点？", None),
    ],
)
def test_asked_kind(question, kind):
    from app.answerline import asked_kind

    assert asked_kind(question) == kind


@pytest.mark.parametrize(
    "sentence, question, value",
    [
        ("全市188所校外培训机构全部纳入平台管理。", "长治有多少所校外培训机构纳入平台管理？", "188所"),
        ("2024年全市建设普惠性幼儿园6所，其中新建公办幼儿园4所。", "2024年长治新建公办幼儿园多少所？", "4所"),
        ("全市學前教育毛入園率達到96.7%,義務教育凈入學率達到99.9%。", "忻州學前教育毛入園率是多少", "96.7%"),
        ("全市學前教育毛入園率達到96.7%,高中階段毛入學率達到96.3%。", "忻州高中阶段毛入学率是多少？", "96.3%"),
        ("我市平台交易资金1138万元，占全省交易总量的45%。", "交易资金有多少，占全省比例是多少？", "1138万元"),
        ("补充义务教育教师895名，其中硕士研究生268名。", "补充的教师中有多少名硕士研究生？", "268名"),
        ("新招录教师 4500 余人。", "近年来新招录了多少名教师？", "4500 余人"),
        ("全市共組建義務教育學區77個。", "忻州一共构建了多少个义务教育学区？", "77個"),  # verbatim: traditional kept
        ("出台《长治市中华优秀传统文化进校园实施方案》，推动进校园。", "长治出台了什么文件？", "《长治市中华优秀传统文化进校园实施方案》"),
        ("8月29日，宣讲会在吕梁一中举行。", "宣讲会在哪里举行？", "吕梁一中"),
        ("8月29日，宣讲会在吕梁一中举行。", "宣讲会是什么时候举行的？", "8月29日"),
        ("这是一个重要举措。", "有多少个举措？", None),  # 一个 is "a", and nothing else is a figure
        # a count in another measure word counts something else: 11所 does not answer 多少人
        ("特殊教育学校11所、中职学校32所。", "特殊教育学校在校学生有多少人？", None),
        ("特殊教育学校11所，在校学生1200人。", "特殊教育学校在校学生有多少人？", "1200人"),
        ("共培训教师3.5万人次。", "共培训了多少人？", "3.5万人次"),  # 人次 is no class's: left to the score
        ("上映期间不得少于7天。", "上映期间不得少于几日？", "7天"),  # nor 日 and 天
        ("建成学区77个。", "建成了多少所学区？", "77个"),  # the generic 个 counts anything, on either side
        ("共有12所学校参与。", "有多少个学校参与？", "12所"),
    ],
)
def test_extract_takes_the_value_verbatim_from_the_sentence(sentence, question, value):
    from app.answerline import extract

    got = extract(sentence, question)
    assert (got.text if got else None) == value
    if got:
        assert sentence[got.start : got.end] == got.text


def test_answer_value_is_none_without_an_answer_or_a_figure(tiny_index):
    from app.answerline import answer_value

    assert answer_value(ask(tiny_index)) == "188所"
    assert answer_value(ask(tiny_index, settings=NEVER)) is None  # not answered: no answer line
    assert answer_value(ask(tiny_index, "校外培训机构纳入平台管理")) is None  # asks for no figure
    assert answer_value(Answer("多少所？", [], False, 0.0)) is None


def test_the_json_answer_field_is_the_answer_value(tiny_index):
    import inspect

    from app import answer as answer_module
    from app.answerline import answer_value

    ans = ask(tiny_index)
    assert "answer" in ans.to_json() and Answer("q", [], False, 0.0).to_json()["answer"] is None
    if "answer_value" not in inspect.getsource(answer_module):
        pytest.skip("app/answer.py does not call answerline.answer_value yet")
    assert ans.to_json()["answer"] == answer_value(ans) == "188所"


def test_no_conflict_between_cities_subjects_or_agreeing_reports():
    from app.answerline import answer_line

    q = "长治有多少所校外培训机构纳入平台管理？"
    a = _hit("全市188所校外培训机构全部纳入平台管理。", "a")
    b = _hit("全市192所校外培训机构全部纳入平台管理。", "b")
    other_city = _hit("全市95所校外培训机构全部纳入平台管理。", "c", city="忻州")
    agree = _hit("目前188所校外培训机构已纳入平台管理。", "e")
    line = answer_line(Answer(q, [a, b], True, 0.0))
    assert line.conflict and [(s.value.text, s.ranks) for s in line.stated] == [("188所", (1,)), ("192所", (2,))]
    assert not answer_line(Answer(q, [a, other_city], True, 0.0)).conflict  # another city's figure: another fact
    line = answer_line(Answer(q, [a, agree], True, 0.0))
    assert not line.conflict and line.stated[0].ranks == (1, 2)  # two reports agree
    assert "2 reports agree" in views.answer_line_html(line) and "2 份报告说法一致" in views.answer_line_html(line, "zh")
    # a kindergarten sentence beside a school-planning sentence is no disagreement
    kq = "长治新建公办幼儿园多少所？"
    k1 = _hit("2024年全市新建公办幼儿园4所。", "k")
    k2 = _hit("优化289所学校办学条件，新建学校12所。", "s")
    assert not answer_line(Answer(kq, [k1, k2], True, 0.0)).conflict
    # one report stating two figures is no disagreement between reports either
    same = _hit("全市188所校外培训机构全部纳入平台管理，192所培训机构签订协议。", "a")
    assert not answer_line(Answer(q, [a, same], True, 0.0)).conflict


def test_exact_match_against_gold_figures():
    from app.answerline_eval import gold_keys, matches

    assert matches("188所", gold_keys(["188所校外培训机构"], "figure"))
    assert matches("12万张", gold_keys(["约12万张"], "figure"))
    assert matches("220名", gold_keys(["220"], "figure"))  # a bare gold number
    assert matches("77个", gold_keys(["義務教育學區77個"], "figure"))  # folded: script
    assert not matches("192所", gold_keys(["188所校外培训机构"], "figure"))


# --------------------------------------------------------------------------- verdicts and why (views)


def test_three_states_from_confidence_and_answered(tiny_index):
    sure = ask(tiny_index)
    assert views.verdict(sure, 0.5) == "answer"
    maybe = replace(sure, answered=False, confidence=0.3)
    assert views.verdict(maybe, 0.5) == "possible" and views.verdict(maybe, None) == "none"
    assert views.verdict(replace(maybe, confidence=0.2), 0.5) == "none"
    assert views.verdict(replace(maybe, hits=[]), 0.5) == "none"
    out = views.format_answer(maybe, tiny_index, lang="zh", threshold=0.5)
    assert "可能的答案" in out and "rq-value" not in out  # no answer line unless answered
    out = views.format_answer(replace(maybe, confidence=0.1), tiny_index, lang="zh", threshold=0.5)
    assert "报告中没有找到答案" in out and "rq-why" in out


def test_an_answer_under_an_even_chance_is_shown_as_possible_with_its_reason(tiny_index):
    """A calibrated confidence is a probability: above the (low) threshold but under `records.SURE` the
    first passage more likely does not answer, so the chat hedges instead of vouching for it."""
    from app.records import SURE

    plain = _hit("课后服务惠及广大学生。", "p")
    base = Answer("课后服务惠及多少所学校？", [plain], True, 0.0, confidence=SURE - 0.01, calibrated=True)
    assert not base.sure and views.verdict(base, 0.01) == "possible"
    assert views.verdict(replace(base, confidence=SURE), 0.01) == "answer"
    # the hand-set path's confidence is no probability: answered is all there is
    assert views.verdict(replace(base, calibrated=False), 0.01) == "answer"
    out = views.format_answer(base, tiny_index, lang="en", threshold=0.01)
    assert "Possible answer" in out and "rq-closest" in out and "rq-value" not in out
    assert "The passage has no figure of the kind asked (a number)." in out  # the reason, when the facts give one
    vague = replace(base, question="课后服务怎么样？", searched="课后服务怎么样？")
    out = views.format_answer(vague, tiny_index, lang="en", threshold=0.01)
    assert "Possible answer" in out and "rq-why" not in out  # no generic line under a possible answer
    why = "The passage has no figure of the kind asked (a number)."
    assert views.plain_text(base, "en", 0.01).splitlines()[1] == f"A: Possible answer {why}"
    assert views.answer_label(base, "en", 0.01).startswith(f"Possible answer: {why}")
    # the JSON of every front end says the same, by the threshold the search judged by
    assert base.to_json()["state"] == "possible" and replace(base, confidence=SURE).to_json()["state"] == "answer"
    near = replace(base, answered=False, confidence=0.006, threshold=0.01)
    assert near.to_json()["state"] == "possible" and replace(near, confidence=0.004).to_json()["state"] == "none"
    never = ask(tiny_index, settings=NEVER)  # the search records the threshold it judged by
    assert never.threshold == 9.0 and never.to_json()["state"] == "none"


def test_why_not_says_why_in_words(tiny_index):
    cities = ["忻州", "长治"]

    def why(q, hits=None, lang="en"):
        hits = ask(tiny_index, q, settings=NEVER).hits if hits is None else hits
        return views.why_not(Answer(q, hits, False, 0.0), cities, lang)

    assert why("太原有多少所幼儿园？") == "No report mentions 太原: the reports are about 忻州, 长治."
    assert why("太原有多少所幼儿园？", lang="zh") == "没有报告提到太原：这些报告只关于忻州、长治。"
    plain = _hit("课后服务惠及广大学生。", "p")
    assert why("课后服务惠及多少所学校？", [plain]) == "The passage has no figure of the kind asked (a number)."
    assert why("忻州课后服务惠及学校吗？", [plain], "zh") == "关于忻州的报告没有提到这一点。"
    assert why("课后服务怎么样？", [plain]) == "No passage is close enough to the question."


def test_excerpt_starts_a_sentence_or_two_before_the_highlight():
    text = "开头的一句话。第一句很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长。短句。答案在这里有188所。后面一句。再后面。"
    hit = _hit(text, sentence="答案在这里有188所。")
    out = views.excerpt_html(hit)
    assert out.startswith("…") and marked(out) == ["答案在这里有188所。"]
    shown = html.unescape(out.replace("<mark>", "").replace("</mark>", ""))
    assert shown.startswith("…第一句") and "短句。" in shown and shown.endswith("后面一句。…")
    assert "再后面" not in shown
    first = _hit("答案在这里有188所。后面一句。", sentence="答案在这里有188所。")
    assert not views.excerpt_html(first).startswith("…")
    cite = views.citation_html(1, hit)
    assert "Show the whole passage in its context" in cite and html.escape("再后面") in cite  # the full passage, one click away


def test_plain_text_and_labels_have_no_markup(tiny_index):
    ans = ask(tiny_index, top_k=2)
    text = views.plain_text(ans, "zh", 0.5)
    assert "<" not in text and text.startswith("问：" + Q) and "答：188所 [1]; 192所 [2]" in text
    assert "[1] 报告甲 (长治 · 甲报 · 2024-01-01)" in text
    label = views.answer_label(ans, "zh", 0.5)
    assert "<" not in label and label.startswith("回答：188所") and len(label) < 100
    out = views.format_answer(ans, tiny_index, lang="zh", threshold=0.5, msg=1)
    assert html.escape(label) in out and 'class="rq-plain"' in out
    assert out.count("rq-v-up rq-m-1 rq-r-") == 2 and "rq-m-1 rq-r-2" in out  # thumbs beside each passage


def test_intro_names_the_cities_and_reports_with_the_counts(tiny_index):
    zh = views.intro_html(tiny_index, "zh")
    assert "忻州（1 份）、长治（2 份）" in zh and "3 份教育报告" in zh and "共 3 段" in zh
    assert all(html.escape(d.title) in zh for d in tiny_index.docs.values())
    assert "3 education reports" in views.intro_html(tiny_index, "en")


# --------------------------------------------------------------------------- the chat's steps


def test_the_question_shows_at_once_with_a_searching_line(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path)
    box, history, pending = c.start(Q, [], "zh")
    assert box == "" and pending == Q and history[0]["content"] == views.question_html(Q)
    assert "正在检索" in history[1]["content"] and "rq-searching" in history[1]["content"]
    history, records, button, last, typed_button, typed = c.finish(pending, history, {}, 2, "", "", "zh")
    assert len(history) == 2 and "rq-searching" not in history[1]["content"] and "rq-value" in history[1]["content"]
    assert list(records) == [1] and button["visible"] is False and last == ""
    assert typed_button["visible"] is False and typed == "" and "rq-searched" not in history[1]["content"]


def test_a_long_question_is_never_cut_silently(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path)
    long = "长治市校外培训机构" * 300 + "。长治市有多少所校外培训机构纳入了平台？"
    _, history = c.start(long, [], "zh")[:2]
    history, _, button, last, typed_button, _ = c.finish(long, history, {}, 2, "", "", "zh")
    assert "问题超过 2000 字的上限" in history[1]["content"] and "只检索最后一句" in history[1]["content"]
    assert button["visible"] is True and last == "长治市有多少所校外培训机构纳入了平台？"
    assert typed_button["visible"] is False  # a long message is never a follow-up
    assert ui.last_sentence("一句。二句！三句") == "三句"


def test_a_vote_on_a_passage_is_stored_and_acknowledged(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path)
    _, history, records = c.respond(Q, [], {}, 2, "", "", "zh")
    assert c.on_vote("1:2:-1:12345", records, "zh") == "已记下：第 2 段没用。谢谢！"
    assert c.on_vote("1:1:1", {str(k): v for k, v in records.items()}, "en") == "Recorded: passage 1 is useful. Thank you!"
    assert c.on_vote("3:1:1", records, "en").startswith("That answer has expired")
    assert c.on_vote("junk", records) == ""
    rows = c.feedback.rows()
    assert [(r["vote"], [p["rank"] for p in r["passages"]], r["filters"]["passage"]) for r in rows] == [(-1, [2], 2), (1, [1], 1)]


def test_the_conversation_survives_a_reload(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path)
    _, history, records = c.respond(Q, [], {}, 2, "", "", "en")
    stored = json.loads(json.dumps(c.saved(history, records, "en")))  # as the browser keeps it: JSON
    assert c.restore(stored) == (history, records, "en")
    outs = c.on_load(stored)
    assert outs[-3:] == (history, records, "en") and outs[3]["value"].startswith("# ReportQA")
    searching = c.start("又一个问题", history, "en")[1]
    assert c.restore(c.saved(searching, records, "en"))[0] == history  # a reload mid-search drops the unanswered line
    assert c.restore(None) == ([], {}, "zh") and c.restore({"history": "junk", "records": {"x": 1}})[:2] == ([], {})
    for _ in range(ui.KEPT_TURNS + 2):
        _, history, records = c.respond(Q, history, records, 1, "", "", "en")
    kept = c.saved(history, records, "en")
    assert len(kept["history"]) == 2 * ui.KEPT_TURNS and sorted(map(int, kept["records"])) == list(range(1, 2 * ui.KEPT_TURNS, 2))
    assert "rq-m-1 rq-r-1" in kept["history"][1]["content"]  # thumbs renumbered with the kept turns


def test_the_language_switch_changes_every_word(tiny_index, tmp_path):
    c = chat(tiny_index, tmp_path, index_dir=tmp_path / "idx", add_panel=True)
    zh, en = c.set_lang("zh", [], {}), c.set_lang("en", [], {})
    assert zh[0]["choices"][0] == ("全部城市", "") and en[0]["choices"][0] == ("All cities", "")
    assert zh[4]["value"].startswith("# 教育报告问答") and "ReportQA · education reports" in en[4]["value"]
    assert "（仅限本机）" in zh[12]["label"] and en[-1] == {"lang": "en", "history": [], "records": {}}
    assert len(zh) == len(en) == 4 + 8 + 14 + 2 + 1


def test_the_session_pruner_drops_idle_sessions_only():
    """Gradio's queue, as `_SessionPruner` reads it: a session stays while it has an event queued or
    running, or a result to report (within the grace, the next test); past the limit, the idle ones
    lose their message queue and event set."""
    from types import SimpleNamespace as NS

    from app.ui import _SessionPruner

    queue = NS(
        pending_event_ids_session={"reporting": {"e1"}, "idle": set(), "running": set(), "queued": set()},
        pending_messages_per_session={s: object() for s in ("reporting", "idle", "running", "queued", "idle2")},
        event_queue_per_concurrency_id={"search": NS(queue=[NS(session_hash="queued")])},
        active_jobs=[None, [NS(session_hash="running")]],
    )
    pruner = _SessionPruner(None, NS(_queue=queue), sessions=10)
    pruner.sweep(queue)
    assert len(queue.pending_messages_per_session) == 5  # under the limit: nothing done
    pruner.limit = 3
    pruner.sweep(queue)
    assert set(queue.pending_messages_per_session) == {"reporting", "running", "queued"}
    assert set(queue.pending_event_ids_session) == {"reporting", "running", "queued"}
    assert pruner.limit == 10  # back to its floor once the dicts are small again
    pruner.sweep(NS())  # another Gradio without these attributes: left alone


def test_the_session_pruner_drops_results_left_unfetched_past_the_grace():
    """A client that posts calls and never fetches their results: a session whose events a sweep
    has seen finished and unfetched for `grace` seconds goes, as an idle one does, and so does one
    whose message queue Gradio dropped already; a younger one, one with a newer event, and one whose
    event is queued, running or still held by Gradio (its run's bookkeeping not done) stay."""
    from types import SimpleNamespace as NS

    from app.ui import _SessionPruner

    queue = NS(
        pending_event_ids_session={"old": {"e1"}, "queued": {"e2"}, "running": {"e3"}, "held": {"e4"}, "more": {"e5"}},
        pending_messages_per_session={s: object() for s in ("old", "queued", "running", "held", "more")},
        event_queue_per_concurrency_id={"search": NS(queue=[NS(session_hash="queued")])},
        active_jobs=[None, [NS(session_hash="running")]],
        event_ids_to_events={"e2": object(), "e3": object(), "e4": object()},
    )
    pending, messages = queue.pending_event_ids_session, queue.pending_messages_per_session
    pruner = _SessionPruner(None, NS(_queue=queue), sessions=1, grace=60)
    pruner.sweep(queue, now=0)  # past the limit: "old" and "more" first seen finished and unfetched
    assert set(pending) == set(messages) == {"old", "queued", "running", "held", "more"}
    assert (pruner.due, pruner.limit) == (60, 10)
    pending["young"], messages["young"] = {"e6"}, object()
    pending["more"].add("e7")  # a newer event of "more", finished too
    pruner.limit = 0
    pruner.sweep(queue, now=50)  # "young" and e7 first seen
    assert len(pending) == len(messages) == 6 and (pruner.due, pruner.limit) == (60, 12)
    pending["gone"] = {"e8"}  # no message queue (Gradio's own cap dropped it): nothing left to fetch
    pruner.sweep(queue, now=59)  # under the limit, nothing due: no sweep
    assert "gone" in pending
    pruner.sweep(queue, now=60)  # "old" due: a sweep, though under the limit
    assert set(pending) == set(messages) == {"queued", "running", "held", "more", "young"}
    assert pruner.due == 110
    pruner.sweep(queue, now=109)
    assert len(pending) == 5
    pruner.sweep(queue, now=110)
    assert set(pending) == set(messages) == {"queued", "running", "held"}
    assert pruner.due == float("inf") and pruner.limit == 6
    queue.event_queue_per_concurrency_id["search"].queue.clear()
    queue.active_jobs[1] = None
    queue.event_ids_to_events.clear()  # all three finished now: their grace starts when a sweep sees them
    pruner.sweep(queue, now=1000)
    assert len(pending) == 3  # under the limit, nothing seen: no sweep
    pruner.limit = 0
    pruner.sweep(queue, now=1000)
    assert len(pending) == 3 and pruner.due == 1060
    pruner.sweep(queue, now=1059.9)
    assert len(pending) == 3
    pruner.sweep(queue, now=1060)
    assert pending == {} and messages == {} and pruner.limit == 1


def test_the_session_pruner_answers_a_fetch_of_an_unknown_call_with_a_404():
    """`GET /gradio_api/call/API_NAME/EVENT_ID` of an event Gradio's queue neither holds nor has still
    to report (never posted, fetched already, dropped by a sweep) is a plain 404 with a JSON detail,
    Gradio not called; the fetch of a held (queued, running) or finished and unfetched event, a POST,
    and every other path go on to Gradio."""
    import asyncio
    from types import SimpleNamespace as NS

    from app.ui import _SessionPruner

    queue = NS(
        pending_event_ids_session={"s1": {"e-held", "e-done"}, "s2": set()},
        pending_messages_per_session={"s1": object(), "s2": object()},
        event_ids_to_events={"e-held": object()},
    )
    called: list[str] = []

    async def gradio(scope, receive, send):
        called.append(scope["path"])

    pruner = _SessionPruner(gradio, NS(_queue=queue), sessions=10, grace=600)
    reason = "to fetch: unknown, already fetched, or expired (unfetched results wait at least 10 minutes; see README)"

    def request(path: str, method: str = "GET") -> list[dict]:
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
        asyncio.run(pruner(scope, receive, send))
        return sent

    for path in ("/gradio_api/call/ask/nope", "/gradio_api/call/ask_dated/e-gone", "/gradio_api/call/v2/ask/nope"):
        start, body = request(path)
        assert start["status"] == 404 and (b"content-type", b"application/json") in start["headers"]
        detail = json.loads(body["body"])["detail"]
        event_id = path.rsplit("/", 1)[1]
        assert detail == f"no call {event_id} {reason}"
    assert called == []
    fine = [
        ("/gradio_api/call/ask/e-held", "GET"),  # queued or running
        ("/gradio_api/call/ask/e-done", "GET"),  # finished, its result still to fetch
        ("/gradio_api/call/ask", "POST"),
        ("/gradio_api/call/ask/nope", "POST"),
        ("/gradio_api/call/ask/nope/more", "GET"),
        ("/x/gradio_api/call/ask/nope", "GET"),
        ("/gradio_api/queue/data", "GET"),
        ("/healthz", "GET"),
    ]
    for path, method in fine:
        assert request(path, method) == []
    assert called == [path for path, _ in fine]
    assert request("/gradio_api/call/ask/nope", "HEAD") == []  # GET only
    pruner.blocks = NS()  # another Gradio without these attributes: left to it
    assert request("/gradio_api/call/ask/nope") == [] and len(called) == len(fine) + 2
    pruner.blocks = NS(_queue=queue)
    queue.pending_event_ids_session["s1"].discard("e-done")  # fetched: gone from the queue
    assert request("/gradio_api/call/ask/e-done")[0]["status"] == 404
    pruner.grace = 3
    assert "wait at least 3 seconds" in request("/gradio_api/call/ask/e-done")[1]["body"].decode()
