"""The internal credential: the token the router presents to the services behind it.

Workers and the fallback serve only callers that present it (`Authorization: Bearer <token>`, the
header llama-server's and vLLM's `--api-key` check too, so either can stand in for a worker), so
nothing on the network can reach a model or spend the fallback's budget around the router's API
keys and rate limits. `tandem up` draws a random token per run and hands it to its children in
the environment; a deployment sets `TANDEM_INTERNAL_TOKEN` or points `TANDEM_INTERNAL_TOKEN_FILE`
at a mounted secret. The token never travels on a command line (`ps` shows those to every user).

Probes stay open: /health, /ready and /metrics carry no prompts and spend nothing.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Receive, Scope, Send

from tandem.common.errors import AuthenticationError, send_error

log = logging.getLogger(__name__)

TOKEN_ENV = "TANDEM_INTERNAL_TOKEN"
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
MIN_TOKEN_CHARS = 16
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class InternalAuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_INTERNAL_", extra="forbid")

    token: SecretStr | None = Field(None, description="The internal credential itself.")
    token_file: Path | None = Field(None, description="A file holding it (a mounted secret); wins over `token`.")

    @model_validator(mode="after")
    def _read_file(self) -> InternalAuthSettings:
        if self.token_file is not None:
            if not self.token_file.is_file():
                raise ValueError(f"TANDEM_INTERNAL_TOKEN_FILE {self.token_file} is not a readable file")
            self.token = SecretStr(self.token_file.read_text().strip())
        if self.token is not None and len(self.token.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"the internal token must be at least {MIN_TOKEN_CHARS} characters")
        return self

    def bearer_headers(self) -> dict[str, str]:
        """Headers a caller (the router) sends to reach an internal service."""
        return {"authorization": f"Bearer {self.token.get_secret_value()}"} if self.token else {}


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"authorization":
            text = value.decode("latin-1")
            return text[7:].strip() if text[:7].lower() == "bearer " else ""
    return ""


class InternalAuthMiddleware:
    """ASGI middleware: every path but the probes needs the internal token (constant-time compare)."""

    def __init__(self, app: ASGIApp, token: SecretStr):
        self.app = app
        self._token = token.get_secret_value().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        presented = bearer_token(scope["headers"]).encode()
        if not hmac.compare_digest(presented, self._token):
            error = AuthenticationError("This service answers only the Tandem router: present the internal "
                                        "token (Authorization: Bearer <TANDEM_INTERNAL_TOKEN>).")
            await send_error(send, error.status_code, error.body())
            return
        await self.app(scope, receive, send)
