"""`quantize_model`: a float tf_keras model becomes an NVM model.

``quantize_model(model, spec)`` turns a float tf_keras model (Sequential or
Functional) into an NVM model: every crossbar layer's kernel sits on the one
shared device grid ``code * s``, every activation on the one shared range, and
``model.fit`` trains it with straight-through estimators. It is built with
tfmot's ``quantize_apply`` and tf_nvm's own `NVMQuantizeScheme`.
"""

import math
import warnings
from typing import Any, Callable

import numpy as np

from tf_nvm.keras.backend import QuantizeLayer, QuantizeWrapper, is_functional, keras, quantize_scope, tfmot
from tf_nvm.keras.constraints import NVMKernelConstraint
from tf_nvm.core.errors import (InputRangeWarning, InvalidWeightsError, NonInhibitingCrossbarWarning, SpecError,
                           UnsupportedLayerError, ZeroCodesWarning)
from tf_nvm.keras.graph import LayerNode, activation_name, layer_graph
from tf_nvm.keras.nvm_model import check_fixed_input_shape, crossbar_variables, nonfinite_weights, nvm_layers
from tf_nvm.keras.precision import require_float32
from tf_nvm.keras.quantize_configs import config_for, grid_input_layers, is_crossbar, rule_for
from tf_nvm.keras.scheme import NVMQuantizeScheme
from tf_nvm.keras.serialization import custom_objects
from tf_nvm.keras.sign_split import blind_crossbars, can_feed_both_signs, feed_both_signs
from tf_nvm.core.spec import INITS, SIGN_SPLITS, NVMSpec, resolve_spec

__all__ = ["quantize_model", "calibrate_scale", "check_input_range", "INITS", "SIGN_SPLITS", "CLIPPED_WARN_FRACTION"]


CLIPPED_WARN_FRACTION = 1e-3
"""`check_input_range` warns when more than this fraction of the input values lie outside the shared range."""


# --------------------------------------------------------------------- helpers
def _warn_non_inhibiting(layers: list[keras.layers.Layer]) -> None:
    """One warning listing the unipolar crossbars whose inputs are all non-negative (``layers``), if any."""
    if not layers:
        return
    listed = ", ".join(f"{layer.name!r} ({type(layer).__name__})" for layer in layers)
    auto = all(can_feed_both_signs(layer) for layer in layers)
    warnings.warn(
        f"quantize_model: {len(layers)} unipolar crossbar layer(s) (non-negative weights) read only non-negative "
        f"inputs: {listed}. Their outputs can only grow with every input, so they cannot inhibit and the "
        "network trains badly even in float. Fix: "
        + ("pass sign_split='auto' to feed each of them both signs [x, -x] (twice the rows), or " if auto else "")
        + "give them signed, centred inputs (e.g. a BatchNormalization before each), or both signs of their "
        "input (Concatenate()([x, Rescaling(-1.0)(x)])), or use a bipolar spec.",
        NonInhibitingCrossbarWarning, stacklevel=3)


def check_input_range(x: np.ndarray | list[np.ndarray] | tuple[np.ndarray, ...], spec: NVMSpec,
                      owner: str = "quantize_model") -> float:
    """Warns when model inputs lie outside the one shared activation range (they are clipped to it).

    The model input is quantized on the shared range ``[-A, A*127/128]`` like every activation: a value
    beyond it is clipped without error (raw MFCC-scale or 0..255 pixel inputs lose most of their values).
    Warns (`InputRangeWarning`) when more than `CLIPPED_WARN_FRACTION` of the values are clipped.

    Args:
        x: float array (or list of arrays, one per model input) of model inputs, e.g. a sample of x_train.
        spec: resolved `NVMSpec` (its activation range).
        owner: the function named in the message.

    Returns:
        float, the fraction of the values of ``x`` outside the range (0 for empty ``x``).
    """
    # Compared in the arrays' own dtype: no float64 copy of a whole training set (CIFAR-10: 1.1 GB).
    arrays = [np.asarray(a) for a in (x if isinstance(x, (list, tuple)) else [x])]
    total = sum(a.size for a in arrays)
    if not total:
        return 0.0
    low, high = spec.activation_min, spec.activation_max
    clipped = sum(int(np.count_nonzero(a < low)) + int(np.count_nonzero(a > high)) for a in arrays)
    fraction = clipped / total
    if fraction > CLIPPED_WARN_FRACTION:
        smallest, largest = min(float(a.min()) for a in arrays), max(float(a.max()) for a in arrays)
        warnings.warn(
            f"{owner}: {100 * fraction:.1f} % of the input values ({clipped} of {total}) lie outside the shared "
            f"activation range [{low:g}, {high:g}] and are clipped to it (the inputs span [{smallest:.4g}, "
            f"{largest:.4g}]). Fix: standardise the inputs (tf_nvm.core.preprocessing.Standardization.fit(x_train)"
            ".apply(x), mean 0 and std 1 per channel), or use a spec with a larger activation_range.",
            InputRangeWarning, stacklevel=3)
    return fraction


