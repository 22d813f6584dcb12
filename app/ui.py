"""The web chat and the `ask` API (Gradio), over an index that is already loaded.

`ChatUI(index)` holds what the chat needs (the `LiveIndex` it searches, the feedback store,
the search settings) and its handlers, plain methods that Gradio calls and tests call
directly; `ChatUI.create_app()` (or `create_app(index)`) lays them out as Blocks without
launching them, and `launch()` serves them on 127.0.0.1 with no public link. Answering is
`answer.answer`, as for the CLI; the HTML is `views.py`; adding and removing a report is
`changes.add` / `changes.remove`, offered in a panel when serving on this machine only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from . import changes
from .answer import DEFAULT_TOP_K, MAX_TOP_K, answer, prepare_question
from .errors import ReportQAError
from .feedback import FeedbackStore, feedback_record, vote_value
from .index import SearchSettings
from .live import LiveIndex
from .ui_assets import CSS, FONTS, HEAD, SCROLL_JS
from .views import error_html, format_answer, question_html

if TYPE_CHECKING:
    from .changes import Change
    from .index import ReportIndex

CONCURRENCY = 4  # searches run at once; the index is read-only, so they do not interfere
# Sessions whose state the server keeps (Gradio's default is 10,000). Every call of the HTTP API is a
# new session holding ~45 KB, so the default let memory grow by ~0.5 GB under API load; a chat tab
# idle while this many other sessions come and go loses the votes on its earlier answers.
SESSIONS = 1000
EXAMPLES = [
    "长治市有多少所校外培训机构纳入了全国平台管理？",
    "How many full-time teachers does Lüliang have?",
    "忻州學前教育毛入園率是多少",
    "吕梁老师坐公交要钱吗？",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}  # where the "Add or remove reports" panel is offered
UPLOAD_TYPES = [".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".jsonl"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _choices(index: ReportIndex) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The city and report filters' options: (label, value), "" for all."""
    docs = sorted(index.docs.values(), key=lambda d: (d.city, d.date, d.title))
    cities = [("All cities", "")] + [(c, c) for c in sorted({d.city for d in docs if d.city})]
    reports = [("All reports", "")] + [(f"{d.title} ({d.city})" if d.city else d.title, d.id) for d in docs]
    return cities, reports


