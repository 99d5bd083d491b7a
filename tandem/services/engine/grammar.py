"""Sampling under a GBNF grammar the way llama-server does it: sample freely, check the one token.

Applying a grammar to the whole vocabulary costs 12-46 ms per token for SmolLM2's 49k tokens on a
busy 2-core machine (`llama_sampler_apply`, measured 2026-12-01), about a decode step of the
135M model. So, as llama.cpp's `common_sampler_sample` does, the sequence's own chain picks a token
first; only when the grammar rejects that one token is the whole vocabulary masked by the grammar
and the chain run again on what is left. The grammar then accepts the chosen token. The chains
used here (greedy, or top-p -> temperature -> seeded dist) keep no state that a rejected pick
would disturb.
"""

from __future__ import annotations

import ctypes
import math

import llama_cpp.llama_cpp as lib
import numpy as np

TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])  # llama_token_data


class GrammarSampling:
    """Grammar samplers and scratch token arrays of one engine (used on its thread only)."""

    def __init__(self, vocab: ctypes.c_void_p, n_vocab: int):
        assert ctypes.sizeof(lib.llama_token_data) == TOKEN_DATA.itemsize
        self._vocab = vocab
        self._n_vocab = n_vocab
        self._one = (lib.llama_token_data * 1)()
        self._all = (lib.llama_token_data * n_vocab)()
        self._all_view = np.frombuffer(self._all, dtype=TOKEN_DATA)
        self._ids = np.arange(n_vocab, dtype=np.int32)

    def make(self, gbnf: str) -> ctypes.c_void_p:
        """A grammar sampler (the caller frees it), or ValueError when llama.cpp cannot parse `gbnf`."""
        grammar = lib.llama_sampler_init_grammar(self._vocab, gbnf.encode(), b"root")
        if not grammar:
            raise ValueError("llama.cpp could not parse the grammar")
        return grammar

    def sample(self, chain: ctypes.c_void_p, grammar: ctypes.c_void_p | None, ctx: ctypes.c_void_p, idx: int) -> int:
        token = lib.llama_sampler_sample(chain, ctx, idx)
        if grammar is None:
            return token
        if not self._allows(grammar, token):
            token = self._resample(chain, grammar, ctx, idx)
        lib.llama_sampler_accept(grammar, token)
        return token

    def _allows(self, grammar: ctypes.c_void_p, token: int) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 1.0, 0.0
        single = lib.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        lib.llama_sampler_apply(grammar, ctypes.byref(single))
        return not math.isinf(self._one[0].logit)

    def _resample(self, chain: ctypes.c_void_p, grammar: ctypes.c_void_p, ctx: ctypes.c_void_p, idx: int) -> int:
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, idx), shape=(self._n_vocab,))
        self._all_view["id"] = self._ids  # samplers sort the array in place: reset it every time
        self._all_view["logit"] = logits
        self._all_view["p"] = 0.0
        candidates = lib.llama_token_data_array(data=self._all, size=self._n_vocab, selected=-1, sorted=False)
        lib.llama_sampler_apply(grammar, ctypes.byref(candidates))
        lib.llama_sampler_apply(chain, ctypes.byref(candidates))
        return int(candidates.data[candidates.selected].id)
