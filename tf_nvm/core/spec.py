"""`NVMSpec`: the target hardware that an NVM model is trained for.

One spec describes one crossbar design: the device (how many conductance
levels, unipolar or bipolar mapping), the periphery (DAC/ADC resolution), the
crossbar size, and the ONE weight scale and ONE activation range shared by every
layer of the model (García-Redondo et al., arXiv:1910.13850).

Integer device codes and the shared weight scale ``s`` relate to the effective
weight by ``w = code * s``. Code ranges:

=====================  ======================  ============  =================
mapping                codes                   devices/wt    levels per weight
=====================  ======================  ============  =================
unipolar               0 .. 2^b-1              1             2^b
bipolar differential   -(2^b-1) .. 2^b-1       2 (G+, G-)    2^(b+1)-1
bipolar offset         -2^(b-1) .. 2^(b-1)-1   1 + ref col   2^b
=====================  ======================  ============  =================

Codes must fit int8 with zero point 0 (the TFLite weight container), which
limits ``weight_bits`` to 1..7.
"""

import dataclasses
import math
from typing import Optional

from tf_nvm.core.errors import SpecError

__all__ = [
    "NVMSpec",
    "SCHEMA_VERSION",
    "BIPOLAR_MAPPINGS",
    "INPUT_ENCODINGS",
    "BATCHNORM_MODES",
    "WEIGHT_SCALE_MODES",
    "DEPLOY_RUNTIMES",
    "SpecConfigured",
    "resolve_spec",
    "INITS",
    "SIGN_SPLITS",
]

SCHEMA_VERSION = 1
BIPOLAR_MAPPINGS = ("differential", "offset")
INPUT_ENCODINGS = ("signed-dac", "dual-rail")
BATCHNORM_MODES = ("digital",)
WEIGHT_SCALE_MODES = ("calibrated", "fixed")
DEPLOY_RUNTIMES = ("litert", "tflm")
"""Integer runtimes a model can be trained for (`NVMSpec.runtime`): LiteRT, TFLite Micro."""
INITS = ("keep", "device")
"""How `quantize_model` starts the kernels on the device grid: snap trained weights, or spread the codes."""
SIGN_SPLITS = (None, "auto")
"""Values of ``quantize_model(sign_split=...)`` and a recipe's ``sign_split``: None (off: one warning lists the
non-inhibiting crossbars) or ``"auto"`` (under a unipolar spec, feed each of them both signs ``[x, -x]``)."""
_MAX_WEIGHT_BITS = 7
_FLOAT32_MAX = 3.4028234663852886e38
_ACTIVATION_BITS = (8,)


