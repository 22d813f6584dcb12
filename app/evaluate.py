"""Retrieval evaluation: hit@k, MRR@10 and nDCG@10 per mode and category, refusals,
and the external DRCD / CMRC 2018 benchmarks.

Question files are JSONL: {"id", "question", "category", "evidence": [substring, ...]}.
A passage is a hit when it contains an evidence string after removing white space and
pinyin annotations and folding traditional to simplified script. Empty evidence means
the reports do not answer the question: the right response is a refusal.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .clean import PINYIN, strip_pinyin
from .index import ReportIndex, SearchSettings
from .records import Answer, Document
from .textnorm import normalise, squash

MODES = ("keyword", "dense", "fused", "hybrid")  # fused: hybrid without the learned reranker and confidence
KS = (1, 5, 10)


@dataclass
class Question:
    id: str
    question: str
    category: str
    evidence: list[str]
    doc_id: str = ""  # external sets: the paragraph the question belongs to


@dataclass
class Result:
    question: Question
    ranks: list[int]  # 1-based ranks of hit passages within the top 10
    answered: bool
    confidence: float
    covered: float = 0.0  # share of evidence strings found in the top 5
    highlighted: bool = False  # the best hit's highlighted sentence overlaps an occurrence of an evidence string
    contained: bool = False  # the first passage is a hit and its highlighted sentence holds a whole evidence string
    extra: dict = field(default_factory=dict)


def load_questions(path: Path) -> list[Question]:
    out = []
    for line in Path(path).read_text("utf-8").splitlines():
        if line.strip():
            o = json.loads(line)
            out.append(Question(str(o["id"]), o["question"], o.get("category", "all"), list(o.get("evidence", []))))
    return out


def is_hit(passage: str, evidence: list[str]) -> list[int]:
    """Indices of the evidence strings found in `passage` (normalised)."""
    p = squash(strip_pinyin(passage))
    return [i for i, ev in enumerate(evidence) if squash(strip_pinyin(ev)) in p]


def evidence_spans(passage: str, evidence: list[str]) -> list[tuple[int, int]]:
    """Where the evidence strings occur in `passage`: spans of the passage, each string matched
    as `is_hit` matches it (without white space and pinyin annotations, in simplified script)."""
    dropped = {i for m in PINYIN.finditer(passage) for i in range(m.start(), m.end())}
    keep = [i for i, c in enumerate(passage) if i not in dropped and not c.isspace()]
    kept = "".join(passage[i] for i in keep)
    folded = normalise(kept)
    if len(folded) != len(kept):  # a character that folds to several: fold one by one
        pieces = [(normalise(c), i) for c, i in zip(kept, keep)]
        folded, keep = "".join(p for p, _ in pieces), [i for p, i in pieces for _ in p]
    spans = []
    for ev in {squash(strip_pinyin(e)) for e in evidence}:
        start = folded.find(ev) if ev else -1
        while start >= 0:
            spans.append((keep[start], keep[start + len(ev) - 1] + 1))
            start = folded.find(ev, start + 1)
    return sorted(spans)


def on_evidence(passage: str, span: tuple[int, int], evidence: list[str]) -> bool:
    """Whether the highlighted `span` of `passage` overlaps an occurrence of an evidence string."""
    s, e = span
    return e > s and any(s < b and a < e for a, b in evidence_spans(passage, evidence))


def score(answer: Answer, q: Question, k: int = 10) -> Result:
    ranks, found, highlighted, contained = [], set(), False, False
    for r, h in enumerate(answer.hits[:k], 1):
        if q.doc_id and h.chunk.doc_id != q.doc_id:
            continue
        got = is_hit(h.chunk.text, q.evidence)
        if got:
            if not ranks:
                highlighted = on_evidence(h.chunk.text, h.highlight, q.evidence)
                s, e = h.highlight
                contained = r == 1 and any(a >= s and b <= e for a, b in evidence_spans(h.chunk.text, q.evidence))
            ranks.append(r)
            if r <= 5:
                found.update(got)
    covered = len(found) / len(q.evidence) if q.evidence else 0.0
    return Result(q, ranks, answer.answered, answer.confidence, covered, highlighted, contained)


def evaluate(index: ReportIndex, questions: list[Question], mode: str, settings: SearchSettings, k: int = 10) -> list[Result]:
    from dataclasses import replace

    from .answer import answer_many

    if mode == "fused":
        mode, settings = "hybrid", replace(settings, rerank=False)

    answers = answer_many(index, [q.question for q in questions], top_k=k, mode=mode, settings=settings)
    return [score(a, q, k) for a, q in zip(answers, questions)]


def metrics(results: list[Result]) -> dict:
    """hit@k, MRR@10, nDCG@10 over answerable questions; refusal counts."""
    ans = [r for r in results if r.question.evidence]
    una = [r for r in results if not r.question.evidence]
    m: dict = {"n": len(ans)}
    if ans:
        for k in KS:
            m[f"hit@{k}"] = sum(1 for r in ans if r.ranks and r.ranks[0] <= k) / len(ans)
        m["mrr@10"] = sum(1 / r.ranks[0] for r in ans if r.ranks and r.ranks[0] <= 10) / len(ans)
        nd = []
        for r in ans:
            top = [x for x in r.ranks if x <= 10]
            dcg = sum(1 / math.log2(x + 1) for x in top)
            ideal = sum(1 / math.log2(x + 1) for x in range(1, len(top) + 1)) if top else 1.0
            nd.append(dcg / ideal if ideal else 0.0)
        m["ndcg@10"] = sum(nd) / len(ans)
        m["wrongly_refused"] = sum(1 for r in ans if not r.answered)
        found = [r for r in ans if r.ranks]
        if found:  # of the questions with a hit: the best hit's highlight is on the evidence
            m["highlight"] = sum(r.highlighted for r in found) / len(found)
        first = [r for r in ans if r.ranks and r.ranks[0] == 1]
        if first:  # of the questions whose first passage is a hit: its highlight holds the evidence
            m["contains"] = sum(r.contained for r in first) / len(first)
    if una:
        m["unanswerable"] = len(una)
        m["refused"] = sum(1 for r in una if not r.answered)
    return m


def by_category(results: list[Result]) -> dict[str, dict]:
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        groups[r.question.category].append(r)
    return {c: metrics(rs) for c, rs in sorted(groups.items())}


def calibrate(results: list[Result], max_wrong: float = 0.05) -> float:
    """The refusal threshold refusing the most unanswerable questions while wrongly
    refusing at most `max_wrong` of the answerable ones (midpoint between neighbours)."""
    pos = sorted(r.confidence for r in results if r.question.evidence)
    neg = sorted(r.confidence for r in results if not r.question.evidence)
    if not pos:
        return 0.0
    allowed = int(math.floor(max_wrong * len(pos)))
    # refusing everything below pos[allowed] wrongly refuses `allowed` answerable questions
    cut = pos[allowed]
    below = [c for c in pos + neg if c < cut]
    return (max(below) + cut) / 2 if below else cut - 1e-6


# ---------------------------------------------------------------------- external sets


def load_squad(path: Path, prefix: str, limit: int | None = None) -> tuple[list[Document], list[Question]]:
    """SQuAD-style JSON: every paragraph a document, every question asked against all of them."""
    data = json.loads(Path(path).read_text("utf-8"))["data"]
    docs, qs = [], []
    for a, art in enumerate(data):
        for p, para in enumerate(art["paragraphs"]):
            did = f"{prefix}-{a}-{p}"
            docs.append(Document(id=did, title=art.get("title", ""), text=para["context"].strip()))
            for qa in para["qas"]:
                answers = sorted({x["text"] for x in qa["answers"] if x["text"].strip()})
                if answers:
                    qs.append(Question(str(qa["id"]), qa["question"], prefix, answers, doc_id=did))
    return docs, qs[:limit] if limit else qs


def external_index(name: str, docs: list[Document], cache: Path, encoder, echo: Callable) -> ReportIndex:
    """Build once and cache; a cached index is reused while corpus and settings match."""
    from .errors import ReportQAError
    from .index import BuildSettings, corpus_fingerprint

    folder = cache / name
    settings = BuildSettings(context=False)  # paragraphs have no city; titles are article names
    try:
        idx = ReportIndex.load(folder, encoder, settings, verify=False)
        if idx.fingerprint == corpus_fingerprint(docs):
            return idx
    except ReportQAError:
        pass
    from .progress import progress_bar

    t0 = time.perf_counter()
    reuse = ReportIndex.saved_vectors(folder, encoder.name)  # an older build's vectors still serve
    with progress_bar(f"embedding {name}") as progress:
        idx = ReportIndex.build(docs, encoder, settings, progress=progress, reuse=reuse)
    echo(f"{name}: built {len(idx.chunks)} passages in {time.perf_counter() - t0:.0f}s")
    idx.save(folder)
    return idx


# ---------------------------------------------------------------------- report


def _fmt(x) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def table(rows: dict[str, dict], cols: list[str]) -> str:
    out = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in rows.items():
        out.append(f"| {name} | " + " | ".join(_fmt(m.get(c, "")) for c in cols) + " |")
    return "\n".join(out)


def chart(curves: dict[str, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), squeeze=False)
    for ax, (title, modes) in zip(axes[0], curves.items()):
        for mode, ys in modes.items():
            ax.plot(range(1, len(ys) + 1), ys, marker="o", ms=3, label=mode, lw=2.2 if mode == "hybrid" else 1.4)
        ax.set_title(title)
        ax.set_xlabel("k (passages shown)")
        ax.set_ylabel("hit@k")
        low = min((min(ys) for ys in modes.values() if ys), default=0.0)
        ax.set_ylim(max(0.0, math.floor(low * 10 - 0.5) / 10), 1.005)  # zoomed in: the curves differ near the top
        ax.grid(alpha=0.3)
        if modes:
            ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curve(results: list[Result], kmax: int = 10) -> list[float]:
    ans = [r for r in results if r.question.evidence]
    return [sum(1 for r in ans if r.ranks and r.ranks[0] <= k) / max(len(ans), 1) for k in range(1, kmax + 1)]


def run_eval(questions_path: Path, index_dir: Path | None, out: Path, *, encoder, root: Path | None = None,
             external: bool = False, settings: SearchSettings | None = None, echo: Callable = print) -> dict:  # fmt: skip
    """Evaluate every mode on the question file (and held-out/external sets); write report.md and a chart.

    Without `index_dir` the five shipped reports are indexed in `out/cache/reports`
    (vectors reused while nothing changed); with it, that index is evaluated as it is.
    """
    from .changes import build_from
    from .config import project_root

    root = root or project_root()
    settings = settings or SearchSettings()
    if index_dir is None:
        # The questions are about the five shipped reports: index exactly those, apart
        # from the user's index (which may hold added reports).
        index = build_from([root / "corpus"], out / "cache" / "reports", encoder, if_stale=True).index
    else:
        index = ReportIndex.load(index_dir, encoder)
    sets = {"reports": load_questions(questions_path)}
    held = Path(questions_path).with_name("heldout.jsonl")
    if held.exists() and held != Path(questions_path):
        sets["held-out"] = load_questions(held)
    summary: dict = {"settings": settings.__dict__, "sets": {}}
    curves: dict = {}
    lines = ["# Retrieval evaluation", "", f"Generated by `reportqa eval{' --external' if external else ''}` on {time.strftime('%Y-%m-%d')}.",
             f"Search settings: `{settings}`.", ""]  # fmt: skip
    for name, qs in sets.items():
        per_mode = {}
        curves[name] = {}
        for mode in MODES:
            t0 = time.perf_counter()
            res = evaluate(index, qs, mode, settings)
            dt = time.perf_counter() - t0
            per_mode[mode] = (res, dt)
            curves[name][mode] = curve(res)
        rows = {m: metrics(r) | {"ms/question": 1000 * dt / len(qs)} for m, (r, dt) in per_mode.items()}
        summary["sets"][name] = {m: {"overall": rows[m], "categories": by_category(per_mode[m][0])} for m in MODES}
        lines += [f"## {name} ({len(qs)} questions)", "", "Over answerable questions; refusals from each mode's `answered` flag; `highlight`: of the questions with a hit, the share whose best hit's highlighted sentence overlaps the evidence.", "",
                  table(rows, ["n", "hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "highlight", "contains", "wrongly_refused", "unanswerable", "refused", "ms/question"]),
                  "", "Per category (hit@5 / MRR@10):", ""]  # fmt: skip
        cats = sorted({q.category for q in qs})
        lines.append("| category | n | " + " | ".join(MODES) + " |")
        lines.append("|---" * (len(MODES) + 2) + "|")
        for c in cats:
            cells = []
            for m in MODES:
                cm = summary["sets"][name][m]["categories"][c]
                cells.append(f"{cm['hit@5']:.2f} / {cm['mrr@10']:.2f}" if "hit@5" in cm else f"refused {cm.get('refused', 0)}/{cm.get('unanswerable', 0)}")
            lines.append(f"| {c} | {sum(1 for q in qs if q.category == c)} | " + " | ".join(cells) + " |")
        hyb = per_mode["hybrid"][0]
        conflict = [r for r in hyb if r.question.category == "conflict"]
        if conflict:
            lines += ["", f"Conflicting/repeated facts: every source in the top 5 for {sum(1 for r in conflict if r.covered == 1.0)}/{len(conflict)} questions."]
        misses = [r for r in hyb if r.question.evidence and not (r.ranks and r.ranks[0] <= 5)]
        if misses:
            lines += ["", "Hybrid misses (no hit in the top 5): " + ", ".join(f"{r.question.id} {r.question.question}" for r in misses)]
        lines.append("")
        for m in MODES:
            o = rows[m]
            echo(f"{name:9s} {m:8s} " + "  ".join(f"{k}={_fmt(o.get(k, ''))}" for k in ("hit@1", "hit@5", "mrr@10", "ndcg@10", "highlight", "contains", "wrongly_refused", "refused")))
    conversations = Path(questions_path).with_name("conversations.jsonl")
    if conversations.exists():
        from .followup_eval import report_lines

        summary["conversations"], more = report_lines(index, conversations, sets, settings, echo)
        lines += more
    if external:
        lines += external_eval(root, out, encoder, settings, summary, curves, echo)
        bench = root.parent / "shared" / "benchmarks"
        if (bench / "drcd_dev.json").exists() and (bench / "cmrc2018_trial.json").exists():
            lines += trust_eval(root, bench, out, encoder, summary, echo)
    out.mkdir(parents=True, exist_ok=True)
    chart(curves, out / "hit_at_k.png")
    lines += ["", "![hit@k per mode](hit_at_k.png)", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    (out / "results.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    echo(f"wrote {out / 'report.md'} and {out / 'hit_at_k.png'}")
    return summary


def external_eval(root: Path, out: Path, encoder, settings: SearchSettings, summary: dict, curves: dict, echo: Callable) -> list[str]:
    bench = root.parent / "shared" / "benchmarks"
    lines = ["## External benchmarks", "", f"From `{bench}`: every paragraph a document; a hit is a passage of the question's own paragraph containing an answer;",
             "`highlight` as above; `wrongly_refused`: questions under the answer threshold (every one has an answer).", ""]  # fmt: skip
    for name, file in (("cmrc2018", "cmrc2018_trial.json"), ("drcd", "drcd_dev.json")):
        if not (bench / file).exists():
            echo(f"skipping {name}: {bench / file} not found")
            continue
        docs, qs = load_squad(bench / file, name)
        idx = external_index(name, docs, out / "cache", encoder, echo)
        rows = {}
        curves[name] = {}
        for mode in MODES:
            t0 = time.perf_counter()
            res = evaluate(idx, qs, mode, settings, k=20)
            dt = time.perf_counter() - t0
            m = metrics(res)
            m["hit@20"] = sum(1 for r in res if r.ranks) / len(res)
            m["ms/question"] = 1000 * dt / len(qs)
            rows[mode] = m
            curves[name][mode] = curve(res, 20)
            echo(f"{name:9s} {mode:8s} hit@1={m['hit@1']:.3f} hit@5={m['hit@5']:.3f} hit@20={m['hit@20']:.3f} mrr@10={m['mrr@10']:.3f}"
                 f"  highlight={m.get('highlight', 0.0):.3f}  wrongly_refused={m['wrongly_refused']}")  # fmt: skip
        summary["sets"][name] = rows
        lines += [f"### {name} ({len(docs)} paragraphs, {len(qs)} questions)", "",
                  table(rows, ["hit@1", "hit@5", "hit@20", "mrr@10", "highlight", "contains", "wrongly_refused", "ms/question"]), ""]  # fmt: skip
    return lines


# ---------------------------------------------------------------------- the learned model, cross-validated


def trust_eval(root: Path, bench: Path, out: Path, encoder, summary: dict, echo: Callable) -> list[str]:
    """The reranker and answerability model retrained by article folds, as `reportqa train` does:
    out-of-fold ranking and refusal figures, confidence histograms and a reliability curve, and
    whether the retrained model is the shipped one byte for byte."""
    import tempfile

    from . import trust
    from .train import cached_groups, fit, format_spread, format_summary, spread
    from .train import summary as train_summary

    t = fit(cached_groups(root, bench, out / "cache", encoder, echo), echo)
    r = train_summary(t)
    with tempfile.TemporaryDirectory() as tmp:
        sha = trust.write(Path(tmp) / "trust.json", t.ranker, t.answerable, t.cal_x, t.cal_y, t.threshold, {})
    shipped = trust.shipped()
    r["shipped_threshold"] = shipped.threshold if shipped else None
    r["spread"] = spread(t, echo=echo)
    summary["trust"] = r
    trust_charts(t, out)
    same = (
        "the same models and threshold as"
        if shipped and abs(shipped.threshold - t.threshold) < 1e-12
        else "a model that differs from"
    )
    return ["## Learned reranker and answerability, cross-validated by article", "",
            "Every figure is out of fold: the models scoring a question never saw its article (a DRCD/CMRC article,",
            "a report); held-out questions are scored by the models trained on everything else. The sets and their",
            f"negatives are those of `reportqa train` (app/train.py). Retrained here: {same} the shipped `app/models/trust.json`",
            f"(model bytes sha256 {sha[:12]} without provenance).", "",
            format_summary(r), "", format_spread(r["spread"]), "", "![confidence](confidence.png)", "", "![reliability](reliability.png)", ""]  # fmt: skip


def trust_charts(t, out: Path) -> None:
    """confidence.png: histograms of the confidence, answerable vs not, per set; reliability.png:
    observed rate of a right first passage against the confidence (out of fold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sets = [ds for ds in ("reports", "heldout", "cmrc2018-od", "drcd-od") if any(g.dataset == ds for g in t.groups)]
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.4), squeeze=False)
    bins = np.linspace(0, 1, 21)
    for ax, ds in zip(axes[0], sets):
        idx = [i for i, g in enumerate(t.groups) if g.dataset == ds]
        ok = np.array([t.groups[i].answerable for i in idx])
        c = t.conf[idx]
        ax.hist(c[ok], bins=bins, alpha=0.65, label=f"answerable ({ok.sum()})", color="#2563eb")
        ax.hist(c[~ok], bins=bins, alpha=0.65, label=f"not answerable ({(~ok).sum()})", color="#dc2626")
        ax.axvline(t.threshold, color="#111827", ls="--", lw=1)
        ax.set_title(ds)
        ax.set_xlabel("confidence")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("questions (log scale)")
    fig.tight_layout()
    fig.savefig(out / "confidence.png", dpi=110)
    plt.close(fig)
    from .train import ANS_SETS

    train = [i for i, g in enumerate(t.groups) if g.dataset in ANS_SETS and g.fold >= 0]
    c, y = t.conf[train], t.top1[train]
    edges = np.linspace(0, 1, 11)
    xs, ys, ns = [], [], []
    for a, b in zip(edges[:-1], edges[1:]):
        m = (c >= a) & ((c < b) | (b == 1.0))
        if m.any():
            xs.append(c[m].mean()), ys.append(y[m].mean()), ns.append(int(m.sum()))
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="#9ca3af", lw=1, label="perfect calibration")
    ax.plot(xs, ys, marker="o", color="#2563eb", label="out of fold")
    for x, yv, n in zip(xs, ys, ns):
        ax.annotate(str(n), (x, yv), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("confidence (mean in bin)")
    ax.set_ylabel("first passage answers (observed share)")
    ax.set_title("Reliability of the confidence")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)
    plt.close(fig)
