"""tfmot `Quantizer` objects on the ONE shared weight scale and activation range.

Each quantizer holds only its configuration (the spec as a dict); it creates no
variables, because nothing about the grid is per-layer.

Weights (straight-through estimator, STE)::

    code  = clip(round(w / s), code_min, code_max)      # integer device code
    w_q   = w + stop_gradient(code * s - w)               # forward: code*s, backward: identity
    w_out = fake_quant(w_q, min=-127 s, max=127 s, bits=8, narrow_range=True)

The last step changes no value (``code*s`` already lies on that grid) but tells
the TFLite converter to store scale ``s``, zero point 0 and exactly the codes,
non-negative codes included (a [0, max] fake-quant range converts to a zero
point every runtime rejects; see docs in stack notes). The latent float ``w``
is kept inside ``[(code_min-1/2) s, (code_max+1/2) s]`` by `NVMKernelConstraint`.

Activations: 256 levels of step A/128 on ``[-A, A*127/128]`` with zero exactly
at code 0::

    x_c   = clip(x, -A, A*127/128)                        # gradient 0 outside, like fake_quant
    x_q   = x_c + stop_gradient(round_half_even(x_c / (A/128)) * (A/128) - x_c)

Ties (a value exactly halfway between two levels) are rounded to the even
level, as LiteRT's default (XNNPACK) int8 kernels do; TensorFlow's
``fake_quant_with_min_max_vars`` rounds them up instead. Ties are frequent
after a mean over an even count (global average pooling), so the Keras model
must round like the runtime to be bit-exact. Inside `converter_graph()` (used by `tflite_export` while the
TFLite converter traces the model) the quantizer emits the plain
``fake_quant_with_min_max_vars(x, -A, A*127/128, num_bits=8)`` op instead, from
which the converter reads scale A/128 and zero point 0; the runtime then does
its own (half-to-even) rounding.

TFLite Micro emulation: inside `emulate_runtime("tflm")` the requantizing ops
compute what TFLite Micro's reference kernels compute (gemmlowp-style fixed
point with two roundings, `tf_nvm.fixed_point`) instead of LiteRT's default
one rounding: a crossbar output is ``MultiplyByQuantizedMultiplier(acc, M0,
shift)`` with ``(M0, shift) = QuantizeMultiplier(float64(float32(s)))`` (the
converter stores the weight scale in float32; input and output scale are both
A/128, so ``input_scale * weight_scale / output_scale`` is exactly that float32
``s`` in float64), the digital BatchNorm and the global average pooling
likewise (see `tf_nvm.digital`). The mode is read when a layer is called (or
traced): models already traced by ``model.predict`` keep the mode of that trace.
"""

import contextlib

import numpy as np

from tf_nvm._keras import tf, tfmot
from tf_nvm.fixed_point import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single_rounding,
    quantize_multiplier,
)
from tf_nvm.registry import register
from tf_nvm.spec import SpecConfigured

__all__ = [
    "NVMWeightQuantizer",
    "NVMBiasQuantizer",
    "NVMActivationQuantizer",
    "NVMCrossbarOutputQuantizer",
    "ProbabilityQuantizer",
    "snap_to_codes",
    "converter_graph",
    "in_converter_graph",
    "round_to_activation_grid",
    "WEIGHT_CONTAINERS",
    "RUNTIMES",
    "emulate_runtime",
    "emulated_runtime",
]

_Quantizer = tfmot.quantization.keras.quantizers.Quantizer
_CONVERTER_GRAPH = []
_RUNTIME = []
WEIGHT_CONTAINERS = {"int8": 127, "int4": 7}
RUNTIMES = ("litert", "tflm", "litert-reference")


@contextlib.contextmanager
def _pushed(stack, value):
    """Pushes ``value`` on a module-level mode stack for the duration of the block (nesting-safe)."""
    stack.append(value)
    try:
        yield
    finally:
        stack.pop()


