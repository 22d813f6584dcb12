"""The search goes through `index.store`: on the default (embedded) store it gives exactly what it
gave before the store was wired in. `tests/data/store_golden.json` holds the answers of the tiny
fake-encoder index recorded before the change (every mode, filters, hand-set and learned path);
they must come back bit for bit: the same passages, highlights, decisions and float scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import STRINGS

GOLDEN = Path(__file__).resolve().parent / "data" / "store_golden.json"
QUESTIONS = [
    "长治市有多少所校外培训机构纳入了全国平台管理？",
    "忻州學前教育毛入園率是多少",
    "课后服务惠及多少学生",
    "普惠性幼儿园建了几所",
    "How many training institutions are on the platform?",
    "没有任何关系的问题火星",
    *STRINGS[3:9],
]
CASES = [{}, {"city": "长治"}, {"report": "b"}, {"date_from": "2024", "date_to": "2024-12"}]


def snapshot(index) -> list:
    """Every answer of QUESTIONS in each mode and filter case, as plain JSON."""
    from app.answer import answer_many

    out = []
    for mode in ("hybrid", "keyword", "dense"):
        for kw in CASES:
            for a in answer_many(index, QUESTIONS, top_k=5, mode=mode, **kw):
                out.append({"mode": mode, "filter": kw, "question": a.question, "answered": a.answered,
                            "confidence": float(a.confidence), "notice": a.notice,
                            "hits": [[h.chunk.id, h.chunk.start, h.chunk.end, list(h.highlight), float(h.score),
                                      {k: float(v) for k, v in h.signals.items()}] for h in a.hits]})  # fmt: skip
    return out


def indexes(tiny_corpus, fake_encoder) -> dict:
    """The tiny index on the hand-set path and on the learned (shipped model) path."""
    from app.index import ReportIndex
    from app.load import load_corpus

    docs, _ = load_corpus([tiny_corpus])
    hand = ReportIndex.build(docs, fake_encoder)
    hand.trust = None
    return {"hand": hand, "learned": ReportIndex.build(docs, fake_encoder)}


def test_the_embedded_store_gives_the_answers_recorded_before_it(tiny_corpus, fake_encoder):
    from app.stores import EmbeddedStore

    want = json.loads(GOLDEN.read_text("utf-8"))
    for name, index in indexes(tiny_corpus, fake_encoder).items():
        assert isinstance(index.store, EmbeddedStore)
        got = json.loads(json.dumps(snapshot(index), ensure_ascii=False))
        assert len(got) == len(want[name])
        for g, w in zip(got, want[name]):
            assert g == w, (name, g["mode"], g["filter"], g["question"])


if __name__ == "__main__":  # records the golden answers (run once, before the store was wired in)
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from conftest import TINY, TINY_MANIFEST, FakeEncoder

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        for name, text in TINY.items():
            (folder / name).write_text(text, encoding="utf-8")
        (folder / "manifest.json").write_text(TINY_MANIFEST, encoding="utf-8")
        got = {name: snapshot(ix) for name, ix in indexes(folder, FakeEncoder()).items()}
    GOLDEN.write_text(json.dumps(got, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}: {sum(map(len, got.values()))} answers")
