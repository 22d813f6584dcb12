"""What a person sees: the chat UI served over the real five-report index, driven in headless Chromium,
checked by axe-core (WCAG 2 A/AA) in light and dark mode, on a desktop and a phone."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
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
WAIT = 60_000  # ms
AXE_VERSION = "4.14.1"  # npm axe-core, installed once into the cache (app.bootstrap test does it first)


def axe_script() -> Path:
    """axe.min.js from npm's axe-core, installed into $REPORTQA_CACHE/node when it is not there yet."""
    folder = Path(os.environ.get("REPORTQA_CACHE") or Path.home() / ".cache" / "reportqa") / "node"
    js = folder / "node_modules" / "axe-core" / "axe.min.js"
    if not js.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("the accessibility test needs npm to install axe-core: `apt-get install npm` (python -m app.bootstrap test does)")
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--loglevel=error",
                        f"axe-core@{AXE_VERSION}"], check=True, timeout=600)  # fmt: skip
    return js


@pytest.fixture(scope="module")
def axe():
    need_chromium()
    return axe_script()


def violations(page, axe_js: Path) -> list[dict]:
    """axe-core's serious and critical violations of WCAG 2 A and AA on the page as it is now."""
    page.add_script_tag(path=str(axe_js))
    result = page.evaluate(
        "async () => { const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });"
        " return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 200)) })); }"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


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


def open_page(browser, url, width=1280, height=900, mobile=False, context=None):
    ctx = context or browser.new_context(viewport={"width": width, "height": height}, is_mobile=mobile, has_touch=mobile)
    page = ctx.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.wait_for_selector("#rq-question textarea", timeout=WAIT)
    page.wait_for_timeout(300)  # the stored conversation and language are restored on load
    return page, dialogs


def ask(page, question: str):
    """Type `question`, press Enter and return the locator of the new answer."""
    before = answers(page)
    page.fill("#rq-question textarea", question)
    page.press("#rq-question textarea", "Enter")
    return wait_answer(page, before)


def answers(page) -> int:
    return page.locator("#rq-chat .rq-answer:not(.rq-searching)").count()


def wait_answer(page, before: int):
    page.wait_for_function(
        f"document.querySelectorAll('#rq-chat .rq-answer:not(.rq-searching)').length > {before}", timeout=WAIT
    )
    page.wait_for_timeout(400)  # the scroll to the new answer
    return page.locator("#rq-chat .rq-answer:not(.rq-searching)").last


def feedback_rows(path: Path, want: int, timeout: float = 15.0) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while True:
        rows = []
        if path.exists():
            db = sqlite3.connect(path)
            rows = db.execute("SELECT question, vote, passages, filters FROM feedback ORDER BY id").fetchall()
            db.close()
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_the_answer_at_a_glance_cited_and_voted_on_beside_its_passage(browser, server, real_index):
    url, feedback = server
    page, dialogs = open_page(browser, url)
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    intro = page.locator("#rq-intro").inner_text()
    assert all(c in intro for c in ("长治", "忻州", "吕梁")) and f"{len(real_index.docs)} 份教育报告" in intro
    assert f"共 {len(real_index.chunks)} 段" in intro and page.locator("#rq-intro .rq-counts").is_visible()

    # the question shows at once, with a searching line, before the answer comes
    page.evaluate("""() => { window.rqSeen = []; new MutationObserver(() => {
        if (document.querySelector('#rq-chat .rq-searching')) window.rqSeen.push('searching');
      }).observe(document.querySelector('#rq-chat'), { subtree: true, childList: true }); }""")
    answer = ask(page, QUESTION)
    assert "searching" in page.evaluate("window.rqSeen")

    # the answer line: the figure, verbatim, above the passages; the two reports differ (188 vs 192)
    assert answer.locator(".rq-differ").is_visible()
    values = answer.locator(".rq-differ .rq-value").all_inner_texts()
    assert sorted(values) == ["188所", "192所"], values
    box = answer.locator(".rq-differ").bounding_box()
    assert box["y"] + box["height"] < 900  # on the first screen of the answer
    cites = answer.locator(".rq-cite")
    assert cites.count() >= 2
    first = cites.first
    assert first.locator("mark").first.is_visible() and first.locator("mark").first.inner_text().strip()
    titles = {d.title for d in real_index.docs.values()}
    assert first.locator(".rq-title").inner_text() in titles
    doc = next(d for d in real_index.docs.values() if d.title == first.locator(".rq-title").inner_text())
    assert doc.source in first.locator(".rq-meta").inner_text() and doc.city in first.locator(".rq-meta").inner_text()
    assert "检索用时" in answer.locator(".rq-time").inner_text()

    # the whole passage and its surroundings, one click away
    shown = first.locator(".rq-passage").inner_text()
    first.locator("summary").click()
    context = first.locator(".rq-context-text")
    assert context.is_visible() and context.locator("mark.rq-ctx").is_visible()
    assert len(context.inner_text()) > len(shown)
    first.locator("summary").click()

    # a screen reader hears words, not markup
    labels = page.evaluate("[...document.querySelectorAll('#rq-chat [aria-label]')].map(e => e.getAttribute('aria-label'))")
    assert any(lab.startswith("你的问题：长治市") for lab in labels), labels
    assert any(lab.startswith("回答：") for lab in labels) and not any("<" in lab or len(lab) > 300 for lab in labels), labels

    # the thumbs beside a passage: acknowledged on the page, stored with that passage
    cites.nth(1).locator(".rq-v-up").click()
    page.wait_for_function("document.querySelector('#rq-vote-ack').innerText.includes('第 2 段有用')", timeout=WAIT)
    assert "已记下" in cites.nth(1).locator(".rq-ack").inner_text()
    rows = feedback_rows(feedback, 1)
    assert rows and rows[-1][0] == QUESTION and rows[-1][1] == 1
    passages, filters = json.loads(rows[-1][2]), json.loads(rows[-1][3])
    assert [p["rank"] for p in passages] == [2] and filters["passage"] == 2 and passages[0]["doc_id"] in real_index.docs

    page.evaluate(SCROLL_JS)  # back to the top of the answer for the picture
    page.wait_for_timeout(400)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "ui.png"))
    assert not dialogs
    page.close()


