"""The requests the serving benchmark sends: prompt sizes, the shared-prefix case, the model mix.

Every prompt starts with its own request number, so no two requests share a cached prefix unless the
shared-prefix workload says so (a system prompt and few-shot examples that every request repeats).
Prompt lengths are counted with the base's own tokenizer, so "1,000 tokens" means 1,000 of the
model's tokens on every system.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_WORD_TEXT = ("river mountain engine garden market window letter summer teacher village bridge signal harbor "
              "forest doctor station season number kitchen planet machine library paper travel morning island "
              "silver history music animal winter picture energy mirror ocean country journey question answer "
              "reason office theory record circle bottle")
WORDS = _WORD_TEXT.split()
TASKS = ["Write a detailed essay about the history of bridges.", "Explain in detail how a compiler works.",
         "Describe the water cycle step by step, with examples.", "Write a long story about a lighthouse keeper.",
         "Explain how vaccines train the immune system, in detail.", "Describe how a city plans its public transport.",
         "Write a travel guide to an imaginary island.", "Explain the causes and effects of the seasons in detail."]
FEW_SHOT = [("What is the capital of France?", "The capital of France is Paris."),
            ("Name a prime number between 10 and 20.", "13 is a prime number between 10 and 20."),
            ("What gas do plants take in?", "Plants take in carbon dioxide from the air."),
            ("Translate 'thank you' into Spanish.", "'Thank you' in Spanish is 'gracias'.")]
SYSTEM = ("You are a careful assistant for a travel company. Answer clearly, give concrete details, keep a friendly "
          "tone, and never invent prices. ")


@dataclass(frozen=True)
class Workload:
    name: str
    prompt_tokens: int  # target length of each request's prompt (user text), in the base's tokens
    shared_prefix: bool = False


@cache
def _tokenizer(gguf: str):
    from llama_cpp import Llama

    return Llama(model_path=gguf, vocab_only=True, verbose=False)


def _count(gguf: Path, text: str) -> int:
    return len(_tokenizer(str(gguf)).tokenize(text.encode(), add_bos=False, special=False))


def _filler(rng: random.Random, gguf: Path, tokens: int) -> str:
    """Notes of random words, cut to about `tokens` of the model's tokens."""
    words = []
    while True:
        words.extend(rng.choice(WORDS) for _ in range(max(8, tokens // 4)))
        text = " ".join(words)
        if _count(gguf, text) >= tokens:
            break
    low, high = 0, len(words)  # the longest prefix of words within the budget
    while low < high:
        mid = (low + high + 1) // 2
        if _count(gguf, " ".join(words[:mid])) <= tokens:
            low = mid
        else:
            high = mid - 1
    return " ".join(words[:low])


def messages_for(workload: Workload, index: int, gguf: Path) -> list[dict]:
    """The chat messages of request `index` of a workload (deterministic)."""
    rng = random.Random(index * 7919 + workload.prompt_tokens)
    task = f"Request {index}. {TASKS[index % len(TASKS)]}"
    if workload.shared_prefix:
        shots = [m for q, a in FEW_SHOT for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
        system = SYSTEM + "Reference notes: " + _filler(random.Random(0), gguf, workload.prompt_tokens)
        return [{"role": "system", "content": system}, *shots, {"role": "user", "content": task}]
    budget = workload.prompt_tokens - _count(gguf, task) - 4
    content = task if budget <= 0 else f"{task} Use these notes: {_filler(rng, gguf, budget)}"
    return [{"role": "user", "content": content}]


def model_for(mix: str, index: int, modifiers: list[str]) -> str:
    """all-base: every request to tandem-base; mixed: round robin over the base and every modifier."""
    if mix == "base" or not modifiers:
        return "tandem-base"
    choices = ["tandem-base", *modifiers]
    return choices[index % len(choices)]
