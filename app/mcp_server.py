"""The MCP server for agent hosts (the official `mcp` SDK, 2.x): three read-only tools over the
same `answer` and catalogue as the HTTP API.

    search_reports(question, top_k=5, city="", history=[], date_from="", date_to="")
                                                 cited passages answering a question (a follow-up read with
                                                 the earlier questions in history; only reports dated from
                                                 date_from to date_to, undated ones kept, when given)
    list_reports()                               id, title, city, date, source, url, passages, pages
    get_report(report_id)                        metadata, cleaned text and passage offsets

Over stdio `run_stdio(get_index)` (`reportqa mcp`); over
streamable HTTP at `/mcp` of the serve process (`create_api(..., mcp=True)`), under the API's
access rule (`api.Access`) and thread pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from . import __version__, catalog
from .answer import DEFAULT_TOP_K, MAX_HISTORY, MAX_QUESTION, MAX_TOP_K, answer
from .errors import ReportQAError

if TYPE_CHECKING:
    from .api import Access
    from .index import ReportIndex, SearchSettings

MAX_DATE = 40  # characters of date_from / date_to: a date is at most 11 ("2024年09月01日")

INSTRUCTIONS = (
    "Search Chinese government and news reports on regional education (长治 Changzhi, 忻州 Xinzhou, 吕梁 Lüliang). "
    "Answers are passages quoted verbatim from the reports, with their report, city, date and character offsets; "
    "nothing is generated. answered=false means the reports do not seem to answer: say so rather than guess. "
    "state=possible means the first passage more likely does not answer: check it before relying on it, and say so."
)


class CitedPassage(TypedDict):
    rank: int
    text: str
    highlight: list[int]  # [start, end] of the answering sentence within text
    highlight_text: str
    title: str
    city: str
    date: str
    source: str
    doc_id: str
    chunk_id: str
    start: int  # where text starts in the report's cleaned text (get_report)
    end: int
    page: int | None
    score: float


class SearchResult(TypedDict):
    question: str
    searched: str  # the question as searched: a follow-up merged with the history, else the question itself
    answered: bool
    confidence: float
    state: str  # what the chat shows: answer, possible (check the passages) or none (records.Answer.verdict)
    notice: str
    passages: list[CitedPassage]


class ReportSummary(TypedDict):
    id: str
    title: str
    city: str
    date: str
    source: str
    url: str
    passages: int
    pages: int | None


class ReportList(TypedDict):
    reports: list[ReportSummary]


class PassageOffsets(TypedDict):
    chunk_id: str
    start: int
    end: int
    page: int | None


class ReportDetail(ReportSummary):
    text: str
    page_starts: list[int]
    passage_offsets: list[PassageOffsets]


Run = Callable[[Callable[[], Any]], Awaitable[Any]]


class _Refusal:
    status, message, headers = 503, "the MCP endpoint is not running (the app's lifespan has not started it)", {}


_NotRunning = _Refusal()


async def _in_thread(fn: Callable[[], Any]) -> Any:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(fn)


def search_result(ans) -> SearchResult:
    """An `Answer` as the tool's result: the passages of `Answer.to_json` with the highlighted sentence's text."""
    data = ans.to_json()
    passages = []
    for p in data["passages"]:
        s, e = p["highlight"]
        keep = (
            "rank",
            "text",
            "highlight",
            "title",
            "city",
            "date",
            "source",
            "doc_id",
            "chunk_id",
            "start",
            "end",
            "page",
            "score",
        )
        passages.append({k: p[k] for k in keep} | {"highlight_text": p["text"][s:e]})
    return {"question": data["question"], "searched": data["searched"], "answered": data["answered"],
            "confidence": round(float(ans.confidence), 6), "state": data["state"], "notice": data["notice"],
            "passages": passages}  # fmt: skip


def create_mcp(
    get_index: Callable[[], ReportIndex], *, settings: SearchSettings | None = None, run: Run | None = None
) -> MCPServer:
    """The MCP server over the index `get_index()` returns at each call; `run` runs a search off the event loop."""
    run = run or _in_thread
    server = MCPServer("reportqa", title="ReportQA: Chinese education reports", instructions=INSTRUCTIONS, version=__version__,
                       log_level="WARNING")  # it configures the root logger when nothing else has  # fmt: skip
    read_only = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

    async def call(fn: Callable[[], Any]) -> Any:
        try:
            return await run(fn)
        except ReportQAError as e:  # no index, a damaged one, the pool full: the message says what to do
            raise ToolError(str(e)) from e

    @server.tool(annotations=read_only)
    async def search_reports(
        question: Annotated[str, Field(description="the question, in Chinese (simplified or traditional) or English")],
        top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, description="passages to return")] = DEFAULT_TOP_K,
        city: Annotated[str, Field(description="only this city's reports (长治, 忻州, 吕梁, ...); empty for all")] = "",
        history: Annotated[
            list[str] | None,
            Field(description="the earlier questions of the conversation, oldest first: a follow-up such as 那吕梁呢？ "
                              f"is searched merged with them (see `searched`); only the last {MAX_HISTORY} are read"),
        ] = None,  # fmt: skip
        date_from: Annotated[str, Field(max_length=MAX_DATE, description="only reports dated from this day, month or year "
                                        "(YYYY-MM-DD, YYYY-MM or YYYY); reports without a date are kept, and the notice says so")] = "",
        date_to: Annotated[str, Field(max_length=MAX_DATE, description="only reports dated up to this day, month or year "
                                      "(as date_from)")] = "",
    ) -> SearchResult:
        """Passages quoted from the reports that answer `question`, each with its report, city, date, offsets and
        the answering sentence highlighted; `answered` is false when none seems to answer it; `state` is `possible`
        when the first passage more likely does not answer (confidence under 0.5): check it before relying on it."""
        if len(question) > MAX_QUESTION:
            raise ToolError(f"question: longer than {MAX_QUESTION} characters ({len(question)})")
        for i, item in enumerate(history or []):
            if len(item) > MAX_QUESTION:
                raise ToolError(f"history.{i}: longer than {MAX_QUESTION} characters ({len(item)})")
        # a bad date is a `DateError` (a ReportQAError): `call` makes it a tool error naming the field
        return await call(lambda: search_result(answer(get_index(), question, history=history, top_k=top_k, city=city,
                                                       date_from=date_from, date_to=date_to, settings=settings)))  # fmt: skip

    @server.tool(annotations=read_only)
    async def list_reports() -> ReportList:
        """Every report searched: id, title, city, date, source, url, number of passages and of pages."""
        return {"reports": await call(lambda: catalog.list_reports(get_index()))}

    @server.tool(annotations=read_only)
    async def get_report(report_id: Annotated[str, Field(description="a report id from list_reports")]) -> ReportDetail:
        """One report: its metadata, its cleaned text (what passage offsets refer to) and each passage's offsets."""
        found = await call(lambda: catalog.get_report(get_index(), report_id))
        if found is None:
            raise ToolError(f"report_id: unknown report {report_id!r}; list_reports gives the ids")
        return found

    return server


