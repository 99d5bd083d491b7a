"""`tandem escalation train` and `calibrate` end to end on labels with a known signal: the models
find it on held-out rows, and the threshold, curve, PNG and manifest entries land in the artifacts.
Models are per domain: the reasoning labels fit reasoning's models; exam questions answered by the
base (ARC) stand for no domain, and code labels with too few successes fit none."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from tandem.common.manifest import Manifest, write_json
from tandem.common.wire import ChatCompletionRequest
from tandem.services.escalation.answers import Answer
from tandem.services.escalation.models import ANSWER_ENTRY, DIFFICULTY_ENTRY, THRESHOLDS_ENTRY
from tandem.services.escalation.policies import EscalationContext, build_policy
from tandem.services.routing.base import RouteDecision
from tandem.training.escalation.labels import LabelRow, write_jsonl

HARD = ["Prove that the integral of {a} x^3 dx over [0, {b}] equals a closed form and compute the remainder.",
        "A train leaves at {a}:00 going {b} km/h; how many minutes until it meets a second train? Solve it."]
EASY = ["What color is the sky on a clear day? ({a})", "Say hello to {b} friends."]


def rows(n: int, seed: int, split: str, suite: str = "gsm8k", route: str = "tandem-reasoning",
         fail_rate: float = 0.5) -> list[LabelRow]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        fails = rng.random() < fail_rate
        text = rng.choice(HARD if fails != (rng.random() < 0.1) else EASY).format(a=rng.randint(2, 99),
                                                                                 b=rng.randint(2, 99))
        mean = -1.5 if fails else -0.3
        logprobs = [min(0.0, rng.gauss(mean, 0.4)) for _ in range(rng.randint(3, 12))]
        out.append(LabelRow(suite=suite, id=f"{split}-{i}", split=split, route=route,
                            messages=[{"role": "user", "content": text}], response="...", score=float(not fails),
                            fails=fails, token_logprobs=logprobs, completion_tokens=len(logprobs)))
    return out


def labels(split: str, n: int, seed: int) -> list[LabelRow]:
    """Reasoning labels with a signal, exam questions answered by the base, code labels that all fail."""
    return (rows(n, seed, split) + rows(n // 2, seed + 10, split, "arc_easy", "tandem-base", 0.8)
            + rows(40, seed + 20, split, "mbpp", "tandem-code", 1.0))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("escalation")
    write_jsonl(root / "train.jsonl", labels("train", 240, 1))
    write_jsonl(root / "dev.jsonl", labels("dev", 120, 2))
    out = root / "artifacts"
    for step in (["train", "--train", root / "train.jsonl", "--heldout", root / "dev.jsonl"],
                 ["calibrate", "--heldout", root / "dev.jsonl", "--target", "quality=0.8"]):
        result = subprocess.run([sys.executable, "-m", "tandem.cli", "escalation", *map(str, step),
                                 "--artifacts", "artifacts"], check=False, cwd=root, capture_output=True, text=True,
                                timeout=600)  # a relative artifacts folder, as users pass it
        assert result.returncode == 0, result.stderr
    return out


def test_models_find_the_signal_on_held_out_rows(artifacts):
    report = json.loads((artifacts / "escalation" / "train_report.json").read_text())
    assert set(report["difficulty"]) == set(report["answer_confidence"]) == {"reasoning"}
    assert report["difficulty"]["reasoning"]["auroc_heldout"] > 0.8
    assert report["answer_confidence"]["reasoning"]["auroc_heldout"] > 0.8
    assert report["answer_confidence"]["reasoning"]["ece_heldout"] < 0.2
    assert report["difficulty"]["reasoning"]["n_heldout"] == 120, "only reasoning's own held-out labels"


def test_domains_without_enough_labels_get_no_model(artifacts):
    report = json.loads((artifacts / "escalation" / "train_report.json").read_text())
    assert "0 successes" in report["without_model"]["code"]
    assert "0 labels" in report["without_model"]["automation"]
    assert "general" not in report["difficulty"] and "general" not in report["without_model"]
    assert report["labels_for_no_domain"] == 120, "ARC answered by the base stands for no domain"
    weights = json.loads((artifacts / "escalation" / "difficulty.json").read_text())
    assert set(weights["models"]) == {"reasoning"} and set(weights["without_model"]) == {"code", "automation"}


def test_calibration_writes_threshold_curve_png_and_manifest(artifacts):
    manifest = Manifest(artifacts)
    for entry in (DIFFICULTY_ENTRY, ANSWER_ENTRY, THRESHOLDS_ENTRY):
        assert manifest.entry(entry).kind == "escalation"
        manifest.verified_path(entry)
    trained_on = manifest.entry(DIFFICULTY_ENTRY).extra["trained_on"]
    assert trained_on["gsm8k"][0] == "train-0" and set(trained_on) == {"gsm8k"}
    png = artifacts / "escalation" / "curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    calibration = json.loads((artifacts / "escalation" / "calibration.json").read_text())["report"]
    assert "gold answers" in calibration["strong_source"]
    assert {name: set(by_domain) for name, by_domain in calibration["policies"].items()} == {
        "difficulty": {"reasoning"}, "answer_confidence": {"reasoning"}}
    for policy in (by_domain["reasoning"] for by_domain in calibration["policies"].values()):
        assert policy["n"] == 120, "calibrated on the domain's own held-out labels"
        assert policy["pgr_at_threshold"] >= 0.8
        assert policy["apgr"] > 0.6
        cpt = [policy["cpt"][k] for k in ("50%", "80%", "95%")]
        assert cpt == sorted(cpt)
        assert policy["detection_rate"] > policy["false_escalation_rate"]


def request(text: str, model: str = "tandem-reasoning") -> ChatCompletionRequest:
    return ChatCompletionRequest(model=model, messages=[{"role": "user", "content": text}])


def routed(domain: str) -> RouteDecision:
    return RouteDecision(domain=domain, confidence=0.9, probabilities={domain: 0.9}, reason="test")


def test_policies_load_the_calibrated_thresholds(artifacts):
    thresholds = json.loads((artifacts / "escalation" / "thresholds.json").read_text())["thresholds"]
    difficulty = build_policy("difficulty", None, str(artifacts))
    assert difficulty.threshold == thresholds["difficulty"] and set(thresholds["difficulty"]) == {"reasoning"}
    hard, easy = request(HARD[0].format(a=3, b=7)), request(EASY[0].format(a=3, b=7))
    assert difficulty.judge(EscalationContext(hard)).score > difficulty.judge(EscalationContext(easy)).score
    answer = build_policy("answer_confidence", None, str(artifacts))
    assert answer.judge(EscalationContext(easy)) is None, "no logprobs, no verdict"
    unsure = answer.judge(EscalationContext(easy, answer=Answer(text="...", token_logprobs=[-2.0, -1.8, -2.5])))
    sure = answer.judge(EscalationContext(easy, answer=Answer(text="...", token_logprobs=[-0.1, -0.05, -0.2])))
    assert unsure.escalate and not sure.escalate


def test_a_domain_without_a_model_is_not_judged_by_another_domains(artifacts):
    difficulty = build_policy("difficulty", None, str(artifacts))
    answer = build_policy("answer_confidence", None, str(artifacts))
    hard = HARD[0].format(a=3, b=7)
    unsure = Answer(text="...", token_logprobs=[-2.0, -1.8, -2.5])
    assert difficulty.judge(EscalationContext(request(hard, "auto"), routed("reasoning"))).escalate
    for context in (EscalationContext(request(hard, "auto"), routed("general")),
                    EscalationContext(request(hard, "auto"), routed("code")),
                    EscalationContext(request(hard, "tandem-base"))):
        assert difficulty.judge(context) is None
        context.answer = unsure
        assert answer.judge(context) is None


def test_answer_structure_policy_checks_without_a_model():
    policy = build_policy("answer_structure", None, None)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    ask = ChatCompletionRequest(model="auto", messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=tools)
    good = {"id": "1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    no_city = {"id": "1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    unknown = {"id": "1", "type": "function", "function": {"name": "get_time", "arguments": '{"city": "Oslo"}'}}
    assert not policy.judge(EscalationContext(ask, answer=Answer(text="", tool_calls=[good]))).escalate
    for call in (no_city, unknown):
        verdict = policy.judge(EscalationContext(ask, answer=Answer(text="", tool_calls=[call])))
        assert verdict.escalate and verdict.policy == "answer_structure"
    forced = ask.model_copy(update={"tool_choice": "required"})
    assert policy.judge(EscalationContext(forced, answer=Answer(text="It is sunny."))).escalate
    assert not policy.judge(EscalationContext(ask, answer=Answer(text="It is sunny."))).escalate, \
        "text where a call was optional is not a structure failure"
    action = EscalationContext(ask, routed("automation"), answer=Answer(text="It is sunny."))
    assert policy.judge(action).escalate, "prose instead of a call, for a request routed to automation"
    chat = EscalationContext(ask, routed("general"), answer=Answer(text="It is sunny."))
    assert not policy.judge(chat).escalate
    broken = "```python\ndef f(:\n    return 1\n```"
    assert policy.judge(EscalationContext(request("Write f."), answer=Answer(text=broken))).escalate
    fine = "```python\ndef f():\n    return 1\n```\nHi there!"
    assert not policy.judge(EscalationContext(request("Write f."), answer=Answer(text=fine))).escalate
    assert not policy.judge(EscalationContext(request("hi"), answer=Answer(text="Hello! How can I help?"))).escalate


def test_models_fitted_on_other_features_are_refused_with_the_fix(artifacts):
    from tandem.services.escalation.models import AnswerConfidenceModel, DifficultyModel, DomainWeights
    for name, model in (("answer-confidence", AnswerConfidenceModel), ("difficulty", DifficultyModel)):
        weights = json.loads((artifacts / "escalation" / f"{name}.json").read_text())
        reasoning = weights["models"]["reasoning"]
        reasoning["feature_names"] = reasoning["feature_names"][:5]  # an older version's features
        with pytest.raises(ValueError, match="tandem escalation train"):
            model(DomainWeights.model_validate(weights))


def test_a_model_fitted_for_all_domains_is_refused_with_the_fix(artifacts, tmp_path):
    from tandem.services.escalation.models import load_weights
    weights = json.loads((artifacts / "escalation" / "difficulty.json").read_text())["models"]["reasoning"]
    path = write_json(tmp_path / "escalation" / "difficulty.json", weights)  # the earlier one-model format
    Manifest(tmp_path).record(DIFFICULTY_ENTRY, "escalation", [path])
    with pytest.raises(ValueError, match="per-domain.*tandem escalation train"):
        load_weights(tmp_path, DIFFICULTY_ENTRY)


def test_a_model_judges_only_requests_like_its_labels(artifacts):
    """The reasoning labels offered no tools: a reasoning request with tools is outside them."""
    weights = json.loads((artifacts / "escalation" / "difficulty.json").read_text())["models"]["reasoning"]
    assert weights["tools"] is False
    difficulty = build_policy("difficulty", None, str(artifacts))
    tools = [{"type": "function", "function": {"name": "solve", "parameters": {"type": "object"}}}]
    hard = HARD[0].format(a=3, b=7)
    assert difficulty.judge(EscalationContext(request(hard))) is not None
    with_tools = ChatCompletionRequest(model="tandem-reasoning", messages=[{"role": "user", "content": hard}],
                                       tools=tools)
    assert difficulty.judge(EscalationContext(with_tools)) is None
