"""The web chat and the `ask` API (Gradio), over an index that is already loaded.

`ChatUI(index)` holds what the chat needs (the `LiveIndex` it searches, the feedback store,
the search settings) and its handlers, plain methods that Gradio calls and tests call
directly; `ChatUI.create_app()` (or `create_app(index)`) lays them out as Blocks without
launching them. `launch()` serves them, mounted at "/" of the JSON API's app (`serve_app`: the
API and MCP beside the chat, one port), on 127.0.0.1 by default with no public link, once the
model is loaded and a first search has run; beyond loopback only with a key (`api.check_bind`).
Answering is `answer.answer`, as for the CLI; the HTML is `views.py`; adding and removing a
report is `changes.add` / `changes.remove`, offered in a panel on this machine, or with a key.
The page is in simplified Chinese, with a switch to English; the conversation and the choice of
language are kept in the browser, so a reload keeps them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr
from starlette.routing import Mount

from . import changes
from .answer import DEFAULT_TOP_K, MAX_QUESTION, MAX_TOP_K, DateError, HistoryError, answer, prepare_question
from .api import PREFIX, Access, check_bind, create_api, is_loopback, start_server
from .errors import ReportQAError
from .feedback import FeedbackStore, feedback_record, vote_value
from .index import SearchSettings
from .live import LiveIndex
from .ui_assets import CSS, FONTS, HEAD, LANG_JS, REPORT_JS, SCROLL_JS, theme_colours
from .views import error_html, format_answer, intro_html, question_html, report_html, searching_html, tr

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .changes import Change
    from .index import ReportIndex

# Searches run at once by the chat and its Gradio `ask` endpoint together (one concurrency id): the
# cores of the machine measured, as for the JSON API's pool (api.THREADS). A search is CPU-bound, so
# more only makes each one slower; on 2 shared cores, limits of 1, 2, 4 and 16 gave the same `ask`
# rate under 32 clients, within the noise of the other tenants (eval/loadtest.md).
CONCURRENCY = 2
# Sessions whose state the server keeps (Gradio's default is 10,000). Every call of the HTTP API is a
# new session holding ~45 KB, so the default let memory grow by ~0.5 GB under API load; a chat tab
# idle while this many other sessions come and go loses the votes on its earlier answers. The same
# number bounds what Gradio's queue keeps of idle sessions and past events (`_SessionPruner`, `bound_queue`).
SESSIONS = 1000
# Seconds a finished call's result waits to be fetched once Gradio's queue holds more than SESSIONS sessions:
# then it is dropped, so a client that posts calls to the HTTP API and never fetches them grows nothing for
# good (`_SessionPruner`).
UNFETCHED_S = 600
KEPT_TURNS = 20  # questions (with their answers) a browser keeps across reloads
EXAMPLES = [
    "长治市有多少所校外培训机构纳入了全国平台管理？",
    "How many full-time teachers does Lüliang have?",
    "忻州學前教育毛入園率是多少",
    "吕梁老师坐公交要钱吗？",
]
UPLOAD_TYPES = [".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".jsonl"]
UPLOAD_ROUTE = "/gradio_api/upload"  # Gradio's file route: the panel's report goes there before "Add" is pressed
# Gradio's route streaming a call's result (`GET /gradio_api/call/ask/EVENT_ID`, and its "v2" twin)
FETCH_ROUTE = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+/(?P<event_id>[^/]+)")
_SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;]*")

PAGE = {
    "zh": {
        "title": "# 教育报告问答 · ReportQA", "placeholder": "输入问题，或点击下面的示例。",
        "box": "例如：长治市有多少所校外培训机构纳入了全国平台管理？", "ask": "提问",
        "all_cities": "全部城市", "all_reports": "全部报告", "city": "城市", "report": "报告", "passages": "引文段数",
        "date_from": "起始日期", "date_to": "截止日期", "date_hint": "如 2024-09",
        "footer": "{n} 份报告，{p} 段。", "votes": "每段引文下的“有用 / 没用”会记下问题和那段引文，用来改进检索。",
        "panel": "添加或删除报告（仅限本机）", "panel_keyed": "添加或删除报告（需要密钥）",
        "key": "密钥（启动服务时的 --api-key；先填密钥，再选文件）",
        "locked_key": "没有更改：密钥不对或没有填写。", "locked_local": "没有更改：只能在本机添加或删除报告。",
        "panel_help": "上传一份报告（.txt、.md、.html、.pdf、.docx，或 .jsonl 合集）。标题和日期留空时从文件中读取；城市请填写。添加后即可就它提问。",
        "file": "报告文件", "add_title": "标题", "add_city": "城市", "add_date": "日期", "add_source": "来源",
        "replace": "替换我以前添加的同名报告", "add": "添加并建立索引", "result": "结果",
        "remove": "删除一份报告", "remove_btn": "删除…", "confirm_btn": "确认删除", "cancel_btn": "取消",
        "shipped": "随附报告", "added": "您添加的",
        "choose_file": "请先选择一个报告文件。", "choose_report": "请先选择要删除的报告。",
        "added_msg": "已添加《{title}》（{where}{n} 段），现在可以就它提问。共有 {total} 份报告。",
        "removed_added": "已删除您添加的《{title}》。共有 {total} 份报告。",
        "removed_shipped": "《{title}》是随附报告：它已不再被检索（文件保留，可以恢复）。共有 {total} 份报告。",
        "confirm_added": "确定删除您添加的《{title}》吗？删除后无法再就它提问。",
        "confirm_shipped": "《{title}》是随附报告。确定不再检索它吗？文件会保留，之后可以恢复。",
        "duplicate": "《{name}》已经添加过了。要更新它，请勾选“替换我以前添加的同名报告”后再添加；或先在下面删除旧的。",
        "refused": "没有添加：{e}", "not_removed": "没有删除：{e}",
        "last": "只检索最后一句：{s}", "offer": "也可以只检索最后一句（见输入框下方的按钮）。",
        "typed": "按原话检索：{s}",
        "thanks_up": "已记下：第 {r} 段有用。谢谢！", "thanks_down": "已记下：第 {r} 段没用。谢谢！",
        "vote_lost": "这条回答已过期，投票没有记下；请重新提问。",
    },
    "en": {
        "title": "# ReportQA · education reports", "placeholder": "Ask a question, or click an example below.",
        "box": "e.g. 长治市有多少所校外培训机构纳入了全国平台管理？", "ask": "Ask",
        "all_cities": "All cities", "all_reports": "All reports", "city": "City", "report": "Report", "passages": "Passages",
        "date_from": "From (date)", "date_to": "To (date)", "date_hint": "e.g. 2024-09",
        "footer": "{n} reports, {p} passages.", "votes": "“Useful / Not useful” under each passage records the question and that passage, to improve retrieval.",
        "panel": "Add or remove reports (local use)", "panel_keyed": "Add or remove reports (key required)",
        "key": "Key (the server's --api-key; type it before choosing the file)",
        "locked_key": "Nothing changed: the key is missing or wrong.",
        "locked_local": "Nothing changed: reports can be added or removed from this machine only.",
        "panel_help": "Upload a report (.txt, .md, .html, .pdf, .docx, or a .jsonl collection). Title and date are read from the file when left empty; please give the city. You can ask about it once it is added.",
        "file": "Report file", "add_title": "Title", "add_city": "City", "add_date": "Date", "add_source": "Source",
        "replace": "Replace a report I added before under the same name", "add": "Add and index", "result": "Result",
        "remove": "Remove a report", "remove_btn": "Remove…", "confirm_btn": "Yes, remove it", "cancel_btn": "Cancel",
        "shipped": "shipped", "added": "added by you",
        "choose_file": "Choose a report file first.", "choose_report": "Choose a report to remove first.",
        "added_msg": "Added ‘{title}’ ({where}{n} passage{ns}); you can ask about it now. The collection holds {total} reports.",
        "removed_added": "Removed ‘{title}’, which you had added. The collection holds {total} reports.",
        "removed_shipped": "‘{title}’ is a shipped report: it is no longer searched (its file stays and it can be restored). The collection holds {total} reports.",
        "confirm_added": "Remove ‘{title}’, which you added? You will no longer be able to ask about it.",
        "confirm_shipped": "‘{title}’ is a shipped report. Stop searching it? Its file stays, and it can be restored later.",
        "duplicate": "‘{name}’ was added before. To update it, tick “Replace a report I added before” and add it again, or remove the old one below first.",
        "refused": "Not added: {e}", "not_removed": "Not removed: {e}",
        "last": "Search only the last sentence: {s}", "offer": "You can search only its last sentence instead (the button under the box).",
        "typed": "Search the words as typed: {s}",
        "thanks_up": "Recorded: passage {r} is useful. Thank you!", "thanks_down": "Recorded: passage {r} is not useful. Thank you!",
        "vote_lost": "That answer has expired and the vote was not recorded; please ask again.",
    },
}  # fmt: skip


def page_text(lang: str, key: str, **kw) -> str:
    table = PAGE["en" if lang == "en" else "zh"]
    return table[key].format(**kw) if kw else table[key]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _is_added(index: ReportIndex, doc_id: str) -> bool:
    """A report added to this index (by `reportqa add` or the panel), not one of its sources."""
    col = getattr(index, "collection", None)
    if col is not None:
        return doc_id in col.added
    return index.docs[doc_id].path.startswith("added:")


def _choices(index: ReportIndex, lang: str = "en") -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The city and report filters' options: (label, value), "" for all."""
    docs = sorted(index.docs.values(), key=lambda d: (d.city, d.date, d.title))
    cities = [(page_text(lang, "all_cities"), "")] + [(c, c) for c in sorted({d.city for d in docs if d.city})]
    reports = [(page_text(lang, "all_reports"), "")] + [(f"{d.title} ({d.city})" if d.city else d.title, d.id) for d in docs]
    return cities, reports


