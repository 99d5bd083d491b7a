"""GGUF quantization with an importance matrix from the llama.cpp tools built from the sdist."""

from __future__ import annotations

import pytest

from tandem.compression.llama_tools import find_tool

needs_tools = pytest.mark.skipif(not (find_tool("llama-imatrix") and find_tool("llama-quantize")),
                                 reason="llama-imatrix/llama-quantize not built (python -m tandem.compression.llama_tools)")


@needs_tools
def test_imatrix_quantization_loads_and_is_smaller(tiny_llama_dir, tmp_path):
    from tandem.compression.gguf_export import check_gguf, compute_imatrix, convert_hf, gguf_stats, quantize
    from tandem.compression.scoring import load_gguf
    from tandem.compression.text_data import load_texts

    f16 = convert_hf(tiny_llama_dir, tmp_path / "tiny-f16.gguf")
    text = "\n\n".join(load_texts("builtin:sciq")[:40])
    imatrix = compute_imatrix(f16, text, tmp_path / "imatrix.gguf", ctx=64, chunks=4, threads=1)
    check_gguf(imatrix)
    out = tmp_path / "tiny-Q4_K_M.gguf"
    assert quantize(f16, out, "Q4_K_M", threads=1, imatrix=imatrix) == "llama-quantize"
    assert gguf_stats(out)["bits_per_weight"] < gguf_stats(f16)["bits_per_weight"]
    llm = load_gguf(out, n_ctx=64)
    assert len(llm.tokenize(b"water boils at 100 degrees")) > 3
    llm.close()


def test_conversion_view_fixes_gguf_loader_tokenizer(smollm2_tokenizer_dir, tmp_path):
    import json
    import shutil

    from tandem.compression.gguf_export import byte_level_bpe_view

    src, view = tmp_path / "hf", tmp_path / "view"
    shutil.copytree(smollm2_tokenizer_dir, src)
    view.mkdir()
    (src / "config.json").write_text(json.dumps({"eos_token_id": 2, "bos_token_id": 1}))
    tok_config = json.loads((src / "tokenizer_config.json").read_text())
    tok_config["eos_token"] = "<|im_start|>"
    (src / "tokenizer_config.json").write_text(json.dumps(tok_config))
    assert byte_level_bpe_view(src, view) == view
    assert json.loads((view / "tokenizer_config.json").read_text())["eos_token"] == "<|im_end|>"
    tokenizer = json.loads((view / "tokenizer.json").read_text())
    assert tokenizer["decoder"]["type"] == "ByteLevel" and not tokenizer["model"]["byte_fallback"]
