"""`reportqa train`: the learned reranker and answerability model, rebuilt from the data we ship.

The training questions, each asked of an index through the product's own search path
(`search.shortlists`, so training and serving compute the same features):
  * reports: eval/questions.jsonl against the five reports (94 answerable, 15 not);
  * cmrc2018, drcd: every question of CMRC 2018 trial and DRCD dev against all their paragraphs;
  * cmrc2018-od, drcd-od (open domain): the articles split in two halves (seeded), each half
    indexed alone; questions about the other half must be refused (unless their answer text
    is in an indexed paragraph, then they are left out);
  * drcd-pd: DRCD paragraphs split in halves, so the question's own paragraph is gone while
    the rest of its article (same topic) is indexed: must be refused;
  * reports-ar, drcd-ar (answer removed): the sentences holding the answer deleted from the
    question's own report or paragraph, everything else indexed: the topic, the city and the
    words are all there, only the fact asked is not. Must be refused.
eval/heldout.jsonl is never trained on. Folds are by article (a DRCD/CMRC `data[i]`, a report):
no article is ever in the training and the test side of a fold.

Models: a LightGBM lambdarank reranker over `features.FEATURES` (trained on the full-index
groups with an answer in the shortlist), and a LightGBM binary model over
`features.LIST_FEATURES` predicting "the reranked first passage answers", trained on the
reranker's out-of-fold scores and calibrated by isotonic regression on its own out-of-fold
scores. Seeded and single-threaded: the same data give the same file.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import features as FT
from .clean import strip_pinyin
from .evaluate import Question, external_index, is_hit, load_questions, load_squad
from .highlight import sentences
from .index import ReportIndex, SearchSettings
from .records import Document
from .textnorm import squash

SEED = 13
NFOLD = 5
REPORT_WEIGHT = 5.0  # the report questions are few and closest to what the product is asked
NEAR_MISS_WEIGHT = 1.0  # the answer-removed negatives
RANK_ROUNDS = 300  # with every feature in every tree (feature_fraction 1.0): eval/tuning.md
ANS_ROUNDS = 150
RANK_PARAMS = dict(objective="lambdarank", metric="ndcg", eval_at=[1, 10], learning_rate=0.05, num_leaves=15,
                   min_data_in_leaf=20, feature_fraction=1.0, lambda_l2=1.0, lambdarank_truncation_level=10,
                   label_gain=[0, 1], seed=SEED, deterministic=True, num_threads=1, verbose=-1, force_row_wise=True)  # fmt: skip
ANS_PARAMS = dict(objective="binary", learning_rate=0.05, num_leaves=15, min_data_in_leaf=20, feature_fraction=0.8,
                  lambda_l2=1.0, seed=SEED, deterministic=True, num_threads=1, verbose=-1, force_row_wise=True)  # fmt: skip
RANK_SETS = ("reports", "cmrc2018", "drcd")
ANS_SETS = ("reports", "reports-ar", "cmrc2018-od", "drcd-od", "drcd-pd", "drcd-ar")
MAX_WRONG_REPORTS = 2  # the threshold refuses at most this many answerable report questions, out of fold


@dataclass
class Group:
    """One question asked of one index: its shortlist's features and labels."""

    dataset: str
    qid: str
    question: str
    category: str
    answerable: bool
    article: str
    X: np.ndarray
    labels: np.ndarray  # 1: the candidate passage answers
    doc_ids: list[str]
    base_conf: float
    fold: int = -1  # -1: never trained on (held-out)
    place_rule: bool = False  # asked of the reports: a place none covers is refused


@dataclass
class Trained:
    """What `fit` gives: the out-of-fold predictions of every group and the final models."""

    groups: list[Group]
    rr: list[np.ndarray]  # reranker scores per group (out of fold; held-out: final model)
    conf: np.ndarray  # calibrated confidence per group (likewise)
    top1: np.ndarray  # 1: the reranked first passage answers
    ranker: object = None
    answerable: object = None
    cal_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cal_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    threshold: float = 0.5


