"""The teacher: the official `openai` AsyncOpenAI client with a concurrency limit, retries (the
client's own backoff on 429/5xx/connection errors), the response cache and the budget."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

from openai import AsyncOpenAI

from tandem.training.distill.budget import Budget
from tandem.training.distill.cache import ResponseCache, request_key
from tandem.training.distill.config import TeacherConfig


class Teacher:
    def __init__(self, config: TeacherConfig, cache: ResponseCache, budget: Budget):
        self.config, self.cache, self.budget = config, cache, budget
        self.client = AsyncOpenAI(
            base_url=config.base_url,
            api_key=os.environ.get(config.api_key_env) or "none",
            max_retries=config.max_retries,
            timeout=config.timeout_s,
        )
        self.semaphore = asyncio.Semaphore(config.concurrency)
        self.counts: Counter = Counter()

    async def complete(self, messages: list[dict[str, str]], temperature: float, variant: str = "") -> str:
        """The reply text; `variant` separates otherwise identical requests (e.g. a second solution)."""
        payload: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": self.config.max_tokens,
            "variant": variant,
        }
        key = request_key(payload)
        if (hit := self.cache.get(key)) is not None:
            self.counts["cache_hits"] += 1
            return hit[0]
        async with self.semaphore:
            estimate = sum(len(m["content"]) for m in messages) // 3 + 16
            reservation = self.budget.reserve(estimate, self.config.max_tokens)
            usage = (0, 0)
            try:
                response = await self.client.chat.completions.create(
                    model=self.config.model,
                    messages=messages,
                    temperature=temperature,
                    max_tokens=self.config.max_tokens,
                    seed=_seed(key),
                )
                if response.usage is not None:
                    usage = (response.usage.prompt_tokens, response.usage.completion_tokens)
                else:
                    usage = (estimate, len(response.choices[0].message.content or "") // 3)
            finally:
                self.budget.settle(reservation, *usage)
        self.counts["requests"] += 1
        text = response.choices[0].message.content or ""
        self.cache.put(key, text, *usage)
        return text

    async def close(self) -> None:
        await self.client.close()


def _seed(key: str) -> int:
    return int(key[:8], 16)
