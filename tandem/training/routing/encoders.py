"""The encoders `finetune` can fine-tune for the router: the served MiniLM, and the base model itself
(SmolLM2-135M-Instruct, the larger-encoder probe of docs/ROUTER.md). Each one is a folder in the dump, a
LoRA target pattern, a loader and a pooling; everything else in `finetune.train` is shared.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tandem.training.minilm import TARGETS as MINILM_TARGETS

SMOLLM2_TARGETS = r".*layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
SMOLLM2_GGUF = "model.gguf"


@dataclass(frozen=True)
class Encoder:
    name: str
    targets: str
    end_token: str | None  # appended after the text (a decoder pools its hidden state there)
    gguf_file: str | None = None  # weights dequantized from this GGUF in the folder, as serving runs them

    def folder(self, dump: Path) -> Path:
        return dump / self.name

    def load(self, dump: Path):
        import torch
        from transformers import AutoModel

        gguf = {"gguf_file": self.gguf_file} if self.gguf_file else {}
        return AutoModel.from_pretrained(self.folder(dump), dtype=torch.float32, **gguf)

    def pool(self, model, ids, mask):
        """MiniLM: the mean over tokens, as the served ONNX graph pools. SmolLM2: the hidden state at the
        appended end token, the last real position (the only one a causal decoder lets see everything).
        Both L2-normalised."""
        import torch
        import torch.nn.functional as F

        if self.end_token is None:
            hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
            weight = mask.unsqueeze(-1).to(hidden.dtype)
            return F.normalize((hidden * weight).sum(1) / weight.sum(1).clamp(min=1e-9), dim=-1)
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        last = mask.sum(1) - 1
        return F.normalize(hidden[torch.arange(len(ids), device=ids.device), last], dim=-1)


ENCODERS = {"minilm": Encoder("minilm", MINILM_TARGETS, None),
            "smollm2": Encoder("smollm2", SMOLLM2_TARGETS, "<|im_end|>", gguf_file=SMOLLM2_GGUF)}


def write_smollm2(out: Path) -> None:
    """The packaged base GGUF (98 MB) and its tokenizer as `tokenizer.json`, as a folder `Encoder.load` reads."""
    from transformers import AutoTokenizer

    from tandem.common.model_files import embedded_model_path

    out.mkdir(parents=True, exist_ok=True)
    gguf = embedded_model_path()
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).backend_tokenizer.save(str(out / "tokenizer.json"))
    shutil.copyfile(gguf, out / SMOLLM2_GGUF)
