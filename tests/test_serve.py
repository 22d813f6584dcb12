"""`reportqa serve` as one process on one port (app/ui.py `launch` -> `serve_app`): the JSON API,
MCP over streamable HTTP and the chat, started through the real launch path on a free port over a
tiny index and the fake encoder; the key rules (no bind beyond loopback without a key; with a key,
the API and MCP need it); and the add/remove panel, never open without a key beyond this machine."""

from __future__ import annotations

import json
import time

import anyio
import gradio as gr
import httpx
import pytest
from conftest import call_ask, free_port

from app import ui
from app.answer import answer
from app.api import PREFIX, Access, BindRefused, is_loopback
from app.cli import cli
from app.loadtest import comparable, expected_answers, run_load
from app.mcp_server import search_result

Q = "平台管理"
KEY = "s3cret-key"
MCP_CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.fixture
def index_dir(tiny_corpus, fake_encoder, tmp_path):
    from app.changes import build_from

    folder = tmp_path / "idx"
    build_from([tiny_corpus], folder, fake_encoder)
    return folder


@pytest.fixture
def index(index_dir, fake_encoder):
    from app.index import ReportIndex

    idx = ReportIndex.load(index_dir, fake_encoder)
    idx.trust = None  # the hand-set confidence: the shipped model reads e5's similarities, not the fake encoder's
    return idx


def serve(index, index_dir=None, **kw):
    port = free_port()
    app = ui.launch(index, port=port, index_dir=index_dir, block=False, **kw)
    return app, f"http://127.0.0.1:{port}"


