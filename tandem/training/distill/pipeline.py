"""The distillation run: per failure category, ask for new tasks, drop repeats, get answers, check
them, and write SFT rows.

Outputs in `out_dir`: `sft.jsonl` (`{"messages", "source", "id", "domain", "category", "check"}`,
the chat schema of curated.jsonl), `stats.json`, the response cache, and a manifest entry
`distilled-data`. Requests are cached as they complete, so the same command resumes a killed run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import openai
from tqdm import tqdm

from tandem.common.manifest import Manifest, write_json
from tandem.common.prices import Price, load_prices
from tandem.common.recipe_config import ConfigError, dump_config
from tandem.training.curation.domains import DEFAULT_DOMAIN_RULES, DomainTagger
from tandem.training.curation.normalize import words
from tandem.training.distill.budget import Budget, BudgetExhausted
from tandem.training.distill.cache import ResponseCache
from tandem.training.distill.checks import check_numeric, check_python, checker_for
from tandem.training.distill.config import DistillConfig
from tandem.training.distill.dedup import TaskDeduplicator, training_prompts
from tandem.training.distill.tasks import answer_messages, generation_messages, parse_tasks
from tandem.training.distill.teacher import Teacher

log = logging.getLogger(__name__)
PRICES = Path(__file__).resolve().parents[3] / "configs" / "eval" / "prices.yaml"


def teacher_price(config: DistillConfig) -> Price | None:
    if config.budget.price is not None:
        return config.budget.price
    price = load_prices(PRICES).price_of(config.teacher.model) if PRICES.is_file() else None
    if price is None and config.budget.max_usd is not None:
        raise ConfigError(
            f"no price for teacher model '{config.teacher.model}': set budget.price.input_per_mtok "
            "and budget.price.output_per_mtok, or budget.max_usd=null to cap tokens only"
        )
    return price


class Run:
    def __init__(self, config: DistillConfig, teacher: Teacher):
        self.config, self.teacher = config, teacher
        self.per_category: dict[str, Counter] = defaultdict(Counter)
        self.stopped: str | None = None

    async def guarded(self, coro, category: str):
        """The coroutine's result, or None when the budget is spent or the teacher keeps failing."""
        try:
            return await coro
        except BudgetExhausted as exc:
            self.stopped = str(exc)
            self.per_category[category]["skipped_budget"] += 1
        except openai.APIError as exc:
            log.warning("teacher request failed after retries: %s", exc)
            self.per_category[category]["teacher_errors"] += 1
        return None

    async def generate(
        self, category: dict[str, Any], request_index: int, checker: str | None
    ) -> list[str] | None:
        examples = [e["prompt"] for e in category["examples"]]
        offset = request_index % len(examples)
        shown = (examples[offset:] + examples[:offset])[: self.config.examples_per_request]
        messages = generation_messages(category, shown, self.config.tasks_per_request, checker, request_index)
        reply = await self.teacher.complete(messages, self.config.teacher.temperature)
        tasks = parse_tasks(reply)
        self.per_category[category["name"]]["unparseable_replies" if tasks is None else "parsed_replies"] += 1
        return tasks

    async def answer(self, task: str, checker: str | None, category: str) -> tuple[str, str | None] | None:
        """(answer, None) if it passed its check, (answer, reason) if not."""
        temperature = self.config.teacher.answer_temperature
        answer = await self.teacher.complete(answer_messages(task, checker), temperature)
        if not self.config.check_answers or checker is None:
            return answer, None
        if checker == "numeric":

            async def again() -> str:
                return await self.teacher.complete(
                    answer_messages(task, checker), max(temperature, 0.7), "verify"
                )

            return answer, await check_numeric(answer, again)
        return answer, await check_python(task, answer)


async def _with_progress(coros: list, desc: str) -> list:
    """`asyncio.gather` with a progress bar; results in input order."""
    with tqdm(total=len(coros), desc=desc, unit="req") as bar:

        async def counted(coro):
            try:
                return await coro
            finally:
                bar.update(1)

        return await asyncio.gather(*(counted(c) for c in coros))


