"""Run an exported ``.tflite`` in TFLite Micro, and measure its arena, in child processes where it may crash.

The TFLite Micro arena is measured in child processes (``print_allocations``
prints from C to file descriptor 1, and an arena that is too small can crash
the process), never by trial in the caller's process; `run_tflm` checks a
given arena in a child before it uses it, and raises `ArenaTooSmallError`
with the size the model needs instead of crashing.

This module needs only numpy, ``tf_nvm.core`` and (when it runs a model)
``tflite_micro``: it can be loaded from its file without importing the
``tflite_export`` package (whose ``__init__`` imports TensorFlow), e.g. in a
child process; the flatbuffer reader is then loaded from its file too
(`_flatbuffer`).
"""

import hashlib
import importlib
import importlib.util
import os
import re
import select
import subprocess
import sys
import tempfile
from types import ModuleType
from typing import Any

import numpy as np

from tf_nvm.core.errors import ArenaTooSmallError, ExportError
from tf_nvm.core.safe_io import loads_json

__all__ = ["run_tflm", "measure_arena", "check_arena", "ARENA_STEP", "require_tflm", "require_package"]

_CHILD = r"""
import sys
import numpy as np
from tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
interpreter = runtime.Interpreter.from_bytes(data, arena_size=int(sys.argv[2]))
details = interpreter.get_input_details(0)
interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
interpreter.invoke()
sys.stdout.flush()
interpreter.print_allocations()
"""
_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
ARENA_STEP = 16
"""Resolution of `measure_arena`, bytes (TFLite Micro aligns arena buffers to 16 bytes)."""


def require_package(module: str, what: str, flag: str) -> None:
    """Raises `ExportError` with the install command when the Python module ``module`` cannot be imported.

    Args:
        module: the module to import (``"tflite_micro"``, ``"ai_edge_litert"``).
        what: how the package is named in the message.
        flag: the message's alternative to installing it (e.g. how to skip the step that needs it).
    """
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ExportError(f"{what} is not installed ({err}). Fix: install the export extra, "
                          f"python3 -m pip install 'tf-nvm[export]', or {flag}.") from None


def require_tflm() -> None:
    """Raises `ExportError` with the install command when TFLite Micro (``tflite_micro``) is missing."""
    require_package("tflite_micro", "TFLite Micro (the Python package tflite-micro)",
             "skip the arena measurement (measure_arena=False, tf-nvm export --no-arena)")


def _model_bytes(content: "bytes | bytearray | str | os.PathLike[str]") -> bytes:
    """.tflite bytes or path -> bytes (`tflite_export.flatbuffer.read_model_bytes`)."""
    return _flatbuffer().read_model_bytes(content)


def run_tflm(content: "bytes | str | os.PathLike[str]", x_q: np.ndarray, arena_size: int | None = None) -> np.ndarray:
    """Runs the model in TFLite Micro (``tflite_micro.runtime``), one example per invoke.

    An arena that is too small can kill the calling process (a segfault in
    TFLite Micro's allocator), so a given ``arena_size`` is first tried in a
    child process (`check_arena`, under a second); only a size that works there is
    used here. No child is needed when `measure_arena` measured this model in this
    process and ``arena_size`` is at least that size.

    Args:
        content: .tflite bytes or path.
        x_q: int8 inputs (examples first).
        arena_size: arena bytes; default: `measure_arena` (child processes) plus 1 KiB.

    Returns:
        int8 outputs, examples first.

    Raises:
        ArenaTooSmallError: ``arena_size`` is smaller than the model needs (the
            message gives the size the model needs, measured by `measure_arena`).
    """
    require_tflm()
    from tflite_micro import runtime  # noqa: PLC0415  (optional package, lazy)

    data = _model_bytes(content)
    if arena_size is None:
        arena_size = measure_arena(data) + 1024
    elif not _ran_here(data, arena_size):
        check_arena(data, arena_size, owner="run_tflm")
    interpreter = runtime.Interpreter.from_bytes(data, arena_size=int(arena_size))
    results = []
    for i in range(len(x_q)):
        interpreter.set_input(x_q[i:i + 1], 0)
        interpreter.invoke()
        results.append(np.array(interpreter.get_output(0))[0].copy())
    return np.stack(results)


