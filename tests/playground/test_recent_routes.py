"""The live panel's memory: bounded, newest first, totals that count every response since start."""

from starlette.datastructures import Headers

from tandem.services.router.recent import RecentRoutes


def _headers(route: str, cache: str, escalated: bool = False, domain: str = "code") -> Headers:
    facts = {"x-tandem-route": route, "x-tandem-domain": domain, "x-tandem-confidence": "0.8100",
             "x-tandem-cache": cache, "x-tandem-escalated": str(escalated).lower(),
             "x-tandem-request-id": f"req-{route}-{cache}"}
    if escalated:
        facts["x-tandem-escalation-reason"] = "explicit_model"
    return Headers(facts)


def test_memory_is_bounded_and_totals_count_everything():
    recent = RecentRoutes(capacity=3)
    for i in range(5):
        recent.record(_headers(f"tandem-code-{i}", "miss"), 200)
    recent.record(_headers("tandem-code-0", "hit"), 200)
    recent.record(_headers("gpt-4o", "bypass", escalated=True, domain="general"), 200)
    recent.record(_headers("tandem-base", "miss"), 503)
    recent.record(Headers({"content-type": "application/json"}), 404)  # rejected before routing: no facts

    snapshot = recent.snapshot(limit=10)
    assert [d.route for d in snapshot.data] == ["tandem-base", "gpt-4o", "tandem-code-0"]
    assert snapshot.data[1].escalated and snapshot.data[1].escalation_reason == "explicit_model"
    assert snapshot.data[0].status == 503 and snapshot.data[0].confidence == 0.81
    totals = snapshot.totals
    assert (totals.requests, totals.errors, totals.escalated) == (8, 1, 1)
    assert totals.domains == {"code": 7, "general": 1}
    assert totals.cache_hit_rate == 1 / 7  # the bypassed request is no lookup
    assert totals.escalation_rate == 1 / 8
    assert [d.route for d in recent.snapshot(limit=1).data] == ["tandem-base"]


def test_rates_are_absent_before_any_request():
    totals = RecentRoutes().snapshot(limit=5).totals
    assert totals.cache_hit_rate is None and totals.escalation_rate is None
