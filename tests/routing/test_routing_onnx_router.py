"""The served router: same answers as training measured, no torch, clear errors for bad artifacts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tandem.common.wire import ChatCompletionRequest
from tandem.services.routing.base import RouterLoadError
from tandem.services.routing.registry import build_router
from tandem.training.routing.dataset import load_handwritten

DOMAINS = ["code", "reasoning", "automation", "general"]


def _request(text: str, tools: list | None = None) -> ChatCompletionRequest:
    return ChatCompletionRequest(model="auto", messages=[{"role": "system", "content": "Be brief."},
                                                         {"role": "user", "content": text}], tools=tools)


def test_served_router_reproduces_the_reported_hand_written_accuracy(trained_router):
    router = build_router("onnx", artifacts_dir=trained_router.artifacts_dir, domains=DOMAINS)
    examples = load_handwritten(trained_router.config.handwritten)
    decisions = [router.route(_request(ex.text)) for ex in examples]
    accuracy = np.mean([d.domain == ex.domain for d, ex in zip(decisions, examples)])
    assert accuracy == pytest.approx(trained_router.report["evaluations"]["router"]["handwritten"]["accuracy"],
                                     abs=1e-4)
    for decision in decisions:
        assert set(decision.probabilities) == set(DOMAINS)
        assert sum(decision.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        assert decision.confidence == pytest.approx(max(decision.probabilities.values()))
        assert decision.reason in ("onnx:first-stage", "onnx:embedding")


def test_tools_on_the_request_raise_the_automation_probability(trained_router):
    router = build_router("onnx", artifacts_dir=trained_router.artifacts_dir, domains=DOMAINS, cascade=False)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    text = "What's the weather going to be like in Paris tomorrow?"
    without = router.route(_request(text)).probabilities["automation"]
    assert router.route(_request(text, tools)).probabilities["automation"] > without


def test_serving_path_imports_no_training_libraries(trained_router):
    code = ("import sys\nfrom tandem.common.wire import ChatCompletionRequest\n"
            "from tandem.services.routing.registry import build_router\n"
            f"r = build_router('onnx', artifacts_dir={str(trained_router.artifacts_dir)!r})\n"
            "d = r.route(ChatCompletionRequest(model='auto', messages=[{'role': 'user', 'content': 'ls -la'}]))\n"
            "heavy = sorted(m for m in ('torch', 'sklearn', 'transformers', 'scipy') if m in sys.modules)\n"
            "print(d.domain, heavy)\nassert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def artifact_copy(trained_router, tmp_path):
    shutil.copytree(trained_router.artifacts_dir, tmp_path / "a")
    return tmp_path / "a"


def test_missing_manifest_or_entry_is_a_clear_load_error(tmp_path):
    with pytest.raises(RouterLoadError, match="lists no artifact named 'router'.*tandem router train"):
        build_router("onnx", artifacts_dir=tmp_path, domains=DOMAINS)
    with pytest.raises(RouterLoadError, match="needs an artifacts folder"):
        build_router("onnx", artifacts_dir=None, domains=DOMAINS)


def test_corrupt_encoder_fails_the_sha256_check(artifact_copy):
    encoder = artifact_copy / "router" / "encoder.onnx"
    data = bytearray(encoder.read_bytes())
    data[len(data) // 2] ^= 0xFF
    encoder.write_bytes(bytes(data))
    with pytest.raises(RouterLoadError, match="does not match its sha256"):
        build_router("onnx", artifacts_dir=artifact_copy, domains=DOMAINS)


def test_missing_file_is_named(artifact_copy):
    (artifact_copy / "router" / "heads.npz").unlink()
    with pytest.raises(RouterLoadError, match="heads.npz is listed in the manifest but missing"):
        build_router("onnx", artifacts_dir=artifact_copy, domains=DOMAINS)


def test_truncated_file_recorded_as_is_fails_to_load_not_mid_request(artifact_copy):
    from tandem.common.manifest import Manifest

    encoder = artifact_copy / "router" / "encoder.onnx"
    encoder.write_bytes(encoder.read_bytes()[:4096])
    entry = Manifest(artifact_copy).entry("router")
    Manifest(artifact_copy).record("router", "router", [artifact_copy / f.path for f in entry.files])
    with pytest.raises(RouterLoadError, match="cannot be loaded"):
        build_router("onnx", artifacts_dir=artifact_copy, domains=DOMAINS)


def test_domains_the_service_does_not_serve_are_refused(artifact_copy):
    with pytest.raises(RouterLoadError, match="configured for"):
        build_router("onnx", artifacts_dir=artifact_copy, domains=["code", "general"])
    meta = artifact_copy / "router" / "router.json"
    assert json.loads(meta.read_text())["domains"] == DOMAINS


def test_router_eval_command_scores_the_artifact_and_the_keyword_baseline(trained_router, capsys):
    from routing_helpers import RECIPE

    from tandem.cli import main

    assert main(["router", "eval", "--config", str(RECIPE), f"artifacts_dir={trained_router.artifacts_dir}"]) == 0
    scores = json.loads(capsys.readouterr().out)
    reported = trained_router.report["evaluations"]
    assert scores["onnx"]["handwritten"] == reported["router"]["handwritten"]["accuracy"]
    assert scores["onnx"]["real_test"] == reported["router"]["real_test"]["accuracy"]
    assert scores["keywords"]["handwritten"] == reported["keywords"]["handwritten"]["accuracy"]


def _without_encoder(artifact_copy):
    """The router entry re-recorded without encoder.onnx, as the default bundle ships it."""
    from tandem.common.manifest import Manifest

    manifest = Manifest(artifact_copy)
    entry = manifest.entry("router")
    kept = [artifact_copy / f.path for f in entry.files if not f.path.endswith("encoder.onnx")]
    (artifact_copy / "router" / "encoder.onnx").unlink()
    manifest.record("router", "router", kept, config=entry.config, metrics=entry.metrics, extra=entry.extra)


def test_router_without_its_encoder_file_takes_the_packaged_one(artifact_copy, trained_router):
    """A router trained on the packaged encoder serves from the installed package's file."""
    reference = build_router("onnx", artifacts_dir=trained_router.artifacts_dir, domains=DOMAINS)
    _without_encoder(artifact_copy)
    served = build_router("onnx", artifacts_dir=artifact_copy, domains=DOMAINS)
    for text in ("Write a Python function that reverses a string.", "hi", "Plan a cron job that backs up /etc"):
        assert np.allclose(served.probabilities(text, None)[0], reference.probabilities(text, None)[0])


def test_a_different_packaged_encoder_is_refused(artifact_copy):
    meta_path = artifact_copy / "router" / "router.json"
    meta = json.loads(meta_path.read_text())
    meta["encoder_sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    from tandem.common.manifest import Manifest

    manifest = Manifest(artifact_copy)
    entry = manifest.entry("router")
    manifest.record("router", "router", [artifact_copy / f.path for f in entry.files], extra=entry.extra)
    _without_encoder(artifact_copy)
    with pytest.raises(RouterLoadError, match="not the encoder the router was trained with"):
        build_router("onnx", artifacts_dir=artifact_copy, domains=DOMAINS)
