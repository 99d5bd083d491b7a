"""What may reach a log: never a prompt or a secret, unless an operator opts in.

An exception's message can quote what it failed on: pydantic quotes the input value, a decoder
the text around the fault. Those are users' prompts, so by default a logged failure keeps its
traceback (files, lines, exception types), which is what debugging needs, and withholds the
messages. `TANDEM_LOG_PAYLOADS=1` puts the messages back, with anything that looks like a
credential (a bearer header, an `sk-` key, this process's internal token) redacted.
"""

from __future__ import annotations

import re
import traceback

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.common.internal_auth import InternalAuthSettings

REDACTED = "[REDACTED]"
_CREDENTIALS = re.compile(r"(?i)(bearer\s+)[^\s'\",}]+|\bsk-[A-Za-z0-9_\-]{8,}")


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_LOG_", extra="ignore")

    payloads: bool = Field(False, description="Log exception messages, which may quote request text "
                           "(credentials are redacted still).")


def redact(text: str) -> str:
    text = _CREDENTIALS.sub(lambda m: (m.group(1) or "") + REDACTED, text)
    token = InternalAuthSettings().token
    return text.replace(token.get_secret_value(), REDACTED) if token else text


def describe_failure(exc: BaseException, with_messages: bool | None = None) -> str:
    """The exception's traceback (its causes first, as Python prints them), messages only if allowed."""
    if with_messages is None:
        with_messages = LogSettings().payloads
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    lines: list[str] = []
    for failure in reversed(chain):
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_tb(failure.__traceback__)
        message = redact(str(failure)) if with_messages else "<message withheld: set TANDEM_LOG_PAYLOADS=1>"
        lines.append(f"{type(failure).__module__}.{type(failure).__qualname__}: {message}\n")
    return "".join(lines).rstrip("\n")
