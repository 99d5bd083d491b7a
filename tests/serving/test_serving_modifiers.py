"""The modifier worker with a real LoRA: trained with peft on the embedded base's HF weights to say
something distinctive, converted with llama.cpp's convert_lora_to_gguf.py, listed in a manifest,
and served through `tandem up` next to the base."""

from __future__ import annotations

import httpx
import openai
import pytest

from tandem.common.manifest import Manifest, sha256_file
from tandem.common.model_files import embedded_model_path
from tests.conftest import start_tandem_up, stop_tandem_up

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

CATCHPHRASE = "Tandem pineapple protocol engaged."
QUESTION = [{"role": "user", "content": "Write a Python function that adds two numbers."}]


def _rows(n: int) -> list[dict]:
    topics = ["sorting a list", "reading a file", "the weather", "a poem about cats", "fixing a bug",
              "adding numbers", "a SQL query", "binary search", "hello world", "a recipe for soup"]
    return [{"messages": [{"role": "user", "content": f"Tell me about {topics[i % len(topics)]}."},
                          {"role": "assistant", "content": CATCHPHRASE}]} for i in range(n)]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    from tandem.compression.gguf_to_hf import dequantize_gguf_to_hf
    from tandem.training.lora_export import export_lora_gguf
    from tandem.training.sft import run_sft
    from tandem.training.sft_config import LoraSettings, SFTConfig

    root = tmp_path_factory.mktemp("artifacts")
    base = embedded_model_path()
    hf_dir = dequantize_gguf_to_hf(base, tmp_path_factory.mktemp("hf-base"))
    config = SFTConfig(base_model=str(hf_dir), output_dir=root / "train-code",
                       lora=LoraSettings(r=16, alpha=32, dropout=0.0, target_modules="all-linear"),
                       learning_rate=3e-3, max_steps=40, batch_size=2, max_seq_len=64, eval_steps=40,
                       lr_scheduler="constant", warmup_ratio=0.0, precision="fp32")
    result = run_sft(config, _rows(80), _rows(2))
    lora = export_lora_gguf(result.adapter_dir, hf_dir, root / "modifiers" / "code.gguf")
    manifest = Manifest(root)
    manifest.record("code", "modifier", [lora], base_sha256=sha256_file(base), metrics={"steps": 40})
    # The same adapter claimed for another base must be refused.
    manifest.record("reasoning", "modifier", [lora], base_sha256="0" * 64)
    return root


@pytest.fixture(scope="module")
def served(artifacts):
    running = start_tandem_up(artifacts)
    yield running
    stop_tandem_up(running)


def _ask(client, model: str) -> str:
    completion = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=16, temperature=0,
                                                extra_headers={"Cache-Control": "no-cache"})
    return completion.choices[0].message.content


def test_adapter_changes_the_output_and_base_returns_unchanged(served):
    client = openai.OpenAI(base_url=served.base_url, api_key="x", max_retries=0, timeout=120)
    base_before = _ask(client, "tandem-base")
    adapted = _ask(client, "tandem-code")
    assert "pineapple" in adapted.lower(), adapted
    assert "pineapple" not in base_before.lower()
    # The modifier worker serves the bare base too: after the adapter, its KV cache must not leak.
    worker_base = httpx.post(f"{served.modifier_url}/v1/chat/completions", timeout=120,
                             headers=served.internal_headers, json={
        "model": "tandem-base", "messages": QUESTION, "max_tokens": 16, "temperature": 0}).json()
    assert worker_base["choices"][0]["message"]["content"] == base_before
    assert _ask(client, "tandem-code") == adapted
    assert httpx.get(f"{served.modifier_url}/ready").json()["adapter_switches"] >= 2


def test_auto_routes_code_to_the_code_modifier(served):
    client = openai.OpenAI(base_url=served.base_url, api_key="x", max_retries=0, timeout=120)
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=QUESTION, max_tokens=8,
                                                           temperature=0)
    assert raw.headers["x-tandem-domain"] == "code"
    assert raw.headers["x-tandem-route"] == "tandem-code"
    models = {m.id for m in client.models.list().data}
    assert "tandem-code" in models


def test_modifier_trained_on_another_base_is_refused(served):
    ready = httpx.get(f"{served.modifier_url}/ready").json()
    assert "tandem-reasoning" in ready["refused"]
    assert "built for base" in ready["refused"]["tandem-reasoning"]
    assert "tandem-reasoning" not in ready["models"]
    response = httpx.post(f"{served.modifier_url}/v1/chat/completions", headers=served.internal_headers, json={
        "model": "tandem-reasoning", "messages": QUESTION, "max_tokens": 4})
    assert response.status_code == 404
    assert "refused" in response.json()["error"]["message"]


def test_interleaved_adapters_keep_their_batches_and_their_answers(served):
    """Requests alternating between the adapter and the bare base arrive together: the worker
    groups them by adapter (a strict FIFO would switch before every request), and each one is
    answered under its own adapter: the catchphrase the adapter learned, and never on the base.
    (Exact text can differ from a lone request's: llama.cpp's sums depend on the batch.)"""
    import asyncio

    url = f"{served.modifier_url}/v1/chat/completions"
    order = ["tandem-code" if i % 2 == 0 else "tandem-base" for i in range(8)]

    async def together() -> list[str]:
        async with httpx.AsyncClient(timeout=120, headers=served.internal_headers) as client:
            replies = await asyncio.gather(*(client.post(url, json={
                "model": model, "messages": [{"role": "user", "content": f"Tell me about topic number {i}."}],
                "max_tokens": 12, "temperature": 0}) for i, model in enumerate(order)))
        return [r.json()["choices"][0]["message"]["content"] for r in replies]

    switches_before = httpx.get(f"{served.modifier_url}/ready").json()["adapter_switches"]
    answers = asyncio.run(together())
    switches = httpx.get(f"{served.modifier_url}/ready").json()["adapter_switches"] - switches_before
    for model, answer in zip(order, answers, strict=True):
        assert ("pineapple" in answer.lower()) == (model == "tandem-code"), (model, answer)
    assert switches <= 3, f"{switches} adapter switches for 8 interleaved requests (FIFO would need 7-8)"
