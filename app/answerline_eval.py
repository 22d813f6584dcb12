"""How often the answer line gives the right value, and how often the conflict panel shows.

Exact match: the value shown (folded: script, width, spaces, thousands commas) equals a figure of
the gold answer, found in it as the answer line finds figures in sentences (so "约12万张" holds
"12万张", and "188所校外培训机构" holds "188所"). A question without an answer line counts as a miss.
`reportqa eval --answer-line [--external]` prints the figures (eval/answerline.md keeps them), for the
held-out questions too, and the questions no report answers for which an answer line states a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .answerline import FIGURE_KINDS, answer_line, asked_kind, candidates, extract
from .evaluate import Question, load_questions, load_squad
from .records import Answer

ASKED = FIGURE_KINDS | {"ordinal"}


def gold_keys(answers: list[str], kind: str) -> set[str]:
    """The figures of the gold answers, folded as `Value.key` folds a shown value."""
    keys = set()
    for a in answers:
        for k in (kind, "figure", "ordinal"):
            keys |= {v.key for v in candidates(a, k) if v.kind != "date"}
    return keys


def matches(key: str, gold: set[str]) -> bool:
    """A shown value matches the gold: the same figure and unit, or the same number where the gold
    gives a bare number ("220" for "220名")."""
    if key in gold:
        return True
    number = re.match(r"[\d.]+", key)
    return bool(number) and number.group() in gold


def figure_questions(questions: list[Question]) -> list[Question]:
    """Questions asking for a figure whose gold answer holds one."""
    return [
        q for q in questions if q.evidence and asked_kind(q.question) in ASKED and gold_keys(q.evidence, asked_kind(q.question))
    ]


@dataclass
class Match:
    n: int
    shown: int  # questions with an answer line
    exact: int  # ... whose value is a gold figure

    @property
    def rate(self) -> float:
        return self.exact / self.n if self.n else 0.0

    @property
    def precision(self) -> float:
        return self.exact / self.shown if self.shown else 0.0


def exact_match(answers: list[Answer], questions: list[Question]) -> Match:
    """Exact match of the answer line over `questions` (answered by `answers`, in order)."""
    shown = exact = 0
    for a, q in zip(answers, questions, strict=True):
        line = answer_line(a)
        if line is None:
            continue
        shown += 1
        exact += matches(line.stated[0].value.key, gold_keys(q.evidence, asked_kind(q.question)))
    return Match(len(questions), shown, exact)


def oracle_match(questions: list[Question], texts: dict[str, str]) -> Match:
    """The extractor alone: each question's own paragraph, its sentence chosen by `highlight`."""
    from .highlight import highlight
    from .query import parse_query

    shown = exact = 0
    for q in questions:
        text = texts[q.doc_id]
        s, e = highlight(text, parse_query(q.question, translate=False))
        v = extract(text[s:e], q.question)
        if v is None:
            continue
        shown += 1
        exact += matches(v.key, gold_keys(q.evidence, asked_kind(q.question)))
    return Match(len(questions), shown, exact)


def stated_unanswerable(answers: list[Answer], questions: list[Question]) -> list[str]:
    """The questions no report answers (no evidence) for which an answer line states a value:
    "id value question" each."""
    out = []
    for a, q in zip(answers, questions, strict=True):
        line = None if q.evidence else answer_line(a)
        if line is not None:
            out.append(f"{q.id} {line.value} {q.question}")
    return out


def conflict_rates(answers: list[Answer], questions: list[Question]) -> tuple[list[str], int, int, int]:
    """(ids of the conflict questions with the panel, their number, panels among the others, the others)."""
    shown_c, n_c, shown_o, n_o = [], 0, 0, 0
    for a, q in zip(answers, questions, strict=True):
        line = answer_line(a)
        panel = bool(line and line.conflict)
        if q.category == "conflict":
            n_c += 1
            if panel:
                shown_c.append(q.id)
        else:
            n_o += 1
            shown_o += panel
    return shown_c, n_c, shown_o, n_o


def run(root: Path, cache: Path, enc, external: bool = False, echo=print) -> int:
    """Print the answer line's exact match and the conflict panel's rates (`reportqa eval --answer-line`)."""
    from .answer import answer_many
    from .changes import build_from
    from .evaluate import external_index

    index = build_from([root / "corpus"], cache / "reports", enc, if_stale=True).index
    for name, file in (("reports", "questions.jsonl"), ("heldout", "heldout.jsonl")):
        hq = load_questions(root / "eval" / file)
        ha = answer_many(index, [q.question for q in hq], top_k=5)
        fq = [q for q in hq if q in figure_questions(hq)]
        m = exact_match([a for a, q in zip(ha, hq) if q in fq], fq)
        echo(f"{name}: exact match {m.exact}/{m.n} = {m.rate:.3f} (answer line shown {m.shown}, precision {m.precision:.3f})")
        for a, q in zip(ha, hq):
            if q in fq:
                line = answer_line(a)
                echo(f"  {q.id} {'OK ' if line and matches(line.stated[0].value.key, gold_keys(q.evidence, asked_kind(q.question))) else 'no '}"
                      f"{line.value if line else None!s:12} gold {q.evidence} {q.question}")  # fmt: skip
        stated = stated_unanswerable(ha, hq)
        n = sum(not q.evidence for q in hq)
        echo(
            f"{name}: an answer line stated for {len(stated)}/{n} questions no report answers"
            + "".join(f"\n  {s}" for s in stated)
        )
        if name == "reports":
            qs, answers = hq, ha
    ids, n_c, s_o, n_o = conflict_rates(answers, qs)
    echo(f"conflict panel: {len(ids)}/{n_c} conflict questions ({', '.join(ids)}); {s_o}/{n_o} others = {s_o / max(n_o, 1):.3f}")
    for a, q in zip(answers, qs):
        line = answer_line(a)
        if line and line.conflict:
            echo(f"  panel {q.id} [{q.category}] " + " / ".join(f"{s.value.text}{list(s.ranks)}" for s in line.stated))
    if external:
        bench = root.parent / "shared" / "benchmarks"
        for name, file in (("cmrc2018", "cmrc2018_trial.json"), ("drcd", "drcd_dev.json")):
            docs, eqs = load_squad(bench / file, name)
            fq = figure_questions(eqs)
            o = oracle_match(fq, {d.id: d.text for d in docs})
            echo(
                f"{name}: {len(fq)} figure questions; own paragraph: exact match {o.exact}/{o.n} = {o.rate:.3f} (shown {o.shown})"
            )
            idx = external_index(name, docs, cache, enc, echo)
            ans = answer_many(idx, [q.question for q in fq], top_k=5)
            m = exact_match(ans, fq)
            echo(f"{name}: retrieved: exact match {m.exact}/{m.n} = {m.rate:.3f} (shown {m.shown}, precision {m.precision:.3f})")
    return 0
