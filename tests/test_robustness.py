"""Robustness and security (issue #5) past what the other files test: odd questions through the HTTP
API, the chat and the CLI; path traversal in its spellings; the address the server listens on; a
document of several MB; and nothing fetched from the network at run time."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ALLOWED_TAGS, ARGS, CHROMIUM, Tags, call_ask, free_port, need_chromium

from app import cli as cli_module
from app import ui
from app.answer import EMPTY_NOTICE, MAX_QUESTION
from app.index import ReportIndex
from app.load import load_corpus

ROOT = Path(__file__).resolve().parent.parent
ODD = {
    "empty": "",
    "blank": "  \n\t\u3000 ",
    "control": "长治\x00市\x1b[31m有多少\x07培训机构\x7f？",
    "emoji": "😀🎓 长治市培训机构？👍🏽",
    "mixed scripts": "Lüliang 吕梁 呂梁 teachers 教師 Учитель مدرسة",
    "punctuation": "？？！！。。，,.;:!?…—“”《》",
    "sql": "'; DROP TABLE feedback; --",
    "html": "<script>alert(1)</script><img src=x onerror=alert(1)>长治",
    "bidi and zero width": "\u202e\u200b\ufeff長治\u0301",
    "lone surrogate": "\ud83d长治",
    "20,000 characters": ("长治市校外培训机构" * 2500)[:20000],
}


def clean(q: str) -> bool:
    """No control characters or lone surrogates left in what the app echoes back."""
    return all((ord(ch) >= 32 or ch in "\n\t") and ch != "\x7f" and not "\ud800" <= ch <= "\udfff" for ch in q)


@pytest.fixture
def served(tiny_index, tmp_path):
    port = free_port()
    app = ui.launch(tiny_index, port=port, feedback_path=tmp_path / "data" / "fb.sqlite3", block=False)
    yield port, app
    app.close()


# --------------------------------------------------------------------------- odd questions


def test_odd_questions_through_the_api(served):
    port, _ = served
    for name, q in ODD.items():
        event, got = call_ask(port, [q, 3])
        assert event == "complete", (name, got)
        obj = got[0]
        assert {"question", "answered", "passages", "notice", "seconds"} <= set(obj), name
        assert isinstance(obj["passages"], list) and clean(obj["question"]), name
        if name in ("empty", "blank"):
            assert (obj["answered"], obj["passages"], obj["notice"]) == (False, [], EMPTY_NOTICE)
        elif name == "20,000 characters":
            assert len(obj["question"]) == MAX_QUESTION and str(MAX_QUESTION) in obj["notice"]
            assert obj["passages"]
        elif name in ("sql", "html", "emoji", "mixed scripts"):
            assert obj["question"] == q.strip(), name  # JSON carries the text as it is; the page escapes it
    # a bad passage count is refused with a message, not a bare error; the server goes on answering
    event, got = call_ask(port, ["长治市校外培训机构", "many"])
    assert event == "error" and "top_k must be a whole number" in got["error"]
    event, got = call_ask(port, [None, 2])
    assert event == "complete" and got[0]["notice"] == EMPTY_NOTICE
    event, got = call_ask(port, ["长治市校外培训机构", 2])
    assert event == "complete" and len(got[0]["passages"]) == 2


def test_odd_questions_in_the_chat(tiny_index, tmp_path):

    app = ui.create_app(tiny_index, feedback_path=tmp_path / "fb.sqlite3")
    respond = app.chat.respond
    for name, q in ODD.items():
        box, history, records = respond(q, [], {}, 3, "", "")
        assert box == "" and [m["role"] for m in history] == ["user", "assistant"], name
        shown, reply = history[0]["content"], history[1]["content"]
        assert {t for t, _ in Tags(shown + reply).tags} <= ALLOWED_TAGS, name
        assert "<script" not in shown + reply and "<img" not in shown + reply, name
        if name in ("empty", "blank"):
            assert shown == "(empty question)" and EMPTY_NOTICE in reply
        elif name == "20,000 characters":
            assert f"cut to its first {MAX_QUESTION}" in reply and len(shown) == MAX_QUESTION
        elif name == "html":
            assert "".join(Tags(shown).text) == q  # shown as the text typed
        if name == "sql":
            app.feedback.add(records[1], 1)  # the vote on that answer: stored as a value, not run
    rows = app.feedback.rows()
    assert [r["question"] for r in rows] == [ODD["sql"]]
    assert len(rows[0]["passages"]) == 3


@pytest.mark.parametrize("name", ["punctuation", "mixed scripts", "emoji"])
def test_odd_questions_on_the_command_line(name, monkeypatch, fake_encoder, tiny_corpus, tmp_path):
    monkeypatch.setattr(cli_module, "make_encoder", lambda: fake_encoder)
    runner = CliRunner()
    built = runner.invoke(cli_module.cli, ["index", "--corpus", str(tiny_corpus), "--index", str(tmp_path / "idx")])
    assert built.exit_code == 0, built.output
    result = runner.invoke(cli_module.cli, ["ask", "--json", "--index", str(tmp_path / "idx"), ODD[name]])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    obj = json.loads(result.stdout)
    assert obj["question"] == ODD[name] and isinstance(obj["passages"], list)


# --------------------------------------------------------------------------- what the server serves


def test_server_listens_on_loopback_only(served):
    port, app = served
    assert app.server_name == "127.0.0.1" and app.share is False and app.share_url is None
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    # Bound to 0.0.0.0 it would take this connection too (every 127.x address is this machine).
    with pytest.raises(OSError), socket.create_connection(("127.0.0.2", port), timeout=5):
        pass
    serve = cli_module.cli.commands["serve"]
    assert next(p for p in serve.params if p.name == "host").default == "127.0.0.1"


def _get(port: int, path: str) -> tuple[int, bytes]:
    """GET `path` exactly as written: no client-side clean-up of `..` or of %-escapes."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_no_path_reaches_the_corpus_index_feedback_or_home(served, tiny_index, tmp_path):
    port, app = served
    index_dir = tmp_path / "index"
    params = tiny_index.save(index_dir) / "params.json"
    secret = tmp_path / "home" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("SECRET-7f3a do not serve", encoding="utf-8")
    app.feedback.add({"question": "FEEDBACK-9c1e", "answered": False, "filters": {}, "passages": []}, 1)
    corpus = sorted((ROOT / "corpus").glob("*.txt"))[0]
    known = {  # file -> bytes that must never come back
        secret: b"SECRET-7f3a",
        params: b'"corpus_fingerprint"',
        app.feedback.path: b"SQLite format 3",
        corpus: corpus.read_bytes()[:60],
        Path(ui.__file__): b"def create_app(",
        Path("/etc/passwd"): b"root:",
    }
    home = [p for p in (Path.home() / ".bashrc", Path.home() / ".profile", Path.home() / ".ssh") if p.exists()]
    up = "../" * 12
    for target in [*known, *home]:
        a = str(target.resolve())
        try:
            rel = os.path.relpath(a)
        except ValueError:
            rel = a
        for path in (
            f"/gradio_api/file={a}",
            f"/file={a}",
            f"/gradio_api/file={rel}",
            f"/gradio_api/file={up}{a.lstrip('/')}",
            f"/gradio_api/file={up.replace('/', '%2f')}{a.lstrip('/')}",
            f"/gradio_api/file={up.replace('../', '%2e%2e%2f')}{a.lstrip('/')}",
            f"/gradio_api/file={up.replace('../', '%252e%252e%252f')}{a.lstrip('/')}",
            f"/gradio_api/file={up.replace('/', chr(92))}{a.lstrip('/')}",
            f"/gradio_api/file={a.replace('/', '%2F')}",
            f"/gradio_api/file=//{a.lstrip('/')}",
            f"/static/{up}{a.lstrip('/')}",
            f"/static/{up.replace('/', '%2f')}{a.lstrip('/')}",
            f"/assets/{up.replace('/', '%2f')}{a.lstrip('/')}",
            f"/gradio_api/static/{up.replace('/', '%2f')}{a.lstrip('/')}",
            f"/{up}{a.lstrip('/')}",
        ):
            status, body = _get(port, path)
            if target in known:
                assert known[target] not in body, f"{path} served {target}"
            # a 200 may only be the app's own page (the catch-all route), never a file
            assert status != 200 or body.lstrip()[:15].lower() == b"<!doctype html>", (path, status, body[:80])


