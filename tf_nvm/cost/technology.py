"""The technology description of the cost model: one frozen dataclass, every constant cited.

Each field's docstring names its unit and its source; ``docs/cost_model.md``
lists them again with the derivation of every derived number and marks the
ones that are assumptions (no published source found). Constants are stored
at the process node of their source (``analog_source_node_nm`` for the
ISAAC / NeuroSim numbers, ``digital_source_node_nm`` for the Aladdin logic
numbers) and scaled to ``node_nm`` with one stated rule (`scale_energy`,
`scale_area`): energy proportional to the feature size, area to its square
(constant supply voltage; an assumption, see the docs).

Presets are entries of the `TECHNOLOGIES` registry; a description can be
read from JSON (`load_technology`) and changed key by key (`apply_settings`,
``tf-nvm cost --set key=value``). Every invalid value raises `CostModelError`
naming the key, the value received, what is allowed and the fix.

Numpy-free, TensorFlow-free (cost-model layer).
"""

import dataclasses
import os
from typing import Any

from tf_nvm.core.errors import CostModelError
from tf_nvm.core.registry import Registry
from tf_nvm.core.safe_io import read_json
from tf_nvm.core.validate import Field, check_keys, find_problem, is_kind, parse_override, short

__all__ = ["Technology", "TECHNOLOGIES", "get_technology", "load_technology", "apply_settings", "parse_setting",
           "SCHEMA_VERSION", "ARRAY_SIZINGS"]

SCHEMA_VERSION = 1
"""Version of the JSON form written by `Technology.to_dict`."""

_FIX = "see docs/cost_model.md for the meaning and source of every key"


