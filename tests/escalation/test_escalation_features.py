"""The answer-structure checks: failures that fluent, confident tokens hide are visible to the
answer-confidence model (a call to a function nobody offered, a missing required argument, text
where a call was due, Python that does not parse, an answer cut off, several option letters)."""

from __future__ import annotations

import json

from tandem.common.wire import ChatCompletionRequest
from tandem.services.escalation.answers import Answer
from tandem.services.escalation.features import (
    ANSWER_NAMES,
    DENSE_NAMES,
    STRUCTURE_NAMES,
    answer_features,
    answer_structure,
    prompt_features,
)

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}, "required": ["city"]}}}


def structure(request: ChatCompletionRequest, answer: Answer) -> dict[str, float]:
    return dict(zip(STRUCTURE_NAMES, answer_structure(request, answer)))


def call(name: str, arguments: dict | str) -> dict:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}


def test_tool_calls_are_checked_against_the_offered_functions():
    request = ChatCompletionRequest(model="auto", messages=[{"role": "user", "content": "Weather in Paris?"}],
                                    tools=[WEATHER])
    good = structure(request, Answer(tool_calls=[call("get_weather", {"city": "Paris"})]))
    assert good["tool_call_made"] == 1.0 and good["tool_call_invalid"] == 0.0 and good["text_instead_of_call"] == 0.0
    for bad in (call("get_forecast", {"city": "Paris"}), call("get_weather", {"unit": "C"}),
                call("get_weather", {"city": 75}), call("get_weather", "{not json")):
        assert structure(request, Answer(tool_calls=[bad]))["tool_call_invalid"] == 1.0, bad
    half = structure(request, Answer(tool_calls=[call("get_weather", {"city": "Paris"}), call("nope", {})]))
    assert half["tool_call_invalid"] == 0.5
    broken = ChatCompletionRequest(model="auto", messages=request.messages, tools=[
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "dict"}}}])
    assert structure(broken, Answer(tool_calls=[call("get_weather", {"city": "Paris"})]))["tool_call_invalid"] == 0.0, \
        "a schema jsonschema cannot read leaves only the name to check"
    text = structure(request, Answer(text='{"name": "function_name", "arguments": {}}'))
    assert text["text_instead_of_call"] == 1.0 and text["tool_call_made"] == 0.0


def test_code_truncation_and_option_letters():
    ask = ChatCompletionRequest(model="auto", messages=[{"role": "user", "content": "Write a function."}])
    assert structure(ask, Answer(text="```python\ndef f(x):\n    return x\n```"))["code_unparsable"] == 0.0
    assert structure(ask, Answer(text="```python\ndef f(x:\n    return x\n```"))["code_unparsable"] == 1.0
    assert structure(ask, Answer(text="Paris.", finish_reason="length"))["truncated"] == 1.0
    assert structure(ask, Answer(text="Paris.", finish_reason="stop"))["truncated"] == 0.0
    choice = ChatCompletionRequest(model="auto", messages=[{"role": "user", "content": "Q?\n\nA. x\nB. y\nC. z"}])
    one = structure(choice, Answer(text="B. y"))["letters_stated"]
    contradicting = structure(choice, Answer(text="A. x\n\nThe correct answer is C. z"))["letters_stated"]
    assert 0 < one < contradicting


def test_answer_features_line_up_with_their_names():
    request = ChatCompletionRequest(model="auto", messages=[{"role": "user", "content": "Hi"}])
    features = answer_features(request, Answer(text="Hello", token_logprobs=[-0.5, -0.1], finish_reason="stop"))
    assert features.shape == (len(ANSWER_NAMES),)
    assert features[ANSWER_NAMES.index("min_logprob")] == -0.5


def test_prompt_features_count_the_offered_functions_and_their_required_arguments():
    ask = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    none = dict(zip(DENSE_NAMES, prompt_features(ChatCompletionRequest(model="auto", messages=ask))[0]))
    one = dict(zip(DENSE_NAMES, prompt_features(ChatCompletionRequest(model="auto", messages=ask, tools=[WEATHER]))[0]))
    assert none["has_tools"] == 0.0 and none["log_tools"] == 0.0
    assert one["has_tools"] == 1.0 and one["log_tools"] > 0 and one["log_required_args"] > 0