def _removable(index: ReportIndex, lang: str = "en") -> list[tuple[str, str]]:
    """The "Remove" menu: every report, those added told apart from those shipped."""
    out = []
    for label, doc_id in _choices(index, lang)[1][1:]:
        kind = page_text(lang, "added" if _is_added(index, doc_id) else "shipped")
        out.append((f"{label} · {kind}", doc_id))
    return out


def earlier_questions(records, before: int) -> list[str]:
    """The questions asked before message `before` of the chat, oldest first: those of its answers'
    records (the browser keeps them with the conversation; anything but a string is skipped)."""
    out = []
    for key, record in (records or {}).items():
        try:
            at = int(key)
        except (TypeError, ValueError):
            continue
        question = record.get("question") if isinstance(record, dict) else None
        if at < before and isinstance(question, str):
            out.append((at, question))
    return [q for _, q in sorted(out)]


def last_sentence(question: str) -> str:
    """The last sentence of a long question (its last `MAX_QUESTION` characters at most)."""
    found = [m.group().strip() for m in _SENTENCE.finditer(question or "")]
    found = [s for s in found if s]
    return (found[-1] if found else (question or "").strip())[-MAX_QUESTION:]


class ChatUI:
    """The chat over a loaded `index`: handlers as methods, and `create_app()` to lay them out.

    Votes go to `feedback_path` (none are kept without one). With `index_dir`, an index rebuilt
    there by the CLI is picked up by the next search; with `add_panel` too, the page has a panel
    to add and remove reports (`launch` decides when). With `access` (the serve process's
    `api.Access`), each change from the panel must pass it as an API call would: with a key
    configured, the panel has a field for it and a change needs it; without, only a request
    from this machine (to a loopback Host) may change anything. Handlers take the page's
    language last (`"en"` unless given: their strings stay those callers know).
    """

    def __init__(self, index: ReportIndex, *, feedback_path: Path | str | None = None, settings: SearchSettings | None = None,
                 index_dir: Path | str | None = None, add_panel: bool = False, access: Access | None = None):  # fmt: skip
        self.settings = settings or SearchSettings()
        self.feedback = FeedbackStore(feedback_path) if feedback_path is not None else None
        self.live = LiveIndex(index, index_dir)
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self.add_panel = add_panel and self.index_dir is not None
        self.access = access

    @property
    def keyed(self) -> bool:
        """Whether changes from the panel need the key (one is configured)."""
        return bool(self.access is not None and self.access.keys)

    def refusal(self, key: str = "", request: gr.Request | None = None, lang: str = "en") -> str:
        """Why a change from the panel may not go on ("" when it may): the serve process's access rule."""
        if self.access is None:
            return ""
        client = request.client.host if request is not None and request.client else None
        host = request.headers.get("host") if request is not None else None
        key = (key or "").strip()
        if self.access.check(f"Bearer {key}" if key else None, client, host) is None:
            return ""
        return page_text(lang, "locked_key" if self.keyed else "locked_local")

    def upload_refusal(self, authorization: str | None, client: str | None, host: str | None) -> tuple[int, str] | None:
        """Why an upload to the page's file route may not be stored (status, message in both of the
        page's languages), None when it may: the panel's rule for a change, applied before a byte is
        written. Without the panel nothing is uploaded at all."""
        if not self.add_panel:
            return 403, ("这个服务不接受上传：添加报告的面板没有打开（在 127.0.0.1 上用 --index 启动，或加 --allow-add）。 / "
                         "This server takes no uploads: the panel to add reports is off (serve with --index DIR on 127.0.0.1, or add --allow-add).")  # fmt: skip
        if self.access is None:
            return None
        refused = self.access.check(authorization, client, host)
        if refused is None:
            return None
        if refused.status == 429:
            return 429, refused.message
        if self.keyed:
            return refused.status, ("上传报告需要密钥：先在面板的密钥框里填写，再选文件。 / "
                                    "Uploading a report needs the server's key: type it in the panel's key box, then choose the file.")  # fmt: skip
        return 403, "只能在本机上传报告。 / Reports can be uploaded from this machine only."

    # ------------------------------------------------------------------ asking

    def start(self, question, history, lang="en") -> tuple[str, list[dict], str]:
        """At once, before the search: (the emptied box, the history with the question and a "searching" line, the question)."""
        history = list(history or [])
        shown = prepare_question(question)[0] or tr(lang, "empty")
        history += [{"role": "user", "content": question_html(shown)}, {"role": "assistant", "content": searching_html(lang)}]
        return "", history, question if isinstance(question, str) else ""

    def finish(self, question, history, records, top_k, city, report, lang="en", date_from="", date_to="", *,
               as_typed=False) -> tuple:  # fmt: skip
        """The search: (the history with its last message the answer, the records to vote on, the
        "last sentence" button, that sentence, the "as typed" button, the question as typed).

        A follow-up is read with the earlier questions of the conversation (`earlier`); when it
        was rewritten, the answer says what was searched and the "as typed" button searches the
        words themselves (`as_typed`: no history). `date_from`/`date_to` keep the reports of those dates
        (and the undated ones, marked)."""
        history = list(history or [])
        records = dict(records or {})
        if not history or history[-1]["role"] != "assistant":  # called alone: the question is not shown yet
            history = self.start(question, history, lang)[1]
        filters = {"top_k": int(top_k or DEFAULT_TOP_K), "city": city or "", "doc_id": report or ""}
        dates = {k: v.strip() for k, v in (("date_from", date_from), ("date_to", date_to)) if isinstance(v, str) and v.strip()}
        filters |= dates
        index = self.live.get()  # one index for the whole answer, even if a new one is swapped in meanwhile
        cut = bool(prepare_question(question)[1])  # over MAX_QUESTION: searched cut, and the last sentence offered
        last = last_sentence(question) if cut else ""
        earlier = [] if as_typed else earlier_questions(records, len(history) - 1)
        try:
            ans = answer(index, question, history=earlier, top_k=filters["top_k"], city=filters["city"],
                         report=filters["doc_id"], settings=self.settings, **dates)  # fmt: skip
            # judged by the threshold its search used (none for an answer never searched, which has no passages)
            reply = format_answer(ans, index, lang=lang, threshold=ans.threshold, msg=len(history) - 1,
                                  offer=page_text(lang, "offer") if last else "")  # fmt: skip
        except ReportQAError as e:
            ans, reply = None, error_html(e, lang)
        history[-1] = {"role": "assistant", "content": reply}
        if ans is not None:
            records[len(history) - 1] = feedback_record(ans, filters)
        button = gr.update(visible=bool(last), value=page_text(lang, "last", s=_short(last)) if last else "")
        typed = ans.question if ans is not None and ans.rewritten else ""
        typed_button = gr.update(visible=bool(typed), value=page_text(lang, "typed", s=_short(typed)) if typed else "")
        return history, records, button, last, typed_button, typed

    def finish_as_typed(self, question, history, records, top_k, city, report, lang="en", date_from="", date_to="") -> tuple:
        """`finish` searching the words as typed, whatever came before (the "as typed" button)."""
        return self.finish(question, history, records, top_k, city, report, lang, date_from, date_to, as_typed=True)

    def respond(self, question, history, records, top_k, city, report, lang="en", date_from="", date_to="") -> tuple[str, list[dict], dict]:
        """A question from the chat in one step: (the emptied box, the history with question and answer, the records to vote on)."""
        box, history, _ = self.start(question, history, lang)
        history, records = self.finish(question, history, records, top_k, city, report, lang, date_from, date_to)[:2]
        return box, history, records

    def on_vote(self, payload, records, lang="en") -> str:
        """A thumb on one passage (`payload` "message:rank:vote[:nonce]" from the page's script):
        stored with the question and that passage; returns the acknowledgement."""
        try:
            msg, rank, vote = (int(x) for x in str(payload).split(":")[:3])
        except ValueError:
            return ""
        record = (records or {}).get(msg) or (records or {}).get(str(msg))
        if record is None or not 1 <= rank <= len(record.get("passages", [])) or vote not in (1, -1):
            return page_text(lang, "vote_lost")
        if self.feedback is not None:
            passage = record["passages"][rank - 1]
            self.feedback.add(record | {"passages": [passage], "filters": dict(record.get("filters", {}), passage=rank)}, vote)
        return page_text(lang, "thanks_up" if vote == 1 else "thanks_down", r=rank)

    def on_like(self, records, evt: gr.LikeData) -> None:
        """A thumb up or down (or its undo) on the whole answer at `evt.index`: stored with what was shown."""
        i = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        record = (records or {}).get(i)
        if record is not None and self.feedback is not None:
            self.feedback.add(record, vote_value(evt.liked))

    def api_ask(self, question: str, top_k: int = DEFAULT_TOP_K) -> dict:
        """The `ask` endpoint: passages answering `question` from the reports, the JSON object of
        `reportqa ask --json`. Its two inputs stay as they are (a raw HTTP call must send every input
        of an endpoint); `ask_followup` adds the history."""
        return self.api_ask_followup(question, top_k)

    def api_ask_followup(self, question: str, top_k: int = DEFAULT_TOP_K, history: list[str] | None = None) -> dict:
        """The `ask_followup` endpoint: `ask` with `history`, the earlier questions of the conversation,
        oldest first (a follow-up is read with them; the last 20 count). Its three inputs stay as they
        are; `ask_dated` adds the date filter."""
        return self.api_ask_dated(question, top_k, history)

    def api_ask_dated(self, question: str, top_k: int = DEFAULT_TOP_K, history: list[str] | None = None,
                      date_from: str = "", date_to: str = "") -> dict:  # fmt: skip
        """The `ask_dated` endpoint: `ask_followup` with the date filter, only reports dated from
        `date_from` to `date_to` (YYYY, YYYY-MM or YYYY-MM-DD; either may be empty; undated reports are
        kept and the notice says so). A bad date is an error naming the field."""
        try:
            top_k = DEFAULT_TOP_K if top_k is None else int(top_k)
        except (TypeError, ValueError, OverflowError):
            # gr.Error reaches the caller even with show_error=False; anything else arrives as {"error": null}
            raise gr.Error(f"top_k must be a whole number from 1 to {MAX_TOP_K}, not {top_k!r}") from None
        try:
            return answer(self.live.get(), question, history=history, top_k=top_k, date_from=date_from or "",
                          date_to=date_to or "", settings=self.settings).to_json()  # fmt: skip
        except (HistoryError, DateError) as e:
            raise gr.Error(str(e)) from None

    def on_report(self, lang="zh", request: gr.Request = None) -> dict:
        """The report view, above the chat, when the page's address asks for it (`?report=ID&passage=N`,
        the link of each citation): the report's text with that passage marked and, for a PDF, the page
        it is on; hidden otherwise."""
        params = getattr(request, "query_params", None) or {}
        doc_id = params.get("report") or ""
        if not doc_id:
            return gr.update(visible=False, value="")
        try:
            passage = int(params.get("passage") or "")
        except ValueError:
            passage = None
        index, build = self.live.current()  # together: the build folder is where that index keeps added PDFs
        return gr.update(visible=True, value=report_html(index, str(doc_id), passage, lang, build))

    def warm(self) -> None:
        """Load the model (and the ranking model) and run a first search, so that the first question is fast."""
        answer(self.live.get(), EXAMPLES[0], settings=self.settings)

    # ------------------------------------------------------------------ the conversation kept in the browser

    def saved(self, history, records, lang) -> dict:
        """What the browser keeps: the language and the last `KEPT_TURNS` questions with their answers and records."""
        history = list(history or [])
        cut = max(0, len(history) - 2 * KEPT_TURNS)
        kept = {str(int(k) - cut): v for k, v in (records or {}).items() if int(k) >= cut}
        if cut:  # the thumbs of the kept answers name their place in the chat: renumber them
            history = [m | {"content": _renumber(m["content"], cut)} for m in history[cut:]]
        return {"lang": lang if lang in ("zh", "en") else "zh", "history": history, "records": kept}

    def restore(self, stored) -> tuple[list[dict], dict, str]:
        """The conversation as the browser kept it: (history, records with their keys as numbers, language)."""
        stored = stored if isinstance(stored, dict) else {}
        history = [m for m in stored.get("history") or [] if isinstance(m, dict) and m.get("role") in ("user", "assistant")]
        records = {}
        for k, v in (stored.get("records") or {}).items():
            try:
                records[int(k)] = v
            except (TypeError, ValueError):
                continue
        lang = stored.get("lang") if stored.get("lang") in ("zh", "en") else "zh"
        # a "searching" line left by a reload during a search is no answer
        if history and "rq-searching" in str(history[-1].get("content", "")):
            history = history[:-2]
        return history, records, lang

    # ------------------------------------------------------------------ the filters and the footer

    def footer(self, index: ReportIndex, lang: str = "en") -> str:
        counts = page_text(lang, "footer", n=len(index.docs), p=len(index.chunks))
        return counts + (" " + page_text(lang, "votes") if self.feedback is not None else "")

    def reports_for(self, city, lang="en") -> dict:
        """The report filter once `city` is chosen: that city's reports only."""
        index = self.live.get()
        reports = _choices(index, lang)[1]
        return gr.update(choices=[c for c in reports if not c[1] or not city or index.docs[c[1]].city == city], value="")

    def on_load(self, stored=None) -> tuple:
        """A page (re)load shows the reports of the index now served (added from the CLI too), in the
        language chosen before; with `stored`, also the conversation the browser kept."""
        index = self.live.get()
        if stored is None:
            return self._refreshed(index)
        history, records, lang = self.restore(stored)
        return (*self._refreshed(index, lang), *self._texts(index, lang), history, records, lang)

    def _refreshed(self, index: ReportIndex, lang: str = "en") -> tuple:
        """Updates for the city and report filters, the footer and (with the panel) the "Remove" menu."""
        cities, reports = _choices(index, lang)
        outs = (gr.update(choices=cities, value=""), gr.update(choices=reports, value=""), self.footer(index, lang))
        return (*outs, gr.update(choices=_removable(index, lang), value=None)) if self.add_panel else outs

    def _texts(self, index: ReportIndex, lang: str) -> tuple:
        """The page's words in `lang`: title, intro, chat placeholder, box, button, filters' labels, panel."""
        t = lambda key: page_text(lang, key)  # noqa: E731
        outs = [
            gr.update(value=t("title")),
            gr.update(value=intro_html(index, lang)),
            gr.update(placeholder=t("placeholder")),
            gr.update(placeholder=t("box")),
            gr.update(value=t("ask")),
            gr.update(label=t("city")),
            gr.update(label=t("report")),
            gr.update(label=t("passages")),
        ]
        if self.add_panel:
            outs += [gr.update(label=t("panel_keyed" if self.keyed else "panel")), gr.update(value=t("panel_help")), gr.update(label=t("file")),
                     gr.update(label=t("add_title")), gr.update(label=t("add_city")), gr.update(label=t("add_date")),
                     gr.update(label=t("add_source")), gr.update(label=t("replace")), gr.update(value=t("add")),
                     gr.update(label=t("result")), gr.update(label=t("remove")), gr.update(value=t("remove_btn")),
                     gr.update(value=t("confirm_btn")), gr.update(value=t("cancel_btn"))]  # fmt: skip
            if self.keyed:
                outs.append(gr.update(label=t("key")))
        outs += [gr.update(label=t("date_from"), placeholder=t("date_hint")), gr.update(label=t("date_to"), placeholder=t("date_hint"))]
        return tuple(outs)

    def set_lang(self, lang, history, records) -> tuple:
        """The language switch: every word of the page in `lang`, the filters reset, the choice kept."""
        lang = lang if lang in ("zh", "en") else "zh"
        index = self.live.get()
        return (*self._refreshed(index, lang), *self._texts(index, lang), self.saved(history, records, lang))

    # ------------------------------------------------------------------ adding and removing reports

    def on_add(self, file, title, city, date, source, replace=False, lang="en", key="", request: gr.Request = None,
               progress=gr.Progress()) -> tuple:  # fmt: skip
        """The panel's "Add and index": (the one-line result, then updates of the filters, footer and menu)."""
        refused = self.refusal(key, request, lang)
        if refused:
            return refused, *[gr.update()] * 4
        if not file:
            return page_text(lang, "choose_file"), *[gr.update()] * 4
        progress(0, desc="reading the report")

        def step(done: int, total: int) -> None:
            progress((done, total), desc="embedding", unit="passages")

        meta = {"title": title, "city": city, "date": date, "source": source}
        try:
            change = self._change(changes.add, [Path(file)], meta, progress=step, replace=bool(replace))
        except ReportQAError as e:
            if "--replace" in str(e):  # the CLI's words for a report added before
                return page_text(lang, "duplicate", name=Path(file).stem), *[gr.update()] * 4
            return page_text(lang, "refused", e=e), *[gr.update()] * 4
        counts = change.index.passage_counts()
        total = len(change.index.docs)
        message = " ".join(
            page_text(lang, "added_msg", title=d.title or d.id, where=f"{d.city} · " if d.city else "", n=counts.get(d.id, 0),
                      ns="" if counts.get(d.id, 0) == 1 else "s", total=total)  # fmt: skip
            for d in change.docs
        )
        return message, *self._refreshed(self.live.index, lang)

    def ask_remove(self, doc_id, lang="en") -> tuple:
        """The panel's "Remove…": the question to confirm (and its buttons shown), or what to choose first."""
        index = self.live.get()
        if not doc_id or doc_id not in index.docs:
            return page_text(lang, "choose_report"), gr.update(visible=False)
        doc = index.docs[doc_id]
        key = "confirm_added" if _is_added(index, doc_id) else "confirm_shipped"
        return page_text(lang, key, title=doc.title or doc_id), gr.update(visible=True)

    def cancel_remove(self) -> tuple:
        return "", gr.update(visible=False)

    def on_remove(self, doc_id, lang="en", key="", request: gr.Request = None, progress=gr.Progress()) -> tuple:
        """The panel's confirmed removal: (the one-line result, then updates of the filters, footer and menu)."""
        refused = self.refusal(key, request, lang)
        if refused:
            return refused, *[gr.update()] * 4
        if not doc_id:
            return page_text(lang, "choose_report"), *[gr.update()] * 4
        progress(0, desc="updating the index")
        try:
            change = self._change(changes.remove, doc_id)
        except ReportQAError as e:
            return page_text(lang, "not_removed", e=e), *[gr.update()] * 4
        name = change.docs[0].title if change.docs else doc_id
        key = "removed_shipped" if change.kind == "corpus" else "removed_added"
        message = page_text(lang, key, title=name, total=len(change.index.docs))
        return message, *self._refreshed(self.live.index, lang)

    def _change(self, change, *args, progress=None, **kw) -> Change:
        """Run `changes.add` or `changes.remove` on the index folder and serve the index it saved;
        one change at a time, each reusing the vectors of the index being served."""
        if self.index_dir is None:
            raise ReportQAError("this server has no index folder to change: start it with `reportqa serve --index DIR`")
        live = self.live
        with live.lock:
            done = change(self.index_dir, *args, encoder=live.index.encoder, old=live.index, progress=progress, **kw)
            live.swap(done.index, done.update.path.name if done.update.path else live.build)
        return done

    # ------------------------------------------------------------------ the page

    def create_app(self) -> gr.Blocks:
        """Build (not launch) the chat page and the `/ask` API over these handlers."""
        index = self.live.index
        zh = lambda key: page_text("zh", key)  # noqa: E731
        cities, reports = _choices(index, "zh")
        with gr.Blocks(title="教育报告问答 · ReportQA", analytics_enabled=False) as app:
            with gr.Row(elem_id="rq-top", equal_height=True):
                title = gr.Markdown(zh("title"), elem_id="rq-title")
                lang = gr.Radio([("中文", "zh"), ("English", "en")], value="zh", show_label=False, container=False,
                                scale=0, min_width=230, elem_id="rq-lang")  # fmt: skip
            intro = gr.HTML(intro_html(index, "zh"), elem_id="rq-intro")
            report_view = gr.HTML("", visible=False, elem_id="rq-report-view")
            store = gr.BrowserState({"lang": "zh", "history": [], "records": {}}, storage_key="reportqa-chat")
            records = gr.State({})
            pending = gr.State("")
            last = gr.State("")
            chat = gr.Chatbot(
                label="Answers",
                show_label=False,
                height="62vh",
                layout="panel",
                autoscroll=False,  # SCROLL_JS shows each new answer from its top instead
                min_height=320,
                sanitize_html=True,
                render_markdown=False,  # our HTML is final: no Markdown pass may re-read report text
                line_breaks=False,
                feedback_options=None,  # the thumbs sit beside each passage (views.votes_html)
                buttons=["copy"],  # it copies the answer's plain text (ui_assets.HEAD)
                placeholder=zh("placeholder"),
                elem_id="rq-chat",
            )
            with gr.Row(equal_height=True):
                box = gr.Textbox(
                    show_label=False,
                    placeholder=zh("box"),
                    scale=5,
                    min_width=200,
                    max_lines=4,
                    submit_btn=False,
                    elem_id="rq-question",
                    autofocus=True,
                )
                ask_btn = gr.Button(zh("ask"), variant="primary", scale=1, min_width=80, elem_id="rq-ask")
            gr.HTML('<div id="rq-count" role="status" aria-live="polite"></div>', elem_id="rq-count-box")
            last_btn = gr.Button("", visible=False, size="sm", variant="secondary", elem_id="rq-last")
            typed = gr.State("")
            typed_btn = gr.Button("", visible=False, size="sm", variant="secondary", elem_id="rq-typed")
            with gr.Row(elem_id="rq-examples"):
                example_btns = [gr.Button(q, size="sm", variant="secondary", min_width=160) for q in EXAMPLES]
            with gr.Row():
                city = gr.Dropdown(cities, value="", label=zh("city"), min_width=140, elem_id="rq-city")
                report = gr.Dropdown(reports, value="", label=zh("report"), scale=2, min_width=220, elem_id="rq-report")
                date_from = gr.Textbox(label=zh("date_from"), placeholder=zh("date_hint"), max_lines=1, min_width=110,
                                       elem_id="rq-from")  # fmt: skip
                date_to = gr.Textbox(label=zh("date_to"), placeholder=zh("date_hint"), max_lines=1, min_width=110, elem_id="rq-to")
                top_k = gr.Slider(1, 10, value=DEFAULT_TOP_K, step=1, label=zh("passages"), min_width=160, elem_id="rq-topk")
            vote_box = gr.Textbox(show_label=False, container=False, elem_id="rq-vote-box", elem_classes=["rq-hidden"])
            vote_ack = gr.HTML("", elem_id="rq-vote-ack")
            panel_parts: list = []
            if self.add_panel:
                with gr.Accordion(zh("panel_keyed" if self.keyed else "panel"), open=False, elem_id="rq-add") as panel:
                    help_text = gr.Markdown(zh("panel_help"))
                    # Beyond this machine a change needs the server's key; it stays in this page, never in the browser's storage.
                    key_box = gr.Textbox(label=zh("key"), type="password", visible=self.keyed, elem_id="rq-add-key")
                    upload = gr.File(label=zh("file"), file_types=UPLOAD_TYPES, type="filepath", elem_id="rq-add-file")
                    with gr.Row():
                        add_title = gr.Textbox(label=zh("add_title"), elem_id="rq-add-title", min_width=200, scale=2)
                        add_city = gr.Textbox(label=zh("add_city"), elem_id="rq-add-city", min_width=100)
                        add_date = gr.Textbox(label=zh("add_date"), placeholder="2024-04-18", elem_id="rq-add-date", min_width=100)
                        add_source = gr.Textbox(label=zh("add_source"), elem_id="rq-add-source", min_width=140)
                    replace = gr.Checkbox(False, label=zh("replace"), elem_id="rq-add-replace")
                    add_btn = gr.Button(zh("add"), variant="primary", elem_id="rq-add-button")
                    add_result = gr.Textbox(label=zh("result"), interactive=False, elem_id="rq-add-result")
                    with gr.Row(equal_height=False):
                        to_remove = gr.Dropdown(_removable(index, "zh"), value=None, label=zh("remove"), scale=3,
                                                min_width=220, elem_id="rq-remove")  # fmt: skip
                        remove_btn = gr.Button(zh("remove_btn"), variant="secondary", size="md", scale=1, min_width=80,
                                               elem_id="rq-remove-button")  # fmt: skip
                    with gr.Row(visible=False, elem_id="rq-confirm") as confirm_row:
                        confirm_btn = gr.Button(zh("confirm_btn"), variant="stop", elem_id="rq-confirm-button")
                        cancel_btn = gr.Button(zh("cancel_btn"), variant="secondary", elem_id="rq-cancel-button")
                panel_parts = [panel, help_text, upload, add_title, add_city, add_date, add_source, replace, add_btn,
                               add_result, to_remove, remove_btn, confirm_btn, cancel_btn] + ([key_box] if self.keyed else [])  # fmt: skip
            footer = gr.Markdown(self.footer(index, "zh"), elem_id="rq-footer")

            ui = {"concurrency_limit": CONCURRENCY, "concurrency_id": "search", "api_visibility": "private"}
            now = {"queue": False, "api_visibility": "private"}
            keep = {"api_visibility": "private"}
            finish_in = [pending, chat, records, top_k, city, report, lang, date_from, date_to]
            finish_out = [chat, records, last_btn, last, typed_btn, typed]

            def asked(trigger_fn, *args, finish=self.finish):
                return (
                    trigger_fn(*args, **now)
                    .then(finish, finish_in, finish_out, **ui)
                    .then(self.saved, [chat, records, lang], [store], **keep)
                    .then(None, js=SCROLL_JS)
                )

            asked(box.submit, self.start, [box, chat, lang], [box, chat, pending])
            asked(ask_btn.click, self.start, [box, chat, lang], [box, chat, pending])
            asked(last_btn.click, lambda q, h, lg: self.start(q, h, lg), [last, chat, lang], [box, chat, pending])
            asked(typed_btn.click, lambda q, h, lg: self.start(q, h, lg), [typed, chat, lang], [box, chat, pending],
                  finish=self.finish_as_typed)  # fmt: skip
            for btn, q in zip(example_btns, EXAMPLES, strict=True):
                asked(btn.click, lambda h, lg, q=q: self.start(q, h, lg), [chat, lang], [box, chat, pending])
            vote_box.change(self.on_vote, [vote_box, records, lang], [vote_ack], **keep)
            chat.clear(lambda lg: ({}, self.saved([], {}, lg)), [lang], [records, store], **keep)
            city.change(self.reports_for, [city, lang], [report], **keep)
            refresh = [city, report, footer]
            texts = [title, intro, chat, box, ask_btn, city, report, top_k]
            if self.add_panel:
                refresh.append(to_remove)
                texts += panel_parts
                change = {"concurrency_limit": 1, "concurrency_id": "add", "api_visibility": "private"}
                add_btn.click(self.on_add, [upload, add_title, add_city, add_date, add_source, replace, lang, key_box],
                              [add_result, *refresh], **change)  # fmt: skip
                remove_btn.click(self.ask_remove, [to_remove, lang], [add_result, confirm_row], **keep)
                cancel_btn.click(self.cancel_remove, None, [add_result, confirm_row], **keep)
                confirm_btn.click(lambda: gr.update(visible=False), None, [confirm_row], **keep).then(
                    self.on_remove, [to_remove, lang, key_box], [add_result, *refresh], **change
                )
            texts += [date_from, date_to]
            lang.input(self.set_lang, [lang, chat, records], [*refresh, *texts, store], **keep).then(
                None, [lang], None, js=LANG_JS
            ).then(self.on_report, [lang], [report_view], **keep)
            app.load(self.on_load, [store], [*refresh, *texts, chat, records, lang], **keep).then(None, [lang], None, js=LANG_JS).then(
                self.on_report, [lang], [report_view], **keep
            ).then(None, js=REPORT_JS)
            gr.api(self.api_ask, api_name="ask", concurrency_limit=CONCURRENCY, concurrency_id="search")
            gr.api(self.api_ask_followup, api_name="ask_followup", concurrency_limit=CONCURRENCY, concurrency_id="search")
            gr.api(self.api_ask_dated, api_name="ask_dated", concurrency_limit=CONCURRENCY, concurrency_id="search")
        app.queue(max_size=64, default_concurrency_limit=CONCURRENCY)
        app.chat = self  # for callers and tests: the handlers,
        app.feedback = self.feedback  # where the votes go
        app.live = self.live  # and the index being searched
        return app


