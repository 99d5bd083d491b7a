"""A rendered chat prompt to token ids, with control tokens only where the template put them.

llama.cpp's `special=True` splits text at every control-token string (`<|im_start|>`...) and
tokenizes the text between them; `special=False` reads those strings as text. Here the same split
is done by hand, on the template's parts only: the template's control tokens become their ids,
and every run of text between two of them (the template's `user\\n` joined with the message that
follows it) is tokenized with `special=False`. For a message without control-token strings the
ids are exactly those of tokenizing the whole prompt with `special=True`; a message that holds
such strings gets them as plain text, so it cannot forge a turn.
"""

from __future__ import annotations

import re

import llama_cpp.llama_cpp as lib
from llama_cpp import _internals as internals

from tandem.services.engine.chat import ChatPrompt

# What llama.cpp parses as special only when asked to (user-defined tokens it always parses).
SPECIAL_ATTRS = lib.LLAMA_TOKEN_ATTR_CONTROL | lib.LLAMA_TOKEN_ATTR_UNKNOWN


class PromptTokenizer:
    def __init__(self, model: internals.LlamaModel):
        self._model = model
        vocab = lib.llama_model_get_vocab(model.model)
        self._control: dict[str, int] = {}
        for token in range(lib.llama_vocab_n_tokens(vocab)):
            if lib.llama_vocab_get_attr(vocab, token) & SPECIAL_ATTRS:
                text = lib.llama_vocab_get_text(vocab, token).decode("utf-8", errors="replace")
                if text:
                    self._control.setdefault(text, token)
        names = sorted(self._control, key=len, reverse=True)  # longest first, as llama.cpp matches
        self._split = re.compile("(" + "|".join(map(re.escape, names)) + ")") if names else None

    def _text(self, text: str) -> list[int]:
        return self._model.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []

    def __call__(self, prompt: ChatPrompt) -> list[int]:
        tokens = [self._model.token_bos()] if self._model.add_bos_token() and self._model.token_bos() >= 0 else []
        run = ""
        for part in prompt.parts:
            if not part.trusted or self._split is None:
                run += part.text
                continue
            for i, piece in enumerate(self._split.split(part.text)):
                if i % 2 == 0:
                    run += piece
                else:
                    tokens += self._text(run) + [self._control[piece]]
                    run = ""
        return tokens + self._text(run)