@contextlib.contextmanager
def emulate_runtime(runtime="litert"):
    """Context in which the Keras NVM model computes what ``runtime``'s int8 kernels compute.

    * ``"litert"`` (the default outside any context): LiteRT's default (XNNPACK)
      kernels, one rounding ``round_half_even(float32(acc) * M)``.
    * ``"tflm"``: TFLite Micro's reference kernels, two roundings:
      ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc * 2^left, M0), right)``
      with ``(M0, shift) = QuantizeMultiplier(M)``
      (`tf_nvm.fixed_point`), for crossbar outputs (FULLY_CONNECTED, CONV_2D,
      DEPTHWISE_CONV_2D), the digital BatchNorm (per-channel DEPTHWISE_CONV_2D)
      and global average pooling (MEAN). Rescaling(-1) (MUL by -1) and
      Concatenate (same scale: a copy) are exact in every runtime.
    * ``"litert-reference"``: LiteRT's reference resolver: as ``"tflm"``,
      except that its FULLY_CONNECTED rounds once (``(acc * M0 + 2^(30 -
      shift)) >> (31 - shift)``, measured; `tf_nvm.fixed_point`).

    Read when layers are called or traced: use a fresh ``tf.function`` or an
    eager call inside the context (``model.predict`` reuses a function traced
    earlier; ``model.make_predict_function(force=True)`` retraces it). Training
    inside the context works: the straight-through gradients are those of the
    default mode, evaluated at the emulated forward values.

    Args:
        runtime: one of `RUNTIMES`.

    Yields:
        None.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {list(RUNTIMES)}, got {runtime!r}")
    with _pushed(_RUNTIME, runtime):
        yield


def emulated_runtime():
    """The runtime emulated now: ``"litert"`` (default) or the innermost `emulate_runtime` argument."""
    return _RUNTIME[-1] if _RUNTIME else "litert"


@contextlib.contextmanager
def converter_graph(weight_container="int8"):
    """Context in which tf_nvm quantizers and digital layers emit the TFLite converter's graph.

    Inside it, activation quantizers emit only ``fake_quant_with_min_max_vars``
    (the converter reads the shared range from it), `NVMBatchNormalization`
    emits a per-channel 1x1 depthwise convolution, and kernels are wrapped in a
    fake-quant over ``[-L s, L s]`` with ``L = 127`` (8 bits, INT8 container)
    or ``L = 7`` (4 bits: the converter stores an INT4 tensor, two codes per
    byte; codes must lie in -7..7). Values are unchanged up to the rounding of
    exact ties (see the module docstring). Used by
    ``tflite_export.export_tflite``; not needed by users.

    Args:
        weight_container: ``"int8"`` or ``"int4"``.

    Yields:
        None.
    """
    if weight_container not in WEIGHT_CONTAINERS:
        raise ValueError(f"weight_container must be one of {sorted(WEIGHT_CONTAINERS)}, got {weight_container!r}")
    with _pushed(_CONVERTER_GRAPH, weight_container):
        yield


def in_converter_graph():
    """True inside `converter_graph()`."""
    return bool(_CONVERTER_GRAPH)


def _weight_limit():
    return WEIGHT_CONTAINERS[_CONVERTER_GRAPH[-1]] if _CONVERTER_GRAPH else 127


def round_to_activation_grid(inputs, spec):
    """Clips to ``[-A, A*127/128]`` and rounds to the grid step A/128, ties to even (STE).

    Args:
        inputs: float tensor (model units).
        spec: `NVMSpec`.

    Returns:
        float tensor on the shared activation grid; the gradient is the identity
        inside the range and 0 outside it (as for ``fake_quant_with_min_max_vars``).
    """
    step = spec.activation_step
    clipped = tf.clip_by_value(inputs, spec.activation_min, spec.activation_max)
    return clipped + tf.stop_gradient(tf.round(clipped / step) * step - clipped)


def snap_to_codes(weights, spec):
    """Integer device codes of float ``weights`` on the spec's shared scale.

    Args:
        weights: float tensor or array (model units).
        spec: a resolved `NVMSpec` (``weight_scale`` set).

    Returns:
        float tensor of integer-valued codes in ``[spec.code_min, spec.code_max]``.
    """
    return tf.clip_by_value(tf.round(weights / spec.weight_scale), spec.code_min, spec.code_max)


class _SpecQuantizer(SpecConfigured, _Quantizer):
    """Base: a quantizer configured by one resolved `NVMSpec` and nothing else (no variables)."""

    def build(self, tensor_shape, name, layer):
        return {}


@register
class NVMWeightQuantizer(_SpecQuantizer):
    """Snaps a kernel to ``code * s`` with device codes in the spec's code range."""

    def __call__(self, inputs, training, weights, **kwargs):
        s = self.spec.weight_scale
        snapped = snap_to_codes(inputs, self.spec) * s
        ste = inputs + tf.stop_gradient(snapped - inputs)
        limit = _weight_limit()
        return tf.quantization.fake_quant_with_min_max_vars(
            ste, min=tf.constant(-limit * s), max=tf.constant(limit * s), num_bits=8 if limit == 127 else 4,
            narrow_range=True)


