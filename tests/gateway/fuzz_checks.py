"""schemathesis hooks for tests/gateway/test_gateway_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

`positive_data_acceptance_or_runtime_refusal`: schemathesis's positive_data_acceptance (a request the
schema allows is answered 2xx, or 404 when what it names does not exist: its default) plus the refusals
no JSON schema can state: a prompt longer than the context window, a constraint between fields
(tool_choice naming a tool that was not offered, top_logprobs without logprobs), a JSON schema
llama.cpp cannot turn into a grammar, and shedding under load (429/503 with Retry-After). Each is
accepted only in OpenAI's error shape, with the code or param that names it; any other refusal of
valid data fails.
"""

from __future__ import annotations

import schemathesis

# (status, error.code or None, error.param or None): the refusals of schema-valid data no schema can state
RUNTIME_REFUSALS = {
    (400, "context_length_exceeded", None),  # prompt + max_tokens beyond the served context
    (400, None, "tool_choice"),  # names a function not offered, or requires a call with no tools
    (400, None, "top_logprobs"),  # top_logprobs needs logprobs=true
    (400, None, "response_format"),  # a forced tool call and a response format together
    (400, None, "response_format.json_schema.schema"),  # a schema llama.cpp's converter cannot compile
}
SHED = {429, 503}
NOT_FOUND = 404  # a model, request id or path resource that does not exist (schemathesis's default allows it)


def _refusal(response) -> tuple[int, str | None, str | None] | None:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(error, dict):
        return None
    return response.status_code, error.get("code"), error.get("param")


@schemathesis.check
def positive_data_acceptance_or_runtime_refusal(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or 200 <= response.status_code < 300:
        return None
    if response.status_code in SHED and response.headers.get("retry-after"):
        return None
    refusal = _refusal(response)
    if refusal is not None and refusal[0] == NOT_FOUND:
        return None
    if refusal is not None:
        status, code, param = refusal
        if (status, code, None) in RUNTIME_REFUSALS or (status, None, param) in RUNTIME_REFUSALS:
            return None
    raise AssertionError(f"Valid data was refused ({response.status_code}) for a reason the schema does not state: "
                         f"{response.text[:300]}")
