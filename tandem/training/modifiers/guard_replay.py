"""A stricter tool guard replayed on a recorded task matrix, with no model run.

    python -m tandem.training.modifiers.guard_replay --matrix docs/modifiers/matrix-automation-v7.json.gz \
        --model tandem-automation --min-grounding 0.34 --out build/matrix-automation-v8.json
    python -m tandem.training.modifiers.guard_replay --matrix docs/modifiers/matrix-automation-v9.json.gz \
        --fit-model build/tool-fit/tool_fit.npz --out build/replay-automation-v10.json   # run 10
    python -m tandem.training.modifiers.guard_replay --matrix docs/modifiers/matrix-automation-v9.json.gz \
        --cross-model build/tool-cross/cross.npz --out build/replay-automation-v11.json   # run 11

The router's guard replaces a modifier's tool call by the base's answer (`services/router/tool_guard.py`).
Stacking a check on a guard that was already served only adds replacements, and the base answers
greedily (one slot, seed 0), so a newly guarded item scores exactly what the matrix's base row for it
scored. Every recorded answer is scored by today's scorer (`task_eval.score_recorded`), and each slice
is paired with the base by the gate's own McNemar test (`gate.mcnemar`). Which items the new check
trips is read from the served path's own functions (`argument_grounding`, `ToolFitGuard.call_vectors`) on the
harness's items (`task_eval.slice_items`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def replay(matrix: dict, model: str, min_grounding: float | None = None, fit_model: Path | None = None,
           cross_model: Path | None = None) -> dict:
    from tandem.common.wire import ChatCompletionRequest
    from tandem.services.router.tool_guard import GuardThresholds, ToolFitGuard, argument_grounding
    from tandem.training.modifiers.config import TaskSlice
    from tandem.training.modifiers.gate import mcnemar, score_summary
    from tandem.training.modifiers.task_eval import score_recorded, slice_items
    from tandem.training.modifiers.tool_fit_model import FitModel

    if min_grounding is None and fit_model is None and cross_model is None:
        raise ValueError("nothing to replay: give a grounding threshold, a tool-fit model or both")
    if fit_model and cross_model:
        raise ValueError("give one tool-fit model: --fit-model or --cross-model")
    if cross_model:
        from tandem.training.modifiers.tool_fit_cross import CrossFitModel

        fitter = CrossFitModel(cross_model)
    else:
        fitter = FitModel.load(fit_model) if fit_model else None
    stacked, guard, out = GuardThresholds(None, min_grounding), ToolFitGuard({}), {}
    for name, entry in matrix["matrix"].items():
        task = TaskSlice(suite=entry["suite"], limit=entry["n"], where=entry["where"])
        items = {it.id: it for it in slice_items(task)}
        base = {r["id"]: score_recorded(items[r["id"]], r) for r in entry["items"]["tandem-base"]}
        rows = entry["items"][model]
        if set(items) != set(base) or {r["id"] for r in rows} != set(base):
            raise ValueError(f"{name}: the matrix's items are not the harness's slice {task}")
        was, scores, tripped = [], [], []
        for row in rows:
            item, message = items[row["id"]], {"tool_calls": row.get("tool_calls") or []}
            was.append(score_recorded(item, row))
            body = ChatCompletionRequest(model=model, messages=item.messages, tools=item.tools)
            fit = fitter.call_fit(guard, body, message) if fitter and row["served_model"] == model else None
            if row["served_model"] == model and (stacked.rejects(None, argument_grounding(body, message))
                                                 or fit is not None and fit < fitter.threshold):
                tripped.append(row["id"])
                scores.append(base[row["id"]])
            else:
                scores.append(was[-1])
        base_scores = [base[r["id"]] for r in rows]
        out[name] = {"n": len(rows), "base": score_summary(base_scores), "guarded": score_summary(scores),
                     "was": score_summary(was), "tripped": tripped,
                     "vs_base": mcnemar(base_scores, scores), "vs_base_was": mcnemar(base_scores, was)}
    return {"model": model, "min_grounding": min_grounding, "scored_by": "today's scorer (score_recorded)",
            "fit_model": str(fit_model or cross_model) if fitter else None,
            "fit_threshold": fitter.threshold if fitter else None, "slices": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.training.modifiers.guard_replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--matrix", type=Path, required=True, help="A task matrix (.json or .json.gz).")
    parser.add_argument("--model", default="tandem-automation")
    parser.add_argument("--min-grounding", type=float, help="argument grounding a call must reach")
    parser.add_argument("--fit-model", type=Path, help="a tool_fit.npz (tool_fit_model): P(fit) a call must reach")
    parser.add_argument("--cross-model", type=Path,
                        help="a cross.npz (tool_fit_cross): P(fit) a call must reach, request and function read together")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from tandem.training.modifiers.task_eval import read_matrix

    result = replay(read_matrix(args.matrix), args.model, args.min_grounding, args.fit_model, args.cross_model)
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
