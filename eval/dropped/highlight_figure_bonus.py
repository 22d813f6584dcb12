"""Tried and dropped (eval/tuning.md): a figure bonus added after the blended highlight's normalisation.

The learned path's highlight scores each sentence as lexical/best + w x (similarity - best similarity);
the lexical score already holds `highlight.FIGURE_BONUS` (4, in absolute units that long question
words outweigh). This variant adds B more, in the normalised units, to a sentence holding a figure of
the kind the question asks for. Prints "contains" (the first passage a hit, its highlighted sentence
holding a whole evidence string) on the reports, the held-out set, CMRC trial and DRCD dev for each B.

    .venv/bin/python eval/dropped/highlight_figure_bonus.py 0 0.25 0.5 1 2
    .venv/bin/python eval/dropped/highlight_figure_bonus.py --unit 0 0.5 1 2

`--unit`: the bonus goes to a sentence holding a count in the measure word the question asks for
(`answerline.question_unit`: 多少所 -> 所, with the measure words counting the same things), and only
when the question names one (measured at 02c4e18).

Needs the default index (`reportqa index`) and the external indexes in eval/cache (`reportqa eval
--external` or `reportqa train` builds them). Measured at 83bb16f: B = 0 gives the shipped figures.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app import search  # noqa: E402
from app.answer import answer_many  # noqa: E402
from app.answerline import _same_unit, candidates, question_unit  # noqa: E402
from app.config import Config  # noqa: E402
from app.evaluate import external_index, load_questions, load_squad, score  # noqa: E402
from app.highlight import best_sentence, sentence_index  # noqa: E402
from app.index import ReportIndex  # noqa: E402

B = 0.0


def blended(text, lexical, sims, weight, figure):
    idx = sentence_index(text)
    if not weight > 0 or len(sims) != len(idx) or np.isnan(sims).any():
        return best_sentence(text, lexical)
    lex = np.asarray(lexical, np.float64)
    top = lex.max()
    if UNIT_MODE:
        unit = question_unit(QUESTION or "")
        fig = np.array([float(bool(unit) and any(v.unit and _same_unit(v.unit, unit) for v in candidates(text[s.start : s.end], "figure")))
                        for s in idx])  # fmt: skip
    else:
        fig = np.array([1.0 if figure and figure in s.figures else 0.0 for s in idx])
    sc = (lex / top if top > 0 else lex) + B * fig + weight * (sims - sims.max())
    best = idx[int(np.argmax(sc))]
    return best.start, best.end


FIGURE: str | None = None  # the kind of figure the question being blended asks for
QUESTION: str | None = None  # the question being blended
UNIT_MODE = False
_blend_highlights = search._blend_highlights


def blend(index, sl, hits, weight):  # search._blend_highlights, noting the kind of figure asked first
    global FIGURE, QUESTION
    FIGURE, QUESTION = sl.query.figure, sl.query.text
    _blend_highlights(index, sl, hits, weight)


def main(bonuses: list[float]) -> None:
    global B
    search._blend_highlights = blend
    search.blended_highlight = lambda text, lexical, sims, weight: blended(text, lexical, sims, weight, FIGURE)
    cfg = Config.from_env(os.environ)
    enc = cfg.encoder()
    bench = ROOT.parent / "shared" / "benchmarks"
    reports = ReportIndex.load(cfg.index, enc)
    sets = {
        n: (reports, [q for q in load_questions(ROOT / "eval" / f"{n}.jsonl") if q.evidence]) for n in ("questions", "heldout")
    }
    for name, f in (("cmrc2018", "cmrc2018_trial.json"), ("drcd", "drcd_dev.json")):
        docs, qs = load_squad(bench / f, name)
        sets[name] = (external_index(name, docs, ROOT / "eval" / "cache", enc, print), qs)
    for B in bonuses:
        row = {}
        for name, (idx, qs) in sets.items():
            rs = [score(a, q, 1) for a, q in zip(answer_many(idx, [q.question for q in qs], top_k=1), qs)]
            first = [r for r in rs if r.ranks and r.ranks[0] == 1]
            row[name] = [round(sum(r.contained for r in first) / len(first), 4), sum(r.contained for r in first), len(first)]
        print(B, json.dumps(row), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    UNIT_MODE = args[:1] == ["--unit"]
    main([float(x) for x in args[UNIT_MODE:]] or [0.0])
