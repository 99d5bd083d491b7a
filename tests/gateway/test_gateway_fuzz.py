"""Fuzz the live router against its own OpenAPI document with schemathesis, for a bounded time.

A real worker (the embedded GGUF, a small context so each generation is short) behind a real
router, both holding an internal token. schemathesis generates valid and invalid requests for
every operation and checks each answer: never a 5xx; a status, content type, headers and body
the document allows (every error in OpenAI's shape); invalid requests refused. A failure is
reported with the request that caused it (`curl` line) in the output.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys

import pytest

from tests.fallback.servers import start_service, stop_process

FUZZ_SECONDS = int(os.environ.get("TANDEM_FUZZ_SECONDS", "75"))
# Every check but the response-time limit (a generation on 2 busy cores is not a contract).
# positive_data_acceptance runs in our own form, positive_data_acceptance_or_runtime_refusal
# (tests/gateway/fuzz_checks.py): a schema-valid request is answered 2xx, or refused only for what no
# JSON schema can state (a prompt over the context window, a model not served now, a cross-field
# constraint, a JSON schema llama.cpp cannot compile, shedding with Retry-After), named by its error
# code or param.
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method,"
          "allow_header_conformance,use_after_free,ensure_resource_availability,ignored_auth,"
          "positive_data_acceptance_or_runtime_refusal")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIN_CASES = 100  # fixed before the first run: fewer means the fuzzer barely ran


@pytest.fixture(scope="module")
def fuzzed_router():
    env = {**os.environ, "TANDEM_INTERNAL_TOKEN": secrets.token_urlsafe(24)}
    worker, worker_url = start_service("tandem.services.base_model", {
        "service_name": "base_model", "slots": 2, "ctx_per_slot": 128, "default_max_tokens": 16}, env=env)
    try:
        router, url = start_service("tandem.services.router", {
            "workers": [{"name": "base_model", "url": worker_url}], "request_timeout_s": 60}, env=env)
    except Exception:
        stop_process(worker)
        raise
    yield url
    stop_process(router)
    stop_process(worker)


def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzzed_router, tmp_path):
    cli = shutil.which("schemathesis", path=os.path.dirname(sys.executable))
    assert cli, "schemathesis is a dev dependency: pip install -e .[dev]"
    result = subprocess.run(
        [cli, "run", f"{fuzzed_router}/openapi.json", "--checks", CHECKS, "--max-time", str(FUZZ_SECONDS),
         # /admin needs the internal credential, which a public client never has: its 401s are its contract
         "--exclude-path-regex", "^/admin", "--workers", "1", "--seed", "17", "--request-timeout", "90", "--suppress-health-check", "all",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=FUZZ_SECONDS + 240, check=False, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.gateway.fuzz_checks",
             "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    generated = re.search(r"Test cases:\s*(\d+) generated", output)
    assert generated, output[-4000:]
    assert int(generated.group(1)) >= MIN_CASES, output[-4000:]
