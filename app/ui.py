"""The web chat UI and the `ask` API (Gradio), over an index that is already loaded.

`create_app(index)` builds the Blocks without launching them; `launch()` serves them on
127.0.0.1 with no public link. Turning an `Answer` into chat HTML is done by the pure
functions `format_answer` and `context_html`; every piece of report or question text goes
through `html.escape` there, and the chatbot sanitises on top of that.
Thumbs up/down land in a SQLite file through `FeedbackStore`. Served on this machine only,
the app also has an "Add a report" panel: `add_report` stores the file in the collection,
rebuilds the index (embedding only the new passages) and swaps it into the `LiveIndex`
every handler searches.
"""

from __future__ import annotations

import html
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from .cli import default_data, passage_counts, prepare_question
from .errors import ReportQAError
from .index import SearchSettings
from .records import Answer, Hit

if TYPE_CHECKING:
    from .collection import Collection
    from .index import ReportIndex

DEFAULT_TOP_K = 5
MAX_TOP_K = 50  # as `reportqa ask --top-k`
POOL = 200  # passages searched before the city/report filters keep the matching ones
CONCURRENCY = 4  # searches run at once; the index is read-only, so they do not interfere
# Sessions whose state the server keeps (Gradio's default is 10,000). Every call of the HTTP API is a
# new session holding ~45 KB, so the default let memory grow by ~0.5 GB under API load; a chat tab
# idle while this many other sessions come and go loses the votes on its earlier answers.
SESSIONS = 1000
EMPTY_NOTICE = "empty question: type a question about the reports"
NOT_ANSWERED = "The reports do not seem to answer this."
EXAMPLES = [
    "长治市有多少所校外培训机构纳入了全国平台管理？",
    "How many full-time teachers does Lüliang have?",
    "忻州學前教育毛入園率是多少",
    "吕梁老师坐公交要钱吗？",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}  # where the "Add a report" panel is offered
