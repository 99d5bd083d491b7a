"""How streamed text becomes `delta.tool_calls` (worker) and how such deltas become a stored answer (cache):
prose is released at once, a JSON call is held and sent as a call, the cache joins OpenAI's call parts."""

from __future__ import annotations

import json

from tandem.services.cache.replay import StreamAssembler
from tandem.services.worker.tool_stream import ToolCallHold


def _feed(hold: ToolCallHold, pieces: list[str]) -> list[str]:
    return [hold.feed(p, [])[0] for p in pieces]


def test_prose_is_released_as_soon_as_it_shows_itself():
    hold = ToolCallHold(tools_offered=True)
    assert _feed(hold, [" ", "Sure", ", here"]) == ["", " Sure", ", here"]
    assert hold.finish() == ("", [], None)


def test_a_json_call_is_held_and_sent_as_a_call():
    hold = ToolCallHold(tools_offered=True)
    pieces = ['{"name": "get_weather", ', '"arguments": {"city": ', '"Oslo"}}']
    assert _feed(hold, pieces) == ["", "", ""]
    text, _, calls = hold.finish()
    assert text == ""
    assert calls[0]["index"] == 0 and calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Oslo"}


def test_held_json_that_is_no_call_comes_out_as_content():
    hold = ToolCallHold(tools_offered=True)
    assert _feed(hold, ['{"answer": ', "42}"]) == ["", ""]
    assert hold.finish() == ('{"answer": 42}', [], None)


def test_without_tools_nothing_is_held():
    hold = ToolCallHold(tools_offered=False)
    assert _feed(hold, ['{"name": "f"', "}"]) == ['{"name": "f"', "}"]
    assert hold.finish() == ("", [], None)


def _sse(*payloads: dict) -> bytes:
    return b"".join(f"data: {json.dumps(p)}\n\n".encode() for p in payloads) + b"data: [DONE]\n\n"


def test_the_cache_joins_streamed_call_parts_into_tool_calls():
    base = {"id": "chatcmpl-1", "created": 1, "model": "gpt-4o", "object": "chat.completion.chunk"}
    stream = _sse(
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    assembler = StreamAssembler()
    for i in range(0, len(stream), 7):  # in arbitrary network pieces
        assembler.feed(stream[i:i + 7])
    message = assembler.completion()["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [{"id": "call_a", "type": "function",
                                      "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]
