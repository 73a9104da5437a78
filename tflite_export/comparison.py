"""Compare an exported ``.tflite`` in LiteRT and TFLite Micro with the Keras NVM model, on int8 codes.

Inputs are compared on the int8 grid: a float input ``x`` (model units, i.e.
standardised) becomes ``q = clip(round_half_even(x / scale), -128, 127)``; the
runtimes get ``q`` and the Keras model gets ``q * scale`` (on the grid, so its
own input quantizer changes nothing). Keras outputs are put on the output grid
the same way, so all comparisons are between int8 codes (1 LSB = one grid step).

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
from typing import Any

import numpy as np

from tf_nvm.core.errors import ExportError
from tf_nvm.core.grid import to_int8
from tf_nvm.core.modes import RUNTIMES, emulate_runtime, runtime_for
from tf_nvm.keras.backend import tf
from tf_nvm.keras.nvm_model import model_spec
from tflite_export.flatbuffer import ModelSource, read_model_bytes, read_tflite
from tflite_export.litert import run_litert
from tflite_export.tflm import run_tflm

__all__ = [
    "RuntimeComparison",
    "RuntimeReport",
    "runtime_report",
    "RUNTIME_NAMES",
    "quantize_input",
    "keras_int8_outputs",
    "compare",
    "io_quantization",
    "KERAS_EMULATION",
]


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
    histogram: dict[int, int]

    @property
    def exact(self) -> bool:
        """True when no output differs."""
        return self.differing == 0

    def __str__(self) -> str:
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
    def exact(self) -> bool:
        """True when the model's own runtime reproduces every Keras output."""
        return self.deployed.exact

    def __str__(self) -> str:
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


def runtime_report(model: Any, content: ModelSource, x: np.ndarray, arena_size: int | None = None,
                   inputs: str | None = None) -> RuntimeReport:
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
    runtime = model_spec(model).runtime
    results = compare(model, content, x, runtimes=("litert", "tflm"), arena_size=arena_size, emulate="model")
    other = "litert" if runtime == "tflm" else "tflm"
    return RuntimeReport(runtime=runtime, deployed=results[runtime], other=results[other],
                         inputs=inputs or f"{len(x)} examples")


def io_quantization(content: ModelSource) -> tuple[tuple[float, int], tuple[float, int]]:
    """((input scale, input zero point), (output scale, output zero point)) of a .tflite model."""
    graph = read_tflite(content)
    inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    return (inp.scales[0], inp.zero_points[0]), (out.scales[0], out.zero_points[0])


def quantize_input(x: np.ndarray, scale: float, zero_point: int = 0) -> np.ndarray:
    """Float values -> int8 codes, ties to even (`tf_nvm.core.grid.to_int8`, the NVM quantizers' rounding).

    Args:
        x: float array (model units).
        scale: input scale (A/128).
        zero_point: input zero point (0).

    Returns:
        int8 array.
    """
    return to_int8(x, scale, zero_point)


def keras_int8_outputs(model: Any, x_q: np.ndarray, input_quant: tuple[float, int], output_quant: tuple[float, int],
                       batch_size: int = 512, emulate: str = "litert") -> np.ndarray:
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
    scale, zp = input_quant
    x = ((x_q.astype(np.float32) - zp) * np.float32(scale)).astype(np.float32)
    if emulate == runtime_for(model_spec(model)):  # what the model computes as trained: its predict
        y = model.predict(x, verbose=0, batch_size=batch_size)
    else:
        with emulate_runtime(emulate):
            forward = tf.function(lambda batch: model(batch, training=False))
            y = np.concatenate([forward(tf.constant(x[i:i + batch_size])).numpy()
                                for i in range(0, len(x), batch_size)])
    return quantize_input(y, *output_quant)  # the same int8 rounding as the runtime's output tensor


def _compare(name: str, got: np.ndarray, want: np.ndarray) -> RuntimeComparison:
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


def compare(model: Any, content: ModelSource, x: np.ndarray, runtimes: tuple[str, ...] | list[str] = ("litert", "tflm"),
            arena_size: int | None = None, emulate: str = "auto") -> dict[str, RuntimeComparison]:
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
    if emulate != "auto" and emulate != "model" and emulate not in RUNTIMES:
        raise ExportError(f"compare: emulate must be 'auto', 'model' or one of {list(RUNTIMES)}, got {emulate!r}. "
                          "Fix: pass one of those modes.")
    if emulate == "model":
        emulate = model_spec(model).runtime
    unknown = [name for name in runtimes if name not in KERAS_EMULATION]
    if unknown:
        raise ExportError(f"compare: unknown runtime {unknown[0]!r}; allowed: {list(KERAS_EMULATION)}. Fix: pass "
                          "runtimes from that list.")
    data = read_model_bytes(content)
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
