"""Answers as chat HTML: pure functions from records to markup, in Chinese (`zh`) or English (`en`).

Every piece of report or question text goes through `html.escape` here (the chatbot
sanitises on top of that); only the tags written in this module reach the page. A message
also carries, hidden, its plain text (`.rq-plain`, what the copy button copies) and a label in
words (`.rq-label`, what a screen reader announces instead of the markup).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

from .answerline import AnswerLine, answer_line
from .figures import figure_kinds
from .highlight import sentences
from .query import mentioned_cities
from .records import Answer, Document, Hit
from .textnorm import normalise
from .words import OTHER_PLACES

if TYPE_CHECKING:
    from .index import ReportIndex

LANGS = ("zh", "en")
NOT_ANSWERED = "The reports do not seem to answer this."  # the English verdict of `not found`

TEXT = {
    "zh": {
        "answer": "答案", "possible": "可能的答案", "none": "报告中没有找到答案。",
        "possible_lead": "不能确定报告回答了这个问题，下面是最接近的段落，请核对：",
        "lead": "{n} 段引文，来自 {r} 份报告：", "closest": "最接近的段落（可能并不回答）：",
        "why_place": "没有报告提到{place}：这些报告只关于{cities}。",
        "why_figure": "第一段引文里没有所问的那类数字（{kind}）。",
        "why_city": "关于{city}的报告没有提到这一点。",
        "why_generic": "没有哪一段与问题足够接近。",
        "kind_rate": "比例或百分比", "kind_money": "金额", "kind_figure": "数量", "kind_ordinal": "名次",
        "agree": "{n} 份报告说法一致", "differ": "报告说法不一：", "differ_note": "各报告给出的数字不同，请看各自的出处。",
        "context": "显示整段及上下文", "time": "检索用时 {s:.2f} 秒", "searching": "正在检索报告……",
        "empty": "（空问题）", "error": "出错了：{e}", "page": "第 {p} 页",
        "useful": "这段引文有用吗？", "up": "有用", "down": "没用",
        "notice_empty": "问题是空的：请输入一个关于这些报告的问题。", "notice_filter": "所选的城市和报告中没有匹配的段落。",
        "notice_cut": "问题超过 {n} 字的上限，只检索了前 {n} 字。",
        "notice_undated": "没有日期的报告不受日期筛选限制，其段落标为“日期不详”。", "undated": "日期不详",
        "label_answer": "回答：{value}{lead}", "label_none": "回答：{none}{why}", "label_searching": "正在检索",
        "label_user": "你的问题：{q}", "q": "问：", "a": "答：", "searched": "检索的是：{s}",
        "open": "在报告中阅读", "back": "返回问答", "prev": "上一段", "next": "下一段", "of": "第 {k} 段，共 {n} 段",
        "no_report": "没有这份报告：{id}。", "report_label": "报告原文：{title}",
        "pdf_page": "PDF 原件第 {p} 页", "pdf_alt": "《{title}》PDF 原件第 {p} 页的图像",
        "pdf_not_kept": "这份 PDF 是在系统保存原件之前添加的，无法显示页面；用“替换”重新添加它即可。",
        "pdf_missing": "找不到这份报告的 PDF 文件，无法显示页面。", "pdf_changed": "这份报告的 PDF 文件在添加后被改动过，不显示页面。",
        "pdf_broken": "这份报告的 PDF 文件无法读取，无法显示页面。", "pdf_no_page": "PDF 文件里没有第 {p} 页。",
    },
    "en": {
        "answer": "Answer", "possible": "Possible answer", "none": NOT_ANSWERED,
        "possible_lead": "The reports may not answer this; these are the closest passages, please check them:",
        "lead": "{n} passage{ns} from {r} report{rs}:", "closest": "Closest passages (may not answer):",
        "why_place": "No report mentions {place}: the reports are about {cities}.",
        "why_figure": "The passage has no figure of the kind asked ({kind}).",
        "why_city": "The reports about {city} do not say this.",
        "why_generic": "No passage is close enough to the question.",
        "kind_rate": "a rate or share", "kind_money": "a sum of money", "kind_figure": "a number", "kind_ordinal": "a rank",
        "agree": "{n} reports agree", "differ": "Sources differ:", "differ_note": "The reports give different figures; see each source.",
        "context": "Show the whole passage in its context", "time": "retrieved in {s:.2f} s", "searching": "Searching the reports…",
        "empty": "(empty question)", "error": "Something went wrong: {e}", "page": "p. {p}",
        "useful": "Is this passage useful?", "up": "Useful", "down": "Not useful",
        "notice_empty": None, "notice_filter": None, "notice_cut": None, "notice_undated": None,  # answer.py's, as they are
        "undated": "undated",
        "label_answer": "Answer: {value}{lead}", "label_none": "Answer: {none}{why}", "label_searching": "Searching",
        "label_user": "Your question: {q}", "q": "Q: ", "a": "A: ", "searched": "Searched for: {s}",
        "open": "Read it in the report", "back": "Back to the chat", "prev": "Previous passage", "next": "Next passage",
        "of": "passage {k} of {n}", "no_report": "There is no report {id}.", "report_label": "The report: {title}",
        "pdf_page": "Page {p} of the PDF", "pdf_alt": "Page {p} of the PDF of ‘{title}’",
        "pdf_not_kept": "This PDF was added before its file was kept, so its pages cannot be shown; add it again with replace to see them.",
        "pdf_missing": "The PDF file of this report cannot be found, so its page cannot be shown.",
        "pdf_changed": "The PDF file of this report has changed since it was added; its page is not shown.",
        "pdf_broken": "The PDF file of this report cannot be read, so its page cannot be shown.",
        "pdf_no_page": "The PDF has no page {p}.",
    },
}  # fmt: skip


def tr(lang: str, key: str, **kw) -> str:
    """The interface text `key` in `lang` (Chinese for anything but "en")."""
    table = TEXT["en" if lang == "en" else "zh"]
    return table[key].format(**kw) if kw else table[key]


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _lang(hit: Hit) -> str:
    return "zh-Hant" if hit.doc.script == "traditional" else "zh-Hans"


# ------------------------------------------------------------------------- verdict and why


def verdict(answer: Answer, threshold: float | None) -> str:
    """`answer`, `possible` or `none` (`Answer.verdict`): answered and sure (a calibrated confidence of
    at least `records.SURE`); answered but not sure, or not answered with a confidence of at least
    `POSSIBLE` of `threshold`; or not found. Without a threshold, no possible answer below it."""
    if threshold is None and not answer.answered:
        return "none"
    return answer.verdict(threshold)


def _place_named(question: str) -> str:
    q = question.lower()
    return next((p for p in OTHER_PLACES if p in q), "")


def why_not(answer: Answer, cities: list[str] | tuple[str, ...], lang: str = "en", generic: bool = True) -> str:
    """Why the reports do not answer, in words, from facts the search has: a place none of the
    reports is about, a figure asked and none of its kind in the first passage's highlighted
    sentence, a city named whose passages do not cover it; otherwise a generic line (or "" when
    not `generic`)."""
    q = answer.searched  # what was searched: a follow-up merged with its conversation
    named, elsewhere = mentioned_cities(q, [c for c in cities if c])
    if elsewhere and not named:
        return tr(lang, "why_place", place=_place_named(q) or q, cities=("、" if lang != "en" else ", ").join(c for c in cities if c))
    from .figures import asked_figure

    kind = asked_figure(q)
    if kind and answer.hits:
        h = answer.hits[0]
        s, e = h.highlight
        sentence = h.chunk.text[s:e] if e > s else h.chunk.text
        if kind not in figure_kinds(normalise(sentence)):
            return tr(lang, "why_figure", kind=tr(lang, f"kind_{kind}"))
    if named:
        city = sorted(named)[0]
        return tr(lang, "why_city", city=city)
    return tr(lang, "why_generic") if generic else ""


def notice_text(notice: str, lang: str = "en") -> str:
    """A notice of `answer.py` in the interface's language (English ones are shown as they are)."""
    from .answer import EMPTY_NOTICE, MAX_QUESTION, NO_MATCH_NOTICE, UNDATED_NOTICE

    if lang == "en" or not notice:
        return notice
    if notice == EMPTY_NOTICE:
        return tr(lang, "notice_empty")
    if notice == NO_MATCH_NOTICE:
        return tr(lang, "notice_filter")
    if notice == UNDATED_NOTICE:
        return tr(lang, "notice_undated")
    if f"first {MAX_QUESTION} characters" in notice:
        return tr(lang, "notice_cut", n=MAX_QUESTION)
    return notice