@dataclasses.dataclass(frozen=True)
class Technology:
    """Every constant of the crossbar cost model (units in the field names).

    Attributes:
        name: label of this description (preset name or "custom").
        array_sizing: ``"fixed"``: every tile is a full ``spec.rows x spec.cols``
            macro with its full periphery (a reusable macro, as the mapping's tiles);
            ``"fit"``: each tile's array, DACs, S&H and ADCs are sized to the rows and
            device columns it uses (a design made for this one network).
        node_nm: process node the costs are reported at, nm. Default 32 nm, the
            node of ISAAC (Shafiee et al., ISCA 2016) and NeuroSim's default
            ``technode = 32`` (DNN_NeuroSim_V2.1 ``Param.cpp``).
        analog_source_node_nm: node of the ISAAC converter / S&H / shift-add /
            buffer constants, nm (32, ISAAC).
        digital_source_node_nm: node of the Aladdin logic constants, nm (40,
            Aladdin, Shao et al. ISCA 2014, as tabulated in Accelergy's
            hwcomponents-library ``aladdin.py``).
        feature_size_nm: wire width F used for the cell area, nm (NeuroSim
            ``featuresize = 40e-9`` at ``technode = 32``).
        cell_area_f2: area of one 1T1R cell in F^2 (NeuroSim
            ``heightInFeatureSize1T1R = 4`` x ``widthInFeatureSize1T1R = 4``).
        read_voltage_v: read voltage on a driven row, V (NeuroSim ``readVoltage``).
        read_pulse_ns: read pulse per bit-serial cycle, ns (NeuroSim ``readPulseWidth``).
        input_activity: fraction of rows driven in one bit-serial cycle (0..1];
            ASSUMPTION (0.5: a 1-bit slice of an 8-bit code is 1 about half the time).
        input_bits_per_cycle: input bits applied per read cycle (bit-serial
            inputs, ISAAC: 1-bit DACs, one bit per cycle).
        dac_energy_pj: energy of one 1-bit DAC (row driver) conversion, pJ
            (ISAAC: 4 mW for 8x128 DACs at 1.2e7 x 8 x 128 conversions/s, x 128/100,
            as derived in hwcomponents-library ``isaac.py``: 0.41667 pJ).
        dac_area_um2: area of one 1-bit DAC, um^2 (ISAAC: 170 um^2 / (8 x 128)).
        sample_hold_energy_pj: energy of one sample-and-hold sample, pJ (ISAAC:
            10 uW for 8 x 128 S&H, each sampling once per 100 ns cycle:
            10e-6 / 1024 x 100e-9 = 9.8e-4 pJ).
        sample_hold_area_um2: area of one S&H, um^2 (ISAAC: 0.00004 mm^2 / (8 x 128),
            also in PUMA-simulator ``constants.py``).
        adc_bits_table: ADC resolutions of the energy/area tables, bits.
        adc_energy_pj_table: energy per conversion at those resolutions, pJ
            (ISAAC 8-bit ADC: 16 mW / (8 x 1.2 GS/s) = 1.67 pJ, from Kull et al.
            ISSCC 2013, 32 nm SOI; 4-10 bits scaled with Saberi et al. 2011, as
            tabulated in hwcomponents-library ``isaac.py``).
        adc_area_um2_table: ADC area at those resolutions, um^2 (ISAAC 8 bit:
            9600 um^2 / 8 = 1200 um^2; other resolutions as above).
        adc_conversion_ns: time of one conversion, ns (1 / 1.2 GS/s, Kull et al.).
        adc_share_columns: device columns sharing one ADC, time-multiplexed
            (NeuroSim ``numColMuxed = 8``).
        shift_add_energy_pj: one 16-bit shift-and-add, pJ (ISAAC: 0.2 mW for 4
            units at 1.2 x 8 GS/s: 0.021 pJ).
        shift_add_area_um2: one shift-and-add unit, um^2 (ISAAC: 0.00024 mm^2 / 4).
        shift_adds_per_adc: shift-and-add units per ADC (ISAAC IMA: 4 per 8 ADCs).
        add_energy_pj: one 32-bit integer add, pJ (Aladdin, 40 nm).
        add_area_um2: one 32-bit adder, um^2 (Aladdin, 40 nm).
        multiply_energy_pj: one 32-bit integer multiply, pJ (Aladdin, 40 nm).
        multiply_area_um2: one 32-bit multiplier, um^2 (Aladdin, 40 nm).
        compare_energy_pj: one 32-bit compare (ReLU, clip, max), pJ (Aladdin, 40 nm).
        compare_area_um2: one 32-bit comparator, um^2 (Aladdin, 40 nm).
        digital_lanes: parallel digital lanes (adder + multiplier + comparator
            each) that do bias, activation, re-quantisation and digital layers;
            ASSUMPTION (8, one per ADC of one 128-column tile).
        clock_ghz: digital clock, GHz (NeuroSim ``clkFreq = 1e9``).
        buffer_energy_pj_per_byte: inter-layer activation buffer access, pJ per
            byte (ISAAC eDRAM: 20.45 pJ per 256-bit access / 32 bytes, as derived in
            hwcomponents-library ``isaac.py``).
        buffer_area_um2_per_byte: activation buffer area per byte, um^2 (ISAAC
            eDRAM: 0.083 mm^2 for 64 KB).
    """

    name: str = "isaac-32nm"
    array_sizing: str = "fixed"
    node_nm: float = 32.0
    analog_source_node_nm: float = 32.0
    digital_source_node_nm: float = 40.0
    feature_size_nm: float = 40.0
    cell_area_f2: float = 16.0
    read_voltage_v: float = 0.5
    read_pulse_ns: float = 10.0
    input_activity: float = 0.5
    input_bits_per_cycle: int = 1
    dac_energy_pj: float = 0.41667
    dac_area_um2: float = 0.166015625
    sample_hold_energy_pj: float = 10e-6 / 1024 * 100e-9 * 1e12
    sample_hold_area_um2: float = 0.00004e6 / 1024
    adc_bits_table: tuple = (4, 5, 6, 7, 8, 9, 10)
    adc_energy_pj_table: tuple = (0.79, 0.99, 1.20, 1.42, 1.67, 1.969078145, 2.379022742)
    adc_area_um2_table: tuple = (361.04, 476.91, 626.91, 845.18, 1200.0, 1827.911647, 3002.008032)
    adc_conversion_ns: float = 1 / 1.2
    adc_share_columns: int = 8
    shift_add_energy_pj: float = 0.021
    shift_add_area_um2: float = 60.0
    shift_adds_per_adc: float = 0.5
    add_energy_pj: float = 0.21
    add_area_um2: float = 278.0
    multiply_energy_pj: float = 12.68
    multiply_area_um2: float = 6350.0
    compare_energy_pj: float = 0.02947
    compare_area_um2: float = 71.0
    digital_lanes: int = 8
    clock_ghz: float = 1.0
    buffer_energy_pj_per_byte: float = 20.45 / 32
    buffer_area_um2_per_byte: float = 0.083e6 / 65536

    def __post_init__(self) -> None:
        _validate(self)

    # --------------------------------------------------------------- scaling
    def scale_energy(self, value: float, source_node_nm: float) -> float:
        """``value`` (energy at ``source_node_nm``) at `node_nm`: ``value * node_nm / source_node_nm``."""
        return value * self.node_nm / source_node_nm

    def scale_area(self, value: float, source_node_nm: float) -> float:
        """``value`` (area at ``source_node_nm``) at `node_nm`: ``value * (node_nm / source_node_nm)^2``."""
        return value * (self.node_nm / source_node_nm) ** 2

    def analog_energy(self, key: str) -> float:
        """Field ``key`` (an ISAAC energy, pJ) scaled to `node_nm`."""
        return self.scale_energy(getattr(self, key), self.analog_source_node_nm)

    def analog_area(self, key: str) -> float:
        """Field ``key`` (an ISAAC area, um^2) scaled to `node_nm`."""
        return self.scale_area(getattr(self, key), self.analog_source_node_nm)

    def digital_energy(self, key: str) -> float:
        """Field ``key`` (an Aladdin energy, pJ) scaled to `node_nm`."""
        return self.scale_energy(getattr(self, key), self.digital_source_node_nm)

    def digital_area(self, key: str) -> float:
        """Field ``key`` (an Aladdin area, um^2) scaled to `node_nm`."""
        return self.scale_area(getattr(self, key), self.digital_source_node_nm)

    def _adc_table(self, table, bits):
        known = dict(zip(self.adc_bits_table, table))
        if bits in known:
            return known[bits]
        lo, hi = min(self.adc_bits_table), max(self.adc_bits_table)
        if bits < lo:
            return known[lo]  # ASSUMPTION: no cheaper than the smallest tabulated converter
        return known[hi] * 2.0 ** (bits - hi)  # ASSUMPTION: doubling per extra bit (Walden figure of merit)

    def adc_energy_pj(self, bits: int) -> float:
        """Energy of one conversion at ``bits`` resolution, pJ, at `node_nm`.

        Tabulated resolutions are read from `adc_energy_pj_table`; below the
        table the smallest entry is used, above it the energy doubles per bit
        (both assumptions, stated in the docs). Never decreases with ``bits``
        when the table does not.
        """
        return self.scale_energy(self._adc_table(self.adc_energy_pj_table, int(bits)), self.analog_source_node_nm)

    def adc_area_um2(self, bits: int) -> float:
        """Area of one ADC at ``bits`` resolution, um^2, at `node_nm` (same rules as `adc_energy_pj`)."""
        return self.scale_area(self._adc_table(self.adc_area_um2_table, int(bits)), self.analog_source_node_nm)

    @property
    def cell_area_um2(self) -> float:
        """Area of one cell, um^2: ``cell_area_f2 * feature_size_nm^2`` (NeuroSim's rule)."""
        return self.cell_area_f2 * (self.feature_size_nm * 1e-3) ** 2

    @property
    def cycle_ns(self) -> float:
        """One digital clock period, ns."""
        return 1.0 / self.clock_ghz

    # --------------------------------------------------------- serialisation
    def replace(self, **changes: Any) -> "Technology":
        """A validated copy with ``changes`` (unknown keys raise `CostModelError`)."""
        _check_keys(changes, "Technology.replace")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field plus ``schema_version``."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        data["schema_version"] = SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: "Technology | None" = None,
                  where: str = "technology") -> "Technology":
        """A `Technology` from a dict: ``base`` (default: the defaults) with the dict's keys replaced.

        Raises:
            CostModelError: not a dict, an unknown key, a newer ``schema_version``
                or an invalid value.
        """
        if not isinstance(data, dict):
            raise CostModelError(f"{where}: expected a JSON object of technology keys, got {type(data).__name__}. "
                                 f"Fix: write {{\"key\": value, ...}}; {_FIX}.")
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if not is_kind(version, "int") or version > SCHEMA_VERSION:
            raise CostModelError(f"{where}.schema_version: value {version!r} is not allowed; allowed: an integer <= "
                                 f"{SCHEMA_VERSION}. Fix: write the file with this version of tf_nvm.")
        _check_keys(data, where)
        changes: dict[str, Any] = {key: (tuple(value) if isinstance(value, list) else value)
                                   for key, value in data.items()}
        return dataclasses.replace(base or cls(), **changes)


