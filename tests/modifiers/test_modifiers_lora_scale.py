"""A modifier's LoRA scale: manifest field -> worker -> llama.cpp, in the served version, the task
matrix check of `tandem build`, and the dev-only scale selection rule."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from tandem.common.manifest import ArtifactEntry, Manifest, sha256_file
from tandem.training.modifiers.config import ScaleSelection


def _manifest(tmp_path: Path, scale: float) -> Path:
    base = tmp_path / "base.gguf"
    base.write_bytes(b"base")
    lora = tmp_path / "modifiers" / "automation.gguf"
    lora.parent.mkdir()
    lora.write_bytes(b"lora")
    manifest = Manifest(tmp_path)
    manifest.record("base", "base", [base])
    manifest.record("automation", "modifier", [lora], base_sha256=sha256_file(base), lora_scale=scale)
    return tmp_path


def test_manifest_field_is_typed_and_left_out_at_one(tmp_path):
    root = _manifest(tmp_path, 0.5)
    raw = json.loads((root / "manifest.json").read_text())["artifacts"]
    assert raw["automation"]["lora_scale"] == 0.5
    assert "lora_scale" not in raw["base"]  # 1.0: manifests read and write as before the field
    assert Manifest(root).entry("base").lora_scale == 1.0
    for bad in (0.0, -1.0, 5.0):
        with pytest.raises(ValidationError):
            ArtifactEntry(kind="modifier", files=[], lora_scale=bad)


def test_worker_serves_the_manifest_scale_and_its_version_says_so(tmp_path):
    from tandem.services.worker.model_loading import resolve_served_models
    from tandem.services.worker.settings import WorkerSettings

    root = _manifest(tmp_path, 0.5)
    served = resolve_served_models(WorkerSettings(artifacts_dir=str(root), model_path=str(root / "base.gguf"),
                                                    load_modifiers=True))
    assert served.scale("tandem-automation") == 0.5
    assert served.version("tandem-automation").endswith("x0.5")
    assert served.adapter_key("tandem-automation") == served.adapter_sha256["tandem-automation"] + "x0.5"

    (tmp_path / "one").mkdir()
    root1 = _manifest(tmp_path / "one", 1.0)
    one = resolve_served_models(WorkerSettings(artifacts_dir=str(root1), model_path=str(root1 / "base.gguf"),
                                                  load_modifiers=True))
    assert one.scale("tandem-automation") == 1.0 and "x" not in one.version("tandem-automation")
    assert one.version("tandem-automation") != served.version("tandem-automation")  # the cache keys differ


def test_engine_hands_the_adapter_scale_to_llama_cpp(monkeypatch):
    from tandem.services.engine import batched

    calls = []

    def set_adapters(ctx, adapters, n, scales):
        calls.append((n, None if scales is None else [scales[i] for i in range(n)]))
        return 0

    monkeypatch.setattr(batched.lib, "llama_set_adapters_lora", set_adapters)
    monkeypatch.setattr(batched.lib, "llama_adapter_lora_init", lambda model, path: ctypes.pointer(ctypes.c_void_p(1)))
    monkeypatch.setattr(batched.lib, "llama_memory_clear", lambda memory, data: None)
    monkeypatch.setattr(batched.lib, "llama_get_memory", lambda ctx: None)
    engine = object.__new__(batched.BatchedEngine)  # no model: only the adapter bookkeeping is exercised
    engine._adapters, engine._scales, engine._cached = {}, {}, {}
    engine._cond = batched.threading.Condition()
    engine._model = type("M", (), {"model": None})()
    engine._ctx = type("C", (), {"ctx": None})()
    engine.adapter_switches = 0
    engine.load_adapter("half", "x.gguf", scale=0.5)
    engine.load_adapter("full", "y.gguf")
    engine._switch_adapter("half")
    engine._switch_adapter("full")
    engine._switch_adapter(None)
    assert calls == [(1, [0.5]), (1, [1.0]), (0, None)]
    with pytest.raises(ValueError, match="outside"):
        engine.load_adapter("zero", "z.gguf", scale=0.0)


def _scored_matrix(tmp_path: Path, **fields) -> tuple[Path, dict[str, Path]]:
    """A matrix file that scored one adapter file, with `fields` beside its sha256."""
    lora = tmp_path / "a.gguf"
    lora.write_bytes(b"lora")
    path = tmp_path / "matrix.json"
    path.write_text(json.dumps({"adapters_sha256": {"tandem-automation": sha256_file(lora)}, **fields}))
    return path, {"tandem-automation": lora}


def test_build_refuses_a_matrix_scored_at_another_scale(tmp_path):
    from tandem.training.build import read_task_matrix

    path, adapters = _scored_matrix(tmp_path, adapters_lora_scale={"tandem-automation": 0.5}, matrix={"x": 1})
    assert read_task_matrix(path, adapters, {"tandem-automation": 0.5}) == {"x": 1}
    with pytest.raises(SystemExit, match="scales"):
        read_task_matrix(path, adapters)  # the config serves it at 1.0
    path, adapters = _scored_matrix(tmp_path, matrix={})
    assert read_task_matrix(path, adapters) == {}  # matrices before the field: scored at 1.0
    with pytest.raises(SystemExit, match="scales"):
        read_task_matrix(path, adapters, {"tandem-automation": 0.5})


def test_build_refuses_a_matrix_scored_behind_another_tool_guard(tmp_path):
    from tandem.training.build import read_task_matrix

    path, adapters = _scored_matrix(tmp_path, adapters_tool_fit={"tandem-automation": 0.5}, matrix={"x": 1})
    assert read_task_matrix(path, adapters, None, {"tandem-automation": 0.5}) == {"x": 1}
    with pytest.raises(SystemExit, match="tool-fit"):
        read_task_matrix(path, adapters)  # the config serves it unguarded
    path, adapters = _scored_matrix(tmp_path, matrix={})
    with pytest.raises(SystemExit, match="tool-fit"):
        read_task_matrix(path, adapters, None, {"tandem-automation": 0.5})  # scored before the guard existed
    path, adapters = _scored_matrix(tmp_path, adapters_tool_grounding={"tandem-automation": 0.34}, matrix={"x": 1})
    assert read_task_matrix(path, adapters, None, None, {"tandem-automation": 0.34}) == {"x": 1}
    with pytest.raises(SystemExit, match="grounding"):
        read_task_matrix(path, adapters)  # the config serves it without the grounding check


def test_tool_guard_reads_only_servable_modifiers_and_the_field_is_left_out_unset(tmp_path):
    from tandem.services.router.tool_guard import ToolFitGuard

    root = _manifest(tmp_path, 1.0)
    assert ToolFitGuard.from_artifacts(str(root)) is None
    assert "tool_fit_min_similarity" not in json.loads((root / "manifest.json").read_text())["artifacts"]["automation"]
    manifest = Manifest(root)
    manifest.record("automation", "modifier", ["modifiers/automation.gguf"], tool_fit_min_similarity=0.5)
    manifest.record("code", "modifier", ["modifiers/automation.gguf"], tool_fit_min_similarity=0.4, servable=False)
    assert ToolFitGuard.from_artifacts(str(root)).thresholds == {"tandem-automation": (0.5, None)}
    assert "tool_args_min_grounding" not in json.loads((root / "manifest.json").read_text())["artifacts"]["automation"]
    manifest.record("automation", "modifier", ["modifiers/automation.gguf"], tool_args_min_grounding=0.34)
    assert ToolFitGuard.from_artifacts(str(root)).thresholds == {"tandem-automation": (None, 0.34)}
    assert Manifest(root).entry("automation").tool_args_min_grounding == 0.34
    assert ToolFitGuard.from_artifacts(str(tmp_path / "nowhere")) is None


def test_selection_rule_takes_the_largest_candidate_that_meets_both_conditions():
    from tandem.training.modifiers.scale_select import choose, rule_check

    rule = ScaleSelection(candidates=[0.25, 0.75, 0.5], max_decline_deficit=2, min_call_margin=5)
    base = {"no_fit": [1.0] * 10, "calls": [0.0] * 8}
    calls6 = {"calls": [1.0] * 6 + [0.0] * 2}
    by_scale = {
        0.75: {"no_fit": [1.0] * 7 + [0.0] * 3, **calls6},   # declines 7 < 10 - 2
        0.5: {"no_fit": [1.0] * 8 + [0.0] * 2, **calls6},    # declines 8 >= 8, margin 6
        0.25: {"no_fit": [1.0] * 10, **calls6},
    }
    assert not rule_check(rule, base, by_scale[0.75])["meets_rule"]
    check = rule_check(rule, base, by_scale[0.5])
    assert check["declines_ok"] and check["calls_ok"] and check["call_wins"] == 6
    assert choose(rule, base, by_scale) == 0.5
    few_calls = {s: {**r, "calls": [1.0] * 4 + [0.0] * 4} for s, r in by_scale.items()}
    assert choose(rule, base, few_calls) is None  # margin 4 < 5 everywhere
    with pytest.raises(ValidationError):
        ScaleSelection(candidates=[0.0], max_decline_deficit=2, min_call_margin=5)


def test_selection_keeps_the_base_answers_when_the_adapter_changes(tmp_path):
    """The base's dev answers belong to no adapter: asked first (--base-only), they survive a new
    adapter; a candidate's answers do not, and answers to other items are refused."""
    from tandem.training.modifiers.scale_select import resume_state

    out, ids = tmp_path / "scale.json", {"calls": ["a", "b"], "no_fit": ["c"]}
    first, second = tmp_path / "first.gguf", tmp_path / "second.gguf"
    first.write_bytes(b"adapter one")
    second.write_bytes(b"adapter two")
    base_rows = {"calls": [{"score": 0.0}] * 2, "no_fit": [{"score": 1.0}]}

    state = resume_state(out, ids, None)  # --base-only: no adapter yet
    state["rows"]["base"] = base_rows
    out.write_text(json.dumps(state))
    state = resume_state(out, ids, second)
    assert state["rows"] == {"base": base_rows} and state["adapter_sha256"] == sha256_file(second)

    state["rows"]["0.75"] = base_rows
    out.write_text(json.dumps(state))
    assert resume_state(out, ids, second)["rows"]["0.75"] == base_rows  # a re-run resumes
    with pytest.raises(SystemExit, match="another adapter"):
        resume_state(out, ids, first)
    with pytest.raises(SystemExit, match="other items"):
        resume_state(out, {**ids, "calls": ["a"]}, second)