# ------------------------------------------------------------------------- passages


def date_label(doc, lang: str = "en") -> str:
    """A report's date as shown (citations and the report view alike): its own words, or the
    translated "undated" when it gives no date a filter can read (`answer.undated`, e.g. 近期)."""
    from .answer import undated

    return tr(lang, "undated") if undated(doc) else doc.date  # a date filter keeps such reports: marked


def _meta(hit: Hit, lang: str = "en") -> str:
    page = hit.page
    parts = (hit.doc.city, hit.doc.source, date_label(hit.doc, lang), tr(lang, "page", p=page) if page else "")
    return " · ".join(_e(x) for x in parts if x)


def passage_html(hit: Hit) -> str:
    """The whole passage with its answering sentence in <mark>, everything escaped."""
    t = hit.chunk.text
    s, e = hit.highlight
    s, e = max(0, min(s, len(t))), max(0, min(e, len(t)))
    if e <= s:
        return _e(t)
    return f"{_e(t[:s])}<mark>{_e(t[s:e])}</mark>{_e(t[e:])}"


def excerpt_span(text: str, highlight: tuple[int, int], short: int = 40, after: int = 160) -> tuple[int, int]:
    """Where the shown excerpt of a passage starts and ends: the sentence before the highlighted
    one (two when that one is shorter than `short`), the highlight, and at most `after`
    characters of the sentence after it. Without a highlight, the whole passage."""
    s, e = highlight
    if not 0 <= s < e <= len(text):
        return 0, len(text)
    spans = sentences(text)
    i = next((k for k, (a, b) in enumerate(spans) if a <= s < b), None)
    if i is None:
        return 0, len(text)
    start = spans[i - 1][0] if i > 0 else s
    if i > 1 and spans[i - 1][1] - spans[i - 1][0] < short:
        start = spans[i - 2][0]
    end = e
    nxt = next(((a, b) for a, b in spans if a >= e), None)
    if nxt is not None:
        end = min(nxt[1], max(e, nxt[0]) + after)
    while start < s and text[start] in "\n ":
        start += 1
    return min(start, s), max(end, e)


