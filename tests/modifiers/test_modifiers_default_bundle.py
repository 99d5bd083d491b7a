"""The default bundle: what `python -m tandem.pipeline.default_bundle` keeps, and what `tandem up` serves from it
when no artifacts folder is built (a fresh clone's `make run`)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tandem.common.manifest import Manifest
from tandem.common.served_artifacts import BUNDLED_ARTIFACTS
from tandem.pipeline.default_bundle import make_bundle


def _artifacts(root: Path) -> tuple[Path, Path]:
    modifiers, router = root / "mods", root / "router-art"
    for name, servable in (("code", True), ("reasoning", False)):
        path = modifiers / "modifiers" / f"{name}.gguf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode() * 100)
        Manifest(modifiers).record(name, "modifier", [path], base_sha256="b" * 64, servable=servable,
                                   extra={"trained_on": {"mbpp": ["train", "dev"]}, "reason": "gate"})
    (router / "router").mkdir(parents=True)
    files = []
    for name, body in (("encoder.onnx", b"x" * 1000), ("tokenizer.json", b"{}"), ("heads.npz", b"h"),
                       ("router.json", json.dumps({"encoder_source": "package", "encoder_sha256": "e" * 64}).encode())):
        (router / "router" / name).write_bytes(body)
        files.append(router / "router" / name)
    Manifest(router).record("router", "router", files)
    return modifiers, router


def test_bundle_keeps_servable_modifiers_and_the_router_without_its_packaged_encoder(tmp_path):
    modifiers, router = _artifacts(tmp_path)
    info = make_bundle(modifiers, router, tmp_path / "bundle", ["tandem build ..."], max_mb=40)
    assert info["modifiers"] == ["code"] and info["refused"] == {"reasoning": "gate"}
    bundle = Manifest(tmp_path / "bundle")
    assert set(bundle.read().artifacts) == {"code", "router"}
    assert bundle.entry("code").extra["trained_on"] == {"mbpp": ["train", "dev"]}  # the eval guard reads it
    assert bundle.entry("code").base_sha256 == "b" * 64
    assert sorted(Path(f.path).name for f in bundle.entry("router").files) == ["heads.npz", "router.json",
                                                                             "tokenizer.json"]
    assert not (tmp_path / "bundle" / "router" / "encoder.onnx").exists()
    assert json.loads((tmp_path / "bundle" / "BUNDLE.json").read_text())["commands"] == ["tandem build ..."]


def test_a_bundle_over_the_size_cap_is_refused_and_the_old_one_kept(tmp_path):
    modifiers, router = _artifacts(tmp_path)
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "keep").write_text("old")
    with pytest.raises(SystemExit, match="over --max-mb"):
        make_bundle(modifiers, router, tmp_path / "bundle", [], max_mb=0.0001)
    assert (tmp_path / "bundle" / "keep").read_text() == "old"


@pytest.mark.skipif(not (BUNDLED_ARTIFACTS / "BUNDLE.json").is_file(), reason="no default bundle committed")
def test_tandem_up_without_artifacts_serves_the_bundle_and_routes_code_and_tools_to_their_modifiers(tmp_path):
    from tests.conftest import start_tandem_up, stop_tandem_up

    bundled = json.loads((BUNDLED_ARTIFACTS / "BUNDLE.json").read_text())["modifiers"]
    running = start_tandem_up(tmp_path / "nothing-built", "default_bundle=true")
    try:
        client = OpenAI(base_url=f"{running.url}/v1", api_key="unused")
        served = {m.id for m in client.models.list().data}
        assert {f"tandem-{name}" for name in bundled} <= served and {"auto", "tandem-base"} <= served
        reply = client.chat.completions.with_raw_response.create(
            model="auto", max_tokens=8,
            messages=[{"role": "user", "content": "Write a Python function that reverses a string."}])
        expected = "tandem-code" if "code" in bundled else "tandem-base"
        assert reply.headers["x-tandem-route"] == expected
        weather = {"type": "function", "function": {
            "name": "get_weather", "description": "Current weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
        ask = [{"role": "user", "content": "Get the current weather in Paris."}]
        decision = httpx.post(f"{running.url}/v1/route", timeout=30,
                              json={"model": "auto", "messages": ask, "tools": [weather]}).json()
        assert decision["domain"] == "automation"  # the bundled router, whether or not a modifier is served
        reply = client.chat.completions.with_raw_response.create(model="auto", max_tokens=48, tools=[weather],
                                                                 messages=ask, temperature=0)
        if "automation" in bundled:  # the modifier's call fits, so the tool guard passes it on
            assert reply.headers["x-tandem-route"] == "tandem-automation"
            [call] = reply.parse().choices[0].message.tool_calls
            assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
        else:
            assert reply.headers["x-tandem-route"] == "tandem-base"
    finally:
        stop_tandem_up(running)
