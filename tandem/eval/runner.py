"""`tandem eval`: ask the endpoint every item of every suite, score, and write the results.

Per suite: load the split's items, apply the contamination guard, then with at most
`concurrency` requests in flight ask (or take the cached answer), score, and append one JSONL
row per item. At the end: `summary.json`, `summary.md` and the summary line on stdout.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from tqdm import tqdm

from tandem.common.prices import PriceTable, load_prices
from tandem.eval.cache import ResultCache, cache_key
from tandem.eval.client import Exchange, ask, make_client
from tandem.eval.contamination import ContaminationError, contaminated, trained_ids
from tandem.eval.datasets import EvalItem, load_items, suite_dataset
from tandem.eval.report import markdown, percentile, summarize_run, summarize_suite, summary_line
from tandem.eval.routing_suite import DOMAIN_OF_SUITE, labelled_requests, routing_metrics, run_routing
from tandem.eval.scoring import BLOCKING_SUITES, Reply, Score, score
from tandem.eval.settings import EvalSettings


def model_identity(settings: EvalSettings) -> str:
    """What the cache key calls "the model": endpoint, model name, and any weights fingerprint."""
    text = f"{settings.base_url.rstrip('/')}|{settings.model}|{settings.model_identity}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _group(item: EvalItem) -> str | None:
    return item.meta.get("category") or item.meta.get("subject")


def _row(
    item: EvalItem,
    settings: EvalSettings,
    exchange: Exchange,
    result: Score,
    cached: bool,
    flagged: list[str],
) -> dict:
    return {
        "suite": item.suite,
        "dataset": item.dataset,
        "id": item.id,
        "split": settings.split,
        "group": _group(item),
        "model": settings.model,
        "prompt": item.messages,
        "tools": [t["function"]["name"] for t in item.tools or []],
        "response": exchange.text,
        "tool_calls": exchange.tool_calls,
        "finish_reason": exchange.finish_reason,
        "extracted": result.extracted,
        "score": result.value,
        "detail": result.detail,
        "latency_s": exchange.latency_s,
        "prompt_tokens": exchange.prompt_tokens,
        "completion_tokens": exchange.completion_tokens,
        "route": exchange.route,
        "served_model": exchange.served_model,
        "cached": cached,
        "contaminated": flagged,
        "error": exchange.error,
    }


async def _score(item: EvalItem, exchange: Exchange) -> Score:
    if exchange.error is not None:
        return Score(value=0.0, detail=exchange.error)
    reply = Reply(text=exchange.text, tool_calls=exchange.tool_calls)
    if item.suite in BLOCKING_SUITES:
        return await asyncio.to_thread(score, item, reply)
    return score(item, reply)


async def run_benchmark(
    settings: EvalSettings, suite: str, cache: ResultCache | None, trained: dict[str, dict[str, set[str]]]
) -> list[dict]:
    items = load_items(suite, split=settings.split, limit=settings.limit)
    flagged = contaminated(suite_dataset(suite), [it.id for it in items], trained)
    if flagged and not settings.allow_contaminated:
        artifacts = sorted({a for names in flagged.values() for a in names})
        raise ContaminationError(
            f"{len(flagged)} of {len(items)} {suite} items ({settings.split} split) were trained on by "
            f"{', '.join(artifacts)}: refusing to score them. Evaluate a split they did not train on, or "
            "pass --allow-contaminated to score and flag them (flagged items are left out of the score)."
        )
    sampling = settings.sampling(suite)
    identity = model_identity(settings)
    client = make_client(settings.base_url, settings.api_key, settings.request_timeout_s)
    semaphore = asyncio.Semaphore(settings.concurrency)
    bar = tqdm(total=len(items), desc=suite, unit="item")

    async def one(item: EvalItem) -> dict:
        async with semaphore:
            key = cache_key(identity, item, sampling)
            exchange = cache.get(key) if cache else None
            cached = exchange is not None
            if exchange is None:
                exchange = await ask(client, settings.model, item, sampling)
                if cache:
                    cache.put(key, exchange)
            result = await _score(item, exchange)
        bar.update(1)
        return _row(item, settings, exchange, result, cached, flagged.get(item.id, []))

    try:
        rows = list(await asyncio.gather(*(one(item) for item in items)))
    finally:
        bar.close()
        await client.close()
    return rows


def guard_routing_requests(
    requests: list[dict], settings: EvalSettings, trained: dict[str, dict[str, set[str]]]
) -> tuple[list[dict], int]:
    """The routing suite's benchmark prompts under the same contamination guard as a benchmark:
    refused when an artifact trained on them, or (with --allow-contaminated) left out and counted."""
    flagged: dict[str, list[str]] = {}
    for suite in sorted({r["source"] for r in requests if r["source"] in DOMAIN_OF_SUITE}):
        ids = [r["id"].split(":", 1)[1] for r in requests if r["source"] == suite]
        for item_id, names in contaminated(suite_dataset(suite), ids, trained).items():
            flagged[f"{suite}:{item_id}"] = names
    if flagged and not settings.allow_contaminated:
        artifacts = sorted({a for names in flagged.values() for a in names})
        raise ContaminationError(
            f"{len(flagged)} of {len(requests)} routing prompts ({settings.split} split) were trained on by "
            f"{', '.join(artifacts)}: refusing to score them. Evaluate a split they did not train on, or "
            "pass --allow-contaminated to leave them out of the score."
        )
    return [r for r in requests if r["id"] not in flagged], len(flagged)


async def run_routing_suite(
    settings: EvalSettings, trained: dict[str, dict[str, set[str]]] | None = None
) -> tuple[list[dict], dict]:
    requests, flagged = guard_routing_requests(
        labelled_requests(settings.split, settings.limit), settings, trained or {}
    )
    rows = await run_routing(
        settings.base_url,
        settings.api_key,
        settings.model,
        requests,
        settings.concurrency,
        settings.request_timeout_s,
    )
    metrics = routing_metrics(rows)
    latencies = [r["latency_s"] for r in rows if r["error"] is None]
    summary = {
        "suite": "routing",
        "n": len(rows),
        "scored": len(rows),
        "score": metrics["accuracy"],
        "errors": sum(r["error"] is not None for r in rows),
        "contaminated": flagged,
        "cached": 0,
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_by_route": {},
        "per_domain": metrics["per_domain"],
        "confusion": metrics["confusion"],
    }
    return rows, summary


async def run_eval(settings: EvalSettings) -> dict:
    """Run every suite in `settings`; returns the summary (also written under `settings.out`)."""
    prices: PriceTable = load_prices(settings.prices)
    trained = trained_ids(settings.artifacts)
    settings.out.mkdir(parents=True, exist_ok=True)
    cache = ResultCache(settings.cache_dir) if settings.use_cache else None
    suite_summaries, all_rows = [], []
    try:
        for suite in settings.suites:
            if suite == "routing":
                rows, summary = await run_routing_suite(settings, trained)
            else:
                rows = await run_benchmark(settings, suite, cache, trained)
                summary = summarize_suite(suite, rows, prices)
                all_rows += rows
            with open(settings.out / f"{suite}.jsonl", "w") as fh:
                for row in rows:
                    fh.write(json.dumps(row, default=str) + "\n")
            suite_summaries.append(summary)
    finally:
        if cache:
            cache.close()
    run_settings = settings.model_dump(mode="json", exclude={"api_key"})
    summary = summarize_run(run_settings, suite_summaries, all_rows, prices)
    (settings.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (settings.out / "summary.md").write_text(markdown(summary))
    summary["line"] = summary_line(summary, str(settings.out))
    return summary