def _check_weights_finite(model: keras.Model) -> None:
    for layer, weight, bad, size in nonfinite_weights(model)[:1]:
        raise InvalidWeightsError(
            f"layer {layer!r} weight {weight!r} holds {bad} NaN/infinite value(s) of {size}; quantize_model needs "
            "finite weights. Fix: retrain or re-initialise the float model (check the learning rate and the inputs "
            "for NaN) before quantizing.")


def calibrate_scale(model: keras.Model, spec: NVMSpec) -> float:
    """The one shared weight scale calibrated from a float model's kernels.

    For each crossbar layer l, ``s_l = max|W_l| / max(|code_min|, code_max)`` maps
    that layer's largest weight onto the top code; the shared scale is the
    geometric mean of the ``s_l`` (one value for the whole model; layers with
    larger weights clip, layers with smaller ones use fewer codes).

    Args:
        model: float tf_keras model.
        spec: `NVMSpec` (its code range is used).

    Returns:
        float > 0, model units per code.
    """
    top = max(abs(spec.code_min), spec.code_max)
    logs = []
    for layer in model.layers:
        if is_crossbar(layer):
            kernel = getattr(layer, rule_for(layer).kernel_attr).numpy()
            peak = float(np.max(np.abs(kernel)))
            if peak > 0:
                logs.append(math.log(peak / top))
    if not logs:
        return 1.0 / top
    return float(math.exp(sum(logs) / len(logs)))


def _to_functional(model: keras.Model) -> keras.Model:
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(batch_shape=model.input_shape, dtype=model.inputs[0].dtype)
        x = inputs
        for layer in model.layers:
            x = layer(x)
        return keras.Model(inputs, x, name=model.name)
    return model


