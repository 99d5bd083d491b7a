"""Run one service as its own process: `python -m tandem.services.<name> --port P --settings JSON`.

`tandem up` starts every service this way; the settings travel as JSON so the child validates
exactly what the parent resolved.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI
from pydantic_settings import BaseSettings


def run_service(name: str, settings_cls: type[BaseSettings], create_app: Callable[[BaseSettings], FastAPI],
                argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m tandem.services.{name}", description=f"Run the Tandem {name} service.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--settings", default=None, help="Settings as a JSON object (else from TANDEM_* env vars).")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=f"%(asctime)s {name} %(levelname)s %(message)s")
    settings = settings_cls.model_validate_json(args.settings) if args.settings else settings_cls()
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=5)
