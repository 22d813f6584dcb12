"""Answers as chat HTML: pure functions from records to markup.

Every piece of report or question text goes through `html.escape` here (the chatbot
sanitises on top of that); only the tags written in this module reach the page.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .records import Answer, Hit

if TYPE_CHECKING:
    from .index import ReportIndex

NOT_ANSWERED = "The reports do not seem to answer this."

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
    """A failure (a damaged index, say) as a chat message."""
    return f'<div class="rq-answer"><p class="rq-none">Something went wrong: {_e(error)}</p></div>'
