"""Encoder fine-tuning estimate for the domain router (issue #22, docs/ROUTER.md "Encoder fine-tuning"),
run on one GPU: frozen vs full fine-tune vs LoRA, head vs head+tail, scored on the 211 real dev rows.

    python -m tandem.training.routing.finetune dump --out DIR       # here; then on the GPU machine:
    cp bench/routing/encoder_finetune_grid.py DIR/ && cd DIR && python3 encoder_finetune_grid.py [config names]

Reads DIR/rows.jsonl.gz and DIR/minilm/ (what `dump` writes); writes results.json and the LoRA
adapters to $OUT.

Train rows: weak-label train split + real_prompts_train (NO real dev rows, NO real test rows: the
test set is not even on this machine). Selection figure: accuracy on all 211 real dev rows.
"""
# ruff: noqa  (the experiment's script kept as it ran)
import gzip, json, os, sys, time, math, re
import numpy as np
import torch, torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import AutoModel
from sklearn.linear_model import LogisticRegression

OUT = os.environ.get("OUT", "/tmp/out")
HERE = os.path.dirname(os.path.abspath(__file__))
DOMAINS = ["code", "reasoning", "automation", "general"]
DT = os.environ.get("DEV", "cuda"); dev = torch.device(DT)
torch.manual_seed(0); np.random.seed(0)
rows = [json.loads(l) for l in gzip.open(f"{HERE}/rows.jsonl.gz", "rt")]
if os.environ.get("SMOKE"): rows = rows[::60]
y = np.array([DOMAINS.index(r["label"]) for r in rows])
ds = np.array([r["dataset"] for r in rows]); split = np.array([r["split"] for r in rows])
origin = np.array([r["origin"] for r in rows])
train = (split == "train") & (ds != "real_dev")
real_dev = ds == "real_dev"
indist = (split == "test") & (origin != "real")
hand = split == "handwritten"
real_train = ds == "real_train"
print({k: int(v.sum()) for k, v in dict(train=train, real_dev=real_dev, indist=indist, hand=hand, real_train=real_train).items()}, flush=True)
tok = Tokenizer.from_file(f"{HERE}/minilm/tokenizer.json"); tok.no_padding(); tok.no_truncation()
texts = [r["text"] for r in rows]
cut = [t if len(t) <= 8000 else t[:4000] + " " + t[-4000:] for t in texts]
full_ids = [e.ids for e in tok.encode_batch(cut)]

def trunc(ids, n, mode):
    if len(ids) <= n: return ids
    if mode == "head": return ids[:n - 1] + [ids[-1]]  # tokenizers' truncation keeps [SEP]
    h = n // 2
    return ids[:h] + ids[len(ids) - (n - h):]

def batchify(idx, ids):
    w = max(len(ids[i]) for i in idx)
    a = np.zeros((len(idx), w), np.int64); m = np.zeros((len(idx), w), np.int64)
    for r, i in enumerate(idx):
        a[r, :len(ids[i])] = ids[i]; m[r, :len(ids[i])] = 1
    return torch.from_numpy(a).to(dev), torch.from_numpy(m).to(dev)

def pool(model, a, m):
    h = model(input_ids=a, attention_mask=m, token_type_ids=torch.zeros_like(a)).last_hidden_state
    mm = m.unsqueeze(-1).to(h.dtype)
    return F.normalize((h * mm).sum(1) / mm.sum(1).clamp(min=1e-9), dim=-1)

@torch.no_grad()
def embed(model, ids):
    model.eval(); out = np.zeros((len(ids), 384), np.float32)
    order = np.argsort([len(x) for x in ids])
    for s in range(0, len(order), 1024):
        idx = order[s:s + 1024]
        with torch.autocast(DT, dtype=torch.bfloat16):
            out[idx] = pool(model, *batchify(idx, ids)).float().cpu().numpy()
    return out

def load_base():
    return AutoModel.from_pretrained(f"{HERE}/minilm", torch_dtype=torch.float32).to(dev)

def lr_eval(E, name, extra):
    w = np.where(real_train, extra.get("w_real_lr", 0.5), 1.0)
    clf = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced")
    clf.fit(E[train], y[train], sample_weight=w[train])
    P = clf.predict_proba(E)
    res = {"lr_real_dev": float((P[real_dev].argmax(1) == y[real_dev]).mean()),
           "lr_indist": float((P[indist].argmax(1) == y[indist]).mean()),
           "lr_hand": float((P[hand].argmax(1) == y[hand]).mean())}
    # kNN vote over the real training rows, blended with the LR probabilities
    R = E[real_train]; yr = y[real_train]
    S = E[real_dev] @ R.T
    for k in (10,):
        top = np.argsort(-S, axis=1)[:, :k]
        V = np.zeros((real_dev.sum(), 4))
        for j in range(k):
            V[np.arange(len(top)), yr[top[:, j]]] += np.exp(S[np.arange(len(top)), top[:, j]] * 10)
        V /= V.sum(1, keepdims=True)
        for a in (0.3, 0.5):
            Pb = (1 - a) * P[real_dev] + a * V
            res[f"knn{k}_a{a}_real_dev"] = float((Pb.argmax(1) == y[real_dev]).mean())
    return res

