"""`tandem up`: start the router, the base-model service, the modifier worker and (when configured)
the fallback service as separate processes on localhost, wait until all are ready, print the URL, restart a worker that dies, and
stop everything on Ctrl-C or SIGTERM leaving no orphans (children also get SIGTERM if this
process is killed outright, through PR_SET_PDEATHSIG)."""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import httpx
from pydantic import Field, SecretStr, model_validator

from tandem.common.internal_auth import TOKEN_ENV, InternalAuthSettings
from tandem.common.manifest import Manifest
from tandem.common.prices import Price
from tandem.common.recipe_config import RecipeModel, load_config
from tandem.common.served_artifacts import served_artifacts_dir
from tandem.services.cache.settings import CacheSettings
from tandem.services.escalation.settings import EscalationSettings
from tandem.services.router.judge import JudgeSettings
from tandem.services.router.traffic_log import TrafficLogSettings

log = logging.getLogger("tandem.services.up")

PR_SET_PDEATHSIG = 1


class WorkerSection(RecipeModel):
    enabled: bool | Literal["auto"] = Field("auto", description="auto: on when the manifest lists modifiers.")
    port: int
    slots: int = 4
    ctx_per_slot: int = 2048
    n_threads: int | None = None
    max_queue: int = 16


class RouterSection(RecipeModel):
    domain_router: str = Field("auto", description="auto: the trained ONNX router when the manifest lists one, "
                               "else keywords.")
    api_keys: list[SecretStr] = Field(default_factory=list, description="Accepted bearer keys; they reach the "
                                      "router in its environment, never on its command line.")
    api_keys_file: str | None = Field(None, description="A file of accepted keys, one per line.")
    rate_limit_per_minute: int | None = Field(None, description="Per validated key (per client address when auth "
                                              "is off); shared through redis_url when set.")
    request_timeout_s: float = 300.0
    max_waiting_requests: int = Field(128, ge=1, description="Requests waiting for an answer to start; beyond, 503.")
    request_deadline_s: float = Field(300.0, gt=0, description="Total time per request; beyond, 504.")
    cache: CacheSettings = Field(default_factory=CacheSettings, description="Response cache; its redis_url "
                                 "defaults to the top-level redis_url.")
    escalation: EscalationSettings = Field(default_factory=EscalationSettings, description="Escalation policies; "
                                           "fallback_url is set to the fallback service when it is enabled.")
    judge: JudgeSettings = Field(default_factory=JudgeSettings, description="Judge sampling (off by default; needs "
                                 "the fallback): a share of live auto requests labelled by a fallback model.")
    traffic_log: TrafficLogSettings = Field(default_factory=TrafficLogSettings, description="Traffic sampling "
                                            "(off by default): a share of answered chat requests, redacted, to "
                                            "JSONL files in traffic_log.dir for `tandem traffic export`.")


class FallbackSection(RecipeModel):
    """The fallback service: off unless `enabled` and an upstream are configured."""

    enabled: bool = False
    port: int = 8103
    upstream_base_url: str | None = Field(None, description="OpenAI-compatible upstream, e.g. https://api.openai.com/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the upstream key.")
    api_key_file: str | None = Field(None, description="File holding the upstream key (wins over the env).")
    model_map: dict[str, str] = Field(default_factory=lambda: {"gpt-4o": "gpt-4o"},
                                      description="Public model name -> upstream model name.")
    prices: dict[str, Price] = Field(default_factory=dict, description="USD per 1M tokens; default: "
                                     "configs/eval/prices.yaml.")
    daily_budget_usd: float = 10.0
    request_timeout_s: float = 60.0
    max_retries: int = 2
    circuit_failures: int = 3
    circuit_open_s: float = 30.0

    @model_validator(mode="after")
    def _check(self) -> FallbackSection:
        if self.enabled and not self.upstream_base_url:
            raise ValueError("fallback.enabled needs fallback.upstream_base_url")
        return self


class UpConfig(RecipeModel):
    host: str = Field("127.0.0.1", description="Interface of the router, the one public service.")
    port: int = 8000
    internal_host: str = Field("127.0.0.1", description="Interface of the workers and the fallback: loopback, "
                               "so that only the router (holding this run's internal token) reaches them.")
    model_path: str | None = Field(None, description="Base GGUF; default: the manifest's base, else embedded.")
    artifacts_dir: str = Field("artifacts", description="Artifacts folder (manifest.json); may not exist.")
    default_bundle: bool = Field(True, description="When artifacts_dir holds no manifest, serve the bundle "
                                 "shipped in the package (tandem/default_artifacts: gated modifiers + trained router).")
    base_model: WorkerSection = Field(default_factory=lambda: WorkerSection(enabled=True, port=8101))
    modifier_worker: WorkerSection = Field(default_factory=lambda: WorkerSection(port=8102))
    router: RouterSection = Field(default_factory=RouterSection)
    fallback: FallbackSection = Field(default_factory=FallbackSection)
    redis_url: str | None = Field(None, description="Redis for the response cache and the fallback's budget; "
                                  "empty: in-process (one router, budget per fallback process).")
    worker_cores: Literal["shared", "split"] = Field("shared", description=(
        "With two workers (base and modifiers): shared, each uses every core and they take turns per decode "
        "step through a lock file; split, the cores are divided between them. n_threads wins over both."))
    ready_timeout_s: float = 180.0
    max_restarts: int = Field(5, description="Restarts allowed per service before `tandem up` gives up on it.")


