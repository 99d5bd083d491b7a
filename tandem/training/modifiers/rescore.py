"""A recorded task matrix scored again by today's scorers, with no model run.

    python -m tandem.training.modifiers.rescore --matrix docs/modifiers/matrix-code-v3.json.gz \
        --slices irrelevance --out build/rescore-code-v3.json
    python -m tandem.training.modifiers.rescore --scale-state build/scale-automation-v9.json \
        --out build/scale-automation-v9-rescored.json     # dev answers, for tool_fit_dev --scales

A matrix keeps every answer as served (text and structured tool calls), so when a scorer is fixed
the recorded answers can be scored again and paired with the base by the gate's own McNemar test
(`gate.mcnemar`). A gate's verdict stays the one its registered scorer gave; this says what the
fix changes, for the next run and for reading old figures. `--scale-state` does the same to the
dev answers `scale_select` recorded and writes them back in its own format (choices dropped), so
`tool_fit_dev` can choose again on the fixed scores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tandem.training.modifiers.task_eval import read_matrix, score_recorded, slice_items


def _summary(by_id: dict[str, tuple[float, float]], ids: list[str]) -> dict:
    """Score as recorded and now over `ids`, and the ids whose score changed."""
    from tandem.training.modifiers.gate import score_summary

    return {"was": score_summary([by_id[i][0] for i in ids]), "now": score_summary([by_id[i][1] for i in ids]),
            "changed": [i for i in ids if by_id[i][0] != by_id[i][1]]}


def rescore(matrix: dict, slices: list[str] | None = None) -> dict:
    from tandem.training.modifiers.config import TaskSlice
    from tandem.training.modifiers.gate import mcnemar

    out = {}
    for name, entry in matrix["matrix"].items():
        if slices and name not in slices:
            continue
        task = TaskSlice(suite=entry["suite"], limit=entry["n"], where=entry["where"])
        items = {it.id: it for it in slice_items(task)}
        scored = {}  # model -> {id: (score as recorded, score now)}
        for model, rows in entry["items"].items():
            if {r["id"] for r in rows} != set(items):
                raise ValueError(f"{name}: {model}'s answers are not the harness's slice {task}")
            scored[model] = {r["id"]: (r["score"], score_recorded(items[r["id"]], r)) for r in rows}
        base = scored.pop("tandem-base")
        ids = list(base)  # every model's scores in the base's order, for the paired test
        base_now = [base[i][1] for i in ids]
        out[name] = {"n": len(items), "base": _summary(base, ids),
                     "models": {model: {**_summary(s, ids), "vs_base_now": mcnemar(base_now, [s[i][1] for i in ids])}
                                for model, s in scored.items()}}
    return out


def rescore_scale_state(state: dict, config_dir: Path = Path("configs/modifiers")) -> tuple[dict, dict]:
    """`scale_select`'s state with every recorded dev answer scored again; and per model and part,
    how many scores changed."""
    from tandem.common.recipe_config import load_config
    from tandem.training.modifiers.config import ModifierConfig
    from tandem.training.modifiers.scale_select import dev_items

    rule = load_config(ModifierConfig, config_dir / f"{state['domain']}.yaml", []).serving.scale_selection
    items = dev_items(rule)
    if {part: [it.id for it in its] for part, its in items.items()} != state["ids"]:
        raise ValueError("the state's dev items are not the ones its config's rule selects")
    changed: dict[str, dict[str, int]] = {}
    for key, parts in state["rows"].items():
        for part, rows in parts.items():
            by_id = {it.id: it for it in items[part]}
            for row in rows:
                now = score_recorded(by_id[row["id"]], row)
                if now != row["score"]:
                    changed.setdefault(key, {}).setdefault(part, 0)
                    changed[key][part] += 1
                    row["score"] = now
    return {k: v for k, v in state.items() if k not in ("checks", "chosen")}, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.training.modifiers.rescore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--matrix", type=Path, help="A task matrix (.json or .json.gz).")
    source.add_argument("--scale-state", type=Path, help="scale_select's output (dev answers).")
    parser.add_argument("--slices", help="Comma-separated slice names (default: every slice).")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.scale_state:
        state, changed = rescore_scale_state(json.loads(args.scale_state.read_text()))
        args.out.write_text(json.dumps(state, indent=1))
        for key, parts in state["rows"].items():
            print(key, {part: f"{sum(r['score'] for r in rows):g}/{len(rows)} ({changed.get(key, {}).get(part, 0)} changed)"
                        for part, rows in parts.items()})
        return 0
    result = rescore(read_matrix(args.matrix), args.slices.split(",") if args.slices else None)
    args.out.write_text(json.dumps(result, indent=1))
    print("slice        model               n  was  now  changed  wins / losses  p(gain)  p(fall)")
    for name, s in result.items():
        n = s["n"]
        print(f"{name:11s}  {'tandem-base':18s} {n:3d} {s['base']['was']['score'] * n:4.0f} "
              f"{s['base']['now']['score'] * n:4.0f} {len(s['base']['changed']):8d}")
        for model, m in s["models"].items():
            v = m["vs_base_now"]
            print(f"{name:11s}  {model:18s} {n:3d} {m['was']['score'] * n:4.0f} {m['now']['score'] * n:4.0f}"
                  f" {len(m['changed']):8d}  {v['wins']:4.0f} / {v['losses']:<6.0f}  {v['p_gain']:.3g}  {v['p_fall']:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
