"""peft LoRA -> GGUF LoRA through llama.cpp's converter, loaded by llama-cpp-python on its base."""

from __future__ import annotations

import numpy as np
import pytest

from tandem.services.engine.llama_loader import load_llama
from tandem.training.lora_export import LoraExportError, export_lora_gguf


@pytest.fixture(scope="module")
def adapter_dir(tiny_llama_dir, tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    for name, weight in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero (a no-op adapter); make it change the outputs
            torch.nn.init.normal_(weight, std=0.5)
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    return out


def _last_logits(model_path, prompt_tokens, **kwargs) -> np.ndarray:
    llm = load_llama(str(model_path), n_ctx=128, n_threads=2, logits_all=True, **kwargs)
    llm.eval(prompt_tokens)
    return np.array(llm.scores[len(prompt_tokens) - 1])


def test_exported_lora_loads_in_llama_cpp_and_changes_the_output(adapter_dir, tiny_llama_dir,
                                                                  tiny_llama_gguf, tmp_path):
    out = export_lora_gguf(adapter_dir, tiny_llama_dir, tmp_path / "lora.gguf")
    assert out.read_bytes()[:4] == b"GGUF"
    prompt = [1, 20, 300, 4000, 50]
    base = _last_logits(tiny_llama_gguf, prompt)
    adapted = _last_logits(tiny_llama_gguf, prompt, lora_path=str(out))
    assert np.isfinite(adapted).all()
    assert np.abs(adapted - base).max() > 1e-3


def test_export_reports_missing_inputs_and_converter_failures(adapter_dir, tiny_llama_dir, tmp_path):
    with pytest.raises(LoraExportError, match="adapter_config.json"):
        export_lora_gguf(tmp_path, tiny_llama_dir, tmp_path / "x.gguf")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text((adapter_dir / "adapter_config.json").read_text())
    with pytest.raises(LoraExportError, match="convert_lora_to_gguf.py failed"):
        export_lora_gguf(broken, tiny_llama_dir, tmp_path / "y.gguf")