ARRAY_SIZINGS = ("fixed", "fit")
"""Values of `Technology.array_sizing`."""

MAGNITUDE = (1e-12, 1e12)
"""Smallest and largest value of a physical technology constant, in its own unit (pJ, um^2, ns, GHz, V, nm ...):
every real constant lies far inside; beyond it a product or ratio overflows or underflows (``clock_ghz=5e-324``
made latencies infinite, an ADC table of 1e300 extrapolated to 0 energy)."""

_INTEGERS = {"input_bits_per_cycle": 8, "adc_share_columns": 1 << 20, "digital_lanes": 1 << 20}
_TABLES = ("adc_bits_table", "adc_energy_pj_table", "adc_area_um2_table")
_PLAUSIBLE = Field("value", "number", minimum=MAGNITUDE[0], maximum=MAGNITUDE[1],
                   allowed=f"a finite number > 0 within {MAGNITUDE[0]:g}..{MAGNITUDE[1]:g}")


def _field(name: str) -> Field:
    """The `Field` of technology key ``name`` (every key not named here is a `_PLAUSIBLE` constant)."""
    if name == "array_sizing":
        return Field(name, "str", choices=ARRAY_SIZINGS, allowed=str(list(ARRAY_SIZINGS)))
    if name == "name":
        return Field(name, "str", min_length=1, allowed="a non-empty string")
    if name in _INTEGERS:
        return Field(name, "int", minimum=1, maximum=_INTEGERS[name], allowed=f"an integer in 1..{_INTEGERS[name]}")
    if name in _TABLES:
        return Field(name, "list", min_length=1, items=_PLAUSIBLE, allowed="a non-empty list of finite numbers > 0 "
                     f"within {MAGNITUDE[0]:g}..{MAGNITUDE[1]:g}")
    if name == "input_activity":
        return Field(name, "number", minimum=MAGNITUDE[0], maximum=1,
                     allowed=f"a finite number in (0, 1], at least {MAGNITUDE[0]:g}")
    return dataclasses.replace(_PLAUSIBLE, name=name)


