"""The failure analysis as Markdown: one section per category with its terms and examples."""

from __future__ import annotations

from typing import Any


def _quote(text: str, limit: int = 300) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def markdown_report(report: dict[str, Any]) -> str:
    lines = [
        "# Failure analysis",
        "",
        f"{report['failures']} failures out of {report['evaluated']} scored items, grouped into "
        f"{report['k']} categories (k by silhouette over {report['k_range'][0]}-{report['k_range'][1]}"
        f"{', capped by the number of failures' if report['k_capped'] else ''}; clustered on "
        f"{report['embed_text'].replace('_', ' + ')}).",
        "",
        "| suite | failure rate |",
        "|---|---|",
        *[f"| {s} | {r:.1%} |" for s, r in report["failure_rate_by_suite"].items()],
        "",
        "| k | silhouette |",
        "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in report["silhouette_by_k"].items()],
        "",
    ]
    if report["boilerplate_lines_removed"]:
        lines += [
            f"Instruction lines shared by many prompts, left out of clustering and names: "
            f"{len(report['boilerplate_lines_removed'])}.",
            "",
        ]
    if report["skipped"]:
        lines += [
            "Rows not analysed: " + ", ".join(f"{r} {n}" for r, n in report["skipped"].items()) + ".",
            "",
        ]
    for cat in report["categories"]:
        suites = ", ".join(f"{s} {n}" for s, n in cat["suites"].items())
        lines += [
            f"## {cat['id']}. {cat['name']} ({cat['size']} failures)",
            "",
            f"Top terms: {', '.join(cat['terms'])}. Suites: {suites}.",
            "",
        ]
        for ex in cat["examples"]:
            lines += [
                f"- `{ex['suite']}/{ex['id']}` (score {ex['score']}): {_quote(ex['prompt'])}",
                f"  - answered: {_quote(ex['response'], 200)}",
            ]
        lines.append("")
    return "\n".join(lines)
