"""A tiny real Llama (2 layers, 64 dims) with the embedded SmolLM2's tokenizer and chat template,
as a GGUF made by llama.cpp's own converter: the modifier recipe runs end to end on it in seconds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tandem.common.model_files import embedded_model_path, llama_cpp_script, llama_cpp_script_env


@pytest.fixture(scope="session")
def tiny_base_gguf(tmp_path_factory) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = embedded_model_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    hf_dir = tmp_path_factory.mktemp("tiny_base")
    LlamaForCausalLM(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    out = hf_dir.parent / "tiny_base.f16.gguf"
    proc = subprocess.run(llama_cpp_script("convert_hf_to_gguf.py") + [str(hf_dir), "--outtype", "f16", "--outfile", str(out)],
                          env=llama_cpp_script_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
