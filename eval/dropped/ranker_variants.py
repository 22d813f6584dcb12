"""Tried and dropped (eval/tuning.md): the reranker bagged, boosted from the fused order, held to
monotone constraints, or given another loss.

Each variant patches `train._fit_ranker` (and the prediction of its models) and runs `train.fit` on
the groups of `reportqa train` (same article folds) five times: once as they are, then four times
with every feature multiplied by 1 + N(0, 1e-4) (seeds 1-4), the size of the last-bit differences
another machine's embeddings make. One JSON line a fit; a table of the means at the end.

    .venv/bin/python eval/dropped/ranker_variants.py base bag5 bag3r100l0.15 bag5r60l0.25 init2 init5

`base`: today's single model. `bagK[rR][lLR]`: K rankers of R rounds (default 300) at learning rate
LR (default 0.05), each on an 80% sample of the rows (`bagging_seed` SEED + i), scores averaged.
`initS`: LightGBM's `init_score` = S x the fused score, and S x the fused score added back to its
predictions. `mono[ans][adv]`: monotone constraints on the ranker's score, similarity, coverage and
rank columns (`MONO`; `ans`: the answerability model's too, `MONO_LIST`; `adv`: LightGBM's advanced
method). `ansmono[adv]`: the answerability model's constraints alone. `obj-rank_xendcg`, `obj-binary`: that
loss instead of lambdarank. `rel[d]`: the coverage columns (`REL`) also less the
shortlist's highest, and (without `d`) as log ranks within it; measured on feature-version-3 groups
(2337d79): `reld` became features v4 (`features.GAP_FEATURES`), so on v4 groups `base` is it. `t1gap` (v4 groups): the
answerability model also reads the reranked first passage's gaps (`T1GAP`: is it the best-covering one?). `noctx` (v5 groups of
`context-before.diff`): the text-before-the-passage columns held at 0, the reranker of v4 on the same rows. Each row also gives the ROC AUC of the confidence (`aucs`). The groups
come from eval/cache (`reportqa train` or `reportqa eval --external` build them, ~20 min, once;
`--groups FILE` reads a pickle of them instead). Measured at 1c4b5ed; about
40 s a fit, bag5 140 s.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app import features as FT  # noqa: E402
from app import train as T  # noqa: E402
from app.cli import make_encoder  # noqa: E402

SETS = ("reports", "heldout", "cmrc2018", "drcd")
FIT_RANKER, PREDICT = T._fit_ranker, T._predict
LIST_FEATURES_FN, FIT_ANSWERABLE = FT.list_features, T._fit_answerable
FUSED = FT.FEATURES.index("fused")


def patch(variant: str) -> None:
    T._fit_ranker, T._predict = FIT_RANKER, PREDICT
    FT.list_features, T._fit_answerable = LIST_FEATURES_FN, FIT_ANSWERABLE
    T.RANK_ROUNDS, T.RANK_PARAMS, T.ANS_PARAMS = 300, dict(ORIGINAL_PARAMS), dict(ORIGINAL_ANS)
    if variant == "base":
        return
    if m := re.fullmatch(r"bag(\d+)(?:r(\d+))?(?:l([\d.]+))?", variant):
        k = int(m.group(1))
        rounds, lr = int(m.group(2) or 300), float(m.group(3) or 0.05)

        class Bag(list):
            pass

        def fit_ranker(groups):
            bag = Bag()
            for i in range(k):
                T.RANK_ROUNDS = rounds
                T.RANK_PARAMS = dict(
                    ORIGINAL_PARAMS, learning_rate=lr, bagging_fraction=0.8, bagging_freq=1, bagging_seed=T.SEED + i
                )
                bag.append(FIT_RANKER(groups))
            return bag

        def predict(model, X):
            if isinstance(model, Bag):
                return np.mean([PREDICT(m, X) for m in model], axis=0) if len(X) else np.zeros(0)
            return PREDICT(model, X)

        T._fit_ranker, T._predict = fit_ranker, predict
    elif m := re.fullmatch(r"init([\d.]+)", variant):
        s = float(m.group(1))
        import lightgbm as lgb

        def fit_ranker(groups):
            X, y, w, sizes = ranker_rows(groups)
            ds = lgb.Dataset(X, y, group=sizes, weight=w, init_score=s * X[:, FUSED], feature_name=FT.FEATURES,
                             free_raw_data=False)  # fmt: skip
            return lgb.train(T.RANK_PARAMS, ds, T.RANK_ROUNDS)

        def predict(model, X):
            r = PREDICT(model, X)
            return r + s * X[:, FUSED] if len(X) and X.shape[1] == len(FT.FEATURES) else r

        T._fit_ranker, T._predict = fit_ranker, predict
    elif m := re.fullmatch(r"ansmono(adv)?", variant):  # the answerability model's constraints alone
        T.ANS_PARAMS = ans_mono("advanced" if m.group(1) else "basic")
    elif m := re.fullmatch(r"mono(ans)?(adv)?", variant):
        # monotone constraints: a passage never scores lower for a higher score, similarity or coverage
        # of the question, nor for a better (lower) rank; `ans`: the answerability model likewise on
        # the first passage's and the list's such columns
        method = "advanced" if m.group(2) else "basic"
        T.RANK_PARAMS = dict(ORIGINAL_PARAMS, monotone_constraints=[MONO.get(f, 0) for f in FT.FEATURES],
                             monotone_constraints_method=method)  # fmt: skip
        if m.group(1):
            T.ANS_PARAMS = ans_mono(method)
    elif m := re.fullmatch(r"obj-(rank_xendcg|binary)", variant):
        # another loss on the same rows: the listwise cross-entropy of rank_xendcg, or pointwise log-loss
        drop = ("metric", "eval_at", "lambdarank_truncation_level", "label_gain")
        T.RANK_PARAMS = {k: v for k, v in ORIGINAL_PARAMS.items() if k not in drop} | dict(objective=m.group(1))
    elif m := re.fullmatch(r"rel(d)?", variant):
        # the coverage columns made relative to the shortlist: each less the list's highest (`d`: that
        # alone; else also its rank in the list), so trees compare a passage with the others asked
        ranks = not m.group(1)
        names = FT.FEATURES + [f"{c}_gap" for c in REL] + ([f"{c}_lr" for c in REL] if ranks else [])

        def fit_ranker(groups):
            import lightgbm as lgb

            X, y, w, sizes = ranker_rows(groups, lambda X: relative(X, ranks))
            ds = lgb.Dataset(X, y, group=sizes, weight=w, feature_name=names, free_raw_data=False)
            return lgb.train(T.RANK_PARAMS, ds, T.RANK_ROUNDS)

        def predict(model, X):
            return PREDICT(model, relative(X, ranks) if len(X) and X.shape[1] == len(FT.FEATURES) else X)

        T._fit_ranker, T._predict = fit_ranker, predict
    elif variant == "noctx":  # features v5 groups: the text-before-the-passage columns held at 0 (v4's reranker)
        def fit_ranker(groups):
            import lightgbm as lgb

            X, y, w, sizes = ranker_rows(groups, without_ctx)
            ds = lgb.Dataset(X, y, group=sizes, weight=w, feature_name=list(FT.FEATURES), free_raw_data=False)
            return lgb.train(T.RANK_PARAMS, ds, T.RANK_ROUNDS)

        def predict(model, X):
            return PREDICT(model, without_ctx(X) if len(X) and X.shape[1] == len(FT.FEATURES) else X)

        T._fit_ranker, T._predict = fit_ranker, predict
    elif variant == "t1gap":  # features v4 groups: the answerability model also reads the first passage's gaps
        cols = [FT.FEATURES.index(f"{c}_gap") for c in T1GAP]

        def list_features(X, rr, doc_ids=None):
            L = LIST_FEATURES_FN(X, rr, doc_ids)
            extra = X[FT.reranked_order(X, rr)[0], cols] if len(X) else np.full(len(cols), np.nan, np.float32)
            return np.concatenate([L, extra]).astype(np.float32)

        import lightgbm as lgb

        def fit_answerable(L, y, w):
            names = FT.LIST_FEATURES + [f"t1_{c}_gap" for c in T1GAP]
            return lgb.train(T.ANS_PARAMS, lgb.Dataset(L, y, weight=w, feature_name=names), T.ANS_ROUNDS)

        FT.list_features, T._fit_answerable = list_features, fit_answerable
    else:
        raise SystemExit(f"unknown variant {variant!r}")


T1GAP = "cov cov_sent bcov sbest_cov fig_cov".split()
CTX_COLS = [FT.FEATURES.index(c) for c in ("ctx_cov", "cov_ctx", "cov_ctx_gap") if c in FT.FEATURES]


def without_ctx(X: np.ndarray) -> np.ndarray:
    X = X.copy()
    X[:, CTX_COLS] = 0.0
    return X


def ranker_rows(groups, columns=lambda X: X):
    """The reranker's training rows as `train._fit_ranker` builds them (groups with a hit, the report
    questions weighted), each group's features through `columns`: (X, labels, weights, group sizes)."""
    groups = [g for g in groups if len(g.labels) and g.labels.any()]
    X = np.concatenate([columns(g.X) for g in groups])
    y = np.concatenate([g.labels for g in groups])
    w = np.concatenate([np.full(len(g.labels), T.REPORT_WEIGHT if g.dataset == "reports" else 1.0) for g in groups])
    return X, y, w, [len(g.labels) for g in groups]


