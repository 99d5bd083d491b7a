"""A benchmark corpus: N instruction records in 8 native formats, with planted duplicates.

Every record is assembled from shipped text (a prompt plus 40-170 words of sentences drawn at
random), so two originals are far apart. Then, at random positions:
- near duplicates: an earlier original with a few words substituted, deleted or inserted and its
  casing changed; the true Jaccard similarity of their word 3-gram shingles is recorded;
- exact duplicates: an earlier original re-cased and re-spaced (identical after normalization);
- near misses: an earlier original with a fifth of its words changed (must be kept);
- non-English records and broken records, which curation must drop for other reasons.
Copies land in any shard, so a duplicate often has another format than its original.
`truth.json` lists every planted copy; `texts/<shard>.jsonl` hold the same records as plain text
(prompt and answer) for datatrove.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from bench.curation.pools import Pools
from tandem.training.curation.normalize import shingles

SHARDS = [
    "alpaca.json",
    "sharegpt.json",
    "openorca.parquet",
    "dolly.jsonl",
    "metamath.parquet",
    "hh.jsonl.gz",
    "messages.jsonl",
    "codealpaca.jsonl",
]
NEAR, EXACT, MISS, FOREIGN, BROKEN = 0.10, 0.01, 0.01, 0.005, 0.001


@dataclass
class Plan:
    kind: str  # original | near | exact | miss | foreign | broken
    source: int = -1  # position of the original a copy was made from


def _native(shard: str, prompt: str, answer: str, n: int) -> dict:
    if shard.startswith(("alpaca", "codealpaca")):
        return {"instruction": prompt, "input": "", "output": answer}
    if shard.startswith("sharegpt"):
        return {
            "id": str(n),
            "conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}],
        }
    if shard.startswith("openorca"):
        return {
            "id": f"o.{n}",
            "system_prompt": "You are a helpful assistant.",
            "question": prompt,
            "response": answer,
        }
    if shard.startswith("dolly"):
        return {"instruction": prompt, "context": "", "response": answer, "category": "open_qa"}
    if shard.startswith("metamath"):
        return {"query": prompt, "response": answer, "type": "synthetic"}
    if shard.startswith("hh"):
        return {
            "chosen": f"\n\nHuman: {prompt}\n\nAssistant: {answer}",
            "rejected": f"\n\nHuman: {prompt}\n\nAssistant: No.",
        }
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


class CorpusBuilder:
    def __init__(self, pools: Pools, size: int, seed: int = 0):
        self.pools, self.size, self.seed = pools, size, seed
        self.shard_size = -(-size // len(SHARDS))

    def original(self, position: int) -> tuple[str, str]:
        """The original record at a position: the same text every time it is asked for."""
        rng = random.Random(self.seed * 1_000_003 + position)
        prompt = " ".join(rng.choice(self.pools.prompts).split()[:40])
        target, words, parts = rng.randint(40, 170), 0, []
        while words < target:
            sentence = rng.choice(self.pools.sentences)
            parts.append(sentence)
            words += len(sentence.split())
        return prompt, " ".join(parts)

    def plan(self) -> list[Plan]:
        rng = random.Random(self.seed)
        plans: list[Plan] = []
        originals: list[int] = []
        for position in range(self.size):
            r = rng.random()
            kinds = [
                ("near", NEAR),
                ("exact", EXACT),
                ("miss", MISS),
                ("foreign", FOREIGN),
                ("broken", BROKEN),
            ]
            kind, edge = "original", 0.0
            for name, share in kinds:
                edge += share
                if r < edge:
                    kind = name
                    break
            if kind in ("near", "exact", "miss") and originals:
                plans.append(Plan(kind, rng.choice(originals[-200_000:])))
            elif kind in ("foreign", "broken"):
                plans.append(Plan(kind))
            else:
                plans.append(Plan("original"))
                originals.append(position)
        return plans

    def record(self, position: int, plan: Plan) -> tuple[str, str] | None:
        rng = random.Random(self.seed * 7_000_003 + position)
        if plan.kind == "original":
            return self.original(position)
        if plan.kind == "foreign":
            return rng.choice(self.pools.foreign)
        if plan.kind == "broken":
            return None
        prompt, answer = self.original(plan.source)
        if plan.kind == "exact":
            return prompt.upper(), "  ".join(answer.split())
        n = len(answer.split())
        edits = rng.randint(1, max(1, n // 35)) if plan.kind == "near" else n // 5
        return prompt, _edit(rng, answer, edits, self.pools.sentences)

    def write(self, folder: Path) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        plans = self.plan()
        ids: list[str] = []
        truth = []
        (folder / "texts").mkdir(exist_ok=True)
        for shard_index, shard in enumerate(SHARDS):
            start, stop = shard_index * self.shard_size, min(self.size, (shard_index + 1) * self.shard_size)
            rows, stem = [], shard.split(".")[0]
            # Numbered so datatrove reads the shards in corpus order (its "first copy" is file order).
            with open(folder / "texts" / f"{shard_index:02d}-{stem}.jsonl", "w") as texts:
                for n, position in enumerate(tqdm(range(start, stop), desc=shard, leave=False)):
                    pair = self.record(position, plans[position])
                    ids.append(f"{stem}:{n}")
                    if pair is None:
                        rows.append(None)
                        continue
                    rows.append(_native(shard, *pair, n))
                    texts.write(json.dumps({"id": ids[-1], "text": f"{pair[0]}\n{pair[1]}"}) + "\n")
            _write_shard(folder / shard, rows)
        for position, plan in enumerate(plans):
            if plan.kind in ("near", "exact", "miss"):
                a = "\n".join(self.original(plan.source))
                b = "\n".join(self.record(position, plan))
                truth.append(
                    {
                        "id": ids[position],
                        "original": ids[plan.source],
                        "kind": plan.kind,
                        "jaccard": round(_jaccard(a, b), 4),
                    }
                )
        summary = {
            "records": self.size,
            "seed": self.seed,
            "shards": SHARDS,
            "planted": {
                k: sum(p.kind == k for p in plans) for k in ("near", "exact", "miss", "foreign", "broken")
            },
            "copies": truth,
        }
        (folder / "truth.json").write_text(json.dumps(summary))
        return summary


def _edit(rng: random.Random, text: str, edits: int, sentences: list[str]) -> str:
    words = text.split()
    for _ in range(edits):
        i = rng.randrange(len(words))
        op = rng.random()
        if op < 0.4:
            words[i] = rng.choice(rng.choice(sentences).split())
        elif op < 0.7 and len(words) > 10:
            del words[i]
        else:
            words.insert(i, rng.choice(rng.choice(sentences).split()))
    if rng.random() < 0.5:
        words[0] = words[0].upper()
    return " ".join(words)


def _jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a, 3)), set(shingles(b, 3))
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def _write_shard(path: Path, rows: list[dict | None]) -> None:
    """Broken records: a cut-off JSON line in JSONL shards, an empty answer elsewhere."""
    name = path.name
    if name.endswith((".json", ".parquet")):
        fixed = [r if r is not None else _native(name, "Say something.", "", 0) for r in rows]
        if name.endswith(".parquet"):
            pq.write_table(pa.Table.from_pylist(fixed), path, row_group_size=20_000)
        else:
            path.write_text(json.dumps(fixed))
        return
    lines = [json.dumps(r) if r is not None else '{"instruction": "cut off mid-rec' for r in rows]
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
