"""Run an exported ``.tflite`` in LiteRT and TFLite Micro and compare it with the Keras NVM model.

Inputs are compared on the int8 grid: a float input ``x`` (model units, i.e.
standardised) becomes ``q = clip(round_half_even(x / scale), -128, 127)``; the
runtimes get ``q`` and the Keras model gets ``q * scale`` (on the grid, so its
own input quantizer changes nothing). Keras outputs are put on the output grid
the same way, so all comparisons are between int8 codes (1 LSB = one grid step).

The TFLite Micro arena is measured in child processes (``print_allocations``
prints from C to file descriptor 1, and an arena that is too small can crash
the process), never by trial in the caller's process; `run_tflm` checks a
given arena in a child before it uses it, and raises `ArenaTooSmallError`
with the size the model needs instead of crashing.

Which Keras arithmetic each runtime is compared with (`compare`): LiteRT's
default (XNNPACK) and builtin resolvers against the default Keras NVM model
(one rounding, ties to even; bit-exact with XNNPACK); TFLite Micro and LiteRT's
reference resolver against the same model inside
`tf_nvm.core.modes.emulate_runtime` ``("tflm")`` / ``("litert-reference")``
(gemmlowp-style two-rounding requantization, the reference kernels' integer
maths; the reference resolver's FULLY_CONNECTED rounds once).

Outside those contexts the Keras model computes the runtime it is trained for,
its spec's ``runtime`` (`tf_nvm.NVMSpec.runtime`). `runtime_report` compares
both runtimes with the model as trained: the one it is trained for must match
bit for bit, and for the other it counts the differing outputs and predictions.
"""

import dataclasses
import hashlib
import importlib
import importlib.util
import os
import re
import select
import subprocess
import sys
import tempfile

import numpy as np

from tf_nvm.core.errors import ExportError
from tf_nvm.core.grid import to_int8
from tf_nvm.core.quiet import native_output_silenced
from tf_nvm.core.safe_io import loads_json

__all__ = [
    "RuntimeComparison",
    "RuntimeReport",
    "runtime_report",
    "RUNTIME_NAMES",
    "WeightCheck",
    "quantize_input",
    "keras_int8_outputs",
    "run_litert",
    "run_tflm",
    "measure_arena",
    "check_arena",
    "ARENA_STEP",
    "compare",
    "check_nvm_weights",
    "io_quantization",
    "KERAS_EMULATION",
    "require_tflm",
    "require_litert",
]

LITERT_RESOLVERS = ("default", "builtin", "reference")
KERAS_EMULATION = {"litert": "litert", "litert-builtin": "litert", "litert-reference": "litert-reference",
                   "tflm": "tflm"}
"""Runtime name -> the `tf_nvm.core.modes.emulate_runtime` mode its Keras reference outputs are computed in."""


@dataclasses.dataclass(frozen=True)
class RuntimeComparison:
    """int8 outputs of one runtime against the Keras NVM model's.

    Attributes:
        runtime: ``"litert"``, ``"litert-builtin"``, ``"litert-reference"`` or ``"tflm"``.
        examples: inputs compared.
        outputs: int8 output values compared (examples x outputs per example).
        differing: output values that differ (count).
        max_abs_lsb: largest |difference| in LSB (grid steps).
        within_1_lsb: fraction of output values within 1 LSB (0..1).
        argmax_agreement: fraction of examples with the same arg-max (0..1).
        histogram: {difference in LSB: count}.
    """

    runtime: str
    examples: int
    outputs: int
    differing: int
    max_abs_lsb: int
    within_1_lsb: float
    argmax_agreement: float
    histogram: dict

    @property
    def exact(self):
        """True when no output differs."""
        return self.differing == 0

    def __str__(self):
        return (f"{self.runtime}: {self.differing}/{self.outputs} outputs differ (max {self.max_abs_lsb} LSB, "
                f"{100 * self.within_1_lsb:.3f} % within 1 LSB), argmax agreement "
                f"{100 * self.argmax_agreement:.2f} % on {self.examples} examples")


