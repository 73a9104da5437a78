"""`export_tflite`: a full-integer TFLite model whose weights are the device codes.

The Keras NVM model is converted while `tf_nvm.core.modes.converter_graph` is
active, so the converter sees exactly one fake-quant per activation (scale
A/128, zero point 0), each NVM kernel as ``codes * s`` inside a symmetric
narrow-range fake-quant (stored: scale ``s``, zero point 0, the codes), and
each digital BatchNorm as a per-channel 1x1 depthwise convolution with int8
weights and int32 bias (see `tf_nvm.keras.digital`).

A convolution that reads both signs ``[t, -t]`` of a non-negative ``t`` (a unipolar network's
way to subtract) is stored folded by default: ``conv(t, W+ - W-)``, one kernel of code
differences on the same scale instead of the two halves, without the negation and the
concatenation. The int32 accumulators are the same (``-t`` never clips), so are the outputs,
with half that layer's multiply-adds and weight flash: the microcontroller baseline a unipolar
network is compared with. The crossbar mapping keeps the halves (one device per row).

Weight containers:

* ``"int8"`` (default): codes stored as int8. LiteRT's default (XNNPACK)
  kernels compute every op with one rounding, ties to even, like the Keras
  model: the int8 outputs are bit-identical.
* ``"int4"``: codes stored as INT4 (two per byte, about half the weight flash),
  allowed when every code fits -7..7 (2-bit presets, 3-bit unipolar). XNNPACK
  does not take INT4 convolutions, so LiteRT runs its builtin kernels, which
  requantize with two roundings (a 31-bit fixed-point multiply, then a rounding
  shift, ties away from zero): outputs can differ by 1 LSB per layer, and the
  differences can add up at the logits. TFLite Micro rounds the same way for
  both containers (and unpacks INT4 weights into arena scratch memory).
"""

import dataclasses
import os
import warnings
from typing import Any, Callable, Iterator, cast

import numpy as np

from tf_nvm.core import modes
from tf_nvm.core.atomic import check_writable, write_bytes_atomic
from tf_nvm.core.errors import ExportError
from tf_nvm.core.quiet import native_output_silenced
from tf_nvm.core.spec import NVMSpec
from tf_nvm.keras.backend import keras, tf
from tf_nvm.keras.digital import NVMBatchNormalization
from tf_nvm.keras.nvm_model import check_finite_weights, check_fixed_input_shape, model_spec
from tf_nvm.keras.sign_split import fold_dense_sign_split, fuse_sign_split
from tflite_export.comparison import RuntimeReport, io_quantization, runtime_report
from tflite_export.flatbuffer import TFLiteGraph, read_tflite
from tflite_export.litert import require_litert
from tflite_export.tflm import measure_arena as measure_tflm_arena
from tflite_export.tflm import require_tflm
from tflite_export.weights import WeightCheck, check_nvm_weights

__all__ = ["TFLiteExport", "export_tflite", "CONTAINERS"]

CONTAINERS = ("int8", "int4")


