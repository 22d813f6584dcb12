"""Embedding passages on Ray: batches mapped over actors that each load the encoder once, on a
local Ray instance (one actor a core) or on a cluster (`address=`).

A worker that dies costs its batch, not the run: Ray restarts the actor (which loads the encoder
again) and runs the batch again, up to `max_retries` times. The vectors are the in-process ones
(each batch is embedded by the same model; batches only change how texts are padded together).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from .errors import ReportQAError

RAY_HINT = "pip install 'reportqa[ray]'"
IN_FLIGHT = 2  # batches queued on each actor: the next is ready when one finishes


class RayUnavailable(ReportQAError):
    """Ray is not installed, or the cluster cannot be reached, or a batch failed every retry."""


def _ray():
    try:
        import ray
    except ImportError as e:
        raise RayUnavailable(f"embedding on Ray needs ray, which is not installed: {RAY_HINT}") from e
    return ray


def e5_encoder(model_dir: str, backend: str = "onnx", threads: int = 1):
    """The e5 `Embedder` a worker builds (module level, so Ray pickles it by reference)."""
    from .model import Embedder

    return Embedder(Path(model_dir), backend=backend, threads=threads)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a cluster address nothing answers at (Ray itself retries for minutes)."""
    import socket

    m = re.fullmatch(r"(?:ray://)?\[?([^\]/]+?)\]?:(\d+)/?", address)
    if not m:  # "auto", or an address Ray resolves itself
        return
    try:
        socket.create_connection((m[1], int(m[2])), timeout=timeout).close()
    except OSError as e:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address} ({e}): start it with `ray start --head` "
                             "on that machine, or leave --ray-address out to embed on this one") from e  # fmt: skip


class _Worker:
    """A Ray actor holding one encoder (made by `factory` in the worker process)."""

    def __init__(self, factory: Callable[[], object]):
        self.encoder = factory()

    def embed(self, i: int, texts: list[str]) -> tuple[int, np.ndarray]:
        return i, np.asarray(self.encoder.passages(texts), np.float32)


def embed_passages_ray(texts: Sequence[str], *, encoder_factory: Callable[[], object] | None = None, model_dir: Path | str | None = None,
                       backend: str = "onnx", batch: int = 64, workers: int | None = None, address: str | None = None,
                       progress: Callable[[int, int], None] | None = None, max_retries: int = 3,
                       runtime_env: dict | None = None) -> np.ndarray:  # fmt: skip
    """The passage vectors of `texts`, in order, embedded in batches of `batch` on `workers` Ray actors.

    The encoder comes from `encoder_factory` (a picklable zero-argument callable, run once in each
    worker) or is e5 from `model_dir` (`Config.models`) on `backend`, one thread a worker.
    Without `address`, a local Ray instance with `workers` CPUs (default: this machine's) is
    started and stopped again; with it (`ray://HOST:10001` or `auto`), the cluster's CPUs are
    used and reportqa must be importable on its nodes (installed, or `runtime_env={"py_modules": [app]}`).
    An already initialised Ray is used as it is. `progress(done, total)` follows the passages embedded.
    """
    with RayPool(encoder_factory=encoder_factory, model_dir=model_dir, backend=backend, workers=workers, address=address,
                 max_retries=max_retries, runtime_env=runtime_env) as pool:  # fmt: skip
        return pool.embed(texts, batch=batch, progress=progress)


