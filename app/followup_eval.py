"""Follow-up conversations evaluated: hit@1, hit@5 and refusals of each follow-up searched as
`followup.resolve` rewrites it, and as typed (what the search did before), so the gain is measured.

`eval/conversations.jsonl` holds one conversation a line: {"id", "kind", "history": [earlier
questions], "question": the follow-up, "expected_searched", "evidence": [substrings of the
report answering it; empty when the reports do not]}. Hits are judged as in `evaluate`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .evaluate import Question, score
from .followup import resolve

if TYPE_CHECKING:
    from .index import ReportIndex
    from .records import Answer

TOP_K = 10


@dataclass(frozen=True)
class Conversation:
    """Earlier questions, then a follow-up and what it should be searched as."""

    id: str
    kind: str  # city_swap, aspect_swap, year_swap, pronoun, english, unanswerable
    history: tuple[str, ...]
    question: str
    expected_searched: str
    evidence: tuple[str, ...]


def load_conversations(path: Path) -> list[Conversation]:
    out = []
    for line in Path(path).read_text("utf-8").splitlines():
        if line.strip():
            o = json.loads(line)
            out.append(Conversation(str(o["id"]), o.get("kind", ""), tuple(o["history"]), o["question"],
                                    o.get("expected_searched", o["question"]), tuple(o.get("evidence", []))))  # fmt: skip
    return out


def evaluate_conversations(index: ReportIndex, conversations: list[Conversation],
                           answer_fn: Callable[..., Answer] | None = None) -> dict:  # fmt: skip
    """Figures of the follow-ups searched as resolved, as typed and as expected, with
    `answer_fn(index, text, top_k=10)` (default `answer.answer`): hit@1 and hit@5 over the answerable
    ones, refusals of the unanswerable ones, answerable ones wrongly refused; per kind; and the
    share resolved exactly as expected."""
    if answer_fn is None:
        from .answer import answer as answer_fn
    known = tuple(index.city_codes)
    resolved = [resolve(c.question, list(c.history), known_cities=known).searched for c in conversations]
    out: dict = {"n": len(conversations)}
    variants = {
        "resolved": resolved,
        "as_typed": [c.question for c in conversations],  # each message searched alone, as before
        "expected": [c.expected_searched for c in conversations],  # the resolver's ceiling: search misses remain
    }
    for name, texts in variants.items():
        results = []
        for c, text in zip(conversations, texts):
            q = Question(c.id, text, c.kind, list(c.evidence))
            results.append(score(answer_fn(index, text, top_k=TOP_K), q, TOP_K))
        out[name] = _figures(results)
        out[name]["per_kind"] = {k: _figures([r for r in results if r.question.category == k])
                                 for k in sorted({c.kind for c in conversations})}  # fmt: skip
    wrong = [c.id for c, s in zip(conversations, resolved) if s != c.expected_searched]
    out["resolution"] = {"as_expected": 1 - len(wrong) / len(conversations) if conversations else 0.0, "unexpected": wrong}
    return out


def _figures(results) -> dict:
    ans = [r for r in results if r.question.evidence]
    una = [r for r in results if not r.question.evidence]
    m: dict = {"answerable": len(ans), "unanswerable": len(una)}
    if ans:
        m["hit@1"] = sum(1 for r in ans if r.ranks and r.ranks[0] == 1) / len(ans)
        m["hit@5"] = sum(1 for r in ans if r.ranks and r.ranks[0] <= 5) / len(ans)
        m["wrongly_refused"] = sum(1 for r in ans if not r.answered)
        m["missed"] = [r.question.id for r in ans if not (r.ranks and r.ranks[0] <= 5)]
    if una:
        m["refused"] = sum(1 for r in una if not r.answered) / len(una)
        m["not_refused"] = [r.question.id for r in una if r.answered]
    return m