async def mcp_search(url: str, headers: dict | None = None) -> tuple[set, dict]:
    """A real MCP client session over streamable HTTP: the tools, and search_reports' result for Q."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    with anyio.fail_after(60):
        async with httpx2.AsyncClient(headers=headers or {}) as http:
            async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = {t.name for t in (await session.list_tools()).tools}
                    r = await session.call_tool("search_reports", {"question": Q, "top_k": 2})
                    assert not r.is_error, r.content
                    return tools, r.structured_content


def gradio_ask(base: str, question: str, top_k: int = 5, headers: dict | None = None) -> dict:
    event, payload = call_ask(base, [question, top_k], headers=headers)
    assert event == "complete", payload
    return payload[0]


# --------------------------------------------------------------------------- one port, three front ends


def test_serve_mounts_the_api_mcp_and_the_chat_on_one_port(index, index_dir, tmp_path):
    app, base = serve(index, index_dir, feedback_path=tmp_path / "fb.sqlite3")
    try:
        assert httpx.get(base + "/healthz").json() == {"status": "ok", "reports": 3, "passages": len(index.chunks)}
        r = httpx.post(base + f"{PREFIX}/ask", json={"question": Q, "top_k": 2})
        assert r.status_code == 200 and comparable(r.json()) == comparable(answer(index, Q, top_k=2).to_json())
        assert httpx.get(base + f"{PREFIX}/openapi.json").json()["paths"][f"{PREFIX}/ask"]
        assert httpx.get(base + f"{PREFIX}/docs").status_code == 200
        assert {d["id"] for d in httpx.get(base + f"{PREFIX}/reports").json()} == {"a", "b", "c"}
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "教育报告问答" in page.text  # the chat's page, from Gradio
        assert httpx.get(base + "/config").json()["components"]
        # the chat's own Gradio endpoint answers as before
        assert comparable(gradio_ask(base, Q, 2)) == comparable(answer(index, Q, top_k=2).to_json())
        # MCP through a real client session
        tools, got = anyio.run(mcp_search, base)
        assert tools == {"search_reports", "list_reports", "get_report"}
        assert got == json.loads(json.dumps(search_result(answer(index, Q, top_k=2))))
        # nothing under /api/v1 falls through to the chat
        missing = httpx.get(base + f"{PREFIX}/nope")
        assert missing.status_code == 404 and missing.json()["detail"].startswith("no endpoint")
        # the panel is offered on loopback, and it asks for no key (none is configured)
        labels = [b.label for b in app.blocks.values() if isinstance(b, gr.Accordion)]
        assert labels == ["添加或删除报告（仅限本机）"] and not app.chat.keyed
    finally:
        app.close()
    with pytest.raises(httpx.HTTPError):  # closed: the port is free again
        httpx.get(base + "/healthz", timeout=2)


def test_the_served_index_is_reloaded_when_the_cli_rebuilds_it(index, index_dir, tiny_corpus, fake_encoder, tmp_path):
    from app import changes

    app, base = serve(index, index_dir)
    try:
        app.live.check_every = 0.0
        (tmp_path / "new.txt").write_text("晋城市全年教育经费投入68.3亿元。", encoding="utf-8")
        changes.add(index_dir, [tmp_path / "new.txt"], {"city": "晋城"}, encoder=fake_encoder)
        assert httpx.get(base + "/healthz").json()["reports"] == 4  # the API sees it
        assert {d["id"] for d in httpx.get(base + f"{PREFIX}/reports").json()} == {"a", "b", "c", "new"}
    finally:
        app.close()


def test_the_server_is_warm_before_it_says_it_is_ready(index, monkeypatch):
    order = []
    monkeypatch.setattr(ui.ChatUI, "warm", lambda self: order.append("warm"))
    real_start = ui.start_server
    monkeypatch.setattr(ui, "start_server", lambda *a, **kw: (order.append("serve"), real_start(*a, **kw))[1])
    app, _ = serve(index)
    app.close()
    assert order == ["warm", "serve"]


def test_the_load_test_drives_both_endpoints_of_the_served_process(index):
    questions = ["平台管理", "幼儿园", "毛入園率", "课后服务"]
    expected = expected_answers(index, questions, top_k=3)
    app, base = serve(index)
    try:
        for endpoint in ("api", "gradio"):
            got = run_load(base, questions, clients=4, seconds=0.5, top_k=3, expected=expected, endpoint=endpoint)
            assert got["requests"] > 0 and got["errors"] == 0 and got["mismatches"] == 0, (endpoint, got)
        wrong = expected | {"幼儿园": expected["平台管理"]}
        assert run_load(base, questions, clients=2, seconds=0.3, top_k=3, expected=wrong, endpoint="gradio")["mismatches"] > 0
    finally:
        app.close()


# --------------------------------------------------------------------------- keys and loopback


@pytest.mark.parametrize(
    "host, local",
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.0.0.2", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host, local):
    assert is_loopback(host) is local


def test_serve_refuses_a_public_bind_without_a_key_naming_the_option(runner, encoder, index_dir, monkeypatch):
    with pytest.raises(BindRefused, match="--api-key"):
        ui.launch(None, host="192.168.1.5", port=free_port(), block=False)
    monkeypatch.setattr(ui, "launch", lambda *a, **kw: pytest.fail("launched without a key"))
    monkeypatch.delenv("REPORTQA_API_KEY", raising=False)
    calls = encoder.calls
    for env in ({}, {"REPORTQA_API_KEY": ""}):
        result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--index", str(index_dir)], env=env)
        assert result.exit_code == 1 and "--api-key" in result.output and "REPORTQA_API_KEY" in result.output, result.output
    assert encoder.calls == calls  # refused before the index or the model was loaded


def test_serve_takes_the_key_from_the_option_or_the_environment(runner, encoder, index_dir, monkeypatch):
    seen = {}
    monkeypatch.setattr(ui, "launch", lambda index, **kw: seen.update(kw))
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--index", str(index_dir), "--api-key", KEY])
    assert result.exit_code == 0 and seen["api_key"] == KEY and seen["host"] == "0.0.0.0"
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--index", str(index_dir)], env={"REPORTQA_API_KEY": "from-env"})
    assert result.exit_code == 0 and seen["api_key"] == "from-env"
    result = runner.invoke(cli, ["serve", "--index", str(index_dir)], env={"REPORTQA_API_KEY": ""})
    assert result.exit_code == 0 and seen["api_key"] is None and seen["host"] == "127.0.0.1"


def test_serve_embeds_each_question_on_one_thread(runner, encoder, index_dir, monkeypatch):
    """The server answers questions at once, one per core: each embedding gets one thread (the
    command line keeps the runtime's default, one per core, for a question asked alone)."""
    from app.model import SERVE_THREADS

    seen = {}
    monkeypatch.setattr(ui, "launch", lambda index, **kw: seen.update(threads=index.encoder.threads))
    result = runner.invoke(cli, ["serve", "--index", str(index_dir)])
    assert result.exit_code == 0 and seen["threads"] == SERVE_THREADS == 1


def test_beyond_loopback_the_api_and_mcp_need_the_key(index):
    app, base = serve(index, host="0.0.0.0", api_key=KEY)
    try:
        ask = base + f"{PREFIX}/ask"
        r = httpx.post(ask, json={"question": Q})
        assert r.status_code == 401 and "Authorization: Bearer" in r.json()["detail"] and r.headers["www-authenticate"] == "Bearer"
        assert httpx.post(ask, json={"question": Q}, headers={"Authorization": "Bearer nope"}).status_code == 403
        ok = httpx.post(ask, json={"question": Q}, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and comparable(ok.json()) == comparable(answer(index, Q).to_json())
        assert httpx.get(base + f"{PREFIX}/reports").status_code == 401
        assert httpx.post(base + "/mcp", json=MCP_CALL, headers=MCP_ACCEPT).status_code == 401
        assert httpx.post(base + "/mcp", json=MCP_CALL, headers=MCP_ACCEPT | {"Authorization": "Bearer nope"}).status_code == 403
        tools, got = anyio.run(mcp_search, base, {"Authorization": f"Bearer {KEY}"})
        assert tools == {"search_reports", "list_reports", "get_report"} and got["passages"]
        assert httpx.get(base + "/healthz").status_code == 200  # liveness stays open
        assert httpx.get(base + "/").status_code == 200  # the chat page is for people: open
        assert not [b for b in app.blocks.values() if isinstance(b, gr.Accordion)]  # no index folder: no panel
    finally:
        app.close()


def test_on_loopback_with_a_key_the_key_is_still_required(index):
    app, base = serve(index, api_key=KEY)
    try:
        assert httpx.post(base + f"{PREFIX}/ask", json={"question": Q}).status_code == 401
        assert httpx.post(base + f"{PREFIX}/ask", json={"question": Q}, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    finally:
        app.close()


# --------------------------------------------------------------------------- adding and removing: never open without a key


def panel_labels(app) -> list[str]:
    return [b.label for b in app.blocks.values() if isinstance(b, gr.Accordion)]


def test_beyond_loopback_the_panel_is_hidden_unless_allowed_and_then_asks_for_the_key(index, index_dir):
    app, _ = serve(index, index_dir, host="0.0.0.0", api_key=KEY)
    try:
        assert panel_labels(app) == [] and not app.chat.add_panel
    finally:
        app.close()
    app, _ = serve(index, index_dir, host="0.0.0.0", api_key=KEY, allow_add=True)
    try:
        assert panel_labels(app) == ["添加或删除报告（需要密钥）"] and app.chat.keyed
        (key_box,) = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "rq-add-key"]
        assert key_box.type == "password" and key_box.visible
    finally:
        app.close()


def queue_call(base: str, app, fn_name: str, data: list) -> str:
    """A handler called as the page calls it (Gradio's queue protocol), from any client: its first output."""
    (fn_index,) = [i for i, f in app.fns.items() if getattr(f.fn, "__name__", "") == fn_name]
    session = f"test-{time.monotonic_ns()}"
    r = httpx.post(f"{base}/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                          "event_data": None, "trigger_id": None})  # fmt: skip
    assert r.status_code == 200, r.text
    with httpx.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}, timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    assert message["success"], message
                    return message["output"]["data"][0]
    raise AssertionError("no result")


def test_a_removal_through_the_served_page_needs_the_key(index, index_dir):
    app, base = serve(index, index_dir, host="0.0.0.0", api_key=KEY, allow_add=True)
    try:
        for key in ("", "wrong"):
            said = queue_call(base, app, "on_remove", ["a", "zh", key])
            assert said == "没有更改：密钥不对或没有填写。" and "a" in app.live.index.docs
        said = queue_call(base, app, "on_remove", ["a", "en", KEY])
        assert said.startswith("‘报告甲’ is a shipped report") and "a" not in app.live.index.docs
    finally:
        app.close()


def remote(host: str = "203.0.113.7", host_header: str = "reports.example.org") -> gr.Request:
    return gr.Request(headers={"host": host_header}, client={"host": host, "port": 40000})


def test_the_panel_handlers_check_the_key_or_this_machine(index, index_dir, fake_encoder, tmp_path):
    report = tmp_path / "晋城.txt"
    report.write_text("晋城市全年教育经费投入68.3亿元。", encoding="utf-8")
    keyed = ui.ChatUI(index, index_dir=index_dir, add_panel=True, access=Access(KEY, require_key=True))
    before = fake_encoder.passages_embedded
    for key, request in [("", remote()), ("wrong", remote()), ("", remote("127.0.0.1", "127.0.0.1:7860"))]:
        said, *updates = keyed.on_add(str(report), "", "晋城", "", "", False, "en", key, request)
        assert said == "Nothing changed: the key is missing or wrong." and updates == [gr.update()] * 4
        assert keyed.on_remove("a", "en", key, request)[0] == said
    assert sorted(keyed.live.index.docs) == ["a", "b", "c"] and fake_encoder.passages_embedded == before
    said = keyed.on_add(str(report), "", "晋城", "", "", False, "en", KEY, remote())[0]
    assert said.startswith("Added ‘晋城市全年教育经费投入68.3亿元。’") and len(keyed.live.index.docs) == 4

    # no key configured: this machine only, and a page that rebinds its own name to 127.0.0.1 is not this machine
    local = ui.ChatUI(keyed.live.index, index_dir=index_dir, add_panel=True, access=Access(None))
    for request in (remote(), remote("127.0.0.1", "evil.example:7860"), None):
        said = local.on_remove("a", "en", "", request)[0]
        assert said == "Nothing changed: reports can be added or removed from this machine only." and "a" in local.live.index.docs
    assert local.on_remove("a", "en", "", remote("127.0.0.1", "127.0.0.1:7860"))[0].startswith("‘报告甲’ is a shipped report")


def upload(base: str, headers: dict | None = None) -> httpx.Response:
    """A file sent to the page's upload route as Gradio's page sends it."""
    files = {"files": ("晋城.txt", "晋城市全年教育经费投入68.3亿元。".encode(), "text/plain")}
    return httpx.post(base + ui.UPLOAD_ROUTE, files=files, headers=headers or {})


def test_beyond_loopback_an_upload_needs_the_key_before_it_is_stored(index, index_dir):
    """The page's file route is under the panel's rule: without the key nothing reaches the disk
    (Gradio would store up to 100 MB a request before "Add" checks the key)."""
    app, base = serve(index, index_dir, host="0.0.0.0", api_key=KEY, allow_add=True)
    try:
        r = upload(base)
        assert r.status_code == 401 and "密钥" in r.text and "the server's key" in r.text
        assert upload(base, {"Authorization": "Bearer nope"}).status_code == 403
        ok = upload(base, {"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200, ok.text
        (stored,) = ok.json()
        assert stored.endswith("晋城.txt")
    finally:
        app.close()


def test_on_loopback_uploads_come_from_this_machine_only(index, index_dir):
    app, base = serve(index, index_dir)
    try:
        assert upload(base).status_code == 200
        r = upload(base, {"Host": "evil.example:7860"})  # a page that rebinds its own name to 127.0.0.1
        assert r.status_code == 403 and r.text.endswith("Reports can be uploaded from this machine only.")
    finally:
        app.close()
    app, base = serve(index)  # no index folder: no panel, nothing to upload for
    try:
        r = upload(base)
        assert r.status_code == 403 and "--allow-add" in r.text
        assert httpx.get(base + "/").status_code == 200
    finally:
        app.close()


def test_the_upload_rule_is_the_panels_rule(index, index_dir):
    local = ui.ChatUI(index, index_dir=index_dir, add_panel=True, access=Access(None))
    assert local.upload_refusal(None, "127.0.0.1", "127.0.0.1:7860") is None
    assert local.upload_refusal(None, "203.0.113.7", "reports.example.org") == (403, "只能在本机上传报告。 / Reports can be uploaded from this machine only.")
    keyed = ui.ChatUI(index, index_dir=index_dir, add_panel=True, access=Access(KEY, require_key=True))
    assert keyed.upload_refusal(f"Bearer {KEY}", "203.0.113.7", "reports.example.org") is None
    status, said = keyed.upload_refusal(None, "127.0.0.1", "127.0.0.1:7860")
    assert status == 401 and said.startswith("上传报告需要密钥") and "Uploading a report needs the server's key" in said
    closed = ui.ChatUI(index, index_dir=None, add_panel=True, access=Access(None))
    assert closed.upload_refusal(None, "127.0.0.1", "127.0.0.1:7860")[0] == 403


# --------------------------------------------------------------------------- reportqa bench --load


def fake_load(query_cache: bool, api_rate: float, gradio_rate: float, p95: float = 400.0, errors: int = 0) -> dict:
    figures = {"p50_ms": 100.0, "p95_ms": p95, "max_ms": p95 + 50, "errors": errors, "mismatches": 0, "per_round": [1.0]}
    result = {"in_process": {1: {"requests_per_s": 30.0}, 2: {"requests_per_s": 40.0}},
              "api": figures | {"requests_per_s": api_rate}, "gradio": figures | {"requests_per_s": gradio_rate},
              "clients": 32, "questions": 109, "rounds": 3, "seconds": 6.0, "api_threads": 2, "gradio_concurrency": 2,
              "query_cache": query_cache, "cores": 2, "load_average": {"before": [1.0, 1.0, 1.0], "after": [2.0, 1.0, 1.0]},
              "ratio_to_in_process": round(api_rate / 40.0, 2)}  # fmt: skip
    from app.loadtest import targets_met

    return result | {"met": targets_met(result)}


def test_the_targets_are_checked_one_by_one():
    assert all(fake_load(False, 30.0, 25.0)["met"].values())
    met = fake_load(False, 27.0, 24.9, p95=1001.0, errors=1)["met"]
    assert met == {"api_ratio": False, "api_p95": False, "api_no_errors": False, "gradio_rate": False, "gradio_no_errors": False}


def test_bench_load_runs_both_cases_and_writes_the_figures(runner, encoder, index_dir, monkeypatch, tmp_path):
    from app import loadtest

    calls = []

    def bench_load(index, folder, questions, **kw):
        calls.append((folder, len(questions), kw["query_cache"], kw["clients"]))
        return fake_load(kw["query_cache"], 30.0 if kw["query_cache"] else 20.0, 26.0)

    monkeypatch.setattr(loadtest, "bench_load", bench_load)
    out = tmp_path / "loadtest.md"
    result = runner.invoke(cli, ["bench", "--load", "--index", str(index_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert calls == [(index_dir, 109, False, 32), (index_dir, 109, True, 32)]
    text = out.read_text("utf-8")
    assert text in result.output and f"`reportqa bench --load --index {index_dir}`" in text
    assert "| uncached | JSON API | 20.0 |" in text and "| cached | Gradio ask | 26.0 |" in text
    assert "uncached: missed: api_ratio" in text and "cached: all met" in text and "api_load.md" in text