@pytest.mark.browser
def test_page_loads_nothing_from_outside(served):
    """What the browser fetches to show the page and an answer (fonts, scripts, styles): only this server."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    port, _ = served
    here = f"http://127.0.0.1:{port}/"
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context()
            context.on("request", lambda r: requests.append(r.url))
            page = context.new_page()
            page.goto(here)
            page.wait_for_selector("#rq-question textarea", timeout=60_000)
            page.fill("#rq-question textarea", "长治市校外培训机构")
            page.press("#rq-question textarea", "Enter")
            page.wait_for_selector("#rq-chat .rq-answer", timeout=60_000)
            page.wait_for_timeout(1000)
        finally:
            browser.close()
    assert any(u.startswith(here) for u in requests)
    assert [u for u in requests if not u.startswith((here, "data:", "blob:"))] == []


# --------------------------------------------------------------------------- a document of several MB


def big_report(paragraphs: int, planted_at: int) -> str:
    """Real report paragraphs, numbered so that no two are the same, with one unique fact planted."""
    import random

    docs, _ = load_corpus([ROOT / "corpus"])
    paras = [p for d in docs for p in d.text.split("\n") if len(p.strip()) > 10]
    rng = random.Random(5)
    out = [f"第{n}段：{rng.choice(paras)}" for n in range(paragraphs)]
    out[planted_at] = "第九十九中学新建塑胶跑道一条，投资三百一十七万元。"
    return "\r\n".join(out)  # Windows line endings, as a report saved on Windows


def check_exact(doc, chunks) -> None:
    covered = bytearray(len(doc.text))
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    lost = [i for i, ch in enumerate(doc.text) if not covered[i] and not ch.isspace()]
    assert not lost, f"text left out at {lost[:5]}"


def test_several_mb_document_loads_and_chunks_exactly(tmp_path):
    from app.chunk import chunk_document

    text = big_report(8000, 6000)
    folder = tmp_path / "corpus"
    folder.mkdir()
    data = b"\xef\xbb\xbf" + text.encode("utf-8")  # with a BOM
    (folder / "big.txt").write_bytes(data)
    assert len(data) > 3_000_000 and len(text) > 1_000_000  # past what chunk offsets were first sized for
    docs, problems = load_corpus([folder])
    assert problems == [] and len(docs) == 1
    doc = docs[0]
    assert "\r" not in doc.text and not doc.text.startswith("\ufeff")
    assert "第九十九中学新建塑胶跑道一条，投资三百一十七万元。" in doc.text
    chunks = chunk_document(doc)
    assert len(chunks) > 5000
    check_exact(doc, chunks)


@pytest.mark.slow
def test_large_document_is_indexed_and_cited(tmp_path, fake_encoder, tiny_corpus):
    text = big_report(2700, 1700)
    (tiny_corpus / "big.txt").write_bytes(text.encode("gb18030"))  # and not in UTF-8
    assert len(text.encode("utf-8")) > 1_000_000
    docs, problems = load_corpus([tiny_corpus])
    assert problems == [] and {d.id for d in docs} == {"a", "b", "c", "big"}
    t0 = time.perf_counter()
    index = ReportIndex.build(docs, fake_encoder)
    print(f"indexed {len(index.chunks)} passages in {time.perf_counter() - t0:.1f} s")
    check_exact(index.docs["big"], [c for c in index.chunks if c.doc_id == "big"])
    for mode in ("hybrid", "keyword"):
        hit = index.search("第九十九中学新建塑胶跑道投资多少", top_k=3, mode=mode).hits[0]
        assert hit.doc.id == "big" and "塑胶跑道" in hit.chunk.text, mode
        assert index.docs["big"].text[hit.chunk.start : hit.chunk.end] == hit.chunk.text
    # the small reports still answer beside it: a passage stating the count asked (the big report's paragraphs are
    # drawn from the shipped reports, so it may state one too)
    top = index.search("长治市有多少所校外培训机构纳入了平台管理", top_k=1).hits[0]
    assert re.search(r"\d+所(?:校外)?培训机构", top.chunk.text) and "纳入" in top.chunk.text, top.chunk.text[:80]


# --------------------------------------------------------------------------- nothing fetched at run time

# Runs in a fresh interpreter with the network cut off before anything is imported: any connection
# or name lookup beyond this machine is recorded (and fails). The offline switches that the test
# suite sets are removed from its environment, so the app has to stay offline by itself.
GUARDED_RUN = r"""
import ipaddress, json, socket, sys, time

