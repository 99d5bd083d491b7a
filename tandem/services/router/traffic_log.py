"""Traffic sampling: the first half of the adaptive-learning loop (`tandem traffic export` reads it back).

Off unless the operator enables it (`traffic_log.enabled`). Then a share (`sample_rate`) of the
answered `/v1/chat/completions` requests (cache hits included, streams once they end) is written,
redacted, to JSONL files under `traffic_log.dir`. A client opts out per request with the header
`X-Tandem-No-Log: 1` (or true/yes) or OpenAI's body field `store: false`: such a request is never
sampled, only counted as opted_out. Requests refused before an answer (401, 413, 422, 429, 503 for
overload, router errors) are not logged.

What a record holds (one JSON line, `v` = RECORD_VERSION): request id, time (UTC, ISO 8601), the
requested model, the route facts (route, domain, confidence, reason, escalated, escalation reason or
refusal, cache result), whether it streamed, the messages (role and text after redaction; an
assistant's tool calls as name + redacted arguments; tool results' text redacted), the names of the
tools offered (never their schemas), the answer's text and tool calls (redacted), finish reason,
token usage, latency and status. Never an API key, an Authorization header or a client address: the
record is built from the request body and the response alone, and every text goes through the
redactor (tandem/common/redact.py) before it is written. Feedback (`POST /v1/feedback`) counted for a
request this process sampled is appended as a `kind: feedback` record (request id, rating, correct
domain), which the export joins to its request.

The request path only decides (opt-out, a random draw) and puts the raw request and response on a
bounded queue (`queue_size`); a full queue drops the record and counts it, never waits. One writer
thread redacts, serialises and appends. Files are named `traffic-<UTC start>-<pid>.jsonl` and rotate
when one reaches `max_file_bytes` or the UTC day changes; after each rotation the oldest files beyond
`max_files` are deleted, so the folder holds at most about `max_files * max_file_bytes`. Give each
router replica its own folder (the pruning counts every traffic file in it).

  tandem_traffic_log_total{event}   sampled, written, dropped (queue full), opted_out, error
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi.responses import Response, StreamingResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import Field, model_validator

from tandem.common.recipe_config import RecipeModel
from tandem.common.redact import KINDS, Redactor
from tandem.common.wire import ChatCompletionRequest
from tandem.services.cache.replay import StreamAssembler

log = logging.getLogger(__name__)

RECORD_VERSION = 1
OPT_OUT_HEADER = "x-tandem-no-log"
EVENTS = ("sampled", "written", "dropped", "opted_out", "error")
FILE_PREFIX = "traffic-"
SAMPLED_IDS_KEPT = 10_000  # request ids remembered to log the feedback they receive
RedactionKind = Literal["secret", "email", "iban", "card", "ip", "address", "phone", "name"]
assert set(RedactionKind.__args__) == set(KINDS)


class TrafficLogSettings(RecipeModel):
    enabled: bool = Field(False, description="Write a sample of answered chat requests, redacted, to `dir` "
                          "(opt-in: off unless the operator enables it).")
    sample_rate: float = Field(0.01, ge=0.0, le=1.0, description="Share of answered requests written "
                               "(requests that opted out are never drawn).")
    dir: Path | None = Field(None, description="Folder of the JSONL files (created when missing); needed when "
                             "enabled. One folder per router replica.")
    max_file_bytes: int = Field(64 * 1024 * 1024, ge=4096, description="A file rotates once it reaches this size.")
    max_files: int = Field(16, ge=1, description="Files kept; the oldest beyond are deleted at each rotation.")
    rotate_daily: bool = Field(True, description="Also rotate when the UTC day changes.")
    redact: list[RedactionKind] = Field(default_factory=lambda: list(KINDS), description=(
        "Redactions applied to every text before it is written: secret, email, iban, card, ip, phone."))
    queue_size: int = Field(1000, ge=1, description="Records waiting for the writer; beyond, dropped and counted.")
    max_chars: int = Field(32_000, ge=100, description="Characters kept of each text (message or answer).")
    max_stream_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Bytes of a stream kept to rebuild its "
                                  "answer; a longer stream is logged without its answer.")

    @model_validator(mode="after")
    def _check(self) -> TrafficLogSettings:
        if self.enabled and self.dir is None:
            raise ValueError("traffic_log.enabled needs traffic_log.dir")
        return self


class TrafficMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.events = Counter("tandem_traffic_log", "Traffic sampling: requests sampled, records written, dropped "
                              "(writer queue full), requests that opted out, and write errors.", ["event"],
                              registry=registry)
        for event in EVENTS:
            self.events.labels(event)


def opted_out(body: ChatCompletionRequest, headers) -> bool:
    value = headers.get(OPT_OUT_HEADER, "").strip().lower()
    return value in ("1", "true", "yes", "on") or (body.model_extra or {}).get("store") is False


@dataclass
class Pending:
    """What the request path hands the writer: raw, redacted in the writer thread."""

    body: ChatCompletionRequest
    headers: dict[str, str]
    status: int
    latency_s: float
    time: float
    raw: bytes = b""
    stream: bool = False
    stream_complete: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class TrafficLog:
    """Decide on the request path, write on a thread of its own."""

    def __init__(self, settings: TrafficLogSettings, metrics: TrafficMetrics, rng: random.Random | None = None):
        self.settings = settings
        self.metrics = metrics
        self.redactor = Redactor(settings.redact)
        self._rng = rng or random.Random()
        self._queue: queue.Queue[Pending | dict | None] = queue.Queue(maxsize=settings.queue_size)
        self.dir = Path(settings.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        probe = self.dir / f".write-test-{os.getpid()}"  # fail at start-up, not at the first sample
        probe.write_text("")
        probe.unlink()
        self._file = None
        self._path: Path | None = None
        self._day = ""
        self._sampled_ids: OrderedDict[str, None] = OrderedDict()
        self._thread = threading.Thread(target=self._run, name="traffic-log", daemon=True)
        self._thread.start()

    # -- request path ---------------------------------------------------------------------------

    def observe(self, response: Response, body: ChatCompletionRequest, request_headers, started: float) -> Response:
        """Called with every answered chat response; returns it (a sampled stream's body wrapped to keep
        a copy of what it sends). Never raises: the log is an observer."""
        try:
            if opted_out(body, request_headers):
                self.metrics.events.labels("opted_out").inc()
                return response
            if self.settings.sample_rate <= 0 or self._rng.random() >= self.settings.sample_rate:
                return response
            self.metrics.events.labels("sampled").inc()
            pending = Pending(body, dict(response.headers), response.status_code, 0.0, time.time())
            self._remember(pending.headers.get("x-tandem-request-id", ""))
            if isinstance(response, StreamingResponse):
                pending.stream = True
                response.body_iterator = self._tee(response.body_iterator, pending, started)
            else:
                pending.raw = bytes(response.body)
                pending.stream = body.stream
                pending.latency_s = time.perf_counter() - started
                self._put(pending)
        except Exception:
            log.exception("traffic log: sampling failed")
            self.metrics.events.labels("error").inc()
        return response

    async def _tee(self, iterator, pending: Pending, started: float):
        kept, size, complete = [], 0, False
        try:
            async for chunk in iterator:
                if size <= self.settings.max_stream_bytes:
                    kept.append(chunk)
                    size += len(chunk)
                yield chunk
            complete = True
        finally:
            if hasattr(iterator, "aclose"):
                await iterator.aclose()
            pending.latency_s = time.perf_counter() - started
            pending.stream_complete = complete
            pending.raw = b"".join(kept) if size <= self.settings.max_stream_bytes else b""
            pending.extra["stream_truncated"] = size > self.settings.max_stream_bytes
            self._put(pending)

    def feedback(self, request_id: str, rating: int | None, correct_domain: str | None, counted: list[str]) -> None:
        """Log the feedback counted for a request this log sampled (in this process), as a record of its own
        that `tandem traffic export` joins by request id. Feedback on unsampled or opted-out requests is not
        logged; neither is a repeat the ledger refused."""
        if request_id not in self._sampled_ids or not counted:
            return
        record = {"v": RECORD_VERSION, "kind": "feedback", "request_id": request_id,
                  "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                  "rating": rating if "rating" in counted else None,
                  "correct_domain": correct_domain if "domain" in counted else None}
        self._put(record)

    def _remember(self, request_id: str) -> None:
        if request_id:
            self._sampled_ids[request_id] = None
            while len(self._sampled_ids) > SAMPLED_IDS_KEPT:
                self._sampled_ids.popitem(last=False)

    def _put(self, pending: Pending | dict) -> None:
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            self.metrics.events.labels("dropped").inc()

    # -- writer thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            pending = self._queue.get()
            if pending is None:
                break
            try:
                record = self.record(pending) if isinstance(pending, Pending) else pending
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
                self._write(line.encode())
                self.metrics.events.labels("written").inc()
            except Exception:
                log.exception("traffic log: a record could not be written")
                self.metrics.events.labels("error").inc()
        if self._file is not None:
            self._file.close()

    def record(self, p: Pending) -> dict[str, Any]:
        text = self._text
        answer: dict[str, Any] | None = None
        if p.stream:
            if p.raw:
                assembler = StreamAssembler()
                assembler.feed(p.raw)
                answer = assembler.completion()
        elif p.status == 200:
            try:
                answer = json.loads(p.raw) if p.raw else None
            except ValueError:
                answer = None
        h = p.headers
        facts = (answer or {}).get("tandem") if isinstance((answer or {}).get("tandem"), dict) else {}
        route = {
            "route": facts.get("route", h.get("x-tandem-route", "")),
            "domain": facts.get("domain", h.get("x-tandem-domain", "")),
            "confidence": facts.get("confidence", _float(h.get("x-tandem-confidence"))),
            "reason": facts.get("reason", ""),
            "escalated": facts.get("escalated", h.get("x-tandem-escalated") == "true"),
            "escalation_reason": facts.get("escalation_reason", h.get("x-tandem-escalation-reason", "")),
            "escalation_refused": facts.get("escalation_refused", h.get("x-tandem-escalation-refused", "")),
            "cache": facts.get("cache", h.get("x-tandem-cache", "")),
        }
        choice = ((answer or {}).get("choices") or [{}])[0] if isinstance(answer, dict) else {}
        message = choice.get("message") or {}
        status = p.status
        if p.stream and not p.stream_complete:
            status = 499  # the client went away mid-stream
        elif p.stream and answer is None and not p.extra.get("stream_truncated"):
            status = 502 if p.status == 200 else p.status  # the stream ended with an error event
        return {
            "v": RECORD_VERSION,
            "kind": "request",
            "request_id": h.get("x-tandem-request-id", ""),
            "time": datetime.fromtimestamp(p.time, UTC).isoformat(timespec="milliseconds"),
            "model": p.body.model,
            **route,
            "stream": p.stream,
            "messages": [self._message(m) for m in p.body.messages],
            "tools": [_tool_name(t) for t in p.body.tools or []],
            "answer": text(message.get("content") or "") if answer is not None else None,
            "answer_tool_calls": [self._call(c) for c in message.get("tool_calls") or []],
            "finish_reason": choice.get("finish_reason"),
            "usage": (answer or {}).get("usage") if isinstance(answer, dict) else None,
            "latency_s": round(p.latency_s, 4),
            "status": status,
            **({"stream_truncated": True} if p.extra.get("stream_truncated") else {}),
        }

    def _text(self, value: str) -> str:
        return self.redactor.redact(value[:self.settings.max_chars])

    def _message(self, m) -> dict[str, Any]:
        out: dict[str, Any] = {"role": m.role, "content": self._text(m.text())}
        if m.tool_calls:
            out["tool_calls"] = [self._call(c) for c in m.tool_calls]
        return out

    def _call(self, call: dict) -> dict[str, Any]:
        function = call.get("function") or {} if isinstance(call, dict) else {}
        arguments = function.get("arguments")
        return {"name": str(function.get("name") or ""),
                "arguments": self._text(arguments if isinstance(arguments, str) else json.dumps(arguments))}

    def _write(self, line: bytes) -> None:
        now = datetime.now(UTC)
        day = now.strftime("%Y%m%d")
        if self._file is None or self._file.tell() + len(line) > self.settings.max_file_bytes and self._file.tell() \
                or (self.settings.rotate_daily and day != self._day):
            self._rotate(now)
        self._file.write(line)
        self._file.flush()

    def _rotate(self, now: datetime) -> None:
        if self._file is not None:
            self._file.close()
        stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
        self._path = self.dir / f"{FILE_PREFIX}{stamp}-{os.getpid()}.jsonl"
        self._file = open(self._path, "ab")  # noqa: SIM115 (kept open across writes, closed at rotation)
        self._day = now.strftime("%Y%m%d")
        files = sorted(self.dir.glob(f"{FILE_PREFIX}*.jsonl"))
        for old in files[:max(0, len(files) - self.settings.max_files)]:
            if old != self._path:
                old.unlink(missing_ok=True)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to `timeout`), then stop the writer."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("traffic log: writer still busy at shutdown; queued records are lost")
            return
        self._thread.join(timeout)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _tool_name(tool: dict) -> str:
    function = tool.get("function") if isinstance(tool, dict) else None
    return str((function or {}).get("name") or (tool or {}).get("name") or "") if isinstance(tool, dict) else ""
