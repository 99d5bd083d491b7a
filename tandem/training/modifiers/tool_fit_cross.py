"""A cross-encoder tool-fit check (automation run 11): P(the called function fits), reading request and
function together.

    python -m tandem.training.modifiers.tool_fit_cross dump --out build/tool-cross          # CPU: pairs + fp16 MiniLM
    python -m tandem.training.modifiers.tool_fit_cross train build/tool-cross --out cross.npz   # GPU (seconds)
    python -m tandem.training.modifiers.guard_replay --matrix M.json.gz --cross-model cross.npz --out R.json

Run 10's logistic regression saw the request and the function only as two separate embeddings, and
a topical neighbour embeds close to the function asked for. Here the packaged MiniLM reads
"request [SEP] function" as one input, so attention can compare the two word by word; it is
fine-tuned (LoRA r=16 on every attention and feed-forward matrix, as the router's encoder, with a
linear head on the mean-pooled output) on exactly run 10's pairs: BFCL *train* requests with each
offered function (gold: fit) and with the tools of their no-fit partners (no fit). The threshold is
chosen on run 10's dev pairs only: the largest t at which 90% of the dev calls' gold functions score
>= t. docs/MODIFIERS.md (run 11) registered all of this before training.

`dump` writes the pairs and the fp16 MiniLM (to carry to a GPU machine without the data packages),
`train` writes the adapter + head (`cross.npz`) and its report (`cross.json`: dev AUROC, threshold);
`CrossFitModel` scores calls on CPU with torch for the replay. It is replayed on recorded answers, not
served: serving it would need the pair input in the guard's torch-free encoder.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from tandem.training.minilm import TARGETS, lora_arrays, merge_lora, minilm_dir, warmup_decay, write_fp16_minilm

MAX_PAIR_TOKENS = 256


def _pair_tokenizer(folder: Path):
    """MiniLM's tokenizer for pairs: its template gives [CLS] request [SEP] function [SEP] and segment ids,
    cut longest-first to MAX_PAIR_TOKENS."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_PAIR_TOKENS, strategy="longest_first")
    return tokenizer


