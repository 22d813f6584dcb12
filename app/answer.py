"""The one use case: a question in, an `Answer` out. Every front end calls `answer` (or
`answer_many` for a batch): the CLI, the chat, the Gradio `ask` endpoint, the evaluation
and the benchmark, so a question is prepared, filtered and searched the same way everywhere.

With a `history` (the earlier questions of the conversation, oldest first), a follow-up
("那吕梁呢？") is searched as `followup.resolve` merges it with them; `Answer.searched` is the
text searched, the question itself when nothing was rewritten."""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .answerline import answer_value
from .errors import ReportQAError
from .followup import MAX_TURNS, resolve
from .records import Answer

if TYPE_CHECKING:
    from .index import ReportIndex, SearchSettings

MAX_QUESTION = 2000  # characters kept of a question; e5 reads at most 512 tokens
DEFAULT_TOP_K = 5
MAX_TOP_K = 50
MODES = ("hybrid", "dense", "keyword")
EMPTY_NOTICE = "empty question: type a question about the reports"
NO_MATCH_NOTICE = "no passage matches the chosen city and report"
UNDATED_NOTICE = "reports without a date are kept by the date filter; their passages are marked undated"
_DATE = re.compile(r"(\d{4})(?:[-/.年](\d{1,2})(?:[-/.月](\d{1,2}))?)?")
MAX_HISTORY = MAX_TURNS  # earlier questions read: a longer history is cut to its last ones


class DateError(ReportQAError, ValueError):
    """A date filter that is no date (or a range that ends before it starts); `field` names it."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def date_span(text) -> tuple[str, str] | None:
    """The first and last day a date names, as YYYY-MM-DD: "2024-09" -> ("2024-09-01", "2024-09-30"),
    "2024" -> the whole year; None when `text` does not start with a date (a report without one)."""
    m = _DATE.match(str(text or "").strip())
    if not m:
        return None
    year, month, day = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
    if not 1 <= (month or 1) <= 12 or not 1 <= (day or 1) <= calendar.monthrange(year, month or 1)[1]:
        return None
    first = (month or 1, day or 1)
    last = (month or 12, day or calendar.monthrange(year, month or 12)[1])
    return f"{year:04d}-{first[0]:02d}-{first[1]:02d}", f"{year:04d}-{last[0]:02d}-{last[1]:02d}"


def date_range(date_from: str = "", date_to: str = "") -> tuple[str, str] | None:
    """The days a date filter keeps, (first, last); None without one. Raises `DateError` naming the field."""
    if not (date_from or date_to):
        return None
    bounds = []
    for field, value, end in (("date_from", date_from, 0), ("date_to", date_to, 1)):
        span = date_span(value) if value else ("0000-01-01", "9999-12-31")
        if span is None or (value and _DATE.fullmatch(str(value).strip().rstrip("日月年")) is None):
            raise DateError(f"{field}: {value!r} is not a date; give YYYY, YYYY-MM or YYYY-MM-DD (e.g. 2024-09)", field)
        bounds.append(span[end])
    if bounds[0] > bounds[1]:
        raise DateError(f"date_from: {date_from} is after date_to {date_to}", "date_from")
    return bounds[0], bounds[1]


def undated(doc) -> bool:
    """A report whose date is unknown: a date filter keeps it (and the answer says so)."""
    return date_span(doc.date) is None


class HistoryError(TypeError):
    """A history that is not a list of strings; `field` names the culprit (`history`, `history.2`)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def prepare_question(q) -> tuple[str, str]:
    """Strip control characters and cut very long questions; returns (question, notice).

    Anything but a string is an empty question. Lone surrogates (bytes a terminal in another
    encoding passed through argv) go too: they cannot be written out as UTF-8.
    """
    if not isinstance(q, str):
        q = ""
    cleaned = "".join(
        ch for ch in q if (ch in "\n\t" or ord(ch) >= 32 and ch != "\x7f") and not "\ud800" <= ch <= "\udfff"
    ).strip()
    if len(cleaned) > MAX_QUESTION:
        return cleaned[:MAX_QUESTION], f"question cut to its first {MAX_QUESTION} characters"
    return cleaned, ""


def check_history(history) -> list[str]:
    """The earlier questions of a conversation (oldest first) as the search reads them: each
    prepared like a question, only the last `MAX_HISTORY`. None is no history. Raises
    `HistoryError` naming the field when `history` is not a list of strings."""
    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise HistoryError(f"history: must be a list of the earlier questions (strings, oldest first), "
                           f"not {type(history).__name__}", "history")  # fmt: skip
    for i, item in enumerate(history):
        if not isinstance(item, str):
            raise HistoryError(f"history.{i}: must be a string (an earlier question), not {type(item).__name__}", f"history.{i}")
    return [prepare_question(item)[0] for item in history[-MAX_HISTORY:]]


