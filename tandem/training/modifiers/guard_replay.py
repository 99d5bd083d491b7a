"""A stricter tool guard replayed on a recorded task matrix, with no model run.

    python -m tandem.training.modifiers.guard_replay --matrix docs/modifiers/matrix-automation-v7.json.gz \
        --model tandem-automation --min-grounding 0.34 --out build/matrix-automation-v8.json

The router's guard replaces a modifier's tool call by the base's answer (`services/router/tool_guard.py`).
Stacking a check on a guard that was already served only adds replacements, and the base answers
greedily (one slot, seed 0), so a newly guarded item scores exactly what the matrix's base row for it
scored. Each slice is scored again that way and paired with the base by the gate's own McNemar test
(`gate.mcnemar`). Which items the new check trips is read from the served path's own function
(`argument_grounding`) on the harness's items (`task_eval.slice_items`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def replay(matrix: dict, model: str, min_grounding: float) -> dict:
    from tandem.common.wire import ChatCompletionRequest
    from tandem.services.router.tool_guard import GuardThresholds, argument_grounding
    from tandem.training.modifiers.config import TaskSlice
    from tandem.training.modifiers.gate import mcnemar, score_summary
    from tandem.training.modifiers.task_eval import slice_items

    stacked, out = GuardThresholds(None, min_grounding), {}
    for name, entry in matrix["matrix"].items():
        task = TaskSlice(suite=entry["suite"], limit=entry["n"], where=entry["where"])
        items = {it.id: it for it in slice_items(task)}
        base = {r["id"]: r for r in entry["items"]["tandem-base"]}
        rows = entry["items"][model]
        if set(items) != set(base) or {r["id"] for r in rows} != set(base):
            raise ValueError(f"{name}: the matrix's items are not the harness's slice {task}")
        scores, tripped = [], []
        for row in rows:
            item = items[row["id"]]
            body = ChatCompletionRequest(model=model, messages=item.messages, tools=item.tools)
            grounding = argument_grounding(body, {"tool_calls": row.get("tool_calls") or []})
            if row["served_model"] == model and stacked.rejects(None, grounding):
                tripped.append(row["id"])
                scores.append(base[row["id"]]["score"])
            else:
                scores.append(row["score"])
        base_scores = [base[r["id"]]["score"] for r in rows]
        out[name] = {"n": len(rows), "base": score_summary(base_scores), "guarded": score_summary(scores),
                     "was": score_summary([r["score"] for r in rows]), "tripped": tripped,
                     "vs_base": mcnemar(base_scores, scores)}
    return {"model": model, "min_grounding": min_grounding, "slices": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.training.modifiers.guard_replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--matrix", type=Path, required=True, help="A task matrix (.json or .json.gz).")
    parser.add_argument("--model", default="tandem-automation")
    parser.add_argument("--min-grounding", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from tandem.training.modifiers.task_eval import read_matrix

    result = replay(read_matrix(args.matrix), args.model, args.min_grounding)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print("slice        n  base  before  after  newly guarded  wins / losses  p(gain)  p(fall)")
    for name, s in result["slices"].items():
        v = s["vs_base"]
        print(f"{name:11s} {s['n']:3d}  {s['base']['score'] * s['n']:4.0f}  {s['was']['score'] * s['n']:6.0f}"
              f"  {s['guarded']['score'] * s['n']:5.0f}  {len(s['tripped']):13d}  {v['wins']:4.0f} / {v['losses']:<6.0f}"
              f"  {v['p_gain']:.3g}  {v['p_fall']:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