_PROBE_SERVER = r"""
import ctypes, json, os, sys, tempfile, time
import numpy as np
from tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
timeout = float(sys.argv[2])
libc = ctypes.CDLL(None)
for line in sys.stdin:
    size = int(line)
    fd, log = tempfile.mkstemp()
    pid = os.fork()
    if pid == 0:  # one try per forked child: a crash ends only that child
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = 1
        try:
            interpreter = runtime.Interpreter.from_bytes(data, arena_size=size)
            details = interpreter.get_input_details(0)
            interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
            interpreter.invoke()
            sys.stdout.flush()
            interpreter.print_allocations()
            code = 0
        except BaseException as err:
            print(repr(err))
        sys.stdout.flush()
        sys.stderr.flush()
        libc.fflush(None)
        os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            code = "timeout"
            break
        time.sleep(0.002)
    os.close(fd)
    with open(log, errors="replace") as handle:
        text = handle.read()
    os.unlink(log)
    sys.stdout.write(json.dumps({"status": code, "output": text[-2000:]}) + "\n")
    sys.stdout.flush()
"""


def _flatbuffer() -> Any:
    """`tflite_export.flatbuffer`, loaded from its file when the package is not imported (its ``__init__``
    imports TensorFlow; this module and the flatbuffer reader need only numpy and the schema bindings)."""
    module: ModuleType | None = sys.modules.get("tflite_export.flatbuffer")
    if module is None:
        spec = importlib.util.spec_from_file_location(
            "_tf_nvm_flatbuffer", os.path.join(os.path.dirname(os.path.abspath(__file__)), "flatbuffer.py"))
        assert spec is not None and spec.loader is not None  # a .py file next to this one
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


class _ArenaProbe:
    """Runs the model once per arena size, each time in a fresh process; the model is written to a file once.

    With ``os.fork`` (POSIX) one helper process imports TFLite Micro once and
    forks a child per size (a few ms each instead of a new interpreter, about
    0.3 s); elsewhere each size gets its own ``python -c`` child.
    """

    def __init__(self, data, timeout):
        flatbuffer = _flatbuffer()
        flatbuffer.check_runnable(flatbuffer.read_tflite(data), "TFLite Micro arena measurement")  # WHILE: no end
        self.timeout = timeout
        fd, self.path = tempfile.mkstemp(suffix=".tflite")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        self.server = None
        if hasattr(os, "fork"):
            self.server = subprocess.Popen(
                [sys.executable, "-c", _PROBE_SERVER, self.path, str(timeout)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))

    def run(self, size):
        """(ran: bool, reported total bytes or None, (child exit status, child output tail))."""
        if self.server is None:
            try:
                result = subprocess.run([sys.executable, "-c", _CHILD, self.path, str(int(size))],
                                        capture_output=True, text=True, timeout=self.timeout,
                                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), check=False)
            except subprocess.TimeoutExpired:
                self._timed_out(size)
            status, output = result.returncode, result.stdout + result.stderr
        else:
            self.server.stdin.write(f"{int(size)}\n")
            self.server.stdin.flush()
            ready, _, _ = select.select([self.server.stdout], [], [], self.timeout + 60)
            line = self.server.stdout.readline() if ready else ""
            if not line:
                raise ExportError(f"the TFLite Micro arena probe (a helper process) gave no answer for an arena of "
                                  f"{int(size)} bytes within {self.timeout + 60} s (exit status "
                                  f"{self.server.poll()}). Fix: check that tflite-micro imports in a fresh Python "
                                  "(python3 -c 'from tflite_micro import runtime').")
            answer = loads_json(line, where="the TFLite Micro arena probe's answer", error=ExportError,
                                fix="Fix: check that tflite-micro imports in a fresh Python.", object_only=True)
            status, output = answer["status"], answer["output"]
            if status == "timeout":
                self._timed_out(size)
        match = _TOTAL.search(output)
        return status == 0 and match is not None, int(match.group(1)) if match else None, (status, output[-800:])

    def _timed_out(self, size):
        raise ExportError(f"TFLite Micro did not finish one inference of the model with an arena of {int(size)} "
                          f"bytes within {self.timeout:g} s (the child process was killed); a tf_nvm export runs in "
                          "milliseconds. Fix: pass the .tflite file written by tf-nvm export --tflite, or a larger "
                          "timeout for a model you know to be slow.")

    def close(self):
        if self.server is not None:
            self.server.stdin.close()
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
            self.server.stdout.close()
        os.unlink(self.path)