_FIELDS = tuple(_field(field.name) for field in dataclasses.fields(Technology))
"""The `Field` of every technology key, in declaration order."""


def _check_keys(data, where):
    check_keys(data, [field.name for field in _FIELDS], where=where, error=CostModelError, fix="", message=lambda p: (
        f"{where}: unknown key(s) {p.value}; known keys: {[field.name for field in _FIELDS]}. Fix: use one of the "
        f"known keys; {_FIX}."))


def _bad(key, value, allowed):
    raise CostModelError(f"technology.{key}: value {short(value)} is not allowed; allowed: {allowed}. Fix: pass a "
                         f"value in that range; {_FIX}.")


def _validate(tech):
    for field in _FIELDS:
        value = getattr(tech, field.name)
        if field.kind == "list":  # tables are stored as tuples (from_dict converts JSON lists)
            if not isinstance(value, tuple) or find_problem(list(value), field, field.name) is not None:
                _bad(field.name, value, field.describe())
        elif find_problem(value, field, field.name) is not None:
            _bad(field.name, value, field.describe())
    bits = tech.adc_bits_table
    if (len(tech.adc_energy_pj_table) != len(bits) or len(tech.adc_area_um2_table) != len(bits)
            or any(int(b) != b for b in bits) or list(bits) != sorted(set(bits))):
        _bad("adc_bits_table", list(bits), "strictly increasing integers, one per entry of adc_energy_pj_table and "
                                           "adc_area_um2_table")
    for key in ("adc_energy_pj_table", "adc_area_um2_table"):
        table = getattr(tech, key)
        if list(table) != sorted(table):
            _bad(key, list(table), "values that never decrease with more ADC bits")


