"""LoRA fine-tuning of the router's MiniLM encoder (training side: torch + peft; a GPU is advised).

    python -m tandem.training.routing.finetune dump --out build/router-ft            # CPU: rows + fp16 weights
    python -m tandem.training.routing.finetune train build/router-ft --out lora.npz  # GPU (~30 s on one H200)
    tandem router train --config configs/routing/router.yaml encoder.lora=lora.npz ...
    python -m tandem.training.routing.finetune score lora.npz --max-tokens 128      # CPU: its own classifier on real prompts
    python -m tandem.training.routing.finetune train DUMP --out f0.npz --folds 5 --fold 0   # cross-validation run
    python -m tandem.training.routing.finetune compare --baseline a/*.json --candidate b/*.json
    python -m tandem.training.routing.finetune train DUMP --out s0.npz --encoder smollm2 ...       # the base model as encoder (dump --smollm2)

`dump` writes the recipe's rows (its sources, templates and hand-labelled real training rows;
**never** the real test rows, which do not leave this machine) and the MiniLM weights in fp16
(45 MB: small enough to carry to a machine without the data packages). `train` fine-tunes LoRA
(r=16 on every attention and feed-forward matrix of the 6 layers) with a linear classifier on the
mean-pooled, L2-normalised embedding, on the train split (weak labels + real training rows,
weighted `--w-real`), never on real dev rows (they select and calibrate) or test rows. The
classifier is kept beside the adapter (`<out>.head.npz`) only for `score`, which measures the fine-tuning
itself (the input length probe of docs/ROUTER.md): `tandem router train` refits its heads on the
fine-tuned embeddings.
The adapter is saved by HF parameter name; `onnx_adapter` turns it into the artifact's
`encoder_lora.npz`, keyed by the packaged ONNX graph's initializer names (matched by value), which
`tandem.services.routing.lora_merge` merges into the int8 encoder at serving time without torch.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from tandem.training.minilm import lora_arrays, merge_lora, minilm_dir, warmup_decay, write_fp16_minilm
from tandem.training.routing.encoders import ENCODERS, write_smollm2


def dump(config_path: str, out: Path, overrides: list[str], smollm2: bool = False) -> int:
    from tandem.common.recipe_config import load_config
    from tandem.training.routing.config import RouterRecipeConfig
    from tandem.training.routing.dataset import routing_data

    config = load_config(RouterRecipeConfig, config_path, overrides)
    rows, _ = routing_data(config)
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    with gzip.open(out / "rows.jsonl.gz", "wt") as fh:
        for ex in rows:
            if ex.dataset == "real_test":  # the headline set never leaves this machine
                continue
            split = "handwritten" if ex.origin == "handwritten" else ex.split
            fh.write(json.dumps({"text": ex.text, "label": ex.domain, "split": split, "origin": ex.origin,
                                 "dataset": ex.dataset}) + "\n")
            n += 1
    write_fp16_minilm(out / "minilm")
    if smollm2:
        write_smollm2(out / "smollm2")
    (out / "domains.json").write_text(json.dumps(config.domains))
    print(f"{n} rows (no real test rows), fp16 MiniLM{' and SmolLM2' if smollm2 else ''} in {out}")
    return 0


def _cut_long(text: str) -> str:
    """A very long paste keeps its first and last 4,000 characters: enough for any token budget here."""
    return text if len(text) <= 8000 else text[:4000] + " " + text[-4000:]


def _truncate(ids: list[int], n: int, mode: str) -> list[int]:
    """As serving cuts (encoder.OnnxEncoder): first n (keeping [SEP]) or first n/2 + last n/2."""
    if len(ids) <= n:
        return ids
    if mode == "head":
        return ids[:n - 1] + [ids[-1]]
    head = n // 2
    return ids[:head] + ids[len(ids) - (n - head):]


def fold_of(text: str, folds: int) -> int:
    """A real training row's cross-validation fold: fixed by its text, so every input length holds out the same rows."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % folds


