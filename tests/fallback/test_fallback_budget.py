"""The fallback budget is a reservation taken before the upstream call: concurrent requests, even on
two replicas sharing one real Redis, never spend past the cap."""

from __future__ import annotations

import asyncio
import concurrent.futures

import httpx
import pytest
import redis

from tandem.services.fallback.app import prompt_bytes
from tandem.services.fallback.budget import KEY_PREFIX, DailyBudget, today
from tests.fallback.servers import start_service, stop_process
from tests.fallback.test_fallback_service import fallback_settings


@pytest.fixture
def fresh_day(redis_url):
    """Today's spend key cleared for the test and restored after it (CI's Redis is shared)."""
    store = redis.Redis.from_url(redis_url)
    key = KEY_PREFIX + today()
    saved = store.get(key)
    store.delete(key)
    yield store, key
    if saved is None:
        store.delete(key)
    else:
        store.set(key, saved)


def test_concurrent_reservations_on_two_replicas_never_pass_the_cap(redis_url, fresh_day):
    store, key = fresh_day

    async def race() -> list:
        replicas = [DailyBudget(10.0, redis_url, 2.0) for _ in range(2)]
        try:
            return await asyncio.gather(*(replicas[i % 2].reserve(1.0) for i in range(40)))
        finally:
            for replica in replicas:
                await replica.aclose()

    reservations = asyncio.run(race())
    assert sum(r.granted for r in reservations) == 10
    assert float(store.get(key)) == pytest.approx(10.0)


@pytest.mark.usefixtures("fresh_day")
def test_settle_refunds_the_unused_part(redis_url):
    async def run() -> float:
        budget = DailyBudget(1.0, redis_url, 2.0)
        try:
            reservation = await budget.reserve(0.8)
            refused = await budget.reserve(0.3)
            assert reservation.granted and not refused.granted
            await budget.settle(reservation, 0.1)
            assert (await budget.reserve(0.3)).granted  # the refund made room
            return await budget.spent()
        finally:
            await budget.aclose()

    assert asyncio.run(run()) == pytest.approx(0.4)


def test_in_process_budget_reserves_too():
    async def run() -> list[bool]:
        budget = DailyBudget(3.0, None, 1.0)
        return [r.granted for r in await asyncio.gather(*(budget.reserve(1.0) for _ in range(5)))]

    assert sorted(asyncio.run(run())) == [False, False, True, True, True]


def test_concurrent_requests_through_the_service_cannot_overspend(proxy, redis_url, fresh_day):
    store, key = fresh_day
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Name a color."}], "max_tokens": 8,
            "temperature": 0}
    # Each request reserves its worst case, prompt bytes at $2.5 and 8 tokens at $10 per 1M (gpt-4o):
    # a cap of 3.5 of them holds three reservations at a time, whatever the requests end up costing.
    worst = (prompt_bytes(body) * 2.5 + 8 * 10.0) / 1e6
    cap = 3.5 * worst
    proc, url = start_service("tandem.services.fallback", fallback_settings(proxy, redis_url, daily_budget_usd=cap,
                                                                             request_timeout_s=400.0))
    proxy.faults.delay_s = 2.0  # all requests are in flight together
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda _: httpx.post(f"{url}/v1/chat/completions", json=body, timeout=500),
                                      range(8)))
    finally:
        proxy.faults.delay_s = 0.0
        stop_process(proc)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 3, [(r.status_code, r.text[:300]) for r in responses]
    refused = [r for r in responses if r.status_code != 200]
    assert all(r.status_code == 429 and r.headers["x-tandem-fallback-refused"] == "budget_exhausted"
               for r in refused)
    spent = float(store.get(key))
    assert 0 < spent <= cap
    answered = [r.json()["usage"] for r in responses if r.status_code == 200]
    actual = sum(u["prompt_tokens"] * 2.5 + u["completion_tokens"] * 10.0 for u in answered) / 1e6
    assert spent == pytest.approx(actual, rel=1e-6), "after settling, only what was used stays counted"
