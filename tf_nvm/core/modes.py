"""Thread-local mode contexts: how the Keras NVM model computes, set with ``with`` blocks.

A mode is read when a layer is called or traced (not when it is built), so a
``tf.function`` traced inside a context keeps that context's arithmetic. Each
mode is a `ModeStack` (nesting-safe, one stack per thread, as larq's
``context``); a new mode (the simulator's, noise-aware training's) is one more
`ModeStack`.

* `emulate_runtime` (``"litert"``, ``"tflm"``, ``"litert-reference"``):
  which int8 runtime's requantization the Keras model reproduces bit for bit.
  Outside any context a layer computes its spec's ``runtime``
  (`tf_nvm.NVMSpec.runtime`, ``"litert"`` by default): `runtime_for`.
* `converter_graph` (``"int8"`` / ``"int4"`` weight container): the graph the
  TFLite converter traces (used by ``tflite_export``).

Pure Python (foundation layer): importing it does not import TensorFlow.
"""

import contextlib
import threading
from typing import Any, Iterable, Iterator

from tf_nvm.core.errors import ModeError

__all__ = [
    "ModeStack",
    "RUNTIMES",
    "WEIGHT_CONTAINERS",
    "emulate_runtime",
    "emulated_runtime",
    "runtime_for",
    "converter_graph",
    "in_converter_graph",
    "converter_weight_limit",
    "fold_sign_split",
    "folding_sign_split",
    "WeightPerturbation",
    "perturbed_training",
    "training_perturbation",
]

_STATE = threading.local()


class ModeStack:
    """One named mode: a per-thread stack of values with a default.

    Args:
        name: the mode's name (the context function's name, for messages).
        allowed: the values it takes (a tuple or the keys of a dict).
        default: the value outside any context.
        kind: instead of ``allowed``, the type every value must have (an object mode).
    """

    def __init__(self, name: str, allowed: Iterable[Any], default: Any, kind: type | None = None):
        self.name = name
        self.allowed = tuple(allowed)
        self.default = default
        self.kind = kind

    def _stack(self) -> list[Any]:
        stacks = _STATE.__dict__.setdefault("stacks", {})
        return stacks.setdefault(self.name, [])

    def current(self) -> Any:
        """The innermost value set in this thread, or the default."""
        stack = self._stack()
        return stack[-1] if stack else self.default

    def active(self) -> bool:
        """True inside at least one context of this mode (in this thread)."""
        return bool(self._stack())

    @contextlib.contextmanager
    def push(self, value: Any) -> Iterator[None]:
        """Context in which `current` returns ``value``.

        Raises:
            ModeError: ``value`` is not allowed (the message lists what is).
        """
        if self.kind is not None and not isinstance(value, self.kind):
            raise ModeError(f"{self.name}: value {value!r} is not a {self.kind.__name__}. Fix: pass one, e.g. "
                            f"{self.kind.__name__}(...).")
        if self.kind is None and value not in self.allowed:
            raise ModeError(f"{self.name}: value {value!r} is not allowed; allowed: {list(self.allowed)}. "
                            f"Fix: pass one of them, e.g. {self.name}({self.allowed[0]!r}).")
        stack = self._stack()
        stack.append(value)
        try:
            yield
        finally:
            stack.pop()


RUNTIMES = ("litert", "tflm", "litert-reference")
"""Runtimes whose int8 arithmetic `emulate_runtime` reproduces."""

WEIGHT_CONTAINERS = {"int8": 127, "int4": 7}
"""TFLite weight container -> largest code it stores (symmetric, narrow range)."""

_RUNTIME = ModeStack("emulate_runtime", RUNTIMES, "litert")
_CONVERTER = ModeStack("converter_graph", WEIGHT_CONTAINERS, None)
_FOLD = ModeStack("fold_sign_split", (False, True), False)


def emulate_runtime(runtime: str = "litert") -> contextlib.AbstractContextManager[None]:
    """Context in which the Keras NVM model computes what ``runtime``'s int8 kernels compute.

    * ``"litert"`` (the default outside any context): LiteRT's default (XNNPACK)
      kernels, one rounding ``round_half_even(float32(acc) * M)``.
    * ``"tflm"``: TFLite Micro's reference kernels, two roundings:
      ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc * 2^left, M0), right)``
      with ``(M0, shift) = QuantizeMultiplier(M)`` (`tf_nvm.keras.fixed_point`), for
      crossbar outputs (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D), the digital
      BatchNorm (per-channel DEPTHWISE_CONV_2D) and global average pooling
      (MEAN). Rescaling(-1) (MUL by -1) and Concatenate (same scale: a copy) are
      exact in every runtime.
    * ``"litert-reference"``: LiteRT's reference resolver: as ``"tflm"``,
      except that its FULLY_CONNECTED rounds once (``(acc * M0 + 2^(30 -
      shift)) >> (31 - shift)``, measured; `tf_nvm.keras.fixed_point`).

    Read when layers are called or traced: use a fresh ``tf.function`` or an
    eager call inside the context (``model.predict`` reuses a function traced
    earlier; ``model.make_predict_function(force=True)`` retraces it). Training
    inside the context works: the straight-through gradients are those of the
    default mode, evaluated at the emulated forward values. Thread-local.

    Args:
        runtime: one of `RUNTIMES`.

    Returns:
        a context manager.

    Raises:
        ModeError: unknown runtime.
    """
    return _RUNTIME.push(runtime)