RUNTIME_NAMES = {"litert": "LiteRT", "tflm": "TFLite Micro"}
"""`tf_nvm.NVMSpec.runtime` -> the runtime's name in reports (the same keys are `compare`'s runtime names)."""


@dataclasses.dataclass(frozen=True)
class RuntimeReport:
    """Which runtime the Keras model matches bit for bit, and what the other one changes.

    Both runtimes are compared with the Keras model as trained (its spec's
    ``runtime`` arithmetic, `compare` with ``emulate="model"``).

    Attributes:
        runtime: the model's `tf_nvm.NVMSpec.runtime` (``"litert"`` or ``"tflm"``).
        deployed: `RuntimeComparison` of that runtime (0 differing outputs when the export is exact).
        other: `RuntimeComparison` of the other runtime.
        inputs: where the compared inputs came from (e.g. ``"64 representative examples"``).
    """

    runtime: str
    deployed: RuntimeComparison
    other: RuntimeComparison
    inputs: str

    @property
    def exact(self):
        """True when the model's own runtime reproduces every Keras output."""
        return self.deployed.exact

    def __str__(self):
        name = RUNTIME_NAMES[self.runtime]
        other_name = RUNTIME_NAMES[self.other.runtime]
        deployed, other = self.deployed, self.other
        changed = other.examples - round(other.argmax_agreement * other.examples)
        head = (f"bit-exact on {name}" if deployed.exact else
                f"NOT bit-exact on {name} (max {deployed.max_abs_lsb} LSB; expected only for LiteRT with the INT4 "
                "container, else report it with the TensorFlow version)")
        return (f"runtime check on {self.inputs}: the Keras model is trained for {name} (spec runtime "
                f"{self.runtime!r}) and is {head}: {deployed.differing}/{deployed.outputs} outputs differ; on "
                f"{other_name} {other.differing}/{other.outputs} outputs differ (max {other.max_abs_lsb} LSB) and "
                f"{changed} of {other.examples} predictions (arg-max) change ({100 * other.argmax_agreement:.2f} % "
                f"agree). To deploy on {other_name}, train with spec runtime {self.other.runtime!r}.")


def runtime_report(model, content, x, arena_size=None, inputs=None):
    """Runs ``content`` in LiteRT and TFLite Micro and compares both with the Keras model as trained.

    Args:
        model: the Keras NVM model that was exported.
        content: .tflite bytes or path.
        x: float inputs in model units (standardised), examples first.
        arena_size: TFLite Micro arena (default: measured).
        inputs: words for where ``x`` came from (default ``"N examples"``).

    Returns:
        `RuntimeReport`.

    Raises:
        ArenaTooSmallError: ``arena_size`` is too small for TFLite Micro.
    """
    import tf_nvm  # noqa: PLC0415

    runtime = tf_nvm.model_spec(model).runtime
    results = compare(model, content, x, runtimes=("litert", "tflm"), arena_size=arena_size, emulate="model")
    other = "litert" if runtime == "tflm" else "tflm"
    return RuntimeReport(runtime=runtime, deployed=results[runtime], other=results[other],
                         inputs=inputs or f"{len(x)} examples")


@dataclasses.dataclass(frozen=True)
class WeightCheck:
    """How one NVM layer's weight tensor is stored in the flatbuffer.

    Attributes:
        layer: Keras layer name.
        tensor: flatbuffer tensor name.
        dtype: ``"INT8"`` or ``"INT4"``.
        scales: stored scale(s).
        zero_points: stored zero point(s).
        codes: sorted distinct stored values.
        allowed: True when every value lies in the spec's code range.
        matches_keras: True when the stored values equal `tf_nvm.weight_codes`
            (in TFLite's layout).
    """

    layer: str
    tensor: str
    dtype: str
    scales: tuple
    zero_points: tuple
    codes: tuple
    allowed: bool
    matches_keras: bool


