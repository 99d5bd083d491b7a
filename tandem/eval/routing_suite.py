"""The `routing` suite: how often `POST {base_url}/route` names the right domain.

Labelled prompts come from held-out (test-split) benchmark items, labelled by the dataset's
domain, plus the router engineer's hand-written prompts when `tandem/training/routing/data/handwritten.jsonl`
exists (rows `{"prompt", "domain"}`). Reports accuracy, per-domain precision/recall and the
confusion matrix.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
from tqdm import tqdm

DOMAIN_OF_SUITE = {
    "humaneval": "code",
    "mbpp": "code",
    "gsm8k": "reasoning",
    "math500": "reasoning",
    "bfcl": "automation",
    "mmlu": "general",
    "arc_easy": "general",
    "arc_challenge": "general",
}
HANDWRITTEN = Path(__file__).resolve().parents[1] / "training" / "routing" / "data" / "handwritten.jsonl"


def labelled_requests(split: str, limit: int | None) -> list[dict]:
    """[{"id", "source", "domain", "messages", "tools"}].

    `limit` applies per source suite, and per domain for the hand-written prompts.
    """
    from tandem.eval.datasets import load_items

    requests = []
    for suite, domain in DOMAIN_OF_SUITE.items():
        for item in load_items(suite, split=split, limit=limit):
            requests.append(
                {
                    "id": f"{suite}:{item.id}",
                    "source": suite,
                    "domain": domain,
                    "messages": item.messages,
                    "tools": item.tools,
                }
            )
    if HANDWRITTEN.is_file():
        rows = [json.loads(line) for line in HANDWRITTEN.read_text().splitlines() if line.strip()]
        taken: dict[str, int] = {}
        for i, row in enumerate(rows):
            taken[row["domain"]] = taken.get(row["domain"], 0) + 1
            if limit is not None and taken[row["domain"]] > limit:
                continue
            requests.append(
                {
                    "id": f"handwritten:{i}",
                    "source": "handwritten",
                    "domain": row["domain"],
                    "messages": [{"role": "user", "content": row["prompt"]}],
                    "tools": None,
                }
            )
    return requests


def routing_metrics(rows: list[dict]) -> dict:
    ok = [r for r in rows if r["error"] is None]
    domains = sorted({r["domain"] for r in rows})
    confusion: dict[str, dict[str, int]] = {d: {} for d in domains}
    for r in ok:
        confusion[r["domain"]][r["predicted"]] = confusion[r["domain"]].get(r["predicted"], 0) + 1
    per_domain = {}
    for d in domains:
        tp = confusion[d].get(d, 0)
        predicted = sum(c.get(d, 0) for c in confusion.values())
        support = sum(confusion[d].values())
        per_domain[d] = {
            "precision": tp / predicted if predicted else None,
            "recall": tp / support if support else None,
            "support": support,
        }
    return {
        "accuracy": sum(r["score"] for r in ok) / len(rows) if rows else None,
        "per_domain": per_domain,
        "confusion": confusion,
    }


async def run_routing(
    base_url: str, api_key: str, model: str, requests: list[dict], concurrency: int, timeout_s: float
) -> list[dict]:
    url = base_url.rstrip("/") + "/route"
    semaphore = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(requests), desc="routing", unit="req")

    async def one(client: httpx.AsyncClient, req: dict) -> dict:
        body = {
            "model": model,
            "messages": req["messages"],
            **({"tools": req["tools"]} if req["tools"] else {}),
        }
        row = {
            "suite": "routing",
            "id": req["id"],
            "source": req["source"],
            "domain": req["domain"],
            "prompt": req["messages"],
            "predicted": None,
            "confidence": None,
            "escalate": None,
            "score": 0.0,
            "error": None,
        }
        async with semaphore:
            started = time.perf_counter()
            try:
                response = await client.post(url, json=body)
                response.raise_for_status()
                decision = response.json()
                row.update(
                    predicted=decision["domain"],
                    confidence=decision.get("confidence"),
                    escalate=decision.get("escalate"),
                    reason=decision.get("reason"),
                    score=float(decision["domain"] == req["domain"]),
                )
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"
            row["latency_s"] = time.perf_counter() - started
        bar.update(1)
        return row

    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(headers=headers, timeout=timeout_s) as client:
        rows = await asyncio.gather(*(one(client, r) for r in requests))
    bar.close()
    return list(rows)
