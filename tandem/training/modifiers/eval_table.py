"""The Markdown table of base vs each modifier: held-out loss and task metric per domain, with
intervals and sample sizes, plus what each modifier costs on the other domains' slices."""

from __future__ import annotations

from typing import Any


def _pct(summary: dict[str, float]) -> str:
    return f"{100 * summary['score']:.1f}% [{100 * summary['low']:.1f}, {100 * summary['high']:.1f}] (n={summary['n']})"


def _diff(diff: dict[str, float]) -> str:
    return f"{100 * diff['mean']:+.1f} pts [{100 * diff['low']:+.1f}, {100 * diff['high']:+.1f}] (n={diff['n']})"


def _mcnemar(diff: dict[str, float], key: str) -> str:
    return f"{diff['wins']} / {diff['losses']}, p={diff[key]:.3g}"


def _slice_name(entry: dict[str, Any]) -> str:
    where = ", ".join(f"{k} in {v}" for k, v in entry.get("where", {}).items())
    return f"{entry['suite']}" + (f" ({where})" if where else "")


def _base_on(entry: dict[str, Any], diff: dict[str, float]) -> dict[str, float]:
    """The base's score on the items a cross-slice model answered (the first `n`)."""
    from tandem.training.modifiers.gate import score_summary

    return score_summary([r["score"] for r in entry["items"]["tandem-base"][: diff["n"]]])


def eval_table(matrix: dict[str, dict[str, Any]], metrics: dict[str, dict[str, Any]]) -> str:
    """`matrix` from `score_matrix`; `metrics[domain]["heldout"]` from `heldout_losses`."""
    lines = [("| domain | task slice | base | modifier | modifier - base (paired) | wins / losses, one-sided "
              "McNemar p (gain) | held-out loss base -> modifier |"),
             "|---|---|---|---|---|---|---|"]
    for domain, entry in matrix.items():
        if domain not in metrics:
            continue
        model = f"tandem-{domain}"
        heldout = metrics[domain]["heldout"]
        loss = (f"{heldout['base']['loss']:.3f} -> {heldout['modifier']['loss']:.3f} "
                f"({heldout['modifier']['rows']} rows, {heldout['modifier']['tokens']} tokens)")
        if "difference" in heldout:
            d = heldout["difference"]
            loss += f"; paired {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
        lines.append(f"| {domain} | {_slice_name(entry)} | {_pct(entry['models']['tandem-base'])} | "
                     f"{_pct(entry['models'][model])} | {_diff(entry['vs_base'][model])} | "
                     f"{_mcnemar(entry['vs_base'][model], 'p_gain')} | {loss} |")
    others = [(d, m, e["vs_base"][m]) for d, e in matrix.items() for m in e["vs_base"] if m != f"tandem-{d}"]
    if others:
        lines += ["", "Cost on the other slices (modifier - base on the same items, paired):", "",
                  "| modifier | slice | base | modifier | modifier - base | wins / losses, one-sided McNemar p (fall) |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {m} | {_slice_name(matrix[d])} | {_pct(_base_on(matrix[d], diff))} | {_pct(matrix[d]['models'][m])} "
                  f"| {_diff(diff)} | {_mcnemar(diff, 'p_fall')} |" for d, m, diff in others]
    return "\n".join(lines) + "\n"