@dataclasses.dataclass(frozen=True)
class NVMSpec:
    """Target crossbar hardware, shared by every layer of one model.

    Attributes:
        weight_bits: device precision in bits: each device holds 2^b
            conductance levels between G_min and G_max. The paper uses 2 and 4.
            Allowed 1..7 (codes must fit int8 with zero point 0).
        unipolar: True for non-negative weights only: one device per weight,
            no differential pair or current subtractor. False for signed weights
            realised as ``bipolar_mapping`` says.
        bipolar_mapping: how signed weights are realised when ``unipolar`` is
            False. ``"differential"``: a pair of devices per weight, W = G+ - G-,
            one of the pair at G_min (aihwkit's default), codes +-(2^b-1).
            ``"offset"``: one device per weight plus a reference column at mid
            conductance, codes -2^(b-1)..2^(b-1)-1. Ignored when unipolar.
        activation_bits: bits of the shared activation quantizer, which is also
            the input DAC resolution seen by every crossbar. Only 8 is allowed:
            TFLite keeps activations int8; coarser DACs/ADCs are modelled by the
            analog simulator, not in the Keras graph.
        activation_range: A, the one activation range of the whole model,
            dimensionless (model units): every quantized activation lies on the
            256-level grid [-A, A*127/128] with step A/128 and zero at code 0.
            Must be > 0.
        adc_bits: ADC resolution in bits for digitising column currents (used
            by the crossbar simulator and the cost model). Allowed 1..16.
        dac_bits: input DAC resolution in bits (crossbar simulator, cost model).
            Allowed 1..8; 8 equals the activation grid.
        rows: crossbar rows (inputs) per tile; layers larger than this are tiled
            with digital partial-sum accumulation. Must be >= 1.
        cols: crossbar columns (outputs) per tile. Must be >= 1.
        weight_scale_mode: ``"calibrated"``: `quantize_model` computes the one
            scale from the float model's weights (see `quantize.calibrate_scale`)
            and stores it in ``weight_scale``; ``"fixed"``: ``weight_scale`` is given.
        weight_scale: s, the one weight scale of the whole model (weight per
            code step, model units). Required (> 0) when mode is ``"fixed"``;
            None until calibration when mode is ``"calibrated"``.
        input_encoding: how the first crossbar's signed inputs are applied:
            ``"signed-dac"`` (bipolar read voltages, the DAC drives +-V) or
            ``"dual-rail"`` (non-negative read voltages only: max(x,0) and max(-x,0)
            applied in two read phases of the same rows, the two conversions
            subtracted digitally).
        batchnorm: ``"digital"``: BatchNormalization stays a per-channel affine
            step in the digital periphery after the ADC (it cannot be folded into
            unipolar codes when gamma < 0).
        g_min_us: lowest device conductance G_min in microsiemens (code 0).
        g_max_us: highest device conductance G_max in microsiemens (top code).
        digital_bias: biases are added digitally after the ADC (always True:
            crossbars hold no bias rows in this release).
        digital_partial_sums: partial sums of row tiles are added digitally
            after their ADCs (always True in this release).
        runtime: the int8 runtime the model is deployed on, whose integer
            rounding the Keras model computes when it trains, evaluates and
            predicts (read by the layers when they are called or traced; an
            explicit `tf_nvm.core.modes.emulate_runtime` context overrides it).
            ``"litert"`` (default): LiteRT's default kernels (XNNPACK), one
            rounding, ties to even. ``"tflm"``: TFLite Micro's reference
            kernels, two roundings (gemmlowp fixed point). One Keras model
            cannot match both bit for bit: a DS-CNN trained for LiteRT changes
            7.4 % of its predictions on TFLite Micro. Part of the trained
            contract (copied into every saved layer); specs and models saved
            before this field load with ``"litert"``, what they computed.
    """

    weight_bits: int = 2
    unipolar: bool = True
    bipolar_mapping: str = "differential"
    activation_bits: int = 8
    activation_range: float = 8.0
    adc_bits: int = 8
    dac_bits: int = 8
    rows: int = 128
    cols: int = 128
    weight_scale_mode: str = "calibrated"
    weight_scale: Optional[float] = None
    input_encoding: str = "signed-dac"
    batchnorm: str = "digital"
    g_min_us: float = 1.0
    g_max_us: float = 25.0
    digital_bias: bool = True
    digital_partial_sums: bool = True
    runtime: str = "litert"

    def __post_init__(self):
        self._validate()

    # ----------------------------------------------------------------- checks
    def _validate(self):
        _check_int("weight_bits", self.weight_bits, 1, _MAX_WEIGHT_BITS,
                   "device codes must fit int8 with zero point 0 (TFLite weight container); "
                   "the paper's devices are 2 and 4 bits")
        _check_bool("unipolar", self.unipolar)
        _check_choice("bipolar_mapping", self.bipolar_mapping, BIPOLAR_MAPPINGS)
        _check_int("activation_bits", self.activation_bits, 1, 16, "activation bits")  # one integer rule for bits
        if self.activation_bits not in _ACTIVATION_BITS:
            raise SpecError(
                f"NVMSpec.activation_bits must be 8, got {self.activation_bits!r}: TFLite keeps "
                "activations int8. Fix: use activation_bits=8 and set dac_bits/adc_bits to model "
                "coarser converters in the crossbar simulator.")
        _check_positive("activation_range", self.activation_range)
        _check_int("adc_bits", self.adc_bits, 1, 16, "ADC resolution")
        _check_int("dac_bits", self.dac_bits, 1, 8, "DAC resolution, at most the 8-bit activation grid")
        _check_int("rows", self.rows, 1, 1 << 20, "crossbar rows per tile")
        _check_int("cols", self.cols, 1, 1 << 20, "crossbar columns per tile")
        _check_choice("weight_scale_mode", self.weight_scale_mode, WEIGHT_SCALE_MODES)
        if self.weight_scale is not None:
            _check_positive("weight_scale", self.weight_scale)
        elif self.weight_scale_mode == "fixed":
            raise SpecError(
                "NVMSpec.weight_scale is None but weight_scale_mode='fixed' needs a value. Fix: pass "
                "weight_scale=<float > 0>, or weight_scale_mode='calibrated' to compute it from the model.")
        _check_choice("input_encoding", self.input_encoding, INPUT_ENCODINGS)
        _check_choice("batchnorm", self.batchnorm, BATCHNORM_MODES)
        if self.runtime not in DEPLOY_RUNTIMES:
            raise SpecError(
                f"NVMSpec.runtime must be one of {list(DEPLOY_RUNTIMES)} (the int8 runtime the model is deployed on: "
                f"LiteRT or TFLite Micro), got {self.runtime!r}. Fix: pass runtime='litert' or runtime='tflm'.")
        _check_positive("g_min_us", self.g_min_us)
        _check_positive("g_max_us", self.g_max_us)
        if self.g_max_us <= self.g_min_us:
            raise SpecError(
                f"NVMSpec.g_max_us ({self.g_max_us!r}) must be greater than g_min_us ({self.g_min_us!r}). "
                "Fix: swap them or widen the conductance window.")
        for name in ("digital_bias", "digital_partial_sums"):
            if getattr(self, name) is not True:
                raise SpecError(f"NVMSpec.{name} must be True in this release, got {getattr(self, name)!r}.")

    # ------------------------------------------------------------ code ranges
    @property
    def code_min(self):
        """Lowest integer device code (int)."""
        kind = self.mapping_kind
        if kind == "unipolar":
            return 0
        if kind == "differential":
            return -self.top_level
        return -(2 ** (self.weight_bits - 1))

    @property
    def code_max(self):
        """Highest integer device code (int)."""
        if self.mapping_kind == "offset":
            return 2 ** (self.weight_bits - 1) - 1
        return self.top_level

    @property
    def mapping_kind(self):
        """How a weight is realised: ``"unipolar"``, ``"differential"`` or ``"offset"`` (str)."""
        return "unipolar" if self.unipolar else self.bipolar_mapping

    @property
    def devices_per_weight(self):
        """Devices that store one weight (1 unipolar/offset, 2 differential)."""
        return 2 if self.mapping_kind == "differential" else 1

    @property
    def level_count(self):
        """Conductance levels of one device, 2^weight_bits (int)."""
        return 2 ** self.weight_bits

    @property
    def top_level(self):
        """Index of the highest conductance level (G_max), 2^weight_bits - 1 (int)."""
        return self.level_count - 1

    @property
    def level_step_us(self):
        """Conductance between two adjacent device levels, ``(g_max - g_min) / top level`` (µS)."""
        return (self.g_max_us - self.g_min_us) / max(1, self.top_level)

    @property
    def reference_level(self):
        """Level of the reference column (offset mapping: ``-code_min``, i.e. mid-range), else None."""
        return -self.code_min if self.mapping_kind == "offset" else None

    @property
    def activation_step(self):
        """Step of the shared activation grid, A/128 (model units)."""
        return self.activation_range / 128.0

    @property
    def activation_min(self):
        """Lowest value of the shared activation grid, -A."""
        return -self.activation_range

    @property
    def activation_max(self):
        """Highest value of the shared activation grid, A*127/128 (zero point exactly 0)."""
        return self.activation_range * 127.0 / 128.0

    @property
    def is_resolved(self):
        """True once the shared weight scale has a value."""
        return self.weight_scale is not None

    def with_weight_scale(self, scale):
        """Returns a copy whose shared weight scale is ``scale`` (float > 0)."""
        return dataclasses.replace(self, weight_scale=float(scale))

    def replace(self, **changes):
        """Returns a validated copy with ``changes`` applied (dataclasses.replace)."""
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------- serialisation
    def to_dict(self):
        """Returns a JSON-ready dict with ``schema_version`` and every field."""
        out = {"schema_version": SCHEMA_VERSION}
        out.update(dataclasses.asdict(self))
        return out

    @classmethod
    def from_dict(cls, data):
        """Builds a spec from :meth:`to_dict` output, checking the schema version.

        Raises:
            SpecError: not a dict, unknown keys, a newer schema version or invalid values.
        """
        if not isinstance(data, dict):
            raise SpecError(f"NVMSpec.from_dict expects a dict, got {type(data).__name__}.")
        if not all(isinstance(key, str) for key in data):
            bad = [key for key in data if not isinstance(key, str)]
            raise SpecError(f"NVMSpec.from_dict expects string keys (field names), got {bad[:5]!r}. Fix: pass the "
                            "dict written by NVMSpec.to_dict().")
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version < 1 or version > SCHEMA_VERSION:
            raise SpecError(
                f"NVMSpec schema_version {version!r} is not supported: this tf_nvm reads versions "
                f"1..{SCHEMA_VERSION}. Fix: upgrade tf_nvm to read specs written by a newer release.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SpecError(
                f"NVMSpec.from_dict got unknown field(s) {unknown}; allowed: {sorted(names)}.")
        return cls(**data)


