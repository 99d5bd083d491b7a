"""`tandem escalation train` and `calibrate` end to end on labels with a known signal: the models
find it on held-out rows, and the threshold, curve, PNG and manifest entries land in the artifacts."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from tandem.common.manifest import Manifest
from tandem.common.wire import ChatCompletionRequest
from tandem.escalation.answers import Answer
from tandem.escalation.labels import LabelRow, write_jsonl
from tandem.escalation.models import ANSWER_ENTRY, DIFFICULTY_ENTRY, THRESHOLDS_ENTRY
from tandem.escalation.policies import EscalationContext, build_policy

HARD = ["Prove that the integral of {a} x^3 dx over [0, {b}] equals a closed form and compute the remainder.",
        "A train leaves at {a}:00 going {b} km/h; how many minutes until it meets a second train? Solve it."]
EASY = ["What color is the sky on a clear day? ({a})", "Say hello to {b} friends."]


def rows(n: int, seed: int, split: str) -> list[LabelRow]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        fails = rng.random() < 0.5
        text = rng.choice(HARD if fails != (rng.random() < 0.1) else EASY).format(a=rng.randint(2, 99),
                                                                                 b=rng.randint(2, 99))
        mean = -1.5 if fails else -0.3
        logprobs = [min(0.0, rng.gauss(mean, 0.4)) for _ in range(rng.randint(3, 12))]
        out.append(LabelRow(suite="gsm8k", id=f"{split}-{i}", split=split,
                            messages=[{"role": "user", "content": text}], response="...", score=float(not fails),
                            fails=fails, token_logprobs=logprobs, completion_tokens=len(logprobs)))
    return out


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("escalation")
    write_jsonl(root / "train.jsonl", rows(240, 1, "train"))
    write_jsonl(root / "dev.jsonl", rows(120, 2, "dev"))
    out = root / "artifacts"
    for step in (["train", "--train", root / "train.jsonl", "--heldout", root / "dev.jsonl"],
                 ["calibrate", "--heldout", root / "dev.jsonl", "--target", "quality=0.8"]):
        result = subprocess.run([sys.executable, "-m", "tandem.cli", "escalation", *map(str, step),
                                 "--artifacts", "artifacts"], cwd=root, capture_output=True, text=True,
                                timeout=600)  # a relative artifacts folder, as users pass it
        assert result.returncode == 0, result.stderr
    return out


def test_models_find_the_signal_on_held_out_rows(artifacts):
    report = json.loads((artifacts / "escalation" / "train_report.json").read_text())
    assert report["difficulty"]["auroc_heldout"] > 0.8
    assert report["answer_confidence"]["auroc_heldout"] > 0.8
    assert report["answer_confidence"]["ece_heldout"] < 0.2
    assert report["difficulty"]["n_heldout"] == 120


def test_calibration_writes_threshold_curve_png_and_manifest(artifacts):
    manifest = Manifest(artifacts)
    for entry in (DIFFICULTY_ENTRY, ANSWER_ENTRY, THRESHOLDS_ENTRY):
        assert manifest.entry(entry).kind == "escalation"
        manifest.verified_path(entry)
    assert manifest.entry(DIFFICULTY_ENTRY).extra["trained_on"]["gsm8k"][0] == "train-0"
    png = artifacts / "escalation" / "curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    calibration = json.loads((artifacts / "escalation" / "calibration.json").read_text())["report"]
    assert "gold answers" in calibration["strong_source"]
    for policy in calibration["policies"].values():
        assert policy["pgr_at_threshold"] >= 0.8
        assert policy["apgr"] > 0.6
        cpt = [policy["cpt"][k] for k in ("50%", "80%", "95%")]
        assert cpt == sorted(cpt)
        assert policy["detection_rate"] > policy["false_escalation_rate"]


def test_policies_load_the_calibrated_thresholds(artifacts):
    thresholds = json.loads((artifacts / "escalation" / "thresholds.json").read_text())["thresholds"]
    difficulty = build_policy("difficulty", None, str(artifacts))
    assert difficulty.threshold == thresholds["difficulty"]
    hard = ChatCompletionRequest(model="auto", messages=[{"role": "user", "content": HARD[0].format(a=3, b=7)}])
    easy = ChatCompletionRequest(model="auto", messages=[{"role": "user", "content": EASY[0].format(a=3, b=7)}])
    assert difficulty.judge(EscalationContext(hard)).score > difficulty.judge(EscalationContext(easy)).score
    answer = build_policy("answer_confidence", None, str(artifacts))
    assert answer.judge(EscalationContext(easy)) is None, "no logprobs, no verdict"
    unsure = answer.judge(EscalationContext(easy, answer=Answer(text="...", token_logprobs=[-2.0, -1.8, -2.5])))
    sure = answer.judge(EscalationContext(easy, answer=Answer(text="...", token_logprobs=[-0.1, -0.05, -0.2])))
    assert unsure.escalate and not sure.escalate


def test_models_fitted_on_other_features_are_refused_with_the_fix(artifacts):
    from tandem.escalation.models import AnswerConfidenceModel, DifficultyModel, LogisticWeights
    for name, model in (("answer-confidence", AnswerConfidenceModel), ("difficulty", DifficultyModel)):
        weights = json.loads((artifacts / "escalation" / f"{name}.json").read_text())
        weights["feature_names"] = weights["feature_names"][:5]  # an older version's features
        with pytest.raises(ValueError, match="tandem escalation train"):
            model(LogisticWeights.model_validate(weights))
