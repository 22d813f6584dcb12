"""The learned reranker and answerability model: a shortlist in, the passages in their new
order and a calibrated confidence out (the probability that the first passage answers).

The model is one JSON file, `app/models/trust.json`, written by `reportqa train` (train.py):
two LightGBM models (a lambdarank reranker over `features.FEATURES`, a binary answerability
model over `features.LIST_FEATURES`), the isotonic calibration of the latter, the threshold of
`answered`, and the feature version they were trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import features as FT
from .errors import ModelError
from .records import Hit

if TYPE_CHECKING:
    from .index import ReportIndex
    from .search import Shortlist

MODEL_FORMAT = 1
SHIPPED = Path(__file__).resolve().parent / "models" / "trust.json"


@dataclass
class Trust:
    """The two models, the calibration and the threshold of one model file."""

    ranker: object  # lightgbm.Booster
    answerable: object  # lightgbm.Booster
    cal_x: np.ndarray
    cal_y: np.ndarray
    threshold: float
    sha256: str = ""
    feature_version: int = FT.FEATURE_VERSION

    def rank(self, X: np.ndarray) -> np.ndarray:
        """The reranker's score of each candidate (higher first)."""
        if not len(X):
            return np.zeros(0)
        return np.asarray(self.ranker.predict(X, num_threads=1, raw_score=True), dtype=np.float64)

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """Probability that the first passage answers, from the answerability model's raw score."""
        return np.clip(np.interp(raw, self.cal_x, self.cal_y), 0.0, 1.0)

    def confidence(self, L: np.ndarray) -> np.ndarray:
        """Calibrated confidence of list-feature rows `L`."""
        raw = np.asarray(self.answerable.predict(np.atleast_2d(L), num_threads=1, raw_score=True), dtype=np.float64)
        return self.calibrated(raw)

    def apply(self, shortlist: Shortlist, index: ReportIndex, top_k: int) -> tuple[list[Hit], float]:
        """The shortlist reranked (its first `top_k` passages) and the confidence that the first answers."""
        cands = shortlist.candidates
        if not cands:
            return [], 0.0
        X = FT.candidate_features(shortlist, index.keyword.idf, index.max_idf)
        rr = self.rank(X)
        order = FT.reranked_order(X, rr)  # a named city's passages first; ties keep the fused order
        conf = float(self.confidence(FT.list_features(X, rr, [c.hit.doc.id for c in cands]))[0])
        q = shortlist.query
        if q.elsewhere and not q.cities:  # a place none of the reports is about
            conf = 0.0
        hits = []
        for i in order[:top_k]:
            h = cands[i].hit
            h.signals = h.signals | {"fused": h.score, "rerank": float(rr[i])}
            h.score = float(rr[i])
            hits.append(h)
        return hits, conf


def write(path: Path, ranker, answerable, cal_x, cal_y, threshold: float, provenance: dict) -> str:
    """Write a model file; returns its SHA-256."""
    doc = {
        "format": MODEL_FORMAT,
        "feature_version": FT.FEATURE_VERSION,
        "features": FT.FEATURES,
        "list_features": FT.LIST_FEATURES,
        "threshold": float(threshold),
        "calibration": {"x": [float(v) for v in cal_x], "y": [float(v) for v in cal_y]},
        "provenance": provenance,
        "ranker": ranker.model_to_string(),
        "answerable": answerable.model_to_string(),
    }
    data = json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()


def load(path: Path) -> Trust:
    """Read a model file; refuse one of another format or feature version, naming the fix."""
    path = Path(path)
    fix = "rebuild it with `reportqa train`"
    try:
        data = path.read_bytes()
        doc = json.loads(data)
    except (OSError, ValueError) as e:
        raise ModelError(f"the ranking model {path} cannot be read ({e}): {fix}") from e
    if doc.get("format") != MODEL_FORMAT:
        raise ModelError(f"the ranking model {path} has format {doc.get('format')}, this reportqa reads {MODEL_FORMAT}: {fix}")
    if (
        doc.get("feature_version") != FT.FEATURE_VERSION
        or doc.get("features") != FT.FEATURES
        or doc.get("list_features") != FT.LIST_FEATURES
    ):
        raise ModelError(f"the ranking model {path} was trained on features v{doc.get('feature_version')}, "
                         f"this reportqa computes v{FT.FEATURE_VERSION}: {fix}")  # fmt: skip
    try:
        import lightgbm as lgb
    except ImportError as e:  # pragma: no cover - a dependency
        raise ModelError("lightgbm is not installed: pip install lightgbm (a dependency of reportqa)") from e
    cal = doc["calibration"]
    return Trust(lgb.Booster(model_str=doc["ranker"]), lgb.Booster(model_str=doc["answerable"]), np.asarray(cal["x"], float),
                 np.asarray(cal["y"], float), float(doc["threshold"]), hashlib.sha256(data).hexdigest(), doc["feature_version"])  # fmt: skip


@lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> Trust:
    return load(Path(path))


def shipped(path: Path = SHIPPED) -> Trust | None:
    """The model shipped with reportqa (loaded once); None when there is none (the hand-set path serves)."""
    path = Path(path)
    if not path.exists():
        return None
    return _cached(str(path), path.stat().st_mtime)