def io_quantization(content):
    """((input scale, input zero point), (output scale, output zero point)) of a .tflite model."""
    from tflite_export.flatbuffer import read_tflite  # noqa: PLC0415

    graph = read_tflite(content)
    inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    return (inp.scales[0], inp.zero_points[0]), (out.scales[0], out.zero_points[0])


def quantize_input(x, scale, zero_point=0):
    """Float values -> int8 codes, ties to even (`tf_nvm.core.grid.to_int8`, the NVM quantizers' rounding).

    Args:
        x: float array (model units).
        scale: input scale (A/128).
        zero_point: input zero point (0).

    Returns:
        int8 array.
    """
    return to_int8(x, scale, zero_point)


def keras_int8_outputs(model, x_q, input_quant, output_quant, batch_size=512, emulate="litert"):
    """The Keras model's outputs on the int8 output grid, for int8 inputs ``x_q``.

    Args:
        model: the Keras NVM model.
        x_q: int8 inputs.
        input_quant: (scale, zero point) of the TFLite input.
        output_quant: (scale, zero point) of the TFLite output.
        batch_size: Keras predict batch size.
        emulate: `tf_nvm.core.modes.emulate_runtime` mode: ``"litert"``, ``"tflm"``
            or ``"litert-reference"``. The mode the model computes anyway (its
            spec's ``runtime``) uses ``model.predict``; any other a fresh
            ``tf.function`` traced inside the context, so that no earlier trace
            is reused.

    Returns:
        int8 array of outputs.
    """
    from tf_nvm.keras.backend import tf  # noqa: PLC0415
    from tf_nvm.core.modes import emulate_runtime  # noqa: PLC0415

    import tf_nvm  # noqa: PLC0415
    from tf_nvm.core.modes import runtime_for  # noqa: PLC0415

    scale, zp = input_quant
    x = ((x_q.astype(np.float32) - zp) * np.float32(scale)).astype(np.float32)
    if emulate == runtime_for(tf_nvm.model_spec(model)):  # what the model computes as trained: its predict
        y = model.predict(x, verbose=0, batch_size=batch_size)
    else:
        with emulate_runtime(emulate):
            forward = tf.function(lambda batch: model(batch, training=False))
            y = np.concatenate([forward(tf.constant(x[i:i + batch_size])).numpy()
                                for i in range(0, len(x), batch_size)])
    return quantize_input(y, *output_quant)  # the same int8 rounding as the runtime's output tensor


def _model_bytes(content):
    if isinstance(content, (bytes, bytearray)):
        return bytes(content)
    with open(content, "rb") as handle:
        return handle.read()


def run_litert(content, x_q, resolver="default"):
    """Runs the model in LiteRT (``ai_edge_litert``), one example per invoke.

    Args:
        content: .tflite bytes or path.
        x_q: int8 inputs (examples first).
        resolver: ``"default"`` (XNNPACK delegate, the path deployments use),
            ``"builtin"`` (optimized builtin kernels, no delegate) or
            ``"reference"`` (reference kernels, like TFLite Micro).

    Returns:
        int8 outputs, examples first.
    """
    require_litert()
    from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: PLC0415

    kinds = {"default": OpResolverType.AUTO, "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
             "reference": OpResolverType.BUILTIN_REF}
    if resolver not in kinds:
        raise ExportError(f"run_litert: resolver must be one of {list(kinds)}, got {resolver!r}. Fix: pass one of "
                          "those names.")
    with native_output_silenced():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter = Interpreter(model_content=_model_bytes(content), experimental_op_resolver_type=kinds[resolver])
        interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    results = []
    for i in range(len(x_q)):
        interpreter.set_tensor(inp, x_q[i:i + 1])
        interpreter.invoke()
        results.append(interpreter.get_tensor(out)[0].copy())
    return np.stack(results)


def run_tflm(content, x_q, arena_size=None):
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
    from tflite_micro import runtime  # noqa: PLC0415

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