def resolve_spec(spec, *, owner="spec", need_scale=False):
    """The one spec resolver: an `NVMSpec`, a preset name or a spec dict -> `NVMSpec`.

    Args:
        spec: `NVMSpec` (returned unchanged), a preset name (see
            `tf_nvm.core.presets.names()`) or a dict from `NVMSpec.to_dict`.
        owner: who asks (named in messages, e.g. ``"NVMDense"``).
        need_scale: require the shared weight scale to be set.

    Returns:
        `NVMSpec`.

    Raises:
        SpecError: wrong type, invalid dict, or no weight scale when ``need_scale``.
        UnknownNameError: unknown preset name (the message lists the known ones).
    """
    if isinstance(spec, str):
        from tf_nvm.core import presets  # noqa: PLC0415  (presets imports this module)

        spec = presets.get(spec)
    elif isinstance(spec, dict):
        spec = NVMSpec.from_dict(spec)
    elif not isinstance(spec, NVMSpec):
        raise SpecError(
            f"{owner}: spec must be an NVMSpec, a preset name or a spec dict, got {type(spec).__name__}. "
            "Fix: pass e.g. spec='paper-2bit-unipolar' or tf_nvm.core.presets.get(...).")
    if need_scale and spec.weight_scale is None:
        raise SpecError(
            f"{owner}: spec.weight_scale is None; this needs the model's one shared weight scale. Fix: pass "
            "spec.replace(weight_scale_mode='fixed', weight_scale=<float > 0>), or build a float model and let "
            "tf_nvm.quantize_model calibrate the scale.")
    return spec


