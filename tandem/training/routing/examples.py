"""A labelled routing example, the unit every data source, split and report works on."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Origin = Literal["public", "template", "handwritten", "real"]
Split = Literal["train", "dev", "test"]


class RoutingExample(BaseModel):
    """One request and the domain it should go to.

    `dataset` + `item_id` name the source item: splits are decided on them, so every example drawn
    from one source item lands in the same split.
    """

    dataset: str
    item_id: str
    text: str = Field(min_length=1, description="The last user message: the text that decides the route.")
    domain: str
    tools: list[dict[str, Any]] = Field(default_factory=list)
    origin: Origin = "public"
    split: Split = "test"

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.text}]
