"""The tool-fit guard: a modifier's tool call that does not fit the request is not returned.

A small adapter that learned to call functions also calls them when none of the offered ones fits
(docs/MODIFIERS.md, automation runs 1-9). For a modifier whose manifest entry sets
`tool_fit_min_similarity`, the router embeds the request (its user turns) and each called function's
"name words: description" with the packaged int8 MiniLM; with `tool_args_min_grounding`, it also
measures how much of each call's argument values the request supplies (a call forced onto a request
makes them up). When the lowest cosine or the lowest grounding is under its threshold, the router
answers with the base model instead (one more generation), saying so in `x-tandem-tool-guard` (the
cosine) and `x-tandem-tool-guard-grounding`. Whole (non-streamed) answers only: a stream has shown
its call already.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tandem.common.manifest import Manifest, ManifestError
from tandem.common.served_artifacts import BUNDLED_ARTIFACTS
from tandem.common.wire import ChatCompletionRequest, ChatMessage

MAX_TOKENS = 128  # request and descriptions are cut here: MiniLM's cost grows with length


def function_text(tools: list[dict], name: str) -> str:
    """"name words: description" of the offered function `name` ("" when none is offered by that name;
    dots and underscores are the same, as llama.cpp's call names carry either)."""
    for tool in tools:
        fn = tool.get("function") or {}
        if str(fn.get("name", "")).replace(".", "_") == name.replace(".", "_"):
            return f"{fn['name'].replace('_', ' ').replace('.', ' ')}: {fn.get('description') or ''}"
    return ""


def request_text(messages: list[ChatMessage]) -> str:
    return " ".join(m.text() for m in messages if m.role == "user")


_WORD = re.compile(r"[a-z0-9]+")


def _leaves(value: Any) -> Iterator[str | int | float]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        yield value


def _grounded(value: str | float, request: str, request_words: set[str]) -> bool:
    """A number whose digits the request contains; a string the request contains, or at least half of
    whose words it contains ("Boston, MA" from "weather in Boston")."""
    if not isinstance(value, str):
        return f"{value:g}" in request
    text = value.lower().strip()
    words = _WORD.findall(text)
    return not text or text in request or bool(words) and sum(w in request_words for w in words) >= len(words) / 2


def argument_grounding(body: ChatCompletionRequest, message: dict) -> float | None:
    """Share of the argument values the request supplies, for the least grounded call in `message`
    (None: no call; a call without arguments counts as grounded). A call that fits its request takes
    its values from it; one forced onto a request no offered function fits makes them up."""
    calls = message.get("tool_calls") or []
    if not calls:
        return None
    request = request_text(body.messages).lower()
    request_words = set(_WORD.findall(request))
    shares = []
    for call in calls:
        arguments = (call.get("function") or {}).get("arguments") or {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                arguments = {}
        values = list(_leaves(arguments))
        shares.append(sum(_grounded(v, request, request_words) for v in values) / len(values) if values else 1.0)
    return min(shares)


def guard_encoder():
    """The packaged int8 MiniLM with the router's tokenizer, inputs cut at MAX_TOKENS."""
    from tandem.services.routing.encoder import OnnxEncoder
    from tandem.services.routing.packaged_encoder import packaged_encoder_path

    return OnnxEncoder(packaged_encoder_path(), BUNDLED_ARTIFACTS / "router" / "tokenizer.json", MAX_TOKENS)


class GuardThresholds(NamedTuple):
    min_similarity: float | None
    min_grounding: float | None

    def rejects(self, similarity: float | None, grounding: float | None) -> bool:
        """Whether a call measured at these values is handed to the base (None: not measured, no call)."""
        return (similarity is not None and self.min_similarity is not None and similarity < self.min_similarity
                or grounding is not None and self.min_grounding is not None and grounding < self.min_grounding)


class GuardTrip(NamedTuple):
    """Why a call was replaced: the values measured (None: that check is off for the model)."""

    similarity: float | None
    grounding: float | None


class ToolFitGuard:
    def __init__(self, thresholds: dict[str, GuardThresholds]):
        self.thresholds = thresholds  # served model name -> what a call must reach to be returned

    @classmethod
    def from_artifacts(cls, artifacts_dir: str | None) -> ToolFitGuard | None:
        """The guard for every servable modifier whose manifest entry sets a threshold; None when none does."""
        if not artifacts_dir or not (Path(artifacts_dir) / "manifest.json").is_file():
            return None
        try:
            entries = Manifest(Path(artifacts_dir)).entries(kind="modifier")
        except ManifestError:
            return None  # the workers report a broken manifest; the router serves without the guard
        thresholds = {f"tandem-{name}": GuardThresholds(e.tool_fit_min_similarity, e.tool_args_min_grounding)
                      for name, e in entries.items() if e.servable
                      and (e.tool_fit_min_similarity is not None or e.tool_args_min_grounding is not None)}
        return cls(thresholds) if thresholds else None

    @cached_property
    def encoder(self):
        return guard_encoder()

    def call_vectors(self, body: ChatCompletionRequest, message: dict) -> np.ndarray | None:
        """The request's embedding, then one per function `message` calls (None: no call)."""
        calls = message.get("tool_calls") or []
        if not calls:
            return None
        texts = [function_text(body.tools or [], str((c.get("function") or {}).get("name", ""))) for c in calls]
        return self.encoder.encode([request_text(body.messages), *texts])

    def similarity(self, body: ChatCompletionRequest, message: dict) -> float | None:
        """Lowest cosine between the request and the functions `message` calls (None: no call)."""
        vectors = self.call_vectors(body, message)
        return None if vectors is None else float(min(vectors[0] @ vectors[1:].T))

    def trips(self, model: str, body: ChatCompletionRequest, data: dict) -> GuardTrip | None:
        """What was measured when `model`'s answer in `data` calls a function that does not fit."""
        limits = self.thresholds.get(model)
        if limits is None or not data.get("choices"):
            return None
        message = data["choices"][0].get("message") or {}
        if not message.get("tool_calls"):
            return None
        grounding = argument_grounding(body, message) if limits.min_grounding is not None else None
        similarity = self.similarity(body, message) if limits.min_similarity is not None else None
        return GuardTrip(similarity, grounding) if limits.rejects(similarity, grounding) else None
