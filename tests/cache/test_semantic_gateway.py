"""The semantic cache through a real `tandem up` (embedded model, in-process store) with the shipped
config (configs/up.yaml: semantic cache on, nothing overridden): a paraphrase is answered from the cache with `x-tandem-cache: semantic` and
the similarity, a prompt that means something else is not, hits are counted per domain and
refusals per guard, and operators inspect and evict entries with the internal credential only."""

from __future__ import annotations

import httpx
import openai
import pytest

from tandem.services.cache.embedders import build_embedder
from tandem.services.cache.settings import SemanticCacheSettings
from tests.conftest import start_tandem_up, stop_tandem_up


@pytest.fixture(scope="module")
def semantic_up(tmp_path_factory):
    build_embedder(SemanticCacheSettings().embedder)  # builds minilm-static's table once, before the router needs it
    running = start_tandem_up(tmp_path_factory.mktemp("semantic"))  # the shipped config: on by default
    yield running
    stop_tandem_up(running)


@pytest.fixture(scope="module")
def client(semantic_up):
    return openai.OpenAI(base_url=semantic_up.base_url, api_key="unused", max_retries=0, timeout=120)


def ask(client, text: str, **kw):
    return client.chat.completions.with_raw_response.create(
        model="tandem-base", messages=[{"role": "user", "content": text}], **{"max_tokens": 6, "temperature": 0, **kw})


def test_paraphrase_hits_semantically_and_a_changed_question_misses(client, semantic_up):
    first = ask(client, "What is the capital of France?")
    assert first.headers["x-tandem-cache"] == "miss"
    again = ask(client, "what's the capital of france")
    assert again.headers["x-tandem-cache"] == "semantic"
    assert 0 < float(again.headers["x-tandem-cache-similarity"]) <= 1
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    other = ask(client, "What is the capital of Spain?")
    assert other.headers["x-tandem-cache"] == "miss" and "x-tandem-cache-similarity" not in other.headers
    ask(client, "Is it safe to mix bleach and ammonia?")
    negated = ask(client, "Is it not safe to mix bleach and ammonia?")  # the same content words: the guard refuses
    assert negated.headers["x-tandem-cache"] == "miss"
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    ask(client, "What is the capital of Italy?", tools=tools)
    with_tools = ask(client, "what's the capital of italy", tools=tools)
    assert with_tools.headers["x-tandem-cache"] == "miss"  # tool requests match exactly or not at all
    metrics = httpx.get(f"{semantic_up.url}/metrics").text
    assert 'tandem_cache_semantic_hits_total{domain="general"} 1.0' in metrics
    assert 'tandem_cache_semantic_refusals_total{guard="negation"}' in metrics


def test_operators_inspect_and_evict_with_the_internal_token_only(client, semantic_up):
    ask(client, "How many legs does a spider have?")
    entries = f"{semantic_up.url}/admin/cache/entries"
    refused = httpx.get(entries, params={"contains": "spider"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_admin_token"
    wrong = httpx.get(entries, headers={"authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    response = httpx.get(entries, params={"contains": "spider"}, headers=semantic_up.internal_headers)
    assert response.status_code == 200, response.text
    listed = response.json()
    assert listed["semantic"] is True and listed["total"] == 1
    key = listed["entries"][0]["key"]
    assert listed["entries"][0]["text"] == "How many legs does a spider have?"
    assert ask(client, "how many legs does a spider have").headers["x-tandem-cache"] == "semantic"
    evicted = httpx.delete(f"{entries}/{key}", headers=semantic_up.internal_headers)
    assert evicted.status_code == 200 and evicted.json() == {"key": key, "evicted": True}
    assert httpx.get(entries, params={"contains": "spider"}, headers=semantic_up.internal_headers).json()["total"] == 0
    assert ask(client, "how many legs does a spider have").headers["x-tandem-cache"] == "miss"
