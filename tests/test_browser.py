"""What a person sees: the chat UI served over the real five-report index, driven in headless Chromium."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from conftest import ARGS, CHROMIUM, free_port, need_chromium

from app import ui
from app.index import ReportIndex
from app.records import Document
from app.ui_assets import SCROLL_JS

pytestmark = [pytest.mark.browser, pytest.mark.model, pytest.mark.slow]

SHOTS = Path(__file__).resolve().parent.parent / "eval" / "screenshots"
QUESTION = "长治市有多少所校外培训机构纳入了全国平台管理？"
EVIL = "<img src=x onerror=alert(1)>"
WAIT = 60_000  # ms: the first question also warms up the model


@pytest.fixture(scope="module")
def browser():
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(real_index, tmp_path_factory):
    need_chromium()
    feedback = tmp_path_factory.mktemp("data") / "feedback.sqlite3"
    port = free_port()
    app = ui.launch(real_index, port=port, feedback_path=feedback, block=False)
    yield f"http://127.0.0.1:{port}/", feedback
    app.close()


def open_page(browser, url, width=1280, height=900, mobile=False):
    page = browser.new_page(viewport={"width": width, "height": height}, is_mobile=mobile, has_touch=mobile)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.wait_for_selector("#rq-question textarea", timeout=WAIT)
    return page, dialogs


def ask(page, question: str):
    """Type `question`, press Enter and return the locator of the new answer."""
    before = page.locator("#rq-chat .rq-answer").count()
    page.fill("#rq-question textarea", question)
    page.press("#rq-question textarea", "Enter")
    return wait_answer(page, before)


def wait_answer(page, before: int):
    page.wait_for_function(f"document.querySelectorAll('#rq-chat .rq-answer').length > {before}", timeout=WAIT)
    page.wait_for_timeout(400)  # the scroll to the new answer
    return page.locator("#rq-chat .rq-answer").last


def feedback_rows(path: Path, want: int, timeout: float = 15.0) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while True:
        rows = []
        if path.exists():
            db = sqlite3.connect(path)
            rows = db.execute("SELECT question, vote, passages FROM feedback ORDER BY id").fetchall()
            db.close()
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_question_gets_a_cited_highlighted_answer_and_a_vote_is_stored(browser, server, real_index):
    import json

    url, feedback = server
    page, dialogs = open_page(browser, url)
    answer = ask(page, QUESTION)
    cites = answer.locator(".rq-cite")
    assert cites.count() >= 1
    texts = [cites.nth(i).inner_text() for i in range(cites.count())]
    with_fact = [t for t in texts if "188所" in t or "192所" in t]
    assert with_fact, texts
    first = cites.first
    assert first.locator("mark").first.is_visible()
    assert first.locator("mark").first.inner_text().strip()
    titles = {d.title for d in real_index.docs.values()}
    assert first.locator(".rq-title").inner_text() in titles
    doc = next(d for d in real_index.docs.values() if d.title == first.locator(".rq-title").inner_text())
    assert doc.source in first.locator(".rq-meta").inner_text() and doc.city in first.locator(".rq-meta").inner_text()
    assert "retrieved in" in answer.locator(".rq-time").inner_text()

    # the surrounding text opens on demand, with the passage marked inside it
    first.locator("summary").click()
    context = first.locator(".rq-context-text")
    assert context.is_visible() and context.locator("mark.rq-ctx").is_visible()
    assert len(context.inner_text()) > len(first.locator(".rq-passage").inner_text())
    first.locator("summary").click()

    page.locator('#rq-chat button[aria-label="Like"]').last.click()
    rows = feedback_rows(feedback, 1)
    assert rows and rows[-1][0] == QUESTION and rows[-1][1] == 1
    passages = json.loads(rows[-1][2])
    assert [p["rank"] for p in passages] == list(range(1, cites.count() + 1))
    assert all(p["doc_id"] in real_index.docs and p["chunk_id"].startswith(p["doc_id"] + "#") for p in passages)

    page.evaluate(SCROLL_JS)  # back to the top of the answer for the picture
    page.wait_for_timeout(400)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "ui.png"))
    assert not dialogs
    page.close()


def test_example_question_is_answered_on_click(browser, server):
    url, _ = server
    page, _ = open_page(browser, url)
    example = ui.EXAMPLES[3]
    page.get_by_role("button", name=example).click()
    answer = wait_answer(page, 0)
    assert answer.locator(".rq-cite").count() >= 1
    assert example in page.locator("#rq-chat").inner_text()
    assert answer.locator("mark").first.is_visible()
    page.close()


def test_city_filter_and_passage_count(browser, server, real_index):
    url, _ = server
    page, _ = open_page(browser, url)
    page.locator("#rq-city input").click()
    page.get_by_role("option", name="忻州").click()
    page.locator("#rq-topk input[type=number]").fill("2")
    page.locator("#rq-topk input[type=number]").press("Enter")
    answer = ask(page, "学前教育毛入园率是多少")
    metas = answer.locator(".rq-meta").all_inner_texts()
    assert len(metas) == 2 and all(m.startswith("忻州") for m in metas)
    page.close()


def test_phone_width_screen(browser, server):
    url, _ = server
    page, _ = open_page(browser, url, width=390, height=844, mobile=True)
    answer = ask(page, QUESTION)
    assert answer.locator(".rq-cite").count() >= 1
    assert answer.locator("mark").first.is_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "ui-phone.png"))
    page.close()


def test_ask_api_on_the_real_index(server):
    from gradio_client import Client

    url, _ = server
    got = Client(url, verbose=False).predict(QUESTION, api_name="/ask")
    assert got["answered"] and got["question"] == QUESTION
    assert any("188所" in p["text"] or "192所" in p["text"] for p in got["passages"][:3])
    assert set(got["passages"][0]) >= {
        "rank",
        "doc_id",
        "title",
        "city",
        "text",
        "start",
        "end",
        "highlight",
        "source",
        "date",
        "chunk_id",
    }


def test_report_html_shows_as_text(browser, fake_encoder, tmp_path):
    """A report holding markup: the page shows it as text, runs nothing and adds no element."""
    need_chromium()
    text = f"长治市校外培训机构{EVIL}共188所。<script>alert('x')</script>全部纳入平台管理。"
    index = ReportIndex.build([Document("evil", f"报告{EVIL}", text, city="长治", source="<b>报</b>")], fake_encoder)
    port = free_port()
    app = ui.launch(index, port=port, feedback_path=tmp_path / "fb.sqlite3", block=False)
    try:
        page, dialogs = open_page(browser, f"http://127.0.0.1:{port}/")
        answer = ask(page, f"校外培训机构 {EVIL}")
        page.wait_for_timeout(500)
        shown = answer.inner_text()
        assert EVIL in shown and "<script>alert('x')</script>" in shown and "<b>报</b>" in shown
        assert page.locator("#rq-chat img, #rq-chat script").count() == 0
        assert EVIL in page.locator("#rq-chat").inner_text()  # the question too
        assert not dialogs
        page.close()
    finally:
        app.close()


def test_add_a_report_panel_uploads_a_txt_that_is_then_answered(browser, fake_encoder, tiny_corpus, tmp_path):
    """Local use: upload a .txt with its city, watch it index, then ask about it."""
    need_chromium()
    from app.changes import build_from

    folder = tmp_path / "idx"
    index = build_from([tiny_corpus], folder, fake_encoder).index
    report = tmp_path / "晋城教育简报.txt"
    report.write_text(
        "晋城市2024年教育工作简报\n全年教育经费投入68.3亿元，较上年增长6.2%。\n全市新建公办幼儿园15所。", encoding="utf-8"
    )
    port = free_port()
    app = ui.launch(index, port=port, feedback_path=tmp_path / "fb.sqlite3", index_dir=folder, block=False)
    try:
        page, dialogs = open_page(browser, f"http://127.0.0.1:{port}/")
        page.get_by_text("Add or remove reports (local use)").click()
        page.locator("#rq-add-file input[type=file]").set_input_files(str(report))
        page.locator("#rq-add-city textarea, #rq-add-city input").first.fill("晋城")
        page.locator("#rq-add-source textarea, #rq-add-source input").first.fill("晋城市教育局")
        page.wait_for_timeout(500)  # the upload
        page.locator("#rq-add-button").click()
        page.wait_for_function(
            "(document.querySelector('#rq-add-result textarea') || {}).value?.startsWith('added')", timeout=WAIT
        )
        result = page.locator("#rq-add-result textarea").input_value()
        assert result.startswith("added 晋城市2024年教育工作简报 (晋城教育简报): 1 passage; 1 embedded")
        assert "4 reports" in page.locator("#rq-footer").inner_text()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "ui-add.png"), full_page=True)
        answer = ask(page, "晋城市教育经费投入多少")
        first = answer.locator(".rq-cite").first
        assert first.locator(".rq-title").inner_text() == "晋城市2024年教育工作简报"
        assert "晋城 · 晋城市教育局" in first.locator(".rq-meta").inner_text()
        assert "68.3亿元" in first.inner_text()
        # ... and remove it again from the same panel
        page.locator("#rq-remove input").click()
        page.get_by_role("option", name="晋城市2024年教育工作简报 (晋城)").click()
        page.locator("#rq-remove-button").click()
        page.wait_for_function(
            "(document.querySelector('#rq-add-result textarea') || {}).value?.startsWith('removed')", timeout=WAIT
        )
        assert page.locator("#rq-add-result textarea").input_value().endswith("the index holds 3 reports")
        assert "3 reports" in page.locator("#rq-footer").inner_text()
        assert "68.3亿元" not in ask(page, "晋城市教育经费投入多少").inner_text()
        assert not dialogs
        page.close()
    finally:
        app.close()
