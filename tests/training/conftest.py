"""Tiny real models for the training tests (litgpt-style: 2 layers, small dims, CPU).

The tiny Llama uses the embedded SmolLM2's tokenizer and chat template (read from its GGUF, which
is quick: no weights are dequantized), so chat masking and llama.cpp conversion see a real
tokenizer. Its GGUF is made by llama.cpp's own `convert_hf_to_gguf.py`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tandem.common.model_files import embedded_model_path, llama_cpp_script, llama_cpp_script_env


@pytest.fixture(scope="session")
def smol_tokenizer():
    from transformers import AutoTokenizer

    gguf = embedded_model_path()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, smol_tokenizer) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(smol_tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         bos_token_id=smol_tokenizer.bos_token_id, eos_token_id=smol_tokenizer.eos_token_id)
    out = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(config).save_pretrained(out)
    smol_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama_gguf(tiny_llama_dir: Path) -> Path:
    out = tiny_llama_dir.parent / "tiny_llama.f16.gguf"
    proc = subprocess.run(llama_cpp_script("convert_hf_to_gguf.py") + [
        str(tiny_llama_dir), "--outtype", "f16", "--outfile", str(out)],
        env=llama_cpp_script_env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
