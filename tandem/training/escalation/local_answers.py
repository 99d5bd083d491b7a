"""Answer benchmark items in-process with the serving engine: no HTTP, no service stack.

The label collector's second transport. `tandem escalation collect --base-url` asks a running
route over HTTP; on a machine without the service stack (a rented GPU box with a bare Python)
`--model-path` runs the worker's own `BatchedEngine` and chat template here, with the same
greedy decoding, so the answers are the ones the base_model worker would give.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tandem.eval.datasets import EvalItem
from tandem.services.engine.offline import BatchedEngine, ChatPrompter, SamplingParams, parse_tool_calls
from tandem.services.escalation.answers import Answer


def _prompter(engine: BatchedEngine) -> ChatPrompter:
    model = engine._model
    bos = model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else ""
    eos = model.token_get_text(model.token_eos()) if model.token_eos() >= 0 else ""
    return ChatPrompter(engine.metadata(), bos_token=bos, eos_token=eos)


async def answer_in_process(model_path: str | Path, items: list[EvalItem], max_tokens: dict[str, int],
                            slots: int = 8, n_threads: int | None = None,
                            on_answer: Callable[[EvalItem, Answer], None] | None = None) -> list[Answer]:
    """Answers in item order; `on_answer` sees each one as it finishes (write it out: long runs get cut)."""
    engine = BatchedEngine(model_path, slots=slots, ctx_per_slot=2048, n_threads=n_threads,
                           max_queue=len(items) + slots)
    engine.start()
    prompter = _prompter(engine)

    async def one(item: EvalItem) -> Answer:
        tokens = engine.tokenize_prompt(prompter.render(item.messages, item.tools))
        params = SamplingParams(max_tokens=max_tokens.get(item.suite, 256), temperature=0.0, seed=0, logprobs=True)
        handle = engine.submit(tokens, params)
        text, logprobs = [], []
        while True:
            event = await handle.events.get()
            if event.error:
                raise RuntimeError(f"generation failed for {item.suite}/{item.id}: {event.error}")
            text.append(event.text)
            logprobs += [t.logprob or 0.0 for t in event.tokens]
            if event.finish_reason:
                break
        content = "".join(text)
        calls = parse_tool_calls(content) if item.tools else None
        answer = Answer(text="" if calls else content, tool_calls=calls or [], token_logprobs=logprobs,
                        completion_tokens=event.completion_tokens, finish_reason=event.finish_reason)
        if on_answer is not None:
            on_answer(item, answer)
        return answer

    try:
        return list(await asyncio.gather(*(one(item) for item in items)))
    finally:
        await asyncio.to_thread(engine.stop)
