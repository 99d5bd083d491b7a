"""Sentence embeddings from the exported MiniLM ONNX graph: ONNX Runtime and `tokenizers` only.

The graph takes token ids and an attention mask and returns either mean-pooled, L2-normalised
384-d vectors (our own export, `export.py`) or token states (the packaged encoder,
`packaged_encoder.py`), which this class then mean-pools over the mask and L2-normalises itself. Inputs are cut to
`max_tokens` (the main latency lever: MiniLM's cost grows with length): the first tokens
(`truncation="head"`), or the first and the last half each (`"head_tail"`): real prompts often
paste a document or code first and put the request at the end. With `lora_path`, a LoRA adapter
(`encoder_lora.npz`, tandem.training.routing.finetune) is merged into the graph's int8 weights at load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

Truncation = Literal["head", "head_tail"]
# head_tail tokenizes only this many characters from each end of a prompt: enough for max_tokens
# (<= 512) WordPiece tokens at either end, and it bounds the cost of a very long paste.
_TAIL_CHARS = 4000


class OnnxEncoder:
    def __init__(self, model_path: str | Path, tokenizer_path: str | Path, max_tokens: int = 32, threads: int = 1,
                 truncation: Truncation = "head", lora_path: str | Path | None = None):
        self.max_tokens = max_tokens
        self.truncation = truncation
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        if truncation == "head":
            self.tokenizer.enable_truncation(max_length=max_tokens)
        else:
            self.tokenizer.no_truncation()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if lora_path is not None:  # a fine-tuned encoder: the adapter merged into the int8 weights (lora_merge)
            from tandem.services.routing.lora_merge import merged_model_bytes

            model: str | bytes = merged_model_bytes(model_path, lora_path)
        else:
            model = str(model_path)
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._wants_token_types = "token_type_ids" in {i.name for i in self.session.get_inputs()}
        self._pools_here = len(self.session.get_outputs()[0].shape) == 3  # token states, not sentence vectors

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        if self.truncation == "head":
            return [enc.ids for enc in self.tokenizer.encode_batch(texts)]
        cut = [t if len(t) <= 2 * _TAIL_CHARS else t[:_TAIL_CHARS] + " " + t[-_TAIL_CHARS:] for t in texts]
        return [self._head_tail(enc.ids) for enc in self.tokenizer.encode_batch(cut)]

    def _head_tail(self, ids: list[int]) -> list[int]:
        """[CLS] + first tokens + last tokens + [SEP], max_tokens in all."""
        if len(ids) <= self.max_tokens:
            return ids
        head = self.max_tokens // 2
        return ids[:head] + ids[len(ids) - (self.max_tokens - head):]

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self.encode_ids(self.token_ids(texts), batch_size)

    def _run(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": mask}
        if self._wants_token_types:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        out = self.session.run(None, feed)[0]
        if not self._pools_here:
            return out
        weights = mask[:, :, None].astype(np.float32)
        pooled = (out * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode_ids(self, ids: list[list[int]], batch_size: int = 32) -> np.ndarray:
        """L2-normalised embeddings (N, 384) of tokenized texts; batches group similar lengths."""
        order = np.argsort([len(x) for x in ids], kind="stable")
        chunks = []
        for start in range(0, len(order), batch_size):
            batch = [ids[i] for i in order[start:start + batch_size]]
            width = max(len(x) for x in batch)
            input_ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, seq in enumerate(batch):
                input_ids[row, :len(seq)] = seq
                mask[row, :len(seq)] = 1
            chunks.append(self._run(input_ids, mask))
        out = np.empty((len(ids), chunks[0].shape[1] if chunks else 0), dtype=np.float32)
        if chunks:
            out[order] = np.concatenate(chunks)
        return out