def test_automation_config_carries_the_preregistered_rule():
    from tandem.common.recipe_config import load_config
    from tandem.training.modifiers.config import ModifierConfig

    config = load_config(ModifierConfig, Path("configs/modifiers/automation.yaml"), [])
    rule = config.serving.scale_selection
    assert rule is not None and sorted(rule.candidates) == [0.3, 0.4, 0.5, 0.6]
    assert (rule.no_fit_source, rule.no_fit_limit, rule.no_fit_max_chars) == ("live_irrelevance", 200, 4000)
    assert (rule.max_decline_deficit, rule.min_call_margin) == (2, 5)


def test_live_irrelevance_dev_items_are_a_fixed_draw_outside_every_scored_slice():
    from tandem.eval.datasets import load_items
    from tandem.eval.sources import BFCL_CATEGORIES
    from tandem.training.modifiers.scale_select import live_irrelevance_items

    items = live_irrelevance_items(200, 4000)
    assert len(items) == 200 and len({it.id for it in items}) == 200
    assert [it.id for it in items] == [it.id for it in live_irrelevance_items(200, 4000)]
    assert all(it.id.startswith("live_irrelevance_") and it.meta["category"] == "live_irrelevance" for it in items)
    assert all(it.gold is None and it.tools and it.messages[-1]["role"] == "user" for it in items)
    assert all(len(json.dumps(it.messages)) + len(json.dumps(it.meta["functions"])) <= 4000 for it in items)
    assert "live_irrelevance" not in BFCL_CATEGORIES  # never a test slice of tandem eval
    assert not {it.id for it in items} & {it.id for it in load_items("bfcl")}
    assert "live_irrelevance_793-302-0" not in {it.id for it in items}  # BFCL simple_python_14's question, verbatim


