"""A tiny random Llama (2 layers, 128 wide) with SmolLM2's tokenizer, built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tandem.common.model_files import cache_dir, embedded_model_path


def _smollm2_tokenizer_dir() -> Path:
    """SmolLM2's tokenizer read from the embedded GGUF (slow), cached as a plain HF tokenizer."""
    from transformers import AutoTokenizer

    target = cache_dir() / "test-tokenizers" / "smollm2-135m"
    if (target / "tokenizer.json").is_file():
        return target
    gguf = embedded_model_path()
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir() -> Path:
    return _smollm2_tokenizer_dir()


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(_smollm2_tokenizer_dir())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    out = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
