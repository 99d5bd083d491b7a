"""The response cache without a router: keys, what is cacheable, backends (LRU, real Redis), Redis
dying mid-run (bypass + metric), semantic matches, and SSE replay/assembly."""

from __future__ import annotations

import asyncio
import json

from prometheus_client import CollectorRegistry, Counter

from tandem.common.wire import ChatCompletionRequest
from tandem.services.cache.backends import MemoryBackend, build_backend
from tandem.services.cache.embedders import HashingEmbedder
from tandem.services.cache.keys import exact_key
from tandem.services.cache.replay import StreamAssembler, replay_sse
from tandem.services.cache.response_cache import CacheCounters, ResponseCache
from tandem.services.cache.semantic import SemanticIndex
from tandem.services.cache.settings import CacheSettings
from tandem.services.cache.verify import GUARDS, Verifier
from tests.fallback.servers import RedisServer, shared_redis_url

ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "tandem-base",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "Red, green and blue."},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}}


def request(text: str = "List three colors.", **kw) -> ChatCompletionRequest:
    return ChatCompletionRequest(model="tandem-base", messages=[{"role": "user", "content": text}],
                                 **{"temperature": 0, **kw})


def counters() -> CacheCounters:
    registry = CollectorRegistry()
    return CacheCounters(Counter("lookups", "", ["result", "kind"], registry=registry),
                         Counter("errors", "", ["op"], registry=registry))


def count(counter: Counter, *labels: str) -> float:
    return counter.labels(*labels)._value.get()


def test_key_covers_what_changes_the_answer_and_ignores_streaming():
    base = exact_key(request())
    assert exact_key(request(stream=True)) == base
    assert exact_key(request(user="someone")) == base
    for other in (request("List four colors."), request(temperature=0.5, seed=1), request(max_tokens=5),
                  request(stop=["."]), request(logprobs=True), request(tools=[{"type": "function",
                                                                                "function": {"name": "f"}}])):
        assert exact_key(other) != base
    assert exact_key(ChatCompletionRequest(model="auto", messages=[{"role": "user", "content": "List three colors."}],
                                           temperature=0)) != base


def test_only_deterministic_requests_are_cached_and_headers_bypass():
    cache = ResponseCache(CacheSettings(), MemoryBackend(CacheSettings()), counters())
    assert cache.plan(request(), {}) is not None
    assert cache.plan(request(temperature=0.7, seed=3), {}) is not None
    assert cache.plan(request(temperature=0.7), {}) is None
    assert cache.plan(request(), {"cache-control": "no-store"}) is None
    no_cache = cache.plan(request(), {"cache-control": "no-cache"})
    assert no_cache is not None and not no_cache.lookup and no_cache.store
    a = cache.plan(request(), {"x-tandem-cache-namespace": "tenant-a"})
    b = cache.plan(request(), {"x-tandem-cache-namespace": "tenant-b"})
    assert a.key != b.key and a.key.startswith("tandem:cache:tenant-a:")


def test_memory_backend_expires_and_evicts_least_recently_used():
    async def run():
        backend = MemoryBackend(CacheSettings(max_entries=2))
        await backend.set("a", b"1", ttl_s=60)
        await backend.set("b", b"2", ttl_s=60)
        assert await backend.get("a") == b"1"  # a is now the most recent
        await backend.set("c", b"3", ttl_s=60)
        assert await backend.get("b") is None and await backend.get("a") == b"1"
        await backend.set("d", b"4", ttl_s=0)
        assert await backend.get("d") is None
    asyncio.run(run())


def test_redis_round_trip_with_ttl():
    url = shared_redis_url()
    server = None if url else RedisServer().start()
    try:
        settings = CacheSettings(redis_url=url or server.url, ttl_s=30, namespace="test-roundtrip")

        async def run():
            cache = ResponseCache(settings, build_backend(settings), counters())
            plan = cache.plan(request(), {})
            assert await cache.get(plan) is None
            await cache.put(plan, ANSWER, {"route": "tandem-base", "domain": "general", "confidence": 1.0})
            hit = await cache.get(plan)
            ttl = await cache.backend.client.ttl(plan.key)
            await cache.backend.client.delete(plan.key)
            await cache.aclose()
            return hit, ttl
        hit, ttl = asyncio.run(run())
        assert hit.response == ANSWER and hit.kind == "exact"
        assert 0 < ttl <= 30
    finally:
        if server:
            server.stop()


