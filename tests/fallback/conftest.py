"""The "frontier" upstream for fallback and escalation tests: a second base_model process answering
"tandem-base", behind a fault-injecting proxy."""

from __future__ import annotations

import pytest

from tests.fallback.servers import FaultProxy, RedisServer, shared_redis_url, start_service, stop_process

FRONTIER_SETTINGS = {"service_name": "frontier", "slots": 2, "ctx_per_slot": 1024, "max_queue": 32}


@pytest.fixture(scope="module")
def frontier():
    proc, url = start_service("tandem.services.base_model", FRONTIER_SETTINGS)
    yield url
    stop_process(proc)


@pytest.fixture(scope="module")
def proxy(frontier):
    running = FaultProxy(frontier).up()
    yield running
    running.down()


@pytest.fixture(scope="module")
def redis_url():
    """CI's shared Redis when given (never killed here), else a private one."""
    url = shared_redis_url()
    if url:
        yield url
        return
    server = RedisServer().start()
    yield server.url
    server.stop()
