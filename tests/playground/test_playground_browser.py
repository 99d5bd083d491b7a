"""The playground in a real Chromium against a real `tandem up`: key handling, a streamed and routed
answer, the cache, feedback reaching /metrics, the live panel, a fallback answer with its cost,
a stop sequence and a stopped stream, errors in the OpenAI shape (unknown model, a worker dying
mid-answer, then down), keyboard use, a phone-width window and a clean browser console. The tests
share one tab and run in file order; each saves screenshots of the states it reaches in its own
tmp_path."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_for
from tests.playground.conftest import API_KEY

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

CODE_QUESTION = "Write a Python function that reverses a string."
LAST = "#messages > li:last-child"
# Chromium logs each HTTP error a fetch receives as a console error; only those the test provokes are allowed.
HTTP_ERROR_LOG = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")
# wait_for_function gets arrow functions, not bare expressions: Playwright evaluates an expression with
# eval(), which the page's Content-Security-Policy (no 'unsafe-eval') refuses.


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def _metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def _assert_console_clean(page, allowed_statuses: tuple[int, ...] = ()) -> None:
    """No console errors or uncaught exceptions except HTTP errors the test provoked on purpose."""
    unexpected = []
    for text in page.log.errors():
        match = HTTP_ERROR_LOG.search(text)
        if match is None or int(match.group(1)) not in allowed_statuses:
            unexpected.append(text)
    page.log.entries.clear()
    assert not unexpected, unexpected


def _tab_to(page, selector: str, presses: int = 60) -> None:
    """Move the focus with the Tab key until `selector` has it: the control is reachable by keyboard."""
    for _ in range(presses):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} not reachable with Tab")


def _set_model(page, model: str) -> None:
    _tab_to(page, "#model")
    page.keyboard.press("Control+A")
    page.keyboard.type(model)


def _send(page, text: str):
    """Type `text` into the prompt and press Enter; the chat response as the browser received it."""
    _tab_to(page, "#prompt")
    page.keyboard.type(text)
    with page.expect_response(lambda r: r.url.endswith("/v1/chat/completions")) as response:
        page.keyboard.press("Enter")
    page.wait_for_selector(f"{LAST}.assistant[data-settled='true']")
    return response.value


def _fact(page, name: str) -> str:
    return page.text_content(f"{LAST} dd[data-fact='{name}']").strip()


def _new_chat(page) -> None:
    _tab_to(page, "#new-chat")
    page.keyboard.press("Enter")


def test_the_page_asks_for_a_key_and_keeps_it_in_the_tab_only(page, served, tmp_path):
    document = page.goto(served.url)  # / redirects to the page
    assert page.url == f"{served.url}/ui/"
    # The page talks to its own origin only and may not be framed (it holds a key).
    assert "connect-src 'self'" in document.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in document.headers["content-security-policy"]
    page.wait_for_function("() => document.querySelector('#key-status').textContent.includes('needs an API key')")
    page.screenshot(path=tmp_path / "01-needs-key.png", full_page=True)
    # Nothing the page shows is readable without the key.
    for path in ("/v1/models", "/v1/recent", "/v1/prices"):
        assert httpx.get(f"{served.url}{path}", timeout=10).status_code == 401
    bad_limit = httpx.get(f"{served.url}/v1/recent?limit=0", headers=_auth(), timeout=10)
    assert bad_limit.status_code == 400 and bad_limit.json()["error"]["param"] in ("limit", "query.limit")

    _tab_to(page, "#api-key")
    page.keyboard.type(API_KEY)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#key-status').textContent.startsWith('Connected')")
    assert page.evaluate("sessionStorage.getItem('tandem.apiKey')") == API_KEY
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    assert page.input_value("#api-key") == ""  # not left on screen
    models = page.eval_on_selector_all("#model-options option", "options => options.map(o => o.value)")
    assert {"auto", "tandem-base", "tandem-code", "gpt-4o"} <= set(models)
    page.screenshot(path=tmp_path / "02-connected.png", full_page=True)
    _assert_console_clean(page, allowed_statuses=(401,))


def test_a_coding_question_streams_in_with_its_route_then_hits_the_cache(page, served, tmp_path):
    expected_route = "tandem-code"  # auto sends a coding question to the code modifier
    _set_model(page, "auto")
    _tab_to(page, "#max-tokens")
    page.keyboard.press("Control+A")
    page.keyboard.type("48")

    # "Why this route?" answers while the question is typed, before anything is sent.
    _tab_to(page, "#prompt")
    page.keyboard.type(CODE_QUESTION)
    page.wait_for_function("() => document.querySelector('#why-summary').dataset.target !== undefined")
    assert page.get_attribute("#why-summary", "data-target") == expected_route
    assert "domain code" in page.text_content("#why-summary")
    assert page.locator("#why-bars .bar-row").count() >= 2
    page.screenshot(path=tmp_path / "03-why-this-route.png", full_page=True)
    page.fill("#prompt", "")

    # Record every change of the answer's text: a streamed answer grows in several steps.
    page.evaluate("""() => {
        window.answerLengths = [];
        new MutationObserver(() => {
            const content = document.querySelector('#messages > li:last-child.assistant .content');
            if (content) window.answerLengths.push(content.textContent.length);
        }).observe(document.querySelector('#messages'), {subtree: true, childList: true, characterData: true});
    }""")
    response = _send(page, CODE_QUESTION)
    lengths = [n for n in page.evaluate("window.answerLengths") if n > 0]
    assert len(set(lengths)) >= 3 and lengths == sorted(lengths), lengths
    assert page.get_attribute(LAST, "data-state") == "done"
    assert page.get_attribute(LAST, "aria-busy") == "false"  # announced to screen readers once, complete
    assert page.text_content(f"{LAST} .content").strip()
    assert response.headers["x-tandem-route"] == expected_route
    assert _fact(page, "route") == expected_route
    assert _fact(page, "domain").startswith("code")
    assert _fact(page, "cache") == "cache miss"
    assert _fact(page, "escalation") == "no"
    assert _fact(page, "cost") == "local: no API cost"
    assert re.fullmatch(r"\d+ ms", _fact(page, "ttft"))
    assert re.fullmatch(r"\d+\.\d tokens/s \(\d+ tokens\)", _fact(page, "speed"))
    assert _fact(page, "request-id") == response.headers["x-tandem-request-id"]
    assert page.locator(f"{LAST} .probabilities .bar-row.chosen .bar-label").text_content() == "code"
    page.screenshot(path=tmp_path / "04-answer-streamed.png", full_page=True)

    _new_chat(page)  # the same question as a new conversation: answered from the cache
    again = _send(page, CODE_QUESTION)
    assert again.headers["x-tandem-cache"] == "hit"
    assert _fact(page, "cache") == "cache hit"
    assert _fact(page, "route") == expected_route
    assert _fact(page, "speed") == "replayed from cache"
    page.screenshot(path=tmp_path / "05-cache-hit.png", full_page=True)
    _assert_console_clean(page)


def test_feedback_from_the_page_moves_the_metrics(page, served, tmp_path):
    request_id = _fact(page, "request-id")
    route = _fact(page, "route")
    ratings_before = _metric(served.url, "tandem_feedback_ratings_total", route=route, rating="1")
    wrong_before = _metric(served.url, "tandem_routing_feedback_total", predicted="code", actual="reasoning",
                           correct="false")

    _tab_to(page, f"{LAST} .thumb[data-rating='1']")
    page.keyboard.press("Space")
    page.wait_for_function(f"() => document.querySelector('{LAST} .feedback-status').dataset.result === 'ok'")
    assert page.get_attribute(f"{LAST} .thumb[data-rating='1']", "aria-pressed") == "true"
    assert _metric(served.url, "tandem_feedback_ratings_total", route=route, rating="1") == ratings_before + 1

    page.select_option(f"{LAST} .correct-domain", "reasoning")
    _tab_to(page, f"{LAST} .wrong-domain")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('{LAST} .feedback-status').textContent.includes('you said')")
    assert "the router said code, you said reasoning" in page.text_content(f"{LAST} .feedback-status")
    assert _metric(served.url, "tandem_routing_feedback_total", predicted="code", actual="reasoning",
                   correct="false") == wrong_before + 1
    assert request_id.startswith("req-")
    page.screenshot(path=tmp_path / "06-feedback.png", full_page=True)
    _assert_console_clean(page)


def test_the_live_panel_shows_the_routers_recent_decisions(page, served, tmp_path):
    recent = httpx.get(f"{served.url}/v1/recent?limit=5", headers=_auth(), timeout=10).json()
    assert [d["cache"] for d in recent["data"][:2]] == ["hit", "miss"]
    assert recent["totals"]["cache_hit_rate"] == pytest.approx(0.5)
    _tab_to(page, "#refresh-live")
    page.keyboard.press("Enter")
    newest = recent["data"][0]["request_id"]
    page.wait_for_selector(f"#recent tbody tr[data-request-id='{newest}']")
    assert page.text_content("#totals dd[data-fact='cache-hit-rate']") == "50%"
    assert page.text_content("#totals dd[data-fact='escalation-rate']") == "0%"
    assert page.locator("#domain-counts .bar-label").first.text_content() == "code"
    page.screenshot(path=tmp_path / "07-live-panel.png", full_page=True)
    _assert_console_clean(page)


def test_a_stop_sequence_ends_the_answer(page, served, tmp_path):
    _new_chat(page)
    _set_model(page, "tandem-code")
    _tab_to(page, "#stop-at")
    page.keyboard.type("(")
    try:
        response = _send(page, CODE_QUESTION)
    finally:
        page.fill("#stop-at", "")
    assert response.status == 200 and response.headers["x-tandem-route"] == "tandem-code"
    answer = page.text_content(f"{LAST} .content")
    # The same question without a stop sequence was answered with "def reverse_string(...)" above.
    assert "def reverse_string" in answer and "(" not in answer, answer
    page.screenshot(path=tmp_path / "08-stop-sequence.png", full_page=True)
    _assert_console_clean(page)


def test_escape_stops_a_streaming_answer(page, served, tmp_path):
    _new_chat(page)
    _set_model(page, "tandem-base")
    _tab_to(page, "#max-tokens")
    page.keyboard.press("Control+A")
    page.keyboard.type("400")
    _tab_to(page, "#temperature")
    page.keyboard.press("Control+A")
    page.keyboard.type("0.8")  # sampled: not answered from the cache, so there is a stream to stop
    closed_before = _metric(served.url, "tandem_requests_total", route="tandem-base", status="499")
    try:
        _tab_to(page, "#prompt")
        page.keyboard.type("Write a long story about a lighthouse keeper and the sea.")
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => document.querySelector('{LAST} .content').textContent.length > 20")
        page.keyboard.press("Escape")
        page.wait_for_selector(f"{LAST}.assistant[data-settled='true']")
    finally:
        page.fill("#max-tokens", "48")
        page.fill("#temperature", "0")
    assert page.get_attribute(LAST, "data-state") == "stopped"
    assert page.text_content(f"{LAST} .content").endswith("[stopped]")
    assert page.is_enabled("#send") and not page.is_enabled("#stop")
    # The router saw the client go and closed the worker's stream (counted as status 499).
    deadline = time.monotonic() + 30
    while _metric(served.url, "tandem_requests_total", route="tandem-base", status="499") == closed_before:
        assert time.monotonic() < deadline, "the router did not see the stream closed"
        time.sleep(0.2)
    page.screenshot(path=tmp_path / "09-stopped.png", full_page=True)
    _assert_console_clean(page)


def test_a_fallback_answer_shows_escalation_and_its_cost(page, served, tmp_path):
    _new_chat(page)
    _set_model(page, "gpt-4o")
    spend_before = _metric(served.fallback_url, "tandem_fallback_spend_usd_total", model="gpt-4o")
    response = _send(page, "Name one planet of the solar system.")
    assert response.headers["x-tandem-escalated"] == "true"
    assert _fact(page, "route") == "gpt-4o"
    assert _fact(page, "escalation") == "yes: explicit_model"
    cost = _fact(page, "cost")
    spent = _metric(served.fallback_url, "tandem_fallback_spend_usd_total", model="gpt-4o") - spend_before
    assert spent > 0 and cost == f"${spent:.6f}", (cost, spent)  # the page's figure is what the fallback charged
    page.screenshot(path=tmp_path / "10-fallback-cost.png", full_page=True)
    _assert_console_clean(page)


def test_an_unknown_model_is_shown_as_an_openai_error(page, served, tmp_path):
    _new_chat(page)
    _set_model(page, "no-such-model")
    response = _send(page, "Hello?")
    assert response.status == 404
    assert page.get_attribute(LAST, "data-state") == "error"
    title = page.text_content(f"{LAST} .error-box .error-title")
    assert title == "HTTP 404 · invalid_request_error · model_not_found"
    assert "The model 'no-such-model' does not exist" in page.text_content(f"{LAST} .error-box .error-message")
    assert page.get_attribute(f"{LAST} .error-box", "role") == "alert"
    page.screenshot(path=tmp_path / "11-unknown-model.png", full_page=True)
    _assert_console_clean(page, allowed_statuses=(404,))


def _child_pid(parent: int, module: str) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and module.encode() in cmdline:
            return int(entry.name)
    raise AssertionError(f"no {module} process under {parent}")


def _exited(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_a_worker_dying_mid_answer_and_staying_down_is_shown(page, served, tmp_path):
    supervisor = served.tandem.proc.pid
    # The modifier worker alone serves tandem-code (the base is served by both workers, so the router
    # would send tandem-base to the other one).
    worker = _child_pid(supervisor, "tandem.services.modifier_worker")
    os.kill(supervisor, signal.SIGSTOP)  # so `tandem up` does not restart the worker while we look
    try:
        _new_chat(page)
        _set_model(page, "tandem-code")
        _tab_to(page, "#max-tokens")
        page.keyboard.press("Control+A")
        page.keyboard.type("400")
        _tab_to(page, "#temperature")
        page.keyboard.press("Control+A")
        page.keyboard.type("0.8")  # sampled: generated, not replayed from the cache
        _tab_to(page, "#prompt")
        page.keyboard.type("Write a long story about a robot who learns to paint.")
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => document.querySelector('{LAST} .content').textContent.length > 20")
        os.kill(worker, signal.SIGKILL)
        page.wait_for_selector(f"{LAST}.assistant[data-settled='true']")
        assert page.get_attribute(LAST, "data-state") == "error"
        assert page.text_content(f"{LAST} .error-box .error-title") == \
            "Error during the stream · upstream_error · worker_failed"
        assert len(page.text_content(f"{LAST} .content")) > 20  # what had arrived stays on screen
        page.screenshot(path=tmp_path / "12-worker-died-mid-answer.png", full_page=True)
        deadline = time.monotonic() + 30
        while not _exited(worker):
            assert time.monotonic() < deadline, "worker did not stop"
            time.sleep(0.1)

        _new_chat(page)
        response = _send(page, "Is anyone there?")
        assert response.status == 503
        assert page.text_content(f"{LAST} .error-box .error-title") == "HTTP 503 · overloaded_error · overloaded"
        assert re.search(r"modifier_worker|tandem-code", page.text_content(f"{LAST} .error-box .error-message"))
        assert _fact(page, "route") == "tandem-code"  # the route facts of the failed request are shown too
        assert page.locator(f"{LAST} dd[data-fact='cost']").count() == 0  # nothing was answered or billed
        page.screenshot(path=tmp_path / "13-worker-down.png", full_page=True)
    finally:
        os.kill(supervisor, signal.SIGCONT)
        page.fill("#max-tokens", "48")
        page.fill("#temperature", "0")
    wait_for(f"{served.url}/ready", timeout=120)
    _assert_console_clean(page, allowed_statuses=(503,))


def test_the_page_fits_a_phone_width_window(page, served, tmp_path):
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.reload()
        page.wait_for_function("() => document.querySelector('#key-status').textContent.startsWith('Connected')")
        _tab_to(page, "#prompt")
        page.keyboard.type(CODE_QUESTION)
        page.wait_for_function("() => document.querySelector('#why-summary').dataset.target !== undefined")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=tmp_path / "14-phone-390.png", full_page=True)
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
    _assert_console_clean(page)