class _UploadGate:
    """Plain ASGI middleware in front of the page's file route (`/gradio_api/upload`): an upload
    goes on only when the panel would accept the change it is for (`ChatUI.upload_refusal`), so
    that nobody without the key fills the server's disk. The page sends the key typed in the
    panel as `Authorization: Bearer KEY` (ui_assets)."""

    def __init__(self, app, chat: ChatUI):
        self.app = app
        self.chat = chat

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").rstrip("/").endswith(UPLOAD_ROUTE):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
            client = (scope.get("client") or (None, None))[0]
            refused = self.chat.upload_refusal(headers.get("authorization"), client, headers.get("host"))
            if refused is not None:
                from starlette.responses import PlainTextResponse

                status, message = refused  # plain text: the page shows it as it comes ("HTTP 401: ...")
                await PlainTextResponse(message, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def bound_queue(blocks: gr.Blocks, sessions: int) -> None:
    """Gradio's event queue keeps the timings of the last 10,000 events (for its monitoring page; each
    call of the HTTP API is one): kept to `sessions` here. Its per-session message queues are left to
    `_SessionPruner`: lowering their own limit would drop the queues of busy sessions too."""
    queue = getattr(blocks, "_queue", None)
    if isinstance(getattr(queue, "ANALYTICS_MAX_EVENTS", None), int):
        queue.ANALYTICS_MAX_EVENTS = min(queue.ANALYTICS_MAX_EVENTS, sessions)


class _SessionPruner:
    """Plain ASGI middleware that forgets the sessions Gradio's queue keeps and nobody will read. Each
    call of the HTTP API is a new session, and the queue keeps, per session, a message queue (the last
    2,000 sessions by creation, busy or not: the 2,001st new one drops the oldest even while its event
    waits, which stops the whole queue) and the set of its events still to report, emptied and never
    dropped (so the dict grows by one entry a call for good, and the route fetching a finished call's
    result scans it).

    Past `sessions` entries in either, a sweep drops from both every session with no event queued or
    running (nor one Gradio still holds, its run's bookkeeping not done) that is idle (nothing to
    report), has no message queue left (nothing to fetch), or was abandoned: its results unfetched
    `grace` seconds after a sweep first saw them finished (a client that posts calls and never fetches
    them kept each session for good). A new event of such a session makes them again, as a new
    session's does. Below `sessions` entries nothing is dropped, and an unfetched result waits.

    Fetching a result (`GET /gradio_api/call/API_NAME/EVENT_ID`, `FETCH_ROUTE`) whose event the queue
    neither holds nor has still to report (unknown, already fetched, or dropped here) is answered a
    plain 404 with a JSON `detail`, after the request's sweep and without awaiting in between, so
    that the answer is what Gradio's route would see; Gradio itself would send an `error` event and
    cut the stream, or (a result fetched before) stream only heartbeats. Every other request, and
    the fetch of an event queued, running or finished and unfetched, goes on to Gradio unchanged.

    A sweep runs when the dicts pass the limit (which doubles while most entries must stay) and, past
    `sessions`, when the first session kept for its results is due, so that a burst of abandoned calls
    goes once the dicts stop growing: each holds about twice the larger of `sessions` and the calls
    of the last one or two `grace` periods (the message queues at most Gradio's 2,000). A sweep never
    awaits, so nothing else runs in the event loop while it does; between sweeps a request costs two
    lengths and a clock read, and a result's fetch a look through the sessions."""

    def __init__(self, app, blocks: gr.Blocks, sessions: int, grace: float = UNFETCHED_S):
        self.app = app
        self.blocks = blocks
        self.limit = self.floor = sessions
        self.grace = grace
        self.seen: dict[str, float] = {}  # event id -> when a sweep first saw it finished and unfetched
        self.due = float("inf")  # when the first session kept for those is `grace` old

    async def __call__(self, scope, receive, send):
        queue = getattr(self.blocks, "_queue", None)
        self.sweep(queue)
        if scope["type"] == "http" and scope.get("method") == "GET":
            fetch = FETCH_ROUTE.fullmatch(scope.get("path", ""))
            if fetch and not self.fetchable(queue, fetch["event_id"]):
                from starlette.responses import JSONResponse

                wait = f"{self.grace / 60:g} minutes" if self.grace >= 60 else f"{self.grace:g} seconds"
                detail = (
                    f"no call {fetch['event_id']} to fetch: unknown, already fetched, or expired"
                    f" (unfetched results wait at least {wait}; see README)"
                )
                await JSONResponse({"detail": detail}, status_code=404)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def fetchable(queue, event_id: str) -> bool:
        """Whether Gradio's queue knows `event_id`: held (queued, running, its run's bookkeeping not
        done) or finished with its result still to report. The scan over sessions is Gradio's own
        (its fetch route does the same) and bounded by the sweeps. Another Gradio without these
        attributes: left to it."""
        held = getattr(queue, "event_ids_to_events", None)
        pending = getattr(queue, "pending_event_ids_session", None)
        if not isinstance(held, dict) or not isinstance(pending, dict):
            return True
        return event_id in held or any(event_id in ids for ids in pending.values())

    def sweep(self, queue, now: float | None = None) -> None:
        pending = getattr(queue, "pending_event_ids_session", None)
        messages = getattr(queue, "pending_messages_per_session", None)
        if not isinstance(pending, dict) or not isinstance(messages, dict):
            return
        size = max(len(pending), len(messages))
        if size <= self.limit and size <= self.floor:
            return
        now = time.monotonic() if now is None else now
        if size <= self.limit and now < self.due:
            return
        busy = set()
        for waiting in getattr(queue, "event_queue_per_concurrency_id", {}).values():
            busy.update(e.session_hash for e in getattr(waiting, "queue", ()))
        for jobs in getattr(queue, "active_jobs", ()):
            busy.update(e.session_hash for e in jobs or ())
        held = getattr(queue, "event_ids_to_events", {})  # from the push until the run's bookkeeping is done
        seen, self.seen, self.due = self.seen, {}, float("inf")
        for session in [*pending, *(s for s in messages if s not in pending)]:
            ids = pending.get(session) or ()
            if session in busy or any(i in held for i in ids):
                continue
            if ids and session in messages:  # finished, its results waiting to be fetched
                first = {i: seen.get(i, now) for i in ids}
                due = max(first.values()) + self.grace
                if now < due:
                    self.seen.update(first)
                    self.due = min(self.due, due)
                    continue
            pending.pop(session, None)
            messages.pop(session, None)
        # many sessions kept: the next sweep on size waits until there are twice as many
        self.limit = max(self.floor, 2 * max(len(pending), len(messages)))


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[:n] + "…"


def _renumber(content: str, cut: int) -> str:
    """The thumbs of a kept answer, their message numbers shifted by `cut` (older turns dropped)."""
    return re.sub(r"rq-m-(\d+) ", lambda m: f"rq-m-{int(m.group(1)) - cut} ", content)


def create_app(index: ReportIndex, *, feedback_path: Path | str | None = None, settings: SearchSettings | None = None,
               index_dir: Path | str | None = None, add_panel: bool = False) -> gr.Blocks:  # fmt: skip
    """Build (not launch) the chat UI and the `/ask` API over a loaded `index` (see `ChatUI`)."""
    return ChatUI(index, feedback_path=feedback_path, settings=settings, index_dir=index_dir, add_panel=add_panel).create_app()


def serve_app(chat: ChatUI, blocks: gr.Blocks, *, host: str = "127.0.0.1", port: int = 7860,
              sessions: int = SESSIONS) -> FastAPI:  # fmt: skip
    """The one app of the serve process: the JSON API (`/api/v1`, `/healthz`, its schema and docs
    page) and MCP over streamable HTTP (`/mcp`), both under `chat.access`, with the chat `blocks`
    mounted at "/" behind them. At most `sessions` chat sessions keep their state in memory, Gradio's
    queue the timings of as many events, and about as many idle sessions' queues (`bound_queue`,
    `_SessionPruner`)."""
    app = create_api(chat.live.get, settings=chat.settings, access=chat.access, mcp=True)
    blocks.state_session_capacity = sessions  # read when the chat is mounted
    bound_queue(blocks, sessions)
    app.add_middleware(_UploadGate, chat=chat)
    app.add_middleware(_SessionPruner, blocks=blocks, sessions=sessions, grace=UNFETCHED_S)
    gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        server_name=host,
        server_port=port,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,  # ours is at /mcp
        max_file_size="100mb" if chat.add_panel else "1mb",  # an uploaded report; nothing else is uploaded
        css=CSS,
        head=HEAD,
        theme=gr.themes.Default(primary_hue="blue", font=FONTS).set(**theme_colours()),
    )
    return app