def _round_up(size):
    return -(-int(size) // ARENA_STEP) * ARENA_STEP


def measure_arena(content: "bytes | str | os.PathLike[str]", start: int = 1 << 20, limit: int = 1 << 30,
                  timeout: float = 300) -> int:
    """The smallest TFLite Micro arena the model runs with, in bytes, measured in child processes.

    First a child loads the model with a generous arena (``start``, quadrupled
    up to ``limit`` while it fails), runs one inference and calls
    ``print_allocations()``; its "Arena allocation total N bytes" (head + tail
    after allocation, printed from C to the child's file descriptors) is a
    lower bound only: it leaves out the memory TFLite Micro uses temporarily
    while it allocates (the greedy memory planner's bookkeeping, about 40 bytes
    per activation buffer, and the temporary tensor structs of each op's
    prepare step). For the MLPerf Tiny autoencoder in ``paper-4bit-bipolar`` the
    total is 16,576 bytes, but the model needs 19,584 (2-bit unipolar: 16,720
    and 19,920; ``benchmarks/tflm_arena.py``): with less, allocation
    fails ("Too many buffers") or the process segfaults. So the total is then
    checked by running the model at that size, and when it fails the smallest
    working size is found by bisection (children again, ``ARENA_STEP`` = 16
    bytes resolution, a few ms per forked child; success is monotone in the size
    above the lower bound, measured on the autoencoder in steps of 8 bytes).
    The result is kept per model (sha256 of its bytes) for this process.

    Args:
        content: .tflite bytes or path.
        start: first arena size tried, bytes.
        limit: largest arena size tried, bytes.
        timeout: seconds per child.

    Returns:
        int, bytes: the smallest multiple of 16 bytes, at least the reported
        total, with which TFLite Micro allocates and runs the model.

    Raises:
        ExportError: the model did not run even with ``limit`` bytes (the last
            child's output is quoted).
    """
    data = _model_bytes(content)
    key = (hashlib.sha256(data).hexdigest(), int(start), int(limit))
    if key not in _MEASURED:
        _MEASURED[key] = _measure_arena(data, start, limit, timeout)
    return _MEASURED[key]


_MEASURED: dict[tuple[str, int, int], int] = {}
"""(sha256 of the model, start, limit) -> measured arena: one measurement per model and process."""


def _measure_arena(data, start, limit, timeout):
    probe = _ArenaProbe(data, timeout)
    try:
        size = int(start)
        while True:
            ran, total, (status, tail) = probe.run(size)
            if ran:
                break
            if size >= limit:
                raise ExportError(
                    f"TFLite Micro could not run the model with an arena of {size} bytes (child exit status "
                    f"{status}): {tail!r}. Fix: check the op list for ops TFLite Micro lacks.")
            size *= 4
        low, high = _round_up(total), size
        if low >= high or probe.run(low)[0]:
            return min(low, high)
        # low fails: gallop up to a working size, then bisect (invariant: low fails, high runs)
        step = max(ARENA_STEP, _round_up(low // 4))
        while low + step < high:
            if probe.run(low + step)[0]:
                high = low + step
                break
            low, step = low + step, step * 2
        while high - low > ARENA_STEP:
            middle = _round_up((low + high) // 2)
            if middle >= high:
                break
            if probe.run(middle)[0]:
                high = middle
            else:
                low = middle
        return high
    finally:
        probe.close()


def _ran_here(data, arena_size):
    """True when `measure_arena` measured this model in this process (e.g. `export_tflite`, before `compare`)
    and ``arena_size`` is at least that size: a size that ran in a child, success being monotone above it."""
    digest = hashlib.sha256(data).hexdigest()
    known = [size for (key, _, _), size in _MEASURED.items() if key == digest]
    return bool(known) and not isinstance(arena_size, bool) and isinstance(arena_size, (int, np.integer)) \
        and arena_size >= min(known)


def check_arena(content: "bytes | str | os.PathLike[str]", arena_size: int, owner: str = "run_tflm",
                timeout: float = 300) -> None:
    """Raises `ArenaTooSmallError` unless TFLite Micro runs the model with ``arena_size`` bytes (in a child process).

    Args:
        content: .tflite bytes or path.
        arena_size: arena bytes to check.
        owner: the function named in the message.
        timeout: seconds per child.

    Raises:
        ArenaTooSmallError: the child failed or crashed with ``arena_size``; the
            message gives the size the model needs (`measure_arena`).
    """
    data = _model_bytes(content)
    if isinstance(arena_size, bool) or not isinstance(arena_size, (int, np.integer)) or arena_size <= 0:
        raise ArenaTooSmallError(f"{owner}: arena_size must be a positive integer (bytes), got {arena_size!r}. "
                                 "Fix: pass the arena measured by tflite_export.measure_arena, or None to measure it.")
    probe = _ArenaProbe(data, timeout)
    try:
        ran, _, (status, tail) = probe.run(arena_size)
    finally:
        probe.close()
    if ran:
        return
    need = measure_arena(data, timeout=timeout)
    raise ArenaTooSmallError(
        f"{owner}: TFLite Micro cannot run this model with arena_size={int(arena_size)} bytes (a child process "
        f"exited with status {status}: {tail.strip().splitlines()[-1] if tail.strip() else 'no output'!r}); the "
        f"model needs {need} bytes (tflite_export.measure_arena). Fix: pass arena_size >= {need}, or None to "
        "measure it; an arena_bytes stored by an older tf_nvm export (which read only the allocator's final "
        "total) may be too small: export again.")
