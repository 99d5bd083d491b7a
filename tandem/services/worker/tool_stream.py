"""Streamed tool calls: text that may be a JSON call is held back, and sent as `delta.tool_calls`.

OpenAI streams a call as `tool_calls` deltas, never as content. Our small bases answer a call with
JSON text (see `tandem.services.engine.chat`), which is only known to be a call once it is complete. So when
a request offers tools, the streamed text is held while it can still be one (it opens with `{`,
`[`, a code fence or `<tool_call>`); prose is released as content as soon as it shows it is prose.
At the end, held text that parses as calls goes out as one `tool_calls` delta per call (the whole
arguments string at once, which OpenAI clients accept), anything else as content.
"""

from __future__ import annotations

from typing import Any

from tandem.services.engine.batched import TokenInfo
from tandem.services.engine.chat import parse_tool_calls

CALL_OPENINGS = ("{", "[", "```", "<tool_call>")


class ToolCallHold:
    def __init__(self, tools_offered: bool):
        self.holding = tools_offered
        self.text = ""
        self.tokens: list[TokenInfo] = []

    def feed(self, text: str, tokens: list[TokenInfo]) -> tuple[str, list[TokenInfo]]:
        """(content to send now, its tokens); empty while the text may still be a call."""
        if not self.holding:
            return text, tokens
        self.text += text
        self.tokens += tokens
        head = self.text.lstrip()
        if not head or any(head.startswith(o) or o.startswith(head) for o in CALL_OPENINGS):
            return "", []
        self.holding = False
        return self._release()

    def finish(self) -> tuple[str, list[TokenInfo], list[dict[str, Any]] | None]:
        """At the end: (held content, its tokens, tool calls); calls and content never both."""
        if not self.holding or not self.text:
            text, tokens = self._release()
            return text, tokens, None
        calls = parse_tool_calls(self.text)
        text, tokens = self._release()
        if calls:
            return "", tokens, [{"index": i, **call} for i, call in enumerate(calls)]
        return text, tokens, None

    def _release(self) -> tuple[str, list[TokenInfo]]:
        text, tokens = self.text, self.tokens
        self.text, self.tokens = "", []
        return text, tokens