# ---------------------------------------------------------------- public API
def quantize_model(model: keras.Model, spec: NVMSpec | str | dict[str, Any], *, init: str = "keep",
                   sign_split: str | None = None, calibration_data: Any = None) -> keras.Model:
    """Returns an NVM copy of a float tf_keras model, ready for ``compile``/``fit``.

    Every crossbar layer (Dense, Conv1D, Conv2D, DepthwiseConv2D) gets its kernel
    on the device grid ``code * s`` with ONE scale ``s`` for the whole model and
    codes in the spec's range (0..2^b-1 when unipolar); biases stay digital.
    Every activation, the model input included, is quantized on the ONE
    shared range ``[-A, A*127/128]`` (ties to even). Every BatchNormalization
    becomes an `NVMBatchNormalization` (same weights; its inference affine is
    snapped to per-channel int8/int32 constants so that TFLite computes it
    bit-exactly), every GlobalAveragePooling1D/2D its `tf_nvm.keras.digital`
    counterpart (``sum * float32(1/n)``, as the runtime computes it) and every
    AveragePooling1D/2D `NVMAveragePooling1D/2D` (TFLite's int8 rounding): the
    ``replace_with`` of its `tf_nvm.keras.quantize_configs.LAYER_RULES` entry. A ReLU
    whose inputs all lie on the grid (`tf_nvm.keras.quantize_configs.grid_input_layers`)
    keeps them there: its quantizer is the identity outside the converter's graph
    (`NVMOnGridConfig`, same values, cheaper training). A crossbar layer with
    ``activation="softmax"`` (the usual ``Dense`` head) becomes a linear crossbar
    followed by a separate ``Softmax`` layer ``{name}_softmax``. The input model
    is not modified.

    Under a unipolar spec, a crossbar whose inputs are all non-negative (a ReLU
    output, its pooling, ...) cannot inhibit: with ``sign_split="auto"`` each such
    crossbar reads both signs ``[x, -x]`` (`tf_nvm.keras.sign_split.feed_both_signs`:
    twice the kernel rows for Dense/Conv, two depthwise layers and a digital Add
    for DepthwiseConv2D); without it, one `NonInhibitingCrossbarWarning` lists
    them. With ``init="keep"`` the split kernels are ``[max(W, 0); max(-W, 0)]``
    (the float function is unchanged before the grid snap); with
    ``init="device"`` (training from scratch) they are drawn anew by each
    layer's initializer for the doubled input, as a network written with
    ``[x, -x]`` by hand starts.

    Args:
        model: a built tf_keras Sequential or Functional model.
        spec: `NVMSpec`, a preset name (see `tf_nvm.core.presets.names()`) or a spec dict.
        init: ``"keep"`` snaps the float kernels onto the grid (for trained
            models); ``"device"`` rescales each crossbar kernel so that its
            largest weight reaches the top code (unipolar: magnitudes, i.e.
            codes spread from 0 to the top with mean near mid-range): a better
            start for training from scratch on a coarse grid.
        sign_split: None or ``"auto"`` (`SIGN_SPLITS`, see above; no effect
            under a bipolar spec).
        calibration_data: optional sample of model inputs (float, model units,
            e.g. ``x_train[:1000]``): `check_input_range` warns when more than
            0.1 % of its values lie outside the shared activation range.

    Returns:
        a new tf_keras Functional model whose NVM layers are tfmot
        ``QuantizeWrapperV2`` layers with `NVMCrossbarConfig`.

    Raises:
        UnsupportedLayerError: a layer class tf_nvm cannot map (the message
            lists the supported ones or says what the class would need), an
            option the mapping cannot hold exactly (the entry's ``check``), or
            a shared layer (called more than once) in a model that needs a sign
            split or a softmax split.
        InvalidWeightsError: NaN or infinite weights.
        SpecError: invalid spec values.
        PrecisionError: a mixed-precision (or other non-float32) global policy, or a layer with a
            non-float32 dtype (`tf_nvm.keras.precision.require_float32`; TF32 is turned off, with a warning
            when it was on).
    """
    resolved: NVMSpec = resolve_spec(spec, owner="quantize_model")
    _check_options(init, sign_split)
    _check_model(model)
    model = _to_functional(model)
    nodes = layer_graph(model)
    _check_layers(nodes)
    _check_weights_finite(model)
    if calibration_data is not None:
        check_input_range(calibration_data, resolved)
    split, blind = _sign_split_plan(model, resolved, sign_split)
    _warn_non_inhibiting(blind)
    model = feed_both_signs(model, split=[layer.name for layer in split], separate_softmax=_softmax_crossbars(nodes),
                            kernels="initializer" if init == "device" else "split")
    if resolved.weight_scale is None:  # on the kernels the crossbars will hold (after a sign split)
        resolved = resolved.with_weight_scale(calibrate_scale(model, resolved))
    nvm = _apply_tfmot(model, resolved)
    _init_kernels(nvm, resolved, init)
    _warn_zero_layers(nvm, resolved)
    return nvm


# ------------------------------------------------------- the steps of quantize_model
def _check_options(init: str, sign_split: str | None) -> None:
    """Refuses an ``init`` outside `INITS` or a ``sign_split`` outside `SIGN_SPLITS` (`SpecError`)."""
    if init not in INITS:
        raise SpecError(f"quantize_model: init must be one of {list(INITS)}, got {init!r}. Fix: pass "
                        "init='keep' (snap trained float weights) or init='device' (spread codes, for training).")
    if sign_split not in SIGN_SPLITS:
        raise SpecError(f"quantize_model: sign_split must be one of {list(SIGN_SPLITS)}, got {sign_split!r}. Fix: "
                        "pass sign_split='auto' (feed unipolar crossbars that read only non-negative inputs "
                        "[x, -x]) or None (off).")


def _check_model(model: Any) -> None:
    """Refuses anything but a built float32 tf_keras Sequential/Functional model with a fixed input shape."""
    if not isinstance(model, keras.Model) or not is_functional(model):
        raise UnsupportedLayerError(
            f"quantize_model expects a tf_keras Sequential or Functional model, got {type(model).__name__}. "
            "Fix: build the model with tf_keras (import tf_nvm first) as Sequential or Functional; "
            "subclassed models cannot be quantized.")
    if not model.built:
        raise UnsupportedLayerError(
            f"quantize_model: model {model.name!r} is not built. Fix: give it a keras.Input or call "
            "model.build(input_shape).")
    check_fixed_input_shape(model, UnsupportedLayerError, "quantize_model", "quantized")
    require_float32("quantize_model", model)  # no mixed precision; TF32 off


def _check_layers(nodes: list[LayerNode]) -> None:
    """Refuses a layer that is quantized already or that `rule_for` does not support (`UnsupportedLayerError`)."""
    for node in nodes:
        layer = node.layer
        if isinstance(layer, (QuantizeWrapper, QuantizeLayer)):
            raise UnsupportedLayerError(
                f"layer {layer.name!r} of class {type(layer).__name__} is already quantized. Fix: pass the "
                "float model to quantize_model, not an NVM model.")
        rule_for(layer)  # raises UnsupportedLayerError with the supported list


