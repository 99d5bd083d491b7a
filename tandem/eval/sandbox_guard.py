"""Runs first inside the sandbox (`python -I -B sandbox_guard.py main.py`), then runs main.py.

The in-process layer of `tandem.eval.sandbox`: an audit hook (it cannot be removed once added)
refuses process creation, signals, sockets, ctypes and any write outside the working folder, and
RLIMIT_NPROC drops to 0 so no fork succeeds for non-root users. It backs up the OS layers
(namespaces, read-only mounts, rlimits), and is the only file-system guard where those are
unavailable. Imports are stdlib only: this file runs with `-I` and must stay dependency-free.
"""

import os
import resource
import runpy
import sys

ROOT = os.path.realpath(os.getcwd())
DENIED = {
    "os.system",
    "os.fork",
    "os.forkpty",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "subprocess.Popen",
    "pty.spawn",
    "os.kill",
    "os.killpg",
    "socket.__new__",
    "socket.connect",
    "socket.bind",
    "socket.getaddrinfo",
    "socket.sendto",
    "ctypes.dlopen",
    "ctypes.dlsym",
    "ctypes.call_function",
    "ctypes.cdata",
    "os.chroot",
    "webbrowser.open",
}
DENIED_IMPORTS = {"_posixsubprocess", "_ctypes"}
PATH_EVENTS = {
    "os.remove",
    "os.rmdir",
    "os.rename",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.utime",
    "shutil.rmtree",
    "shutil.move",
    "shutil.copytree",
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _inside(path) -> bool:
    if isinstance(path, int):
        return True
    return os.path.realpath(os.fsdecode(path)).startswith(ROOT + os.sep)


def _writes(mode, flags) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return bool((flags or 0) & WRITE_FLAGS)


def _hook(event: str, args: tuple) -> None:
    if event in DENIED:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args[0] in DENIED_IMPORTS:
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    if event == "open" and args[0] is not None and _writes(args[1], args[2]) and not _inside(args[0]):
        raise PermissionError(f"sandbox: writing {args[0]!r} outside the sandbox folder is not allowed")
    if event in PATH_EVENTS and not all(_inside(a) for a in args[:2] if isinstance(a, (str, bytes))):
        raise PermissionError(f"sandbox: {event} outside the sandbox folder is not allowed")


if __name__ == "__main__":
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except (ValueError, OSError):
        pass
    sys.addaudithook(_hook)
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