def test_copy_gives_plain_text_with_citations(browser, server):
    url, _ = server
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    page, _ = open_page(browser, url, context=ctx)
    ask(page, "忻州學前教育毛入園率是多少")
    page.locator('#rq-chat button[aria-label="Copy message"]').last.click()
    page.wait_for_timeout(300)
    text = page.evaluate("navigator.clipboard.readText()")
    assert text.startswith("问：忻州學前教育毛入園率是多少") and "答：96.7%" in text, text
    assert "[1] 忻州市教育改革發展綜述 (忻州" in text and "<" not in text
    ctx.close()


def test_accessibility_light_and_dark(browser, server, axe):
    url, _ = server
    for theme in ("light", "dark"):
        page, _ = open_page(browser, f"{url}?__theme={theme}")
        assert violations(page, axe) == [], theme  # the empty page
        answer = ask(page, QUESTION)
        answer.locator(".rq-cite").first.locator("summary").click()  # the surrounding text open too
        page.locator("#rq-city input").click()  # and a filter's list
        found = violations(page, axe)
        assert found == [], json.dumps(found, ensure_ascii=False, indent=1)
        page.keyboard.press("Escape")
        if theme == "dark":
            bg = page.evaluate("getComputedStyle(document.querySelector('#rq-chat .rq-differ')).backgroundColor")
            assert bg in ("rgb(41, 37, 36)",), bg  # no bright cream box in dark mode
            page.evaluate(SCROLL_JS)
            page.wait_for_timeout(400)
            page.screenshot(path=str(SHOTS / "ui-dark.png"))
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