def _require(module, what, flag):
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ExportError(f"{what} is not installed ({err}). Fix: install the export extra, "
                          f"python3 -m pip install 'tf-nvm[export]', or {flag}.") from None


def require_tflm():
    """Raises `ExportError` with the install command when TFLite Micro (``tflite_micro``) is missing."""
    _require("tflite_micro", "TFLite Micro (the Python package tflite-micro)",
             "skip the arena measurement (measure_arena=False, tf-nvm export --no-arena)")


def require_litert():
    """Raises `ExportError` with the install command when LiteRT (``ai_edge_litert``) is missing."""
    _require("ai_edge_litert", "LiteRT (the Python package ai-edge-litert)", "compare without it")


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


def _flatbuffer():
    """`tflite_export.flatbuffer`, loaded from its file when the package is not imported (its ``__init__``
    imports TensorFlow; this module and the flatbuffer reader need only numpy and the schema bindings)."""
    module = sys.modules.get("tflite_export.flatbuffer")
    if module is None:
        spec = importlib.util.spec_from_file_location(
            "_tf_nvm_flatbuffer", os.path.join(os.path.dirname(os.path.abspath(__file__)), "flatbuffer.py"))
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


def measure_arena(content, start=1 << 20, limit=1 << 30, timeout=300):
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


_MEASURED = {}
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


def check_arena(content, arena_size, owner="run_tflm", timeout=300):
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
    from tf_nvm.core.errors import ArenaTooSmallError  # noqa: PLC0415

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


def _compare(name, got, want):
    got = np.asarray(got, np.int32).reshape(len(got), -1)
    want = np.asarray(want, np.int32).reshape(len(want), -1)
    diff = got - want
    values, counts = np.unique(diff, return_counts=True)
    return RuntimeComparison(
        runtime=name, examples=len(got), outputs=int(diff.size), differing=int(np.count_nonzero(diff)),
        max_abs_lsb=int(np.abs(diff).max()) if diff.size else 0,
        within_1_lsb=float(np.mean(np.abs(diff) <= 1)) if diff.size else 1.0,
        argmax_agreement=float(np.mean(got.argmax(1) == want.argmax(1))) if diff.size else 1.0,
        histogram={int(v): int(c) for v, c in zip(values, counts)})


def compare(model, content, x, runtimes=("litert", "tflm"), arena_size=None, emulate="auto"):
    """Runs ``content`` in each runtime on ``x`` and compares with the Keras model's int8 outputs.

    Args:
        model: the Keras NVM model that was exported.
        content: .tflite bytes or path.
        x: float inputs in model units (standardised), examples first.
        runtimes: any of ``"litert"`` (default resolver), ``"litert-builtin"``,
            ``"litert-reference"``, ``"tflm"``.
        arena_size: TFLite Micro arena (default: measured).
        emulate: ``"auto"`` (default): compare each runtime with the Keras model
            in the `tf_nvm.core.modes.emulate_runtime` mode of `KERAS_EMULATION`
            (``"tflm"`` for TFLite Micro, ``"litert-reference"`` for the reference
            resolver): checks that the export is right for every runtime;
            ``"model"``: compare every runtime with the model as trained (the
            arithmetic of its spec's ``runtime``): what a deployment gets (see
            `runtime_report`); or one mode of `tf_nvm.core.modes.RUNTIMES` for every
            runtime.

    Returns:
        dict {runtime: `RuntimeComparison`}.

    Raises:
        ExportError: unknown runtime or mode.
        ArenaTooSmallError: ``arena_size`` is too small for TFLite Micro.
    """
    import tf_nvm  # noqa: PLC0415
    from tf_nvm.core.modes import RUNTIMES  # noqa: PLC0415

    if emulate != "auto" and emulate != "model" and emulate not in RUNTIMES:
        raise ExportError(f"compare: emulate must be 'auto', 'model' or one of {list(RUNTIMES)}, got {emulate!r}. "
                          "Fix: pass one of those modes.")
    if emulate == "model":
        emulate = tf_nvm.model_spec(model).runtime
    unknown = [name for name in runtimes if name not in KERAS_EMULATION]
    if unknown:
        raise ExportError(f"compare: unknown runtime {unknown[0]!r}; allowed: {list(KERAS_EMULATION)}. Fix: pass "
                          "runtimes from that list.")
    data = _model_bytes(content)
    input_quant, output_quant = io_quantization(data)
    x_q = quantize_input(x, *input_quant)
    wanted = {}
    out = {}
    for name in runtimes:
        mode = KERAS_EMULATION[name] if emulate == "auto" else emulate
        if mode not in wanted:
            wanted[mode] = keras_int8_outputs(model, x_q, input_quant, output_quant, emulate=mode)
        want = wanted[mode]
        if name == "tflm":
            got = run_tflm(data, x_q, arena_size)
        else:
            got = run_litert(data, x_q, {"litert": "default", "litert-builtin": "builtin",
                                         "litert-reference": "reference"}[name])
        out[name] = _compare(name, got, want)
    return out


