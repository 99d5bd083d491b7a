"""How `tandem up` gives the cores to two workers (base and modifiers) on one machine: by default
both use every core and take turns per decode step through one lock file; `worker_cores=split`
divides the cores instead; an explicit n_threads wins over both."""

from __future__ import annotations

import json
import os

from tandem.common.manifest import Manifest
from tandem.services.up import UpConfig, plan_services


def _artifacts_with_a_modifier(root):
    (root / "modifiers").mkdir(parents=True)
    (root / "modifiers" / "code.gguf").write_bytes(b"lora")
    Manifest(root).record("code", "modifier", ["modifiers/code.gguf"])
    return root


def _workers(config: UpConfig) -> dict[str, dict]:
    return {s.name: json.loads(s.settings_json) for s in plan_services(config, "t" * 32)
            if s.name in ("base_model", "modifier_worker")}


def test_two_workers_share_every_core_through_one_lock(tmp_path):
    config = UpConfig(artifacts_dir=str(_artifacts_with_a_modifier(tmp_path)), default_bundle=False)
    workers = _workers(config)
    assert set(workers) == {"base_model", "modifier_worker"}
    locks = {w.get("decode_lock") for w in workers.values()}
    assert len(locks) == 1 and None not in locks
    assert all("n_threads" not in w for w in workers.values())  # the engine's default: every core


def test_split_divides_the_cores_and_takes_no_lock(tmp_path):
    config = UpConfig(artifacts_dir=str(_artifacts_with_a_modifier(tmp_path)), default_bundle=False,
                      worker_cores="split")
    workers = _workers(config)
    assert all("decode_lock" not in w for w in workers.values())
    assert all(w["n_threads"] == max(1, len(os.sched_getaffinity(0)) // 2) for w in workers.values())


def test_one_worker_needs_no_lock(tmp_path):
    workers = _workers(UpConfig(artifacts_dir=str(tmp_path / "none"), default_bundle=False))
    assert list(workers) == ["base_model"]
    assert "decode_lock" not in workers["base_model"]
