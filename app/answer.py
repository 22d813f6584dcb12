"""The one use case: a question in, an `Answer` out. Every front end calls `answer` (or
`answer_many` for a batch): the CLI, the chat, the Gradio `ask` endpoint, the evaluation
and the benchmark, so a question is prepared, filtered and searched the same way everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .answerline import answer_value
from .records import Answer

if TYPE_CHECKING:
    from .index import ReportIndex, SearchSettings

MAX_QUESTION = 2000  # characters kept of a question; e5 reads at most 512 tokens
DEFAULT_TOP_K = 5
MAX_TOP_K = 50
MODES = ("hybrid", "dense", "keyword")
EMPTY_NOTICE = "empty question: type a question about the reports"
NO_MATCH_NOTICE = "no passage matches the chosen city and report"


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


def answer(index: ReportIndex, question, *, top_k: int | None = DEFAULT_TOP_K, mode: str = "hybrid", city: str = "",
           report: str = "", settings: SearchSettings | None = None) -> Answer:  # fmt: skip
    """The passages of `index` answering `question`, only from `city` and/or `report` when given."""
    return answer_many(index, [question], top_k=top_k, mode=mode, city=city, report=report, settings=settings)[0]


def answer_many(index: ReportIndex, questions: Sequence, *, top_k: int | None = DEFAULT_TOP_K, mode: str = "hybrid",
                city: str = "", report: str = "", settings: SearchSettings | None = None) -> list[Answer]:  # fmt: skip
    """`answer` for several questions, their embeddings computed in one batch."""
    from .index import SearchSettings

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    settings = settings or SearchSettings()
    top_k = clamp_top_k(top_k)
    prepared = [prepare_question(q) for q in questions]
    todo = [i for i, (q, _) in enumerate(prepared) if q]
    mask = row_mask(index, city, report)
    found = index.search_many([prepared[i][0] for i in todo], top_k=top_k, mode=mode, settings=settings, mask=mask)
    out: list[Answer] = [Answer(q, [], False, 0.0, notice=EMPTY_NOTICE) for q, _ in prepared]
    for i, ans in zip(todo, found):
        notice = prepared[i][1]
        if mask is not None and not ans.hits:
            notice = notice or NO_MATCH_NOTICE
        ans.notice = notice or ans.notice
        ans.answer = answer_value(ans)
        out[i] = ans
    return out