def _sign_split_plan(model: keras.Model, spec: NVMSpec, sign_split: str | None) -> tuple[list, list]:
    """(crossbars `feed_both_signs` gives ``[x, -x]``, blind crossbars left as they are) of a unipolar spec."""
    blind = blind_crossbars(model) if spec.unipolar else []
    split = [layer for layer in blind if sign_split == "auto" and can_feed_both_signs(layer)]
    return split, [layer for layer in blind if layer not in split]


def _softmax_crossbars(nodes: list[LayerNode]) -> list[str]:
    """Names of the crossbar layers with ``activation="softmax"`` (their softmax becomes a separate layer)."""
    return [node.name for node in nodes if is_crossbar(node.layer) and activation_name(node.layer) == "softmax"]


def _apply_tfmot(model: keras.Model, spec: NVMSpec) -> keras.Model:
    """Annotates every layer of the float ``model``, applies tfmot with `NVMQuantizeScheme`, rebuilds from config.

    Args:
        model: the float Functional model (after any sign split).
        spec: resolved `NVMSpec` with its weight scale set.

    Returns:
        the NVM model, holding the float weights of ``model`` (not yet snapped by `_init_kernels`).
    """
    annotate = _annotator(spec, grid_input_layers(layer_graph(model, include_inputs=True)))
    with quantize_scope(custom_objects()):
        annotated = keras.models.clone_model(model, clone_function=annotate)
        annotated.set_weights(model.get_weights())
        applied = tfmot.quantization.keras.quantize_apply(annotated, scheme=NVMQuantizeScheme(spec))
        # quantize_apply's model tracks wrapped kernels twice and does not load back from .keras;
        # a model rebuilt from its config does (stack notes).
        nvm = keras.Model.from_config(applied.get_config(), custom_objects=custom_objects())
    nvm.set_weights(applied.get_weights())
    return nvm


def _annotator(spec: NVMSpec, grid_input: set[str]) -> Callable[[keras.layers.Layer], keras.layers.Layer]:
    """The ``clone_function`` of `_apply_tfmot`: a layer -> its tfmot-annotated clone (kernel constraint set)."""
    constraint = NVMKernelConstraint(spec)

    def annotate(layer):
        rule = rule_for(layer)
        config = layer.get_config()
        if rule.role == "crossbar":
            config[rule.constraint_arg] = constraint
        # BatchNormalization and global average pooling become their runtime-exact tf_nvm.keras.digital
        # counterparts (same weights; the spec gives them the activation grid).
        exact = rule.replace_with
        clone = exact.from_config(dict(config, spec=spec.to_dict())) if exact else type(layer).from_config(config)
        return tfmot.quantization.keras.quantize_annotate_layer(
            clone, config_for(layer, spec, grid_input=layer.name in grid_input))

    return annotate


def _warn_zero_layers(nvm: keras.Model, spec: NVMSpec) -> None:
    """Warns about each crossbar layer whose device codes are all zero under the one shared scale."""
    assert spec.weight_scale is not None  # quantize_model calibrated it before the tfmot step
    for layer in nvm_layers(nvm):
        kernel, _ = crossbar_variables(layer)
        peak = float(np.max(np.abs(kernel.numpy()))) if kernel.shape.num_elements() else 0.0
        if peak < 0.5 * spec.weight_scale:
            warnings.warn(
                f"layer {layer.name!r}: every device code is 0 under the shared weight scale {spec.weight_scale:.4g} "
                f"(its largest weight is {peak:.4g}, less than half a code step): the layer outputs only its bias. "
                "The shared scale is set by the other layers' weights (geometric mean of their peaks). Fix: use "
                "init='device', retrain the float model with weight decay so that layers have comparable "
                "weight ranges, or pass a spec with a fixed weight_scale.", ZeroCodesWarning, stacklevel=3)


def _init_kernels(nvm: keras.Model, spec: NVMSpec, init: str) -> None:
    """Snaps every crossbar kernel of ``nvm`` onto the grid (``init="device"``: rescaled to the top code first)."""
    assert spec.weight_scale is not None  # quantize_model calibrated it before the tfmot step
    for layer in nvm_layers(nvm):
        kernel, _ = crossbar_variables(layer)
        value = kernel.numpy()
        if init == "device":
            peak = float(np.max(np.abs(value))) or 1.0
            value = value * ((spec.code_max + 0.49) * spec.weight_scale / peak)
            if spec.unipolar:
                value = np.abs(value)
        kernel.assign(NVMKernelConstraint(spec)(value))
