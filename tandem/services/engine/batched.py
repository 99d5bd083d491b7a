"""Continuous-batching generation on llama.cpp through llama-cpp-python's low-level API.

Why not `llama_cpp.Llama`: it decodes one request at a time, and its server serializes requests
behind a lock and interrupts a running stream when a new one arrives. Here one engine thread owns
the llama.cpp context and runs a decode loop over up to `slots` sequences at once (one KV cache,
one sequence id per slot): each step feeds the next token of every decoding sequence plus a chunk
of any prompt still being read, so concurrent users share each forward pass instead of queuing
behind each other. A new request joins at the next step; it never interrupts a running one.

LoRA adapters are set on the context, so all sequences in a batch share one adapter. When the
oldest waiting request needs another adapter, requests for the running adapter may still join the
batch for up to `max_switch_wait_s`; then admission pauses until the running sequences finish, the
adapter is switched and the KV cache cleared (a cached prefix computed under another adapter must
never be reused). Interleaved traffic thus keeps its batches without starving anyone.

Prefix reuse: a finished sequence leaves its prompt's KV cells in the cache, and a new request starts
from the longest prefix it shares with any sequence there, its own slot's or another's (running or
finished): the cells are shared through `llama_memory_seq_cp` (one unified KV cache, so nothing is
copied) and only the rest of the prompt is read. A system prompt and few-shot turns that every
request repeats are thus read once, whichever slot a request lands in. An adapter switch clears the
cache, and with it every record of what it held.

Hot reload (blue/green adapters): `load_adapter` may be called while the engine serves, under a new
name (the worker names each version `<model>@<sha>`); new requests go to the new name while those
already queued or running finish on the old one. `retire_adapter` then marks the old version: the
engine thread frees it once no waiting or running request uses it (switching the context off it
first if it is the one set), so a reload never fails or alters a request in flight.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import ctypes
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp.llama_cpp as lib
import numpy as np
from llama_cpp import _internals as internals

from tandem.common.errors import ContextLengthError, OverloadedError
from tandem.services.engine.chat import ChatPrompt
from tandem.services.engine.decode_lock import DecodeLock
from tandem.services.engine.grammar import GrammarSampling
from tandem.services.engine.llama_loader import safe_model_params
from tandem.services.engine.prompt_tokens import PromptTokenizer

log = logging.getLogger(__name__)


class EngineFailedError(OverloadedError):
    """The engine thread died: this worker answers 503 until its supervisor restarts it."""

    code = "engine_failed"


@dataclass
class SamplingParams:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    logprobs: bool = False
    top_logprobs: int = 0
    grammar: str | None = None  # GBNF (root rule `root`) the output must follow, as llama-server's json_schema


@dataclass
class TokenInfo:
    """One generated token, with its logprob facts when they were asked for."""

    text: str
    logprob: float | None = None
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class GenerationEvent:
    """What the engine thread sends to the request: text (maybe empty), or the end."""

    text: str = ""
    tokens: list[TokenInfo] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    fatal: bool = False  # the engine stopped serving (thread died or shutdown): retry on a restarted worker


class GenerationHandle:
    """A submitted request: an asyncio queue of events, and a cancel switch for disconnects."""

    def __init__(self, prompt_tokens: list[int], params: SamplingParams, adapter: str | None,
                 loop: asyncio.AbstractEventLoop):
        self.prompt_tokens = prompt_tokens
        self.params = params
        self.adapter = adapter
        self.loop = loop
        self.events: asyncio.Queue[GenerationEvent] = asyncio.Queue()
        self.submitted_at = time.perf_counter()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _push(self, event: GenerationEvent) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the request's event loop is gone (client went away at shutdown)
            self.cancel()


class _Sequence:
    """Engine-thread state of one running request."""

    def __init__(self, handle: GenerationHandle, seq_id: int, sampler: ctypes.c_void_p,
                 grammar: ctypes.c_void_p | None = None):
        self.handle = handle
        self.seq_id = seq_id
        self.sampler = sampler
        self.grammar = grammar  # the output's GBNF sampler (grammar.py), when the request constrains it
        self.n_prompt = len(handle.prompt_tokens)
        self.prompt_cursor = 0  # prompt tokens already fed
        self.pos = 0
        self.last_token: int | None = None
        self.n_generated = 0
        self.text = ""
        self.sent = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending_tokens: list[TokenInfo] = []
        self.batch_index: int | None = None


class BatchedEngine:
    """One llama.cpp model + context, shared by up to `slots` concurrent sequences."""

    def __init__(self, model_path: str | Path, *, slots: int = 4, ctx_per_slot: int = 2048,
                 n_threads: int | None = None, n_batch: int = 512, max_queue: int = 16,
                 adapters: dict[str, str | Path] | None = None, max_switch_wait_s: float = 2.0,
                 decode_lock: str | Path | None = None, fault_after_admits: int | None = None,
                 adapter_scales: dict[str, float] | None = None):
        self.model_path = str(model_path)
        self.fault_after_admits = fault_after_admits  # tests only: _admit raises after this many admissions
        self._admitted = 0
        self.failure: str | None = None  # why the engine thread died; it serves nothing after that
        self.on_death: Callable[[str], None] | None = None  # called on the engine thread when it dies
        self.max_switch_wait_s = max_switch_wait_s
        # shared with the other workers of this machine (decode_lock.py); a no-op context without one
        self._decode_lock = DecodeLock(decode_lock) if decode_lock else contextlib.nullcontext()
        self.slots = slots
        self.ctx_per_slot = ctx_per_slot
        self.n_batch = n_batch
        self.max_queue = max_queue
        self._model = internals.LlamaModel(path_model=self.model_path, params=safe_model_params(), verbose=False)
        self.n_ctx_train = self._model.n_ctx_train()
        if ctx_per_slot > self.n_ctx_train:
            self.ctx_per_slot = self.n_ctx_train
        cparams = lib.llama_context_default_params()
        cparams.n_ctx = self.ctx_per_slot * slots
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = slots
        cparams.kv_unified = True
        threads = n_threads or max(1, (len(__import__("os").sched_getaffinity(0))))
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        self._ctx = internals.LlamaContext(model=self._model, params=cparams, verbose=False)
        self._batch = internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        self._vocab = lib.llama_model_get_vocab(self._model.model)
        self.n_vocab = self._model.n_vocab()
        self._grammars = GrammarSampling(self._vocab, self.n_vocab)
        self._piece_buf = ctypes.create_string_buffer(64)
        self._cond = threading.Condition()
        self._adapters: dict[str, ctypes.c_void_p] = {}
        self._scales: dict[str, float] = {}  # LoRA scale per adapter (llama.cpp: W + scale * BA)
        self._retired: set[str] = set()  # adapters to free once no request uses them (engine thread)
        self.adapters_freed = 0
        for name, path in (adapters or {}).items():
            self.load_adapter(name, path, scale=(adapter_scales or {}).get(name, 1.0))
        self._current_adapter: str | None = None
        self._waiting: deque[GenerationHandle] = deque()
        self._active: list[_Sequence] = []
        self._free_ids = list(range(slots))
        self._cached: dict[int, list[int]] = {}  # free slot -> the prompt tokens its KV cells still hold
        self.prefix_tokens_reused = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.adapter_switches = 0
        self._prompt_tokenizer: PromptTokenizer | None = None  # built on first use (scans the vocabulary)

    # ---- public API (any thread) -------------------------------------------------------------

    @property
    def adapter_names(self) -> list[str]:
        return list(self._adapters)

    def adapter_scale(self, name: str) -> float:
        return self._scales[name]

    def load_adapter(self, name: str, path: str | Path, scale: float = 1.0) -> None:
        """Load a GGUF LoRA as `name` (any thread; the engine may be serving: the adapter is new to
        the context, so nothing running reads it until a request names it). `scale` multiplies the
        adapter's delta whenever it is applied: 1.0 as trained, below 1 part-way back to the base."""
        if not 0.0 < scale <= 4.0:
            raise ValueError(f"adapter '{name}': LoRA scale {scale} is outside (0, 4]")
        if name in self._adapters:
            raise ValueError(f"adapter '{name}' is already loaded")
        adapter = lib.llama_adapter_lora_init(self._model.model, str(path).encode())
        if not adapter:
            raise ValueError(f"llama.cpp could not load LoRA adapter '{name}' from {path} "
                             "(not a GGUF LoRA, or made for another base model)")
        with self._cond:
            self._adapters[name] = adapter
            self._scales[name] = float(scale)

    def keep_adapter(self, name: str) -> bool:
        """Take `name` back into service if it is still loaded (retired but not freed yet); False if
        it is not loaded."""
        with self._cond:
            if name not in self._adapters:
                return False
            self._retired.discard(name)
            return True

    def retire_adapter(self, name: str) -> None:
        """Stop accepting requests for `name` and free it once the requests queued or running on it
        have finished (on the engine thread)."""
        with self._cond:
            if name in self._adapters:
                self._retired.add(name)
                self._cond.notify_all()

    def tokenize(self, text: str, *, special: bool = False, add_bos: bool | None = None) -> list[int]:
        """Token ids of `text`. Control tokens written in it are parsed only with `special=True`,
        which is for text the server itself wrote (a chat template), never for a client's text."""
        bos = self._model.add_bos_token() if add_bos is None else add_bos
        return self._model.tokenize(text.encode("utf-8"), add_bos=bos, special=special)

    def tokenize_prompt(self, prompt: ChatPrompt) -> list[int]:
        """A rendered chat prompt: control tokens from the template only, messages as text."""
        if self._prompt_tokenizer is None:
            self._prompt_tokenizer = PromptTokenizer(self._model)
        return self._prompt_tokenizer(prompt)

    def metadata(self) -> dict[str, str]:
        return self._model.metadata()

    def special_token_texts(self) -> tuple[str, str]:
        """(BOS, EOS) as text, for chat templates that mention them."""
        bos, eos = self._model.token_bos(), self._model.token_eos()
        return (self._model.token_get_text(bos) if bos >= 0 else "",
                self._model.token_get_text(eos) if eos >= 0 else "")

    def token_bytes(self, token: int) -> bytes:
        """The token's bytes (llama-cpp-python's wrapper returns the NUL-padded buffer instead)."""
        size = lib.llama_token_to_piece(self._vocab, token, self._piece_buf, len(self._piece_buf), 0, False)
        if size < 0:
            self._piece_buf = ctypes.create_string_buffer(-size)
            size = lib.llama_token_to_piece(self._vocab, token, self._piece_buf, len(self._piece_buf), 0, False)
        return self._piece_buf.raw[:size]

    def token_text(self, token: int) -> str:
        return self.token_bytes(token).decode("utf-8", errors="replace")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tandem-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=30)
        for name, adapter in list(self._adapters.items()):
            lib.llama_adapter_lora_free(adapter)
            del self._adapters[name]
        self._batch.close()
        if isinstance(self._decode_lock, DecodeLock):
            self._decode_lock.close()
        self._ctx.close()
        self._model.close()

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def alive(self) -> bool:
        """Serving: started, its thread running, and not dead of an error."""
        return self.failure is None and self._thread is not None and self._thread.is_alive()

    @property
    def active_count(self) -> int:
        return len(self._active)

    def submit(self, prompt_tokens: list[int], params: SamplingParams, adapter: str | None = None,
               loop: asyncio.AbstractEventLoop | None = None) -> GenerationHandle:
        """Queue a generation; raises at once when it cannot fit or the queue is full."""
        if adapter is not None and (adapter not in self._adapters or adapter in self._retired):
            raise ValueError(f"unknown adapter {adapter}")
        limit = self.ctx_per_slot
        if len(prompt_tokens) >= limit:
            raise ContextLengthError(
                f"This model's context window is {limit} tokens, but the prompt is {len(prompt_tokens)} "
                "tokens long. Shorten the messages.", param="messages")
        handle = GenerationHandle(prompt_tokens, params, adapter, loop or asyncio.get_running_loop())
        with self._cond:
            if self.failure is not None:
                raise EngineFailedError(f"This worker's engine stopped ({self.failure}); it is being restarted. "
                                        "Retry shortly.", headers={"Retry-After": "2"})
            if len(self._waiting) - len(self._free_ids) >= self.max_queue:
                raise OverloadedError(f"The model is busy: {self.max_queue} requests are already waiting. "
                                      "Retry shortly.", headers={"Retry-After": "1"})
            self._waiting.append(handle)
            self._cond.notify_all()
        return handle

    # ---- engine thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # whatever kills the thread must not strand requests
            log.critical("the engine thread died: %r", exc, exc_info=exc)
            with self._cond:
                self.failure = f"the engine thread died ({type(exc).__name__}: {exc})"
                self._abandon_all(self.failure, fatal=True)
            if self.on_death is not None:
                self.on_death(self.failure)
            return
        with self._cond:
            self._abandon_all("the worker is shutting down", fatal=True)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._active and not self._waiting and not self._retired:
                    self._cond.wait()
                if self._stopping:
                    return
                self._drop_cancelled_waiting()
                if self._retired:
                    self._free_retired()
                self._admit()
            if not self._active:
                continue
            try:
                self._step()
            except Exception as exc:  # a failed decode must not leave requests hanging
                log.exception("decode step failed")
                for seq in list(self._active):
                    seq.handle._push(GenerationEvent(error=f"generation failed: {exc}", finish_reason="error"))
                    self._release(seq)
                # what the failed step left in the cache is unknown: nothing cached may be reused
                lib.llama_memory_clear(lib.llama_get_memory(self._ctx.ctx), False)
                self._cached.clear()

    def _abandon_all(self, reason: str, fatal: bool) -> None:
        """End every running and waiting request with an error event (the engine stops serving)."""
        for seq in list(self._active):
            seq.handle._push(GenerationEvent(error=reason, finish_reason="error", fatal=fatal))
            try:
                self._release(seq)
            except Exception:  # the context may be what broke; the requests are told anyway
                log.exception("releasing sequence %d failed", seq.seq_id)
                if seq in self._active:
                    self._active.remove(seq)
        for handle in self._waiting:
            handle._push(GenerationEvent(error=reason, finish_reason="error", fatal=fatal))
        self._waiting.clear()

    def _free_retired(self) -> None:
        """Free each retired adapter that no waiting or running request uses (engine thread, under the lock)."""
        in_use = {h.adapter for h in self._waiting} | {s.handle.adapter for s in self._active}
        for name in sorted(self._retired - in_use):
            if name == self._current_adapter:
                if self._active:
                    continue  # a batch on another adapter cannot be running; wait for this one to drain
                self._switch_adapter(None)
            self._retired.discard(name)
            lib.llama_adapter_lora_free(self._adapters.pop(name))
            self._scales.pop(name, None)
            self.adapters_freed += 1

    def _drop_cancelled_waiting(self) -> None:
        if any(h.cancelled for h in self._waiting):
            self._waiting = deque(h for h in self._waiting if not h.cancelled)

    def _admit(self) -> None:
        """Fill free slots. A batch shares the context's adapter, so the oldest request, if it needs
        another adapter, waits for the running batch to drain. Meanwhile requests for the current
        adapter may join ahead of it, until it has waited `max_switch_wait_s`: then admission
        stops, the batch drains and the engine switches to its adapter (nobody starves)."""
        while self._waiting and self._free_ids:
            head = self._waiting[0]
            pick: GenerationHandle | None = head
            if head.adapter != self._current_adapter:
                if not self._active:
                    self._switch_adapter(head.adapter)
                elif time.perf_counter() - head.submitted_at < self.max_switch_wait_s:
                    pick = next((h for h in self._waiting if h.adapter == self._current_adapter), None)
                else:
                    pick = None
            if pick is None:
                return
            self._admitted += 1
            if self.fault_after_admits is not None and self._admitted > self.fault_after_admits:
                raise RuntimeError(f"injected engine fault after {self.fault_after_admits} admissions")
            self._waiting.remove(pick)
            try:
                grammar = self._grammars.make(pick.params.grammar) if pick.params.grammar is not None else None
            except ValueError as exc:  # this request's fault, not the engine's: fail it alone
                pick._push(GenerationEvent(error=str(exc), finish_reason="error"))
                continue
            seq = _Sequence(pick, self._take_slot(pick.prompt_tokens), self._make_sampler(pick.params), grammar)
            self._reuse_prefix(seq)
            self._active.append(seq)

    @staticmethod
    def _common(a: list[int], b: list[int]) -> int:
        n = min(len(a), len(b))
        i = 0
        while i < n and a[i] == b[i]:
            i += 1
        return i

    def _take_slot(self, prompt: list[int]) -> int:
        """The free slot whose cached prompt shares the most with `prompt`; else the one caching least."""
        best = max(self._free_ids, key=lambda i: (self._common(self._cached.get(i, []), prompt),
                                                  -len(self._cached.get(i, []))))
        self._free_ids.remove(best)
        return best

    def _reuse_prefix(self, seq: _Sequence) -> None:
        """Start `seq` after the longest prefix of its prompt whose KV cells the cache holds: in its own
        slot, or shared from another slot (at least one prompt token is always read, for the logits)."""
        prompt = seq.handle.prompt_tokens
        limit = len(prompt) - 1
        own = self._cached.pop(seq.seq_id, [])
        sources = [(self._common(own, prompt), seq.seq_id)]
        sources += [(self._common(tokens, prompt), slot) for slot, tokens in self._cached.items()]
        sources += [(self._common(other.handle.prompt_tokens[:min(other.prompt_cursor, other.n_prompt)], prompt),
                     other.seq_id) for other in self._active]
        n, source = max(sources)
        n = min(n, limit)
        memory = lib.llama_get_memory(self._ctx.ctx)
        if source == seq.seq_id:
            lib.llama_memory_seq_rm(memory, seq.seq_id, n, -1)
        else:
            lib.llama_memory_seq_rm(memory, seq.seq_id, -1, -1)
            lib.llama_memory_seq_cp(memory, source, seq.seq_id, 0, n)
        seq.prompt_cursor = seq.pos = n
        self.prefix_tokens_reused += n

    def _switch_adapter(self, name: str | None) -> None:
        if name is None:
            lib.llama_set_adapters_lora(self._ctx.ctx, None, 0, None)
        else:
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(self._adapters[name])
            scales = (ctypes.c_float * 1)(self._scales[name])
            if lib.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, scales):
                raise RuntimeError(f"llama.cpp refused adapter {name}")
        # Cells only: zeroing the KV data (data=True) is a memset of the whole cache, which cost
        # ~7 ms per switch at the worker's 4 x 2048 tokens (bench/modifiers/adapter_switch.py).
        lib.llama_memory_clear(lib.llama_get_memory(self._ctx.ctx), False)
        self._cached.clear()
        self._current_adapter = name
        self.adapter_switches += 1

    def check_grammar(self, grammar: str) -> None:
        """Raise ValueError when llama.cpp cannot parse `grammar` (checked before a request is queued)."""
        lib.llama_sampler_free(self._grammars.make(grammar))

    @staticmethod
    def _make_sampler(params: SamplingParams) -> ctypes.c_void_p:
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if params.temperature <= 0.0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        else:
            if params.top_p < 1.0:
                lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(params.top_p, 1))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(params.temperature))
            seed = params.seed if params.seed is not None else random.getrandbits(32)
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    def _step(self) -> None:
        batch = self._batch.batch
        n = 0
        for seq in list(self._active):
            if seq.handle.cancelled:
                self._release(seq)
        decoding = [s for s in self._active if s.prompt_cursor >= s.n_prompt]
        prefilling = [s for s in self._active if s.prompt_cursor < s.n_prompt]
        for seq in decoding:
            self._put(batch, n, seq.last_token, seq.pos, seq.seq_id, True)
            seq.batch_index = n
            seq.pos += 1
            n += 1
        for seq in prefilling:
            room = self.n_batch - n
            if room <= 0:
                seq.batch_index = None
                continue
            chunk = seq.handle.prompt_tokens[seq.prompt_cursor: seq.prompt_cursor + room]
            for i, tok in enumerate(chunk):
                self._put(batch, n + i, tok, seq.pos + i, seq.seq_id, False)
            seq.prompt_cursor += len(chunk)
            seq.pos += len(chunk)
            n += len(chunk)
            done = seq.prompt_cursor >= seq.n_prompt
            if done:
                batch.logits[n - 1] = True
            seq.batch_index = n - 1 if done else None
        if n == 0:
            return
        batch.n_tokens = n
        with self._decode_lock:
            rc = lib.llama_decode(self._ctx.ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        for seq in list(self._active):
            if seq.batch_index is not None:
                self._sample(seq, seq.batch_index)

    @staticmethod
    def _put(batch, i: int, token: int, pos: int, seq_id: int, logits: bool) -> None:
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq_id
        batch.logits[i] = logits

    def _sample(self, seq: _Sequence, idx: int) -> None:
        params = seq.handle.params
        info = None
        if params.logprobs:
            logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self._ctx.ctx, idx), shape=(self.n_vocab,))
            logprobs = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        token = self._grammars.sample(seq.sampler, seq.grammar, self._ctx.ctx, idx)
        seq.last_token = token
        if lib.llama_vocab_is_eog(self._vocab, token):
            self._finish(seq, "stop")
            return
        seq.n_generated += 1
        piece = self.token_bytes(token)
        text = seq.decoder.decode(piece)
        if params.logprobs:
            top = []
            if params.top_logprobs:
                best = np.argpartition(-logprobs, params.top_logprobs)[: params.top_logprobs]
                best = best[np.argsort(-logprobs[best])]
                top = [(self.token_text(int(t)), float(logprobs[t])) for t in best]
            info = TokenInfo(text=piece.decode("utf-8", errors="replace"), logprob=float(logprobs[token]), top=top)
            seq.pending_tokens.append(info)
        seq.text += text
        stop_at = self._find_stop(seq)
        if stop_at is not None:
            seq.text = seq.text[:stop_at]
            self._finish(seq, "stop")
            return
        if seq.n_generated >= params.max_tokens or seq.pos >= self.ctx_per_slot:
            self._finish(seq, "length")
            return
        safe_end = len(seq.text) - self._held_back(seq)
        if safe_end > seq.sent or seq.pending_tokens:
            seq.handle._push(GenerationEvent(text=seq.text[seq.sent:safe_end], tokens=seq.pending_tokens))
            seq.sent = max(seq.sent, safe_end)
            seq.pending_tokens = []

    @staticmethod
    def _find_stop(seq: _Sequence) -> int | None:
        stops = seq.handle.params.stop
        if not stops:
            return None
        start = max(0, seq.sent - max(len(s) for s in stops))
        hits = [i for i in (seq.text.find(s, start) for s in stops) if i >= 0]
        return min(hits) if hits else None

    @staticmethod
    def _held_back(seq: _Sequence) -> int:
        """Characters at the end of the text that may be the start of a stop sequence."""
        held = 0
        for stop in seq.handle.params.stop:
            for k in range(min(len(stop) - 1, len(seq.text)), 0, -1):
                if seq.text.endswith(stop[:k]):
                    held = max(held, k)
                    break
        return held

    def _finish(self, seq: _Sequence, reason: str) -> None:
        seq.handle._push(GenerationEvent(text=seq.text[seq.sent:], tokens=seq.pending_tokens, finish_reason=reason,
                                         prompt_tokens=seq.n_prompt, completion_tokens=seq.n_generated))
        seq.sent = len(seq.text)
        self._release(seq)

    def _release(self, seq: _Sequence) -> None:
        """Free the slot; the cells of the prompt read so far stay, for a later request to reuse."""
        kept = min(seq.prompt_cursor, seq.n_prompt)
        lib.llama_memory_seq_rm(lib.llama_get_memory(self._ctx.ctx), seq.seq_id, kept, -1)
        self._cached[seq.seq_id] = seq.handle.prompt_tokens[:kept]
        lib.llama_sampler_free(seq.sampler)
        if seq.grammar is not None:
            lib.llama_sampler_free(seq.grammar)
        self._active.remove(seq)
        self._free_ids.append(seq.seq_id)