def train(data: Path, out: Path, max_tokens: int, truncation: str, r: int, lr: float, epochs: int,
          w_real: float, seed: int, folds: int = 0, fold: int = 0, encoder: str = "minilm") -> dict:
    """Fine-tune on the dump's train rows. With `folds`, the real training rows of fold `fold` are held out
    and, with the real dev rows, scored by the trained classifier: their predictions go into the .json
    (cross-validation on the project's own labelled rows, never the real test set)."""
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer

    spec = ENCODERS[encoder]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    domains = json.loads((data / "domains.json").read_text())
    with gzip.open(data / "rows.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh]
    y = np.array([domains.index(row["label"]) for row in rows])
    dataset = np.array([row["dataset"] for row in rows])
    split = np.array([row["split"] for row in rows])
    train_rows = np.flatnonzero((split == "train") & (dataset != "real_dev") & (dataset != "real_test"))
    held_out = np.array([], int)
    if folds:
        in_fold = np.array([row["dataset"] == "real_train" and fold_of(row["text"], folds) == fold for row in rows])
        held_out = np.flatnonzero(in_fold)
        train_rows = np.setdiff1d(train_rows, held_out)
    weight = np.where(dataset == "real_train", w_real, 1.0)
    tokenizer = Tokenizer.from_file(str(spec.folder(data) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    texts = [_cut_long(row["text"]) for row in rows]
    end = [tokenizer.token_to_id(spec.end_token)] if spec.end_token else []
    ids = [_truncate(enc.ids + end, max_tokens, truncation) for enc in tokenizer.encode_batch(texts)]

    def batch(idx):
        width = max(len(ids[i]) for i in idx)
        a = np.zeros((len(idx), width), np.int64)
        m = np.zeros((len(idx), width), np.int64)
        for row, i in enumerate(idx):
            a[row, :len(ids[i])], m[row, :len(ids[i])] = ids[i], 1
        return torch.from_numpy(a).to(device), torch.from_numpy(m).to(device)

    model = spec.load(data).to(device)
    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.05, target_modules=spec.targets))
    head = torch.nn.Linear(model.config.hidden_size, len(domains)).to(device)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    counts = np.bincount(y[train_rows], minlength=len(domains))
    class_weight = torch.tensor(len(train_rows) / (len(domains) * np.maximum(counts, 1)), dtype=torch.float32,
                                device=device)
    batch_size = 128
    steps = epochs * math.ceil(len(train_rows) / batch_size)
    sched = warmup_decay(opt, steps)
    rng = np.random.default_rng(seed)
    start = time.time()
    amp = torch.autocast(device.type, dtype=torch.bfloat16)
    for _ in range(epochs):
        model.train()
        order = rng.permutation(train_rows)
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            with amp:
                logits = head(spec.pool(model, *batch(idx)).float() * 20.0)
            target = torch.from_numpy(y[idx]).to(device)
            w = torch.from_numpy(weight[idx]).float().to(device)
            loss = ((F.cross_entropy(logits.float(), target, weight=class_weight, reduction="none") * w).sum()
                    / (class_weight[target] * w).sum())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
    predictions = {}
    if folds:
        model.eval()
        scored = np.concatenate([held_out, np.flatnonzero(dataset == "real_dev")])
        with torch.no_grad(), amp:
            for s in range(0, len(scored), batch_size):
                idx = scored[s:s + batch_size]
                best = head(spec.pool(model, *batch(idx)).float() * 20.0).argmax(-1).cpu().numpy()
                for i, b in zip(idx, best):
                    predictions[hashlib.sha256(rows[i]["text"].encode()).hexdigest()[:16]] = {
                        "set": str(dataset[i]), "label": rows[i]["label"], "predicted": domains[int(b)]}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **lora_arrays(model))
    np.savez(out.with_suffix(".head.npz"), weight=head.weight.detach().float().cpu().numpy(),
             bias=head.bias.detach().float().cpu().numpy(), domains=np.array(domains))
    info = {"encoder": encoder, "rows": len(train_rows), "real_train_rows": int((dataset[train_rows] == "real_train").sum()),
            "max_tokens": max_tokens, "truncation": truncation, "r": r, "lr": lr, "epochs": epochs,
            "w_real": w_real, "seed": seed, "seconds": round(time.time() - start, 1),
            "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"}
    if folds:
        info.update(folds=folds, fold=fold, held_out_rows=len(held_out), predictions=predictions)
    out.with_suffix(".json").write_text(json.dumps(info, indent=1))
    return info


