"""The row every modifier data builder yields: an OpenAI-shaped conversation plus where it came from.

`messages` use the OpenAI chat shape, so a row with `tools` and assistant `tool_calls` is exactly
what a client would send and receive; the SFT trainer renders it with the base's chat template
the same way the serving engine renders a live request.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TrainingRow(BaseModel):
    id: str = Field(description="Stable id, '<source>/<native id>'.")
    source: str = Field(description="Builder name, e.g. 'mbpp', 'math', 'bfcl'.")
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None

    def as_sft_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.id, "messages": self.messages}
        if self.tools:
            row["tools"] = self.tools
        return row


def code_block(language: str, code: str) -> str:
    return f"```{language}\n{code}\n```"
