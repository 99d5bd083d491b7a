"""Which models answer which task slice when candidate modifiers are gated (`tandem build`, task_matrix)."""

from __future__ import annotations

from pathlib import Path

IRRELEVANCE = "irrelevance"


def evaluation_plan(configs: list, adapters: dict[str, Path], cross_limit: int,
                    irrelevance_limit: int, cost_configs: list | None = None
                    ) -> tuple[dict, dict[str, list[str]], frozenset[str]]:
    """(slices, models per slice, slices every model answers in full). Each domain's slice: the base
    and its own modifier first (they gate), then the other modifiers (their cost there); BFCL
    irrelevance: every model, to see whether a modifier calls tools where none fits. `cost_configs`:
    domains with no candidate this time whose task still measures the candidates' cost (the base
    and every candidate on the first `cross_limit` items of it)."""
    from tandem.training.modifiers.config import TaskSlice
    from tandem.training.modifiers.task_eval import BASE_MODEL

    slices = {c.domain: c.evaluation.task for c in configs}
    plan = {d: [BASE_MODEL, f"tandem-{d}", *(m for m in adapters if m != f"tandem-{d}" and cross_limit)]
            for d in slices}
    for c in cost_configs or []:
        if c.domain in slices or not cross_limit:
            continue
        slices[c.domain] = c.evaluation.task.model_copy(update={"limit": cross_limit})
        plan[c.domain] = [BASE_MODEL, *adapters]
    if irrelevance_limit:
        slices[IRRELEVANCE] = TaskSlice(suite="bfcl", limit=irrelevance_limit,
                                        where={"category": ["irrelevance"]}, max_tokens=256)
        plan[IRRELEVANCE] = [BASE_MODEL, *adapters]
    return slices, plan, frozenset({IRRELEVANCE})


def adapter_digests(adapters: dict[str, Path]) -> dict[str, str]:
    from tandem.common.manifest import sha256_file

    return {model: sha256_file(path) for model, path in adapters.items()}
