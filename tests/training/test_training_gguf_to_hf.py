"""The embedded GGUF as HF weights: loadable, chat-ready, and converted once per GGUF sha256."""

from __future__ import annotations

import json

import pytest

from tandem.common.manifest import sha256_file
from tandem.common.model_files import embedded_model_path
from tandem.compression.gguf_to_hf import GGUFConversionError, dequantize_gguf_to_hf


@pytest.mark.slow
def test_embedded_gguf_dequantizes_to_a_loadable_cached_hf_model(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_model_path()
    out = dequantize_gguf_to_hf(gguf, tmp_path / "hf")
    source = json.loads((out / "tandem_gguf_source.json").read_text())
    assert source["gguf_sha256"] == sha256_file(gguf)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config

    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        generated = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert "Paris" in tokenizer.decode(generated[0, ids["input_ids"].shape[1]:])

    weights = out / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert dequantize_gguf_to_hf(gguf, out) == out
    assert weights.stat().st_mtime_ns == before  # cached: not converted again


def test_missing_gguf_is_a_clear_error(tmp_path):
    with pytest.raises(GGUFConversionError, match="does not exist"):
        dequantize_gguf_to_hf(tmp_path / "nope.gguf", tmp_path / "hf")
