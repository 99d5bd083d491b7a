"""The validation report: `report.md` and `report.html` with three plots.

- cost_quality.png: quality against the share of requests escalated, per escalation policy
  (the calibration curves under `<artifacts>/escalation/calibration.json`);
- domains.png: the task score of each suite through `model=auto`;
- size_by_stage.png: the base's size after each compression stage.
A plot whose data the build does not have (e.g. no escalation stage) is left out and the report
says so.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any


def _plot_cost_quality(artifacts: Path, path: Path) -> Path | None:
    calibration = artifacts / "escalation" / "calibration.json"
    if not calibration.is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = json.loads(calibration.read_text())["curves"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(curve["call_fraction"], curve["quality"], label=name)
    ax.set_xlabel("share of requests escalated (cost)")
    ax.set_ylabel("quality (mean score)")
    ax.set_title("Cost-quality curve (dev labels)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _bars(values: dict[str, float], path: Path, title: str, ylabel: str) -> Path | None:
    if not values:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(list(values), list(values.values()))
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    for label in ax.get_xticklabels():
        label.set_rotation(20)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def write_report(out: Path, figures: dict[str, Any], verdicts: list[dict[str, Any]],
                 upstream: dict[str, dict[str, Any]], artifacts: Path) -> list[Path]:
    """Write the plots, report.md and report.html into `out`; returns [report.md, report.html, *plots]."""
    out.mkdir(parents=True, exist_ok=True)
    scores = {k.removeprefix("task."): v for k, v in figures.items() if k.startswith("task.") and v is not None}
    sizes = (upstream.get("compress", {}).get("figures", {}) or {}).get("size_bytes_by_stage", {})
    plots = {"Cost-quality curve": _plot_cost_quality(artifacts, out / "cost_quality.png"),
             "Task score per suite (model=auto)": _bars(scores, out / "domains.png", "Task score per suite",
                                                        "score"),
             "Base size by compression stage": _bars({k: v / 1e6 for k, v in sizes.items()},
                                                     out / "size_by_stage.png", "Base size by stage", "MB")}
    passed = sum(v["passed"] for v in verdicts)
    verdict = "PASSED" if passed == len(verdicts) else "FAILED"
    gate_rows = [(v["figure"], _fmt(v["value"]), v["bound"], "pass" if v["passed"] else "FAIL",
                  "; ".join(x for x in (v["note"], v["why"]) if x)) for v in verdicts]
    figure_rows = [(k, _fmt(v)) for k, v in sorted(figures.items())]

    md = [f"# Validation report: {verdict} ({passed}/{len(verdicts)} gates)", "",
          "| figure | value | gate | verdict | why |", "|---|---:|---|---|---|",
          *(f"| {' | '.join(row)} |" for row in gate_rows), "", "## Figures", "",
          "| figure | value |", "|---|---:|", *(f"| {k} | {v} |" for k, v in figure_rows), "", "## Plots", ""]
    for title, path in plots.items():
        md.append(f"![{title}]({path.name})" if path else f"{title}: no data in this build.")
        md.append("")
    (out / "report.md").write_text("\n".join(md))

    def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    images = "".join(f"<h3>{html.escape(t)}</h3>" + (f'<img src="{p.name}" alt="{html.escape(t)}">' if p
                                                      else "<p>No data in this build.</p>")
                     for t, p in plots.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Validation report</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body>"
            f"<h1>Validation report: {verdict} ({passed}/{len(verdicts)} gates)</h1>"
            + table(("figure", "value", "gate", "verdict", "why"), gate_rows)
            + "<h2>Figures</h2>" + table(("figure", "value"), figure_rows)
            + "<h2>Plots</h2>" + images + "</body></html>")
    (out / "report.html").write_text(page)
    return [out / "report.md", out / "report.html", *(p for p in plots.values() if p)]
