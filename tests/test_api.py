"""The JSON HTTP API (app/api.py) over a tiny index and the fake encoder: answers identical to
`answer(...)`, every bad input a 4xx naming its field (never a 500), keys, the rate limit,
CORS closed by default, the schema and an offline docs page, and a real uvicorn server."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import free_port
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.answer import MAX_QUESTION, answer
from app.api import (
    MAX_BODY,
    PREFIX,
    Access,
    AskResponse,
    RateLimit,
    ReportDetail,
    ReportSummary,
    TokenBuckets,
    check_bind,
    create_api,
    start_server,
)
from app.errors import IndexMismatch
from app.index import ReportIndex
from app.loadtest import comparable
from app.records import Document

LOCAL = {"base_url": "http://127.0.0.1", "client": ("127.0.0.1", 50000)}
ASK = f"{PREFIX}/ask"


def client_for(app, **kw) -> TestClient:
    return TestClient(app, **(LOCAL | kw))


@pytest.fixture
def api(tiny_index):
    with client_for(create_api(lambda: tiny_index)) as c:
        yield c


def assert_names(r, status: int, field: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field, body
    assert field in body["detail"], body


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"top_k": 1},
        {"top_k": 50},
        {"mode": "dense"},
        {"mode": "keyword", "top_k": 2},
        {"city": "长治"},
        {"city": "忻州", "top_k": 3},
        {"report": "c"},
        {"city": "大同"},  # a city no report is about: no passages and a notice, as `answer` says
    ],
)
@pytest.mark.parametrize("question", ["平台管理", "忻州學前教育毛入園率是多少", "How many kindergartens?", "  ", "幼儿园\x00\x1b"])
def test_ask_is_answer(api, tiny_index, question, params):
    r = api.post(ASK, json={"question": question} | params)
    assert r.status_code == 200, r.text
    got = r.json()
    expected = answer(tiny_index, question, **params).to_json()
    assert comparable(got) == comparable(expected)
    assert got["searched"] == got["question"] == expected["question"]
    assert set(got) == set(expected) | {"searched"}
    assert AskResponse.model_validate(got).model_dump() == got  # the documented schema is what is sent


def test_history_reads_a_follow_up_and_says_what_was_searched(api, tiny_index):
    history = ["长治有多少所校外培训机构纳入平台管理？"]
    r = api.post(ASK, json={"question": "那忻州呢？", "history": history})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["question"], got["searched"]) == ("那忻州呢？", "忻州有多少所校外培训机构纳入平台管理？")
    assert comparable(got) == comparable(answer(tiny_index, "那忻州呢？", history=history).to_json())
    assert comparable(got) != comparable(answer(tiny_index, "那忻州呢？").to_json())  # the history changed the search
    assert AskResponse.model_validate(got).model_dump() == got
    standalone = api.post(ASK, json={"question": "平台管理", "history": [*history, "幼儿园呢？"]}).json()
    assert standalone["searched"] == "平台管理"
    assert comparable(standalone) == comparable(answer(tiny_index, "平台管理").to_json())


def test_a_history_over_twenty_is_cut_to_its_last_questions(api):
    follow = ["那吕梁呢？", "那忻州呢？"] * 10
    subject = "长治有多少所校外培训机构纳入平台管理？"
    kept = api.post(ASK, json={"question": "那长治呢？", "history": [subject, *follow[1:]]})  # 20: the subject is read
    assert kept.status_code == 200 and kept.json()["searched"] == subject
    cut = api.post(ASK, json={"question": "那长治呢？", "history": [subject, *follow]})  # 21: it is not
    assert cut.status_code == 200, cut.text
    assert cut.json()["searched"] == "那长治呢？"
    assert api.post(ASK, json={"question": "x", "history": ["q"] * 500}).status_code == 200


def test_a_bad_history_is_a_4xx_naming_the_field(api):
    assert_names(api.post(ASK, json={"question": "x", "history": ["a", 2]}), 422, "history.1")
    assert_names(api.post(ASK, json={"question": "x", "history": ["q"] * 30 + [None]}), 422, "history.30")
    assert_names(api.post(ASK, json={"question": "x", "history": "a"}), 422, "history")
    assert_names(api.post(ASK, json={"question": "x", "history": ["a", "长" * (MAX_QUESTION + 1)]}), 413, "history.1")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"question": 12}, 422, "question"),
        ({"question": None}, 422, "question"),
        ({"question": ["平台"]}, 422, "question"),
        ({}, 422, "question"),
        ({"top_k": 3}, 422, "question"),
        ({"question": "长" * (MAX_QUESTION + 1)}, 413, "question"),
        ({"question": "平台", "top_k": 0}, 422, "top_k"),
        ({"question": "平台", "top_k": 51}, 422, "top_k"),
        ({"question": "平台", "top_k": -3}, 422, "top_k"),
        ({"question": "平台", "top_k": "5"}, 422, "top_k"),
        ({"question": "平台", "top_k": 2.5}, 422, "top_k"),
        ({"question": "平台", "top_k": True}, 422, "top_k"),
        ({"question": "平台", "top_k": 10**30}, 422, "top_k"),
        ({"question": "平台", "mode": "fuzzy"}, 422, "mode"),
        ({"question": "平台", "mode": None}, 422, "mode"),
        ({"question": "平台", "city": 3}, 422, "city"),
        ({"question": "平台", "report": "nope"}, 404, "report"),
        ({"question": "平台", "topk": 3}, 422, "topk"),
        ([], 422, "body"),
        ("平台", 422, "body"),
        (3, 422, "body"),
        (None, 422, "body"),
    ],
)
def test_bad_json_bodies_name_their_field(api, body, status, field):
    assert_names(api.post(ASK, content=json.dumps(body), headers={"Content-Type": "application/json"}), status, field)


def test_a_question_at_the_limit_is_answered_whole(api, tiny_index):
    q = "平台" * (MAX_QUESTION // 2)
    r = api.post(ASK, json={"question": q})
    assert r.status_code == 200 and r.json()["notice"] == ""
    assert comparable(r.json()) == comparable(answer(tiny_index, q).to_json())


@pytest.mark.parametrize(
    "content, headers, status",
    [
        (b"", {"Content-Type": "application/json"}, 400),  # empty body
        (b"", {}, 400),
        (b'{"question": ', {"Content-Type": "application/json"}, 400),  # malformed JSON
        (b"{'question': 'x'}", {"Content-Type": "application/json"}, 400),
        (b'{"question": "\xff\xfe"}', {"Content-Type": "application/json"}, 400),  # not UTF-8
        (b'{"question": "x"}', {"Content-Type": "text/plain"}, 422),  # not declared JSON
        (b'{"question": "x"}', {}, 422),
        (b"x" * (MAX_BODY + 1), {"Content-Type": "application/json"}, 413),
    ],
)
def test_bad_raw_bodies_name_the_body(api, content, headers, status):
    assert_names(api.post(ASK, content=content, headers=headers), status, "body")


def test_a_long_chunked_body_is_a_413(api):
    def chunks():
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    r = api.post(ASK, content=chunks(), headers={"Content-Type": "application/json"})
    assert_names(r, 413, "body")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["question", "top_k", "mode", "city", "report", "history", "x"]), inner, max_size=5),
        max_leaves=12,
    )
)
def test_no_body_is_a_server_error(api, body):
    r = api.post(ASK, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 400, 404, 413, 422), r.text
    assert r.headers["content-type"].startswith("application/json")
    if r.status_code != 200:
        assert r.json()["detail"]


def test_wrong_paths_and_methods_are_json(api):
    r = api.get(ASK)
    assert r.status_code == 405 and r.headers["allow"] == "POST" and "POST" in r.json()["detail"]
    r = api.get(f"{PREFIX}/nothing-here")
    assert r.status_code == 404 and r.json()["detail"]
    assert api.post(f"{PREFIX}/reports").status_code == 405


def test_a_damaged_index_is_a_503_with_a_message(tiny_index):
    def damaged():
        raise IndexMismatch("index file x is missing or corrupted: rebuild it with `reportqa index`")

    with client_for(create_api(damaged), raise_server_exceptions=False) as c:
        for r in (c.post(ASK, json={"question": "平台"}), c.get(f"{PREFIX}/reports"), c.get(f"{PREFIX}/reports/a"), c.get("/healthz")):
            assert r.status_code == 503 and "rebuild it" in r.json()["detail"]

    def broken():
        raise RuntimeError("boom")

    with client_for(create_api(broken), raise_server_exceptions=False) as c:
        r = c.post(ASK, json={"question": "平台"})
        assert r.status_code == 503 and "RuntimeError" in r.json()["detail"] and "Traceback" not in r.text


def test_a_full_queue_is_a_503_to_retry(tiny_index):
    with client_for(create_api(lambda: tiny_index, max_pending=0)) as c:
        r = c.post(ASK, json={"question": "平台"})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"


# --------------------------------------------------------------------------- reports


def test_reports_list_every_report(api, tiny_index):
    r = api.get(f"{PREFIX}/reports")
    assert r.status_code == 200
    got = r.json()
    assert [d["id"] for d in got] == sorted(tiny_index.docs)
    assert [ReportSummary.model_validate(d).model_dump() for d in got] == got
    a = next(d for d in got if d["id"] == "a")
    assert a == {"id": "a", "title": "报告甲", "city": "长治", "date": "2024-01-01", "source": "甲报", "url": "",
                 "passages": tiny_index.passage_counts()["a"], "pages": None}  # fmt: skip


def test_a_report_has_its_text_and_passage_offsets(fake_encoder):
    text = "第一页：全市共有学校1268所。" * 20 + "第二页：新建幼儿园23所。" * 20
    paged = Document("p", "分页报告", text, city="忻州", pages=(0, text.index("第二页")))
    index = ReportIndex.build([paged, Document("q", "另一份", "吕梁专任教师49990人。", city="吕梁")], fake_encoder)
    with client_for(create_api(lambda: index)) as c:
        r = c.get(f"{PREFIX}/reports/p")
        assert r.status_code == 200
        got = r.json()
        assert ReportDetail.model_validate(got).model_dump() == got
        assert got["text"] == text and got["pages"] == 2 and got["page_starts"] == [0, text.index("第二页")]
        chunks = [ch for ch in index.chunks if ch.doc_id == "p"]
        assert [o["chunk_id"] for o in got["passage_offsets"]] == [ch.id for ch in chunks] and got["passages"] == len(chunks)
        for o, ch in zip(got["passage_offsets"], chunks):
            assert text[o["start"] : o["end"]] == ch.text
            assert o["page"] == (1 if o["start"] < text.index("第二页") else 2)
        assert c.get(f"{PREFIX}/reports/q").json()["pages"] is None
        assert_names(c.get(f"{PREFIX}/reports/nope"), 404, "report_id")


# --------------------------------------------------------------------------- access


def test_loopback_is_open_and_others_are_not(tiny_index):
    app = create_api(lambda: tiny_index)
    with client_for(app) as c:
        assert c.get(f"{PREFIX}/reports").status_code == 200
    with TestClient(app, base_url="http://192.168.1.5", client=("192.168.1.9", 4000)) as c:
        r = c.get(f"{PREFIX}/reports")
        assert r.status_code == 403 and "key" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200
    # a page that rebinds its own name to 127.0.0.1: the request comes from this machine, naming another host
    with TestClient(app, base_url="http://evil.example", client=("127.0.0.1", 4000)) as c:
        assert c.post(ASK, json={"question": "平台"}).status_code == 403


def test_a_required_key(tiny_index):
    app = create_api(lambda: tiny_index, api_key="s3cret-key", require_key=True, mcp=True)
    with client_for(app) as c:
        for path in (f"{PREFIX}/reports", f"{PREFIX}/reports/a", f"{PREFIX}/openapi.json", f"{PREFIX}/docs", f"{PREFIX}/nope"):
            r = c.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
            assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 403
            assert c.get(path, headers={"Authorization": "Basic s3cret-key"}).status_code == 401
        assert c.post(ASK, json={"question": "平台"}).status_code == 401
        assert c.post(ASK, json={"question": "平台"}, headers={"Authorization": "Bearer s3cret-ke"}).status_code == 403
        assert c.post("/mcp", json={}).status_code == 401
        good = {"Authorization": "Bearer s3cret-key"}
        assert c.post(ASK, json={"question": "平台"}, headers=good).status_code == 200
        assert c.get(f"{PREFIX}/reports", headers=good).status_code == 200
        assert c.get("/healthz").status_code == 200  # never behind the key
    with TestClient(app, base_url="http://reports.example", client=("10.0.0.7", 4000)) as c:  # another machine, keyed
        assert c.get(f"{PREFIX}/reports", headers={"Authorization": "Bearer s3cret-key"}).status_code == 200


def test_a_key_lets_other_machines_in_without_closing_loopback(tiny_index):
    app = create_api(lambda: tiny_index, api_key=["k-one", "k-two"])
    with client_for(app) as c:
        assert c.get(f"{PREFIX}/reports").status_code == 200
    with TestClient(app, base_url="http://reports.example", client=("10.0.0.7", 4000)) as c:
        assert c.get(f"{PREFIX}/reports").status_code == 403
        assert c.get(f"{PREFIX}/reports", headers={"Authorization": "Bearer k-two"}).status_code == 200
        assert c.get(f"{PREFIX}/reports", headers={"Authorization": "Bearer k-three"}).status_code == 403


def test_every_loopback_address_that_serve_accepts_without_a_key_is_let_in():
    """`check_bind` lets `serve --host 127.0.0.2` start without a key: its callers are this machine."""
    check_bind("127.0.0.2", None)
    for host, header in (("127.0.0.2", "127.0.0.2:7860"), ("::1", "[::1]:7860"), ("127.0.0.1", "localhost:7860")):
        assert Access(None).check(None, host, header) is None, host
    assert Access(None).check(None, "10.0.0.7", "127.0.0.1:7860").status == 403
    assert Access(None).check(None, "127.0.0.1", "reports.example").status == 403


def test_access_needs_a_key_to_require_one():
    with pytest.raises(ValueError, match="api_key"):
        Access(None, require_key=True)
    with pytest.raises(ValueError, match="empty"):
        Access("")


def test_the_rate_limit_answers_429_with_retry_after(tiny_index):
    app = create_api(lambda: tiny_index, api_key="k", rate_limit=RateLimit(rate=0.5, burst=3))
    key = {"Authorization": "Bearer k"}
    with TestClient(app, base_url="http://reports.example", client=("10.0.0.7", 4000)) as c:
        codes = [c.get(f"{PREFIX}/reports", headers=key).status_code for _ in range(3)]
        r = c.post(ASK, json={"question": "平台"}, headers=key)
        assert codes == [200, 200, 200] and r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1 and "retry" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200  # not limited
        # guessing keys: refused attempts spend the address's tokens too
        assert [c.get(f"{PREFIX}/reports", headers={"Authorization": f"Bearer {n}"}).status_code for n in range(4)] == [403] * 3 + [429]
    with client_for(app) as c:  # this machine's own clients are not limited by default
        assert all(c.get(f"{PREFIX}/reports").status_code == 200 for _ in range(10))


def test_the_rate_limit_can_cover_local_clients(tiny_index):
    app = create_api(lambda: tiny_index, rate_limit=RateLimit(rate=0.5, burst=2, local=True))
    with client_for(app) as c:
        assert [c.get(f"{PREFIX}/reports").status_code for _ in range(3)] == [200, 200, 429]
    with client_for(app, client=("::1", 50000)) as c:  # another address: its own bucket
        assert c.get(f"{PREFIX}/reports").status_code == 200


def test_token_buckets_refill_and_forget():
    now = [0.0]
    buckets = TokenBuckets(RateLimit(rate=2.0, burst=2, clients=2), clock=lambda: now[0])
    assert buckets.take("a") == 0 and buckets.take("a") == 0
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] = 0.5
    assert buckets.take("a") == 0  # one token back after 1/rate seconds
    buckets.take("b")
    buckets.take("c")
    assert list(buckets.buckets) == ["b", "c"]  # "a", least recently seen, forgotten


def test_cors_is_closed_by_default(api):
    origin = {"Origin": "http://localhost:3000"}
    r = api.post(ASK, json={"question": "平台"}, headers=origin)
    assert r.status_code == 200 and not [h for h in r.headers if h.lower().startswith("access-control")]
    r = api.options(ASK, headers=origin | {"Access-Control-Request-Method": "POST"})
    assert not [h for h in r.headers if h.lower().startswith("access-control")]


def test_cors_opens_to_the_configured_origins(tiny_index):
    with client_for(create_api(lambda: tiny_index, cors_origins=["https://app.example"])) as c:
        r = c.post(ASK, json={"question": "平台"}, headers={"Origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = c.options(ASK, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                                    "Access-Control-Request-Headers": "authorization,content-type"})  # fmt: skip
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
        r = c.post(ASK, json={"question": "平台"}, headers={"Origin": "https://other.example"})
        assert "access-control-allow-origin" not in r.headers


# --------------------------------------------------------------------------- schema and docs


def test_the_openapi_schema_documents_the_api(api):
    spec = api.get(f"{PREFIX}/openapi.json").json()
    assert {"/api/v1/ask", "/api/v1/reports", "/api/v1/reports/{report_id}", "/healthz"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    ask = schemas["AskRequest"]["properties"]
    assert ask["question"]["maxLength"] == MAX_QUESTION and schemas["AskRequest"]["required"] == ["question"]
    assert (ask["top_k"]["minimum"], ask["top_k"]["maximum"]) == (1, 50)
    assert ask["mode"]["enum"] == ["hybrid", "dense", "keyword"]
    assert ask["history"]["items"]["type"] == "string"
    assert "searched" in schemas["AskResponse"]["properties"] and "Passage" in schemas
    op = spec["paths"]["/api/v1/ask"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/AskRequest")
    assert {"200", "400", "413", "422", "429"} <= set(op["responses"])
    assert "/mcp" not in spec["paths"] and "/api/v1/docs" not in spec["paths"]


def test_the_docs_page_loads_nothing_from_elsewhere(api):
    page = api.get(f"{PREFIX}/docs")
    assert page.status_code == 200 and "openapi.json" in page.text
    script = api.get(f"{PREFIX}/docs.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for text in (page.text, script.text):
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "innerHTML" not in script.text  # the schema's text is set as text, never parsed as HTML


# --------------------------------------------------------------------------- a real server


def test_a_real_server_answers_concurrent_clients_like_answer(tiny_index):
    import httpx

    questions = ["平台管理", "幼儿园", "毛入園率", "How many kindergartens?", "课后服务", "校外培训机构", "学前教育", "教育"]
    expected = {q: comparable(answer(tiny_index, q, top_k=3).to_json()) for q in questions}
    server = start_server(create_api(lambda: tiny_index, mcp=True), port=free_port())
    wrong, lock = [], threading.Lock()

    def client(n: int) -> None:
        with httpx.Client(base_url=server.url) as c:
            for q in questions[n:] + questions[:n]:
                r = c.post(ASK, json={"question": q, "top_k": 3})
                if r.status_code != 200 or comparable(r.json()) != expected[q]:
                    with lock:
                        wrong.append((q, r.status_code))

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not wrong
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok", "reports": 3, "passages": len(tiny_index.chunks)}
    finally:
        server.close()


def test_the_chat_mounts_beside_the_api_and_keeps_its_own_cors(tiny_index):
    import gradio as gr
    import httpx

    def echo(question: str) -> dict:
        return {"echo": question}

    with gr.Blocks(analytics_enabled=False) as blocks:
        gr.Markdown("chat")
        gr.api(echo, api_name="echo")
    app = create_api(lambda: tiny_index)
    gr.mount_gradio_app(app, blocks, path="/", ssr_mode=False, mcp_server=False, show_error=False)
    server = start_server(app, port=free_port())
    try:
        origin = {"Origin": "http://localhost:5173"}
        assert httpx.get(server.url + "/", headers=origin).status_code == 200  # the chat's page
        r = httpx.post(server.url + ASK, json={"question": "平台"}, headers=origin)
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
        assert httpx.get(server.url + f"{PREFIX}/nope").headers["content-type"].startswith("application/json")
        assert httpx.post(server.url + "/gradio_api/call/echo", json={"data": ["hi"]}).status_code == 200
    finally:
        server.close()


def test_the_load_test_counts_answers_errors_and_mismatches(tiny_index):
    from app.loadtest import expected_answers, run_load

    questions = ["平台管理", "幼儿园", "毛入園率", "课后服务"]
    expected = expected_answers(tiny_index, questions, top_k=3)
    server = start_server(create_api(lambda: tiny_index), port=free_port())
    try:
        got = run_load(server.url, questions, clients=4, seconds=0.5, top_k=3, expected=expected)
        assert got["requests"] > 0 and got["errors"] == 0 and got["mismatches"] == 0
        assert 0 < got["p50_ms"] <= got["p95_ms"] <= got["max_ms"]
        wrong = expected | {"幼儿园": expected["平台管理"]}
        assert run_load(server.url, questions, clients=4, seconds=0.3, top_k=3, expected=wrong)["mismatches"] > 0
        assert run_load(server.url, questions, clients=2, seconds=0.3, top_k=99)["errors"] > 0  # 422s are errors
    finally:
        server.close()
