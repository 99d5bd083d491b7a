"""Typed settings of the router service, validated at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.services.cache.settings import CacheSettings
from tandem.services.escalation.settings import EscalationSettings
from tandem.services.router.canary import CanarySettings
from tandem.services.router.feedback import FeedbackSettings
from tandem.services.router.judge import JudgeSettings
from tandem.services.router.traffic_log import TrafficLogSettings


class WorkerEndpoint(BaseModel):
    name: str = Field(description="Worker name in logs, metrics and errors (base_model, modifier_worker...).")
    url: str = Field(description="Base URL of a service speaking the worker contract, e.g. http://127.0.0.1:8101.")


class RouterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_ROUTER_", extra="forbid")

    service_name: str = "router"
    workers: list[WorkerEndpoint] = Field(
        default_factory=lambda: [WorkerEndpoint(name="base_model", url="http://127.0.0.1:8101")],
        description="Workers, in order of preference when several serve the same model.")
    base_model_name: str = Field("tandem-base", description="Model name of the bare base on the workers.")
    domains: list[str] = Field(default_factory=lambda: ["code", "reasoning", "automation", "general"],
                               description="Routing domains; 'tandem-<domain>' is that domain's modifier.")
    general_domain: str = Field("general", description="Domain served by the base model itself.")
    domain_router: str = Field("keywords", description="Domain router strategy for model='auto' (keywords, onnx).")
    artifacts_dir: str | None = Field(None, description="Artifacts folder (trained router, escalation models).")
    api_keys: list[SecretStr] = Field(default_factory=list, description=(
        "Accepted bearer keys; empty (and no api_keys_file) means no auth. Pass them in the environment "
        "(TANDEM_ROUTER_API_KEYS, a JSON list) or a file, not on a command line."))
    api_keys_file: Path | None = Field(None, description="A file of accepted keys, one per line (a mounted secret).")
    rate_limit_per_minute: int | None = Field(None, ge=1, description=(
        "Requests per minute per validated API key (per client address when auth is off)."))
    rate_limit_redis_url: str | None = Field(None, description=(
        "Redis shared by every router replica for the rate limit; in-process when empty."))
    rate_limit_redis_timeout_s: float = Field(0.5, gt=0, description=(
        "Redis timeout for the rate limit; past it this process counts alone."))
    max_body_bytes: int = Field(2_000_000, ge=1024, description="Largest request body accepted.")
    connect_timeout_s: float = Field(2.0, gt=0, description="Timeout to connect to a worker.")
    request_timeout_s: float = Field(300.0, gt=0, description="Timeout waiting for a worker's answer (504 after).")
    max_waiting_requests: int = Field(128, ge=1, description="Requests that may wait for an answer to start at "
                                      "once; beyond, 503 with Retry-After (limits.py).")
    request_deadline_s: float = Field(300.0, gt=0, description="Total time for one request, from arrival to its "
                                      "last byte, whatever it waits for; beyond, 504 with Retry-After (a stream "
                                      "ends with an error event).")
    model_refresh_s: float = Field(5.0, gt=0, description="How often worker model lists are refreshed.")
    cache: CacheSettings = Field(default_factory=CacheSettings, description="Response cache (checked before routing).")
    escalation: EscalationSettings = Field(default_factory=EscalationSettings,
                                           description="Escalation policies and the fallback service.")
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings,
                                       description="Routing feedback: decisions kept, shared through Redis.")
    canary: CanarySettings = Field(default_factory=CanarySettings,
                                   description="Routing canary over the router artifact's probe set.")
    judge: JudgeSettings = Field(default_factory=JudgeSettings,
                                 description="Judge sampling: a share of live routed requests labelled by the "
                                 "fallback model (off by default).")
    traffic_log: TrafficLogSettings = Field(default_factory=TrafficLogSettings,
                                            description="Traffic sampling: a share of answered chat requests, "
                                            "redacted, to JSONL files for the learning loop (off by default).")

    @model_validator(mode="after")
    def _check(self) -> RouterSettings:
        if not self.workers:
            raise ValueError("the router needs at least one worker")
        if self.api_keys_file is not None and not self.api_keys_file.is_file():
            raise ValueError(f"api_keys_file {self.api_keys_file} is not a readable file")
        if self.general_domain not in self.domains:
            raise ValueError(f"general_domain '{self.general_domain}' is not one of the domains {self.domains}")
        if self.judge.enabled and not self.escalation.fallback_url:
            raise ValueError("judge.enabled needs escalation.fallback_url: the judge is a fallback model")
        unknown = set(self.judge.descriptions) - set(self.domains)
        if unknown:
            raise ValueError(f"judge.descriptions names domains that are not routed: {sorted(unknown)}")
        return self

    def accepted_api_keys(self) -> list[SecretStr]:
        keys = list(self.api_keys)
        if self.api_keys_file is not None:
            lines = self.api_keys_file.read_text().splitlines()
            keys += [SecretStr(line.strip()) for line in lines if line.strip() and not line.startswith("#")]
        return keys
