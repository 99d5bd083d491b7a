"""A hostile or broken completion must not harm the host or hang the run."""

import subprocess
import sys
import time

import pytest

from tandem.eval import sandbox
from tandem.eval.sandbox import SandboxLimits, isolation_prefix, run_python

FAST = SandboxLimits(timeout_s=3)


@pytest.fixture(autouse=True, params=["as-detected", "audit-hook-only"])
def isolation(request, monkeypatch):
    """Every case runs with this machine's layers and again with only the fallback layers
    (rlimits + audit hook), as on a machine where `unshare` is not permitted."""
    if request.param == "audit-hook-only" and "namespace_layer" not in request.node.name:
        monkeypatch.setattr(sandbox, "isolation_prefix", lambda: ((), "audit-hook"))
    return request.param


@pytest.fixture
def victim(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "victim.txt"
    target.write_text("intact")
    return target


def test_a_correct_program_passes_and_a_failing_one_fails():
    assert run_python("assert sum(range(5)) == 10").status == "passed"
    result = run_python("assert sum(range(5)) == 11")
    assert result.status == "failed" and "AssertionError" in result.stderr_tail


def test_os_system_cannot_touch_the_host(victim):
    result = run_python(f"import os\nos.system('echo pwned > {victim}; rm -f {victim}')", FAST)
    assert result.status == "failed"
    assert victim.read_text() == "intact"


def test_subprocess_and_ctypes_are_refused(victim):
    assert run_python(f"import subprocess\nsubprocess.run(['rm', '{victim}'])", FAST).status == "failed"
    libc = f"import ctypes\nctypes.CDLL(None).unlink(b'{victim}')"
    assert run_python(libc, FAST).status == "failed"
    assert victim.read_text() == "intact"


def test_writes_and_deletes_outside_the_folder_fail(victim):
    for program in (
        f"open('{victim}', 'w').write('pwned')",
        f"import os\nos.remove('{victim}')",
        f"import shutil\nshutil.rmtree('{victim.parent}')",
        f"import os\nos.symlink('{victim}', 'link')\nopen('link', 'w').write('pwned')",
    ):
        assert run_python(program, FAST).status == "failed", program
    assert victim.read_text() == "intact"
    assert run_python(
        "open('scratch.txt', 'w').write('ok')\nassert open('scratch.txt').read() == 'ok'"
    ).passed


def test_fork_bomb_is_contained_and_does_not_hang():
    started = time.monotonic()
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except Exception:\n        pass\n"
    result = run_python(bomb, FAST)
    assert result.status == "timeout"
    assert time.monotonic() - started < FAST.timeout_s + 5


@pytest.mark.parametrize("program", ["while True:\n    pass\n", "import time\ntime.sleep(600)\n"])
def test_infinite_loops_time_out(program):
    started = time.monotonic()
    assert run_python(program, SandboxLimits(timeout_s=2)).status == "timeout"
    assert time.monotonic() - started < 6


def test_memory_bomb_and_output_flood_are_capped():
    assert run_python("x = bytearray(8 << 30)", FAST).status == "failed"
    flood = run_python("while True:\n    print('x' * 65536)\n", FAST)
    assert flood.status in ("failed", "timeout")


def test_no_network_and_no_signals_to_the_parent():
    assert (
        run_python("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)", FAST).status
        == "failed"
    )
    assert run_python("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", FAST).status == "failed"


def test_namespace_layer_alone_blocks_writes_and_network(tmp_path, victim, isolation):
    """Without the audit hook, the mount and network namespaces still protect the host."""
    if isolation != "as-detected":
        pytest.skip("this case tests the namespace layer itself")
    prefix, layers = isolation_prefix()
    if layers == "audit-hook":
        pytest.skip("unshare is not permitted on this machine")
    work = tmp_path / "work"
    work.mkdir()
    code = (
        f"import socket\nopen('inside.txt', 'w').write('ok')\n"
        f"try:\n    open('{victim}', 'w').write('pwned')\nexcept OSError as e:\n    print('write', e.errno)\n"
        "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "except OSError as e:\n    print('net', e.errno)\n"
    )
    done = subprocess.run(
        [*prefix, str(work), sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "write 30" in done.stdout  # EROFS
    assert "net" in done.stdout
    assert victim.read_text() == "intact" and (work / "inside.txt").read_text() == "ok"