UPLOAD_TYPES = [".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".jsonl"]

CSS = """
.gradio-container { font-family: 'Source Sans Pro', 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', ui-sans-serif, system-ui, sans-serif; }
#rq-title h1 { margin-bottom: 0; font-size: 1.5rem; }
#rq-title p { margin-top: .25rem; color: var(--body-text-color-subdued); }
.rq-answer { line-height: 1.6; }
.rq-answer p { margin: .2rem 0 .5rem; }
.rq-lead { font-weight: 600; }
.rq-none { font-weight: 600; color: #9a3412; }
.rq-notice { color: #9a3412; font-size: .9em; }
.rq-differ { border: 1px solid #fcd34d; background: #fffbeb; color: #1f2937; border-radius: 8px; padding: .5rem .7rem; margin: .4rem 0 .8rem; }
.rq-differ-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: .5rem; margin-top: .4rem; }
.rq-differ-item { background: #fff; border: 1px solid #fde68a; border-radius: 6px; padding: .4rem .55rem; font-size: .92em; }
.rq-differ-src { display: block; color: #4b5563; font-size: .85em; }
ol.rq-cites { list-style: none; padding: 0; margin: 0; }
li.rq-cite { border: 1px solid var(--border-color-primary); border-left: 4px solid #2563eb; border-radius: 8px; padding: .55rem .75rem; margin: 0 0 .7rem; background: var(--background-fill-primary); }
.rq-closest li.rq-cite { border-left-color: #9ca3af; }
.rq-head { font-weight: 600; }
.rq-num { display: inline-block; min-width: 1.8em; color: #2563eb; }
.rq-meta { color: var(--body-text-color-subdued); font-size: .85em; margin: .1rem 0 .35rem; }
.rq-passage { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; padding: 0; border: 0; font-size: .95em; }
.rq-answer mark { background: #fde047; color: #111827; padding: 0 .1em; border-radius: 2px; }
.rq-context { margin-top: .35rem; font-size: .9em; }
.rq-context summary { cursor: pointer; color: #2563eb; }
.rq-context-text { white-space: pre-wrap; overflow-wrap: anywhere; color: var(--body-text-color-subdued); margin-top: .3rem; }
.rq-context-text mark.rq-ctx { background: #dbeafe; color: #111827; }
.rq-context-text strong { background: #fde047; font-weight: 600; }
.rq-time { color: #9ca3af; font-size: .75em; margin-top: .2rem; }
#rq-examples button { white-space: normal; text-align: left; }
#rq-footer { color: #9ca3af; font-size: .8em; }
@media (max-width: 640px) {
  #rq-title h1 { font-size: 1.2rem; }
  #rq-title p { font-size: .85rem; }
  #rq-chat .message-row { padding: 8px !important; }
  #rq-chat .message { margin-left: 0 !important; }
  #rq-chat .bot { padding: 2px 4px !important; }
  li.rq-cite { padding: .45rem .55rem; }
  .rq-differ { padding: .4rem .5rem; }
}
"""

# Custom CSS is scoped inside the app's content; the page margins sit outside it.
HEAD = "<style>@media (max-width: 640px) { .gradio-container .main.app { padding: 8px 6px !important; } }</style>"

# A long answer is read from its top: scroll the chat to the latest question, not to the bottom.
SCROLL_JS = """() => { setTimeout(() => {
  const rows = document.querySelectorAll('#rq-chat .message-row');
  if (rows.length < 2) return;
  const q = rows[rows.length - 2];
  let box = q.parentElement;
  while (box && !/(auto|scroll)/.test(getComputedStyle(box).overflowY)) box = box.parentElement;
  if (box) box.scrollTop += q.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
}, 200); }"""

# --------------------------------------------------------------------------- feedback


def default_feedback_path() -> Path:
    """$REPORTQA_DATA/feedback.sqlite3, else <project>/data/feedback.sqlite3."""
    return default_data() / "feedback.sqlite3"


SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,          -- UTC, ISO 8601
    question TEXT NOT NULL,
    vote INTEGER NOT NULL,          -- 1 thumbs up, -1 thumbs down, 0 withdrawn
    answered INTEGER NOT NULL,      -- what the app said: 1 answered, 0 "do not seem to answer"
    filters TEXT NOT NULL,          -- JSON: top_k, city, doc_id
    passages TEXT NOT NULL          -- JSON list of {rank, doc_id, chunk_id, score}, as shown
);
CREATE TABLE IF NOT EXISTS feedback_passage (
    feedback_id INTEGER NOT NULL REFERENCES feedback(id),
    rank INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (feedback_id, rank)
);
"""


class FeedbackStore:
    """Votes on answers in a SQLite file: one connection per write, WAL, and a lock across threads."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; the mode sticks to the file
            db.executescript(SCHEMA)
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        # the timeout covers other processes writing the same file; threads queue on the lock
        return sqlite3.connect(self.path, timeout=30)

    def add(self, record: dict, vote: int) -> int:
        """Store one vote on the answer `record` (see `feedback_record`); returns its row id."""
        passages = record.get("passages", [])
        with self._lock:
            db = self._connect()
            try:
                with db:  # one transaction: the vote and its passages, or nothing
                    cur = db.execute(
                        "INSERT INTO feedback (created, question, vote, answered, filters, passages) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            record.get("question", ""),
                            int(vote),
                            int(bool(record.get("answered"))),
                            json.dumps(record.get("filters", {}), ensure_ascii=False),
                            json.dumps(passages, ensure_ascii=False),
                        ),
                    )
                    row = int(cur.lastrowid)
                    db.executemany(
                        "INSERT INTO feedback_passage (feedback_id, rank, doc_id, chunk_id, score) VALUES (?, ?, ?, ?, ?)",
                        [(row, p["rank"], p["doc_id"], p["chunk_id"], p["score"]) for p in passages],
                    )
            finally:
                db.close()
        return row

    def rows(self) -> list[dict]:
        """All votes, oldest first, with their passages decoded."""
        db = self._connect()
        try:
            db.row_factory = sqlite3.Row
            out = [dict(r) for r in db.execute("SELECT * FROM feedback ORDER BY id")]
        finally:
            db.close()
        for r in out:
            r["filters"] = json.loads(r["filters"])
            r["passages"] = json.loads(r["passages"])
        return out