@register
class NVMBiasQuantizer(_SpecQuantizer):
    """Rounds a (digital) bias to the int32 grid TFLite stores it on: step (A/128)*s."""

    def __call__(self, inputs, training, weights, **kwargs):
        step = self.spec.activation_step * self.spec.weight_scale
        return inputs + tf.stop_gradient(tf.round(inputs / step) * step - inputs)


@register
class NVMActivationQuantizer(_SpecQuantizer):
    """Quantizes activations on the shared 8-bit grid [-A, A*127/128], ties to even.

    Emits ``fake_quant_with_min_max_vars`` inside `converter_graph()`.
    """

    def __call__(self, inputs, training, weights, **kwargs):
        if in_converter_graph():
            return tf.quantization.fake_quant_with_min_max_vars(
                inputs, min=tf.constant(self.spec.activation_min), max=tf.constant(self.spec.activation_max),
                num_bits=8, narrow_range=False)
        return round_to_activation_grid(inputs, self.spec)


@register
class NVMCrossbarOutputQuantizer(_SpecQuantizer):
    """Output of a crossbar layer (linear or ReLU) computed as the int8 runtime computes it.

    The runtime accumulates the exact int32 sum ``acc = sum q * code + bias_int32``
    and requantizes it with one float32 product ``v = float32(acc) * s`` (grid
    units, LiteRT's default kernels), then rounds half to even. Keras computes
    ``y = act(conv(x, codes * s) + bias)`` in float32, whose accumulation order
    rounds differently: rarely (about 1e-5 of the outputs) ``y / step`` falls on
    the other side of a rounding boundary than ``v``. This quantizer recovers the
    integer ``acc = round(y / (step * s))`` (exact: the float error of ``y`` is
    far below half a code step for every output inside the grid's range) and
    returns ``round_half_even(float32(acc) * s) * step``, clipped to the grid,
    with the gradient of ``clip(y)`` (straight-through). Inside
    `converter_graph()` it emits the plain fake-quant, like
    `NVMActivationQuantizer`. Inside `emulate_runtime` ``("tflm")`` it returns
    ``clip(MultiplyByQuantizedMultiplier(acc, M0, shift), -128, 127) * step``
    instead (`tf_nvm.fixed_point`; single rounding for a Dense layer under
    ``"litert-reference"``: `NVMCrossbarConfig` sets `fully_connected` on the
    quantizer of a Dense layer, which converts to FULLY_CONNECTED).
    """

    fully_connected = False
    """True when the layer converts to FULLY_CONNECTED (a Dense layer); set by `NVMCrossbarConfig`, not saved."""

    def __call__(self, inputs, training, weights, **kwargs):
        spec = self.spec
        if in_converter_graph():
            return tf.quantization.fake_quant_with_min_max_vars(
                inputs, min=tf.constant(spec.activation_min), max=tf.constant(spec.activation_max),
                num_bits=8, narrow_range=False)
        step = tf.constant(spec.activation_step, tf.float32)
        scale = tf.constant(spec.weight_scale, tf.float32)
        clipped = tf.clip_by_value(inputs, spec.activation_min, spec.activation_max)
        # Far outside the grid the result clips anyway; bound acc so that it stays an exact float32 integer.
        limit = tf.constant(2.0 ** 23, tf.float32)
        acc = tf.clip_by_value(tf.round(tf.stop_gradient(inputs) / (step * scale)), -limit, limit)
        runtime = emulated_runtime()
        if runtime != "litert":
            # float32(A/128) * float32(s) / float32(A/128) in float64 is exactly float32(s).
            fixed, shift = quantize_multiplier(float(np.float32(spec.weight_scale)))
            if runtime == "litert-reference" and self.fully_connected:
                requantized = multiply_by_quantized_multiplier_single_rounding(acc, fixed, shift)
            else:
                requantized = multiply_by_quantized_multiplier(acc, fixed, shift)
            codes = tf.cast(tf.clip_by_value(requantized, -128, 127), tf.float32)
        else:
            codes = tf.clip_by_value(tf.round(acc * scale), -128.0, 127.0)
        return codes * step + (clipped - tf.stop_gradient(clipped))


@register
class ProbabilityQuantizer(_SpecQuantizer):
    """Softmax outputs on [0, 255/256] (scale 1/256, TFLite's fixed int8 softmax range).

    A digital output step, the one tensor that is not on the shared range.
    """

    def __call__(self, inputs, training, weights, **kwargs):
        return tf.quantization.fake_quant_with_min_max_vars(
            inputs, min=tf.constant(0.0), max=tf.constant(255.0 / 256.0), num_bits=8, narrow_range=False)
