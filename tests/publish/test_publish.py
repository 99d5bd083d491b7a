"""`tandem publish`: the Hub-ready folder (files checked against the manifest, model card with the
measured figures, a folder `tandem up` serves) and the upload through huggingface_hub's HfApi
against a local stand-in of the Hub's HTTP API."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from openai import OpenAI

from tandem.cli import main
from tandem.common.manifest import Manifest, sha256_file
from tandem.common.model_files import resolve_model_path
from tandem.pipeline.publish import PublishError, publish, upload
from tandem.training.build import train_escalation
from tests.publish.hub_server import local_hub

ROOT = Path(__file__).resolve().parents[2]


def small_build(artifacts: Path, base_bytes: bytes | None = None) -> Path:
    """A build: a base GGUF (the embedded one unless bytes are given) and the escalation models
    fitted on the committed labels (real manifest entries with figures and trained_on)."""
    base = artifacts / "base" / "model.gguf"
    base.parent.mkdir(parents=True)
    if base_bytes is None:
        shutil.copyfile(resolve_model_path("embedded"), base)
    else:
        base.write_bytes(base_bytes)
    Manifest(artifacts).record("base", "base", [base], base_sha256=sha256_file(base),
                               metrics={"perplexity": 17.5, "size_bytes": base.stat().st_size})
    train_escalation(ROOT / "docs" / "escalation", artifacts)
    Manifest(artifacts).record("scratch", "report", [base], servable=False)  # not published
    return artifacts


def test_folder_holds_the_served_files_a_manifest_and_a_card(tmp_path):
    artifacts = small_build(tmp_path / "artifacts", b"GGUF not really a model")
    out = publish(artifacts, tmp_path / "out", "tandem-test")
    published = Manifest(out).read().artifacts
    assert set(published) == {"base", "escalation-difficulty", "escalation-answer-confidence",
                              "escalation-thresholds"}
    for name, entry in published.items():
        for index, record in enumerate(entry.files):
            assert Manifest(out).verified_path(name, index).is_file()
            assert record.sha256 == sha256_file(artifacts / record.path)
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and "gguf" in card.data.tags
    metrics = Manifest(artifacts).entry("escalation-answer-confidence").metrics
    if "auroc_heldout" in metrics:  # one model for all domains
        name, auroc = "auroc_heldout", metrics["auroc_heldout"]
    else:  # one model per domain: dotted names
        domain = next(d for d, m in metrics.items() if isinstance(m, dict) and "auroc_heldout" in m)
        name, auroc = f"{domain}.auroc_heldout", metrics[domain]["auroc_heldout"]
    assert f"| escalation-answer-confidence | escalation | {name} | {auroc:.4g} |" in card.text
    assert "| base | base | perplexity | 17.5 |" in card.text
    assert "## Intended use" in card.text and "## Training data" in card.text
    seen = Manifest(artifacts).entry("escalation-difficulty").extra["trained_on"]  # item ids per dataset
    dataset, ids = next(iter(seen.items()))
    assert f"{dataset} ({len(set(ids))} items)" in card.text
    assert not (out / "stages").exists()


def test_a_build_without_base_or_with_a_changed_file_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty"
    Manifest(empty).record("x", "report", [_write(empty / "r.md")], servable=False)
    with pytest.raises(PublishError, match="lists no base model"):
        publish(empty, tmp_path / "out1", "x")
    artifacts = small_build(tmp_path / "artifacts", b"GGUF v1")
    (artifacts / "base" / "model.gguf").write_bytes(b"GGUF v2")
    assert main(["publish", "--artifacts", str(artifacts), "--out", str(tmp_path / "out2")]) == 2
    assert "does not match its sha256" in capsys.readouterr().err


def _write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("report\n")
    return path


def test_upload_goes_through_hfapi_to_the_hub_api(tmp_path, monkeypatch):
    import huggingface_hub.constants

    # the suite runs with HF_HUB_OFFLINE=1 (no hub here); this test's hub is local
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    artifacts = small_build(tmp_path / "artifacts", b"GGUF small stand-in base")
    out = publish(artifacts, tmp_path / "out", "tandem-test")
    with local_hub(token="hf_test_token") as (endpoint, hub):
        url = upload(out, "acme/tandem-test", token="hf_test_token", endpoint=endpoint)
        assert url.startswith(f"{endpoint}/acme/tandem-test/commit/")
        files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert hub.repos["acme/tandem-test"] == files
        assert hub.private["acme/tandem-test"] is True
        # again into the existing repo (409 on create is fine), through the command line
        assert main(["publish", "--artifacts", str(artifacts), "--out", str(out), "--repo", "acme/tandem-test",
                     "--token", "hf_test_token", "--endpoint", endpoint]) == 0
        assert len(hub.commits) == 2 and hub.commits[0]["summary"] == "tandem publish: out"
        with pytest.raises(Exception, match="401"):
            upload(out, "acme/other", token="wrong", endpoint=endpoint)


@pytest.mark.slow
def test_tandem_up_serves_the_published_folder(tmp_path):
    from tandem.training.modifiers.task_eval import serving

    out = publish(small_build(tmp_path / "artifacts"), tmp_path / "out", "tandem-test")
    with serving(out) as url:
        client = OpenAI(base_url=url, api_key="unused")
        reply = client.chat.completions.create(model="tandem-base", max_tokens=8,
                                               messages=[{"role": "user", "content": "Say hello."}])
    assert reply.choices[0].message.content
