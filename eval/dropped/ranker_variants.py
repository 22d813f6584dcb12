"""Tried and dropped (eval/tuning.md): the reranker bagged, or boosted from the fused order.

Each variant patches `train._fit_ranker` (and the prediction of its models) and runs `train.fit` on
the groups of `reportqa train` (same article folds) five times: once as they are, then four times
with every feature multiplied by 1 + N(0, 1e-4) (seeds 1-4), the size of the last-bit differences
another machine's embeddings make. One JSON line a fit; a table of the means at the end.

    .venv/bin/python eval/dropped/ranker_variants.py base bag5 bag3r100l0.15 bag5r60l0.25 init2 init5

`base`: today's single model. `bagK[rR][lLR]`: K rankers of R rounds (default 300) at learning rate
LR (default 0.05), each on an 80% sample of the rows (`bagging_seed` SEED + i), scores averaged.
`initS`: LightGBM's `init_score` = S x the fused score, and S x the fused score added back to its
predictions. The groups come from eval/cache (`reportqa train` or `reportqa eval --external` build
them, ~20 min, once; `--groups FILE` reads a pickle of them instead). Measured at 1c4b5ed; about
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
FUSED = FT.FEATURES.index("fused")


def patch(variant: str) -> None:
    T._fit_ranker, T._predict = FIT_RANKER, PREDICT
    T.RANK_ROUNDS, T.RANK_PARAMS = 300, dict(ORIGINAL_PARAMS)
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
            groups = [g for g in groups if len(g.labels) and g.labels.any()]
            X = np.concatenate([g.X for g in groups])
            y = np.concatenate([g.labels for g in groups])
            w = np.concatenate([np.full(len(g.labels), T.REPORT_WEIGHT if g.dataset == "reports" else 1.0) for g in groups])
            ds = lgb.Dataset(X, y, group=[len(g.labels) for g in groups], weight=w, init_score=s * X[:, FUSED],
                             feature_name=FT.FEATURES, free_raw_data=False)  # fmt: skip
            return lgb.train(T.RANK_PARAMS, ds, T.RANK_ROUNDS)

        def predict(model, X):
            r = PREDICT(model, X)
            return r + s * X[:, FUSED] if len(X) and X.shape[1] == len(FT.FEATURES) else r

        T._fit_ranker, T._predict = fit_ranker, predict
    else:
        raise SystemExit(f"unknown variant {variant!r}")


ORIGINAL_PARAMS = dict(T.RANK_PARAMS)

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
            row |= {f"refused_{ds}": r["refusal"][ds]["refused"] for ds in ("reports", "heldout")}
            print(json.dumps(row), flush=True)
            rows.append(row)
        table[variant] = rows
    print("\n| variant | " + " | ".join(f"{ds} hit@1 (min-max)" for ds in SETS) + " |\n|---|" + "---|" * len(SETS))
    for v, rows in table.items():
        cells = [
            f"{np.mean([r[ds] for r in rows]):.3f} ({min(r[ds] for r in rows):.3f}-{max(r[ds] for r in rows):.3f})" for ds in SETS
        ]
        print(f"| {v} | " + " | ".join(cells) + " |")