def excerpt_html(hit: Hit) -> str:
    """The passage centred on its answering sentence: a sentence or two before it, the sentence in
    <mark>, a little after; "…" where the passage goes on."""
    t = hit.chunk.text
    a, b = excerpt_span(t, hit.highlight)
    s, e = hit.highlight
    if not a <= s < e <= b:
        return passage_html(hit)
    lead = "…" if a > 0 else ""
    tail = "…" if b < len(t) else ""
    return f"{lead}{_e(t[a:s])}<mark>{_e(t[s:e])}</mark>{_e(t[e:b])}{tail}"


def context_html(hit: Hit, index: ReportIndex | None = None, width: int = 300) -> str:
    """About `width` characters of the report before and after the passage, the passage itself in <mark class="rq-ctx">."""
    doc = index.docs.get(hit.doc.id, hit.doc) if index is not None else hit.doc
    text = doc.text
    c = hit.chunk
    a, b = max(0, c.start - width), min(len(text), c.end + width)
    before = ("…" if a > 0 else "") + text[a : c.start]
    after = text[c.end : b] + ("…" if b < len(text) else "")
    return f'{_e(before)}<mark class="rq-ctx">{passage_html(hit).replace("<mark>", "<strong>").replace("</mark>", "</strong>")}</mark>{_e(after)}'


