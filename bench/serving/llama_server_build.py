"""Build llama-server once from the llama.cpp sources inside the llama-cpp-python sdist.

The build goes to bench/.build (ignored). It uses the same CPU flags as the pip build of
llama-cpp-python (native), and the bench runs it with `--no-repack`, the same switch
(`use_extra_bufts=False`) Tandem's engine uses, so both sides run the same kernels.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tandem.common.model_files import llama_cpp_source_dir

BUILD_DIR = Path(__file__).resolve().parents[1] / ".build" / "llama-server"


def llama_server_binary() -> Path:
    binary = BUILD_DIR / "bin" / "llama-server"
    if binary.is_file():
        return binary
    src = llama_cpp_source_dir()
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cmake", "-S", str(src), "-B", str(BUILD_DIR), "-DCMAKE_BUILD_TYPE=Release",
                    "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                    "-DLLAMA_OPENSSL=OFF"], check=True)
    subprocess.run(["cmake", "--build", str(BUILD_DIR), "--target", "llama-server", "-j", str(os.cpu_count() or 2)],
                   check=True)
    if not binary.is_file():
        raise FileNotFoundError(f"the build finished but {binary} is missing")
    return binary


if __name__ == "__main__":
    print(llama_server_binary())