def emulated_runtime() -> str:
    """The runtime emulated now in this thread: ``"litert"`` (default) or the innermost `emulate_runtime`'s."""
    return _RUNTIME.current()


def runtime_for(spec: Any) -> str:
    """The runtime a layer with ``spec`` computes now: the innermost `emulate_runtime`, else ``spec.runtime``.

    Args:
        spec: the layer's `tf_nvm.NVMSpec`, or None (then ``"litert"`` outside a context).

    Returns:
        one of `RUNTIMES`.
    """
    if _RUNTIME.active():
        return _RUNTIME.current()
    return getattr(spec, "runtime", None) or _RUNTIME.default


def converter_graph(weight_container: str = "int8") -> contextlib.AbstractContextManager[None]:
    """Context in which tf_nvm quantizers and digital layers emit the TFLite converter's graph.

    Inside it, activation quantizers emit only ``fake_quant_with_min_max_vars``
    (the converter reads the shared range from it), `NVMBatchNormalization`
    emits a per-channel 1x1 depthwise convolution, and kernels are wrapped in a
    fake-quant over ``[-L s, L s]`` with ``L = 127`` (8 bits, INT8 container)
    or ``L = 7`` (4 bits: the converter stores an INT4 tensor, two codes per
    byte; codes must lie in -7..7). Values are unchanged up to the rounding of
    exact ties. Used by ``tflite_export.export_tflite``; not needed by users.
    Thread-local.

    Args:
        weight_container: a key of `WEIGHT_CONTAINERS` (``"int8"`` or ``"int4"``).

    Returns:
        a context manager.

    Raises:
        ModeError: unknown container.
    """
    return _CONVERTER.push(weight_container)


def in_converter_graph() -> bool:
    """True inside `converter_graph()` (in this thread)."""
    return _CONVERTER.active()


def fold_sign_split(fold: bool = True) -> contextlib.AbstractContextManager[None]:
    """Context in which the converter graph folds ``conv([t, -t], [W+; W-])`` into ``conv(t, W+ - W-)``.

    Only for the convolutions `tf_nvm.keras.sign_split.fuse_sign_split` fused (``t`` >= 0, so ``-t`` is never
    clipped and the int32 accumulator is the same): the microcontroller model then holds one kernel of
    codes ``W+ - W-`` (in ``-code_max..code_max``) instead of two halves. Used by
    ``tflite_export.export_tflite``; the crossbar mapping keeps both halves. Thread-local.

    Args:
        fold: True to fold, False to keep both halves (the default outside any context).

    Returns:
        a context manager.
    """
    return _FOLD.push(bool(fold))


def folding_sign_split() -> bool:
    """True inside `converter_graph()` within `fold_sign_split()` (in this thread)."""
    return _CONVERTER.active() and bool(_FOLD.current())


def converter_weight_limit() -> int:
    """Largest weight code of the current container: 127 outside `converter_graph`, 7 inside ``("int4")``."""
    container = _CONVERTER.current()
    return WEIGHT_CONTAINERS[container] if container else 127


class WeightPerturbation:
    """Base of objects that perturb device codes during training (noise-aware training).

    A subclass implements ``perturb(codes, spec)``: float device codes (a
    TensorFlow tensor of integer values) -> the codes a programmed device would
    realise, as floats. `tf_nvm.noise.training.DeviceNoiseTraining` is one.

    Attributes:
        inference: False (default): only the training branch (``training=True``) is perturbed. True: inference
            too, for scoring simulated chips inside a noise-aware training (never set by an export).
    """

    inference = False

    def perturb(self, codes: Any, spec: Any) -> Any:  # pragma: no cover (abstract)
        raise NotImplementedError


_PERTURBATION = ModeStack("perturbed_training", (), None, kind=WeightPerturbation)


def perturbed_training(perturbation: WeightPerturbation) -> contextlib.AbstractContextManager[None]:
    """Context in which NVM weight quantizers add ``perturbation`` to the device codes when ``training`` is True.

    Inference (``training=False``), `tf_nvm.weight_codes` and both exports are
    unchanged. Read when the training function is traced (the
    `tf_nvm.noise.training.NoiseAwareTraining` callback retraces it).

    Raises:
        ModeError: ``perturbation`` is not a `WeightPerturbation`.
    """
    return _PERTURBATION.push(perturbation)


def training_perturbation() -> WeightPerturbation | None:
    """The `WeightPerturbation` active in this thread, or None."""
    return _PERTURBATION.current()
