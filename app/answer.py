"""The one use case: a question in, an `Answer` out. Every front end calls `answer` (or
`answer_many` for a batch): the CLI, the chat, the Gradio `ask` endpoint, the evaluation
and the benchmark, so a question is prepared, filtered and searched the same way everywhere.

With a `history` (the earlier questions of the conversation, oldest first), a follow-up
("那吕梁呢？") is searched as `followup.resolve` merges it with them; `Answer.searched` is the
text searched, the question itself when nothing was rewritten."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .answerline import answer_value
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
MAX_HISTORY = MAX_TURNS  # earlier questions read: a longer history is cut to its last ones


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


def row_mask(index: ReportIndex, city: str = "", report: str = "") -> np.ndarray | None:
    """The passages a search may return: those of `city` and/or report `report`; None for all."""
    if not (city or report):
        return None
    mask = np.ones(len(index.chunks), bool)
    if city:
        mask &= index.chunk_city == index.city_codes.get(city, -1)
    if report:
        mask &= np.array([c.doc_id == report for c in index.chunks], bool)
    return mask


def answer(index: ReportIndex, question, *, history: Sequence[str] | None = None, top_k: int | None = DEFAULT_TOP_K,
           mode: str = "hybrid", city: str = "", report: str = "", settings: SearchSettings | None = None) -> Answer:  # fmt: skip
    """The passages of `index` answering `question`, only from `city` and/or `report` when given;
    a follow-up is read with `history`, the earlier questions of the conversation (oldest first)."""
    return answer_many(index, [question], histories=[history], top_k=top_k, mode=mode, city=city, report=report,
                       settings=settings)[0]  # fmt: skip


def answer_many(index: ReportIndex, questions: Sequence, *, histories: Sequence[Sequence[str] | None] | None = None,
                top_k: int | None = DEFAULT_TOP_K, mode: str = "hybrid", city: str = "", report: str = "",
                settings: SearchSettings | None = None) -> list[Answer]:  # fmt: skip
    """`answer` for several questions, their embeddings computed in one batch; `histories`, when
    given, holds each question's history (None for none). A bad history raises `HistoryError`."""
    from .index import SearchSettings

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if histories is not None and len(histories) != len(questions):
        raise ValueError(f"histories: one per question ({len(questions)}), not {len(histories)}")
    settings = settings or SearchSettings()
    top_k = clamp_top_k(top_k)
    prepared = [prepare_question(q) for q in questions]
    checked = [check_history(h) for h in histories] if histories is not None else [[] for _ in questions]
    searched = [searched_text(index, q, h) for (q, _), h in zip(prepared, checked)]
    todo = [i for i, (q, _) in enumerate(prepared) if q]
    mask = row_mask(index, city, report)
    found = index.search_many([searched[i] for i in todo], top_k=top_k, mode=mode, settings=settings, mask=mask)
    out: list[Answer] = [Answer(q, [], False, 0.0, notice=EMPTY_NOTICE) for q, _ in prepared]
    for i, ans in zip(todo, found):
        ans.question, ans.searched = prepared[i][0], searched[i]  # the search saw only the text searched
        notice = prepared[i][1]
        if mask is not None and not ans.hits:
            notice = notice or NO_MATCH_NOTICE
        ans.notice = notice or ans.notice
        ans.answer = answer_value(ans)
        out[i] = ans
    return out
