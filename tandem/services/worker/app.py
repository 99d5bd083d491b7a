"""Worker app factory: one BatchedEngine (base GGUF + LoRA adapters) behind the OpenAI API.

`POST /admin/reload` (internal credential, like every path but the probes) re-reads the artifacts
manifest and swaps in the modifiers it lists now without a restart: a changed or new adapter is
loaded under a versioned engine name first, then new requests are pointed at it while requests
already queued or running finish on the version they started with, which the engine frees after
them. A manifest whose base is not the one loaded is refused (409): a new base needs a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tandem.common.errors import InvalidRequestError, ModelNotFoundError, TandemError
from tandem.common.legacy_wire import CompletionRequest
from tandem.common.metrics import ServiceMetrics
from tandem.common.service_app import service_app
from tandem.common.wire import ChatCompletionRequest, ModelCard, ModelList
from tandem.services.engine.batched import BatchedEngine, SamplingParams
from tandem.services.engine.chat import ChatPrompter
from tandem.services.worker.constraints import output_grammar
from tandem.services.worker.generation import (
    ClientDisconnected,
    CompletionObserver,
    complete,
    offers_tools,
    stream,
)
from tandem.services.worker.model_loading import ServedModels, resolve_served_models
from tandem.services.worker.settings import WorkerSettings
from tandem.services.worker.text_completion import complete_text, stream_text

log = logging.getLogger(__name__)

ENGINE_DEATH_EXIT_CODE = 70  # EX_SOFTWARE: `tandem up` restarts a worker that exits


class WorkerState:
    def __init__(self, settings: WorkerSettings, served: ServedModels, engine: BatchedEngine):
        self.settings = settings
        self.served = served
        self.engine = engine
        bos, eos = engine.special_token_texts()
        self.prompter = ChatPrompter(engine.metadata(), bos_token=bos, eos_token=eos)
        self.engine_names = {name: name for name in served.adapters}  # model -> the engine's adapter name
        self.reload_lock = asyncio.Lock()
        self.reloads = 0

    def adapter_for(self, model: str) -> str | None:
        """The engine's name of the adapter that answers `model` now (None: the base)."""
        if model == self.settings.base_model_name:
            return None
        if model in self.served.adapters:
            return self.engine_names[model]
        known = ", ".join(self.model_names())
        reason = self.served.refused.get(model)
        detail = f" It was refused at start-up: {reason}." if reason else ""
        raise ModelNotFoundError(f"The model '{model}' does not exist on this worker.{detail} Known: {known}.",
                                 param="model")

    def model_names(self) -> list[str]:
        return [self.settings.base_model_name, *self.served.adapters]