class ChatUI:
    """The chat over a loaded `index`: handlers as methods, and `create_app()` to lay them out.

    Votes go to `feedback_path` (none are kept without one). With `index_dir`, an index rebuilt
    there by the CLI is picked up by the next search; with `add_panel` too, the page has a panel
    to add and remove reports (`launch` asks for it on a loopback host only).
    """

    def __init__(self, index: ReportIndex, *, feedback_path: Path | str | None = None, settings: SearchSettings | None = None,
                 index_dir: Path | str | None = None, add_panel: bool = False):  # fmt: skip
        self.settings = settings or SearchSettings()
        self.feedback = FeedbackStore(feedback_path) if feedback_path is not None else None
        self.live = LiveIndex(index, index_dir)
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self.add_panel = add_panel and self.index_dir is not None

    # ------------------------------------------------------------------ asking

    def respond(self, question, history, records, top_k, city, report) -> tuple[str, list[dict], dict]:
        """A question from the chat: (the emptied box, the history with question and answer, the records to vote on)."""
        history = list(history or [])
        records = dict(records or {})
        filters = {"top_k": int(top_k or DEFAULT_TOP_K), "city": city or "", "doc_id": report or ""}
        index = self.live.get()  # one index for the whole answer, even if a new one is swapped in meanwhile
        try:
            ans = answer(index, question, top_k=filters["top_k"], city=filters["city"], report=filters["doc_id"],
                         settings=self.settings)  # fmt: skip
            reply = format_answer(ans, index)
        except ReportQAError as e:
            ans, reply = None, error_html(e)
        shown = prepare_question(question)[0] or "(empty question)"
        history += [{"role": "user", "content": question_html(shown)}, {"role": "assistant", "content": reply}]
        if ans is not None:
            records[len(history) - 1] = feedback_record(ans, filters)
        return "", history, records

    def on_like(self, records, evt: gr.LikeData) -> None:
        """A thumb up or down (or its undo) on the answer at `evt.index`: stored with what was shown."""
        i = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        record = (records or {}).get(i)
        if record is not None and self.feedback is not None:
            self.feedback.add(record, vote_value(evt.liked))

    def api_ask(self, question: str, top_k: int = DEFAULT_TOP_K) -> dict:
        """Passages answering `question` from the reports: the JSON object of `reportqa ask --json`."""
        try:
            top_k = DEFAULT_TOP_K if top_k is None else int(top_k)
        except (TypeError, ValueError, OverflowError):
            # gr.Error reaches the caller even with show_error=False; anything else arrives as {"error": null}
            raise gr.Error(f"top_k must be a whole number from 1 to {MAX_TOP_K}, not {top_k!r}") from None
        return answer(self.live.get(), question, top_k=top_k, settings=self.settings).to_json()

    # ------------------------------------------------------------------ the filters and the footer

    def footer(self, index: ReportIndex) -> str:
        votes = " The thumbs under an answer record the question and the passages shown, to improve retrieval."
        return f"{len(index.docs)} reports, {len(index.chunks)} passages." + (votes if self.feedback is not None else "")

    def reports_for(self, city) -> dict:
        """The report filter once `city` is chosen: that city's reports only."""
        index = self.live.get()
        return gr.update(
            choices=[c for c in _choices(index)[1] if not c[1] or not city or index.docs[c[1]].city == city], value=""
        )

    def on_load(self) -> tuple:
        """A page (re)load shows the reports of the index now served, added from the CLI too."""
        return self._refreshed(self.live.get())

    def _refreshed(self, index: ReportIndex) -> tuple:
        """Updates for the city and report filters, the footer and (with the panel) the "Remove" menu."""
        cities, reports = _choices(index)
        outs = (gr.update(choices=cities, value=""), gr.update(choices=reports, value=""), self.footer(index))
        return (*outs, gr.update(choices=reports[1:], value=None)) if self.add_panel else outs

    # ------------------------------------------------------------------ adding and removing reports

    def on_add(self, file, title, city, date, source, progress=gr.Progress()) -> tuple:
        """The panel's "Add and index": (the one-line result, then updates of the filters, footer and menu)."""
        if not file:
            return "Choose a report file first.", *[gr.update()] * 4
        progress(0, desc="reading the report")

        def step(done: int, total: int) -> None:
            progress((done, total), desc="embedding", unit="passages")

        meta = {"title": title, "city": city, "date": date, "source": source}
        try:
            change = self._change(changes.add, [Path(file)], meta, progress=step)
        except ReportQAError as e:
            return str(e), *[gr.update()] * 4
        counts = change.index.passage_counts()
        added = ", ".join(f"{d.title} ({d.id}): {_plural(counts.get(d.id, 0), 'passage')}" for d in change.docs)
        message = f"added {added}; {change.update.embedded} embedded, {change.update.reused} reused"
        return message, *self._refreshed(self.live.index)

    def on_remove(self, doc_id, progress=gr.Progress()) -> tuple:
        """The panel's "Remove": (the one-line result, then updates of the filters, footer and menu)."""
        if not doc_id:
            return "Choose a report to remove first.", *[gr.update()] * 4
        progress(0, desc="updating the index")
        try:
            change = self._change(changes.remove, doc_id)
        except ReportQAError as e:
            return str(e), *[gr.update()] * 4
        name = f"{change.docs[0].title} ({doc_id})" if change.docs else doc_id
        note = "; a shipped report, listed as removed" if change.kind == "corpus" else ""
        message = f"removed {name}{note}; the index holds {_plural(len(change.index.docs), 'report')}"
        return message, *self._refreshed(self.live.index)

    def _change(self, change, *args, progress=None) -> Change:
        """Run `changes.add` or `changes.remove` on the index folder and serve the index it saved;
        one change at a time, each reusing the vectors of the index being served."""
        if self.index_dir is None:
            raise ReportQAError("this server has no index folder to change: start it with `reportqa serve --index DIR`")
        live = self.live
        with live.lock:
            done = change(self.index_dir, *args, encoder=live.index.encoder, old=live.index, progress=progress)
            live.swap(done.index, done.update.path.name if done.update.path else live.build)
        return done

    # ------------------------------------------------------------------ the page

    def create_app(self) -> gr.Blocks:
        """Build (not launch) the chat page and the `/ask` API over these handlers."""
        index = self.live.index
        cities, reports = _choices(index)
        with gr.Blocks(title="ReportQA · 教育报告问答", analytics_enabled=False) as app:
            gr.Markdown(
                "# ReportQA · 教育报告问答\n"
                "Ask about the regional education reports in simplified or traditional Chinese or in English. "
                "Answers are passages quoted from the reports, with their sources; nothing is generated.",
                elem_id="rq-title",
            )
            records = gr.State({})
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
                feedback_options=("Like", "Dislike") if self.feedback is not None else None,
                buttons=["copy"],
                placeholder="Ask a question, or click an example below.",
                elem_id="rq-chat",
            )
            with gr.Row(equal_height=True):
                box = gr.Textbox(
                    show_label=False,
                    placeholder="e.g. 长治市有多少所校外培训机构纳入了全国平台管理？",
                    scale=5,
                    min_width=200,
                    max_lines=4,
                    submit_btn=False,
                    elem_id="rq-question",
                    autofocus=True,
                )
                ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="rq-ask")
            with gr.Row(elem_id="rq-examples"):
                example_btns = [gr.Button(q, size="sm", variant="secondary", min_width=160) for q in EXAMPLES]
            with gr.Row():
                city = gr.Dropdown(cities, value="", label="City", min_width=140, elem_id="rq-city")
                report = gr.Dropdown(reports, value="", label="Report", scale=2, min_width=220, elem_id="rq-report")
                top_k = gr.Slider(1, 10, value=DEFAULT_TOP_K, step=1, label="Passages", min_width=160, elem_id="rq-topk")
            if self.add_panel:
                with gr.Accordion("Add or remove reports (local use)", open=False, elem_id="rq-add"):
                    gr.Markdown(
                        "A .txt, .md, .html, .pdf or .docx report (or a .jsonl corpus). Title and date are read from the "
                        "document when left empty; the city is guessed from its text. It is searchable once indexed."
                    )
                    upload = gr.File(label="Report file", file_types=UPLOAD_TYPES, type="filepath", elem_id="rq-add-file")
                    with gr.Row():
                        add_title = gr.Textbox(label="Title", elem_id="rq-add-title", min_width=200, scale=2)
                        add_city = gr.Textbox(label="City", elem_id="rq-add-city", min_width=100)
                        add_date = gr.Textbox(label="Date", placeholder="2024-04-18", elem_id="rq-add-date", min_width=100)
                        add_source = gr.Textbox(label="Source", elem_id="rq-add-source", min_width=140)
                    add_btn = gr.Button("Add and index", variant="primary", elem_id="rq-add-button")
                    add_result = gr.Textbox(label="Result", interactive=False, elem_id="rq-add-result")
                    with gr.Row(equal_height=False):
                        to_remove = gr.Dropdown(
                            reports[1:], value=None, label="Remove a report", scale=3, min_width=220, elem_id="rq-remove"
                        )
                        remove_btn = gr.Button(
                            "Remove", variant="stop", size="md", scale=1, min_width=80, elem_id="rq-remove-button"
                        )
            footer = gr.Markdown(self.footer(index), elem_id="rq-footer")

            ui = {"concurrency_limit": CONCURRENCY, "concurrency_id": "search", "api_visibility": "private"}
            inputs = [box, chat, records, top_k, city, report]
            outputs = [box, chat, records]
            box.submit(self.respond, inputs, outputs, **ui).then(None, js=SCROLL_JS)
            ask_btn.click(self.respond, inputs, outputs, **ui).then(None, js=SCROLL_JS)
            for btn, q in zip(example_btns, EXAMPLES, strict=True):
                btn.click(lambda *a, q=q: self.respond(q, *a), inputs[1:], outputs, **ui).then(None, js=SCROLL_JS)
            if self.feedback is not None:
                chat.like(self.on_like, [records], None, api_visibility="private")
            chat.clear(lambda: {}, None, [records], api_visibility="private")
            city.change(self.reports_for, [city], [report], api_visibility="private")
            refresh = [city, report, footer]
            if self.add_panel:
                refresh.append(to_remove)
                change = {"concurrency_limit": 1, "concurrency_id": "add", "api_visibility": "private"}
                add_btn.click(self.on_add, [upload, add_title, add_city, add_date, add_source], [add_result, *refresh], **change)
                remove_btn.click(self.on_remove, [to_remove], [add_result, *refresh], **change)
            app.load(self.on_load, None, refresh, api_visibility="private")
            gr.api(self.api_ask, api_name="ask", concurrency_limit=CONCURRENCY, concurrency_id="search")
        app.queue(max_size=64, default_concurrency_limit=CONCURRENCY)
        app.chat = self  # for callers and tests: the handlers,
        app.feedback = self.feedback  # where the votes go
        app.live = self.live  # and the index being searched
        return app