def test_city_filter_passage_count_and_tab_closes_the_lists(browser, server):
    url, _ = server
    page, _ = open_page(browser, url)
    page.locator("#rq-city input").click()
    assert page.locator("[role=listbox]").count() == 1
    page.keyboard.press("Tab")  # on to the report filter: the city list closes
    page.wait_for_timeout(300)
    assert page.locator("#rq-city [role=listbox], #rq-city ul.options").count() == 0
    page.keyboard.press("Tab")
    page.wait_for_timeout(300)
    assert page.locator("[role=listbox]").count() == 0  # neither list stays open
    page.locator("#rq-city input").click()
    page.get_by_role("option", name="忻州").click()
    page.locator("#rq-topk input[type=number]").fill("2")
    page.locator("#rq-topk input[type=number]").press("Enter")
    answer = ask(page, "学前教育毛入园率是多少")
    metas = answer.locator(".rq-meta").all_inner_texts()
    assert len(metas) == 2 and all(m.startswith("忻州") for m in metas)
    assert answer.locator(".rq-line .rq-value").inner_text() == "96.7%"
    page.close()


def test_phone_puts_the_answer_first(browser, server):
    url, _ = server
    page, _ = open_page(browser, url, width=390, height=844, mobile=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "ui-phone-start.png"))
    counts = page.locator("#rq-intro .rq-counts").bounding_box()
    assert counts["y"] + counts["height"] < 844  # the counts on the first screen
    answer = ask(page, "吕梁市专任教师有多少人？")
    line = answer.locator(".rq-line")
    assert line.inner_text().startswith("答案：49990人")
    box = line.bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= 844  # the answer on screen, before any passage
    assert box["y"] < answer.locator(".rq-cite").first.bounding_box()["y"]
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1
    page.screenshot(path=str(SHOTS / "ui-phone.png"))
    page.close()


def test_not_found_says_why(browser, server):
    url, _ = server
    page, _ = open_page(browser, url)
    answer = ask(page, "太原市有多少所幼儿园？")
    assert answer.locator(".rq-none").inner_text() == "报告中没有找到答案。"
    assert answer.locator(".rq-why").inner_text().startswith("没有报告提到太原")
    assert answer.locator(".rq-line").count() == 0
    page.close()


def test_a_passage_the_model_doubts_is_a_possible_answer_not_an_answer(browser, server):
    """No report gives the city's GDP: the first passage clears the (low) threshold but its confidence
    is well under an even chance, so the chat hedges and shows no answer line."""
    url, _ = server
    page, _ = open_page(browser, url)
    answer = ask(page, "长治市2023年的GDP是多少？")
    assert "rq-state-possible" in answer.get_attribute("class") and answer.locator(".rq-none").count() == 0
    assert answer.locator(".rq-possible-head").inner_text() == "可能的答案"
    assert answer.locator(".rq-sub").first.inner_text().startswith("不能确定报告回答了这个问题")
    assert answer.locator(".rq-line").count() == 0 and answer.locator(".rq-cites li").count() >= 1
    page.screenshot(path=str(SHOTS / "ui-possible.png"))
    page.close()


def test_english_switch_and_a_reload_keeps_the_conversation(browser, server):
    url, _ = server
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page, _ = open_page(browser, url, context=ctx)
    page.get_by_label("English").check()
    page.wait_for_function("document.documentElement.lang === 'en'", timeout=WAIT)
    assert page.locator("#rq-ask").inner_text() == "Ask" and "Ask about" in page.locator("#rq-intro").inner_text()
    answer = ask(page, "How many full-time teachers does Lüliang have?")
    assert answer.locator(".rq-line").inner_text().startswith("Answer: 49990人")
    page.reload()
    page.wait_for_selector("#rq-chat .rq-answer", timeout=WAIT)
    assert "49990人" in page.locator("#rq-chat .rq-line").first.inner_text()
    assert page.evaluate("document.documentElement.lang") == "en" and page.locator("#rq-ask").inner_text() == "Ask"
    assert page.get_by_label("English").is_checked()
    page.get_by_label("中文").check()
    page.wait_for_function("document.documentElement.lang === 'zh-CN'", timeout=WAIT)
    assert page.locator("#rq-ask").inner_text() == "提问"
    ctx.close()


