"""The chat UI without a browser: formatting is pure HTML built from records, feedback is SQLite,
and the `/ask` API answers through gradio_client (on the fake tiny index)."""

from __future__ import annotations

import html
import socket
import sqlite3
import threading
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from app import ui
from app.index import ReportIndex, SearchSettings
from app.records import Answer, Chunk, Document, Hit

EVIL = "<img src=x onerror=alert(1)>"
SURE = replace(SearchSettings(), answer_threshold=-9.0)  # every question counts as answered
NEVER = replace(SearchSettings(), answer_threshold=9.0)  # no question counts as answered
ALLOWED_TAGS = {"div", "p", "b", "mark", "ol", "li", "span", "blockquote", "details", "summary", "strong", "a"}


class Tags(HTMLParser):
    """Every start tag and attribute of a piece of HTML, plus its text."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def marked(markup: str, tag: str = "mark") -> list[str]:
    """Text inside each <tag>...</tag> (not nested), unescaped."""
    out, pos = [], 0
    while (i := markup.find(f"<{tag}", pos)) >= 0:
        j = markup.index(">", i) + 1
        k = markup.index(f"</{tag}>", j)
        out.append(html.unescape(markup[j:k]))
        pos = k
    return out


def ask(index, q="长治市有多少所校外培训机构纳入了全国平台管理？", **kw) -> Answer:
    return ui.answer_question(index, q, **({"settings": SURE} | kw))


# --------------------------------------------------------------------------- formatting


def test_citation_shows_number_title_city_source_date_and_highlight(tiny_index):
    ans = ask(tiny_index, top_k=2)
    out = ui.format_answer(ans, tiny_index)
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
    got = ui.passage_html(h)
    assert html.unescape(got.replace("<mark>", "").replace("</mark>", "")) == h.chunk.text
    assert marked(got) == [h.chunk.text[s:e]]


def test_context_shows_surrounding_text_with_the_passage_marked():
    text = "前" * 500 + "本段落。答案在这里。" + "后" * 500
    doc = Document("d", "报告", text, city="吕梁")
    start = 500
    chunk = Chunk("d#3", "d", 3, text[start : start + 10], start, start + 10)
    hit = Hit(chunk, doc, 1.0, (4, 10))
    out = ui.context_html(hit, None, width=300)
    assert html.unescape(Tags(out).text[0]) == "…" + "前" * 300
    assert "".join(Tags(out).text).endswith("后" * 300 + "…")
    assert marked(out, "mark") == ["本段落。<strong>答案在这里。</strong>"]
    assert marked(out, "strong") == ["答案在这里。"]


def test_context_at_the_edges_of_the_report_has_no_ellipsis(tiny_index):
    h = ask(tiny_index, top_k=1).hits[0]
    out = ui.context_html(h, tiny_index)
    doc = tiny_index.docs[h.doc.id]
    assert "…" not in out
    assert "".join(Tags(out).text) == doc.text
    assert "<details" in ui.format_answer(ask(tiny_index), tiny_index)


def test_not_answered_says_so_and_still_shows_the_closest_passages(tiny_index):
    ans = ask(tiny_index, "火星上有几所学校", settings=NEVER)
    assert not ans.answered and ans.hits
    out = ui.format_answer(ans, tiny_index)
    assert ui.NOT_ANSWERED in out
    assert "Closest passages (may not answer)" in out
    assert out.count('class="rq-cite"') == len(ans.hits)
    assert "Sources differ" not in out


def test_sources_differ_lists_each_report_with_its_sentence(tiny_index):
    ans = ask(tiny_index, top_k=2)
    assert {h.doc.id for h in ans.hits} == {"a", "b"}
    out = ui.differ_html(ans)
    assert "Sources differ:" in out
    sentences = marked(out)
    assert any("188所" in s for s in sentences) and any("192所" in s for s in sentences)
    assert "报告甲" in out and "报告乙" in out
    assert ui.differ_html(ask(tiny_index, top_k=2, doc_id="a")) == ""


def test_empty_question_answers_nothing_with_a_notice(tiny_index):
    for q in ("", "   ", "\x00\x07", None):
        ans = ui.answer_question(tiny_index, q)
        assert (ans.answered, ans.hits, ans.notice) == (False, [], ui.EMPTY_NOTICE)
        out = ui.format_answer(ans, tiny_index)
        assert ui.NOT_ANSWERED in out and "Closest" not in out and ui.EMPTY_NOTICE in out


def test_long_question_is_cut_with_a_notice(tiny_index):
    ans = ask(tiny_index, "长治" * 3000)
    assert len(ans.question) == 2000 and "cut" in ans.notice


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
    out = ui.format_answer(ans, index) + ui.question_html(ans.question)
    parsed = Tags(out)
    assert {t for t, _ in parsed.tags} <= ALLOWED_TAGS
    assert not [a for _, attrs in parsed.tags for a in attrs if a.startswith("on")]
    assert "<img" not in out and "<script" not in out and "<i>" not in out and "javascript:" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out and "&lt;script&gt;" in out
    text = "".join(parsed.text)
    assert EVIL in text and "<script>alert('x')</script>" in text and "长治<b>" in text
    links = [attrs["href"] for t, attrs in parsed.tags if t == "a"]
    assert links == ["https://example.org/r?a=1&b=<x>"]  # escaped in the markup, intact once parsed


# --------------------------------------------------------------------------- search with filters


def test_filters_keep_only_the_chosen_city_or_report(tiny_index):
    ans = ask(tiny_index, top_k=3, city="忻州")
    assert [h.doc.city for h in ans.hits] == ["忻州"]
    ans = ask(tiny_index, top_k=3, doc_id="b")
    assert [h.doc.id for h in ans.hits] == ["b"]
    ans = ask(tiny_index, top_k=5, city="长治")
    assert [h.doc.id for h in ans.hits] == ["a", "b"]
    assert len(ask(tiny_index, top_k=1, city="长治").hits) == 1


def test_filtered_answer_is_claimed_only_while_the_best_passage_is_shown(tiny_index):
    best = ask(tiny_index).hits[0]
    assert best.doc.id == "a"
    assert ask(tiny_index, city="长治").answered
    assert ask(tiny_index, doc_id="a").answered
    other = ask(tiny_index, doc_id="b")
    assert other.hits and not other.answered
    assert "Closest passages (may not answer)" in ui.format_answer(other, tiny_index)
    assert not ask(tiny_index, city="长治", settings=NEVER).answered


def test_filters_matching_nothing_say_so(tiny_index):
    ans = ask(tiny_index, city="忻州", doc_id="a")
    assert (ans.hits, ans.answered) == ([], False)
    assert "no passage matches" in ans.notice
    assert ui.NOT_ANSWERED in ui.format_answer(ans, tiny_index)


def test_top_k_is_clamped(tiny_index):
    assert len(ask(tiny_index, top_k=None).hits) == min(ui.DEFAULT_TOP_K, len(tiny_index.chunks))
    assert len(ask(tiny_index, top_k=0).hits) == 1
    assert len(ask(tiny_index, top_k=999).hits) == len(tiny_index.chunks)
    assert len(ask(tiny_index, top_k=2.0).hits) == 2


# --------------------------------------------------------------------------- feedback


def _record(tiny_index) -> dict:
    return ui.feedback_record(ask(tiny_index, top_k=2), {"top_k": 2, "city": "", "doc_id": ""})


def test_feedback_is_stored_with_question_and_passages(tiny_index, tmp_path):
    store = ui.FeedbackStore(tmp_path / "data" / "feedback.sqlite3")
    rec = _record(tiny_index)
    store.add(rec, ui.vote_value(True))
    store.add(rec, ui.vote_value(False))
    rows = store.rows()
    assert [r["vote"] for r in rows] == [1, -1]
    assert rows[0]["question"] == "长治市有多少所校外培训机构纳入了全国平台管理？"
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
    assert ui.vote_value(None) == 0 and ui.vote_value("Like") == 0


def test_concurrent_votes_lose_no_rows(tiny_index, tmp_path):
    path = tmp_path / "fb.sqlite3"
    stores = [ui.FeedbackStore(path), ui.FeedbackStore(path)]  # two stores: as two server processes would
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


def test_default_feedback_path_is_under_reportqa_data(tmp_path):
    assert ui.default_feedback_path() == tmp_path / "data" / "feedback.sqlite3"


# --------------------------------------------------------------------------- the app and its API


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_create_app_builds_without_launching(tiny_index, tmp_path):
    import gradio as gr

    app = ui.create_app(tiny_index, feedback_path=tmp_path / "fb.sqlite3")
    assert isinstance(app, gr.Blocks)
    assert not app.is_running and app.share is False
    assert (tmp_path / "fb.sqlite3").exists()
    assert "ask" in {fn.api_name for fn in app.fns.values()}


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
    assert list(client.view_api(return_format="dict", print_info=False)["named_endpoints"]) == ["/ask"]
    q = "长治市有多少所校外培训机构纳入了全国平台管理？"
    got = client.predict(q, api_name="/ask")
    want = ui.answer_question(tiny_index, q, settings=SURE).to_json()
    assert {k: v for k, v in got.items() if k != "seconds"} == {k: v for k, v in want.items() if k != "seconds"}
    assert got["answered"] and "188所" in got["passages"][0]["text"]
    assert len(client.predict(q, 1, api_name="/ask")["passages"]) == 1
    empty = client.predict("", api_name="/ask")
    assert (empty["answered"], empty["passages"], empty["notice"]) == (False, [], ui.EMPTY_NOTICE)


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
