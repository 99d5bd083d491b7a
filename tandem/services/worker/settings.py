"""Typed settings of a worker (base_model or modifier_worker), validated at start-up."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_WORKER_", extra="forbid")

    service_name: str = Field("base_model", description="Name in logs and metrics (base_model, modifier_worker).")
    model_path: str | None = Field(None, description="Base GGUF (or .gguf.zst); empty means the embedded "
                                   "SmolLM2-135M-Instruct, or the base listed in the artifacts manifest.")
    artifacts_dir: str | None = Field(None, description="Artifacts folder whose manifest lists the base and "
                                      "the modifiers (kind 'modifier') this worker loads.")
    load_modifiers: bool = Field(False, description="Load the servable modifiers listed in the manifest.")
    base_model_name: str = Field("tandem-base", description="Model name the bare base answers to.")
    adapters: dict[str, str] = Field(default_factory=dict, description="Extra LoRA GGUFs: model name -> path.")
    slots: int = Field(4, ge=1, le=64, description="Sequences decoded together (continuous batching).")
    ctx_per_slot: int = Field(2048, ge=128, description="Context window of each sequence, in tokens.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for llama.cpp (default: all cores).")
    n_batch: int = Field(512, ge=32, description="Tokens per decode step (prompt chunks + decoding tokens).")
    max_queue: int = Field(16, ge=0, description="Requests that may wait for a slot; beyond, 503 + Retry-After.")
    max_switch_wait_s: float = Field(2.0, ge=0, description=(
        "How long the oldest request, if it needs another adapter, lets requests for the running "
        "adapter join the batch ahead of it (0: strict FIFO, a switch as soon as the batch drains)."))
    decode_lock: str | None = Field(None, description=(
        "A lock file shared with the other workers on this machine: one decode step at a time, each with "
        "all its threads (tandem up sets it when it runs two workers on all cores)."))
    default_max_tokens: int = Field(512, ge=1, description="max_tokens when a request gives none.")
    max_body_bytes: int = Field(8_000_000, ge=1024, description=(
        "Largest request body accepted; above the router's 2 MB, since relaying re-encodes a body "
        "(JSON escapes can make it longer)."))
    engine_fault_after_admits: int | None = Field(None, ge=0, description=(
        "Tests only: the engine thread raises after admitting this many requests, to exercise what a "
        "dead engine does (503s, unready, exit for a restart). Never set it in a deployment."))