def test_a_long_question_is_not_cut_silently(browser, server):
    url, _ = server
    page, _ = open_page(browser, url)
    long = "请介绍长治市教育的情况。" * 200 + "长治市有多少所校外培训机构纳入了全国平台管理？"
    page.fill("#rq-question textarea", long)
    page.locator("#rq-question textarea").dispatch_event("input")
    assert "超过 2000 字的上限" in page.locator("#rq-count").inner_text()  # said before it is sent
    page.press("#rq-question textarea", "Enter")
    answer = wait_answer(page, 0)
    assert "只检索了前 2000 字" in answer.locator(".rq-notice").inner_text()
    offer = page.locator("#rq-last")
    assert offer.is_visible() and "只检索最后一句" in offer.inner_text()
    offer.click()
    answer = wait_answer(page, 1)
    assert "rq-notice" not in answer.inner_html() and answer.locator(".rq-differ").is_visible()
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
    assert "answer" in got and got["answer"] in (None, "188所", "192所")


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
        answer.locator("summary").first.click()
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
    """Local use: upload a .txt with its city, watch it index, ask about it, then remove it, confirmed."""
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
        page.get_by_text("添加或删除报告（仅限本机）").click()
        page.locator("#rq-add-file input[type=file]").set_input_files(str(report))
        page.locator("#rq-add-city textarea, #rq-add-city input").first.fill("晋城")
        page.locator("#rq-add-source textarea, #rq-add-source input").first.fill("晋城市教育局")
        page.wait_for_timeout(500)  # the upload
        page.locator("#rq-add-button").click()
        page.wait_for_function(
            "(document.querySelector('#rq-add-result textarea') || {}).value?.startsWith('已添加')", timeout=WAIT
        )
        result = page.locator("#rq-add-result textarea").input_value()
        assert result == "已添加《晋城市2024年教育工作简报》（晋城 · 1 段），现在可以就它提问。共有 4 份报告。"
        assert "4 份报告" in page.locator("#rq-footer").inner_text()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "ui-add.png"), full_page=True)
        answer = ask(page, "晋城市教育经费投入多少")
        first = answer.locator(".rq-cite").first
        assert first.locator(".rq-title").inner_text() == "晋城市2024年教育工作简报"
        assert "晋城 · 晋城市教育局" in first.locator(".rq-meta").inner_text()
        assert "68.3亿元" in first.inner_text()
        # shipped and added reports told apart; removal asks first
        page.locator("#rq-remove input").click()
        options = page.get_by_role("option").all_inner_texts()
        assert "晋城市2024年教育工作简报 (晋城) · 您添加的" in options and "报告甲 (长治) · 随附报告" in options, options
        page.get_by_role("option", name="晋城市2024年教育工作简报 (晋城) · 您添加的").click()
        page.locator("#rq-remove-button").click()
        page.wait_for_function(
            "(document.querySelector('#rq-add-result textarea') || {}).value?.startsWith('确定删除')", timeout=WAIT
        )
        assert "4 份报告" in page.locator("#rq-footer").inner_text()  # nothing removed yet
        page.locator("#rq-confirm-button").click()
        page.wait_for_function(
            "(document.querySelector('#rq-add-result textarea') || {}).value?.startsWith('已删除')", timeout=WAIT
        )
        assert page.locator("#rq-add-result textarea").input_value().endswith("共有 3 份报告。")
        assert "3 份报告" in page.locator("#rq-footer").inner_text()
        assert "68.3亿元" not in ask(page, "晋城市教育经费投入多少").inner_text()
        assert not dialogs
        page.close()
    finally:
        app.close()


