"""Quality floors of the learned model, measured as `reportqa train` and `reportqa eval --external`
measure them: retrained by article folds on the shipped data (the real model), out of fold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "benchmarks"
# Targets of issue #13; the figures of eval/report.md stand beside them in eval/tuning.md.
OPEN_DOMAIN = {"refused": 0.85, "auc": 0.95}  # at false refusal <= 0.03, on DRCD and CMRC article halves

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(real_encoder):
    from app.train import cached_groups, fit, summary

    if not (BENCH / "drcd_dev.json").exists():
        pytest.skip(f"{BENCH} holds no benchmarks")
    t = fit(cached_groups(ROOT, BENCH, ROOT / "eval" / "cache", real_encoder, echo=print), echo=print)
    return t, summary(t)


def test_open_domain_refusal_on_the_article_split(trained):
    _, r = trained
    for ds in ("cmrc2018-od", "drcd-od"):
        m = r["open_domain"][ds]
        assert m["false_refusal"] <= 0.03 + 1e-9
        assert m["refused"] >= OPEN_DOMAIN["refused"], f"{ds}: refused {m['refused']:.3f} at false refusal <= 3%"
        assert m["auc"] >= OPEN_DOMAIN["auc"], f"{ds}: ROC AUC {m['auc']:.3f}"
        assert m["auc"] > m["hand_set"]["auc"]  # better than the hand-set confidence it replaced


def test_the_threshold_refuses_few_answerable_questions_of_a_whole_set(trained):
    """At the shipped threshold, the questions of CMRC and DRCD asked of all their paragraphs (as a
    user with a collection that size asks them) are answered: a model whose features grew with the
    index once refused 84% of DRCD's."""
    _, r = trained
    for ds in ("cmrc2018", "drcd"):
        m = r["refusal"][ds]
        assert m["wrongly_refused"] <= 0.03 * m["answerable"], f"{ds}: {m['wrongly_refused']}/{m['answerable']} refused"


def test_reranking_beats_the_fused_order_out_of_fold(trained):
    """Strictly on CMRC (1,002 questions) and DRCD (3,524). On the report questions, out of fold,
    the reranker's first passage moves with the last bits of the embeddings: fresh builds of the
    same code gave hit@1 0.915, 0.926, 0.936 and 0.979 on one machine and 0.904 on another (fused:
    0.936), the reports being only five articles, each fold trained on the other four. So the 129
    report questions (the 94 out of fold and the 35 held out, never trained on) are taken together,
    by MRR@10, which moves less than hit@1: the reranker may not lose more than one question's worth
    to the fused order there (on the machine of 0.904: 0.952 against 0.954)."""
    _, r = trained
    for ds in ("cmrc2018", "drcd"):
        m = r["ranking"][ds]
        assert m["reranked"]["hit@1"] >= m["fused"]["hit@1"] - 1e-9, ds
        assert m["reranked"]["mrr@10"] >= m["fused"]["mrr@10"] - 1e-9, ds
    assert r["ranking"]["drcd"]["reranked"]["hit@1"] > r["ranking"]["drcd"]["fused"]["hit@1"]
    sets = [r["ranking"][ds] for ds in ("reports", "heldout")]
    n = sum(m["fused"]["n"] for m in sets)

    def pooled(order: str) -> float:
        return sum(m[order]["mrr@10"] * m[order]["n"] for m in sets) / n

    assert pooled("reranked") >= pooled("fused") - 1 / n - 1e-9, (pooled("reranked"), pooled("fused"))


def test_the_shipped_model_is_what_training_gives(trained):
    """The committed model file is reproduced by `reportqa train` on the shipped data: the retrained
    reranker picks the same first passage for (nearly) every question, and the thresholds agree."""
    from app import trust

    t, _ = trained
    shipped = trust.shipped()
    assert shipped is not None, "app/models/trust.json is missing: run `reportqa train`"
    retrained = trust.Trust(t.ranker, t.answerable, t.cal_x, t.cal_y, t.threshold)
    # Embeddings of another run can differ in the last bits, which moves near-ties: the same first
    # passage for nearly every question, not the same bytes, is what a rebuild must give.
    same = [np.argmax(shipped.rank(g.X)) == np.argmax(retrained.rank(g.X)) for g in t.groups if len(g.labels)]
    assert np.mean(same) >= 0.95
    assert abs(shipped.threshold - t.threshold) < 0.15