@dataclasses.dataclass(frozen=True)
class TFLiteExport:
    """What `export_tflite` wrote.

    Attributes:
        path: the .tflite file.
        container: ``"int8"`` or ``"int4"`` weight container.
        model_bytes: flatbuffer size in bytes (flash).
        weight_bytes: bytes of the NVM weight tensors inside it.
        ops: builtin op names in execution order.
        op_counts: {op name: count}.
        arena_bytes: TFLite Micro arena in bytes (RAM), or None when not measured.
        input_scale: scale of the int8 input (A/128), zero point 0.
        output_scale: scale of the int8 output.
        weight_scale: the one scale of every NVM weight tensor.
        nvm_weight_tensors: number of NVM weight tensors checked.
        folded_layers: the ``[t, -t]`` convolutions stored folded (``fold_sign_split``), in model order.
        runtimes: `tflite_export.verify.RuntimeReport` (which runtime the Keras
            model matches bit for bit; outputs and predictions that differ on
            the other), or None when not checked (``check_runtimes=False``).
    """

    path: str
    container: str
    model_bytes: int
    weight_bytes: int
    ops: tuple[str, ...]
    op_counts: dict[str, int]
    arena_bytes: int | None
    input_scale: float
    output_scale: float
    weight_scale: float
    nvm_weight_tensors: int
    runtimes: RuntimeReport | None = None
    folded_layers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        arena = "not measured" if self.arena_bytes is None else f"{self.arena_bytes} bytes"
        ops = ", ".join(f"{name} x{count}" for name, count in self.op_counts.items())
        text = (f"TFLite model {self.path}: {self.model_bytes} bytes flash ({self.container} weights, "
                f"{self.weight_bytes} bytes in {self.nvm_weight_tensors} NVM tensors, scale "
                f"{self.weight_scale!r}, zero point 0); TFLite Micro arena {arena}; {len(self.ops)} ops: {ops}")
        return text if self.runtimes is None else f"{text}\n{self.runtimes}"


def _warn_plain_batchnorm(model: Any) -> None:
    plain = [layer.name for layer in model.layers
             if isinstance(getattr(layer, "layer", None), keras.layers.BatchNormalization)
             and not isinstance(layer.layer, NVMBatchNormalization)]
    if plain:
        warnings.warn(
            f"layers {plain} are plain BatchNormalization layers (a model quantized by an older tf_nvm): TFLite "
            "computes them as MUL + ADD with extra roundings, so the export is not bit-exact with Keras. Fix: "
            "quantize the float model again with this tf_nvm (BatchNorm becomes NVMBatchNormalization) and "
            "retrain or copy the weights.", UserWarning, stacklevel=3)


def _numeric(data: Any) -> np.ndarray:
    """``representative_data`` as finite float32 numbers (strings, objects, ragged lists and NaN are refused)."""
    try:
        array = np.asarray(data)
    except ValueError as err:  # ragged nested lists
        raise ExportError(f"representative_data cannot be an array ({err}). Fix: pass standardised model inputs of "
                          "one shape, e.g. x_train[:256].") from None
    if array.dtype.kind not in "biuf":
        raise ExportError(f"representative_data must hold numbers, got dtype {array.dtype} (e.g. "
                          f"{repr(array.flat[0])[:40] if array.size else 'empty'}). Fix: pass standardised model "
                          "inputs (floats), e.g. x_train[:256].")
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused below
        array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ExportError("representative_data holds NaN or infinite values (or values beyond float32). Fix: pass "
                          "standardised model inputs, e.g. x_train[:256].")
    return array


def _grid_inputs(model: Any, count: int) -> np.ndarray:
    """``count`` random inputs on the model's int8 input grid (seed 0), float32."""
    shape = tuple(model.inputs[0].shape[1:])
    step = model_spec(model).activation_step
    return (np.random.default_rng(0).integers(-128, 128, (count,) + shape) * step).astype(np.float32)


def _representative(model: Any, data: Any, count: int = 64) -> Callable[[], Iterator[list[np.ndarray]]]:
    shape = tuple(model.inputs[0].shape[1:])
    if data is None:
        data = _grid_inputs(model, count)
    if callable(data):
        return data
    data = _numeric(data)
    if data.shape[1:] != shape:
        raise ExportError(f"representative_data has shape {list(data.shape)}; the model expects examples of shape "
                          f"{list(shape)} (examples first). Fix: pass standardised model inputs, e.g. x_train[:256].")

    def generator() -> Iterator[list[np.ndarray]]:
        for i in range(min(len(data), 256)):
            yield [data[i:i + 1]]

    return generator


def _check_inputs(model: Any, data: Any, count: int = 64, limit: int = 256) -> tuple[np.ndarray, str]:
    """(inputs, their description) for `export_tflite`'s runtime check."""
    if data is not None and not callable(data):
        data = _numeric(data)[:limit]
        return data, f"{len(data)} representative examples"
    return _grid_inputs(model, count), f"{count} random inputs on the int8 input grid"


