"""Run one service as its own process: `python -m tandem.services.<name> --port P --settings JSON`.

`tandem up` starts every service this way; the settings travel as JSON so the child validates
exactly what the parent resolved. Secrets (API keys, the internal token) travel in the
environment instead: a command line is readable by every user of the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI
from pydantic_settings import BaseSettings

from tandem.common.internal_auth import is_loopback
from tandem.common.keep_alive import SERVER_KEEP_ALIVE_S


def run_service(name: str, settings_cls: type[BaseSettings], create_app: Callable[[BaseSettings], FastAPI],
                argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m tandem.services.{name}", description=f"Run the Tandem {name} service.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--settings", default=None, help="Settings as a JSON object (else from TANDEM_* env vars).")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=f"%(asctime)s {name} %(levelname)s %(message)s")
    # Given fields win; the environment fills the rest (secrets such as API keys travel there, not in argv).
    settings = settings_cls(**json.loads(args.settings)) if args.settings else settings_cls()
    app = create_app(settings)
    if app.state.open_internal and not is_loopback(args.host):
        parser.error(f"{name} has no internal token, so it would answer anyone on {args.host}: set "
                     "TANDEM_INTERNAL_TOKEN (or TANDEM_INTERNAL_TOKEN_FILE), or bind to 127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                           timeout_graceful_shutdown=5, timeout_keep_alive=SERVER_KEEP_ALIVE_S))
    app.state.server = server  # lets a service shut itself down gracefully (server.should_exit)
    server.run()
    # A service that stops itself because it can no longer serve (a worker whose engine died) says so
    # with a non-zero exit, so that its supervisor restarts it.
    code = getattr(app.state, "exit_code", 0)
    if code:
        sys.exit(code)
