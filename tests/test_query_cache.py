"""The LRU cache of query vectors in `Embedder.queries`, with a stub in place of the model."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.model import QUERY_PROMPT, Embedder


class StubModel:
    """Counts what reaches the model; a vector per text from its hash."""

    def __init__(self):
        self.calls = 0
        self.texts: list[str] = []
        self.lock = threading.Lock()

    def get_embedding_dimension(self) -> int:
        return 8

    def encode(self, texts, batch_size=32, **_):
        with self.lock:
            self.calls += 1
            self.texts += texts
        out = np.stack([np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(8) for t in texts]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def embedder(tmp_path):
    e = Embedder(tmp_path, cache_size=3)
    e._model = StubModel()  # the model property returns it without materialising anything
    e.dim = 8
    return e


def test_repeated_questions_hit_the_cache(embedder):
    first = embedder.queries(["甲", "乙"])
    assert embedder._model.calls == 1 and embedder._model.texts == [QUERY_PROMPT + "甲", QUERY_PROMPT + "乙"]
    again = embedder.queries(["乙", "甲"])
    assert embedder._model.calls == 1, "a repeated question reached the model"
    assert np.array_equal(again, first[::-1])
    assert (embedder.cache_hits, embedder.cache_misses) == (2, 2)


def test_only_new_questions_are_embedded_and_duplicates_once(embedder):
    embedder.queries(["甲"])
    out = embedder.queries(["甲", "丙", "丙"])
    assert embedder._model.texts[-1:] == [QUERY_PROMPT + "丙"]
    assert np.array_equal(out[1], out[2])


def test_least_recently_used_is_dropped(embedder):
    embedder.queries(["a", "b", "c"])
    embedder.queries(["a"])  # a is now the most recent
    embedder.queries(["d"])  # drops b
    calls = embedder._model.calls
    embedder.queries(["a", "c", "d"])
    assert embedder._model.calls == calls
    embedder.queries(["b"])
    assert embedder._model.calls == calls + 1


def test_cache_returns_copies(embedder):
    v = embedder.queries(["甲"])
    v[:] = 0
    assert np.linalg.norm(embedder.queries(["甲"])[0]) == pytest.approx(1.0)


def test_cache_can_be_turned_off(embedder):
    embedder.cache_size = 0
    embedder.queries(["甲"])
    embedder.queries(["甲"])
    assert embedder._model.calls == 2


def test_passages_are_not_cached(embedder):
    embedder.passages(["甲"])
    embedder.passages(["甲"])
    assert embedder._model.calls == 2


def test_threads_share_the_cache_safely(embedder):
    embedder.cache_size = 100
    questions = [f"问题{i}" for i in range(20)]
    expected = embedder.queries(questions)
    results = {}

    def ask(n):
        results[n] = embedder.queries(questions[n % 5 :] + questions[: n % 5])

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, got in results.items():
        assert np.array_equal(got, np.roll(expected, -(n % 5), axis=0))
    assert len(embedder._model.texts) == 20, "the threads embedded a cached question again"
    assert embedder.cache_hits + embedder.cache_misses == 20 * 9


def test_unknown_backend_is_refused(tmp_path):
    from app.errors import ModelError

    with pytest.raises(ModelError, match="backend"):
        Embedder(tmp_path, backend="tensorflow")
