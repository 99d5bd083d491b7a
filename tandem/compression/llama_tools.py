"""llama.cpp's C++ tools (llama-quantize, llama-imatrix), built from the sdist's own sources.

The llama-cpp-python wheel ships the library but not the tools. We build only the targets we
need into the cache, with `-DGGML_NATIVE=OFF` and explicit AVX2/FMA/F16C flags: a native build
picks the Intel AMX path that segfaults on quantized models (docs/COMPRESSION.md), and AVX512
flags would die with "illegal instruction" on CPUs without it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from tandem.common.model_files import LLAMA_CPP_PYTHON_VERSION, cache_dir, llama_cpp_source_dir

TOOLS = ("llama-quantize", "llama-imatrix")
CMAKE_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON",
               "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF", "-DBUILD_SHARED_LIBS=OFF"]
log = logging.getLogger(__name__)


def build_dir() -> Path:
    return cache_dir() / f"llama-cpp-build-{LLAMA_CPP_PYTHON_VERSION}"


def find_tool(name: str) -> Path | None:
    """The built tool, `$TANDEM_LLAMA_CPP_BIN/<name>`, or one on PATH; None when absent."""
    for folder in filter(None, [os.environ.get("TANDEM_LLAMA_CPP_BIN"), str(build_dir() / "bin")]):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def build_tools(tools: tuple[str, ...] = TOOLS, jobs: int = 2) -> dict[str, Path]:
    """Configure and build `tools` with cmake (minutes on 2 cores); returns name -> binary."""
    if shutil.which("cmake") is None:
        raise RuntimeError("cmake is not installed: `apt-get install cmake g++`, or let the recipe fall "
                           "back to llama-cpp-python's in-process quantizer (no importance matrix)")
    src, out = llama_cpp_source_dir(), build_dir()
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    subprocess.run([*nice, "cmake", "-S", str(src), "-B", str(out), *CMAKE_FLAGS], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*nice, "cmake", "--build", str(out), "--target", *tools, "-j", str(jobs)], check=True,
                   stdout=subprocess.DEVNULL)
    built = {name: find_tool(name) for name in tools}
    missing = [name for name, path in built.items() if path is None]
    if missing:
        raise RuntimeError(f"cmake finished but {', '.join(missing)} is missing under {out / 'bin'}")
    return {name: path for name, path in built.items() if path is not None}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    for tool, path in build_tools().items():
        log.info("%s: %s", tool, path)