class RayPool:
    """Ray (started here unless it runs already) and `workers` actors holding an encoder each,
    kept for several `embed` calls (a build embeds passages, then sentences); `close` stops them."""

    def __init__(self, *, encoder_factory: Callable[[], object] | None = None, model_dir: Path | str | None = None,
                 backend: str = "onnx", workers: int | None = None, address: str | None = None, max_retries: int = 3,
                 runtime_env: dict | None = None):  # fmt: skip
        if encoder_factory is None:
            if model_dir is None:
                raise ValueError("a Ray pool needs encoder_factory or model_dir")
            encoder_factory = partial(e5_encoder, str(model_dir), backend, 1)
        self.factory = encoder_factory
        self.workers = workers
        self.address = address
        self.max_retries = max_retries
        self.runtime_env = runtime_env
        self.ray = None
        self.started = False
        self.pool: list = []

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self, batches: int) -> None:
        if self.ray is None:
            ray = _ray()
            if not ray.is_initialized():
                if self.address:
                    _check_reachable(self.address)
                try:
                    if self.address:
                        ray.init(address=self.address, runtime_env=self.runtime_env, log_to_driver=False)
                    else:
                        ray.init(num_cpus=self.workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                                 runtime_env=self.runtime_env)  # fmt: skip
                except ConnectionError as e:
                    raise RayUnavailable(f"cannot reach the Ray cluster at {self.address} ({e}): start it with `ray start --head` "
                                         "or leave --ray-address out to embed on this machine") from e  # fmt: skip
                self.started = True
            self.ray = ray
        n = self.workers or max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        n = max(1, min(n, batches))
        if len(self.pool) < n:
            actor = self.ray.remote(num_cpus=1, max_restarts=self.max_retries, max_task_retries=self.max_retries)(_Worker)
            self.pool += [actor.remote(self.factory) for _ in range(n - len(self.pool))]

    def embed(self, texts: Sequence[str], *, batch: int = 64, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """The passage vectors of `texts`, in order; `progress(done, total)` after each batch."""
        texts = list(texts)
        total = len(texts)
        if progress:
            progress(0, total)
        if not total:
            return np.zeros((0, 0), np.float32)
        batches = [texts[s : s + batch] for s in range(0, total, batch)]
        self._start(len(batches))
        ray = self.ray
        pool = self.pool[: len(batches)]
        out: list[np.ndarray | None] = [None] * len(batches)
        todo = list(range(len(batches)))[::-1]
        pending: dict = {}  # object ref -> actor
        done = 0

        def submit(a: int) -> None:
            i = todo.pop()
            pending[pool[a].embed.remote(i, batches[i])] = a

        for a in range(len(pool)):
            for _ in range(IN_FLIGHT):
                if todo:
                    submit(a)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            a = pending.pop(ready[0])
            try:
                i, vecs = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as e:
                for ref in pending:
                    ray.cancel(ref)
                raise RayUnavailable(f"embedding failed, a batch failed {self.max_retries + 1} times: {e}") from e
            out[i] = vecs
            done += len(vecs)
            if progress:
                progress(done, total)
            if todo:
                submit(a)
        return np.concatenate(out).astype(np.float32, copy=False)

    def close(self) -> None:
        if self.ray is not None:
            for p in self.pool:
                self.ray.kill(p)
            self.pool = []
            if self.started:
                self.ray.shutdown()
            self.ray, self.started = None, False


class RayEncoder:
    """An encoder whose passages (and sentences) are embedded on Ray; questions stay in process.
    `with RayEncoder(local, model_dir=cfg.models) as enc: ReportIndex.build(docs, enc)` is a
    distributed build (the workers load the model once for both)."""

    def __init__(self, local, *, batch: int = 64, **pool_options):
        self.local = local
        self.name = local.name
        self.dim = local.dim
        self.batch = batch
        self.pool = RayPool(**pool_options)  # the keyword arguments of `RayPool`

    def __enter__(self) -> RayEncoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.pool.close()

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.local.queries(texts)

    def passages(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        last = 0

        def step(done: int, total: int) -> None:  # the index counts passages one batch at a time
            nonlocal last
            if progress and done > last:
                progress(done - last)
            last = done

        vecs = self.pool.embed(texts, batch=self.batch, progress=step)
        return vecs if len(texts) else np.zeros((0, self.dim), np.float32)

    sentences = passages  # e5 embeds the passages' sentences with the passage prompt