class SpecConfigured:
    """Mixin for quantizers, QuantizeConfigs and constraints configured by one `NVMSpec`.

    Holds ``self.spec`` (an `NVMSpec` or its dict is accepted); ``get_config``
    returns ``{"spec": spec dict}`` plus whatever a subclass adds, ``from_config``
    is ``cls(**config)``, and two objects are equal when type and config are.
    """

    def __init__(self, spec):
        self.spec = resolve_spec(spec, owner=type(self).__name__)

    def get_config(self):
        return {"spec": self.spec.to_dict()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))


def _check_int(name, value, lo, hi, why):
    """The one integer rule of the spec (every ``*_bits`` field, rows, cols): a Python int (not a bool, not a
    float such as 8.0, not a numpy integer, which JSON cannot hold) in ``lo..hi``."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SpecError(
            f"NVMSpec.{name} must be an integer in {lo}..{hi} ({why}), got {value!r}. "
            f"Fix: pass {name}=<int in {lo}..{hi}>.")


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise SpecError(f"NVMSpec.{name} must be True or False, got {value!r}.")


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:  # every choice is a name (an array is not compared)
        raise SpecError(
            f"NVMSpec.{name} must be one of {list(choices)}, got {repr(value)[:80]}. Fix: pass {name}= one of "
            "those strings.")


def _check_positive(name, value):
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not -_FLOAT32_MAX < value < _FLOAT32_MAX or not math.isfinite(value) or value <= 0):
        raise SpecError(
            f"NVMSpec.{name} must be a finite number > 0 within float32 range, got {str(value)[:40]}. "
            f"Fix: pass {name}=<float > 0>.")
