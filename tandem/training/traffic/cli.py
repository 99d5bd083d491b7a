"""`tandem traffic export`: turn the router's traffic log (services/router/traffic_log.py) into the rows
`tandem analyze failures` reads (tandem/training/failures/rows.py: suite, id, prompt, response, score).

Each logged request becomes one row: `suite` is `traffic/<domain>`, `id` the request id, `prompt` the
logged (already redacted) messages, `response` the answer. Live traffic has no reference answer, so
the score comes from what was said or decided about the request (`--label`):

  auto        the client's rating when feedback arrived for it (below), else `escalation`. The default.
  feedback    the rating only; requests without one are unscored.
  escalation  0 when an escalation policy sent the request to the fallback (before or after generation:
              the policy judged the small model would fail or had failed), 1 when the local answer was
              served; requests the client sent to a fallback model by name are unscored (they say
              nothing about the small model).
  all         0 for every request: cluster everything that was sampled.

A rating (`POST /v1/feedback`, logged as a `kind: feedback` record for sampled requests) scores 0 when
it is -1 or 0 (thumbs down) or 2 (two stars of five), 1 when it is 1 (thumbs up, what the playground
sends) or 3-5 stars. A `correct_domain` from feedback is copied to the row (for router training).

Requests that did not end in an answer (status other than 200, a stream cut short) are written with an
`error`, which the failures loader counts and skips.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LABELS = ("auto", "feedback", "escalation", "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    traffic = subparsers.add_parser("traffic", help="Read the router's sampled traffic log.")
    sub = traffic.add_subparsers(dest="traffic_command", metavar="COMMAND")
    p = sub.add_parser("export", help="Write the traffic log as `tandem analyze failures` rows.",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("logs", type=Path, nargs="+", help="Traffic log folders (router traffic_log.dir) or JSONL files.")
    p.add_argument("--out", type=Path, required=True, help="Rows JSONL to write (give it to --results).")
    p.add_argument("--label", choices=LABELS, default="auto", help="How a row is scored (see above).")
    p.add_argument("--since", default=None, help="Only requests at or after this UTC time (ISO 8601 prefix, "
                   "e.g. 2026-12-01).")
    p.set_defaults(func=_run)


def log_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(p.glob("traffic-*.jsonl"))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p} does not exist")
    return files


def read_log(paths: list[Path], skipped: Counter | None = None) -> Iterator[dict[str, Any]]:
    """The records of the traffic log files, oldest file first; unreadable lines are counted, not fatal."""
    for path in log_files(paths):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    if skipped is not None:
                        skipped["unreadable"] += 1
                    continue
                if isinstance(record, dict) and record.get("v") == 1:
                    yield record
                elif skipped is not None:
                    skipped["unknown_version"] += 1


def rating_score(rating: int | None) -> float | None:
    if rating is None:
        return None
    return 0.0 if rating <= 0 or rating == 2 else 1.0


def score(record: dict[str, Any], label: str, feedback: dict[str, Any] | None = None) -> float | None:
    if label == "all":
        return 0.0
    rated = rating_score((feedback or {}).get("rating"))
    if label == "feedback" or label == "auto" and rated is not None:
        return rated
    reason = record.get("escalation_reason") or ""
    if record.get("escalated") and reason == "explicit_model":
        return None
    return 0.0 if record.get("escalated") else 1.0


def to_row(record: dict[str, Any], label: str, feedback: dict[str, Any] | None = None) -> dict[str, Any]:
    feedback = feedback or {}
    row = {"suite": f"traffic/{record.get('domain') or 'unknown'}", "id": record.get("request_id", ""),
           "prompt": [{"role": m.get("role"), "content": m.get("content", "")} for m in record.get("messages", [])],
           "response": record.get("answer") or "", "score": score(record, label, feedback),
           "source": "traffic", "time": record.get("time"), "model": record.get("model"),
           "route": record.get("route"), "escalated": bool(record.get("escalated")),
           "escalation_reason": record.get("escalation_reason") or "", "cache": record.get("cache"),
           "tools": record.get("tools") or [], "rating": feedback.get("rating"),
           "correct_domain": feedback.get("correct_domain")}
    if record.get("status") != 200 or record.get("answer") is None:
        row["error"] = f"status {record.get('status')}" if record.get("status") != 200 else "no answer logged"
    return row


def export(paths: list[Path], out: Path, label: str = "auto", since: str | None = None) -> Counter:
    counts: Counter = Counter()
    records = list(read_log(paths, counts))
    feedback: dict[str, dict[str, Any]] = {}
    for record in records:  # feedback comes after its request, maybe in a later file: join first
        if record.get("kind") == "feedback":
            joined = feedback.setdefault(record.get("request_id", ""), {})
            joined.update({k: record[k] for k in ("rating", "correct_domain") if record.get(k) is not None})
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for record in records:
            if record.get("kind", "request") != "request":
                continue
            if since and str(record.get("time", "")) < since:
                counts["before_since"] += 1
                continue
            row = to_row(record, label, feedback.get(record.get("request_id", "")))
            counts["error" if row.get("error") else "rows"] += 1
            counts["rated"] += row["rating"] is not None
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return counts


def _run(args: argparse.Namespace) -> int:
    try:
        counts = export(args.logs, args.out, args.label, args.since)
    except FileNotFoundError as exc:
        print(f"tandem traffic export: {exc}", file=sys.stderr)
        return 2
    print(f"{counts['rows']} rows ({counts['error']} without an answer) -> {args.out}"
          + "".join(f"; {n} {k}" for k, n in counts.items() if k not in ("rows", "error") and n))
    return 0
