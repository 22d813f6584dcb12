"""Follow-up conversations evaluated: hit@1, hit@5 and refusals of each follow-up searched with its
history (the answer path rewrites it with `followup.resolve`), and as typed (what the search did
before), so the gain is measured; and the proof that standalone questions are never rewritten.
`reportqa eval` writes both into report.md (`report_lines`).

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

from .evaluate import Question, score, table
from .followup import resolve

if TYPE_CHECKING:
    from .index import ReportIndex, SearchSettings
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


def evaluate_conversations(index: ReportIndex, conversations: list[Conversation], answer_fn: Callable[..., Answer] | None = None,
                           settings: SearchSettings | None = None) -> dict:  # fmt: skip
    """Figures of the follow-ups searched with their history (the answer path resolves them), as
    typed (each message alone, as before) and as expected (the resolver's ceiling), with
    `answer_fn(index, text, top_k=10, history=..., settings=...)` (default `answer.answer`): hit@1 and
    hit@5 over the answerable ones, refusals of the unanswerable ones, answerable ones wrongly refused;
    per kind; and the share searched exactly as expected."""
    if answer_fn is None:
        from .answer import answer as answer_fn
    out: dict = {"n": len(conversations)}
    variants = {
        "resolved": [(c.question, list(c.history)) for c in conversations],  # what every front end does now
        "as_typed": [(c.question, []) for c in conversations],  # each message searched alone, as before
        "expected": [(c.expected_searched, []) for c in conversations],  # the resolver's ceiling: search misses remain
    }
    searched: list[str] = []
    for name, asks in variants.items():
        results = []
        for c, (text, history) in zip(conversations, asks):
            q = Question(c.id, text, c.kind, list(c.evidence))
            ans = answer_fn(index, text, top_k=TOP_K, history=history, settings=settings)
            if name == "resolved":
                searched.append(ans.searched)
            results.append(score(ans, q, TOP_K))
        out[name] = _figures(results)
        out[name]["per_kind"] = {k: _figures([r for r in results if r.question.category == k])
                                 for k in sorted({c.kind for c in conversations})}  # fmt: skip
    wrong = [c.id for c, s in zip(conversations, searched) if s != c.expected_searched]
    out["resolution"] = {"as_expected": 1 - len(wrong) / len(conversations) if conversations else 0.0, "unexpected": wrong}
    return out


def standalone_check(index: ReportIndex, questions: list[Question], followups: list[str] = (),
                     settings: SearchSettings | None = None) -> dict:  # fmt: skip
    """Proof that resolution leaves standalone questions alone: each of `questions` resolved after
    every other one (`followup.resolve`, the pairs), and answered through the answer path after the
    question before it and a follow-up (`answer_many`), must be searched as typed. Returns the
    counts and the ids of any question rewritten."""
    from .answer import answer_many

    known = tuple(index.city_codes)
    texts = [q.question for q in questions]
    rewritten = {q.id for q in questions for h in texts if h != q.question and resolve(q.question, [h], known).searched != q.question}
    histories = [[texts[i - 1], followups[i % len(followups)]] if followups else [texts[i - 1]] for i in range(len(texts))]
    answers = answer_many(index, texts, histories=histories, top_k=1, settings=settings)
    rewritten |= {q.id for q, a in zip(questions, answers) if a.searched != a.question}
    n = len(texts)
    return {"questions": n, "pairs": n * (n - 1), "answered": n, "rewritten": sorted(rewritten)}


def report_lines(index: ReportIndex, conversations_path: Path, question_sets: dict[str, list[Question]],
                 settings: SearchSettings | None = None, echo: Callable = print) -> tuple[dict, list[str]]:  # fmt: skip
    """The follow-up section of `reportqa eval`: (its figures for results.json, its lines of report.md)."""
    convs = load_conversations(conversations_path)
    out = evaluate_conversations(index, convs, settings=settings)
    standalone = {name: standalone_check(index, qs, [c.question for c in convs], settings) for name, qs in question_sets.items()}
    out["standalone"] = standalone
    n_ans, n_una = out["resolved"]["answerable"], out["resolved"]["unanswerable"]
    kinds = sorted(out["resolved"]["per_kind"])
    lines = [f"## Follow-up conversations ({len(convs)}: {n_ans} answerable, {n_una} not)", "",
             f"`{conversations_path.name}`: two-turn conversations, the follow-up searched with its history (`resolved`,",
             "what every front end does), alone as typed (`as typed`, as before), and as the conversation expects it",
             "(`expected`: the resolver's ceiling). hit@k over the answerable follow-ups (top 10 searched);",
             "`refused`: share of the unanswerable ones refused.", "",
             table({k: out[k] for k in ("resolved", "as_typed", "expected")},
                   ["answerable", "hit@1", "hit@5", "wrongly_refused", "unanswerable", "refused"]), "",
             "Per kind (hit@1 / hit@5; for the unanswerable ones, the share refused):", "", "| kind | n | resolved | as typed |", "|---|---|---|---|"]  # fmt: skip
    for k in kinds:
        cells = []
        for variant in ("resolved", "as_typed"):
            m = out[variant]["per_kind"][k]
            cells.append(f"{m['hit@1']:.2f} / {m['hit@5']:.2f}" if "hit@1" in m else f"refused {m['refused']:.2f}")
        lines.append(f"| {k} | {sum(1 for c in convs if c.kind == k)} | {cells[0]} | {cells[1]} |")
    res = out["resolved"]
    lines += ["", f"Resolved exactly as expected: {out['resolution']['as_expected']:.3f}"
              + (f" (not: {', '.join(out['resolution']['unexpected'])})" if out["resolution"]["unexpected"] else "") + "."]  # fmt: skip
    if res.get("missed"):
        lines.append(f"Resolved follow-ups with no hit in the top 5: {', '.join(res['missed'])}.")
    if res.get("not_refused"):
        lines.append(f"Unanswerable follow-ups answered: {', '.join(res['not_refused'])}.")
    lines += ["", "Standalone questions are never rewritten: each question of a set resolved after every other one",
              "of it, and searched through the answer path after the question before it and a follow-up:", ""]  # fmt: skip
    for name, s in standalone.items():
        lines.append(f"- {name}: {s['questions']} questions, {s['pairs']} pairs, {len(s['rewritten'])} rewritten"
                     + (f" ({', '.join(s['rewritten'])})" if s["rewritten"] else "") + ".")  # fmt: skip
    lines.append("")
    echo(f"follow-ups resolved hit@1={res.get('hit@1', 0):.3f} hit@5={res.get('hit@5', 0):.3f} refused={res.get('refused', 0):.3f}"
         f"  as typed hit@1={out['as_typed'].get('hit@1', 0):.3f} hit@5={out['as_typed'].get('hit@5', 0):.3f}"
         f"  standalone rewritten={sum(len(s['rewritten']) for s in standalone.values())}")  # fmt: skip
    return out, lines


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