def test_beyond_loopback_the_panel_uploads_with_the_key_typed_in_it(browser, fake_encoder, tiny_corpus, tmp_path):
    """Served with a key and --allow-add: a file chosen before the key is refused by the server
    (nothing stored, the page says why); with the key typed first, the page's upload carries it and
    the report is added."""
    need_chromium()
    from app.changes import build_from

    folder = tmp_path / "idx"
    index = build_from([tiny_corpus], folder, fake_encoder).index
    report = tmp_path / "晋城教育简报.txt"
    report.write_text("晋城市2024年教育工作简报\n全年教育经费投入68.3亿元，较上年增长6.2%。", encoding="utf-8")
    port = free_port()
    app = ui.launch(index, host="0.0.0.0", port=port, index_dir=folder, allow_add=True, api_key="s3cret-key", block=False)
    uploads: list[int] = []
    try:
        page, dialogs = open_page(browser, f"http://127.0.0.1:{port}/")
        is_upload = lambda r: r.url.split("?")[0].endswith(ui.UPLOAD_ROUTE)  # noqa: E731
        page.on("response", lambda r: uploads.append(r.status) if is_upload(r) else None)
        page.get_by_text("添加或删除报告（需要密钥）").click()
        with page.expect_response(is_upload, timeout=WAIT):  # the response event may reach us after the toast
            page.locator("#rq-add-file input[type=file]").set_input_files(str(report))
        toast = page.locator("[data-testid=toast-text]")
        toast.first.wait_for(timeout=WAIT)
        assert toast.first.inner_text() == ("HTTP 401: 上传报告需要密钥：先在面板的密钥框里填写，再选文件。 / "
                                            "Uploading a report needs the server's key: type it in the panel's key box, then choose the file.")
        assert uploads == [401]
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#rq-add-file").scroll_into_view_if_needed()
        page.wait_for_timeout(600)  # the message fades in
        page.screenshot(path=str(SHOTS / "ui-upload-needs-key.png"))
        page.locator("#rq-add-key input").fill("s3cret-key")
        with page.expect_response(is_upload, timeout=WAIT):
            page.locator("#rq-add-file input[type=file]").set_input_files(str(report))
        page.locator("#rq-add-city textarea, #rq-add-city input").first.fill("晋城")
        page.wait_for_function("document.querySelector('#rq-add-file a, #rq-add-file .file-name') !== null", timeout=WAIT)
        assert uploads == [401, 200]
        page.locator("#rq-add-button").click()
        page.wait_for_function(
            "(document.querySelector('#rq-add-result textarea') || {}).value?.startsWith('已添加')", timeout=WAIT
        )
        assert len(app.live.index.docs) == 4
        assert not dialogs
        page.close()
    finally:
        app.close()

def test_a_follow_up_says_what_was_searched_and_the_words_as_typed_are_one_click_away(browser, server):
    url, _ = server
    page, _ = open_page(browser, url)
    ask(page, "长治注销了多少所义务教育阶段学科类培训机构？")
    answer = ask(page, "忻州呢？")
    assert answer.locator(".rq-searched").inner_text() == "检索的是：忻州注销了多少所义务教育阶段学科类培训机构？"
    assert answer.locator(".rq-meta").first.inner_text().startswith("忻州")
    offer = page.locator("#rq-typed")
    assert offer.is_visible() and offer.inner_text() == "按原话检索：忻州呢？"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "ui-followup.png"))
    offer.click()
    answer = wait_answer(page, 2)
    assert answer.locator(".rq-searched").count() == 0 and not offer.is_visible()
    assert page.locator("#rq-chat").inner_text().count("忻州呢？") == 2  # the words as typed, asked again
    page.close()