def launch(
    index: ReportIndex,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    feedback_path: Path | str | None = None,
    settings: SearchSettings | None = None,
    index_dir: Path | str | None = None,
    allow_add: bool = False,
    api_key: str | None = None,
    sessions: int = SESSIONS,
    block: bool = True,
    echo: Callable[[str], None] = print,
) -> gr.Blocks:
    """Serve the chat, the JSON API and MCP on one port (`serve_app`): no share link, no extra file
    paths served; the model loaded and a first search run before the server says it is ready, so
    that the first question is as fast as the next.

    Bound to a loopback `host` (the default) and without `api_key`, the API and MCP answer this
    machine only. With `api_key`, every API and MCP call needs `Authorization: Bearer KEY`; bound
    to any other address, `api_key` is required (`api.BindRefused` otherwise). The panel to add
    and remove reports (which needs `index_dir`) is offered on a loopback host, or with
    `allow_add`; with a key configured it asks for it, without one it accepts changes from this
    machine only. `index_dir` is watched for indexes the CLI rebuilds either way.
    `block=False` returns once the server runs (tests); close it with `app.close()`.
    """
    check_bind(host, api_key)
    access = Access(api_key, require_key=bool(api_key))
    add_panel = index_dir is not None and (allow_add or is_loopback(host))
    chat = ChatUI(index, feedback_path=feedback_path, settings=settings, index_dir=index_dir, add_panel=add_panel,
                  access=access)  # fmt: skip
    blocks = chat.create_app()
    chat.warm()
    app = serve_app(chat, blocks, host=host, port=port, sessions=sessions)
    try:
        server = start_server(app, host, port)
    except RuntimeError as e:
        raise ReportQAError(f"could not serve on {host}:{port} ({e}); choose another with --port") from None
    # `blocks.close()` stops this server, as it stops one Gradio launched itself.
    blocks.server_app = blocks.app = next(r.app for r in app.routes if isinstance(r, Mount) and r.path == "")
    blocks.server, blocks.server_name, blocks.server_port, blocks.local_url = server, host, port, server.url + "/"
    if block:
        base = server.url
        echo(f"reportqa: serving {len(index.docs)} reports on {base}/\n"
             f"  chat       {base}/\n"
             f"  JSON API   {base}{PREFIX}/ask  (docs {base}{PREFIX}/docs)\n"
             f"  MCP        {base}/mcp  (streamable HTTP)\n"
             + ("  API and MCP need `Authorization: Bearer KEY` (the --api-key given)" if api_key
                else "  API and MCP answer this machine only (no key)"))  # fmt: skip
        try:
            while server.thread.is_alive():
                server.thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            blocks.close(verbose=False)
    return blocks
