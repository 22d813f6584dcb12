"""Tried and dropped (eval/tuning.md): phrase runs, with phrase-runs.diff applied (see README.md).

Fits `train.fit` on the groups `reportqa train` built with the diff (the newest pickle in eval/cache),
with the new columns (run_p, run_s; the list features t1_run_s and run_s_max follow them) as built
or set to 0, which is the model without them. Seed 0: the features as they are; 1-4: multiplied by
1 + N(0, 1e-4) (`train.perturbed`), the last-bit differences of another machine's embeddings. One
JSON line a fit.

    for s in 0 1 2 3 4; do for v in with without; do .venv/bin/python eval/dropped/phrase_runs_compare.py $v $s; done; done
"""

import glob
import json
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app import features as FT  # noqa: E402
from app import train as T  # noqa: E402

if __name__ == "__main__":
    variant, seed = sys.argv[1], int(sys.argv[2])
    path = max(glob.glob(str(ROOT / "eval" / "cache" / "train-groups-*.pkl")), key=lambda p: Path(p).stat().st_mtime)
    with open(path, "rb") as f:
        groups = pickle.load(f)
    cols = [FT.FEATURES.index(c) for c in ("run_p", "run_s")]
    if seed:
        groups = T.perturbed(groups, seed)  # fresh arrays; seed 0 keeps the ones just read
    if variant == "without":
        for g in groups:
            if len(g.X):
                g.X[:, cols] = 0
    t = T.fit(groups, echo=lambda *a: None)
    r = T.summary(t)
    sets = ("reports", "heldout", "cmrc2018", "drcd")
    row = {"variant": variant, "seed": seed} | {ds: round(r["ranking"][ds]["reranked"]["hit@1"], 4) for ds in sets}
    row |= {f"od_{ds}": round(r["open_domain"][ds]["refused"], 4) for ds in ("cmrc2018-od", "drcd-od")}
    row |= {
        f"refused_{ds}": (r["refusal"][ds]["refused"], r["refusal"][ds]["wrongly_refused"])
        for ds in ("reports", "heldout", "drcd")
    }
    print(json.dumps(row), flush=True)
