"""The failure analysis run: failures -> MiniLM embeddings -> k-means -> named categories.

Writes to `out_dir`: `failures.json` (categories with terms, members and examples: the input of
`tandem distill`), `failures.md`, and a manifest entry `failure-analysis`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tandem.common.manifest import Manifest, write_json
from tandem.common.recipe_config import dump_config
from tandem.training.failures.cluster import choose_clusters, nearest_to_centre, top_terms
from tandem.training.failures.config import FailureAnalysisConfig
from tandem.training.failures.embed import embed
from tandem.training.failures.report import markdown_report
from tandem.training.failures.rows import load_failures, prompt_text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_text(row: dict[str, Any], mode: str, boilerplate: set[str]) -> str:
    prompt = without_lines(prompt_text(row.get("prompt")), boilerplate)
    if mode == "prompt_response":
        prompt = f"{prompt}\n\nAnswer given: {row.get('response') or ''}"
    return prompt


def boilerplate_lines(texts: list[str], min_share: float = 0.05, min_count: int = 3) -> set[str]:
    """Lines repeated verbatim across many prompts: the harness's instructions ("Answer with the letter
    of the correct option...") would otherwise name and shape the categories."""
    counts = Counter(line for t in texts for line in {s.strip() for s in t.splitlines()} if line)
    floor = max(min_count, min_share * len(texts))
    return {line for line, n in counts.items() if n >= floor}


def without_lines(text: str, lines: set[str]) -> str:
    kept = "\n".join(s for s in text.splitlines() if s.strip() not in lines).strip()
    return kept or text


def analyze(config: FailureAnalysisConfig) -> dict[str, Any]:
    failures = load_failures(config.results, config.pass_score)
    rows = failures.rows
    boilerplate = boilerplate_lines([prompt_text(r.get("prompt")) for r in rows])
    texts = [failure_text(r, config.embed_text, boilerplate)[: config.max_chars] for r in rows]
    vectors = embed(texts)
    clustering = choose_clusters(vectors, config.k_min, config.k_max, config.seed)
    terms = top_terms(texts, clustering.labels, clustering.k, config.top_terms)
    categories = []
    for c in range(clustering.k):
        members = [i for i, label in enumerate(clustering.labels) if label == c]
        examples = [
            {
                "suite": rows[i]["suite"],
                "id": rows[i]["id"],
                "score": rows[i]["score"],
                "prompt": _clip(prompt_text(rows[i].get("prompt")), 1500),
                "response": _clip(str(rows[i].get("response") or ""), 800),
            }
            for i in nearest_to_centre(vectors, clustering.labels, clustering.centres, c, config.examples)
        ]
        categories.append(
            {
                "id": c,
                "name": " / ".join(terms[c][:3]),
                "terms": terms[c],
                "size": len(members),
                "suites": dict(Counter(rows[i]["suite"] for i in members).most_common()),
                "examples": examples,
                "members": [{"suite": rows[i]["suite"], "id": rows[i]["id"]} for i in members],
            }
        )
    categories.sort(key=lambda cat: -cat["size"])
    report = {
        "failures": len(rows),
        "evaluated": sum(failures.total_by_suite.values()),
        "failure_rate_by_suite": {
            s: round(failures.failed_by_suite[s] / n, 4) for s, n in sorted(failures.total_by_suite.items())
        },
        "skipped": dict(failures.skipped),
        "k": clustering.k,
        "k_range": [config.k_min, config.k_max],
        "k_capped": clustering.k < config.k_min,
        "silhouette_by_k": {str(k): round(v, 4) for k, v in clustering.silhouette_by_k.items()},
        "embed_text": config.embed_text,
        "boilerplate_lines_removed": sorted(boilerplate),
        "categories": categories,
    }
    out = Path(config.out_dir)
    write_json(out / "failures.json", report)
    (out / "failures.md").write_text(markdown_report(report))
    Manifest(out).record(
        "failure-analysis",
        "report",
        ["failures.json", "failures.md"],
        config=dump_config(config),
        servable=False,
        metrics={
            "failures": len(rows),
            "k": clustering.k,
            "silhouette": round(clustering.silhouette_by_k[clustering.k], 4),
        },
    )
    return report
