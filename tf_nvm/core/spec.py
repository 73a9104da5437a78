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
from typing import Any, Optional

from tf_nvm.core.errors import SpecError
from tf_nvm.core.registry import Registry
from tf_nvm.core.validate import Field, Problem, check_keys, find_problem

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
    "SPEC_FIELDS",
    "PRESETS",
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


def _bits(name: str, hi: int, why: str, default: int, **extra: Any) -> Field:
    return Field(name, "int", required=False, default=default, minimum=1, maximum=hi, doc=why, **extra)


def _positive(name: str, default: float | None, doc: str, nullable: bool = False) -> Field:
    return Field(name, "number", required=False, default=default, nullable=nullable, minimum=0,
                 exclusive_minimum=True, maximum=math.nextafter(_FLOAT32_MAX, 0.0), doc=doc)


def _choice(name: str, choices: tuple, default: Any, doc: str) -> Field:
    return Field(name, "str", required=False, default=default, choices=choices, doc=doc)


def _true(name: str, doc: str) -> Field:
    return Field(name, "bool", required=False, default=True, choices=(True,), doc=doc)


SPEC_FIELDS = (
    Field("schema_version", "int", required=False, default=SCHEMA_VERSION, minimum=1, maximum=SCHEMA_VERSION,
          doc="version of the spec's JSON form"),
    _bits("weight_bits", _MAX_WEIGHT_BITS, "device codes must fit int8 with zero point 0 (TFLite weight container); "
          "the paper's devices are 2 and 4 bits", 2),
    Field("unipolar", "bool", required=False, default=True, doc="non-negative weights only (one device per weight)"),
    _choice("bipolar_mapping", BIPOLAR_MAPPINGS, "differential", "how signed weights are realized (bipolar only)"),
    _bits("activation_bits", 16, "activation bits", 8, choices=_ACTIVATION_BITS),
    _positive("activation_range", 8.0, "A, the one activation range of the model (model units)"),
    _bits("adc_bits", 16, "ADC resolution", 8),
    _bits("dac_bits", 8, "DAC resolution, at most the 8-bit activation grid", 8),
    _bits("rows", 1 << 20, "crossbar rows per tile", 128),
    _bits("cols", 1 << 20, "crossbar columns per tile", 128),
    _choice("weight_scale_mode", WEIGHT_SCALE_MODES, "calibrated", "'calibrated' or 'fixed' weight scale"),
    _positive("weight_scale", None, "s, the one weight scale of the model (weight per code step)", nullable=True),
    _choice("input_encoding", INPUT_ENCODINGS, "signed-dac", "how the first crossbar's signed inputs are applied"),
    _choice("batchnorm", BATCHNORM_MODES, "digital", "where BatchNormalization is computed"),
    _choice("runtime", DEPLOY_RUNTIMES, "litert", "the int8 runtime the model is deployed on"),
    _positive("g_min_us", 1.0, "lowest device conductance G_min, microsiemens"),
    _positive("g_max_us", 25.0, "highest device conductance G_max, microsiemens (> g_min_us)"),
    _true("digital_bias", "biases are added digitally after the ADC (always true)"),
    _true("digital_partial_sums", "partial sums of row tiles are added digitally (always true)"),
)
"""The `Field` of every key of `NVMSpec.to_dict` (``schema_version`` first), in the order they are checked;
the mapping file's JSON Schema embeds them (`tf_nvm.mapping.schema`)."""


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

    def __post_init__(self) -> None:
        self._validate()

    # ----------------------------------------------------------------- checks
    def _validate(self) -> None:
        for field in SPEC_FIELDS[1:]:
            value = getattr(self, field.name)
            found = find_problem(value, field, field.name)
            if found is not None:
                raise SpecError(_message(found))
        if self.weight_scale is None and self.weight_scale_mode == "fixed":
            raise SpecError(
                "NVMSpec.weight_scale is None but weight_scale_mode='fixed' needs a value. Fix: pass "
                "weight_scale=<float > 0>, or weight_scale_mode='calibrated' to compute it from the model.")
        if self.g_max_us <= self.g_min_us:
            raise SpecError(
                f"NVMSpec.g_max_us ({self.g_max_us!r}) must be greater than g_min_us ({self.g_min_us!r}). "
                "Fix: swap them or widen the conductance window.")

    # ------------------------------------------------------------ code ranges
    @property
    def code_min(self) -> int:
        """Lowest integer device code (int)."""
        kind = self.mapping_kind
        if kind == "unipolar":
            return 0
        if kind == "differential":
            return -self.top_level
        return -(2 ** (self.weight_bits - 1))

    @property
    def code_max(self) -> int:
        """Highest integer device code (int)."""
        if self.mapping_kind == "offset":
            return 2 ** (self.weight_bits - 1) - 1
        return self.top_level

    @property
    def mapping_kind(self) -> str:
        """How a weight is realised: ``"unipolar"``, ``"differential"`` or ``"offset"`` (str)."""
        return "unipolar" if self.unipolar else self.bipolar_mapping

    @property
    def devices_per_weight(self) -> int:
        """Devices that store one weight (1 unipolar/offset, 2 differential)."""
        return 2 if self.mapping_kind == "differential" else 1

    @property
    def level_count(self) -> int:
        """Conductance levels of one device, 2^weight_bits (int)."""
        return 2 ** self.weight_bits

    @property
    def top_level(self) -> int:
        """Index of the highest conductance level (G_max), 2^weight_bits - 1 (int)."""
        return self.level_count - 1

    @property
    def level_step_us(self) -> float:
        """Conductance between two adjacent device levels, ``(g_max - g_min) / top level`` (µS)."""
        return (self.g_max_us - self.g_min_us) / max(1, self.top_level)

    @property
    def reference_level(self) -> int | None:
        """Level of the reference column (offset mapping: ``-code_min``, i.e. mid-range), else None."""
        return -self.code_min if self.mapping_kind == "offset" else None

    @property
    def activation_step(self) -> float:
        """Step of the shared activation grid, A/128 (model units)."""
        return self.activation_range / 128.0

    @property
    def activation_min(self) -> float:
        """Lowest value of the shared activation grid, -A."""
        return -self.activation_range

    @property
    def activation_max(self) -> float:
        """Highest value of the shared activation grid, A*127/128 (zero point exactly 0)."""
        return self.activation_range * 127.0 / 128.0

    @property
    def is_resolved(self) -> bool:
        """True once the shared weight scale has a value."""
        return self.weight_scale is not None

    @property
    def scale(self) -> float:
        """The shared weight scale S [weight units per device code] of a resolved spec.

        Raises:
            SpecError: the spec has no scale yet (calibrate it: `tf_nvm.calibrate_scale`, or ``quantize_model``).
        """
        if self.weight_scale is None:
            raise SpecError("spec: weight_scale is None (the spec is not resolved). Fix: build the model with "
                            "tf_nvm.quantize_model, which calibrates it, or pass weight_scale=S.")
        return self.weight_scale

    def with_weight_scale(self, scale: float) -> "NVMSpec":
        """Returns a copy whose shared weight scale is ``scale`` (float > 0)."""
        return dataclasses.replace(self, weight_scale=float(scale))

    def replace(self, **changes: Any) -> "NVMSpec":
        """Returns a validated copy with ``changes`` applied (dataclasses.replace)."""
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-ready dict with ``schema_version`` and every field."""
        out = {"schema_version": SCHEMA_VERSION}
        out.update(dataclasses.asdict(self))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NVMSpec":
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
        if not isinstance(version, int) or version < 1 or version > SCHEMA_VERSION:  # True reads as 1 (as before)
            raise SpecError(
                f"NVMSpec schema_version {version!r} is not supported: this tf_nvm reads versions "
                f"1..{SCHEMA_VERSION}. Fix: upgrade tf_nvm to read specs written by a newer release.")
        names = sorted(f.name for f in dataclasses.fields(cls))
        check_keys(data, names, where="NVMSpec.from_dict", error=SpecError, fix="", message=lambda problem: (
            f"NVMSpec.from_dict got unknown field(s) {problem.value}; allowed: {names}."))
        return cls(**data)


PRESETS = Registry("NVM preset", fix="run `tf-nvm presets` for the list, or pass an NVMSpec")
"""Preset name -> `NVMSpec` (read through `tf_nvm.core.presets`; here so that `resolve_spec` needs no import of
the presets module, which imports this one)."""

# The paper's settings: 2-bit and 4-bit devices, one shared weight scale, one
# shared activation range A = 8 (step 1/16), 8-bit activations. Measured on HAR
# with har_signed_cnn (3 seeds, measured 2026-11-26 with tf_nvm 0.2.0): A = 8 beat A = 16 for 2-bit
# unipolar (93.9 % vs 92.5 % mean), since every crossbar there sees centred
# inputs and logits without a unipolar common mode; a finer step matters more.
for _bits_ in (2, 4):
    PRESETS.register(
        f"paper-{_bits_}bit-unipolar",
        NVMSpec(weight_bits=_bits_, unipolar=True, activation_range=8.0),
        description=f"{_bits_}-bit devices, non-negative weights only (one device per weight), shared scale/range",
    )
    PRESETS.register(
        f"paper-{_bits_}bit-bipolar",
        NVMSpec(weight_bits=_bits_, unipolar=False, bipolar_mapping="differential", activation_range=8.0),
        description=f"{_bits_}-bit devices in differential pairs (W = G+ - G-), shared scale/range",
    )
del _bits_


def resolve_spec(spec: "NVMSpec | str | dict[str, Any] | None", *, owner: str = "spec",
                 need_scale: bool = False) -> NVMSpec:
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
        spec = PRESETS.resolve(spec, NVMSpec)
    elif isinstance(spec, dict):
        spec = NVMSpec.from_dict(spec)
    if not isinstance(spec, NVMSpec):
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

    def __init__(self, spec: NVMSpec | str | dict[str, Any]) -> None:
        self.spec = resolve_spec(spec, owner=type(self).__name__)

    def get_config(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))


def _message(problem: Problem) -> str:
    """The spec's message for a value that fails its `Field` (pinned by tests/test_spec.py)."""
    field, name, value = problem.field, problem.field.name, problem.value
    if name == "activation_bits" and problem.reason == "choice":
        return (f"NVMSpec.activation_bits must be 8, got {value!r}: TFLite keeps activations int8. Fix: use "
                "activation_bits=8 and set dac_bits/adc_bits to model coarser converters in the crossbar simulator.")
    if name == "runtime":
        return (f"NVMSpec.runtime must be one of {list(DEPLOY_RUNTIMES)} (the int8 runtime the model is deployed on: "
                f"LiteRT or TFLite Micro), got {value!r}. Fix: pass runtime='litert' or runtime='tflm'.")
    if name in ("digital_bias", "digital_partial_sums"):
        return f"NVMSpec.{name} must be True in this release, got {value!r}."
    if field.kind == "int":
        lo, hi = int(field.minimum or 0), int(field.maximum or 0)
        return (f"NVMSpec.{name} must be an integer in {lo}..{hi} ({field.doc}), got {value!r}. "
                f"Fix: pass {name}=<int in {lo}..{hi}>.")
    if field.kind == "bool":
        return f"NVMSpec.{name} must be True or False, got {value!r}."
    if field.kind == "str":
        return (f"NVMSpec.{name} must be one of {list(field.choices or ())}, got {repr(value)[:80]}. Fix: pass "
                f"{name}= one of those strings.")
    return (f"NVMSpec.{name} must be a finite number > 0 within float32 range, got {str(value)[:40]}. "
            f"Fix: pass {name}=<float > 0>.")
