"""tfmot `Quantizer` objects on the ONE shared weight scale and activation range.

Each quantizer holds only its configuration (the spec as a dict); it creates no
variables, because nothing about the grid is per-layer.

Weights (straight-through estimator, STE)::

    code  = clip(round_half_even(w * float32(1/s)), code_min, code_max)   # integer device code
    w_q   = w + stop_gradient(code * s - w)               # forward: code*s, backward: identity
    w_out = fake_quant(w_q, min=-127 s, max=127 s, bits=8, narrow_range=True)

The last step changes no value (``code*s`` already lies on that grid) but tells
the TFLite converter to store scale ``s``, zero point 0 and exactly the codes,
non-negative codes included (a [0, max] fake-quant range converts to a zero
point every runtime rejects; see docs in stack notes). The latent float ``w``
is kept inside ``[(code_min-1/2) s, (code_max+1/2) s]`` by `NVMKernelConstraint`.
The code is THE rule of `tf_nvm.core.grid.to_codes` (a float32 product by ``float32(1/s)``, never a
division, ties to even), which `tf_nvm.weight_codes` and every export read the codes with.

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

Training cost: in the default mode (and for float32 tensors) the activation and crossbar-output
quantizers compute the same float32 values with fewer elementwise ops (integer rounding by a
magic-number add and an int32 subtraction, `_grid_codes`) and take the straight-through gradient
``upstream * [-A <= x <= A*127/128]`` as one op (`_with_clip_gradient`) instead of the ``Minimum`` /
``Maximum`` gradients; `tests/test_train_speed_equivalence.py` pins them bit for bit against the
formulas above and against stored training runs.

TFLite Micro emulation: inside `emulate_runtime("tflm")` the requantizing ops
compute what TFLite Micro's reference kernels compute (gemmlowp-style fixed
point with two roundings, `tf_nvm.keras.fixed_point`) instead of LiteRT's default
one rounding: a crossbar output is ``MultiplyByQuantizedMultiplier(acc, M0,
shift)`` with ``(M0, shift) = QuantizeMultiplier(float64(float32(s)))`` (the
converter stores the weight scale in float32; input and output scale are both
A/128, so ``input_scale * weight_scale / output_scale`` is exactly that float32
``s`` in float64), the digital BatchNorm and the global average pooling
likewise (see `tf_nvm.keras.digital`). The mode is read when a layer is called (or
traced): models already traced by ``model.predict`` keep the mode of that trace.
"""

import math
from typing import Any, Callable

import numpy as np

from tf_nvm.keras.backend import Quantizer, smart_cond, tf
from tf_nvm.keras.fixed_point import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single_rounding,
    quantize_multiplier,
)
from tf_nvm.core.grid import code_multiplier
from tf_nvm.core.modes import converter_weight_limit, in_converter_graph, runtime_for, training_perturbation
from tf_nvm.keras.precision import check_layer_float32
from tf_nvm.keras.serialization import register
from tf_nvm.core.spec import NVMSpec, SpecConfigured

__all__ = [
    "NVMWeightQuantizer",
    "NVMBiasQuantizer",
    "NVMActivationQuantizer",
    "NVMCrossbarOutputQuantizer",
    "NVMOnGridQuantizer",
    "ProbabilityQuantizer",
    "snap_to_codes",
    "round_to_activation_grid",
]

def round_to_activation_grid(inputs: tf.Tensor, spec: NVMSpec) -> tf.Tensor:
    """Clips to ``[-A, A*127/128]`` and rounds to the grid step A/128, ties to even (STE).

    Args:
        inputs: float tensor (model units).
        spec: `NVMSpec`.

    Returns:
        float tensor on the shared activation grid; the gradient is the identity
        inside the range and 0 outside it (as for ``fake_quant_with_min_max_vars``).
    """
    step = spec.activation_step
    if inputs.dtype == tf.float32 and _power_of_two(step):
        # Same values and gradient, fewer ops (see `_grid_codes`): steps of a training step are cheaper.
        low, high = spec.activation_min, spec.activation_max
        return _with_clip_gradient(
            inputs, low, high, lambda x: tf.cast(_grid_codes(tf.clip_by_value(x, low, high), step), tf.float32) * step)
    clipped = tf.clip_by_value(inputs, spec.activation_min, spec.activation_max)
    return clipped + tf.stop_gradient(tf.round(clipped / step) * step - clipped)


