"""What a tool-fit guard would have done to the automation modifier's dev answers (scale selection's).

    python -m tandem.training.modifiers.tool_fit_dev --scales build/scale-automation-li.json \
        --out build/tool-fit-dev.json

The guard (`services/router/tool_guard.py`): when the modifier answers with tool calls, embed the
request (its user turns) and each called function's "name words: description" with the packaged
int8 MiniLM the router uses; if the lowest request-to-function cosine is under a threshold, answer
with the base's reply instead. With `--groundings`, the argument-grounding check is stacked on it:
the call is also replaced when the share of its argument values the request supplies is under that
threshold. On recorded dev answers that is exact: a guarded item scores what the base scored on it.
Every (scale, cosine, grounding) triple is checked against the scale rule of
`configs/modifiers/automation.yaml` (declines >= base's - max_decline_deficit, call wins - losses >=
min_call_margin), and the rule picks the largest scale, then the lowest cosine threshold, then the
lowest grounding threshold (none first) that meets it. Dev answers only: the test slices are not read.

    python -m tandem.training.modifiers.tool_fit_dev --scales build/scale-automation-li.json \
        --out build/tool-fit-dev-grounding.json --scale-values 0.5 --cosines 0.5 --groundings 0.34,0.5,0.67,1 \
        --choose most-declines
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

THRESHOLDS = (0.3, 0.4, 0.5)


def guarded_scores(similarities: list[float | None], modifier: list[float], base: list[float],
                   threshold: float, groundings: list[float | None] | None = None,
                   min_grounding: float | None = None) -> list[float]:
    """Per item: the base's score where the guard trips (a call whose similarity, or with
    `min_grounding` its argument grounding, is under the threshold), the modifier's otherwise (no call: None)."""
    from tandem.services.router.tool_guard import GuardThresholds

    limits = GuardThresholds(threshold, min_grounding)
    groundings = groundings or [None] * len(similarities)
    return [b if limits.rejects(s, g) else m for s, g, m, b in zip(similarities, groundings, modifier, base, strict=True)]


def choose_guard(table: list[dict], how: str) -> dict | None:
    """The (scale, threshold, min_grounding) the rule picks from the table's rows that meet it."""
    meeting = [r for r in table if r["meets_rule"]]
    if how == "most-declines":
        meeting.sort(key=lambda r: (-r["declines_modifier"], -(r["call_wins"] - r["call_losses"])))
    return {k: meeting[0][k] for k in ("scale", "threshold", "min_grounding")} if meeting else None


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    from tandem.common.recipe_config import load_config
    from tandem.common.wire import ChatCompletionRequest
    from tandem.services.router.tool_guard import ToolFitGuard, argument_grounding
    from tandem.training.modifiers.config import ModifierConfig
    from tandem.training.modifiers.scale_select import dev_items, rule_check

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=Path, required=True, help="scale_select's output (dev answers).")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=Path("configs/modifiers/automation.yaml"))
    parser.add_argument("--cosines", type=_floats, default=list(THRESHOLDS), help="Cosine thresholds (default 0.3,0.4,0.5).")
    parser.add_argument("--groundings", type=_floats, default=[], help="Argument-grounding thresholds stacked on "
                        "each cosine one (default: none, the cosine guard alone).")
    parser.add_argument("--scale-values", type=_floats, default=None, help="Only these scales of the file.")
    parser.add_argument("--choose", choices=["first", "most-declines"], default="first",
                        help="first: the order above (run 7's rule); most-declines: of the triples that meet the "
                        "rule, the most dev declines, then the most call wins, then table order (run 8's).")
    args = parser.parse_args(argv)

    rule = load_config(ModifierConfig, args.config, []).serving.scale_selection
    state = json.loads(args.scales.read_text())
    items = dev_items(rule)
    if {p: [it.id for it in its] for p, its in items.items()} != state["ids"]:
        raise SystemExit(f"{args.scales} holds answers to other items than the config's rule asks")
    guard = ToolFitGuard({})  # the served guard's own similarity, on each dev request as served

    def body(item) -> ChatCompletionRequest:
        return ChatCompletionRequest(model="tandem-automation", messages=item.messages, tools=item.tools)

    def similarity(item, row: dict) -> float | None:
        return guard.similarity(body(item), {"tool_calls": row["tool_calls"]})

    base = {p: [r["score"] for r in state["rows"]["base"][p]] for p in items}
    table = []
    scales = [k for k in state["rows"] if k != "base" and (args.scale_values is None or float(k) in args.scale_values)]
    for scale in sorted(scales, key=float, reverse=True):
        rows = state["rows"][scale]
        sims = {p: [similarity(it, r) for it, r in zip(items[p], rows[p], strict=True)] for p in items}
        grounds = {p: [argument_grounding(body(it), {"tool_calls": r["tool_calls"]}) for it, r in
                       zip(items[p], rows[p], strict=True)] for p in items}
        for threshold in sorted(args.cosines):
            for min_grounding in [None, *sorted(args.groundings)]:
                guarded = {p: guarded_scores(sims[p], [r["score"] for r in rows[p]], base[p], threshold, grounds[p],
                                             min_grounding) for p in items}
                check = rule_check(rule, base, guarded)
                table.append({"scale": float(scale), "threshold": threshold, "min_grounding": min_grounding, **check})
    chosen = choose_guard(table, args.choose)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"scales_file": str(args.scales), "table": table, "chosen": chosen}, indent=1))
    print("scale  threshold  grounding  declines (base)  call wins/losses  meets")
    for r in table:
        grounding = "-" if r["min_grounding"] is None else f"{r['min_grounding']:g}"
        print(f"{r['scale']:5g}  {r['threshold']:9g}  {grounding:>9}  {r['declines_modifier']:5g} ({r['declines_base']:g})"
              f"  {r['call_wins']:>8d} / {r['call_losses']:<6d}  {r['meets_rule']}")
    print("chosen:", chosen)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