class ServiceProcess:
    def __init__(self, name: str, module: str, port: int, settings_json: str, host: str,
                 secrets: dict[str, str] | None = None):
        self.name, self.module, self.port, self.host = name, module, port, host
        self.settings_json = settings_json
        self.secrets = secrets or {}  # environment variables: a command line is visible to every user
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", self.module, "--host", self.host, "--port", str(self.port),
               "--settings", self.settings_json, "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, preexec_fn=_die_with_parent, env={**os.environ, **self.secrets})

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def internal_token() -> str:
    """The deployment's internal token when it set one, else a fresh random one for this run."""
    configured = InternalAuthSettings().token
    return configured.get_secret_value() if configured else secrets.token_urlsafe(32)


def decode_lock_path(config: UpConfig) -> Path:
    """The lock file the workers of this run share (engine/decode_lock.py); removed when it stops."""
    return Path(tempfile.gettempdir()) / f"tandem-decode-{os.getpid()}-{config.port}.lock"


def plan_services(config: UpConfig, token: str) -> list[ServiceProcess]:
    """The processes to start, with each one's settings resolved from the config and manifest, and
    `token` (the internal credential) in every one's environment."""
    secret_env = {TOKEN_ENV: token}
    artifacts = served_artifacts_dir(config.artifacts_dir, config.default_bundle)
    manifest = Manifest(artifacts) if artifacts else None
    has_modifiers = bool(manifest and manifest.entries(kind="modifier"))
    has_router = bool(manifest and manifest.entries(kind="router"))
    artifacts_dir = str(artifacts.resolve()) if manifest else None
    services, workers = [], []
    modifiers_on = has_modifiers if config.modifier_worker.enabled == "auto" else config.modifier_worker.enabled
    llama_workers = int(config.base_model.enabled) + int(bool(modifiers_on))
    # llama.cpp's threads spin at every barrier; two workers each taking all cores oversubscribe them
    # and both crawl when both are busy. So they either take turns per decode step (engine/decode_lock.py)
    # or split the cores.
    default_threads, decode_lock = None, None
    if llama_workers > 1 and config.worker_cores == "split":
        default_threads = max(1, len(os.sched_getaffinity(0)) // llama_workers)
    elif llama_workers > 1:
        decode_lock = str(decode_lock_path(config))

    def worker(name: str, section: WorkerSection, load_modifiers: bool) -> None:
        settings = {"service_name": name, "model_path": config.model_path, "artifacts_dir": artifacts_dir,
                    "load_modifiers": load_modifiers, "slots": section.slots, "ctx_per_slot": section.ctx_per_slot,
                    "n_threads": section.n_threads or default_threads, "max_queue": section.max_queue,
                    "decode_lock": decode_lock}
        services.append(ServiceProcess(name, f"tandem.services.{name}", section.port,
                                       _json(settings), config.internal_host, secret_env))
        workers.append({"name": name, "url": f"http://{_connectable(config.internal_host)}:{section.port}"})

    if config.base_model.enabled:
        worker("base_model", config.base_model, load_modifiers=False)
    if modifiers_on:
        worker("modifier_worker", config.modifier_worker, load_modifiers=True)
    domain_router = config.router.domain_router
    if domain_router == "auto":
        domain_router = "onnx" if has_router else "keywords"
    cache = config.router.cache.model_copy(update={"redis_url": config.router.cache.redis_url or config.redis_url})
    escalation = config.router.escalation
    fallback = config.fallback
    if fallback.enabled:
        fallback_settings = {**fallback.model_dump(exclude={"enabled", "port"}), "redis_url": config.redis_url}
        services.append(ServiceProcess("fallback", "tandem.services.fallback", fallback.port,
                                       _json(fallback_settings), config.internal_host, secret_env))
        escalation = escalation.model_copy(
            update={"fallback_url": f"http://{_connectable(config.internal_host)}:{fallback.port}"})
    router_settings = {"workers": workers, "domain_router": domain_router, "artifacts_dir": artifacts_dir,
                       "api_keys_file": config.router.api_keys_file,
                       "rate_limit_per_minute": config.router.rate_limit_per_minute,
                       "rate_limit_redis_url": config.redis_url,
                       "request_timeout_s": config.router.request_timeout_s,
                       "max_waiting_requests": config.router.max_waiting_requests,
                       "request_deadline_s": config.router.request_deadline_s, "cache": cache.model_dump(),
                       "escalation": escalation.model_dump(), "judge": config.router.judge.model_dump(),
                       "traffic_log": config.router.traffic_log.model_dump(mode="json")}
    router_env = {**secret_env, "TANDEM_ROUTER_API_KEYS": json.dumps([k.get_secret_value() for k in config.router.api_keys])}
    services.append(ServiceProcess("router", "tandem.services.router", config.port, _json(router_settings), config.host,
                                   router_env))
    return services


def _connectable(host: str) -> str:
    """An address to reach a service bound to `host` (a wildcard bind is reachable on loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _json(settings: dict) -> str:
    return json.dumps({k: v for k, v in settings.items() if v is not None})


def is_ready(service: ServiceProcess) -> bool:
    try:
        return httpx.get(f"{service.url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Supervisor:
    def __init__(self, config: UpConfig):
        self.config = config
        self.services = plan_services(config, internal_token())
        self._stopping = False

    def _on_signal(self, signum, _frame) -> None:
        self._stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            for service in self.services:  # workers first, the router last
                log.info("starting %s on %s", service.name, service.url)
                service.start()
            if not self._wait_ready(time.monotonic() + self.config.ready_timeout_s):
                return 0  # asked to stop while starting: a clean stop, like after startup
            router = self.services[-1]
            # /ready lists the models without an API key (the router may require one, maybe from a file).
            # It can read 503 again a moment later (a worker's first poll lagging): report, never crash on it.
            models = httpx.get(f"{router.url}/ready", timeout=5).json().get("models") or ["(see /v1/models)"]
            print(f"Tandem is up: {router.url}/v1  (models: {', '.join(models)})", flush=True)
            return self._watch()
        except RuntimeError as exc:
            log.error("%s", exc)
            return 1
        finally:
            for service in reversed(self.services):
                service.stop()
            decode_lock_path(self.config).unlink(missing_ok=True)
            log.info("all services stopped")

    def _wait_ready(self, deadline: float) -> bool:
        """Until every service answers /ready. A service that dies before its first /ready is an
        error (its log says why); one that dies after it is restarted, since the router is ready
        only once every worker is. False if a stop was asked for meanwhile."""
        ready: set[str] = set()
        while len(ready) < len(self.services):
            if self._stopping:
                return False
            if time.monotonic() > deadline:
                waiting = [s.name for s in self.services if s.name not in ready]
                raise RuntimeError(f"{', '.join(waiting)} not ready within {self.config.ready_timeout_s:.0f}s")
            for service in self.services:
                if not service.alive():
                    if service.name not in ready:
                        raise RuntimeError(f"{service.name} exited with code {service.proc.returncode} before it "
                                           "was ready (its log is above)")
                    ready.discard(service.name)
                    if not self._restart(service):
                        raise RuntimeError(f"{service.name} keeps dying")
                elif service.name not in ready and is_ready(service):
                    ready.add(service.name)
            time.sleep(0.3)
        return True

    def _restart(self, service: ServiceProcess) -> bool:
        code = service.proc.returncode
        if service.restarts >= self.config.max_restarts:
            log.error("%s died (exit %s) and was restarted %d times already; giving up", service.name,
                      code, service.restarts)
            return False
        service.restarts += 1
        log.error("%s died (exit %s); restarting (%d/%d). Its routes answer 503 meanwhile.",
                  service.name, code, service.restarts, self.config.max_restarts)
        service.start()
        return True

    def _watch(self) -> int:
        while not self._stopping:
            time.sleep(0.5)
            for service in self.services:
                if self._stopping or service.alive():
                    continue
                if not self._restart(service):
                    return 1
        return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "up", help="Serve Tandem: router + base model + modifier worker on localhost.",
        description="Start the router (public OpenAI-compatible endpoint), the base-model service and, when the "
        "artifacts manifest lists modifiers, the modifier worker, each as its own process. With no config and no "
        "artifacts this serves the embedded SmolLM2-135M-Instruct. Ctrl-C stops everything.")
    parser.add_argument("--config", help="YAML config (see configs/up.yaml); key=value overrides follow.")
    parser.add_argument("--port", type=int, help="Router port (default 8000).")
    parser.add_argument("--host", help="Interface to bind (default 127.0.0.1).")
    parser.add_argument("--artifacts", help="Artifacts folder (default ./artifacts).")
    parser.add_argument("--model-path", help="Base GGUF to serve instead of the embedded default.")
    parser.add_argument("overrides", nargs="*", help="Config overrides such as base_model.slots=8.")
    parser.set_defaults(func=run_up)


def run_up(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    for flag, key in (("port", "port"), ("host", "host"), ("artifacts", "artifacts_dir"), ("model_path", "model_path")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    config = load_config(UpConfig, args.config, overrides, with_defaults=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return Supervisor(config).run()