def _power_of_two(value: float) -> bool:
    mantissa, _ = math.frexp(float(value))
    return value > 0 and mantissa == 0.5 and float(np.float32(value)) == float(value)


def _exact_fake_quant_range(low: float, high: float) -> bool:
    """True when ``fake_quant`` (8 bits) nudges ``[low, high]`` to itself: ``-128 u, 127 u``, ``u`` a power of two."""
    unit = (high - low) / 255.0
    return _power_of_two(unit) and low == -128.0 * unit and high == 127.0 * unit


_MAGIC = 1.5 * 2.0 ** 23
"""Adding it to a float32 x with |x| <= 2^22 rounds x to an integer (ties to even): ulp(x + 1.5 * 2^23) = 1."""


def _grid_codes(values: tf.Tensor, unit: float) -> tf.Tensor:
    """int32 ``round_half_even(values / unit)`` for float32 ``|values| <= 2^22 unit``, ``unit`` a power of two.

    One float add and one integer subtraction instead of divide, round, multiply: ``values + 1.5 * 2^23 * unit``
    lies in one binade whose float32 spacing is ``unit``, so the addition rounds ``values`` to a multiple of
    ``unit`` (ties to even, like ``tf.round``) and the integer difference of the two bit patterns is the code.
    (The float form ``(x + M) - M`` would be folded to ``x`` by Grappler's constant push-down; the integer
    subtraction is not.) A code of 0 comes back as +0.0 after the cast, as the straight-through sum
    ``x + (q - x)`` always gave.

    Args:
        values: float32 tensor inside the bound.
        unit: Python float, a power of two.

    Returns:
        int32 tensor.
    """
    magic = np.float32(_MAGIC * unit)
    return tf.bitcast(values + magic, tf.int32) - int(magic.view(np.int32))


