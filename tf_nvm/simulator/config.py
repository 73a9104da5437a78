"""The simulator's own configuration: nested, frozen dataclasses with units (aihwkit style).

`NVMSpec` is the trained contract and stays as it is; everything about *how*
a mapped network is simulated (converters, devices, time, seeds) lives here.
Names follow aihwkit where one applies (``t_inference``, ``prog_noise_scale``
on the noise models, ``drift_compensation``).

Example:
    >>> config = SimulationConfig(device=DeviceConfig(noise="pcm-like", t_inference=3600.0),
    ...                           adc=ADCConfig(mode="shared", bits=10))
    >>> config.replace_path("device.t_inference", 86400.0).device.t_inference
    86400.0
"""

import dataclasses
from typing import TYPE_CHECKING, Any, Optional

from tf_nvm.core.errors import SimulatorError
from tf_nvm.core.validate import Field, is_kind, problem_of
from tf_nvm.core.noise_presets import READ_NOISE_MODES  # (read without TensorFlow)

if TYPE_CHECKING:  # for the annotations only (tf_nvm.noise imports TensorFlow)
    from tf_nvm.noise.base import NoiseModel

__all__ = ["DACConfig", "ADCConfig", "DeviceConfig", "SimulationConfig", "ADC_MODES", "READ_NOISE_MODES",
           "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
ADC_MODES = ("exact", "shared", "per-layer")
"""ADC range modes: ``exact`` (ideal, no quantisation or saturation), ``shared`` (ONE ADC design for every tile of
every layer, range from the shared weight scale and activation grid), ``per-layer`` (each layer's range calibrated
on its own: the full-custom periphery the paper avoids)."""


def _number(owner, name, value, low=None, high=None, integer=False, allow_none=False, strict_low=False):
    """Checks one numeric field with `tf_nvm.core.validate` (ints are not bools, numbers are finite)."""
    bounds = ([f"{'>' if strict_low else '>='} {low}"] if low is not None else []) + (
        [f"<= {high}"] if high is not None else [])
    allowed = (f"{'an integer' if integer else 'a finite number'}{' ' + ' and '.join(bounds) if bounds else ''}"
               f"{' or None' if allow_none else ''}")
    field = Field(name, "int" if integer else "number", nullable=allow_none, minimum=low, maximum=high,
                  exclusive_minimum=strict_low, allowed=allowed)
    if problem_of(value, field, name) is not None:
        raise SimulatorError(f"{owner}.{name} must be {allowed}, got {value!r}. Fix: pass {name}=<{allowed}>.")


@dataclasses.dataclass(frozen=True)
class DACConfig:
    """Row input converters.

    Attributes:
        bits: DAC resolution in bits (1..8); None uses the mapping's ``spec.dac_bits``.
            Inputs are int8 codes on the shared grid; a b-bit DAC keeps the
            top b bits: ``q_dac = clip(round(q / 2^(8-b)), -2^(b-1), 2^(b-1)-1) * 2^(8-b)``.
    """

    bits: Optional[int] = None

    def __post_init__(self) -> None:
        _number("DACConfig", "bits", self.bits, 1, 8, integer=True, allow_none=True)


@dataclasses.dataclass(frozen=True)
class ADCConfig:
    """Column output converters (one conversion per device column, per tile, per read).

    Attributes:
        mode: one of `ADC_MODES`.
        bits: ADC resolution in bits (1..16); None uses the mapping's ``spec.adc_bits``.
        shared_output_ranges: ``shared`` mode: None (default) gives the full range
            ``FS = 128 * top_level * spec.rows`` MAC units (level x input code): the
            largest |column sum| any tile can produce, so the one ADC never
            saturates. A number k gives ``FS = k * 128 / s`` (s the shared weight
            scale): k output ranges of the shared activation grid, finer steps,
            saturating larger column sums. Either way the same design serves every
            tile of every layer.
        calibration_percentile: ``per-layer`` mode: each layer's full scale is
            this percentile (0 < p <= 100) of |partial sums| of its device
            columns on the calibration data.
    """

    mode: str = "exact"
    bits: Optional[int] = None
    shared_output_ranges: Optional[float] = None
    calibration_percentile: float = 100.0

    def __post_init__(self) -> None:
        if self.mode not in ADC_MODES:
            raise SimulatorError(f"ADCConfig.mode must be one of {list(ADC_MODES)}, got {self.mode!r}. "
                                 "Fix: pass mode='exact', 'shared' or 'per-layer'.")
        _number("ADCConfig", "bits", self.bits, 1, 16, integer=True, allow_none=True)
        _number("ADCConfig", "shared_output_ranges", self.shared_output_ranges, 0, 1e6, strict_low=True,
                allow_none=True)
        _number("ADCConfig", "calibration_percentile", self.calibration_percentile, 0, 100, strict_low=True)


@dataclasses.dataclass(frozen=True)
class DeviceConfig:
    """The devices of a programmed chip.

    Attributes:
        noise: a noise preset name (``tf_nvm.noise.PRESETS``) or a `tf_nvm.noise.NoiseModel`.
        stuck_at_gmin_rate: fraction of devices stuck at G_min (0..1), drawn per chip.
        stuck_at_gmax_rate: fraction of devices stuck at G_max (0..1), drawn per chip.
        t_inference: seconds since the end of programming (drift, accumulated noise), >= 0.
        drift_compensation: rescale every layer's output by one digital factor measured on
            one-hot reference reads right after programming and at ``t_inference``
            (aihwkit's ``GlobalDriftCompensation``: the ratio of the mean absolute effective
            weights, one factor per layer; `tf_nvm.noise.compensation`).
        read_noise: how the noise model's read noise (`NoiseModel.read_sigma`) is drawn,
            one of `READ_NOISE_MODES`: ``"per-read"`` (default) a fresh draw at every
            read, i.e. per example, per output position and per row tile, exact in
            distribution; ``"per-chip"`` drawn once per chip at ``t_inference`` and
            frozen into its conductances, as aihwkit's ``PCMLikeNoiseModel`` does
            (1/f noise is dominated by low frequencies; much faster to simulate);
            ``"off"``: programmed and drifted conductances only.
        ir_drop: scale of the first-order IR drop along each device column
            (aihwkit's ``IOParameters.ir_drop``, the same formula; 0 = off). Depends on the
            inputs, so a layer with IR drop is simulated per row tile.
        ir_drop_g_ratio: wire conductance between neighbouring cells over the device
            g_max (aihwkit's ``ir_drop_g_ratio``); None: ``1 / (0.35 ohm x spec.g_max)``,
            aihwkit's 0.35 ohm wire segment with this mapping's g_max.
    """

    noise: "str | NoiseModel" = "ideal"
    stuck_at_gmin_rate: float = 0.0
    stuck_at_gmax_rate: float = 0.0
    t_inference: float = 0.0
    drift_compensation: bool = True
    read_noise: str = "per-read"
    ir_drop: float = 0.0
    ir_drop_g_ratio: Optional[float] = None

    def __post_init__(self) -> None:
        from tf_nvm import noise as noise_models  # noqa: PLC0415  (noise imports TensorFlow)

        noise_models.get(self.noise)  # unknown preset -> SimulatorError listing the known ones
        _number("DeviceConfig", "stuck_at_gmin_rate", self.stuck_at_gmin_rate, 0, 1)
        _number("DeviceConfig", "stuck_at_gmax_rate", self.stuck_at_gmax_rate, 0, 1)
        if self.stuck_at_gmin_rate + self.stuck_at_gmax_rate > 1:
            raise SimulatorError(f"DeviceConfig: stuck_at_gmin_rate + stuck_at_gmax_rate = "
                                 f"{self.stuck_at_gmin_rate + self.stuck_at_gmax_rate} exceeds 1. Fix: lower them.")
        _number("DeviceConfig", "t_inference", self.t_inference, 0, 1e12)
        _number("DeviceConfig", "ir_drop", self.ir_drop, 0, 1e6)
        _number("DeviceConfig", "ir_drop_g_ratio", self.ir_drop_g_ratio, 0, 1e15, strict_low=True, allow_none=True)
        if not is_kind(self.drift_compensation, "bool"):
            raise SimulatorError(f"DeviceConfig.drift_compensation must be True or False, got "
                                 f"{self.drift_compensation!r}.")
        if self.read_noise not in READ_NOISE_MODES:
            raise SimulatorError(f"DeviceConfig.read_noise must be one of {list(READ_NOISE_MODES)}, got "
                                 f"{self.read_noise!r}. Fix: pass read_noise='per-read', 'per-chip' or 'off'.")

    @property
    def noise_model(self) -> Any:
        """The resolved `tf_nvm.noise.NoiseModel`."""
        from tf_nvm import noise as noise_models  # noqa: PLC0415  (noise imports TensorFlow)

        return noise_models.get(self.noise)


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Everything the simulator needs besides the mapping.

    Attributes:
        dac: `DACConfig`.
        adc: `ADCConfig`.
        device: `DeviceConfig`.
        seed: base seed (int >= 0); chip k of a run uses streams derived from (seed, k).
        batch_size: examples per simulated batch (memory does not grow with the data set).
        jit_compile: compile the whole forward pass with XLA. Default False: only the
            per-tile ADC and digital accumulation is XLA-compiled (one fused pass), since
            TensorFlow's own convolutions measured faster than XLA's on CPU
            (`benchmarks/simulator_throughput.py --no-jit`/default; `docs/simulator.md`).
    """

    dac: DACConfig = DACConfig()
    adc: ADCConfig = ADCConfig()
    device: DeviceConfig = DeviceConfig()
    seed: int = 0
    batch_size: int = 256
    jit_compile: bool = False

    def __post_init__(self) -> None:
        for name, cls in (("dac", DACConfig), ("adc", ADCConfig), ("device", DeviceConfig)):
            if not isinstance(getattr(self, name), cls):
                raise SimulatorError(f"SimulationConfig.{name} must be a {cls.__name__}, got "
                                     f"{type(getattr(self, name)).__name__}. Fix: pass {name}={cls.__name__}(...).")
        _number("SimulationConfig", "seed", self.seed, 0, 2 ** 31 - 1, integer=True)
        _number("SimulationConfig", "batch_size", self.batch_size, 1, 1 << 20, integer=True)
        if not is_kind(self.jit_compile, "bool"):
            raise SimulatorError(f"SimulationConfig.jit_compile must be True or False, got {self.jit_compile!r}.")

    def replace_path(self, path: str, value: Any) -> "SimulationConfig":
        """A copy with one field set by its dotted path (``"adc.bits"``, ``"device.t_inference"``, ``"seed"``).

        Raises:
            SimulatorError: unknown path (the message lists the known ones) or an invalid value.
        """
        parts = path.split(".")
        known = self.paths()
        if path not in known:
            raise SimulatorError(f"unknown simulation setting {path!r}; known: {', '.join(known)}. "
                                 "Fix: use one of them, e.g. --set adc.bits=6.")
        if len(parts) == 1:
            return dataclasses.replace(self, **{path: value})
        section = getattr(self, parts[0])
        return dataclasses.replace(self, **{parts[0]: dataclasses.replace(section, **{parts[1]: value})})

    @classmethod
    def paths(cls) -> list[str]:
        """Every settable dotted path (sorted)."""
        out = []
        for field in dataclasses.fields(cls):
            if field.name in ("dac", "adc", "device"):
                section: Any = field.default
                out += [f"{field.name}.{f.name}" for f in dataclasses.fields(section)]
            else:
                out.append(field.name)
        return sorted(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with ``schema_version`` (the noise model as its dict)."""
        out = {"schema_version": SCHEMA_VERSION}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if dataclasses.is_dataclass(value):
                value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
                if "noise" in value and not isinstance(value["noise"], str):
                    value["noise"] = value["noise"].to_dict()
            out[field.name] = value
        return out
