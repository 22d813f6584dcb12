"""Embedding on Ray (a local instance with two CPUs): the vectors are the in-process ones, the
progress advances, and a worker killed in the middle of a batch costs that batch, not the run."""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import STRINGS, FakeEncoder

from app.distributed import RayEncoder, RayUnavailable, embed_passages_ray

TEXTS = [f"{s} {i}" for i in range(12) for s in STRINGS]  # 288 passages


class DyingEncoder(FakeEncoder):
    """Kills its own process at its first batch, once (the marker file remembers), or always."""

    def __init__(self, marker: str, always: bool = False):
        super().__init__()
        self.marker, self.always = marker, always

    def passages(self, texts, progress=None):
        if self.always or not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)  # as a worker killed by the OOM killer or a lost node: no exception, no clean-up
        return super().passages(texts, progress)


def test_an_unreachable_cluster_names_the_address_and_the_fix():
    pytest.importorskip("ray", reason="ray is not installed: pip install 'reportqa[ray]'")
    # before the tests that start a local Ray: with one running, an address is not dialled
    from conftest import free_port

    address = f"ray://127.0.0.1:{free_port()}"
    with pytest.raises(RayUnavailable, match=rf"cannot reach the Ray cluster at {address}.*ray start --head.*--ray-address"):
        embed_passages_ray(["x"], encoder_factory=FakeEncoder, address=address)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.slow
def test_ray_embeds_like_in_process_and_reports_progress(ray_local):
    seen = []
    got = embed_passages_ray(TEXTS, encoder_factory=FakeEncoder, batch=20, workers=2, progress=lambda d, t: seen.append((d, t)))
    want = FakeEncoder().passages(TEXTS)
    assert got.shape == want.shape and got.dtype == np.float32
    assert cosines(got, want).min() >= 0.9999
    assert seen[0] == (0, len(TEXTS)) and seen[-1] == (len(TEXTS), len(TEXTS))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 1 + -(-len(TEXTS) // 20)


@pytest.mark.slow
def test_a_killed_worker_costs_its_batch_not_the_run(ray_local, tmp_path):
    marker = tmp_path / "died"
    seen = []
    got = embed_passages_ray(TEXTS, encoder_factory=partial(DyingEncoder, str(marker)), batch=32, workers=2,
                             progress=lambda d, t: seen.append(d), max_retries=2)  # fmt: skip
    assert marker.exists()  # a worker did die
    assert cosines(got, FakeEncoder().passages(TEXTS)).min() >= 0.9999
    assert seen[-1] == len(TEXTS)


@pytest.mark.slow
def test_a_batch_that_always_kills_its_worker_fails_the_run_with_a_message(ray_local, tmp_path):
    with pytest.raises(RayUnavailable, match="failed 2 times"):
        embed_passages_ray(
            TEXTS[:10], encoder_factory=partial(DyingEncoder, str(tmp_path / "m"), True), batch=10, workers=1, max_retries=1
        )


@pytest.mark.slow
def test_an_index_built_on_ray_is_the_in_process_one(ray_local):
    from app.index import BuildSettings, ReportIndex
    from app.records import Document

    docs = [Document(f"d{i}", f"报告{i}", "。".join(STRINGS[i : i + 8]), city="长治") for i in range(12)]
    settings = BuildSettings(chunk_size=80, chunk_overlap=10)  # with sentence vectors: two embedding passes
    steps = []
    with RayEncoder(FakeEncoder(), encoder_factory=FakeEncoder, workers=2, batch=8) as enc:
        ray_built = ReportIndex.build(docs, enc, settings, progress=lambda d, t: steps.append((d, t)))
    local = ReportIndex.build(docs, FakeEncoder(), settings)
    assert cosines(ray_built.sentences.vectors, local.sentences.vectors).min() >= 0.9999
    assert cosines(ray_built.vectors, local.vectors).min() >= 0.9999
    assert [c.id for c in ray_built.chunks] == [c.id for c in local.chunks]
    assert steps[-1][0] == steps[-1][1] > len(local.chunks)  # passages, then sentences


@pytest.mark.slow
@pytest.mark.model
def test_real_model_on_ray_gives_the_in_process_vectors(ray_local, real_encoder):
    texts = STRINGS[:16]
    got = embed_passages_ray(texts, model_dir=real_encoder.cache_dir, backend=real_encoder.backend, batch=8, workers=2)
    assert cosines(got, real_encoder.passages(texts)).min() >= 0.9999


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(RayUnavailable, match=r"pip install 'reportqa\[ray\]'"):
        embed_passages_ray(["x"], encoder_factory=FakeEncoder)