def _convert(model: Any, representative: Callable[[], Iterator[list[np.ndarray]]], container: str,
             fold: bool = False) -> bytes:
    with modes.converter_graph(weight_container=container), modes.fold_sign_split(fold):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        try:
            with native_output_silenced():  # the converter's "fully_quantize: 0, ..." lines and statistics warning
                return converter.convert()
        except Exception as err:  # the converter raises many internal types (ConverterError, RuntimeError, ...)
            raise ExportError(f"the TFLite converter failed on model {model.name!r}: {str(err)[-1500:]}. "
                              "Fix: check that every layer is supported by tf_nvm (see "
                              "tf_nvm.keras.quantize_configs.supported_layer_names()).") from err


def export_tflite(model: Any, path: str | os.PathLike, representative_data: Any = None, *, container: str = "int8",
                  fold_sign_split: bool = True, measure_arena: bool = True, check_runtimes: bool = False,
                  verbose: bool = False) -> TFLiteExport:
    """Writes a full-integer TFLite model of a trained NVM model and checks its weights.

    int8 activations everywhere, int8 input and output (scale A/128, zero
    point 0). Every NVM weight tensor stores exactly the device codes of
    `tf_nvm.weight_codes` with the one shared scale and zero point 0
    (non-negative codes included); this is checked on the flatbuffer before the
    file is written. The file appears atomically (temporary file + rename).

    Args:
        model: trained Keras NVM model (from `tf_nvm.quantize_model`).
        path: destination ``.tflite`` file.
        representative_data: standardised model inputs (array, examples first)
            or a representative-dataset generator function. Every tensor range
            is fixed by the NVM quantizers, so it only feeds the converter's
            calibration pass; default: random inputs on the shared grid.
        container: ``"int8"`` (default, bit-exact in LiteRT) or ``"int4"``
            (half the weight flash; 1-LSB rounding differences, see the module
            docstring).
        fold_sign_split: store each convolution and Dense layer that reads ``[t, -t]`` of a non-negative
            ``t`` (`tf_nvm.keras.sign_split.fuse_sign_split`; unipolar networks) as ``conv(t, W+ - W-)``: one kernel
            of code differences (``-code_max..code_max``, same scale) instead of the two halves, and no
            negation and concatenation. The int32 accumulators are the same, so are the outputs, with
            half that layer's multiply-adds and weight bytes: the fair microcontroller baseline. The
            crossbar mapping (`export_crossbar`) keeps both halves. False: the halves, as the crossbar.
        measure_arena: measure the TFLite Micro arena in a child process.
        check_runtimes: run the written model in LiteRT and TFLite Micro and
            compare both with the Keras model as trained
            (`tflite_export.verify.runtime_report`): the runtime of the model's
            spec must match bit for bit, the other's differing outputs and
            predictions are counted. Inputs: the first 256 of
            ``representative_data`` when it is an array, else 64 random inputs
            on the int8 input grid (seed 0). Stored in ``runtimes`` (its
            ``exact`` is False, and its text says so, when the model's own
            runtime differs: e.g. LiteRT with ``container="int4"``).
        verbose: print the summary.

    Returns:
        `TFLiteExport` (model bytes, op list, arena bytes, ...).

    Raises:
        NotAnNVMModelError: ``model`` has no NVM crossbar layer.
        ExportError: unknown container; INT4 asked for codes outside -7..7; the
            converter failed; the flatbuffer's NVM weights are not the
            device codes on the shared scale (a converter change).
    """
    spec = _check_request(model, path, container, measure_arena or check_runtimes, check_runtimes)
    _warn_plain_batchnorm(model)
    _check_container_range(spec, container)
    folded = _folded_layers(model) if fold_sign_split else {}
    content = _convert(model, _representative(model, representative_data), container, fold=bool(folded))
    graph = read_tflite(content)
    checks = _checked_weights(model, content, folded, spec)
    arena = measure_tflm_arena(content) if measure_arena else None  # before writing: a failure leaves no file
    write_bytes_atomic(path, content)
    summary = _summary(path, container, content, graph, checks, arena, folded)
    if check_runtimes:
        x, inputs = _check_inputs(model, representative_data)
        report = runtime_report(model, content, x, inputs=inputs)  # arena: measured (kept per model)
        summary = dataclasses.replace(summary, runtimes=report)
    if verbose:
        print(summary)
    return summary


