"""The base recipe reads several data files and carries what they were made from into its adapter's
manifest entries (`trained_on`); the contamination guard sees nested manifests; the merged base
is the base plus the adapter's delta."""

from __future__ import annotations

from pathlib import Path

from training_samples import chat_rows, write_jsonl

from tandem.cli import main
from tandem.common.manifest import Manifest
from tandem.eval.contamination import contaminated, trained_ids
from tandem.training.merge import merge_adapter

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "training" / "base_qlora.yaml"


def test_base_sft_records_trained_on_of_its_data_and_merges(tmp_path, tiny_llama_dir):
    import torch
    from transformers import AutoModelForCausalLM

    curated_dir, distilled_dir = tmp_path / "curated", tmp_path / "distilled"
    curated_dir.mkdir()
    distilled_dir.mkdir()
    curated = write_jsonl(curated_dir / "curated.jsonl", chat_rows(20))  # a user's file: no manifest
    distilled = write_jsonl(distilled_dir / "sft.jsonl", chat_rows(10, offset=100))
    # distill's manifest records the eval items its teacher was shown (dev ids of gsm8k)
    Manifest(distilled_dir).record("distilled-data", "dataset", [distilled], servable=False,
                                   extra={"trained_on": {"gsm8k": ["gsm8k-dev-1", "gsm8k-dev-2"]}})
    artifacts = tmp_path / "artifacts"
    out = artifacts / "training" / "base"
    code = main(["train", "base", "--config", str(SHIPPED), f"data.train=[{curated},{distilled}]",
                 "data.val_fraction=0.2", f"sft.output_dir={out}", f"sft.base_model={tiny_llama_dir}",
                 "sft.max_steps=2", "sft.eval_steps=2", "sft.max_seq_len=128", "sft.batch_size=2",
                 "sft.grad_accum=1", "sft.learning_rate=5e-3", "sft.lora.r=8", "axolotl.check_schema=false",
                 "export_gguf=false"])
    assert code == 0
    metrics = Manifest(out).entry("adapter").metrics
    assert metrics["train_rows"] + metrics["eval_rows"] == 30  # both files were read
    assert Manifest(out).entry("adapter").extra["trained_on"] == {"gsm8k": ["gsm8k-dev-1", "gsm8k-dev-2"]}

    # the guard reads the nested manifest under the artifacts folder
    trained = trained_ids(artifacts)
    assert contaminated("gsm8k", ["gsm8k-dev-1", "gsm8k-test-9"], trained) == {
        "gsm8k-dev-1": ["training/base:adapter"]}

    merged = merge_adapter(str(tiny_llama_dir), out / "adapter", tmp_path / "merged",
                           Manifest(out).entry("adapter").extra["trained_on"])
    assert Manifest(merged).entry("merged-base").extra["trained_on"]["gsm8k"] == ["gsm8k-dev-1", "gsm8k-dev-2"]
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    tuned = AutoModelForCausalLM.from_pretrained(merged)
    changed = [n for n, p in tuned.state_dict().items() if not torch.equal(p, base.state_dict()[n])]
    assert changed and all(n.endswith("proj.weight") for n in changed)  # the LoRA targets, nothing else