def feedback_record(answer: Answer, filters: dict | None = None) -> dict:
    """What a vote on `answer` stores: the question, the verdict and the passages shown."""
    return {
        "question": answer.question,
        "answered": answer.answered,
        "filters": filters or {},
        "passages": [
            {"rank": r, "doc_id": h.doc.id, "chunk_id": h.chunk.id, "score": round(h.score, 6)}
            for r, h in enumerate(answer.hits, 1)
        ],
    }


def vote_value(liked) -> int:
    """Gradio's `LikeData.liked` as a vote: True up, False down, anything else (an undo) 0."""
    return 1 if liked is True else -1 if liked is False else 0


# --------------------------------------------------------------------------- searching


def answer_question(
    index: ReportIndex,
    question,
    *,
    top_k: int = DEFAULT_TOP_K,
    city: str = "",
    doc_id: str = "",
    settings: SearchSettings | None = None,
) -> Answer:
    """Search like `reportqa ask`, keeping only passages from `city` and/or report `doc_id` when given."""
    settings = settings or SearchSettings()
    top_k = max(1, min(DEFAULT_TOP_K if top_k is None else int(top_k), MAX_TOP_K))
    q, notice = prepare_question(question if isinstance(question, str) else "")
    if not q:
        return Answer("", [], False, 0.0, notice=EMPTY_NOTICE)
    if not (city or doc_id):
        ans = index.search(q, top_k=top_k, settings=settings)
    else:
        ans = index.search(q, top_k=max(top_k, min(POOL, len(index.chunks))), settings=settings)
        best = ans.hits[0].chunk.id if ans.hits else None
        ans.hits = [h for h in ans.hits if (not city or h.doc.city == city) and (not doc_id or h.doc.id == doc_id)][:top_k]
        # `answered` must describe the passages kept: claim it only while the best passage overall is still shown
        ans.answered = ans.answered and bool(ans.hits) and ans.hits[0].chunk.id == best
        if not ans.hits:
            notice = notice or "no passage matches the chosen city and report"
    ans.notice = notice or ans.notice
    return ans


# --------------------------------------------------------------------------- formatting (pure)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _lang(hit: Hit) -> str:
    return "zh-Hant" if hit.doc.script == "traditional" else "zh-Hans"


def _meta(hit: Hit) -> str:
    page = hit.page
    return " · ".join(_e(x) for x in (hit.doc.city, hit.doc.source, hit.doc.date, f"p. {page}" if page else "") if x)


def passage_html(hit: Hit) -> str:
    """The passage with its answering sentence in <mark>, everything escaped."""
    t = hit.chunk.text
    s, e = hit.highlight
    s, e = max(0, min(s, len(t))), max(0, min(e, len(t)))
    if e <= s:
        return _e(t)
    return f"{_e(t[:s])}<mark>{_e(t[s:e])}</mark>{_e(t[e:])}"


def context_html(hit: Hit, index: ReportIndex | None = None, width: int = 300) -> str:
    """About `width` characters of the report before and after the passage, the passage itself in <mark class="rq-ctx">."""
    doc = index.docs.get(hit.doc.id, hit.doc) if index is not None else hit.doc
    text = doc.text
    c = hit.chunk
    a, b = max(0, c.start - width), min(len(text), c.end + width)
    before = ("…" if a > 0 else "") + text[a : c.start]
    after = text[c.end : b] + ("…" if b < len(text) else "")
    return f'{_e(before)}<mark class="rq-ctx">{passage_html(hit).replace("<mark>", "<strong>").replace("</mark>", "</strong>")}</mark>{_e(after)}'


