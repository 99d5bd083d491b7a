"""Run untrusted generated Python in a throw-away folder, with limits, and say whether it passed.

Layers, outermost first (each one alone stops the usual accidents; together they make a hostile
completion harmless to the host and unable to hang the run):

1. Namespaces (`unshare`, when the kernel allows it: as root, or via a user namespace): no
   network, its own PID space (everything dies with it), and a mount namespace in which every
   mount is read-only except the sandbox folder; capabilities are dropped (`setpriv`) so it
   cannot remount. Probed once; where unavailable the run falls back to the next layers.
2. Resource limits set in `preexec_fn`: CPU seconds, address space, file size (stdout and stderr
   go to files, so a print loop is capped too), open files, no core dumps. A new session, so a
   timeout kills the whole process group.
3. `sandbox_guard.py` inside the interpreter: an audit hook refusing process creation, signals,
   sockets, ctypes and writes outside the folder, and RLIMIT_NPROC=0 (set there, not in
   preexec, because `unshare --fork` itself needs one fork).
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

log = logging.getLogger(__name__)
GUARD = Path(__file__).with_name("sandbox_guard.py")
# Runs as `sh -c MOUNT_SCRIPT sh <folder> <command...>` inside the new namespaces.
MOUNT_SCRIPT = r"""
d="$1"; shift
mount --bind "$d" "$d" || exit 97
cd "$d" || exit 97
awk '{print $5}' /proc/self/mountinfo | while read -r m; do
  [ "$m" = "$d" ] || mount -o remount,bind,ro "$m" 2>/dev/null
done
if [ -w / ]; then exit 98; fi
exec setpriv --no-new-privs --bounding-set=-all --inh-caps=-all "$@"
"""
UNSHARE = ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child"]


class SandboxLimits(BaseModel):
    timeout_s: float = 10.0
    memory_mb: int = 1024
    file_size_mb: int = 16
    open_files: int = 64


class SandboxResult(BaseModel):
    status: Literal["passed", "failed", "timeout"]
    returncode: int | None
    stderr_tail: str
    seconds: float
    isolation: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _set_limits(limits: SandboxLimits) -> None:
    cpu = int(limits.timeout_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    memory = limits.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = limits.file_size_mb << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _isolated_ok(prefix: list[str]) -> bool:
    with tempfile.TemporaryDirectory(prefix="tandem-probe-") as folder:
        try:
            done = subprocess.run(
                [*prefix, "sh", "-c", MOUNT_SCRIPT, "sh", folder, "true"], capture_output=True, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0


@cache
def isolation_prefix() -> tuple[tuple[str, ...], str]:
    """The namespace wrapper this machine allows, and its name for reports."""
    if not all(shutil.which(tool) for tool in ("unshare", "setpriv", "mount", "awk")):
        return (), "audit-hook"
    for prefix, name in ((UNSHARE, "namespaces"), ([*UNSHARE, "--map-root-user"], "user-namespaces")):
        if _isolated_ok(prefix):
            return (*prefix, "sh", "-c", MOUNT_SCRIPT, "sh"), name
    log.warning(
        "unshare is not permitted here: code runs with rlimits and the audit hook only "
        "(no network or file-system namespaces)"
    )
    return (), "audit-hook"


def run_python(program: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run `program` as a script in a fresh temporary folder; passed means exit status 0."""
    limits = limits or SandboxLimits()
    prefix, isolation = isolation_prefix()
    with tempfile.TemporaryDirectory(prefix="tandem-sandbox-") as root:
        work = Path(root) / "work"
        work.mkdir()
        (work / "main.py").write_text(program)
        command = [sys.executable, "-I", "-B", str(GUARD), "main.py"]
        if prefix:
            command = [*prefix, str(work), *command]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8"}
        started = time.monotonic()
        with open(Path(root) / "stdout", "wb") as out, open(Path(root) / "stderr", "wb") as err:
            proc = subprocess.Popen(
                command,
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=lambda: _set_limits(limits),
            )
            try:
                returncode: int | None = proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        seconds = time.monotonic() - started
        stderr_tail = (Path(root) / "stderr").read_bytes()[-2000:].decode(errors="replace")
    status = "timeout" if returncode is None else "passed" if returncode == 0 else "failed"
    return SandboxResult(
        status=status, returncode=returncode, stderr_tail=stderr_tail, seconds=seconds, isolation=isolation
    )
