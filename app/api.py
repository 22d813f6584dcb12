"""The JSON HTTP API for programs: `create_api(get_index)` builds a FastAPI app serving

    POST /api/v1/ask            the passages answering a question (`answer.answer`, as everywhere)
    GET  /api/v1/reports        every report: id, title, city, date, source, url, passages, pages
    GET  /api/v1/reports/{id}   one report: metadata, cleaned text, passage offsets
    GET  /api/v1/openapi.json   the schema; /api/v1/docs a page reading it, with nothing from a CDN
    GET  /healthz               liveness, never behind a key
    POST /mcp                   the MCP server over streamable HTTP (`mcp_server.py`), with `mcp=True`

The chat is mounted into the same app (`gr.mount_gradio_app(app, blocks, path="/")`, after
these routes), so one port serves both. Access (`Access`): requests from this machine are open;
others need `Authorization: Bearer KEY`, and with `require_key` every request does. Each client
(by key, else by address) has a token bucket (`RateLimit`). Searches run on a small thread pool:
the search is CPU-bound and ~20 ms, so more threads than cores only make each one slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from . import __version__, catalog
from .answer import DEFAULT_TOP_K, MAX_HISTORY, MAX_QUESTION, MAX_TOP_K, DateError, answer
from .errors import ReportQAError

if TYPE_CHECKING:
    from .index import ReportIndex, SearchSettings

log = logging.getLogger("reportqa.api")

PREFIX = "/api/v1"
MAX_BODY = 256 * 1024  # bytes of a request: a question and its history are a few KB
MAX_FILTER = 200  # characters of a city or report id
THREADS = 2  # searches at once: the cores of the machine measured (eval/api_load.md)
MAX_PENDING = 256  # searches waiting or running before the API answers 503
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def is_loopback(host: str) -> bool:
    """Whether a server bound to `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip("[]").lower() in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to serve beyond this machine without a key (`BindRefused`, naming the option)."""
    if not api_key and not is_loopback(host):
        raise BindRefused(
            f"serving on {host} would open the API and MCP to other machines without a key: "
            "give one with --api-key KEY (or $REPORTQA_API_KEY), which callers send as "
            "`Authorization: Bearer KEY`, or serve on 127.0.0.1 (the chat page itself is for people and stays open)"
        )


# --------------------------------------------------------------------------- access: keys and rate limit


@dataclass(frozen=True)
class RateLimit:
    """A token bucket per client (its key, else its address): `rate` requests a second on average, `burst` at once.

    Requests from this machine without a key are not limited unless `local`: they all share one
    address (32 local clients would share one bucket), and they are this machine's own users.
    """

    rate: float = 100.0
    burst: int = 200
    local: bool = False
    clients: int = 10_000  # buckets kept; the least recently seen client is forgotten first


class TokenBuckets:
    """The buckets of `RateLimit`; `take(client)` is 0 when allowed, else the seconds to wait."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.clock = clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, when)
        self.lock = threading.Lock()

    def take(self, client: str) -> float:
        now = self.clock()
        rate, burst = self.limit.rate, self.limit.burst
        with self.lock:
            tokens, when = self.buckets.pop(client, (float(burst), now))
            tokens = min(float(burst), tokens + (now - when) * rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / rate if rate > 0 else math.inf
            self.buckets[client] = (tokens, now)
            while len(self.buckets) > self.limit.clients:
                self.buckets.popitem(last=False)
        return wait


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    headers: dict[str, str]


def _host_name(host: str) -> str:
    """The name in a Host header, without its port: `[::1]:8000` -> `::1`."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class Access:
    """Who may call: loopback clients freely; others with a key; everyone with `require_key`.

    An unauthenticated request must also name a loopback Host, so a web page that rebinds its
    own domain to 127.0.0.1 cannot read the API. Keys are compared in constant time.
    """

    def __init__(self, api_key: str | Sequence[str] | None = None, *, require_key: bool = False,
                 rate_limit: RateLimit | None = None):  # fmt: skip
        keys = [api_key] if isinstance(api_key, str) else list(api_key or [])
        if any(not k for k in keys):
            raise ValueError("an API key cannot be empty")
        if require_key and not keys:
            raise ValueError("require_key needs an api_key")
        self.keys = [k.encode() for k in keys]
        self.require_key = require_key
        self.buckets = TokenBuckets(rate_limit or RateLimit())

    def _key_id(self, token: str) -> str | None:
        given, found = token.encode(), None
        for k in self.keys:  # every key compared, found or not
            if hmac.compare_digest(given, k):
                found = k
        return None if found is None else "key:" + hashlib.sha256(found).hexdigest()[:16]

    def check(self, authorization: str | None, client_host: str | None, host_header: str | None) -> Refusal | None:
        """None when the request may go on, else why not."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        client = f"ip:{client_host or '?'}"
        refusal = None
        if token and self.keys:
            key_id = self._key_id(token)
            if key_id is None:
                refusal = Refusal(403, "wrong API key in Authorization: Bearer", {})
            else:
                client = key_id
        elif self.require_key:
            refusal = Refusal(401, "this API needs a key: send Authorization: Bearer KEY", {"WWW-Authenticate": "Bearer"})
        elif not is_loopback(client_host or ""):
            refusal = Refusal(403, "this API answers this machine only; others need a key (Authorization: Bearer KEY) "
                                   "on a server started with one", {})  # fmt: skip
        elif not is_loopback(_host_name(host_header or "")):
            refusal = Refusal(403, f"Host {host_header!r} is not this machine: call 127.0.0.1 or localhost, or send a key", {})
        if client.startswith("ip:") and is_loopback(client_host or "") and not self.buckets.limit.local:
            return refusal
        wait = self.buckets.take(client)  # refused attempts count too: guessing keys is rate limited
        if wait > 0:
            retry = max(1, math.ceil(wait)) if math.isfinite(wait) else 3600
            return Refusal(429, f"too many requests: retry after {retry} s", {"Retry-After": str(retry)})
        return refusal


# --------------------------------------------------------------------------- request and response records

Question = Annotated[StrictStr, Field(max_length=MAX_QUESTION)]


class AskRequest(BaseModel):
    """A question, and optionally how many passages, a search mode, a city, a report and the earlier questions."""

    model_config = ConfigDict(extra="forbid")

    question: Question = Field(description=f"the question, at most {MAX_QUESTION} characters (longer is a 413)")
    top_k: StrictInt = Field(DEFAULT_TOP_K, ge=1, le=MAX_TOP_K, description="passages to return")
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    city: StrictStr = Field("", max_length=MAX_FILTER, description="only passages of this city's reports")
    report: StrictStr = Field("", max_length=MAX_FILTER, description="only passages of this report id (404 if unknown)")
    date_from: StrictStr = Field("", max_length=MAX_FILTER, description="only reports dated from this day, month or year "
                                 "(YYYY-MM-DD, YYYY-MM or YYYY); reports without a date are kept, and the notice says so")  # fmt: skip
    date_to: StrictStr = Field("", max_length=MAX_FILTER, description="only reports dated up to this day, month or year (as date_from)")
    history: list[Question] = Field(
        default_factory=list,
        description=f"the earlier questions of the conversation, oldest first: a follow-up (那吕梁呢？) is searched "
        f"merged with them; only the last {MAX_HISTORY} are read",
    )


class Passage(BaseModel):
    """A cited passage: `text` is `report.text[start:end]`; `highlight` the answering sentence within `text`."""

    model_config = ConfigDict(extra="allow")

    rank: int
    doc_id: str
    title: str
    city: str
    text: str
    start: int
    end: int
    score: float
    highlight: list[int]
    source: str
    date: str
    chunk_id: str
    page: int | None


class AskResponse(BaseModel):
    """The JSON of `reportqa ask --json`, plus `searched`: the question as searched (after follow-up resolution)."""

    model_config = ConfigDict(extra="allow")

    id: str | None
    question: str
    answered: bool
    passages: list[Passage]
    notice: str
    seconds: float
    searched: str
    state: Literal["answer", "possible", "none"] = Field(
        description="what the chat shows: answer; possible (answered but with a learned confidence under 0.5, or refused "
                    "within half of the threshold: check the passages); none")  # fmt: skip


class ReportSummary(BaseModel):
    id: str
    title: str
    city: str
    date: str
    source: str
    url: str
    passages: int
    pages: int | None = Field(description="pages of a paged report (PDF, DOCX with page breaks), else null")


class PassageOffsets(BaseModel):
    chunk_id: str
    start: int
    end: int
    page: int | None


class ReportDetail(ReportSummary):
    text: str = Field(description="the cleaned text that every offset refers to")
    page_starts: list[int] = Field(description="where each page starts in text; empty for an unpaged report")
    passage_offsets: list[PassageOffsets] = Field(description="each passage's place in text, in order")


class Health(BaseModel):
    status: str
    reports: int
    passages: int


class ErrorBody(BaseModel):
    detail: str = Field(description="what is wrong, naming the field")
    field: str | None = Field(None, description="the field at fault, as a dotted path (history.2), when there is one")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "empty body or malformed JSON",
        401: "a key is required",
        403: "wrong key, or not from this machine",
        413: "question or body too long",
        422: "a field has the wrong type or value",
        429: "rate limited: see Retry-After",
        503: "the index cannot answer now",
    }.items()
}


def _error(status: int, detail: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status_code=status, headers=headers)


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    """The first problem of a request, as a 400, 413 or 422 naming its field."""
    errors = list(exc.errors())
    e = errors[0] if errors else {"loc": ("body",), "type": "missing", "msg": "invalid request"}
    loc = tuple(e.get("loc", ()))
    where = loc[1:] if loc[:1] == ("body",) else loc
    field = ".".join(str(p) for p in where) or "body"
    kind = e.get("type", "")
    if kind == "json_invalid":
        reason = (e.get("ctx") or {}).get("error", "JSON decode error")
        return _error(400, f"body: malformed JSON ({reason} at character {where[0] if where else 0})", "body")
    if loc == ("body",) and kind == "missing":
        return _error(400, 'body: empty; send a JSON object such as {"question": "..."}', "body")
    if not where and kind in ("model_attributes_type", "dict_type", "model_type"):
        return _error(422, "body: must be a JSON object (with Content-Type: application/json)", "body")
    if kind == "string_too_long":
        limit = (e.get("ctx") or {}).get("max_length", MAX_QUESTION)
        given = e.get("input")
        size = f" (got {len(given)})" if isinstance(given, str) else ""
        return _error(413, f"{field}: longer than {limit} characters{size}", field)
    details = "; ".join(f"{'.'.join(str(p) for p in x.get('loc', ())[1:]) or 'body'}: {x.get('msg')}" for x in errors[:5])
    return _error(422, details, field)


# --------------------------------------------------------------------------- the app


class _Edge:
    """Plain ASGI middleware in front of the API paths only: CORS when origins are configured
    (none are by default: no CORS headers at all), nothing for the chat's paths, whose own
    CORS rules Gradio keeps."""

    def __init__(self, app, cors_origins: Sequence[str] = ()):
        self.app = app
        self.cors = None
        if cors_origins:
            self.cors = CORSMiddleware(app, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                                       allow_headers=["Authorization", "Content-Type"], max_age=600)  # fmt: skip

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not _is_api_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", ())).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > MAX_BODY:
            await _error(413, f"body: larger than {MAX_BODY} bytes", "body")(scope, receive, send)
            return
        received = 0

        async def limited():  # a chunked body has no Content-Length: count it as it comes
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY:
                raise StarletteHTTPException(413, f"body: larger than {MAX_BODY} bytes")
            return message

        await (self.cors or self.app)(scope, limited, send)


def _is_api_path(path: str) -> bool:
    return path.startswith((PREFIX + "/", "/mcp")) or path in (PREFIX, "/healthz")


class BindRefused(ReportQAError):
    """A server asked to listen beyond this machine with no key configured."""


class Busy(ReportQAError):
    """Too many searches are waiting already."""


class Searcher:
    """Runs searches on a bounded pool of `threads` (0: Starlette's default pool of 40 threads),
    refusing with `Busy` once `max_pending` are waiting or running."""

    def __init__(self, threads: int = THREADS, max_pending: int = MAX_PENDING):
        self.threads = threads
        self.max_pending = max_pending
        self.pending = 0
        self.pool: ThreadPoolExecutor | None = None  # made at the first search, closed with the app

    async def run(self, fn: Callable[[], Any]) -> Any:
        """`fn()` on the pool; what it raises is raised here."""
        if self.pending >= self.max_pending:
            raise Busy("busy: too many questions waiting; retry in a second")
        self.pending += 1  # only ever changed on the event loop's thread
        try:
            if self.threads <= 0:
                from starlette.concurrency import run_in_threadpool

                return await run_in_threadpool(fn)
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="reportqa-search")
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn)
        finally:
            self.pending -= 1

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


async def _serve(searcher: Searcher, fn: Callable[[], Any]) -> Any:
    """`fn()` for an API request: a full pool is a 503 with Retry-After, an index's failure a 503 with a message."""
    try:
        return await searcher.run(lambda: _guarded(fn))
    except Busy as e:
        raise HTTPException(503, str(e), headers={"Retry-After": "1"}) from None


def _guarded(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except StarletteHTTPException:
        raise
    except ReportQAError as e:
        raise HTTPException(503, f"the index cannot answer: {e}") from e
    except Exception as e:  # a damaged index or a bug: a message, never a traceback, for the caller
        log.exception("reportqa API: the search failed")
        raise HTTPException(503, f"the index cannot answer now ({type(e).__name__}); the server log has the details") from e


def create_api(get_index: Callable[[], ReportIndex], *, settings: SearchSettings | None = None,
               api_key: str | Sequence[str] | None = None, require_key: bool = False, rate_limit: RateLimit | None = None,
               cors_origins: Sequence[str] = (), threads: int = THREADS, max_pending: int = MAX_PENDING,
               mcp: bool = False, access: Access | None = None) -> FastAPI:  # fmt: skip
    """The API over the index `get_index()` returns at each request (a `LiveIndex.get`, say).

    `access` (else one made of `api_key`, `require_key` and `rate_limit`) decides who may call:
    the serve process shares one with the chat's add/remove panel.

    With `mcp`, the MCP server (`mcp_server.py`) is served at `/mcp` under the same access rule
    and thread pool. Mount the chat after: `gr.mount_gradio_app(app, blocks, path="/")`; serve
    with uvicorn (`start_server`), whose lifespan runs the MCP sessions and closes the pool.
    """
    access = access or Access(api_key, require_key=require_key, rate_limit=rate_limit)
    searcher = Searcher(threads, max_pending)
    mcp_http = None
    if mcp:
        from .mcp_server import HttpEndpoint, create_mcp

        mcp_http = HttpEndpoint(create_mcp(get_index, settings=settings, run=searcher.run), access)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        async with contextlib.AsyncExitStack() as stack:
            if mcp_http is not None:
                await stack.enter_async_context(mcp_http.lifespan())
            try:
                yield
            finally:
                searcher.close()

    app = FastAPI(title="reportqa API", version=__version__, openapi_url=None, docs_url=None, redoc_url=None,
                  lifespan=lifespan, summary="Cited passages from Chinese regional education reports; nothing generated.")  # fmt: skip
    app.state.access = access
    app.state.searcher = searcher

    async def allowed(request: Request) -> None:
        client = request.client.host if request.client else None
        refusal = access.check(request.headers.get("authorization"), client, request.headers.get("host"))
        if refusal is not None:
            raise HTTPException(refusal.status, refusal.message, headers=refusal.headers or None)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's, and Starlette's own (413 of the body limit)
    async def on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        field = getattr(exc, "field", None) or ("body" if exc.status_code in (400, 413) else None)
        return _error(exc.status_code, detail, field, headers=getattr(exc, "headers", None))

    router = APIRouter(prefix=PREFIX, dependencies=[Depends(allowed)], responses=ERRORS)

    # The routes return a JSONResponse of what they computed: `response_model` documents it, and
    # validating our own records again would cost more than a cached search.
    @router.post("/ask", response_model=AskResponse, summary="Passages answering a question")
    async def ask(body: AskRequest) -> JSONResponse:
        """The passages of the reports answering `question`, cited; `answered: false` when none seems to.
        A follow-up is read with `history` (earlier questions, oldest first; the last 20 count); `searched`
        is the text searched, `question` itself unless it was rewritten."""

        def work() -> dict:
            index = get_index()
            if body.report and body.report not in index.docs:
                raise _FieldError(404, f"report: unknown report {body.report!r}; GET {PREFIX}/reports lists them", "report")
            try:
                ans = answer(index, body.question, history=body.history, top_k=body.top_k, mode=body.mode, city=body.city,
                             report=body.report, date_from=body.date_from, date_to=body.date_to, settings=settings)  # fmt: skip
            except DateError as e:
                raise _FieldError(422, str(e), e.field) from None
            return ans.to_json()

        return JSONResponse(await _serve(searcher, work))

    @router.get("/reports", response_model=list[ReportSummary], summary="Every report")
    async def reports() -> JSONResponse:
        return JSONResponse(await _serve(searcher, lambda: catalog.list_reports(get_index())))

    @router.get("/reports/{report_id}", response_model=ReportDetail, summary="One report: text and passage offsets")
    async def report(report_id: str) -> JSONResponse:
        def work() -> dict:
            found = catalog.get_report(get_index(), report_id)
            if found is None:
                raise _FieldError(404, f"report_id: unknown report {report_id!r}; GET {PREFIX}/reports lists them", "report_id")
            return found

        return JSONResponse(await _serve(searcher, work))

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_HTML, headers={"Content-Security-Policy": DOCS_CSP})

    @router.get("/docs.js", include_in_schema=False)
    async def docs_js() -> Response:
        return Response(DOCS_JS, media_type="text/javascript", headers={"Content-Security-Policy": DOCS_CSP})

    app.include_router(router)

    @app.get("/healthz", response_model=Health, summary="Liveness: no key needed")
    async def healthz() -> dict:
        index = await _serve(searcher, get_index)
        return {"status": "ok", "reports": len(index.docs), "passages": len(index.chunks)}

    if mcp_http is not None:
        app.router.add_route("/mcp", mcp_http, include_in_schema=False)
        app.router.add_route("/mcp/", mcp_http, include_in_schema=False)

    known = {(r.path, m) for r in router.routes for m in getattr(r, "methods", ())}

    @app.api_route(PREFIX + "/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
                   include_in_schema=False)  # fmt: skip
    async def unknown(request: Request, rest: str) -> JSONResponse:
        # Without this, a path under /api/v1 that no route takes would reach the chat mounted at "/".
        await allowed(request)
        path = f"{PREFIX}/{rest}"
        methods = sorted(m for p, m in known if p == path or (p.endswith("}") and path.startswith(p.rsplit("/", 1)[0] + "/")))
        if methods:
            return _error(405, f"{request.method} is not allowed on {path}: use {' or '.join(methods)}", None,
                          headers={"Allow": ", ".join(methods)})  # fmt: skip
        return _error(404, f"no endpoint {path}: see {PREFIX}/docs", None)

    app.add_middleware(_Edge, cors_origins=tuple(cors_origins))
    return app


class _FieldError(HTTPException):
    """An HTTPException naming the request field at fault."""

    def __init__(self, status: int, detail: str, field: str):
        super().__init__(status, detail)
        self.field = field


# --------------------------------------------------------------------------- serving


class RunningServer:
    """uvicorn serving an app on a thread (tests, the load test): `url`, then `close()`."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning"):
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
                                timeout_graceful_shutdown=5)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        self.thread = threading.Thread(target=self.server.run, name="reportqa-api", daemon=True)

    def start(self, timeout: float = 30.0) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on {self.url} (port taken?)")
            time.sleep(0.02)
        return self

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(app, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "warning") -> RunningServer:
    """Serve `app` with uvicorn on a background thread; returns once it accepts connections."""
    return RunningServer(app, host, port, log_level).start()


# --------------------------------------------------------------------------- the docs page (offline)

DOCS_CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'"

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>reportqa API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.op{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;margin:.8rem 0}
.m{display:inline-block;min-width:3.5rem;font-weight:700;color:#fff;border-radius:4px;padding:0 .4rem;text-align:center}
.GET{background:#2b6cb0}.POST{background:#2f855a}
code,pre,textarea{font:13px/1.4 ui-monospace,monospace} pre{background:#f6f8fa;padding:.6rem;overflow:auto;max-height:28rem}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #eee;padding:.2rem .4rem;text-align:left;vertical-align:top}
textarea{width:100%;box-sizing:border-box}
</style></head>
<body><h1>reportqa API</h1>
<p>The schema: <a href="openapi.json">openapi.json</a>. Everything on this page comes from this server.</p>
<div id="ops">Loading the schema…</div>
<h2>Try it: POST ask</h2>
<textarea id="body" rows="4">{"question": "长治市有多少所校外培训机构纳入了全国平台管理？", "top_k": 3}</textarea>
<p><button id="send">Send</button> <span id="status"></span></p><pre id="out"></pre>
<h2>Schemas</h2><div id="schemas"></div>
<script src="docs.js"></script></body></html>
"""

DOCS_JS = r"""
"use strict";
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function typeOf(s, defs) {
  if (!s) return "";
  if (s.$ref) return s.$ref.split("/").pop();
  if (s.anyOf) return s.anyOf.map(x => typeOf(x, defs)).join(" | ");
  if (s.type === "array") return typeOf(s.items, defs) + "[]";
  if (s.enum) return s.enum.map(x => JSON.stringify(x)).join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  return s.type || "any";
}
function limits(s) {
  const out = [];
  for (const k of ["minimum", "maximum", "maxLength", "maxItems", "default"]) if (s[k] !== undefined) out.push(k + " " + JSON.stringify(s[k]));
  return out.join(", ");
}
function schemaTable(name, s, defs) {
  const t = el("table", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "limits"), el("th", {}, "description")));
  const req = new Set(s.required || []);
  for (const [k, p] of Object.entries(s.properties || {})) {
    t.append(el("tr", {}, el("td", {}, el("code", {}, k + (req.has(k) ? " *" : ""))), el("td", {}, typeOf(p, defs)),
      el("td", {}, limits(p)), el("td", {}, p.description || "")));
  }
  return el("div", {id: "schema-" + name}, el("h3", {}, name), el("p", {}, s.description || ""), t);
}
async function main() {
  const spec = await (await fetch("openapi.json")).json();
  const ops = document.getElementById("ops");
  ops.textContent = "";
  ops.append(el("p", {}, (spec.info.summary || "") + " Version " + spec.info.version + "."));
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const m = method.toUpperCase();
      const box = el("div", {class: "op"}, el("span", {class: "m " + m}, m), " ", el("code", {}, path), " ", el("b", {}, op.summary || ""));
      if (op.description) box.append(el("p", {}, op.description));
      for (const p of op.parameters || []) box.append(el("p", {}, "parameter ", el("code", {}, p.name), " (" + p.in + "): " + typeOf(p.schema)));
      const body = op.requestBody && op.requestBody.content["application/json"];
      if (body) box.append(el("p", {}, "body: ", el("code", {}, typeOf(body.schema))));
      const codes = Object.entries(op.responses || {}).map(([c, r]) => c + " " + (r.description || "")).join("; ");
      box.append(el("p", {}, "responses: " + codes));
      ops.append(box);
    }
  }
  const defs = (spec.components || {}).schemas || {};
  const out = document.getElementById("schemas");
  for (const [name, s] of Object.entries(defs)) out.append(schemaTable(name, s, defs));
}
document.getElementById("send").addEventListener("click", async () => {
  const status = document.getElementById("status"), out = document.getElementById("out");
  status.textContent = "…";
  try {
    const r = await fetch("ask", {method: "POST", headers: {"Content-Type": "application/json"}, body: document.getElementById("body").value});
    status.textContent = r.status + " " + r.statusText;
    out.textContent = JSON.stringify(await r.json(), null, 2);
  } catch (e) { status.textContent = String(e); }
});
main().catch(e => { document.getElementById("ops").textContent = "The schema could not be read: " + e; });
"""