# ---------------------------------------------------------------------- data


def collect(index: ReportIndex, questions: list[Question], dataset: str, *, answerable: list[bool] | None = None,
            own_doc: bool = False, article: Callable[[Question], str] = lambda q: q.doc_id, qvecs=None,
            place_rule: bool = False, settings: SearchSettings | None = None) -> list[Group]:  # fmt: skip
    """Each question's shortlist from `index`, as features and labels. A candidate is a hit when it
    holds an evidence string (and, with `own_doc`, is of the question's own paragraph)."""
    from .search import shortlists

    settings = settings or SearchSettings()
    answerable = answerable if answerable is not None else [bool(q.evidence) for q in questions]
    queries = index.queries([q.question for q in questions], settings)
    out = []
    for q, ok, sl in zip(questions, answerable, shortlists(index, queries, settings, qvecs=qvecs)):
        X = FT.candidate_features(sl, index.keyword.idf, index.max_idf)
        labels = np.array([int(ok and (not own_doc or c.hit.doc.id == q.doc_id) and bool(is_hit(c.hit.chunk.text, q.evidence)))
                           for c in sl.candidates], np.int8)  # fmt: skip
        out.append(Group(dataset, q.id, q.question, q.category, ok, article(q), X, labels,
                         [c.hit.doc.id for c in sl.candidates], sl.base_conf, place_rule=place_rule))  # fmt: skip
    return out