REL = "cov cov_sent bcov bcov_sent sbest_cov sbest2_cov sbest_bcov cov_nt bcov_nt fig_cov terms_cov title_cov".split()
REL_COLS = [FT.FEATURES.index(c) for c in REL]


def relative(X: np.ndarray, ranks: bool) -> np.ndarray:
    """`X` (one question's shortlist) with `REL`'s columns less their highest in the list, and their
    log ranks (1 + the number of passages above, ties sharing the best rank)."""
    V = X[:, REL_COLS].astype(np.float64)
    out = [X, V - V.max(axis=0)]
    if ranks:
        out.append(np.log1p((V[None, :, :] > V[:, None, :]).sum(axis=1)))
    return np.hstack(out).astype(np.float32)


UP = ("fused dense dense_max kw bg d_fused d_dense kw_rel bg_rel cov cov_sent bcov bcov_sent fig_cov top_tok top2_tok "
      "m_who m_when m_where m_fig title_cov terms_cov sbest_cov sbest2_cov sbest_bcov cov_nt bcov_nt "
      "ssim_max ssim_2nd ssim_hl d_ssim").split()  # fmt: skip
DOWN = "lr_fused lr_dense lr_kw lr_bg lr_ssim pos".split()
MONO = {f: 1 for f in UP} | {f: -1 for f in DOWN}
LIST_UP = ("rr1 rr_margin rr_p1 t1_dense t1_cov t1_cov_sent t1_bcov t1_bcov_sent t1_fig_cov t1_top_tok t1_kw_rel t1_bg_rel "
           "t1_title_cov t1_m_any t1_sbest_cov t1_sbest_bcov t1_bcov_nt t1_ssim_max t1_d_ssim").split()  # fmt: skip
