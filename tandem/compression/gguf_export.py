"""GGUF export (llama.cpp's `convert_hf_to_gguf.py`), importance matrix, quantization, checks.

Quantization uses the `llama-quantize` binary when it is built (`tandem.compression.llama_tools`),
else llama-cpp-python's in-process `llama_model_quantize` (same code, no importance matrix).
The importance matrix comes only from the `llama-imatrix` binary.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tandem.common.model_files import llama_cpp_script, llama_cpp_script_env
from tandem.compression.llama_tools import find_tool


class GGUFFileError(Exception):
    """A GGUF file is missing, truncated or not a GGUF at all."""


def convert_hf(hf_dir: str | Path, out_path: str | Path, outtype: str = "f16") -> Path:
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(dir=out_path.parent) as view:
        source = byte_level_bpe_view(Path(hf_dir), Path(view))
        cmd = [*llama_cpp_script("convert_hf_to_gguf.py"), str(source), "--outfile", str(out_path),
               "--outtype", outtype]
        result = subprocess.run(cmd, env=llama_cpp_script_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise GGUFFileError(f"convert_hf_to_gguf.py failed on {hf_dir}:\n{result.stderr[-3000:]}")
    check_gguf(out_path)
    return out_path


def byte_level_bpe_view(hf_dir: Path, view: Path) -> Path:
    """`hf_dir`, or a view of it whose tokenizer.json llama.cpp recognises as byte-level BPE.

    transformers' GGUF loader rebuilds a GPT-2 style (byte-level) BPE tokenizer with
    `byte_fallback` and a SentencePiece-like decoder. Encoding is unaffected (every byte has a
    token), but `convert_hf_to_gguf.py` then takes it for a SentencePiece vocab and writes a
    GGUF whose tokenizer aborts llama.cpp on the first text it tokenizes. The view (symlinks
    plus a corrected tokenizer.json) makes the converter take its BPE path.

    The same loader also writes `eos_token` = the BOS token into tokenizer_config.json (SmolLM2:
    `<|im_start|>`), which the converter copies into the GGUF; the view takes the EOS id from
    config.json instead.
    """
    tokenizer_file, tok_config_file = hf_dir / "tokenizer.json", hf_dir / "tokenizer_config.json"
    if not tokenizer_file.is_file():
        return hf_dir
    fixed: dict[str, str] = {}
    tokenizer = json.loads(tokenizer_file.read_text())
    pre = tokenizer.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and tokenizer["model"].get("byte_fallback"):
        tokenizer["model"]["byte_fallback"] = False
        tokenizer["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                "use_regex": True}
        fixed["tokenizer.json"] = json.dumps(tokenizer)
    eos_id = json.loads((hf_dir / "config.json").read_text()).get("eos_token_id")
    vocab = tokenizer["model"].get("vocab", {})
    eos_text = next((t["content"] for t in tokenizer.get("added_tokens", []) if t["id"] == eos_id), None) \
        or next((text for text, i in vocab.items() if i == eos_id), None)
    if tok_config_file.is_file() and isinstance(eos_id, int) and eos_text:
        tok_config = json.loads(tok_config_file.read_text())
        if tok_config.get("eos_token") not in (None, eos_text):
            tok_config["eos_token"] = eos_text
            tok_config.pop("eos_token_id", None)
            fixed["tokenizer_config.json"] = json.dumps(tok_config)
    if not fixed:
        return hf_dir
    for item in hf_dir.iterdir():
        if item.name not in fixed:
            (view / item.name).symlink_to(item.resolve())
    for name, text in fixed.items():
        (view / name).write_text(text)
    return view


def compute_imatrix(f16_path: Path, calibration_text: str, out_path: Path, ctx: int, chunks: int,
                    threads: int) -> Path:
    tool = find_tool("llama-imatrix")
    if tool is None:
        raise GGUFFileError("llama-imatrix is not built: set gguf.build_tools=true or gguf.imatrix=off")
    text_file = out_path.with_suffix(".txt")
    text_file.write_text(calibration_text)
    cmd = [str(tool), "-m", str(f16_path), "-f", str(text_file), "-o", str(out_path), "-c", str(ctx),
           "--chunks", str(chunks), "-t", str(threads)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not out_path.is_file():
        raise GGUFFileError(f"llama-imatrix failed:\n{result.stderr[-3000:]}")
    return out_path


def quantize(src: Path, dst: Path, quant_type: str, threads: int, imatrix: Path | None = None) -> str:
    """Quantize `src` to `dst`; returns which quantizer ran ("llama-quantize" or "llama_model_quantize")."""
    tool = find_tool("llama-quantize")
    if tool is not None:
        cmd = [str(tool), *(["--imatrix", str(imatrix)] if imatrix else []), str(src), str(dst), quant_type,
               str(threads)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise GGUFFileError(f"llama-quantize {quant_type} failed:\n{result.stderr[-3000:]}")
        check_gguf(dst)
        return "llama-quantize"
    if imatrix is not None:
        raise GGUFFileError("an importance matrix needs the llama-quantize binary (gguf.build_tools=true)")
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant_type}")
    params.nthread = threads
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params) != 0:
        raise GGUFFileError(f"llama_model_quantize {quant_type} failed on {src}")
    check_gguf(dst)
    return "llama_model_quantize"


def check_gguf(path: str | Path):
    """Open `path` with gguf-py and check every tensor lies inside the file; returns the reader."""
    import gguf

    path = Path(path)
    if not path.is_file():
        raise GGUFFileError(f"GGUF file {path} does not exist")
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise GGUFFileError(f"{path} is not a GGUF file (bad magic): corrupt, or another format")
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, IndexError, OSError, KeyError) as exc:
        raise GGUFFileError(f"{path} is a corrupt or truncated GGUF: {exc}") from exc
    size = path.stat().st_size
    for tensor in reader.tensors:
        if tensor.data_offset + tensor.n_bytes > size:
            raise GGUFFileError(f"{path} is truncated: tensor {tensor.name} ends past the end of the file")
    return reader


def gguf_stats(path: str | Path) -> dict[str, float]:
    """Parameters, bits per weight and the zero fraction of the dequantized block weights."""
    import gguf

    reader = check_gguf(path)
    n_params = sum(int(t.n_elements) for t in reader.tensors)
    zeros = total = 0
    for t in reader.tensors:
        if t.name.startswith("blk.") and t.name.endswith(".weight") and len(t.shape) == 2:
            values = gguf.quants.dequantize(t.data, t.tensor_type)
            zeros += int(np.count_nonzero(values == 0))
            total += values.size
    return {"n_params": n_params, "bits_per_weight": Path(path).stat().st_size * 8 / n_params,
            "sparsity_linear": zeros / max(total, 1)}