def report_url(doc_id: str, passage: int) -> str:
    """The stable address of passage `passage` (its number in the report) in the report view: a query of the page."""
    from urllib.parse import urlencode

    return "?" + urlencode({"report": doc_id, "passage": int(passage)})


def page_html(index: ReportIndex, doc: Document, page: int | None, lang: str = "en", build: Path | None = None) -> str:
    """For a report from a PDF, page `page` of it as an image (a PNG inline) with its number, or a
    message saying why it cannot be shown; "" for a report from no PDF or without pages."""
    from .pdfpage import PageError, page_png, pdf_of

    source = pdf_of(index, doc.id, build) if page else None
    if source is None:
        return ""
    caption = f'<figcaption class="rq-page-no">{_e(tr(lang, "pdf_page", p=page))}</figcaption>'
    try:
        png = base64.b64encode(page_png(source, page)).decode("ascii")
    except PageError as e:
        return f'<figure class="rq-page">{caption}<p class="rq-page-none">{_e(tr(lang, "pdf_" + e.kind, p=page))}</p></figure>'
    alt = tr(lang, "pdf_alt", p=page, title=doc.title or doc.id)
    return f'<figure class="rq-page">{caption}<img class="rq-page-img" src="data:image/png;base64,{png}" alt="{_e(alt)}"></figure>'


def report_html(index: ReportIndex, doc_id: str, passage: int | None = None, lang: str = "en", build: Path | None = None) -> str:
    """The report view: the report's cleaned text with passage `passage` (else the first) marked
    (`#rq-here`, scrolled into view by the page), its page when the report has pages (and, for a PDF,
    that page rendered: `page_html`; `build` is the live build folder, where an added PDF is kept),
    and links to the previous and next passages and back to the chat; every piece of text escaped."""
    back = f'<a class="rq-back" href="./">{_e(tr(lang, "back"))}</a>'
    doc = index.docs.get(doc_id)
    chunks = sorted((c for c in index.chunks if c.doc_id == doc_id), key=lambda c: c.n)
    if doc is None or not chunks:
        return f'<div class="rq-report"><p class="rq-none">{_e(tr(lang, "no_report", id=doc_id))}</p>{back}</div>'
    at = next((i for i, c in enumerate(chunks) if c.n == passage), 0)
    c = chunks[at]
    page = doc.page_at(c.start)
    where = " · ".join(x for x in (tr(lang, "of", k=at + 1, n=len(chunks)), tr(lang, "page", p=page) if page else "") if x)
    nav = [back]
    if at > 0:
        nav.append(f'<a class="rq-prev" href="{_e(report_url(doc_id, chunks[at - 1].n))}">← {_e(tr(lang, "prev"))}</a>')
    nav.append(f'<span class="rq-where">{_e(where)}</span>')
    if at + 1 < len(chunks):
        nav.append(f'<a class="rq-next" href="{_e(report_url(doc_id, chunks[at + 1].n))}">{_e(tr(lang, "next"))} →</a>')
    meta = " · ".join(_e(x) for x in (doc.city, doc.source, date_label(doc, lang)) if x)
    lang_attr = "zh-Hant" if doc.script == "traditional" else "zh-Hans"
    text = doc.text
    return (
        f'<div class="rq-report" role="region" aria-label="{_e(tr(lang, "report_label", title=doc.title or doc.id))}">'
        f'<nav class="rq-report-nav">{" ".join(nav)}</nav>'
        f'<h2 class="rq-report-title" lang="{lang_attr}">{_e(doc.title or doc.id)}</h2><p class="rq-meta">{meta}</p>'
        f'<div class="rq-report-body"><div class="rq-report-text" lang="{lang_attr}">{_e(text[: c.start])}<mark id="rq-here" class="rq-here">'
        f"{_e(text[c.start : c.end])}</mark>{_e(text[c.end :])}</div>{page_html(index, doc, page, lang, build)}</div></div>"
    )


