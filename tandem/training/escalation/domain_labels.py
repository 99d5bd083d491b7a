"""Escalation models per domain: which outcome labels stand for which domain's traffic.

A model fitted on one domain's failures says nothing about another's: the label set's ARC/MMLU
rows are multiple-choice exam questions the base answers at chance (about 80% "fail"), and a
difficulty model fitted on them escalated greetings. So each domain gets its own models, fitted
only on labels of benchmarks that stand for that domain's requests and answered by that domain's
route, and only when there are enough of both outcomes to learn from. A domain without such
labels (general chat: no benchmark here stands for it) has no model, and its requests are left
to the router-confidence and answer-structure policies until labels exist.
"""

from __future__ import annotations

from collections.abc import Iterable

from tandem.services.escalation.domains import domain_of_route
from tandem.training.escalation.labels import LabelRow

# Benchmarks whose items stand for a domain's traffic. ARC and MMLU (exam questions answered by
# the base) stand for no domain's traffic and fit no model.
DOMAIN_SUITES: dict[str, tuple[str, ...]] = {"reasoning": ("gsm8k", "math"), "code": ("mbpp", "humaneval"),
                                             "automation": ("bfcl",)}
MIN_ROWS = 30  # fewer train labels than this: no model for the domain
MIN_PER_OUTCOME = 5  # fewer failures (or successes) than this: nothing to tell them apart from


def label_domain(row: LabelRow) -> str | None:
    """The domain a label stands for: its route's, when its benchmark stands for that domain."""
    domain = domain_of_route(row.route)
    return domain if domain is not None and row.suite in DOMAIN_SUITES.get(domain, ()) else None


def by_domain(rows: Iterable[LabelRow]) -> dict[str, list[LabelRow]]:
    grouped: dict[str, list[LabelRow]] = {domain: [] for domain in DOMAIN_SUITES}
    for row in rows:
        domain = label_domain(row)
        if domain is not None:
            grouped[domain].append(row)
    return grouped


def why_no_model(rows: list[LabelRow]) -> str | None:
    """Why these train labels cannot fit a model, or None when they can."""
    fails = sum(r.fails for r in rows)
    if len(rows) < MIN_ROWS:
        return f"{len(rows)} labels (needs {MIN_ROWS})"
    if min(fails, len(rows) - fails) < MIN_PER_OUTCOME:
        return (f"{fails} failures and {len(rows) - fails} successes in {len(rows)} labels (needs "
                f"{MIN_PER_OUTCOME} of each to tell them apart)")
    return None