MONO_LIST = {f: 1 for f in LIST_UP} | {"t1_lr_fused": -1}


def ans_mono(method: str) -> dict:
    """The answerability model's settings with `MONO_LIST`'s constraints."""
    return dict(ORIGINAL_ANS, monotone_constraints=[MONO_LIST.get(f, 0) for f in FT.LIST_FEATURES],
                monotone_constraints_method=method)  # fmt: skip


ORIGINAL_PARAMS, ORIGINAL_ANS = dict(T.RANK_PARAMS), dict(T.ANS_PARAMS)
# threshold-free: ROC AUC of the confidence, the answerable questions of a set against its unanswerable
# ones (None) or against another set's (the near misses)
AUC_PAIRS = {"reports": ("reports", None), "heldout": ("heldout", None), "reports-ar": ("reports", "reports-ar"),
             "drcd-ar": ("drcd", "drcd-ar"), "drcd-pd": ("drcd", "drcd-pd"), "cmrc2018-od": ("cmrc2018-od", None),
             "drcd-od": ("drcd-od", None)}  # fmt: skip


def aucs(t) -> dict:
    ds = np.array([g.dataset for g in t.groups])
    ok = np.array([g.answerable for g in t.groups])
    out = {}
    for name, (a, b) in AUC_PAIRS.items():
        m = (ds == a) if b is None else ((ds == a) & ok) | (ds == b)
        out[name] = T.refused_at(t.conf[m], ok[m])["auc"]
    return out

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--groups"]:  # a pickle of groups `cached_groups` wrote (its key follows the code)
        import pickle

        with open(args[1], "rb") as f:
            groups = pickle.load(f)
        args = args[2:]
    else:
        groups = T.cached_groups(ROOT, ROOT.parent / "shared" / "benchmarks", ROOT / "eval" / "cache", make_encoder())
    table = {}
    for variant in args or ["base"]:
        patch(variant)
        rows = []
        for seed in range(5):
            t = T.fit(groups if seed == 0 else T.perturbed(groups, seed), echo=lambda *a: None)
            r = T.summary(t)
            row = {"variant": variant, "noise_seed": seed} | {ds: round(r["ranking"][ds]["reranked"]["hit@1"], 4) for ds in SETS}
            row |= {f"od_{ds}": round(r["open_domain"][ds]["refused"], 4) for ds in ("cmrc2018-od", "drcd-od")}
            row |= {f"refused_{ds}": r["refusal"][ds]["refused"] for ds in ("reports", "heldout", "reports-ar", "drcd-ar")}
            row |= {f"wrong_{ds}": r["refusal"][ds]["wrongly_refused"] for ds in ("reports", "heldout", "drcd")}
            row |= {f"auc_{k}": round(v, 4) for k, v in aucs(t).items()}
            print(json.dumps(row), flush=True)
            rows.append(row)
        table[variant] = rows
    cols = [*SETS, "od_cmrc2018-od", "od_drcd-od", "refused_reports", "refused_heldout", "wrong_reports", "wrong_heldout", "wrong_drcd"]
    print("\nmean (lowest-highest) of the fits\n\n| variant | " + " | ".join(cols) + " | sum reports+cmrc2018+drcd |")
    print("|---|" + "---|" * (len(cols) + 1))
    for v, rows in table.items():
        cells = [f"{np.mean([r[c] for r in rows]):.3f} ({min(r[c] for r in rows):.3f}-{max(r[c] for r in rows):.3f})" for c in cols]
        total = np.mean([r["reports"] + r["cmrc2018"] + r["drcd"] for r in rows])
        print(f"| {v} | " + " | ".join(cells) + f" | {total:.4f} |")
