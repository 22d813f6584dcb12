"""The MCP server (app/mcp_server.py) driven by a real MCP client session: over stdio, spawning
`reportqa mcp` (`python -m app mcp`) on a tiny index built with the fake encoder, and over streamable HTTP
from the API's server, under the API's key rule."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from conftest import free_port

from app.answer import answer
from app.api import create_api, start_server
from app.catalog import get_report, list_reports
from app.mcp_server import search_result

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
QUESTION = "平台管理"


async def exercise(read, write, index) -> None:
    """Every tool through one client session, checked against the library called directly."""
    from mcp.client.session import ClientSession

    async with ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == {"search_reports", "list_reports", "get_report"}
        assert tools["search_reports"].input_schema["required"] == ["question"]
        assert tools["search_reports"].annotations.read_only_hint is True

        r = await session.call_tool("search_reports", {"question": QUESTION, "top_k": 2})
        assert not r.is_error, r.content
        want = answer(index, QUESTION, top_k=2)
        assert r.structured_content == json.loads(json.dumps(search_result(want)))
        first = r.structured_content["passages"][0]
        assert first["text"] == want.hits[0].chunk.text and first["title"] == want.hits[0].doc.title
        s, e = first["highlight"]
        assert first["highlight_text"] == first["text"][s:e] and (first["start"], first["end"]) == (want.hits[0].chunk.start, want.hits[0].chunk.end)
        assert "confidence" in r.structured_content and json.loads(r.content[0].text) == r.structured_content
        assert r.structured_content["state"] == want.verdict() in ("answer", "possible", "none")

        r = await session.call_tool("search_reports", {"question": "毛入園率", "city": "忻州"})
        assert {p["city"] for p in r.structured_content["passages"]} == {"忻州"}

        history = ["长治有多少所校外培训机构纳入平台管理？"]  # a follow-up: read with the earlier questions
        r = await session.call_tool("search_reports", {"question": "那忻州呢？", "history": history, "top_k": 2})
        assert not r.is_error, r.content
        assert r.structured_content == json.loads(json.dumps(search_result(answer(index, "那忻州呢？", history=history, top_k=2))))
        assert r.structured_content["searched"] == "忻州有多少所校外培训机构纳入平台管理？"

        dated = {"question": QUESTION, "top_k": 5, "date_from": "2024", "date_to": "2024-06"}  # report a, and the undated b and c
        r = await session.call_tool("search_reports", dated)
        assert not r.is_error, r.content
        want = answer(index, QUESTION, top_k=5, date_from="2024", date_to="2024-06")
        assert r.structured_content == json.loads(json.dumps(search_result(want)))
        assert {p["doc_id"] for p in r.structured_content["passages"]} <= {"a", "b", "c"} and "undated" in r.structured_content["notice"]
        r = await session.call_tool("search_reports", dated | {"date_from": "2024-02"})  # report a (2024-01-01) is out
        assert r.structured_content["passages"] and "a" not in {p["doc_id"] for p in r.structured_content["passages"]}

        r = await session.call_tool("list_reports", {})
        assert r.structured_content == {"reports": list_reports(index)}

        r = await session.call_tool("get_report", {"report_id": "a"})
        assert r.structured_content == get_report(index, "a")
        assert r.structured_content["text"] == index.docs["a"].text

        for name, args, says in [
            ("get_report", {"report_id": "nope"}, "unknown report"),
            ("search_reports", {"question": QUESTION, "top_k": 0}, "top_k"),
            ("search_reports", {"question": QUESTION, "top_k": 51}, "top_k"),
            ("search_reports", {"question": 12}, "question"),
            ("search_reports", {"question": "长" * 2001}, "question"),
            ("search_reports", {}, "question"),
            ("search_reports", {"question": QUESTION, "history": ["长治", 3]}, "history.1"),
            ("search_reports", {"question": QUESTION, "history": "长治"}, "history"),
            ("search_reports", {"question": QUESTION, "history": ["长" * 2001]}, "history.0"),
            ("search_reports", {"question": QUESTION, "date_from": "2025-13"}, "date_from: '2025-13' is not a date"),
            ("search_reports", {"question": QUESTION, "date_to": "soon"}, "date_to: 'soon' is not a date"),
            ("search_reports", {"question": QUESTION, "date_from": "2025", "date_to": "2024"}, "date_from: 2025 is after date_to"),
            ("search_reports", {"question": QUESTION, "date_from": 2024}, "date_from"),
            ("search_reports", {"question": QUESTION, "date_to": "2" * 41}, "date_to"),
        ]:
            r = await session.call_tool(name, args)
            assert r.is_error and says in r.content[0].text, (name, args, r.content)


@pytest.fixture
def index_dir(tiny_index, tmp_path) -> Path:
    folder = tmp_path / "index"
    tiny_index.save(folder)
    return folder


def test_stdio_server_spawned_as_a_host_would(tiny_index, index_dir):
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "app", "mcp", "--index", str(index_dir), "--encoder", "conftest:FakeEncoder"],
        env={"PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]), "REPORTQA_DATA": str(index_dir.parent / "data")},
        cwd=str(ROOT),
    )

    from app.trust import shipped

    tiny_index.trust = shipped()  # the server process loads the index from disk, with the shipped model

    async def main():
        with anyio.fail_after(120):
            async with stdio_client(params) as (read, write):
                await exercise(read, write, tiny_index)

    anyio.run(main)


def test_stdio_server_without_an_index_says_how_to_make_one(tmp_path):
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "app", "mcp", "--index", str(tmp_path / "none"), "--encoder", "conftest:FakeEncoder"],
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)])),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
    assert proc.returncode == 1 and "reportqa index" in proc.stderr and not proc.stdout


@pytest.fixture
def keyed_server(tiny_index):
    server = start_server(create_api(lambda: tiny_index, api_key="mcp-key", require_key=True, mcp=True), port=free_port())
    yield server
    server.close()


def test_streamable_http_with_the_key(tiny_index, keyed_server):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async def main():
        with anyio.fail_after(60):
            async with httpx2.AsyncClient(headers={"Authorization": "Bearer mcp-key"}) as http:
                async with streamable_http_client(keyed_server.url + "/mcp", http_client=http) as (read, write):
                    await exercise(read, write, tiny_index)

    anyio.run(main)


def test_streamable_http_keeps_the_key_rule(keyed_server):
    import httpx

    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    assert httpx.post(keyed_server.url + "/mcp", json=call, headers=accept).status_code == 401
    assert httpx.post(keyed_server.url + "/mcp", json=call, headers=accept | {"Authorization": "Bearer nope"}).status_code == 403
    r = httpx.post(keyed_server.url + "/mcp/", json=call, headers=accept | {"Authorization": "Bearer mcp-key"})
    assert r.status_code == 200 and {t["name"] for t in r.json()["result"]["tools"]} == {"search_reports", "list_reports", "get_report"}


def test_streamable_http_on_loopback_needs_no_key_but_a_loopback_host(tiny_index):
    import httpx

    server = start_server(create_api(lambda: tiny_index, mcp=True), port=free_port())
    try:
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_reports", "arguments": {}}}
        accept = {"Accept": "application/json, text/event-stream"}
        r = httpx.post(server.url + "/mcp", json=call, headers=accept)
        assert r.status_code == 200 and r.json()["result"]["structuredContent"]["reports"][0]["id"] == "a"
        assert httpx.post(server.url + "/mcp", json=call, headers=accept | {"Host": "evil.example"}).status_code == 403
    finally:
        server.close()