def _title(hit: Hit) -> str:
    title = _e(hit.doc.title or hit.doc.id)
    url = hit.doc.url or ""
    if url.startswith(("https://", "http://")):
        return f'<a href="{_e(url)}" target="_blank" rel="noopener noreferrer">{title}</a>'
    return title


def citation_html(rank: int, hit: Hit, index: ReportIndex | None = None, width: int = 300) -> str:
    """One numbered citation: title, city · source · date, the passage, and the surrounding text on demand."""
    return (
        f'<li class="rq-cite" id="rq-cite-{rank}" lang="{_lang(hit)}">'
        f'<div class="rq-head"><span class="rq-num">[{rank}]</span><span class="rq-title">{_title(hit)}</span></div>'
        f'<div class="rq-meta">{_meta(hit)}</div>'
        f'<blockquote class="rq-passage">{passage_html(hit)}</blockquote>'
        f'<details class="rq-context"><summary>Show surrounding text in the report</summary>'
        f'<div class="rq-context-text">{context_html(hit, index, width)}</div></details>'
        "</li>"
    )


def differ_html(answer: Answer) -> str:
    """When the passages come from two or more reports: each report's answering sentence side by side."""
    first: dict[str, tuple[int, Hit]] = {}
    for r, h in enumerate(answer.hits, 1):
        first.setdefault(h.doc.id, (r, h))
    if len(first) < 2:
        return ""
    items = []
    for r, h in first.values():
        s, e = h.highlight
        sentence = h.chunk.text[s:e] if e > s else h.chunk.text
        items.append(
            f'<div class="rq-differ-item" lang="{_lang(h)}"><mark>{_e(sentence.strip())}</mark>'
            f'<span class="rq-differ-src">[{r}] {_e(h.doc.title or h.doc.id)} · {_meta(h)}</span></div>'
        )
    return (
        f'<div class="rq-differ"><b>Sources differ:</b> {len(first)} reports speak to this; '
        f'compare what each says and its source.<div class="rq-differ-grid">{"".join(items)}</div></div>'
    )


def format_answer(answer: Answer, index: ReportIndex | None = None, width: int = 300) -> str:
    """The chat message for `answer`: the verdict, the citations and the retrieval time, as escaped HTML."""
    parts = ['<div class="rq-answer">']
    reports = len({h.doc.id for h in answer.hits})
    if answer.answered and answer.hits:
        n = len(answer.hits)
        parts.append(
            f'<p class="rq-lead">{n} passage{"s" if n != 1 else ""} from {reports} report{"s" if reports != 1 else ""}:</p>'
        )
    else:
        parts.append(f'<p class="rq-none">{NOT_ANSWERED}</p>')
        if answer.hits:
            parts.append('<p class="rq-sub">Closest passages (may not answer):</p>')
    if answer.notice:
        parts.append(f'<p class="rq-notice">{_e(answer.notice)}</p>')
    if answer.answered:
        parts.append(differ_html(answer))
    if answer.hits:
        cls = "rq-cites" if answer.answered else "rq-cites rq-closest"
        parts.append(f'<ol class="{cls}">')
        parts.extend(citation_html(r, h, index, width) for r, h in enumerate(answer.hits, 1))
        parts.append("</ol>")
    parts.append(f'<p class="rq-time">retrieved in {answer.seconds:.2f} s</p>')
    parts.append("</div>")
    return "".join(parts)


def question_html(question: str) -> str:
    """The user's message as shown in the chat: escaped text."""
    return _e(question)


def error_html(error: Exception) -> str:
    return f'<div class="rq-answer"><p class="rq-none">Something went wrong: {_e(error)}</p></div>'


# --------------------------------------------------------------------------- adding a report


