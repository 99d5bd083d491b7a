"""Load llama.cpp models safely on any x86 CPU.

llama.cpp's "extra buffer types" (weight repacking, including the Intel AMX path) segfault on the
first decode of a quantized model on AMX CPUs when llama.cpp is built with `-march=native`
(FIELD_NOTES). Turning them off at run time is safe on every CPU, unlike a build with hard-coded
AVX512 flags, which dies with "illegal instruction" where AVX512 is missing. Every model Tandem
loads goes through `safe_model_params()`.
"""

from __future__ import annotations

import llama_cpp
import llama_cpp._logger as llama_logger
import llama_cpp.llama_cpp as llama_lib

# llama.cpp logs every tensor at INFO through this logger unless told otherwise.
llama_logger.set_verbose(False)

_original_default_params = llama_lib.llama_model_default_params


def safe_model_params() -> llama_lib.llama_model_params:
    params = _original_default_params()
    params.use_extra_bufts = False
    return params


def install_safe_defaults() -> None:
    """Make `llama_cpp.Llama(...)` (which reads the module-level default) use safe params too."""
    llama_lib.llama_model_default_params = safe_model_params
    llama_cpp.llama_model_default_params = safe_model_params


def load_llama(model_path: str, **kwargs) -> llama_cpp.Llama:
    """`llama_cpp.Llama` with extra buffer types off; kwargs pass through (n_ctx, lora_path, ...)."""
    install_safe_defaults()
    kwargs.setdefault("verbose", False)
    return llama_cpp.Llama(model_path=str(model_path), **kwargs)