def halves(keys: list, seed: int) -> dict:
    """Each key -> 0 or 1, half and half, seeded."""
    order = list(keys)
    random.Random(seed).shuffle(order)
    return {k: int(i >= len(order) // 2) for i, k in enumerate(order)}


def _absent(evidence: list[str], joined: str) -> bool:
    return not any(squash(strip_pinyin(ev)) in joined for ev in evidence)


def without_answer(doc: Document, evidence: list[str]) -> Document | None:
    """`doc` with every sentence holding an evidence string deleted; None if the evidence then remains
    (it spans sentences) or nothing is left."""
    keep = [doc.text[s:e] for s, e in sentences(doc.text) if not is_hit(doc.text[s:e], evidence)]
    text = "".join(keep).strip()
    if not text or is_hit(text, evidence):
        return None
    return Document(doc.id, doc.title, text, doc.city, doc.date, doc.source, doc.url, doc.script)


def build_groups(root: Path, bench: Path, cache: Path, encoder, echo: Callable = print, limit: int | None = None) -> list[Group]:
    """Every training and held-out group (see the module doc). `limit` keeps the first questions of
    each benchmark (tests). Indexes are cached in `cache`; sub-indexes reuse their vectors."""
    from .changes import build_from

    t0 = time.perf_counter()
    groups: list[Group] = []

    def note(what: str, n: int) -> None:
        echo(f"train: {what}: {n} questions ({time.perf_counter() - t0:.0f}s)")

    # ---- the five reports
    rindex = build_from([root / "corpus"], cache / "reports", encoder, if_stale=True).index
    reuse = rindex.vector_cache()
    holder = {}
    for name, file in (("reports", "questions.jsonl"), ("heldout", "heldout.jsonl")):
        qs = load_questions(root / "eval" / file)
        for q in qs:
            hs = sorted(d.id for d in rindex.docs.values() if q.evidence and is_hit(d.text, q.evidence))
            holder[q.id] = hs[0] if hs else f"none-{q.id}"
        groups += collect(rindex, qs, name, article=lambda q: holder[q.id], place_rule=True)
        note(name, len(qs))
    # answer removed from its report: the other reports and the rest of it indexed
    qs = [q for q in load_questions(root / "eval" / "questions.jsonl") if q.evidence]
    for q in qs:
        docs = dict(rindex.docs)
        cut = {i: without_answer(d, q.evidence) for i, d in docs.items() if is_hit(d.text, q.evidence)}
        if not cut or any(v is None for v in cut.values()):
            continue
        docs.update(cut)
        sub = ReportIndex.build(list(docs.values()), encoder, rindex.build_settings, reuse=reuse)
        reuse.update(sub.vector_cache())
        groups += collect(sub, [q], "reports-ar", answerable=[False], article=lambda q: holder[q.id], place_rule=True)
    note("reports-ar", sum(g.dataset == "reports-ar" for g in groups))

    # ---- CMRC 2018 trial and DRCD dev
    for name, file in (("cmrc2018", "cmrc2018_trial.json"), ("drcd", "drcd_dev.json")):
        docs, qs = load_squad(bench / file, name)
        if limit:
            qs = qs[:limit]
            arts = {q.doc_id.rsplit("-", 1)[0] for q in qs}
            docs = [d for d in docs if d.id.rsplit("-", 1)[0] in arts]
        groups += benchmark_groups(name, docs, qs, external_index(name, docs, cache, encoder, echo), encoder, note)
    assign_folds(groups)
    return groups


def assign_folds(groups: list[Group]) -> None:
    """Articles shuffled (seeded) into NFOLD folds, each dataset family on its own; held-out: -1."""
    rng = random.Random(SEED)
    fold_of: dict[str, int] = {}
    for fam in ("reports", "cmrc2018", "drcd"):
        arts = sorted({g.article for g in groups if g.dataset.split("-")[0] == fam and g.dataset != "heldout"})
        rng.shuffle(arts)
        fold_of.update({a: i % NFOLD for i, a in enumerate(arts)})
    for g in groups:
        g.fold = -1 if g.dataset == "heldout" else fold_of[g.article]


def cached_groups(root: Path, bench: Path, cache: Path, encoder, echo: Callable = print, limit: int | None = None) -> list[Group]:
    """`build_groups`, kept in `cache` under a key of the data, the model and the pipeline's code:
    a second `reportqa train` or `eval --external` with nothing changed skips the searches."""
    import inspect
    import pickle

    code = hashlib.sha256()
    for p in sorted(Path(__file__).resolve().parent.glob("*.py")):
        if p.name != "train.py":  # its model fitting does not change the groups
            code.update(p.read_bytes())
    for fn in (build_groups, benchmark_groups, collect, without_answer, halves, assign_folds, _absent):
        code.update(inspect.getsource(fn).encode())
    key = hashlib.sha256(f"{data_hash(root, bench)} {code.hexdigest()} {encoder.name} {limit}".encode()).hexdigest()[:16]
    path = Path(cache) / f"train-groups-{key}.pkl"
    if path.exists():
        try:
            with path.open("rb") as f:
                return pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            pass  # damaged: built again
    groups = build_groups(root, bench, cache, encoder, echo, limit)
    Path(cache).mkdir(parents=True, exist_ok=True)
    for old in Path(cache).glob("train-groups-*.pkl"):
        old.unlink(missing_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(groups, f)
    tmp.replace(path)
    return groups


# ---------------------------------------------------------------------- models


def _weight(dataset: str) -> float:
    """Weight of a question in the answerability model: the report questions and the near misses
    (answer removed) count more than the rest."""
    w = REPORT_WEIGHT if dataset.startswith("reports") else 1.0
    return w * (NEAR_MISS_WEIGHT if dataset.endswith("-ar") else 1.0)


def _fit_ranker(groups: list[Group]):
    import lightgbm as lgb

    groups = [g for g in groups if len(g.labels) and g.labels.any()]
    X = np.concatenate([g.X for g in groups])
    y = np.concatenate([g.labels for g in groups])
    w = np.concatenate([np.full(len(g.labels), REPORT_WEIGHT if g.dataset == "reports" else 1.0) for g in groups])
    ds = lgb.Dataset(X, y, group=[len(g.labels) for g in groups], weight=w, feature_name=FT.FEATURES, free_raw_data=False)
    return lgb.train(RANK_PARAMS, ds, RANK_ROUNDS)


def _fit_answerable(L: np.ndarray, y: np.ndarray, w: np.ndarray):
    import lightgbm as lgb

    return lgb.train(ANS_PARAMS, lgb.Dataset(L, y, weight=w, feature_name=FT.LIST_FEATURES), ANS_ROUNDS)


def _predict(model, X: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(X, num_threads=1, raw_score=True), dtype=np.float64) if len(X) else np.zeros(0)


def _lists(groups: list[Group], rr: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    L = np.array([FT.list_features(g.X, r, g.doc_ids) for g, r in zip(groups, rr)])
    top1 = np.array([int(len(r) > 0 and g.labels[int(FT.reranked_order(g.X, r)[0])] == 1) for g, r in zip(groups, rr)])
    return L, top1


def _isotonic(raw: np.ndarray, y: np.ndarray):
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    x, cy = np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float)
    # isotonic steps are flat: a small ramp keeps the order of the raw scores, so that a threshold
    # between two questions of one step still tells them apart
    return x, np.clip(cy + 1e-3 * np.linspace(0.0, 1.0, len(cy)), 0.0, 1.0)


def _confidence(raw: np.ndarray, cal_x: np.ndarray, cal_y: np.ndarray, groups: list[Group]) -> np.ndarray:
    conf = np.clip(np.interp(raw, cal_x, cal_y), 0.0, 1.0)
    for i, g in enumerate(groups):
        if g.place_rule and g.base_conf <= -1.0:  # the product's rule (trust.Trust.apply)
            conf[i] = 0.0
    return conf


def fit(groups: list[Group], echo: Callable = print) -> Trained:
    """Out-of-fold predictions for every group (held-out: the final models) and the final models."""
    folds = sorted({g.fold for g in groups if g.fold >= 0})
    rr: list[np.ndarray] = [np.zeros(0)] * len(groups)
    for f in folds:
        ranker = _fit_ranker([g for g in groups if g.dataset in RANK_SETS and g.fold >= 0 and g.fold != f])
        for i, g in enumerate(groups):
            if g.fold == f:
                rr[i] = _predict(ranker, g.X)
    final_ranker = _fit_ranker([g for g in groups if g.dataset in RANK_SETS and g.fold >= 0])
    for i, g in enumerate(groups):
        if g.fold < 0:
            rr[i] = _predict(final_ranker, g.X)
    echo(f"train: reranker fitted on {sum(g.dataset in RANK_SETS and g.fold >= 0 for g in groups)} questions")
    L, top1 = _lists(groups, rr)
    fold = np.array([g.fold for g in groups])
    train = np.array([g.dataset in ANS_SETS for g in groups]) & (fold >= 0)
    w = np.array([_weight(g.dataset) for g in groups])
    raw = np.zeros(len(groups))
    for f in folds:
        m = _fit_answerable(L[train & (fold != f)], top1[train & (fold != f)], w[train & (fold != f)])
        raw[fold == f] = _predict(m, L[fold == f])
    conf = np.zeros(len(groups))
    for f in folds:  # cross-fitted calibration: fold f calibrated on the other folds' out-of-fold scores
        cx, cy = _isotonic(raw[train & (fold != f)], top1[train & (fold != f)])
        conf[fold == f] = _confidence(raw[fold == f], cx, cy, [g for g in groups if g.fold == f])
    final_ans = _fit_answerable(L[train], top1[train], w[train])
    cal_x, cal_y = _isotonic(raw[train], top1[train])
    held = fold < 0
    raw[held] = _predict(final_ans, L[held])
    conf[held] = _confidence(raw[held], cal_x, cal_y, [g for g in groups if g.fold < 0])
    rep = np.array([g.dataset == "reports" and g.answerable for g in groups])
    pos = np.sort(conf[rep])
    threshold = float(pos[min(MAX_WRONG_REPORTS, len(pos) - 1)]) if len(pos) else 0.5
    return Trained(groups, rr, conf, top1, final_ranker, final_ans, cal_x, cal_y, threshold)


# ---------------------------------------------------------------------- metrics


def ranking(t: Trained, dataset: str) -> dict:
    """hit@1 and MRR@10 over answerable groups of `dataset`: fused order, and reranked."""
    out = {}
    sel = [i for i, g in enumerate(t.groups) if g.dataset == dataset and g.answerable]
    orders = (("fused", lambda i: np.arange(len(t.groups[i].labels))), ("reranked", lambda i: FT.reranked_order(t.groups[i].X, t.rr[i])))
    for name, order in orders:
        h1, mrr = [], []
        for i in sel:
            o = order(i)
            r = np.flatnonzero(t.groups[i].labels[o])
            h1.append(float(len(r) > 0 and r[0] == 0))
            mrr.append(1.0 / (r[0] + 1) if len(r) and r[0] < 10 else 0.0)
        out[name] = {"hit@1": float(np.mean(h1)) if sel else 0.0, "mrr@10": float(np.mean(mrr)) if sel else 0.0, "n": len(sel)}
    return out


def refused_at(conf: np.ndarray, answerable: np.ndarray, max_fr: float = 0.03) -> dict:
    """The operating point refusing the most unanswerable questions with at most `max_fr` of the
    answerable ones refused; ROC AUC."""
    from sklearn.metrics import roc_auc_score

    pos, neg = np.sort(conf[answerable]), conf[~answerable]
    thr = pos[int(np.floor(max_fr * len(pos)))] if len(pos) else 0.0
    both = len(pos) and len(neg)
    return {"refused": float((neg < thr).mean()) if len(neg) else 0.0, "false_refusal": float((pos < thr).mean()) if len(pos) else 0.0,
            "threshold": float(thr), "auc": float(roc_auc_score(answerable.astype(int), conf)) if both else float("nan"),
            "answerable": int(len(pos)), "unanswerable": int(len(neg))}  # fmt: skip


def summary(t: Trained) -> dict:
    """The figures `reportqa train` and `reportqa eval` print: ranking, open-domain refusal, the
    reports at the shipped threshold."""
    out: dict = {"threshold": t.threshold, "ranking": {}, "open_domain": {}, "refusal": {}}
    for ds in ("reports", "heldout", "cmrc2018", "drcd", "cmrc2018-od", "drcd-od"):
        if any(g.dataset == ds for g in t.groups):
            out["ranking"][ds] = ranking(t, ds)
    for ds in ("cmrc2018-od", "drcd-od"):
        s = np.array([g.dataset == ds for g in t.groups])
        if s.any():
            a = np.array([g.answerable for g in t.groups])[s]
            base = np.array([g.base_conf for g in t.groups])[s]
            out["open_domain"][ds] = refused_at(t.conf[s], a) | {"hand_set": refused_at(base, a)}
    # cmrc2018 and drcd: every question asked of the whole set, as `reportqa eval --external` and a
    # user with a collection that size ask them; all answerable, so each refusal there is wrong
    for ds in ("reports", "heldout", "cmrc2018", "drcd", "reports-ar", "drcd-pd", "drcd-ar"):
        s = [i for i, g in enumerate(t.groups) if g.dataset == ds]
        if s:
            a = np.array([t.groups[i].answerable for i in s])
            refused = t.conf[s] < t.threshold
            out["refusal"][ds] = {"wrongly_refused": int((refused & a).sum()), "answerable": int(a.sum()),
                                  "refused": int((refused & ~a).sum()), "unanswerable": int((~a).sum())}  # fmt: skip
    out["shown"] = shown(t)
    return out


def shown(t: Trained) -> dict:
    """What the chat shows at the threshold, per set: an answer (answered and sure: a confidence of at
    least `records.SURE`) or a possible answer (answered, under it), each counted by whether the first
    passage answers ("right": an answerable question whose reranked first passage answers it)."""
    from .records import SURE

    out = {}
    for ds in ("reports", "heldout", "cmrc2018", "drcd", "cmrc2018-od", "drcd-od", "reports-ar", "drcd-pd", "drcd-ar"):
        s = [i for i, g in enumerate(t.groups) if g.dataset == ds]
        if not s:
            continue
        c = t.conf[s]
        right = np.array([t.groups[i].answerable for i in s]) & (t.top1[s] > 0)
        answered, sure = c >= t.threshold, c >= SURE
        out[ds] = {"n": len(s), **{f"{name}_{k}": int((m & (right if k == "right" else ~right)).sum())
                                   for name, m in (("answered", answered), ("sure", answered & sure), ("possible", answered & ~sure))
                                   for k in ("right", "wrong")}}  # fmt: skip
    return out


# ---------------------------------------------------------------------- the command


def data_hash(root: Path, bench: Path) -> str:
    h = hashlib.sha256()
    for p in [*sorted((root / "corpus").iterdir()), root / "eval" / "questions.jsonl", root / "eval" / "heldout.jsonl",
              bench / "cmrc2018_trial.json", bench / "drcd_dev.json"]:  # fmt: skip
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def train(root: Path, bench: Path, cache: Path, encoder, out: Path, echo: Callable = print, limit: int | None = None,
          spread_fits: int = 0) -> dict:  # fmt: skip
    """Build the data, fit, write the model file `out`; returns the summary (with the file's hash and,
    with `spread_fits`, the `spread` of its figures over that many perturbed refits)."""
    from .trust import write

    groups = cached_groups(root, bench, cache, encoder, echo, limit)
    t = fit(groups, echo)
    result = summary(t)
    if spread_fits:
        result["spread"] = spread(t, spread_fits, echo)
    provenance = {"command": "reportqa train", "seed": SEED, "folds": NFOLD, "data_sha256": data_hash(root, bench),
                  "model": encoder.name, "groups": {ds: sum(g.dataset == ds for g in groups) for ds in sorted({g.dataset for g in groups})}}  # fmt: skip
    result["sha256"] = write(out, t.ranker, t.answerable, t.cal_x, t.cal_y, t.threshold, provenance)
    result["bytes"] = Path(out).stat().st_size
    return result


SPREAD_FITS = 4  # perturbed refits beside the fit itself (`spread`)
SPREAD_SCALE = 1e-4  # relative: the size of the last-bit differences another machine's embeddings make


def perturbed(groups: list[Group], seed: int, scale: float = SPREAD_SCALE) -> list[Group]:
    """Copies of `groups` with every feature multiplied by 1 + N(0, `scale`) (seeded); the groups
    given are left as they are."""
    rng = np.random.default_rng(seed)
    out = []
    for g in groups:
        X = g.X * (1 + rng.normal(0.0, scale, g.X.shape)) if len(g.X) else g.X
        out.append(replace(g, X=np.asarray(X, dtype=g.X.dtype)))
    return out


def spread(t: Trained, fits: int = SPREAD_FITS, echo: Callable = print) -> dict:
    """How far the out-of-fold figures move when the features move by the last bits: `fit` again
    on `fits` perturbed copies of `t.groups` (seeds 1..fits). Per set, the lowest, mean and highest
    over those and `t` itself, of the reranked hit@1 and, at each fit's threshold, the refused and
    wrongly refused counts; of the open-domain sets, the share refused at false refusal <= 3%."""
    runs = [summary(t)]
    for seed in range(1, fits + 1):
        runs.append(summary(fit(perturbed(t.groups, seed), echo=lambda *a: None)))
        echo(f"train: spread, fit {seed + 1} of {fits + 1}")

    def band(values: list[float]) -> dict:
        return {"min": float(min(values)), "mean": float(np.mean(values)), "max": float(max(values))}

    out: dict = {"fits": len(runs), "scale": SPREAD_SCALE, "hit@1": {}, "refused": {}, "wrongly_refused": {}, "open_domain": {}}
    for ds in runs[0]["ranking"]:
        out["hit@1"][ds] = band([r["ranking"][ds]["reranked"]["hit@1"] for r in runs])
    for ds in runs[0]["open_domain"]:
        out["open_domain"][ds] = band([r["open_domain"][ds]["refused"] for r in runs])
    for ds, m in runs[0]["refusal"].items():
        if m["unanswerable"]:
            out["refused"][ds] = band([r["refusal"][ds]["refused"] for r in runs])
        if m["answerable"]:
            out["wrongly_refused"][ds] = band([r["refusal"][ds]["wrongly_refused"] for r in runs])
    return out


def format_spread(s: dict) -> str:
    def cell(b: dict, fmt: str) -> str:
        return f"{b['mean']:{fmt}} ({b['min']:{fmt}}-{b['max']:{fmt}})"

    n = s["fits"] - 1
    lines = [f"How much of that is the draw: the same fit on {n} cop{'y' if n == 1 else 'ies'} of the data whose features are "
             f"multiplied by 1 + N(0, {s['scale']:g}), the size of the last-bit differences another machine's embeddings "
             f"make, and the fit above: mean (lowest-highest) of {s['fits']} fits.", "",
             "| set | hit@1 reranked | refused | wrongly refused | open domain: refused at false refusal <= 3% |",
             "|---|---|---|---|---|"]  # fmt: skip
    for ds in dict.fromkeys([*s["hit@1"], *s["refused"], *s["wrongly_refused"]]):
        h, r, w, o = (s[k].get(ds) for k in ("hit@1", "refused", "wrongly_refused", "open_domain"))
        lines.append(f"| {ds} | {cell(h, '.3f') if h else ''} | {cell(r, '.1f') if r else ''} | {cell(w, '.1f') if w else ''} | "
                     f"{cell(o, '.3f') if o else ''} |")  # fmt: skip
    return "\n".join(lines)


def format_summary(r: dict) -> str:
    lines = [f"threshold {r['threshold']:.4f} (at most {MAX_WRONG_REPORTS} answerable report questions refused, out of fold)",
             "", "| set | n | hit@1 fused | hit@1 reranked | MRR@10 fused | MRR@10 reranked |", "|---|---|---|---|---|---|"]  # fmt: skip
    for ds, m in r["ranking"].items():
        lines.append(f"| {ds} | {m['fused']['n']} | {m['fused']['hit@1']:.3f} | {m['reranked']['hit@1']:.3f} | "
                     f"{m['fused']['mrr@10']:.3f} | {m['reranked']['mrr@10']:.3f} |")  # fmt: skip
    lines += ["", "| open domain | answerable | to refuse | AUC | refused at false refusal <= 3% | hand-set AUC | hand-set refused |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for ds, m in r["open_domain"].items():
        lines.append(f"| {ds} | {m['answerable']} | {m['unanswerable']} | {m['auc']:.3f} | {m['refused']:.3f} | "
                     f"{m['hand_set']['auc']:.3f} | {m['hand_set']['refused']:.3f} |")  # fmt: skip
    lines += ["", "| at the threshold | wrongly refused | refused |", "|---|---|---|"]
    for ds, m in r["refusal"].items():
        lines.append(f"| {ds} | {m['wrongly_refused']}/{m['answerable']} | {m['refused']}/{m['unanswerable']} |")
    if r.get("shown"):
        from .records import SURE

        lines += ["", f"What the chat shows at the threshold: an answer only from a confidence of {SURE} (the first passage "
                  "more likely answers than not), a possible answer under it. Questions answered, by whether the first passage "
                  "answers them (right / wrong):", "",
                  "| set | n | answered: right / wrong | shown as an answer | shown as a possible answer |", "|---|---|---|---|---|"]  # fmt: skip
        for ds, m in r["shown"].items():
            lines.append(f"| {ds} | {m['n']} | {m['answered_right']} / {m['answered_wrong']} | {m['sure_right']} / {m['sure_wrong']} | "
                         f"{m['possible_right']} / {m['possible_wrong']} |")  # fmt: skip
    return "\n".join(lines)


def save_json(path: Path, result: dict) -> None:
    Path(path).write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")


def benchmark_groups(name: str, docs: list[Document], qs: list[Question], full: ReportIndex, encoder,
                     note: Callable[[str, int], None]) -> list[Group]:  # fmt: skip
    """The groups of one SQuAD-style set: all paragraphs, half the articles, and for sets with
    several paragraphs an article, a paragraph's absence and an answer's absence."""
    groups: list[Group] = []
    reuse = full.vector_cache()
    qvecs = encoder.queries([q.question for q in qs])
    art = {q.id: q.doc_id.rsplit("-", 1)[0] for q in qs}
    row = {q.id: i for i, q in enumerate(qs)}
    groups += collect(full, qs, name, own_doc=True, article=lambda q: art[q.id], qvecs=qvecs)
    note(name, len(qs))

    def ask(sub_docs: list[Document], picks: list[tuple[Question, bool]], dataset: str) -> None:
        if not picks:
            return
        sub = ReportIndex.build(sub_docs, encoder, full.build_settings, reuse=reuse)
        reuse.update(sub.vector_cache())
        qq = [q for q, _ in picks]
        groups.extend(collect(sub, qq, dataset, answerable=[a for _, a in picks], own_doc=True,
                              article=lambda q: art[q.id], qvecs=qvecs[[row[q.id] for q in qq]]))  # fmt: skip

    # open domain: half the articles indexed
    half = halves(sorted({d.id.rsplit("-", 1)[0] for d in docs}), SEED)
    for h in (0, 1):
        sub_docs = [d for d in docs if half[d.id.rsplit("-", 1)[0]] == h]
        joined = "\x00".join(squash(strip_pinyin(d.text)) for d in sub_docs)
        picks = [(q, True) for q in qs if half[art[q.id]] == h]
        picks += [(q, False) for q in qs if half[art[q.id]] != h and _absent(q.evidence, joined)]
        ask(sub_docs, picks, f"{name}-od")
    note(f"{name}-od", sum(g.dataset == f"{name}-od" for g in groups))
    if len(docs) < 2 * len(half):
        return groups  # about one paragraph an article (CMRC): the two settings below need several
    # the question's own paragraph gone, the rest of its article there
    phalf = halves([d.id for d in docs], SEED + 7)
    for h in (0, 1):
        sub_docs = [d for d in docs if phalf[d.id] == h]
        joined = "\x00".join(squash(strip_pinyin(d.text)) for d in sub_docs)
        ask(sub_docs, [(q, False) for q in qs if phalf[q.doc_id] != h and _absent(q.evidence, joined)], f"{name}-pd")
    note(f"{name}-pd", sum(g.dataset == f"{name}-pd" for g in groups))
    # the answer's sentences removed from its paragraph: one question a paragraph, seeded
    rng = random.Random(SEED + 11)
    by_doc: dict[str, list[Question]] = {}
    for q in qs:
        by_doc.setdefault(q.doc_id, []).append(q)
    cut_docs, picks = {d.id: d for d in docs}, []
    for doc_id in sorted(by_doc):
        q = rng.choice(by_doc[doc_id])
        cut = without_answer(cut_docs[doc_id], q.evidence)
        if cut is not None:
            cut_docs[doc_id] = cut
            picks.append(q)
    joined = "\x00".join(squash(strip_pinyin(d.text)) for d in cut_docs.values())
    ask(list(cut_docs.values()), [(q, False) for q in picks if _absent(q.evidence, joined)], f"{name}-ar")
    note(f"{name}-ar", sum(g.dataset == f"{name}-ar" for g in groups))
    return groups