class LiveIndex:
    """The index the app searches; `add_report` swaps in a rebuilt one, which the next search sees.

    Given the index `folder`, `get()` also notices an index replaced on disk by another process
    (`reportqa add`, `remove` or `index` while the server runs) and loads it, checking at most
    every `check_every` seconds. The request that notices waits for the load (a fraction of a
    second for the shipped reports); the others keep searching the index they had.
    """

    def __init__(self, index: ReportIndex, folder: Path | str | None = None, check_every: float = 2.0):
        self.index = index
        self.lock = threading.Lock()  # one addition at a time; searches never wait for it
        self.folder = Path(folder) if folder is not None else None
        self.check_every = check_every
        self.build = self._current()  # the build folder `index` came from
        self._checked = time.monotonic()
        self._reloading = threading.Lock()
        self._state = threading.Lock()  # `index` and `build` change together

    def _current(self) -> str | None:
        try:
            return (self.folder / "CURRENT").read_text().strip() if self.folder is not None else None
        except OSError:
            return None

    def get(self) -> ReportIndex:
        """The index to search now: reloaded first when the one on disk has changed."""
        if self.folder is None or time.monotonic() - self._checked < self.check_every:
            return self.index
        if not self._reloading.acquire(blocking=False):
            return self.index  # another request is loading it
        try:
            self._checked = time.monotonic()
            seen, build = self.build, self._current()
            if build and build != seen:
                from .index import ReportIndex

                try:
                    index = ReportIndex.load(self.folder, self.index.encoder)
                except Exception as e:  # damaged, half-written or deleted meanwhile: keep serving ours
                    print(f"reportqa: keeping the loaded index; {self.folder} could not be loaded: {e}", flush=True)
                    index = None
                with self._state:
                    if self.build == seen:  # not swapped meanwhile for one this process saved
                        self.index = index or self.index
                        self.build = build
        finally:
            self._reloading.release()
        return self.index

    def swap(self, index: ReportIndex, build: str | None) -> None:
        """Serve `index`, which this process has just saved to the folder as `build`."""
        with self._state:
            self.index = index
            self.build = build


def add_report(live: LiveIndex, collection: Collection, index_dir: Path, file, meta: dict | None = None,
               progress=None) -> str:  # fmt: skip
    """Add a report file to the collection and the live index; returns the one-line result.

    Only the new passages are embedded (the live index's vectors are reused); the index is
    saved to `index_dir`, so `reportqa serve` finds the report after a restart too.
    """
    from .collection import index_lock

    with live.lock, index_lock(index_dir):
        pending = collection.prepare([Path(file)], meta)
        upd = _reindex(live, collection, index_dir, collection.save(pending), progress)
    counts = passage_counts(upd.index)
    added = ", ".join(f"{p.doc.title} ({p.doc.id}): {_plural(counts.get(p.doc.id, 0), 'passage')}" for p in pending)
    return f"added {added}; {upd.embedded} embedded, {upd.reused} reused"


def remove_report(live: LiveIndex, collection: Collection, index_dir: Path, doc_id: str, progress=None) -> str:
    """Remove a report from the collection and the live index (as `reportqa remove`); returns the result."""
    from .collection import index_lock

    with live.lock, index_lock(index_dir):
        doc = live.index.docs.get(doc_id)
        kind, backup = collection.remove(doc_id)
        upd = _reindex(live, collection, index_dir, backup, progress)
    name = f"{doc.title} ({doc_id})" if doc else doc_id
    note = f"; a shipped report, listed in {collection.removed_path}" if kind == "corpus" else ""
    return f"removed {name}{note}; the index holds {_plural(len(upd.index.docs), 'report')}"


def _reindex(live: LiveIndex, collection: Collection, index_dir: Path, backup, progress=None):
    """Update the saved index to the collection just changed and serve it; if that fails, undo
    the change (`backup`) so collection and index stay as they were. Called holding `live.lock`."""
    from .collection import reindex_or_undo, update_index

    def reindex():
        docs, _ = collection.load()
        return update_index(docs, index_dir, live.index.encoder, old=live.index, progress=progress)

    upd = reindex_or_undo(collection, backup, reindex)
    live.swap(upd.index, upd.path.name if upd.path else live.build)
    return upd


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------- the app