def _title(hit: Hit) -> str:
    title = _e(hit.doc.title or hit.doc.id)
    url = hit.doc.url or ""
    if url.startswith(("https://", "http://")):
        return f'<a href="{_e(url)}" target="_blank" rel="noopener noreferrer">{title}</a>'
    return title


def votes_html(msg: int, rank: int, lang: str = "en") -> str:
    """"Useful" and "not useful" for passage `rank` of the answer at chat message `msg`. The chatbot's
    sanitiser keeps classes, roles, tabindex and titles (not data- or aria- attributes), so the
    page's script reads the message, rank and vote from the classes."""
    where = f"rq-m-{int(msg)} rq-r-{int(rank)}"
    return (
        f'<div class="rq-votes" role="group" title="{_e(tr(lang, "useful"))}"><span class="rq-ask">{_e(tr(lang, "useful"))}</span>'
        f'<span class="rq-vote rq-v-up {where}" role="button" tabindex="0">▲ {_e(tr(lang, "up"))}</span>'
        f'<span class="rq-vote rq-v-down {where}" role="button" tabindex="0">▼ {_e(tr(lang, "down"))}</span>'
        '<span class="rq-ack" role="status"></span></div>'
    )


def citation_html(rank: int, hit: Hit, index: ReportIndex | None = None, width: int = 300, *, lang: str = "en",
                  msg: int | None = None) -> str:  # fmt: skip
    """One numbered citation: title, city · source · date and a link to the passage in the report view,
    the passage centred on its answer, the whole passage and its surroundings on demand, and (with
    `msg`) thumbs to vote on it."""
    return (
        f'<li class="rq-cite" lang="{_lang(hit)}">'
        f'<div class="rq-head"><span class="rq-num">[{rank}]</span><span class="rq-title">{_title(hit)}</span></div>'
        f'<div class="rq-meta">{_meta(hit, lang)} <a class="rq-open" href="{_e(report_url(hit.doc.id, hit.chunk.n))}" '
        f'target="_blank" rel="noopener">{_e(tr(lang, "open"))}</a></div>'
        f'<blockquote class="rq-passage">{excerpt_html(hit)}</blockquote>'
        f'<details class="rq-context"><summary>{_e(tr(lang, "context"))}</summary>'
        f'<div class="rq-context-text">{context_html(hit, index, width)}</div></details>'
        + (votes_html(msg, rank, lang) if msg is not None else "")
        + "</li>"
    )


# ------------------------------------------------------------------------- the answer line and the conflict panel


def _refs(ranks) -> str:
    return "".join(f"[{r}]" for r in ranks)


def answer_line_html(line: AnswerLine, lang: str = "en") -> str:
    """The value and its citations ("192所 [1]"); where reports agree, how many; where they differ, the conflict panel."""
    if line.conflict:
        return differ_html(line, lang)
    s = line.stated[0]
    reports = len({h.doc.id for h in s.hits})
    agree = f' <span class="rq-agree">{_e(tr(lang, "agree", n=reports))}</span>' if reports > 1 else ""
    return (
        f'<p class="rq-line"><span class="rq-line-label">{_e(tr(lang, "answer"))}：</span>'
        f'<b class="rq-value">{_e(s.value.text)}</b> <span class="rq-refs">{_refs(s.ranks)}</span>{agree}</p>'
    ).replace("：", ": " if lang == "en" else "：")


def differ_html(line: AnswerLine, lang: str = "en") -> str:
    """The conflict panel: each value the reports state for the same subject, with its source."""
    items = []
    for s in line.stated:
        h = s.hits[0]
        items.append(
            f'<div class="rq-differ-item" lang="{_lang(h)}"><b class="rq-value">{_e(s.value.text)}</b> '
            f'<span class="rq-refs">{_refs(s.ranks)}</span>'
            f'<span class="rq-differ-src">{_e(h.doc.title or h.doc.id)} · {_meta(h, lang)}</span></div>'
        )
    return (
        f'<div class="rq-differ" role="note"><b>{_e(tr(lang, "differ"))}</b> {_e(tr(lang, "differ_note"))}'
        f'<div class="rq-differ-grid">{"".join(items)}</div></div>'
    )