class ReloadRefusedError(TandemError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "reload_refused"


async def reload_adapters(state: WorkerState) -> dict:
    """Swap in the adapters the manifest lists now (module docstring): load first, then point the
    model names at them, then retire what no model name points at any more."""
    async with state.reload_lock:
        served = await asyncio.to_thread(resolve_served_models, state.settings)
        if served.base_sha256 != state.served.base_sha256:
            raise ReloadRefusedError(f"The manifest's base ({served.base_sha256[:12]}) is not the loaded one "
                                     f"({state.served.base_sha256[:12]}): restart the worker to change the base.")
        names = dict(state.engine_names)
        loaded, kept = [], []
        for model, path in served.adapters.items():
            key = served.adapter_key(model)  # sha256, and the LoRA scale when not 1.0
            if model in state.served.adapter_sha256 and state.served.adapter_key(model) == key:
                kept.append(model)
                continue
            name = f"{model}@{key[:16]}" + (key[64:] if len(key) > 64 else "")
            if not state.engine.keep_adapter(name):  # a version retired earlier may still be loaded
                await asyncio.to_thread(state.engine.load_adapter, name, path, served.scale(model))
            names[model] = name
            loaded.append(model)
        names = {model: names[model] for model in served.adapters}
        retired = sorted(set(state.engine_names.values()) - set(names.values()))
        state.engine_names, state.served = names, served  # one assignment each: requests see old or new
        for name in retired:
            state.engine.retire_adapter(name)
        state.reloads += 1
        log.info("reload %d: loaded %s, kept %s, retired %s, refused %s", state.reloads, loaded or "none",
                 kept or "none", retired or "none", list(served.refused) or "none")
        return {"loaded": loaded, "kept": kept, "retired": retired, "refused": served.refused,
                "models": {m: served.version(m) for m in state.model_names()}}


def get_state(request: Request) -> WorkerState:
    return request.app.state.worker


StateDep = Annotated[WorkerState, Depends(get_state)]


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    settings = settings or WorkerSettings()
    metrics = ServiceMetrics(settings.service_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        served = resolve_served_models(settings)
        engine = await asyncio.to_thread(
            BatchedEngine, served.base_path, slots=settings.slots, ctx_per_slot=settings.ctx_per_slot,
            n_threads=settings.n_threads, n_batch=settings.n_batch, max_queue=settings.max_queue,
            adapters={name: str(path) for name, path in served.adapters.items()},
            adapter_scales=dict(served.adapter_scales),
            max_switch_wait_s=settings.max_switch_wait_s, decode_lock=settings.decode_lock,
            fault_after_admits=settings.engine_fault_after_admits)
        loop = asyncio.get_running_loop()
        engine.on_death = lambda reason: loop.call_soon_threadsafe(_exit_after_engine_death, app, reason)
        engine.start()
        metrics.queue_depth.labels(settings.service_name).set_function(lambda: engine.queue_depth)
        metrics.active.labels(settings.service_name).set_function(lambda: engine.active_count)
        app.state.worker = WorkerState(settings, served, engine)
        log.info("%s ready: base %s, adapters %s", settings.service_name, served.base_path.name,
                 list(served.adapters) or "none")
        try:
            yield
        finally:
            await asyncio.to_thread(engine.stop)

    app = service_app(f"Tandem {settings.service_name}", lifespan, metrics, max_body_bytes=settings.max_body_bytes,
                      internal=True)

    @app.get("/ready")
    def ready(request: Request) -> JSONResponse:
        state: WorkerState | None = getattr(request.app.state, "worker", None)
        if state is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        if not state.engine.alive:
            return JSONResponse({"status": "engine stopped", "reason": state.engine.failure, "pid": os.getpid()},
                                status_code=503)
        return JSONResponse({"status": "ready", "models": state.model_names(), "refused": state.served.refused,
                             "base_sha256": state.served.base_sha256, "slots": settings.slots,
                             "ctx_per_slot": state.engine.ctx_per_slot, "active": state.engine.active_count,
                             "waiting": state.engine.queue_depth, "adapter_switches": state.engine.adapter_switches,
                             "reloads": state.reloads, "adapters_freed": state.engine.adapters_freed,
                             "pid": os.getpid()})

    @app.post("/admin/reload")
    async def reload(state: StateDep) -> dict:
        """Re-read the manifest and serve the modifiers it lists now (module docstring)."""
        return await reload_adapters(state)

    @app.get("/v1/models")
    def models(state: StateDep) -> ModelList:
        return ModelList(data=[ModelCard(id=name, version=state.served.version(name))
                               for name in state.model_names()])

    @app.get("/v1/models/{model_id:path}")
    def model(model_id: str, state: StateDep) -> ModelCard:
        state.adapter_for(model_id)  # 404 in the OpenAI shape when not served here
        return ModelCard(id=model_id)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request, state: StateDep):
        """Legacy completions: the prompt as is, no chat template."""
        started = time.perf_counter()
        route = body.model if body.model in state.model_names() else "unknown"  # a metric label: never client text
        try:
            adapter = state.adapter_for(body.model)
            tokens = state.engine.tokenize(body.text)
            params = SamplingParams(max_tokens=max(1, min(body.max_tokens, state.engine.ctx_per_slot - len(tokens))),
                                    temperature=body.temperature, top_p=body.top_p, seed=body.seed,
                                    stop=body.stop or [])
            handle = state.engine.submit(tokens, params, adapter)
        except TandemError as exc:
            metrics.observe(route, exc.status_code)
            raise
        observer = CompletionObserver(started)
        if body.stream:
            async def body_iter():
                status = 200
                try:
                    async for part in stream_text(handle, body, observer):
                        yield part
                except BaseException:
                    status = 499
                    raise
                finally:
                    metrics.observe(route, status, time.perf_counter() - started)
            return StreamingResponse(body_iter(), media_type="text/event-stream",
                                     headers={"x-tandem-route": body.model, "cache-control": "no-cache"})
        try:
            response = await complete_text(handle, body, request, observer)
        except TandemError as exc:
            metrics.observe(route, exc.status_code, time.perf_counter() - started)
            raise
        except ClientDisconnected:
            metrics.observe(route, 499, time.perf_counter() - started)
            return Response(status_code=499)
        metrics.observe(route, 200, time.perf_counter() - started)
        metrics.tokens(route, observer.prompt_tokens, observer.completion_tokens)
        return JSONResponse(response.model_dump(exclude_none=True), headers={"x-tandem-route": body.model})

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request, state: StateDep):
        started = time.perf_counter()
        # A metric label, so never the client's string: an unknown model is counted as "unknown".
        route = body.model if body.model in state.model_names() else "unknown"
        try:
            adapter = state.adapter_for(body.model)
            # tool_choice "none": the tools are not described, so the model is not asked for a JSON call
            prompt = state.prompter.render([m.model_dump(exclude_none=True) for m in body.messages],
                                           body.tools if offers_tools(body) else None)
            tokens = state.engine.tokenize_prompt(prompt)
            room = state.engine.ctx_per_slot - len(tokens)
            requested = body.token_limit(settings.default_max_tokens)
            grammar = output_grammar(body)
            if grammar is not None:
                try:
                    state.engine.check_grammar(grammar)
                except ValueError as exc:
                    raise InvalidRequestError(f"The requested output format cannot be enforced: {exc}.",
                                              param="response_format") from exc
            params = SamplingParams(
                max_tokens=max(1, min(requested, room)), temperature=body.temperature, top_p=body.top_p,
                seed=body.seed, stop=body.stop or [], logprobs=body.logprobs,
                top_logprobs=body.top_logprobs or 0, grammar=grammar)
            if body.top_logprobs and not body.logprobs:
                raise InvalidRequestError("top_logprobs requires logprobs=true", param="top_logprobs")
            handle = state.engine.submit(tokens, params, adapter)
        except TandemError as exc:
            metrics.observe(route, exc.status_code)
            raise
        observer = CompletionObserver(started)

        def record(status: int) -> None:
            metrics.observe(route, status, time.perf_counter() - started)
            metrics.tokens(route, observer.prompt_tokens, observer.completion_tokens)
            if observer.ttft is not None:
                metrics.ttft.labels(settings.service_name, route).observe(observer.ttft)

        if body.stream:
            async def body_iter():
                status = 200
                try:
                    async for part in stream(handle, body, observer):
                        yield part
                except BaseException:
                    status = 499
                    raise
                finally:
                    record(status)
            return StreamingResponse(body_iter(), media_type="text/event-stream",
                                     headers={"x-tandem-route": route, "cache-control": "no-cache"})
        try:
            response = await complete(handle, body, request, observer)
        except TandemError as exc:
            record(exc.status_code)
            raise
        except ClientDisconnected:
            record(499)
            return Response(status_code=499)
        except asyncio.CancelledError:
            record(499)
            raise
        record(200)
        return JSONResponse(response.model_dump(exclude_none=True), headers={"x-tandem-route": route})

    return app


def _exit_after_engine_death(app: FastAPI, reason: str) -> None:
    """A worker whose engine thread died serves nothing: it has already failed every request it held
    (503), and now shuts down with a non-zero exit code so that its supervisor restarts it. The short
    delay lets those error responses reach their clients first."""
    log.critical("engine stopped (%s): shutting down for a restart", reason)
    app.state.exit_code = ENGINE_DEATH_EXIT_CODE
    server = getattr(app.state, "server", None)  # set by launch.run_service
    if server is not None:
        asyncio.get_running_loop().call_later(0.5, setattr, server, "should_exit", True)
    else:  # served some other way: its own SIGTERM handling decides the exit code
        asyncio.get_running_loop().call_later(0.5, os.kill, os.getpid(), signal.SIGTERM)