def finetune(cfg):
    t0 = time.time()
    model = load_base()
    ids = [trunc(x, cfg["max_tokens"], cfg["trunc"]) for x in full_ids]
    if cfg["mode"] == "lora":
        from peft import LoraConfig, get_peft_model
        targets = r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
        model = get_peft_model(model, LoraConfig(r=cfg["r"], lora_alpha=2 * cfg["r"], lora_dropout=0.05, target_modules=targets))
    head = torch.nn.Linear(384, 4).to(dev)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=0.01)
    tr = np.flatnonzero(train)
    counts = np.bincount(y[tr], minlength=4); cw = torch.tensor(len(tr) / (4 * counts), dtype=torch.float32, device=dev)
    sw = np.where(real_train, cfg["w_real"], 1.0)
    bs = 128; steps = cfg["epochs"] * math.ceil(len(tr) / bs); step = 0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / (0.06 * steps)) * max(0.0, (steps - s) / (steps * 0.94)))
    rng = np.random.default_rng(0)
    for ep in range(cfg["epochs"]):
        model.train(); perm = rng.permutation(tr)
        for s in range(0, len(perm), bs):
            idx = perm[s:s + bs]
            a, m = batchify(idx, ids)
            with torch.autocast(DT, dtype=torch.bfloat16):
                e = pool(model, a, m)
                logits = head(e.float() * 20.0)
            yy = torch.from_numpy(y[idx]).to(dev); ww = torch.from_numpy(sw[idx]).float().to(dev)
            loss = (F.cross_entropy(logits.float(), yy, weight=cw, reduction="none") * ww).sum() / (cw[yy] * ww).sum()
            opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); sched.step(); step += 1
    E = embed(model, ids)
    with torch.no_grad():
        P = torch.softmax(head(torch.from_numpy(E).to(dev) * 20.0), -1).cpu().numpy()
    res = {"head_real_dev": float((P[real_dev].argmax(1) == y[real_dev]).mean()),
           "head_indist": float((P[indist].argmax(1) == y[indist]).mean()),
           "head_hand": float((P[hand].argmax(1) == y[hand]).mean())}
    res.update(lr_eval(E, cfg["name"], cfg))
    if cfg["mode"] == "lora":
        deltas = {}
        for n, mod in model.named_modules():
            if hasattr(mod, "lora_A") and "default" in mod.lora_A:
                A = mod.lora_A["default"].weight.detach().float().cpu().numpy()
                B = mod.lora_B["default"].weight.detach().float().cpu().numpy()
                key = n.split("base_model.model.")[-1]
                deltas[key + ".A"] = A; deltas[key + ".B"] = B * mod.scaling["default"]
        np.savez(f"{OUT}/lora_{cfg['name']}.npz", **deltas)
    res["seconds"] = round(time.time() - t0, 1)
    return res

results = {}
def record(name, res):
    results[name] = res; print(name, json.dumps(res), flush=True)
    json.dump(results, open(f"{OUT}/results.json", "w"), indent=1)

only = sys.argv[1:] 
base = load_base()
for tr_mode in ("head", "head_tail"):
    name = f"frozen_{tr_mode}"
    if only and name not in only: continue
    E = embed(base, [trunc(x, 32, tr_mode) for x in full_ids])
    record(name, lr_eval(E, name, {}))
del base
GRID = [
    dict(name="lora16_w3", mode="lora", r=16, lr=5e-4, epochs=3, w_real=3.0, max_tokens=32, trunc="head"),
    dict(name="full_w3", mode="full", lr=5e-5, epochs=3, w_real=3.0, max_tokens=32, trunc="head"),
    dict(name="lora16_w3_ht", mode="lora", r=16, lr=5e-4, epochs=3, w_real=3.0, max_tokens=32, trunc="head_tail"),
    dict(name="lora16_w1", mode="lora", r=16, lr=5e-4, epochs=3, w_real=1.0, max_tokens=32, trunc="head"),
    dict(name="lora16_w10", mode="lora", r=16, lr=5e-4, epochs=3, w_real=10.0, max_tokens=32, trunc="head"),
    dict(name="lora8_w3_e5", mode="lora", r=8, lr=5e-4, epochs=5, w_real=3.0, max_tokens=32, trunc="head"),
]
for cfg in GRID:
    if only and cfg["name"] not in only: continue
    record(cfg["name"], {**finetune(cfg), "cfg": cfg})