def _tflite_layout(codes, op):
    """Keras kernel codes -> the layout TFLite stores for ``op``."""
    if op == "FULLY_CONNECTED":
        return codes.reshape(-1, codes.shape[-1]).T
    if codes.ndim == 3:  # Conv1D [k, cin, f] -> CONV_2D [f, 1, k, cin]
        return codes.transpose(2, 0, 1)[:, None]
    if op == "DEPTHWISE_CONV_2D":  # [kh, kw, cin, m] -> [1, kh, kw, cin*m]
        return codes.reshape(1, codes.shape[0], codes.shape[1], -1)
    return codes.transpose(3, 0, 1, 2)  # Conv2D [kh, kw, cin, f] -> [f, kh, kw, cin]


def check_nvm_weights(model, content, folded=None):
    """How every NVM layer's kernel is stored in the flatbuffer.

    Args:
        model: the exported Keras NVM model.
        content: .tflite bytes or path.
        folded: {layer name: C} of the ``[t, -t]`` convolutions exported folded (``export_tflite``'s
            ``fold_sign_split``): their tensor must hold the codes ``W+ - W-`` of the kernel's first ``C``
            minus its last ``C`` input rows, in ``-code_max..code_max``.

    Returns:
        list of `WeightCheck`, one per NVM crossbar layer.

    Raises:
        ExportError: an NVM layer has no (or more than one) weight tensor.
    """
    import tf_nvm  # noqa: PLC0415
    from tflite_export.flatbuffer import read_tflite  # noqa: PLC0415

    graph = read_tflite(_model_bytes(content))
    spec = tf_nvm.model_spec(model)
    checks = []
    for name, layer_codes in tf_nvm.weight_codes(model).items():
        found = graph.layer_weights(name)
        if len(found) != 1:
            raise ExportError(f"NVM layer {name!r}: expected one weight tensor named '*/{name}/*' in the .tflite, "
                              f"found {len(found)}: {[t.name for _, t in found]}. Fix: pass the .tflite exported "
                              "from this model with tflite_export.export_tflite.")
        op, tensor = found[0]
        values = tensor.values
        codes, low = layer_codes.codes, spec.code_min
        channels = (folded or {}).get(name)
        if channels:
            codes, low = codes[..., :channels, :] - codes[..., channels:, :], -spec.code_max
        expected = _tflite_layout(codes, op.op)
        matches = values is not None and values.shape == expected.shape and np.array_equal(values, expected)
        distinct = tuple(int(v) for v in np.unique(values)) if values is not None else ()
        allowed = bool(distinct) and min(distinct) >= low and max(distinct) <= spec.code_max
        checks.append(WeightCheck(name, tensor.name, tensor.dtype, tensor.scales, tensor.zero_points, distinct,
                                  allowed, bool(matches)))
    return checks
