"""Pick the LoRA scale a modifier is served at, on dev rows only, by the rule its config fixes.

    python -m tandem.training.modifiers.scale_select --domain automation \
        --adapter build/stage-automation-v4/modifiers/automation.gguf --out build/scale-automation.json

The rule (`serving.scale_selection` in `configs/modifiers/<domain>.yaml`, `ScaleSelection`) is
written down before any test slice is scored at a scale other than 1.0. Dev items:
  - calls: BFCL dev-id requests with their own tools, scored by the harness's AST checker;
  - no-fit (`no_fit_source`): the same dev requests offered tools none of which fits (the `bfcl_no_fit`
    and `bfcl_no_fit_near` dev pairs of the automation data), or BFCL's live_irrelevance requests
    (real users, real APIs, none fitting); scored like BFCL irrelevance (1 = no call).
Everything is asked through `tandem up` as the task slices are (one slot per stack, one thread,
greedy; `--replicas` stacks share the items), one model at a time: the base once, then each
candidate scale, largest first, until one meets the rule (so the chosen scale is the largest that
does). The output file is rewritten after each model, and a re-run reuses the answers already in it. The base's answers belong to no adapter:
`--base-only` asks them before the adapter exists, and a later run with `--adapter` keeps them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def dev_items(rule) -> dict[str, list]:
    """{"calls": [...], "no_fit": [...]}: EvalItems built from BFCL's dev ids, and the rule's no-fit items."""
    from tandem.eval.datasets import load_items

    calls = sorted((it for it in load_items("bfcl", split="dev") if it.gold and it.tools), key=lambda it: it.id)
    no_fit = live_irrelevance_items(rule.no_fit_limit, rule.no_fit_max_chars) \
        if rule.no_fit_source == "live_irrelevance" else no_fit_pair_items()
    return {"calls": calls, "no_fit": no_fit}


def no_fit_pair_items() -> list:
    from tandem.eval.datasets import EvalItem
    from tandem.training.modifiers.data.automation import near_no_fit_rows, no_fit_rows

    return [EvalItem(id=row.id, suite="bfcl", dataset="bfcl", messages=row.messages[:-1], tools=row.tools,
                     gold=None, meta={"category": "irrelevance", "functions": []})
            for row in [*no_fit_rows("dev"), *near_no_fit_rows("dev")]]


def live_irrelevance_items(limit: int, max_chars: int) -> list:
    """BFCL live_irrelevance: the first `limit` items by sha256 of "bfcl:<id>" among those that offer
    functions, whose question and functions take at most `max_chars` characters of JSON, and whose
    question does not read like a request the automation rows are built from (the BFCL train
    categories, word Jaccard >= 0.5: the data's own rule against look-alikes)."""
    from tandem.eval.bfcl_tools import to_openai_tools
    from tandem.eval.datasets import EvalItem, load_items
    from tandem.eval.sources import package_dir
    from tandem.eval.splits import BFCL_TRAIN_CATEGORIES
    from tandem.training.modifiers.data.automation import _near, _request_text, _words

    path = package_dir("bfcl_eval", "bfcl-eval==2026.3.23") / "data" / "BFCL_v4_live_irrelevance.json"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows = [r for r in rows if r["function"]  # two offer no function at all: nothing to decline
            and len(json.dumps(r["question"][0])) + len(json.dumps(r["function"])) <= max_chars]
    rows.sort(key=lambda r: hashlib.sha256(f"bfcl:{r['id']}".encode()).hexdigest())
    items = [EvalItem(id=r["id"], suite="bfcl", dataset="bfcl", messages=r["question"][0],
                      tools=to_openai_tools(r["function"]), gold=None,
                      meta={"category": "live_irrelevance", "functions": r["function"]}) for r in rows]
    trained = [_words(_request_text(it)) for it in load_items("bfcl") if it.meta["category"] in BFCL_TRAIN_CATEGORIES]
    return [it for it in items if not _near(_words(_request_text(it)), trained)][:limit]


def rule_check(rule, base: dict[str, list[float]], mod: dict[str, list[float]]) -> dict[str, Any]:
    """The config's rule on one candidate's paired dev scores (lists in the same item order)."""
    declines_base, declines_mod = sum(base["no_fit"]), sum(mod["no_fit"])
    wins = sum(1 for b, m in zip(base["calls"], mod["calls"], strict=True) if m > b)
    losses = sum(1 for b, m in zip(base["calls"], mod["calls"], strict=True) if b > m)
    declines_ok = declines_mod >= declines_base - rule.max_decline_deficit
    calls_ok = wins - losses >= rule.min_call_margin
    return {"no_fit_n": len(mod["no_fit"]), "declines_base": declines_base, "declines_modifier": declines_mod,
            "calls_n": len(mod["calls"]), "calls_base": sum(base["calls"]), "calls_modifier": sum(mod["calls"]),
            "call_wins": wins, "call_losses": losses, "declines_ok": declines_ok, "calls_ok": calls_ok,
            "meets_rule": declines_ok and calls_ok}


def choose(rule, base: dict[str, list[float]], by_scale: dict[float, dict[str, list[float]]]) -> float | None:
    """The largest candidate that meets the rule, among those measured (None: none does)."""
    for scale in sorted(rule.candidates, reverse=True):
        if scale in by_scale and rule_check(rule, base, by_scale[scale])["meets_rule"]:
            return scale
    return None


def resume_state(out: Path, ids: dict[str, list[str]], adapter: Path | None) -> dict[str, Any]:
    """The answers an earlier run left in `out`, if they are to the same items. The base's rows are
    kept whatever the adapter; candidate rows only while `adapter` is the file they came from."""
    from tandem.common.manifest import sha256_file

    state = json.loads(out.read_text()) if out.is_file() else {}
    if state and state.get("ids") != ids:
        raise SystemExit(f"{out} holds answers to other items")
    state.update({"ids": ids})
    state.setdefault("rows", {})
    if adapter is not None:
        digest = sha256_file(adapter)
        if set(state["rows"]) - {"base"} and state.get("adapter_sha256") != digest:
            raise SystemExit(f"{out} holds answers of another adapter")
        state.update({"adapter": str(adapter), "adapter_sha256": digest})
    return state


def _ask(staging: Path, model: str, items: dict[str, list], threads: int, replicas: int) -> dict[str, list[dict]]:
    from tandem.training.modifiers.config import TaskSlice
    from tandem.training.modifiers.task_eval import _score_model, serving_pool

    task = TaskSlice(suite="bfcl", max_tokens=256)  # the test slices' setting (live_simple and irrelevance)
    with serving_pool(staging, replicas, threads=threads, slots=1) as urls:
        return {part: asyncio.run(_score_model(urls, model, its, task, 1)) for part, its in items.items()}


def main(argv: list[str] | None = None) -> int:
    from tandem.common.model_files import resolve_model_path
    from tandem.common.recipe_config import load_config
    from tandem.training.modifiers.config import ModifierConfig
    from tandem.training.modifiers.task_eval import stage_artifacts

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="automation")
    parser.add_argument("--adapter", type=Path, default=None, help="The candidate GGUF LoRA (not needed with "
                        "--base-only).")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config-dir", type=Path, default=Path("configs/modifiers"))
    parser.add_argument("--work-dir", type=Path, default=Path("build/scale-select"))
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads per stack.")
    parser.add_argument("--replicas", type=int, default=1, help="Single-slot `tandem up` stacks sharing the items "
                        "(each answer is still decoded alone).")
    parser.add_argument("--base-only", action="store_true", help="Ask the base and stop.")
    args = parser.parse_args(argv)
    if args.adapter is None and not args.base_only:
        parser.error("--adapter is required unless --base-only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    config = load_config(ModifierConfig, args.config_dir / f"{args.domain}.yaml", [])
    rule = config.serving.scale_selection
    if rule is None:
        raise SystemExit(f"{args.domain}.yaml has no serving.scale_selection rule")
    items = dev_items(rule)
    ids = {part: [it.id for it in its] for part, its in items.items()}
    state = resume_state(args.out, ids, args.adapter)
    state.update({"domain": args.domain, "rule": rule.model_dump()})
    base_gguf = resolve_model_path(config.base_model)
    model = f"tandem-{args.domain}"

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(state, indent=1))

    def scores(rows: dict[str, list[dict]]) -> dict[str, list[float]]:
        return {part: [r["score"] for r in rows[part]] for part in ids}

    if "base" not in state["rows"]:
        staging = args.work_dir / "stage-base"
        stage_artifacts(staging, base_gguf, {})
        state["rows"]["base"] = _ask(staging, "tandem-base", items, args.threads, args.replicas)
        save()
    base = scores(state["rows"]["base"])
    log.info("base: declines %d/%d, calls %d/%d", sum(base["no_fit"]), len(base["no_fit"]),
             sum(base["calls"]), len(base["calls"]))
    if args.base_only:
        return 0
    state.setdefault("checks", {})
    chosen = None
    for scale in sorted(rule.candidates, reverse=True):
        key = f"{scale:g}"
        if key not in state["rows"]:
            staging = args.work_dir / f"stage-{key}"
            stage_artifacts(staging, base_gguf, {model: args.adapter}, {model: scale})
            state["rows"][key] = _ask(staging, model, items, args.threads, args.replicas)
        state["checks"][key] = rule_check(rule, base, scores(state["rows"][key]))
        save()
        log.info("scale %s: %s", key, state["checks"][key])
        if state["checks"][key]["meets_rule"]:
            chosen = scale
            break
    state["chosen"] = chosen
    save()
    print(json.dumps({"chosen": chosen, "checks": state["checks"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