def _encode_pairs(tokenizer, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(token ids, segment ids) of each (request, function) pair, by a `_pair_tokenizer`."""
    return [(enc.ids, enc.type_ids) for enc in tokenizer.encode_batch(pairs)]


def _batch(encoded, device):
    import torch

    width = max(len(ids) for ids, _ in encoded)
    ids = np.zeros((len(encoded), width), np.int64)
    types, mask = np.zeros_like(ids), np.zeros_like(ids)
    for row, (a, t) in enumerate(encoded):
        ids[row, :len(a)], types[row, :len(a)], mask[row, :len(a)] = a, t, 1
    return [torch.from_numpy(x).to(device) for x in (ids, mask, types)]


def _logits(model, head, ids, mask, types):
    hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return head(((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)).float()).squeeze(-1)


def _read_pairs(path: Path) -> list[tuple[str, str, int]]:
    with gzip.open(path, "rt") as fh:
        return [tuple(json.loads(line)) for line in fh]


def dump(out: Path) -> int:
    from tandem.training.modifiers.tool_fit_model import dev_pairs, training_pairs

    out.mkdir(parents=True, exist_ok=True)
    for name, pairs in (("train", training_pairs()), ("dev", dev_pairs())):
        with gzip.open(out / f"{name}.jsonl.gz", "wt") as fh:
            fh.writelines(json.dumps(p) + "\n" for p in pairs)
        print(f"{name}: {len(pairs)} pairs ({sum(y for *_, y in pairs)} fit)")
    write_fp16_minilm(out / "minilm")
    return 0


def train(data: Path, out: Path, r: int = 16, lr: float = 5e-4, epochs: int = 3, seed: int = 0,
          recall: float = 0.9) -> dict:
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig, get_peft_model
    from sklearn.metrics import roc_auc_score
    from transformers import AutoModel

    from tandem.training.modifiers.gate import threshold_for_recall

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    tokenizer = _pair_tokenizer(data / "minilm")
    train_pairs, dev = _read_pairs(data / "train.jsonl.gz"), _read_pairs(data / "dev.jsonl.gz")
    x_train = _encode_pairs(tokenizer, [(a, b) for a, b, _ in train_pairs])
    y_train = np.array([y for *_, y in train_pairs], np.float32)
    model = AutoModel.from_pretrained(data / "minilm", dtype=torch.float32).to(device)
    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.05, target_modules=TARGETS))
    head = torch.nn.Linear(model.config.hidden_size, 1).to(device)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    batch_size = 32
    steps = epochs * math.ceil(len(x_train) / batch_size)
    sched = warmup_decay(opt, steps)
    pos_weight = torch.tensor((len(y_train) - y_train.sum()) / max(y_train.sum(), 1), device=device)
    rng = np.random.default_rng(seed)
    started = time.time()
    for _ in range(epochs):
        model.train()
        order = rng.permutation(len(x_train))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            logits = _logits(model, head, *_batch([x_train[i] for i in idx], device))
            target = torch.from_numpy(y_train[idx]).to(device)
            loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
    model.eval()

    def probabilities(pairs):
        encoded = _encode_pairs(tokenizer, [(a, b) for a, b, _ in pairs])
        with torch.no_grad():
            return np.concatenate([torch.sigmoid(_logits(model, head, *_batch(encoded[s:s + 128], device))).cpu().numpy()
                                   for s in range(0, len(encoded), 128)])

    p_dev, y_dev = probabilities(dev), np.array([y for *_, y in dev])
    threshold = threshold_for_recall(p_dev[y_dev == 1], recall)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **lora_arrays(model), head_weight=head.weight.detach().float().cpu().numpy(),
             head_bias=head.bias.detach().float().cpu().numpy(), threshold=np.float32(threshold))
    report = {"pairs": {"train": len(train_pairs), "train_fit": int(y_train.sum()), "dev": len(dev),
                        "dev_fit": int(y_dev.sum())},
              "r": r, "lr": lr, "epochs": epochs, "seed": seed, "max_pair_tokens": MAX_PAIR_TOKENS,
              "recall_target": recall, "threshold": threshold,
              "dev_auroc": float(roc_auc_score(y_dev, p_dev)),
              "dev_fit_kept": float(np.mean(p_dev[y_dev == 1] >= threshold)),
              "dev_no_fit_below": float(np.mean(p_dev[y_dev == 0] < threshold)),
              "seconds": round(time.time() - started, 1),
              "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"}
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    return report


class CrossFitModel:
    """The trained cross-encoder on CPU (torch): `call_fit` is the lowest P(fit) of the functions a message
    calls, as `FitModel.call_fit`, so `guard_replay` can stack either on the served guard."""

    def __init__(self, path: Path):
        import torch
        from transformers import AutoModel

        self.model = AutoModel.from_pretrained(minilm_dir(), dtype=torch.float32).eval()
        with np.load(path) as data:
            merge_lora(self.model, data)
            self.head = torch.nn.Linear(self.model.config.hidden_size, 1)
            self.head.weight.data = torch.from_numpy(data["head_weight"])
            self.head.bias.data = torch.from_numpy(data["head_bias"])
            self.threshold = float(data["threshold"])
        self.tokenizer = _pair_tokenizer(minilm_dir())

    def probability(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        import torch

        encoded = _encode_pairs(self.tokenizer, pairs)
        with torch.no_grad():
            return torch.sigmoid(_logits(self.model, self.head, *_batch(encoded, "cpu"))).numpy()

    def call_fit(self, guard, body, message: dict) -> float | None:
        from tandem.services.router.tool_guard import function_text, request_text

        calls = message.get("tool_calls") or []
        if not calls:
            return None
        request = request_text(body.messages)
        names = [str((c.get("function") or {}).get("name", "")) for c in calls]
        return float(self.probability([(request, function_text(body.tools or [], n)) for n in names]).min())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.training.modifiers.tool_fit_cross", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="write run 10's train and dev pairs and the fp16 MiniLM")
    d.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("train", help="fine-tune the cross-encoder on a dump; threshold on its dev pairs")
    t.add_argument("data", type=Path)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "dump":
        return dump(args.out)
    print(json.dumps(train(args.data, args.out, seed=args.seed), indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main())