# ------------------------------------------------------------------------- the message


def plain_text(answer: Answer, lang: str = "en", threshold: float | None = None, cities=()) -> str:
    """The answer as plain text with its citations: what the copy button copies."""
    out = [tr(lang, "q") + answer.question] + ([tr(lang, "searched", s=answer.searched)] if answer.rewritten else [])
    state = verdict(answer, threshold)
    line = answer_line(answer) if state == "answer" else None
    if line is not None:
        out.append(tr(lang, "a") + "; ".join(f"{s.value.text} {_refs(s.ranks)}" for s in line.stated))
    elif state == "possible":
        why = why_not(answer, cities, lang, generic=False)
        out.append(tr(lang, "a") + tr(lang, "possible") + (" " + why if why else ""))
    elif state == "none":
        out.append(tr(lang, "a") + tr(lang, "none") + " " + (why_not(answer, cities, lang) if answer.hits else ""))
    for r, h in enumerate(answer.hits, 1):
        s, e = h.highlight
        quote = h.chunk.text[s:e] if e > s else h.chunk.text
        meta = " · ".join(x for x in (h.doc.city, h.doc.source, h.doc.date, tr(lang, "page", p=h.page) if h.page else "") if x)
        out.append(f"[{r}] {h.doc.title or h.doc.id} ({meta})\n“{quote.strip()}”")
    return "\n".join(out).strip()


def answer_label(answer: Answer, lang: str = "en", threshold: float | None = None, cities=()) -> str:
    """What a screen reader announces for the message: the verdict and the value in words, not markup."""
    state = verdict(answer, threshold)
    n, r = len(answer.hits), len({h.doc.id for h in answer.hits})
    lead = tr(lang, "lead", n=n, r=r, ns="" if n == 1 else "s", rs="" if r == 1 else "s").rstrip("：:")
    if state == "answer":
        line = answer_line(answer)
        value = (line.value + ("，" if lang != "en" else ", ")) if line else ""
        return tr(lang, "label_answer", value=value, lead=lead)
    if state == "possible":
        why = why_not(answer, cities, lang, generic=False)
        return f"{tr(lang, 'possible')}{'：' if lang != 'en' else ': '}{(why + ' ') if why else ''}{lead}"
    return tr(lang, "label_none", none=tr(lang, "none"), why=" " + why_not(answer, cities, lang) if answer.hits else "")


