"""Summaries of scored rows: per-suite figures, cost per route, and the Markdown table."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from tandem.common.prices import PriceTable, counterfactual_costs, route_costs


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarize_suite(suite: str, rows: list[dict], prices: PriceTable) -> dict:
    clean = [r for r in rows if not r["contaminated"]]
    latencies = [r["latency_s"] for r in rows if not r["cached"] and r["error"] is None]
    groups: dict[str, list[float]] = defaultdict(list)
    for r in clean:
        if r.get("group"):
            groups[r["group"]].append(r["score"])
    return {
        "suite": suite,
        "n": len(rows),
        "scored": len(clean),
        "score": float(np.mean([r["score"] for r in clean])) if clean else None,
        "errors": sum(r["error"] is not None for r in rows),
        "contaminated": len(rows) - len(clean),
        "cached": sum(r["cached"] for r in rows),
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "cost_by_route": route_costs(rows, prices),
        "by_group": {g: {"n": len(v), "score": float(np.mean(v))} for g, v in sorted(groups.items())},
    }


def summarize_run(settings: dict, suites: list[dict], all_rows: list[dict], prices: PriceTable) -> dict:
    return {
        "settings": settings,
        "suites": suites,
        "cost_by_route": route_costs(all_rows, prices),
        "cost_if_all_on": counterfactual_costs(all_rows, prices),
        "currency": prices.currency,
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(summary: dict) -> str:
    s = summary["settings"]
    lines = [
        f"Model `{s['model']}` at `{s['base_url']}`, split `{s['split']}`, "
        f"limit {s['limit'] or 'none'}, temperature {s['temperature']}, seed {s['seed']}.",
        "",
        "| suite | n | score | errors | flagged | p50 latency (s) | tokens in / out | cost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["suites"]:
        cost = sum(r["cost"] or 0.0 for r in row.get("cost_by_route", {}).values())
        lines.append(
            f"| {row['suite']} | {row['n']} | {_fmt(row['score'])} | {row['errors']} | "
            f"{row.get('contaminated', 0)} | {_fmt(row['latency_p50_s'], 2)} | "
            f"{row['prompt_tokens']} / {row['completion_tokens']} | {cost:.6f} |"
        )
    lines += [
        "",
        f"Cost per route ({summary['currency']}):",
        "",
        "| route | requests | tokens in / out | cost |",
        "|---|---:|---:|---:|",
    ]
    for route, r in summary["cost_by_route"].items():
        lines.append(
            f"| {route} | {r['requests']} | {r['prompt_tokens']} / {r['completion_tokens']} | "
            f"{_fmt(r['cost'], 6) if r['cost'] is not None else 'no price'} |"
        )
    if summary["cost_if_all_on"]:
        lines += [
            "",
            "The same tokens on each priced model: "
            + ", ".join(f"{m} {c:.6f}" for m, c in summary["cost_if_all_on"].items()),
        ]
    for row in summary["suites"]:
        if "confusion" in row:
            lines += ["", *routing_markdown(row)]
    return "\n".join(lines) + "\n"


def routing_markdown(row: dict) -> list[str]:
    domains = list(row["per_domain"])
    lines = [
        "Routing: per-domain precision / recall, and confusion (rows: true, columns: predicted).",
        "",
        "| domain | precision | recall | support |",
        "|---|---:|---:|---:|",
    ]
    for d, m in row["per_domain"].items():
        lines.append(f"| {d} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | {m['support']} |")
    predicted = sorted({p for r in row["confusion"].values() for p in r} | set(domains))
    lines += ["", "| true \\ predicted | " + " | ".join(predicted) + " |", "|---|" + "---:|" * len(predicted)]
    for true, counts in row["confusion"].items():
        lines.append(f"| {true} | " + " | ".join(str(counts.get(p, 0)) for p in predicted) + " |")
    return lines


def summary_line(summary: dict, out: str) -> str:
    parts = [f"{r['suite']} {_fmt(r['score'])} (n={r['scored']})" for r in summary["suites"]]
    cost = sum(r["cost"] or 0.0 for r in summary["cost_by_route"].values())
    return (
        f"eval {summary['settings']['model']}: "
        + " | ".join(parts)
        + f" | cost {cost:.6f} {summary['currency']} | {out}"
    )