async def distill(config: DistillConfig) -> dict[str, Any]:
    try:
        categories = json.loads(config.failures.read_text())["categories"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"{config.failures} is not a failures.json from `tandem analyze failures`: {exc}"
        ) from exc
    cache = ResponseCache(config.cache_path())
    # a resumed run has what is left of the budget: the replies cached by earlier runs were paid for
    budget = Budget.resumed(teacher_price(config), config.budget.max_usd, config.budget.max_tokens,
                            *cache.paid_tokens())
    teacher = Teacher(config.teacher, cache, budget)
    run = Run(config, teacher)
    dedup = TaskDeduplicator(config.dedup)
    dedup.add_reference(training_prompts(config.training_data))
    dedup.add_reference(e["prompt"] for c in categories for e in c["examples"])
    checkers = {c["name"]: checker_for(c["suites"]) for c in categories}
    requests_per_category = math.ceil(config.tasks_per_category / config.tasks_per_request)
    try:
        jobs = [(c, r) for c in categories for r in range(requests_per_category)]
        replies = await _with_progress(
            [run.guarded(run.generate(c, r, checkers[c["name"]]), c["name"]) for c, r in jobs], "new tasks"
        )
        tasks: list[tuple[dict[str, Any], str]] = []
        for (category, _), reply in zip(jobs, replies, strict=True):
            for task in (reply or [])[: config.tasks_per_request]:
                counts = run.per_category[category["name"]]
                counts["tasks"] += 1
                reason = dedup.duplicate_reason(task)
                if reason:
                    counts[reason] += 1
                elif counts["unique_tasks"] < config.tasks_per_category:
                    counts["unique_tasks"] += 1
                    tasks.append((category, task))
        answers = await _with_progress(
            [run.guarded(run.answer(t, checkers[c["name"]], c["name"]), c["name"]) for c, t in tasks],
            "answers",
        )
    finally:
        await teacher.close()
        cache.close()
    return _write(config, run, budget, tasks, answers, checkers)


def _write(
    config: DistillConfig,
    run: Run,
    budget: Budget,
    tasks: list,
    answers: list,
    checkers: dict[str, str | None],
) -> dict[str, Any]:
    tagger = DomainTagger(DEFAULT_DOMAIN_RULES)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kept = 0
    with open(out / "sft.jsonl", "w") as fh:
        for (category, task), result in zip(tasks, answers, strict=True):
            counts = run.per_category[category["name"]]
            if result is None:
                continue
            answer, failed = result
            if failed:
                counts[f"check_failed:{failed}"] += 1
                continue
            counts["kept"] += 1
            kept += 1
            text = f"{task}\n{answer}"
            row = {
                "id": f"distill-{category['id']}-{hashlib.sha256(task.encode()).hexdigest()[:12]}",
                "source": "distill",
                "domain": tagger.tag(text, words(text)),
                "category": category["name"],
                "check": checkers[category["name"]] if config.check_answers else None,
                "messages": [{"role": "user", "content": task}, {"role": "assistant", "content": answer}],
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    stats = {
        "rows": kept,
        "teacher": config.teacher.model,
        "requests_sent": run.teacher.counts["requests"],
        "cache_hits": run.teacher.counts["cache_hits"],
        "spent_tokens": budget.spent_tokens,
        "spent_usd": round(budget.spent_usd, 6),
        "spent_tokens_total": budget.total_tokens,
        "spent_usd_total": round(budget.total_usd, 6),
        "budget_exhausted": run.stopped is not None,
        "stopped_because": run.stopped,
        "per_category": {name: dict(c) for name, c in run.per_category.items()},
    }
    write_json(out / "stats.json", stats)
    Manifest(out).record(
        "distilled-data",
        "dataset",
        ["sft.jsonl", "stats.json"],
        config=dump_config(config),
        metrics={k: stats[k] for k in ("rows", "spent_tokens", "spent_usd", "spent_tokens_total", "spent_usd_total",
                                       "budget_exhausted")},
        servable=False,
        extra={"trained_on": shown_items([category for category, _ in tasks])},
    )
    return stats


def shown_items(categories: list[dict]) -> dict[str, list[str]]:
    """The eval items whose prompts the teacher was shown, as a `trained_on` record: the new tasks
    imitate them, so a model trained on sft.jsonl must not be scored on them."""
    from tandem.eval.datasets import SUITES, suite_dataset

    shown: dict[str, set[str]] = {}
    for category in {c["id"]: c for c in categories}.values():
        for example in category["examples"]:
            if example["suite"] not in SUITES:  # e.g. traffic/<domain>: live requests, no eval item
                continue
            shown.setdefault(suite_dataset(example["suite"]), set()).add(str(example["id"]))
    return {dataset: sorted(ids) for dataset, ids in sorted(shown.items())}