def format_answer(answer: Answer, index: ReportIndex | None = None, width: int = 300, *, lang: str = "en",
                  threshold: float | None = None, msg: int | None = None, offer: str = "") -> str:  # fmt: skip
    """The chat message for `answer`, as escaped HTML: the answer line (or why there is none), the
    conflict panel when reports differ, the citations and the retrieval time. `threshold` (the
    confidence an answer needs) tells a possible answer from none; `msg`, the message's place in
    the chat, adds the thumbs to each passage; `offer`, a line added to the notice."""
    cities = sorted({d.city for d in index.docs.values() if d.city}) if index is not None else []
    state = verdict(answer, threshold)
    n, reports = len(answer.hits), len({h.doc.id for h in answer.hits})
    label = answer_label(answer, lang, threshold, cities)
    parts = [f'<div class="rq-answer rq-state-{state}"><span class="rq-label">{_e(label)}</span>']
    if answer.rewritten:  # a follow-up: what was searched, visibly
        parts.append(f'<p class="rq-searched">{_e(tr(lang, "searched", s=answer.searched))}</p>')
    if answer.notice or offer:
        parts.append(f'<p class="rq-notice">{_e(" ".join(x for x in (notice_text(answer.notice, lang), offer) if x))}</p>')
    if state == "answer":
        line = answer_line(answer)
        if line is not None:
            parts.append(answer_line_html(line, lang))
        lead = tr(lang, "lead", n=n, r=reports, ns="" if n == 1 else "s", rs="" if reports == 1 else "s")
        parts.append(f'<p class="rq-lead">{_e(lead)}</p>')
    elif state == "possible":
        parts.append(f'<p class="rq-possible-head"><b>{_e(tr(lang, "possible"))}</b></p>')
        if why := why_not(answer, cities, lang, generic=False):  # a reason in the facts, when there is one
            parts.append(f'<p class="rq-why">{_e(why)}</p>')
        parts.append(f'<p class="rq-sub">{_e(tr(lang, "possible_lead"))}</p>')
    else:
        parts.append(f'<p class="rq-none">{_e(tr(lang, "none"))}</p>')
        if answer.hits:
            parts.append(f'<p class="rq-why">{_e(why_not(answer, cities, lang))}</p>')
            parts.append(f'<p class="rq-sub">{_e(tr(lang, "closest"))}</p>')
    if answer.hits:
        cls = "rq-cites" if state == "answer" else "rq-cites rq-closest"
        parts.append(f'<ol class="{cls}">')
        parts.extend(citation_html(r, h, index, width, lang=lang, msg=msg) for r, h in enumerate(answer.hits, 1))
        parts.append("</ol>")
    parts.append(f'<p class="rq-time">{_e(tr(lang, "time", s=answer.seconds))}</p>')
    parts.append(f'<div class="rq-plain">{_e(plain_text(answer, lang, threshold, cities))}</div>')
    parts.append("</div>")
    return "".join(parts)


def searching_html(lang: str = "en") -> str:
    """The placeholder shown at once while the search runs."""
    text = _e(tr(lang, "searching"))
    return f'<div class="rq-answer rq-searching" role="status"><span class="rq-label">{text}</span><p>{text}</p></div>'


def question_html(question: str) -> str:
    """The user's message as shown in the chat: escaped text."""
    return _e(question)


def error_html(error: Exception, lang: str = "en") -> str:
    """A failure (a damaged index, say) as a chat message."""
    text = _e(tr(lang, "error", e=error))
    return f'<div class="rq-answer"><span class="rq-label">{text}</span><p class="rq-none">{text}</p></div>'


# ------------------------------------------------------------------------- the page's intro


def intro_html(index: ReportIndex, lang: str = "en") -> str:
    """The intro: what can be asked of which reports, the cities named and the counts, each report listed."""
    docs = sorted(index.docs.values(), key=lambda d: (d.city, d.date, d.title))
    by_city: dict[str, int] = {}
    for d in docs:
        by_city[d.city or "—"] = by_city.get(d.city or "—", 0) + 1
    n, p = len(docs), len(index.chunks)
    if lang == "en":
        cities = ", ".join(f"{_e(c)} ({k})" for c, k in by_city.items())
        head = (f"Ask about <b>{n} education report{'s' if n != 1 else ''}</b> ({p} passages) from <b>{cities}</b>, "
                "in simplified or traditional Chinese or in English. Answers are passages quoted from the reports, "
                "with their sources; nothing is generated.")  # fmt: skip
        summary = f"The {n} reports"
    else:
        cities = "、".join(f"{_e(c)}（{k} 份）" for c, k in by_city.items())
        head = f"就<b>{cities}</b>的 <b>{n} 份教育报告</b>（共 {p} 段）提问，简体、繁体或英文均可。答案是报告原文的引文，附出处；不生成任何内容。"
        summary = f"这 {n} 份报告"
    items = "".join(
        f'<li lang="{"zh-Hant" if d.script == "traditional" else "zh-Hans"}">{_e(d.city)} · {_e(d.title or d.id)}'
        f"{' · ' + _e(d.date) if d.date else ''}</li>"
        for d in docs
    )
    return (
        f'<div class="rq-intro"><p class="rq-counts">{head}</p>'
        f'<details class="rq-reports"><summary>{_e(summary)}</summary><ol>{items}</ol></details></div>'
    )