def test_live_irrelevance_rule_needs_its_limit():
    with pytest.raises(ValidationError, match="no_fit_limit"):
        ScaleSelection(candidates=[0.5], no_fit_source="live_irrelevance", max_decline_deficit=2, min_call_margin=5)
    with pytest.raises(ValidationError, match="no_fit_limit"):
        ScaleSelection(candidates=[0.5], no_fit_limit=10, max_decline_deficit=2, min_call_margin=5)


def test_default_bundle_keeps_the_scale(tmp_path):
    from tandem.pipeline.default_bundle import make_bundle

    (tmp_path / "built").mkdir()
    root = _manifest(tmp_path / "built", 0.5)
    make_bundle(root, None, tmp_path / "bundle", ["test"], 40.0)
    assert Manifest(tmp_path / "bundle").entry("automation").lora_scale == 0.5


def test_tool_fit_guard_gives_the_base_answer_only_where_a_call_sits_far_from_the_request():
    from tandem.services.router.tool_guard import function_text
    from tandem.training.modifiers.tool_fit_dev import guarded_scores

    similarities = [None, 0.2, 0.45, 0.7]  # no call, a far call, a middling call, a near call
    modifier, base = [1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]
    assert guarded_scores(similarities, modifier, base, 0.5) == [1.0, 1.0, 1.0, 1.0]
    assert guarded_scores(similarities, modifier, base, 0.3) == [1.0, 1.0, 0.0, 1.0]
    tools = [{"type": "function", "function": {"name": "weather.get_forecast", "description": "Forecast for a city."}}]
    assert function_text(tools, "weather_get_forecast") == "weather get forecast: Forecast for a city."
    assert function_text(tools, "send_mail") == ""


