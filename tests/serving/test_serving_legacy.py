"""The endpoints OpenAI clients and eval harnesses call besides chat: `models.retrieve` and the legacy
`/v1/completions` (streamed too), through the router with the official client."""

from __future__ import annotations

import openai
import pytest


@pytest.fixture(scope="module")
def client(tandem_up):
    return openai.OpenAI(base_url=tandem_up.base_url, api_key="unused", max_retries=0, timeout=120)


def test_models_retrieve(client):
    for name in ("auto", "tandem-base"):
        assert client.models.retrieve(name).id == name
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("no-such-model")
    assert err.value.body["code"] == "model_not_found"


def test_legacy_completion_continues_the_raw_prompt(client):
    raw = client.completions.with_raw_response.create(model="tandem-base", prompt="The capital of France is",
                                                      max_tokens=8, temperature=0)
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.choices[0].text.strip()
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage.completion_tokens > 0
    assert raw.headers["x-tandem-route"] == "tandem-base"
    auto = client.completions.with_raw_response.create(model="auto", prompt="def reverse(s):", max_tokens=4)
    assert auto.headers["x-tandem-domain"] == "code"


def test_legacy_stream_matches_the_plain_answer(client):
    plain = client.completions.create(model="tandem-base", prompt="Once upon a time", max_tokens=12, temperature=0)
    chunks = list(client.completions.create(model="tandem-base", prompt="Once upon a time", max_tokens=12,
                                            temperature=0, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == plain.choices[0].text
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens


@pytest.mark.parametrize("kw", [{"echo": True}, {"logprobs": 2}, {"prompt": ["a", "b"]}, {"n": 2}])
def test_unsupported_legacy_options_are_a_400(client, kw):
    with pytest.raises(openai.BadRequestError):
        client.completions.create(**{"model": "tandem-base", "prompt": "Hi", "max_tokens": 2, **kw})
