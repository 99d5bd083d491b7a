"""The router's connections to a worker: a worker that closes a pooled connection just as the router
reuses it (its idle timer firing, or a restart) costs the client nothing; a worker that really is gone
still gets a 503 in OpenAI's shape.

The worker here is a raw asyncio server, because the failure is a socket closed at a chosen moment,
which no HTTP framework lets a test script.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from prometheus_client import CollectorRegistry, Gauge

from tandem.common.errors import OverloadedError
from tandem.services.router.settings import RouterSettings, WorkerEndpoint
from tandem.services.router.workers import WorkerPool

ANSWER = json.dumps({"object": "chat.completion", "choices": []}).encode()


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    await reader.readexactly(length)


def worker_that_drops(requests_answered_per_connection: int):
    """Answers the first n requests on each connection with keep-alive, then closes it on the next one
    without a byte of response: what a client sees when the server's idle timer wins the race."""
    seen = {"connections": 0, "answered": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["connections"] += 1
        try:
            for _ in range(requests_answered_per_connection):
                await read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER))
                await writer.drain()
                seen["answered"] += 1
            await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle, seen


@asynccontextmanager
async def pool_against(handle) -> AsyncIterator[tuple[WorkerPool, WorkerEndpoint]]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    endpoint = WorkerEndpoint(name="w", url=f"http://127.0.0.1:{port}")
    pool = WorkerPool(RouterSettings(workers=[endpoint]), Gauge("up", "", ["worker"], registry=CollectorRegistry()))
    pool.mark("w", True)
    try:
        yield pool, endpoint
    finally:
        await pool.aclose()
        server.close()


def test_a_pooled_connection_the_worker_closed_is_retried_on_a_fresh_one():
    async def scenario():
        handle, seen = worker_that_drops(requests_answered_per_connection=1)
        async with pool_against(handle) as (pool, endpoint):
            for _ in range(3):  # each request after the first lands on the connection the worker has closed
                response = await pool.send(endpoint, {"model": "m", "messages": []})
                assert response.status_code == 200
                assert json.loads(await response.aread())["object"] == "chat.completion"
                await response.aclose()
        return seen

    seen = asyncio.run(scenario())
    assert seen["answered"] == 3
    assert seen["connections"] == 3  # each dropped connection was replaced once, by the retry


def test_a_worker_that_drops_every_request_is_a_503_and_marked_down():
    async def scenario():
        handle, seen = worker_that_drops(requests_answered_per_connection=0)
        async with pool_against(handle) as (pool, endpoint):
            with pytest.raises(OverloadedError) as refused:
                await pool.send(endpoint, {"model": "m", "messages": []})
            return refused.value, pool.up["w"], seen

    error, up, seen = asyncio.run(scenario())
    assert error.status_code == 503 and "unavailable" in error.message
    assert error.headers.get("Retry-After")
    assert up is False
    assert seen["connections"] == 2  # asked once more, not forever