TECHNOLOGIES = Registry("technology", error=CostModelError,
                        fix="use one of the known technology names (tf-nvm cost --tech NAME_OR_FILE)")
"""Named technology descriptions (presets)."""

TECHNOLOGIES.register("isaac-32nm", Technology(),
                      description="ISAAC 32 nm converters/S&H/shift-add/eDRAM, NeuroSim 1T1R cells, Aladdin logic")
# Murmann's survey figures as quoted in issue #9 (8-bit-class converter at <= 65 nm): the median about 6 pJ and
# 0.024 mm^2, the best about 0.3 pJ and 0.002 mm^2. Both tables keep ISAAC's bit-to-bit ratios (an assumption) and
# are pinned at 8 bits to those figures; they are not scaled (their node is given as <= 65 nm, so they are declared at
# the analog source node).
_ISAAC = Technology()
TECHNOLOGIES.register("murmann-median-adc", _ISAAC.replace(
    name="murmann-median-adc",
    adc_energy_pj_table=tuple(e * 6.0 / 1.67 for e in _ISAAC.adc_energy_pj_table),
    adc_area_um2_table=tuple(a * 24000.0 / 1200.0 for a in _ISAAC.adc_area_um2_table)),
    description="isaac-32nm with the median ADC of Murmann's survey (6 pJ, 0.024 mm^2 at 8 bits)")
TECHNOLOGIES.register("murmann-best-adc", _ISAAC.replace(
    name="murmann-best-adc",
    adc_energy_pj_table=tuple(e * 0.3 / 1.67 for e in _ISAAC.adc_energy_pj_table),
    adc_area_um2_table=tuple(a * 2000.0 / 1200.0 for a in _ISAAC.adc_area_um2_table)),
    description="isaac-32nm with the best ADC of Murmann's survey (0.3 pJ, 0.002 mm^2 at 8 bits)")


def get_technology(value: "Technology | str | os.PathLike | None" = None) -> Technology:
    """A `Technology` from None (the default ``isaac-32nm``), a `Technology`, a preset name or a JSON file path.

    Raises:
        CostModelError: unknown name, unreadable or invalid file.
    """
    if value is None:
        return TECHNOLOGIES.get("isaac-32nm")
    if isinstance(value, Technology):
        return value
    if isinstance(value, str) and value in TECHNOLOGIES:
        return TECHNOLOGIES.get(value)
    if isinstance(value, (str, os.PathLike)) and (str(value).endswith(".json") or os.path.exists(value)):
        return load_technology(value)
    return TECHNOLOGIES.get(value)


_MAX_JSON_BYTES = 1 << 20


def load_technology(path: "str | os.PathLike") -> Technology:
    """Reads a technology JSON file (keys of `Technology`, any subset; the rest keep the defaults).

    Raises:
        CostModelError: missing, not a regular file, larger than 1 MiB, not JSON, or invalid keys/values.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CostModelError(f"technology file {path!r} does not exist or is not a regular file. Fix: pass a JSON "
                             "file of technology keys, or a preset name: " + ", ".join(TECHNOLOGIES.names()) + ".")
    data = read_json(path, max_bytes=_MAX_JSON_BYTES, what="technology file", error=CostModelError,
                     fix="Fix: write a JSON object of technology keys.", object_only=True)
    return Technology.from_dict(data, base=Technology(name="custom"), where=f"technology file {path!r}")


def parse_setting(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, value); the value is read as JSON (numbers, lists), else kept as a string
    (`tf_nvm.core.validate.parse_override`).

    Raises:
        CostModelError: no ``=``.
    """
    return parse_override(text, error=CostModelError, example="adc_share_columns=4")


def apply_settings(tech: Technology, settings: "list[str] | tuple[str, ...]") -> Technology:
    """``tech`` with every ``"key=value"`` of ``settings`` applied, in order.

    Raises:
        CostModelError: a malformed setting, an unknown key or an invalid value.
    """
    changes = dict(parse_setting(text) for text in settings)
    return Technology.from_dict(changes, base=tech, where="--set")
