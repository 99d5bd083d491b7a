"""A tiny real Llama GGUF (2 layers, 64 dims, random weights) carrying the embedded SmolLM2's own
tokenizer and chat template, written with the `gguf` library: the modifier recipe runs end to end
on it in seconds, and llama.cpp tokenizes it exactly like the embedded model (a GGUF converted
from the HF tokenizer gets llama.cpp's SentencePiece vocab type instead, on which its tokenizer
aborts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tandem.common.model_files import embedded_model_path

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS, CONTEXT = 64, 128, 2, 4, 2, 4096


def _copy_tokenizer(reader, writer) -> int:
    import gguf

    vocab = 0
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        value = field.contents()
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, value, gguf.GGUFValueType.ARRAY, sub_type=field.types[-1])
            vocab = max(vocab, len(value)) if name == "tokenizer.ggml.tokens" else vocab
        else:
            writer.add_key_value(name, value, field.types[0])
    return vocab


@pytest.fixture(scope="session")
def tiny_base_gguf(tmp_path_factory) -> Path:
    import gguf

    out = tmp_path_factory.mktemp("tiny_base") / "tiny_base.f32.gguf"
    reader = gguf.GGUFReader(str(embedded_model_path()))
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name("tandem-test-tiny-llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    vocab = _copy_tokenizer(reader, writer)
    rng = np.random.default_rng(0)
    kv = HIDDEN // HEADS * KV_HEADS

    def weight(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)

    writer.add_tensor("token_embd.weight", weight(vocab, HIDDEN))
    writer.add_tensor("output_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    for i in range(LAYERS):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        for name, shape in [("attn_q", (HIDDEN, HIDDEN)), ("attn_k", (kv, HIDDEN)), ("attn_v", (kv, HIDDEN)),
                            ("attn_output", (HIDDEN, HIDDEN)), ("ffn_gate", (FFN, HIDDEN)),
                            ("ffn_up", (FFN, HIDDEN)), ("ffn_down", (HIDDEN, FFN))]:
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(*shape))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