def test_the_date_filter_keeps_the_reports_of_those_dates(browser, server):
    url, _ = server
    page, _ = open_page(browser, url)
    page.fill("#rq-from input, #rq-from textarea", "2025")
    answer = ask(page, QUESTION)
    metas = answer.locator(".rq-meta").all_inner_texts()
    assert metas and all("2025-11-12" in m for m in metas)  # the one report dated 2025
    page.fill("#rq-from input, #rq-from textarea", "2025-13")
    answer = ask(page, QUESTION)
    assert "date_from: '2025-13' is not a date" in answer.inner_text()
    page.close()


def test_a_citation_opens_its_passage_in_the_report(browser, server, real_index):
    url, _ = server
    page, _ = open_page(browser, url)
    answer = ask(page, QUESTION)
    link = answer.locator("a.rq-open").first
    assert link.inner_text() == "在报告中阅读"
    href = link.get_attribute("href")
    assert href.startswith("?report=") and "&passage=" in href
    page.goto(url + href)  # the stable address a citation can be shared by
    page.wait_for_selector("#rq-here", timeout=WAIT)
    page.wait_for_timeout(500)
    here = page.locator("#rq-here")
    box, view = here.bounding_box(), page.locator(".rq-report-text").bounding_box()
    assert box["y"] < view["y"] + view["height"] and box["y"] + box["height"] > view["y"]  # scrolled into view
    doc_id = href.split("report=")[1].split("&")[0]
    marked = here.inner_text()
    assert any(c.doc_id == doc_id and c.text.strip()[:20] in marked for c in real_index.chunks)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "ui-report.png"))
    nxt = page.locator("a.rq-next, a.rq-prev").first
    target = nxt.get_attribute("href")
    page.goto(url + target)
    page.wait_for_selector("#rq-here", timeout=WAIT)
    assert page.locator("#rq-here").inner_text() != marked
    page.close()


def test_the_report_view_of_an_added_pdf_shows_the_page_of_the_passage(browser, fake_encoder, tiny_corpus, tmp_path):
    """An added Chinese PDF: the address of a passage on its second page shows that page, rendered, with its number."""
    need_chromium()
    from conftest import write_pdf

    from app.changes import add, build_from

    folder = tmp_path / "idx"
    build_from([tiny_corpus], folder, fake_encoder)
    lines = [[f"忻州市教育发展报告第{p}页（第{i}行）：全市新建公办幼儿园{p}{i}所，新增学位{p}{i}00个。" for i in range(30)] for p in (1, 2, 3)]
    change = add(folder, [write_pdf(tmp_path / "xinzhou.pdf", lines, title="忻州市教育发展报告")], encoder=fake_encoder)
    index = change.update.index
    doc = index.docs["xinzhou"]
    passage = next(c for c in sorted(index.chunks, key=lambda c: c.n) if c.doc_id == "xinzhou" and doc.page_at(c.start) == 2)
    port = free_port()
    app = ui.launch(index, port=port, feedback_path=tmp_path / "fb.sqlite3", index_dir=folder, block=False)
    try:
        page, dialogs = open_page(browser, f"http://127.0.0.1:{port}/?report=xinzhou&passage={passage.n}")
        page.wait_for_selector(".rq-page-img", timeout=WAIT)
        page.wait_for_function("document.querySelector('.rq-page-img').complete", timeout=WAIT)
        img = page.locator(".rq-page-img")
        assert img.evaluate("i => i.naturalWidth") == 900 and img.is_visible()
        assert img.get_attribute("alt") == "《忻州市教育发展报告》PDF 原件第 2 页的图像"
        assert page.locator(".rq-page-no").inner_text() == "PDF 原件第 2 页"
        assert "第 2 页" in page.locator(".rq-where").inner_text()
        assert page.locator("#rq-here").inner_text().strip()[:20] in passage.text
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "ui-report-pdf.png"))
        assert not dialogs
        page.close()
    finally:
        app.close()
