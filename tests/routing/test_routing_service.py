"""The trained router inside the real services: `tandem up` with the artifact routes `auto` by it."""

from __future__ import annotations

import httpx
import pytest
from routing_helpers import start_tandem_up, stop

from tandem.common.wire import ChatCompletionRequest
from tandem.services.routing.base import RouterLoadError
from tandem.services.routing.registry import build_router

PROMPTS = ["kubectl: restart every pod in the payments namespace",
           "Write a Python function that reverses a string.",
           "If 3 pencils cost 45 cents, how much do 10 pencils cost?",
           "What's a nice way to say no to a party invitation?"]


@pytest.fixture(scope="module")
def served(trained_router):
    proc, url = start_tandem_up(trained_router.artifacts_dir)
    yield url
    stop(proc)


def test_route_endpoint_answers_with_the_trained_model(served, trained_router):
    router = build_router("onnx", artifacts_dir=trained_router.artifacts_dir)
    for text in PROMPTS:
        body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
        decision = httpx.post(f"{served}/v1/route", json=body, timeout=30).json()
        expected = router.route(ChatCompletionRequest.model_validate(body))
        assert decision["reason"] == expected.reason and decision["reason"].startswith("onnx:")
        assert decision["domain"] == expected.domain
        assert decision["probabilities"] == pytest.approx(expected.probabilities, abs=1e-6)


def test_auto_chat_completion_is_routed_by_the_trained_model(served, trained_router):
    router = build_router("onnx", artifacts_dir=trained_router.artifacts_dir)
    body = {"model": "auto", "messages": [{"role": "user", "content": PROMPTS[0]}], "max_tokens": 4,
            "temperature": 0}
    response = httpx.post(f"{served}/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    assert response.headers["x-tandem-domain"] == router.route(ChatCompletionRequest.model_validate(body)).domain
    assert response.headers["x-tandem-route"] == "tandem-base"  # no modifier is built in this folder


def test_router_service_refuses_to_start_on_a_corrupt_artifact(trained_router, tmp_path):
    import shutil

    from tandem.services.router.app import create_app
    from tandem.services.router.settings import RouterSettings

    shutil.copytree(trained_router.artifacts_dir, tmp_path / "a")
    heads = tmp_path / "a" / "router" / "heads.npz"
    heads.write_bytes(heads.read_bytes()[:-10])
    with pytest.raises(RouterLoadError, match="sha256"):
        create_app(RouterSettings(domain_router="onnx", artifacts_dir=str(tmp_path / "a")))