def score(adapter: Path, sets: list[str], max_tokens: int, truncation: str) -> dict:
    """The fine-tuning's own classifier (MiniLM + adapter, mean pool, the linear head: no refit, margin
    or temperature) on hand-labelled real-prompt sets, in torch on this machine: accuracy, its 95% Wilson
    interval and the confusion (rows: true domain, columns: predicted)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    from tandem.training.modifiers.gate import wilson_interval

    model = AutoModel.from_pretrained(minilm_dir(), dtype=torch.float32).eval()
    with np.load(adapter) as data:
        merge_lora(model, data)
    with np.load(adapter.with_suffix(".head.npz")) as data:
        w, b, domains = torch.from_numpy(data["weight"]), torch.from_numpy(data["bias"]), [str(d) for d in data["domains"]]
    tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    data_dir = Path(__file__).parent / "data"
    out = {"adapter": str(adapter), "max_tokens": max_tokens, "truncation": truncation}
    for name in sets:
        rows = [json.loads(line) for line in (data_dir / f"real_prompts_{name}.jsonl").open()]
        right, confusion, predictions = 0, np.zeros((len(domains), len(domains)), int), {}
        with torch.no_grad():
            for row in rows:
                ids = torch.tensor([_truncate(tokenizer.encode(_cut_long(row["prompt"])).ids, max_tokens, truncation)])
                pooled = ENCODERS["minilm"].pool(model, ids, torch.ones_like(ids))
                predicted = int(torch.argmax(pooled * 20.0 @ w.T + b))
                truth = domains.index(row["label"])
                confusion[truth, predicted] += 1
                predictions[row["id"]] = domains[predicted]
                right += predicted == truth
        low, high = wilson_interval(right, len(rows))
        out[name] = {"n": len(rows), "accuracy": right / len(rows), "interval": [low, high],
                     "confusion": confusion.tolist(), "domains": domains, "predictions": predictions}
        print(f"{name}: {right}/{len(rows)} = {right / len(rows):.3f} [{low:.3f}, {high:.3f}]")
    return out


def compare_folds(baseline: list[Path], candidate: list[Path]) -> dict:
    """Two arms' cross-validation runs (`train --folds`: two input lengths, or two encoders), pooled over folds:
    out-of-fold accuracy on the real training rows, paired (exact one-sided McNemar), and each fold model's
    real dev accuracy."""
    from tandem.training.modifiers.gate import mcnemar, wilson_interval

    def pooled(paths):
        infos = [json.loads(Path(p).read_text()) for p in paths]
        if sorted(i["fold"] for i in infos) != list(range(infos[0]["folds"])):
            raise SystemExit(f"need one run per fold 0..{infos[0]['folds'] - 1}, got {[i['fold'] for i in infos]}")
        held = {k: v for i in infos for k, v in i["predictions"].items() if v["set"] == "real_train"}
        dev = [np.mean([v["predicted"] == v["label"] for v in i["predictions"].values() if v["set"] == "real_dev"])
               for i in infos]
        return {"encoder": infos[0].get("encoder", "minilm"), "max_tokens": infos[0]["max_tokens"]}, held, dev

    (arm_a, a, dev_a), (arm_b, b, dev_b) = pooled(baseline), pooled(candidate)
    if a.keys() != b.keys():
        raise SystemExit("the two runs did not hold out the same rows")
    keys = sorted(a)
    right_a = [float(a[k]["predicted"] == a[k]["label"]) for k in keys]
    right_b = [float(b[k]["predicted"] == b[k]["label"]) for k in keys]
    out = {"rows": len(keys), "paired": mcnemar(right_a, right_b)}
    for name, arm, right, dev in (("baseline", arm_a, right_a, dev_a), ("candidate", arm_b, right_b, dev_b)):
        out[name] = {**arm, "out_of_fold": sum(right) / len(keys),
                     "interval": wilson_interval(int(sum(right)), len(keys)),
                     "dev_per_fold": [round(float(d), 4) for d in dev]}
    return out


def onnx_adapter(hf_adapter: str | Path, model_path: str | Path, out: str | Path) -> Path:
    """The HF-named adapter (`train`) keyed by the ONNX graph's weight names, as `lora_merge` reads it.

    Each HF Linear weight (out x in) is matched to the graph's dequantized MatMul weight (in x out)
    it came from, by value; a match that is not clear-cut is refused."""
    from safetensors.numpy import load_file

    from tandem.services.routing.lora_merge import LoraMergeError, base_weights

    base = base_weights(Path(model_path).read_bytes())
    hf = load_file(minilm_dir() / "model.safetensors")
    with np.load(hf_adapter) as data:
        adapter = {key: data[key] for key in data.files}
    merged = {}
    for module in sorted({key.rsplit(".", 1)[0] for key in adapter}):
        w = hf[module + ".weight"].T
        errors = sorted((float(np.abs(base[n] - w).max()), n) for n in base if base[n].shape == w.shape)
        if not errors or errors[0][0] > 0.1 or (len(errors) > 1 and errors[1][0] < 0.1):
            raise LoraMergeError(f"no clear match for {module} in {model_path}: {errors[:2]}")
        name = errors[0][1]
        merged[name + ".down"] = adapter[module + ".A"].T.astype(np.float16)  # in x r
        merged[name + ".up"] = adapter[module + ".B"].T.astype(np.float16)  # r x out
    out = Path(out)
    with open(out, "wb") as fh:
        np.savez(fh, **merged)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.training.routing.finetune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="write the recipe's rows (no real test rows) and fp16 MiniLM weights")
    d.add_argument("--config", default="configs/routing/router.yaml")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--smollm2", action="store_true", help="also write the base model's GGUF and tokenizer "
                   "(98 MB), for `train --encoder smollm2`")
    d.add_argument("overrides", nargs="*")
    t = sub.add_parser("train", help="fine-tune LoRA on a dump; writes the HF-named adapter npz (+ .json)")
    t.add_argument("data", type=Path)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--max-tokens", type=int, default=32)
    t.add_argument("--truncation", choices=["head", "head_tail"], default="head_tail")
    t.add_argument("--r", type=int, default=16)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--w-real", type=float, default=3.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--folds", type=int, default=0, help="cross-validate: hold out one of this many folds of the "
                   "real training rows (0: train on all)")
    t.add_argument("--fold", type=int, default=0, help="which fold to hold out (0 .. folds-1)")
    t.add_argument("--encoder", choices=sorted(ENCODERS), default="minilm",
                   help="minilm (served) or smollm2 (the base model: the larger-encoder probe; needs dump --smollm2)")
    c = sub.add_parser("score", help="an adapter's own classifier on the real-prompt sets (CPU, torch)")
    c.add_argument("adapter", type=Path, help="the npz `train` wrote (its .head.npz beside it)")
    c.add_argument("--sets", default="dev", help="comma-separated: dev, test (default dev)")
    c.add_argument("--max-tokens", type=int, default=32)
    c.add_argument("--truncation", choices=["head", "head_tail"], default="head_tail")
    c.add_argument("--out", type=Path, help="write the figures as JSON here")
    v = sub.add_parser("compare", help="pool two arms' `train --folds` runs (lengths or encoders), compare them, paired")
    v.add_argument("--baseline", type=Path, nargs="+", required=True, help="one .json per fold")
    v.add_argument("--candidate", type=Path, nargs="+", required=True, help="one .json per fold")
    v.add_argument("--out", type=Path, help="write the comparison as JSON here")
    args = parser.parse_args(argv)
    if args.command == "compare":
        result = compare_folds(args.baseline, args.candidate)
        print(json.dumps(result, indent=1))
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
        return 0
    if args.command == "dump":
        return dump(args.config, args.out, args.overrides, args.smollm2)
    if args.command == "score":
        result = score(args.adapter, args.sets.split(","), args.max_tokens, args.truncation)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
        return 0
    info = train(args.data, args.out, args.max_tokens, args.truncation, args.r, args.lr, args.epochs,
                 args.w_real, args.seed, args.folds, args.fold, args.encoder)
    print(json.dumps({k: v for k, v in info.items() if k != "predictions"}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main())