class HttpEndpoint:
    """An ASGI app serving `server` over streamable HTTP (stateless, JSON responses) behind `access`.

    Route it at `/mcp` and run `lifespan()` in the app's lifespan (`create_api(..., mcp=True)`
    does both). The SDK's own DNS-rebinding check is off: `access` makes the same check (a
    loopback Host for a request without a key) and admits keyed clients from other machines.
    """

    def __init__(self, server: MCPServer, access: Access):
        self.server = server
        self.access = access
        self.manager = None

    @contextlib.asynccontextmanager
    async def lifespan(self):
        from mcp.server.transport_security import TransportSecuritySettings

        # a session manager runs once: a new one for each start of the app
        self.server.streamable_http_app(stateless_http=True, json_response=True,
                                        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))  # fmt: skip
        manager = self.server.session_manager
        async with manager.run():
            self.manager = manager
            try:
                yield
            finally:
                self.manager = None

    async def __call__(self, scope, receive, send) -> None:
        from starlette.responses import JSONResponse

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        client = scope.get("client")
        refusal = self.access.check(headers.get("authorization"), client[0] if client else None, headers.get("host"))
        if refusal is None and self.manager is None:
            refusal = _NotRunning
        if refusal is not None:
            response = JSONResponse({"detail": refusal.message, "field": None}, refusal.status, headers=refusal.headers or None)
            await response(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)


def run_stdio(get_index: Callable[[], ReportIndex], *, settings: SearchSettings | None = None) -> None:
    """Serve the tools over stdin/stdout until the host closes them (`reportqa mcp`)."""
    create_mcp(get_index, settings=settings).run("stdio")
