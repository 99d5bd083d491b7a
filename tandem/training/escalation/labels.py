"""Labels for the escalation models: "does the local route fail this prompt?", with the answer's
token log-probabilities, from running our own route over public benchmarks.

Items, prompts and scorers are the evaluation harness's (`tandem.eval.datasets.load_items`,
`tandem.eval.scoring.score`), so a label means exactly what `tandem eval` would score. Unlike
`tandem eval`, every request asks for log-probabilities: one pass yields the difficulty labels
(prompt -> fails) and the answer-confidence data (logprob features -> fails). Fit on TRAIN
splits; measure on DEV splits (held out). Asked through a router (`--model auto`), each row
records the route that answered; answers the router escalated are left out (counted in a
warning): they are the fallback's, not the local route's.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections import Counter
from pathlib import Path

import openai
from pydantic import BaseModel, Field
from tqdm import tqdm

from tandem.eval.datasets import EvalItem
from tandem.eval.scoring import BLOCKING_SUITES, Reply, score
from tandem.services.escalation.answers import Answer

log = logging.getLogger(__name__)


class LabelRow(BaseModel):
    suite: str
    id: str
    split: str
    messages: list[dict]
    tools: list[dict] | None = None
    response: str
    tool_calls: list[dict] = Field(default_factory=list, description="The answer's tool calls (OpenAI shape).")
    route: str | None = Field(default=None, description="The model that answered (x-tandem-route), when known.")
    score: float
    fails: bool = Field(description="The local route's answer scored below 1.")
    token_logprobs: list[float] = Field(default_factory=list, description="The answer's token log-probabilities.")
    completion_tokens: int = 0
    finish_reason: str | None = Field(default=None, description="'length' when the answer hit max_tokens.")


async def answer_over_http(base_url: str, model: str, items: list[EvalItem], max_tokens: dict[str, int],
                           concurrency: int = 4, api_key: str = "tandem") -> list[Answer | None]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=600, max_retries=2)
    semaphore = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(items), desc="answering", unit="item")
    left_out: Counter[str] = Counter()

    async def one(item: EvalItem) -> Answer | None:
        request = {"model": model, "messages": item.messages, "temperature": 0.0, "seed": 0,
                   "max_tokens": max_tokens.get(item.suite, 256), "logprobs": True}
        if item.tools:
            request["tools"] = item.tools
        async with semaphore:
            try:
                raw = await client.chat.completions.with_raw_response.create(**request)
            except openai.APIError as exc:
                left_out[f"request failed ({type(exc).__name__})"] += 1
                return None
            finally:
                bar.update()
        if raw.headers.get("x-tandem-escalated") == "true":
            left_out["escalated by the router: not a local answer"] += 1
            return None
        completion = raw.parse()
        return Answer.from_choice(completion.choices[0].model_dump(),
                                  completion.usage.completion_tokens if completion.usage else 0,
                                  raw.headers.get("x-tandem-route") or completion.model)

    try:
        return list(await asyncio.gather(*(one(item) for item in items)))
    finally:
        bar.close()
        await client.close()
        for reason, n in left_out.items():
            log.warning("left out %d of %d items: %s", n, len(items), reason)


def answer_of(row: LabelRow) -> Answer:
    return Answer(text=row.response, tool_calls=row.tool_calls, token_logprobs=row.token_logprobs,
                  completion_tokens=row.completion_tokens, finish_reason=row.finish_reason, route=row.route)


def label(item: EvalItem, answer: Answer, split: str) -> LabelRow:
    scored = score(item, Reply(text=answer.text, tool_calls=answer.tool_calls))
    return LabelRow(suite=item.suite, id=item.id, split=split, messages=item.messages, tools=item.tools,
                    response=answer.text, tool_calls=answer.tool_calls, route=answer.route, score=scored.value, fails=scored.value < 1.0,
                    token_logprobs=answer.token_logprobs,
                    completion_tokens=answer.completion_tokens, finish_reason=answer.finish_reason)


async def _label_async(item: EvalItem, answer: Answer, split: str) -> LabelRow:
    """`label`, with code suites run in the sandbox off the event loop."""
    if item.suite in BLOCKING_SUITES:
        return await asyncio.to_thread(label, item, answer, split)
    return label(item, answer, split)


async def label_all(items: list[EvalItem], answers: list[Answer | None], split: str) -> list[LabelRow]:
    """Score every answered item."""
    return list(await asyncio.gather(*(_label_async(i, a, split) for i, a in zip(items, answers) if a is not None)))


async def rescore(rows: list[LabelRow]) -> list[LabelRow]:
    """The same answers scored again by today's scorers (after a scorer fix), keeping route and logprobs.

    Each row's item is looked up by suite, split and id; a row whose item is gone is refused, since a
    label without its item cannot be scored.
    """
    from tandem.eval.datasets import load_items

    items: dict[tuple[str, str, str], EvalItem] = {}
    for suite, split in sorted({(r.suite, r.split) for r in rows}):
        items.update({(suite, split, it.id): it for it in load_items(suite, split=split)})
    missing = [f"{r.suite}/{r.split}/{r.id}" for r in rows if (r.suite, r.split, r.id) not in items]
    if missing:
        raise ValueError(f"{len(missing)} labels name items the harness no longer has, e.g. {missing[:3]}")
    return list(await asyncio.gather(*(_label_async(items[(r.suite, r.split, r.id)], answer_of(r), r.split)
                                       for r in rows)))


def write_jsonl(path: Path, rows: list[BaseModel]) -> None:
    """JSONL, gzipped when the name ends in `.gz` (as the labels under docs/escalation/ ship)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(row.model_dump_json() + "\n" for row in rows)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        path.write_text(text)


def read_labels(path: Path) -> list[LabelRow]:
    """Labels JSONL, plain or gzipped (`.gz`, as the labels under docs/escalation/ ship)."""
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    return [LabelRow.model_validate_json(line) for line in text.splitlines() if line.strip()]


def read_answers(path: Path) -> dict[tuple[str, str], Answer]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["suite"], r["id"]): Answer.model_validate(r["answer"]) for r in rows}