def searched_text(index: ReportIndex, question: str, history: list[str]) -> str:
    """What a prepared `question` is searched as after the checked `history` (`followup.resolve`)."""
    if not question or not history:
        return question
    known = tuple(getattr(index, "city_codes", None) or ())  # an added report's city is a place too
    return prepare_question(resolve(question, history, known_cities=known).searched)[0]


def clamp_top_k(top_k) -> int:
    """`top_k` within 1..MAX_TOP_K; None is the default."""
    return max(1, min(DEFAULT_TOP_K if top_k is None else int(top_k), MAX_TOP_K))


def row_mask(index: ReportIndex, city: str = "", report: str = "", dates: tuple[str, str] | None = None) -> np.ndarray | None:
    """The passages a search may return: those of `city` and/or report `report`, and of reports
    whose date falls (at least partly) within `dates` (`date_range`) or is unknown; None for all."""
    if not (city or report or dates):
        return None
    mask = np.ones(len(index.chunks), bool)
    if city:
        mask &= index.chunk_city == index.city_codes.get(city, -1)
    if report:
        mask &= np.array([c.doc_id == report for c in index.chunks], bool)
    if dates:
        spans = {d.id: date_span(d.date) for d in index.docs.values()}
        keep = {i for i, s in spans.items() if s is None or (s[1] >= dates[0] and s[0] <= dates[1])}
        mask &= np.array([c.doc_id in keep for c in index.chunks], bool)
    return mask


def answer(index: ReportIndex, question, *, history: Sequence[str] | None = None, top_k: int | None = DEFAULT_TOP_K,
           mode: str = "hybrid", city: str = "", report: str = "", date_from: str = "", date_to: str = "",
           settings: SearchSettings | None = None) -> Answer:  # fmt: skip
    """The passages of `index` answering `question`, only from `city` and/or `report` and of reports dated
    from `date_from` to `date_to` (YYYY, YYYY-MM or YYYY-MM-DD; undated reports are kept) when given;
    a follow-up is read with `history`, the earlier questions of the conversation (oldest first)."""
    return answer_many(index, [question], histories=[history], top_k=top_k, mode=mode, city=city, report=report,
                       date_from=date_from, date_to=date_to, settings=settings)[0]  # fmt: skip


def answer_many(index: ReportIndex, questions: Sequence, *, histories: Sequence[Sequence[str] | None] | None = None,
                top_k: int | None = DEFAULT_TOP_K, mode: str = "hybrid", city: str = "", report: str = "",
                date_from: str = "", date_to: str = "", settings: SearchSettings | None = None) -> list[Answer]:  # fmt: skip
    """`answer` for several questions, their embeddings computed in one batch; `histories`, when
    given, holds each question's history (None for none). A bad history raises `HistoryError`, a
    bad date `DateError`."""
    from .index import SearchSettings

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if histories is not None and len(histories) != len(questions):
        raise ValueError(f"histories: one per question ({len(questions)}), not {len(histories)}")
    settings = settings or SearchSettings()
    top_k = clamp_top_k(top_k)
    dates = date_range(date_from, date_to)
    prepared = [prepare_question(q) for q in questions]
    checked = [check_history(h) for h in histories] if histories is not None else [[] for _ in questions]
    searched = [searched_text(index, q, h) for (q, _), h in zip(prepared, checked)]
    todo = [i for i, (q, _) in enumerate(prepared) if q]
    mask = row_mask(index, city, report, dates)
    found = index.search_many([searched[i] for i in todo], top_k=top_k, mode=mode, settings=settings, mask=mask)
    out: list[Answer] = [Answer(q, [], False, 0.0, notice=EMPTY_NOTICE) for q, _ in prepared]
    for i, ans in zip(todo, found):
        ans.question, ans.searched = prepared[i][0], searched[i]  # the search saw only the text searched
        notice = prepared[i][1]
        if mask is not None and not ans.hits:
            notice = notice or NO_MATCH_NOTICE
        if dates and any(undated(h.doc) for h in ans.hits):
            notice = notice or UNDATED_NOTICE
        ans.notice = notice or ans.notice
        ans.answer = answer_value(ans)
        out[i] = ans
    return out
