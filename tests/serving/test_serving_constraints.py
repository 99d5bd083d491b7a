"""Output constraints through the router with the official client: response_format json_object and
json_schema, tool_choice "required" and a named function, all enforced by llama.cpp grammars on the
embedded model; what cannot be enforced is a 400."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city", "unit"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Current time in a timezone.",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}
PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}


@pytest.fixture(scope="module")
def client(tandem_up):
    return openai.OpenAI(base_url=tandem_up.base_url, api_key="unused", max_retries=0, timeout=120)


def ask(client, text: str, **kw):
    return client.chat.completions.create(model="tandem-base", messages=[{"role": "user", "content": text}],
                                          **{"max_tokens": 96, "temperature": 0, **kw})


def test_json_object_is_a_json_object(client):
    for text in ("Describe a cat.", "What is 2+2?", "Say hello."):
        completion = ask(client, text, response_format={"type": "json_object"})
        assert completion.choices[0].finish_reason == "stop", completion
        assert isinstance(json.loads(completion.choices[0].message.content), dict)


def test_json_schema_is_followed(client):
    completion = ask(client, "Invent a person.", response_format={
        "type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}})
    assert completion.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(completion.choices[0].message.content), PERSON)


def test_tool_choice_required_always_calls_an_offered_function(client):
    for text in ("Hi there!", "Tell me a joke.", "Weather in Paris?", "What time is it in Tokyo?"):
        completion = ask(client, text, tools=[WEATHER, TIME], tool_choice="required")
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls", choice
        call = choice.message.tool_calls[0]
        assert call.function.name in ("get_weather", "get_time")
        schema = (WEATHER if call.function.name == "get_weather" else TIME)["function"]["parameters"]
        jsonschema.validate(json.loads(call.function.arguments), schema)


def test_named_tool_choice_calls_that_function(client):
    completion = ask(client, "Hi there!", tools=[WEATHER, TIME],
                     tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert completion.choices[0].message.tool_calls[0].function.name == "get_time"


def test_tool_choice_none_answers_in_text(client):
    completion = ask(client, "Weather in Paris?", tools=[WEATHER], tool_choice="none", max_tokens=24)
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason != "tool_calls"
    assert completion.choices[0].message.content


def test_streamed_forced_call_arrives_as_tool_call_deltas(client):
    chunks = list(ask(client, "Weather in Oslo?", tools=[WEATHER], tool_choice="required", stream=True))
    parts = [call for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])]
    assert parts, "no delta.tool_calls in the stream"
    assert parts[0].function.name == "get_weather" and parts[0].id
    assert not "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    jsonschema.validate(json.loads("".join(p.function.arguments or "" for p in parts)),
                        WEATHER["function"]["parameters"])


@pytest.mark.parametrize("kw, param", [
    ({"response_format": {"type": "yaml"}}, "response_format"),  # refused by the request schema itself
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [WEATHER], "tool_choice": "required", "response_format": {"type": "json_object"}}, "response_format"),
])
def test_what_cannot_be_enforced_is_a_400(client, kw, param):
    with pytest.raises(openai.BadRequestError) as err:
        ask(client, "Hi", **kw)
    assert err.value.body["param"] == param
    assert err.value.body["type"] == "invalid_request_error"