ATTEMPTS = []


def local(host):
    if host in (None, "", "localhost", "0.0.0.0"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def check(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
        ATTEMPTS.append(f"connect {address[0]}:{address[1]}")
        raise OSError(f"network cut off by the test: {address}")


def connect(self, address):
    check(self, address)
    return _connect(self, address)


def connect_ex(self, address):
    check(self, address)
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if not local(host.decode() if isinstance(host, bytes) else host):
        ATTEMPTS.append(f"resolve {host}")
        raise socket.gaierror(socket.EAI_NONAME, f"name lookup cut off by the test: {host}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo

import httpx
from app import ui
from app.cli import make_encoder
from app.index import ReportIndex
from app.records import Document

out = {}
docs = [
    Document("a", "报告甲", "长治市全市188所校外培训机构全部纳入平台管理。", city="长治"),
    Document("b", "報告丙", "忻州市學前教育毛入園率達到96.7%。", city="忻州", script="traditional"),
]
index = ReportIndex.build(docs, make_encoder())
out["search"] = index.search("长治市有多少所校外培训机构？", top_k=1).hits[0].doc.id
port = int(sys.argv[1])
app = ui.launch(index, port=port, feedback_path=sys.argv[2], block=False)
try:
    base = f"http://127.0.0.1:{port}/"
    with httpx.Client(timeout=120) as c:
        out["page"] = c.get(base).status_code
        event = c.post(base + "gradio_api/call/ask", json={"data": ["忻州學前教育毛入園率", 1]}).json()["event_id"]
        body = c.get(base + "gradio_api/call/ask/" + event).text
        out["api"] = json.loads(body.split("data:", 1)[1])[0]["passages"][0]["doc_id"]
    time.sleep(2)  # time for background threads (telemetry, version checks) to try
finally:
    app.close()
out["attempts"] = list(ATTEMPTS)
try:  # the control: the guard does see a connection that leaves the machine
    socket.create_connection(("example.org", 443), timeout=2)
except OSError:
    pass
out["control"] = ATTEMPTS[len(out["attempts"]):]
print("RESULT " + json.dumps(out))
"""


@pytest.mark.model
@pytest.mark.slow
def test_nothing_is_fetched_at_run_time(real_encoder, tmp_path):
    """Loading the model, building, searching and serving the app open no connection off this machine."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE") and k != "GRADIO_ANALYTICS_ENABLED"}
    env["REPORTQA_DATA"] = str(tmp_path / "data")
    script = tmp_path / "guarded.py"
    script.write_text(GUARDED_RUN, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), str(free_port()), str(tmp_path / "fb.sqlite3")],
        cwd=ROOT,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert out["control"] == ["resolve example.org"]
    assert (out["search"], out["page"], out["api"]) == ("a", 200, "b")
    assert out["attempts"] == [], f"tried to reach the network: {out['attempts']}"