def _with_clip_gradient(inputs: tf.Tensor, low: float, high: float,
                        forward: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
    """``forward(inputs)`` whose gradient is that of ``tf.clip_by_value(inputs, low, high)``.

    The straight-through estimator without computing the clipped tensor and the ``x + stop_gradient(q - x)``
    sum in the forward pass. The gradient ``upstream * [low <= x <= high]`` is one fused op,
    ``fake_quant_with_min_max_args_gradient``, when its nudged 8-bit range is exactly ``[low, high]``
    (``low = -128 u``, ``high = 127 u`` with ``u`` a power of two: the shared grid of the presets),
    else ``where(low <= x <= high, upstream, 0)``. Both are the numbers of the ``Minimum``/``Maximum``
    gradients they replace (NaN inputs pass none); the fused op multiplies by 0 where the old one
    selected +0, so a zero there may be -0.0, which no later sum, weight update or forward value can see.
    """
    fused = _exact_fake_quant_range(low, high)

    @tf.custom_gradient
    def straight_through(x):
        def gradient(upstream):
            if fused:
                return tf.quantization.fake_quant_with_min_max_args_gradient(upstream, x, min=low, max=high,
                                                                            num_bits=8)
            return tf.where(tf.logical_and(x >= low, x <= high), upstream, tf.constant(0.0, upstream.dtype))

        return forward(x), gradient

    return straight_through(inputs)


def snap_to_codes(weights: tf.Tensor | np.ndarray, spec: NVMSpec) -> tf.Tensor:
    """Integer device codes of float ``weights`` on the spec's shared scale.

    Args:
        weights: float tensor or array (model units).
        spec: a resolved `NVMSpec` (``weight_scale`` set).

    Returns:
        float tensor of integer-valued codes in ``[spec.code_min, spec.code_max]``: the numbers of
        `tf_nvm.core.grid.to_codes` (one float32 product by ``code_multiplier(s)``, ties to even), in
        every mode (eager, graph, XLA).
    """
    return tf.clip_by_value(tf.round(weights * code_multiplier(spec.scale)), spec.code_min, spec.code_max)


class _SpecQuantizer(SpecConfigured, Quantizer):
    """Base: a quantizer configured by one resolved `NVMSpec` and nothing else (no variables)."""

    def build(self, tensor_shape: tf.TensorShape, name: str, layer: Any) -> dict[str, tf.Variable]:
        check_layer_float32(layer, f"{type(self).__name__} of layer {layer.name!r}")  # exact float32 only
        return {}


@register
class NVMWeightQuantizer(_SpecQuantizer):
    """Snaps a kernel to ``code * s`` with device codes in the spec's code range."""

    def __call__(self, inputs: tf.Tensor, training: Any, weights: dict[str, tf.Variable], **kwargs: Any) -> tf.Tensor:
        codes = snap_to_codes(inputs, self.spec)
        perturbation = training_perturbation()
        if perturbation is not None and getattr(perturbation, "inference", False):
            # a noise-aware training callback scoring simulated chips (never set by an export or weight_codes)
            return self._perturbed(inputs, codes, perturbation)
        if perturbation is not None and training is not False:
            # Noise-aware training: the training branch sees perturbed (off-grid) codes with the same STE; the
            # inference branch is the usual one, bit for bit.
            return smart_cond(training, lambda: self._perturbed(inputs, codes, perturbation),
                              lambda: self._snapped(inputs, codes))
        return self._snapped(inputs, codes)

    def _snapped(self, inputs: tf.Tensor, codes: tf.Tensor) -> tf.Tensor:
        s = self.spec.scale
        ste = inputs + tf.stop_gradient(codes * s - inputs)
        limit = converter_weight_limit()
        return tf.quantization.fake_quant_with_min_max_vars(
            ste, min=tf.constant(-limit * s), max=tf.constant(limit * s), num_bits=8 if limit == 127 else 4,
            narrow_range=True)

    def _perturbed(self, inputs: tf.Tensor, codes: tf.Tensor, perturbation: Any) -> tf.Tensor:
        noisy = tf.stop_gradient(perturbation.perturb(codes, self.spec)) * self.spec.weight_scale
        return inputs + tf.stop_gradient(noisy - inputs)


@register
class NVMBiasQuantizer(_SpecQuantizer):
    """Rounds a (digital) bias to the int32 grid TFLite stores it on: step (A/128)*s.

    The units are ``tf_nvm.core.grid.to_codes(bias, step)`` (the codes' one rounding rule), as
    `tf_nvm.weight_codes` reads them.
    """

    def __call__(self, inputs: tf.Tensor, training: Any, weights: dict[str, tf.Variable], **kwargs: Any) -> tf.Tensor:
        step = self.spec.activation_step * self.spec.scale
        units = tf.round(inputs * code_multiplier(step))
        return inputs + tf.stop_gradient(units * step - inputs)


@register
class NVMActivationQuantizer(_SpecQuantizer):
    """Quantizes activations on the shared 8-bit grid [-A, A*127/128], ties to even.

    Emits ``fake_quant_with_min_max_vars`` inside `converter_graph()`.
    """

    def __call__(self, inputs: tf.Tensor, training: Any, weights: dict[str, tf.Variable], **kwargs: Any) -> tf.Tensor:
        if in_converter_graph():
            return tf.quantization.fake_quant_with_min_max_vars(
                inputs, min=tf.constant(self.spec.activation_min), max=tf.constant(self.spec.activation_max),
                num_bits=8, narrow_range=False)
        return round_to_activation_grid(inputs, self.spec)


@register
class NVMOnGridQuantizer(_SpecQuantizer):
    """Output of a layer that maps values on the shared grid to values on it (a ReLU of on-grid inputs).

    ``round_to_activation_grid`` of such an output changes no value and, the output being inside the
    range, passes the whole gradient: this quantizer returns its input (no op in the training step).
    `tf_nvm.quantize_model` gives it only to layers whose inputs it proved to lie on the grid
    (`tf_nvm.keras.quantize_configs.NVMOnGridConfig`). Inside `converter_graph()` it emits the same
    ``fake_quant_with_min_max_vars`` as `NVMActivationQuantizer`, so the TFLite export is unchanged.
    """

    def __call__(self, inputs: tf.Tensor, training: Any, weights: dict[str, tf.Variable], **kwargs: Any) -> tf.Tensor:
        if in_converter_graph():
            return NVMActivationQuantizer(self.spec)(inputs, training, weights, **kwargs)
        return inputs


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
    `NVMActivationQuantizer`. Inside `tf_nvm.core.modes.emulate_runtime` ``("tflm")`` it returns
    ``clip(MultiplyByQuantizedMultiplier(acc, M0, shift), -128, 127) * step``
    instead (`tf_nvm.keras.fixed_point`; single rounding for a Dense layer under
    ``"litert-reference"``, whose FULLY_CONNECTED rounds once).

    Args:
        spec: resolved `NVMSpec` (or its dict).
        fully_connected: True when the layer converts to FULLY_CONNECTED (a
            Dense layer; `NVMCrossbarConfig` passes it).
    """

    def __init__(self, spec: NVMSpec | dict[str, Any], fully_connected: bool = False) -> None:
        super().__init__(spec)
        self.fully_connected = bool(fully_connected)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fully_connected": self.fully_connected}

    def __call__(self, inputs: tf.Tensor, training: Any, weights: dict[str, tf.Variable], **kwargs: Any) -> tf.Tensor:
        spec = self.spec
        if in_converter_graph():
            return tf.quantization.fake_quant_with_min_max_vars(
                inputs, min=tf.constant(spec.activation_min), max=tf.constant(spec.activation_max),
                num_bits=8, narrow_range=False)
        runtime = runtime_for(spec)
        if runtime == "litert" and inputs.dtype == tf.float32:
            return _with_clip_gradient(inputs, spec.activation_min, spec.activation_max, self._litert_codes)
        step = tf.constant(spec.activation_step, tf.float32)
        scale = tf.constant(spec.weight_scale, tf.float32)
        clipped = tf.clip_by_value(inputs, spec.activation_min, spec.activation_max)
        # Far outside the grid the result clips anyway; bound acc so that it stays an exact float32 integer.
        limit = tf.constant(2.0 ** 23, tf.float32)
        acc = tf.clip_by_value(tf.round(tf.stop_gradient(inputs) / (step * scale)), -limit, limit)
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

    def _litert_codes(self, inputs: tf.Tensor) -> tf.Tensor:
        """The forward value of the default (LiteRT) mode in fewer ops: the same float32 numbers.

        ``acc`` as above; bounding it to +-2^23 is skipped when ``2^23 s >= 128`` (every bounded value
        already saturates the code range, and float32 products are monotone). ``round`` and ``clip`` to
        the integer bounds -128..127 commute, so the product ``acc * s`` is clipped first and rounded
        with `_grid_codes` (ties to even, as ``tf.round``); the int32 code times the step is the old
        ``codes * step`` and +0.0 for code 0, as before.
        """
        spec = self.spec
        step = tf.constant(spec.activation_step, tf.float32)
        scale = tf.constant(spec.weight_scale, tf.float32)
        acc = tf.round(inputs / (step * scale))
        limit = 2.0 ** 23
        if float(np.float32(spec.weight_scale)) * limit < 128.0:
            acc = tf.clip_by_value(acc, -limit, limit)
        codes = _grid_codes(tf.clip_by_value(acc * scale, -128.0, 127.0), 1.0)
        return tf.cast(codes, tf.float32) * step


@register
class ProbabilityQuantizer(_SpecQuantizer):
    """Softmax outputs on [0, 255/256] (scale 1/256, TFLite's fixed int8 softmax range).

    A digital output step, the one tensor that is not on the shared range.
    """

    def __call__(self, inputs: tf.Tensor, training: Any, weights: dict[str, tf.Variable], **kwargs: Any) -> tf.Tensor:
        return tf.quantization.fake_quant_with_min_max_vars(
            inputs, min=tf.constant(0.0), max=tf.constant(255.0 / 256.0), num_bits=8, narrow_range=False)
