"""One decode step at a time across the worker processes of one machine.

llama.cpp's threads spin at every barrier of a decode step. Two workers (base and modifiers) that
each use every core oversubscribe them whenever both are busy, and both crawl (5x slower measured,
bench/serving/two_workers.py); splitting the cores between them instead halves the speed of
whichever is busy alone. A shared lock around each `llama_decode` gives each step all the cores and
lets the workers take turns when both have work, as llama-server alternates batches of different
adapters inside one process. `flock` on a file both workers open: released by the kernel if a worker
dies holding it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Self


class DecodeLock:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> Self:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)