def create_app(index: ReportIndex, *, feedback_path: Path | str | None = None, settings: SearchSettings | None = None,
               index_dir: Path | str | None = None, add_panel: bool = False) -> gr.Blocks:  # fmt: skip
    """Build (not launch) the chat UI and the `/ask` API over a loaded `index` (see `ChatUI`)."""
    return ChatUI(index, feedback_path=feedback_path, settings=settings, index_dir=index_dir, add_panel=add_panel).create_app()


def launch(
    index: ReportIndex,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    feedback_path: Path | str | None = None,
    settings: SearchSettings | None = None,
    index_dir: Path | str | None = None,
    allow_add: bool = False,
    sessions: int = SESSIONS,
    block: bool = True,
) -> gr.Blocks:
    """Serve the app locally: no share link, no extra file paths served, the model already loaded in `index`.

    The panel to add and remove reports (which needs `index_dir`) is offered only on a loopback
    `host`, unless `allow_add`; `index_dir` is watched for indexes the CLI rebuilds either way.
    At most `sessions` sessions keep their state in memory.
    `block=False` returns once the server runs (tests); close it with `app.close()`.
    """
    add_panel = index_dir is not None and (allow_add or host in LOCAL_HOSTS)
    app = create_app(index, feedback_path=feedback_path, settings=settings, index_dir=index_dir, add_panel=add_panel)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=not block,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        state_session_capacity=sessions,
        max_file_size="100mb",  # an uploaded report
        css=CSS,
        head=HEAD,
        theme=gr.themes.Default(primary_hue="blue", font=FONTS),
        quiet=not block,
    )
    return app