def _footer(index: ReportIndex) -> str:
    return (
        f"{len(index.docs)} reports, {len(index.chunks)} passages. The thumbs under an answer record the question "
        "and the passages shown, to improve retrieval."
    )


def _choices(index: ReportIndex) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    docs = sorted(index.docs.values(), key=lambda d: (d.city, d.date, d.title))
    cities = [("All cities", "")] + [(c, c) for c in sorted({d.city for d in docs if d.city})]
    reports = [("All reports", "")] + [(f"{d.title} ({d.city})" if d.city else d.title, d.id) for d in docs]
    return cities, reports


def _refreshed(index: ReportIndex) -> tuple:
    """Updates for the city and report filters and the footer after the index changed."""
    cities, reports = _choices(index)
    return gr.update(choices=cities, value=""), gr.update(choices=reports, value=""), _footer(index)


def _removable(index: ReportIndex):
    """Update for the "Remove a report" menu: every report of the index."""
    return gr.update(choices=_choices(index)[1][1:], value=None)


def create_app(
    index: ReportIndex,
    *,
    feedback_path: Path | str | None = None,
    settings: SearchSettings | None = None,
    collection: Collection | None = None,
    index_dir: Path | str | None = None,
) -> gr.Blocks:
    """Build (not launch) the chat UI and the `/ask` API over a loaded `index`.

    With a `collection` and an `index_dir`, the UI has a panel to add and remove reports (for local use).
    Given `index_dir`, an index rebuilt there by the CLI is picked up by the next search.
    """
    settings = settings or SearchSettings()
    store = FeedbackStore(feedback_path or default_feedback_path())
    live = LiveIndex(index, index_dir)
    cities, reports = _choices(index)
    can_add = collection is not None and index_dir is not None

    def respond(question, history, records, top_k, city, doc_id):
        history = list(history or [])
        records = dict(records or {})
        filters = {"top_k": int(top_k or DEFAULT_TOP_K), "city": city or "", "doc_id": doc_id or ""}
        index = live.get()  # one index for the whole answer, even if a new one is swapped in meanwhile
        try:
            ans = answer_question(
                index, question, top_k=filters["top_k"], city=filters["city"], doc_id=filters["doc_id"], settings=settings
            )
            reply = format_answer(ans, index)
        except ReportQAError as e:
            ans, reply = None, error_html(e)
        shown = prepare_question(question or "")[0] or "(empty question)"
        history += [{"role": "user", "content": question_html(shown)}, {"role": "assistant", "content": reply}]
        if ans is not None:
            records[len(history) - 1] = feedback_record(ans, filters)
        return "", history, records

    def on_like(records, evt: gr.LikeData):
        i = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        record = (records or {}).get(i)
        if record is not None:
            store.add(record, vote_value(evt.liked))

    def api_ask(question: str, top_k: int = DEFAULT_TOP_K) -> dict:
        """Passages answering `question` from the reports: the JSON object of `reportqa ask --json`."""
        try:
            top_k = DEFAULT_TOP_K if top_k is None else int(top_k)
        except (TypeError, ValueError, OverflowError):
            # gr.Error reaches the caller even with show_error=False; anything else arrives as {"error": null}
            raise gr.Error(f"top_k must be a whole number from 1 to {MAX_TOP_K}, not {top_k!r}") from None
        return answer_question(live.get(), question, top_k=top_k, settings=settings).to_json()

    def reports_for(city):
        index = live.get()
        return gr.update(
            choices=[c for c in _choices(index)[1] if not c[1] or not city or index.docs[c[1]].city == city], value=""
        )

    def on_add(file, title, city_name, date, source, progress=gr.Progress()):
        if not file:
            return "Choose a report file first.", *[gr.update()] * 4
        progress(0, desc="reading the report")

        def step(done: int, total: int) -> None:
            progress((done, total), desc="embedding", unit="passages")

        meta = {"title": title, "city": city_name, "date": date, "source": source}
        try:
            message = add_report(live, collection, Path(index_dir), file, meta, progress=step)
        except ReportQAError as e:
            return str(e), *[gr.update()] * 4
        return (message, *_refreshed(live.index), _removable(live.index))

    def on_remove(doc_id, progress=gr.Progress()):
        if not doc_id:
            return "Choose a report to remove first.", *[gr.update()] * 4
        progress(0, desc="updating the index")
        try:
            message = remove_report(live, collection, Path(index_dir), doc_id)
        except ReportQAError as e:
            return str(e), *[gr.update()] * 4
        return (message, *_refreshed(live.index), _removable(live.index))

    def on_load():
        """A page (re)load shows the reports of the index now served, added from the CLI too."""
        index = live.get()
        outs = _refreshed(index)
        return (*outs, _removable(index)) if can_add else outs

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
            feedback_options=("Like", "Dislike"),
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
        if can_add:
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
                    remove_btn = gr.Button("Remove", variant="stop", size="md", scale=1, min_width=80, elem_id="rq-remove-button")
        footer = gr.Markdown(_footer(index), elem_id="rq-footer")

        ui = {"concurrency_limit": CONCURRENCY, "concurrency_id": "search", "api_visibility": "private"}
        inputs = [box, chat, records, top_k, city, report]
        outputs = [box, chat, records]
        box.submit(respond, inputs, outputs, **ui).then(None, js=SCROLL_JS)
        ask_btn.click(respond, inputs, outputs, **ui).then(None, js=SCROLL_JS)
        for btn, q in zip(example_btns, EXAMPLES, strict=True):
            btn.click(lambda *a, q=q: respond(q, *a), inputs[1:], outputs, **ui).then(None, js=SCROLL_JS)
        chat.like(on_like, [records], None, api_visibility="private")
        chat.clear(lambda: {}, None, [records], api_visibility="private")
        city.change(reports_for, [city], [report], api_visibility="private")
        refresh = [city, report, footer]
        if can_add:
            add_btn.click(
                on_add,
                [upload, add_title, add_city, add_date, add_source],
                [add_result, *refresh, to_remove],
                concurrency_limit=1,
                concurrency_id="add",
                api_visibility="private",
            )
            remove_btn.click(
                on_remove,
                [to_remove],
                [add_result, *refresh, to_remove],
                concurrency_limit=1,
                concurrency_id="add",
                api_visibility="private",
            )
            refresh = [*refresh, to_remove]
        app.load(on_load, None, refresh, api_visibility="private")
        gr.api(api_ask, api_name="ask", concurrency_limit=CONCURRENCY, concurrency_id="search")
    app.queue(max_size=64, default_concurrency_limit=CONCURRENCY)
    app.feedback = store  # for callers and tests: where the votes go
    app.live = live  # ... and the index being searched
    return app


def launch(
    index: ReportIndex,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    feedback_path: Path | str | None = None,
    settings: SearchSettings | None = None,
    collection: Collection | None = None,
    index_dir: Path | str | None = None,
    allow_add: bool = False,
    sessions: int = SESSIONS,
    block: bool = True,
) -> gr.Blocks:
    """Serve the app locally: no share link, no extra file paths served, the model already loaded in `index`.

    The "Add a report" panel (given a `collection` and `index_dir`) is offered only on a
    loopback `host`, unless `allow_add`. At most `sessions` sessions keep their state in memory.
    `block=False` returns once the server runs (tests); close it with `app.close()`.
    """
    if not (allow_add or host in LOCAL_HOSTS):
        collection = None  # no panel; `index_dir` is still watched for indexes rebuilt by the CLI
    app = create_app(index, feedback_path=feedback_path, settings=settings, collection=collection, index_dir=index_dir)
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
        theme=gr.themes.Default(
            primary_hue="blue",
            font=[
                "Source Sans Pro",
                "Noto Sans CJK SC",
                "PingFang SC",
                "Microsoft YaHei",
                "ui-sans-serif",
                "system-ui",
                "sans-serif",
            ],
        ),
        quiet=not block,
    )
    return app