def test_redis_killed_mid_run_bypasses_and_counts_never_raises():
    server = RedisServer().start()
    settings = CacheSettings(redis_url=server.url, retry_after_s=0.2)
    c = counters()

    async def run():
        cache = ResponseCache(settings, build_backend(settings), c)
        plan = cache.plan(request(), {})
        await cache.put(plan, ANSWER, {"route": "tandem-base"})
        assert (await cache.get(plan)) is not None
        server.stop()
        assert await cache.get(plan) is None  # the failing call: bypass, counted
        assert await cache.get(plan) is None  # within retry_after_s: Redis is not asked again
        await cache.put(plan, ANSWER, {"route": "tandem-base"})
        await asyncio.sleep(0.25)
        assert await cache.get(plan) is None  # asked again, still down
        await cache.aclose()
    asyncio.run(run())
    assert count(c.errors, "get") == 2
    assert count(c.lookups, "error", "exact") == 3
    assert count(c.lookups, "hit", "exact") == 1


def test_semantic_match_finds_near_duplicates_only_above_threshold():
    embedder = HashingEmbedder()
    index = SemanticIndex(embedder, Verifier(list(GUARDS), embed=embedder.embed), threshold=0.9, max_entries=10)
    index.add("ctx", "What is the capital of France?", "key-1")
    match = index.lookup("ctx", "what is the capital of france ?")
    assert match.key == "key-1" and match.similarity >= 0.9
    assert index.lookup("ctx", "Write a haiku about autumn leaves.").key is None
    assert index.lookup("other-context", "What is the capital of France?").key is None
    assert index.remove("key-1") and index.lookup("ctx", "what is the capital of france ?").key is None


def test_semantic_cache_is_on_by_default_and_answers_a_near_duplicate():
    assert CacheSettings().semantic.enabled is True  # shipped on at the benchmark's setting (docs/CACHE.md)

    async def run():
        settings = CacheSettings()
        embedder = HashingEmbedder()
        semantic = SemanticIndex(embedder, Verifier(list(GUARDS), embed=embedder.embed), threshold=0.9, max_entries=10)
        cache = ResponseCache(settings, MemoryBackend(settings), counters(), semantic)
        await cache.put(cache.plan(request("What is the capital of France?"), {}), ANSWER, {"route": "tandem-base"})
        return await cache.get(cache.plan(request("what is the capital of France??"), {}))
    hit = asyncio.run(run())
    assert hit is not None and hit.kind == "semantic" and hit.similarity < 1.0


def test_replayed_stream_assembles_back_to_the_answer():
    chunks = list(replay_sse(ANSWER, include_usage=True))
    assert len(chunks) > 4 and chunks[-1] == b"data: [DONE]\n\n"
    text = "".join(json.loads(c[6:])["choices"][0]["delta"].get("content") or ""
                   for c in chunks[:-1] if json.loads(c[6:])["choices"])
    assert text == ANSWER["choices"][0]["message"]["content"]
    assembler = StreamAssembler()
    for chunk in chunks:  # byte boundaries need not match event boundaries
        for i in range(0, len(chunk), 7):
            assembler.feed(chunk[i:i + 7])
    rebuilt = assembler.completion()
    assert rebuilt["choices"][0]["message"] == ANSWER["choices"][0]["message"]
    assert rebuilt["usage"] == ANSWER["usage"]


def test_a_broken_or_unfinished_stream_is_not_stored():
    assembler = StreamAssembler()
    chunks = list(replay_sse(ANSWER, include_usage=False))
    for chunk in chunks[:-2]:
        assembler.feed(chunk)
    assert assembler.completion() is None
    assembler.feed(b'data: {"error": {"message": "worker died"}}\n\n')
    assembler.feed(chunks[-2] + chunks[-1])
    assert assembler.completion() is None
