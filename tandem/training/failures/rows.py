"""Read the evaluation harness's per-item rows and pick the failures.

A row (tandem/eval/runner.py) holds at least `suite`, `id`, `prompt` (chat messages or a string),
`response` and `score`; rows with a transport `error` or flagged as `contaminated` say nothing
about the model and are counted, not analysed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ResultsError(ValueError):
    """Evaluation results are missing or unreadable."""


@dataclass
class Failures:
    rows: list[dict[str, Any]]
    total_by_suite: Counter = field(default_factory=Counter)
    failed_by_suite: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)


def result_files(paths: list[Path]) -> list[Path]:
    files = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.glob("*.jsonl")))
        elif p.is_file():
            files.append(p)
        else:
            raise ResultsError(f"{p} does not exist")
    if not files:
        raise ResultsError(f"no result JSONL files in {', '.join(map(str, paths))}")
    return files


def prompt_text(prompt: Any) -> str:
    """The last user message of a chat prompt (what was asked), or the prompt string itself."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        content = (users or prompt)[-1].get("content") if (users or prompt) else ""
        if isinstance(content, list):
            return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
        return str(content or "")
    return str(prompt)


def load_failures(paths: list[Path], pass_score: float) -> Failures:
    out = Failures(rows=[])
    for path in result_files(paths):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    suite, score = str(row["suite"]), row["score"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    out.skipped["unreadable"] += 1
                    continue
                if row.get("error"):
                    out.skipped["request_error"] += 1
                elif row.get("contaminated"):
                    out.skipped["contaminated"] += 1
                elif score is None:
                    out.skipped["unscored"] += 1
                else:
                    out.total_by_suite[suite] += 1
                    if float(score) < pass_score:
                        out.failed_by_suite[suite] += 1
                        out.rows.append(row)
    return out