def _call(name: str, arguments) -> dict:
    return {"id": "c", "type": "function", "function": {"name": name, "arguments": arguments}}


def test_argument_grounding_tells_values_taken_from_the_request_from_made_up_ones():
    from tandem.common.wire import ChatCompletionRequest
    from tandem.services.router.tool_guard import argument_grounding

    def grounding(text: str, *calls: dict) -> float | None:
        body = ChatCompletionRequest(model="tandem-automation", messages=[{"role": "user", "content": text}])
        return argument_grounding(body, {"tool_calls": list(calls)})

    assert grounding("What's the weather like in Boston today?",
                     _call("get_current_weather", '{"location": "Boston, MA", "unit": "fahrenheit"}')) == 0.5
    assert grounding("Area of a triangle with base 10 and height 5?",
                     _call("triangle_area", {"base": 10, "height": 5.0})) == 1.0
    # a physics question forced onto a formula: every value made up
    assert grounding("Why is the sky blue?", _call("calculate_magnetic_field",
                                                   '{"current": 5, "radius": 4, "permeability": 0.01}')) == 0.0
    assert grounding("Who won?", _call("get_time", "{}")) == 1.0  # nothing to ground: not judged
    assert grounding("Who won?", _call("get_time", "not json")) == 1.0
    assert grounding("Paris and 3 nights", _call("book", {"city": "Paris", "nights": 3}),
                     _call("pay", {"card": "4111"})) == 0.0  # the least grounded call decides
    assert grounding("Nothing called") is None
    # nested values and booleans: booleans are never request text, so they are not judged
    assert grounding("send hi to bob", _call("send", {"to": ["bob"], "body": {"text": "hi"}, "urgent": True})) == 1.0


def test_stacked_guard_and_the_run_8_choice():
    from tandem.training.modifiers.tool_fit_dev import choose_guard, guarded_scores

    similarities, groundings = [0.7, 0.7, 0.2, None], [1.0, 0.0, 1.0, None]
    modifier, base = [1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]
    assert guarded_scores(similarities, modifier, base, 0.5) == [1.0, 0.0, 1.0, 1.0]
    assert guarded_scores(similarities, modifier, base, 0.5, groundings, 0.5) == [1.0, 1.0, 1.0, 1.0]
    row = {"scale": 0.5, "threshold": 0.5, "meets_rule": True}
    table = [{**row, "min_grounding": None, "declines_modifier": 181, "call_wins": 28, "call_losses": 0},
             {**row, "min_grounding": 0.5, "declines_modifier": 185, "call_wins": 25, "call_losses": 0},
             {**row, "min_grounding": 0.67, "declines_modifier": 185, "call_wins": 22, "call_losses": 0},
             {**row, "min_grounding": 1.0, "declines_modifier": 188, "call_wins": 2, "call_losses": 0,
              "meets_rule": False}]
    assert choose_guard(table, "first")["min_grounding"] is None
    assert choose_guard(table, "most-declines") == {"scale": 0.5, "threshold": 0.5, "min_grounding": 0.5}
    assert choose_guard([{**t, "meets_rule": False} for t in table], "most-declines") is None
