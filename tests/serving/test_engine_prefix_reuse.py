"""Prefix reuse in the batched engine: a prompt prefix already in the KV cache (a finished request's
in any slot, or a running one's) is not read again, and the answer is the one a cold cache gives."""

from __future__ import annotations

import asyncio

import pytest

from tandem.common.model_files import embedded_model_path
from tandem.services.engine.batched import BatchedEngine, SamplingParams
from tandem.services.engine.chat import ChatPrompter

SYSTEM = ("You are a helpful travel assistant. Answer briefly. Facts you may use: the museum opens at nine, "
          "the harbour ferry leaves every hour, tickets cost four euros, the old town is closed to cars. ") * 4


def _engine(slots: int) -> BatchedEngine:
    engine = BatchedEngine(embedded_model_path(), slots=slots, ctx_per_slot=1024, n_threads=2)
    engine.start()
    return engine


@pytest.fixture(scope="module")
def engine():
    engine = _engine(slots=3)
    yield engine
    engine.stop()


def _prompt(engine: BatchedEngine, question: str) -> list[int]:
    bos, eos = engine.special_token_texts()
    prompter = ChatPrompter(engine.metadata(), bos_token=bos, eos_token=eos)
    return engine.tokenize_prompt(prompter.render([{"role": "system", "content": SYSTEM},
                                                   {"role": "user", "content": question}]))


async def _answer(engine: BatchedEngine, tokens: list[int], max_tokens: int = 12) -> str:
    handle = engine.submit(tokens, SamplingParams(max_tokens=max_tokens))
    text = []
    while True:
        event = await handle.events.get()
        assert event.error is None, event.error
        text.append(event.text)
        if event.finish_reason:
            return "".join(text)


def test_a_repeated_prefix_is_read_once_and_answers_as_a_cold_cache_does(engine):
    first, second = _prompt(engine, "When does the museum open?"), _prompt(engine, "How much is a ticket?")
    shared = next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b)
    assert shared > 150, "the system prompt is the bulk of both prompts"
    asyncio.run(_answer(engine, first))
    reused_before = engine.prefix_tokens_reused
    warm = asyncio.run(_answer(engine, second))
    assert engine.prefix_tokens_reused - reused_before == shared
    cold_engine = _engine(slots=1)
    try:
        cold = asyncio.run(_answer(cold_engine, second))
        assert cold_engine.prefix_tokens_reused == 0
    finally:
        cold_engine.stop()
    assert warm == cold


def test_concurrent_requests_share_the_prefix_of_a_running_one(engine):
    prompts = [_prompt(engine, f"Question {i}: is the old town open to cars?") for i in range(3)]
    prompts[0] = _prompt(engine, "Tell me about the ferry.")  # reads the system prompt first

    async def together() -> list[str]:
        first = asyncio.ensure_future(_answer(engine, prompts[0], max_tokens=40))
        await asyncio.sleep(0.5)  # the first has read its prompt and is generating
        rest = await asyncio.gather(*(_answer(engine, p) for p in prompts[1:]))
        return [await first, *rest]

    reused_before = engine.prefix_tokens_reused
    answers = asyncio.run(together())
    assert all(answers)
    # each later request started after at least the system prompt (more if it found a longer match)
    assert engine.prefix_tokens_reused - reused_before >= 2 * 150


def test_an_identical_prompt_still_reads_its_last_token(engine):
    tokens = _prompt(engine, "Is the ferry hourly?")
    first = asyncio.run(_answer(engine, tokens))
    reused_before = engine.prefix_tokens_reused
    again = asyncio.run(_answer(engine, tokens))
    assert engine.prefix_tokens_reused - reused_before == len(tokens) - 1  # logits need one token read
    assert again == first


def test_a_shared_decode_lock_holds_the_engine_until_released(tmp_path):
    """Two workers on one machine take turns per decode step (engine/decode_lock.py): while another
    process holds the lock, this engine reads and writes nothing; once released, it answers."""
    from tandem.services.engine.decode_lock import DecodeLock

    lock_path = tmp_path / "decode.lock"
    engine = BatchedEngine(embedded_model_path(), slots=1, ctx_per_slot=512, n_threads=2, decode_lock=lock_path)
    engine.start()
    other_worker = DecodeLock(lock_path)
    try:
        async def scenario() -> None:
            with other_worker:
                handle = engine.submit(engine.tokenize("Hello there", add_bos=True), SamplingParams(max_tokens=4))
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(handle.events.get(), timeout=1.5)
                assert engine.active_count == 1  # admitted, waiting for its first decode step
            while True:
                event = await asyncio.wait_for(handle.events.get(), timeout=60)
                assert event.error is None
                if event.finish_reason:
                    assert event.completion_tokens >= 1
                    return

        asyncio.run(scenario())
    finally:
        other_worker.close()
        engine.stop()