def _check_request(model: Any, path: str | os.PathLike, container: str, need_tflm: bool,
                   need_litert: bool) -> NVMSpec:
    """The model's spec, once the container, the model, the output file and the runtimes needed are checked."""
    if container not in CONTAINERS:
        raise ExportError(f"container must be one of {list(CONTAINERS)}, got {container!r}. Fix: use 'int8' "
                          "(default, bit-exact in LiteRT) or 'int4' (smaller, 1-LSB differences).")
    spec = model_spec(model)
    check_fixed_input_shape(model, owner="export_tflite")
    check_writable(path, ExportError, "TFLite output file")
    if need_tflm:
        require_tflm()
    if need_litert:
        require_litert()
    check_finite_weights(model)
    return spec


def _check_container_range(spec: NVMSpec, container: str) -> None:
    """Refuses the INT4 container for codes outside -7..7."""
    if container == "int4" and (spec.code_min < -7 or spec.code_max > 7):
        raise ExportError(
            f"container='int4' stores codes in -7..7 (symmetric narrow 4-bit range with zero point 0), but this "
            f"model's codes span {spec.code_min}..{spec.code_max} ({spec.weight_bits}-bit, "
            f"{'unipolar' if spec.unipolar else spec.bipolar_mapping}). Fix: use container='int8'.")


def _folded_layers(model: Any) -> dict[str, int]:
    """{layer name: C} of the ``[t, -t]`` convolutions and Dense layers exported folded, in model order."""
    folded = {name: split.channels for name, split in fuse_sign_split(model).items()}
    folded.update({name: split.channels for name, split in fold_dense_sign_split(model).items()})
    return {layer.name: folded[layer.name] for layer in model.layers if layer.name in folded}  # model order


def _checked_weights(model: Any, content: bytes, folded: dict[str, int], spec: NVMSpec) -> list[WeightCheck]:
    """`check_nvm_weights` of the converted model; refuses it unless every NVM tensor holds the device codes on the
    shared scale with zero point 0."""
    checks = check_nvm_weights(model, content, folded=folded)
    scale = cast(float, spec.weight_scale)  # a trained model's spec is resolved: its scale is set
    bad = [c for c in checks if not (c.allowed and c.matches_keras and len(c.scales) == 1 and c.zero_points == (0,)
                                     and np.isclose(c.scales[0], scale, rtol=1e-6))]
    if bad:
        raise ExportError(f"the converter did not store the device codes on the shared scale for layer(s) "
                          f"{[c.layer for c in bad]}: {bad[0]}. Fix: report this with the TensorFlow version; "
                          "the model was not written.")
    return checks


def _summary(path: str | os.PathLike, container: str, content: bytes, graph: TFLiteGraph, checks: list[WeightCheck],
             arena: int | None, folded: dict[str, int]) -> TFLiteExport:
    """The `TFLiteExport` of the written model."""
    weight_bytes = sum(t.buffer_bytes for name in (c.layer for c in checks) for _, t in graph.layer_weights(name))
    (in_scale, _), (out_scale, _) = io_quantization(content)
    return TFLiteExport(
        path=str(path), container=container, model_bytes=len(content), weight_bytes=int(weight_bytes),
        ops=tuple(graph.op_names()), op_counts=graph.op_counts(),
        arena_bytes=arena, input_scale=float(in_scale),
        output_scale=float(out_scale), weight_scale=float(checks[0].scales[0]), nvm_weight_tensors=len(checks),
        folded_layers=tuple(folded))
