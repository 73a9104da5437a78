"""Area, energy per inference and latency of a mapped network, component by component.

The architecture costed (every choice stated in ``docs/cost_model.md``):

* each crossbar tile is a ``spec.rows x spec.cols`` array of 1T1R cells with one
  1-bit DAC (row driver) per row and one sample-and-hold per column; inputs are
  applied bit-serially (``input_bits_per_cycle`` bits per cycle, ISAAC), so one
  crossbar read of ``dac_bits``-bit inputs takes ``ceil(dac_bits /
  input_bits_per_cycle)`` cycles;
* ``adc_share_columns`` columns share one ADC of ``spec.adc_bits`` bits,
  time-multiplexed; every used device column is converted once per cycle and
  shifted-and-added into its accumulator;
* signed weights: a differential pair converts both columns and subtracts the
  two accumulated results digitally (as the simulator and the mapping do); the
  offset mapping converts a reference column per tile and subtracts it; a
  unipolar layer removes G_min digitally from the known input sum
  (``tf_nvm.mapping.device.G_MIN_REMOVAL``);
* row tiles are added digitally; bias, rail subtraction (dual-rail input),
  re-quantisation by the one shared scale, ReLU and the clip run on
  ``digital_lanes`` lanes, as do the digital layers (`tf_nvm.cost.digital`);
* one activation buffer (ping-pong, int8) holds a layer's input and output;
* layers run one after the other (no pipelining); the tiles of one layer run in
  parallel; buffer accesses overlap computation.

`network_cost` returns a `CostResult`: one row per (layer, component) with the
hardware count, operations, area and energy per inference, and one latency row
per layer. Totals are sums of these rows.

Numpy/pandas only (cost-model layer).
"""

import dataclasses
import math
import os
from typing import Any

import pandas as pd

from tf_nvm.cost.digital import OpWork, op_work
from tf_nvm.cost.plan import LayerPlan, check_mapping, plan_as, plan_mapping
from tf_nvm.cost.technology import Technology, get_technology
from tf_nvm.core.errors import CostModelError
from tf_nvm.core.spec import NVMSpec
from tf_nvm.mapping.network import Mapping
from tf_nvm.mapping.types import CrossbarLayer
from tf_nvm.core.registry import Registry

__all__ = ["COMPONENTS", "CROSSBAR_PERIPHERY", "ORDER", "Component", "CostResult", "network_cost", "layer_components",
           "crossbar_cycles", "cycle_ns", "NETWORK"]

NETWORK = "(network)"
"""Layer label of network-wide components (buffer, digital lanes)."""


@dataclasses.dataclass(frozen=True)
class Component:
    """A kind of hardware block.

    Attributes:
        name: component name (a row of the tables).
        group: ``"array"``, ``"periphery"`` or ``"buffer"``.
        description: one line.
    """

    name: str
    group: str
    description: str


COMPONENTS = Registry("cost component", error=CostModelError)
"""Every component the model counts, in table order (`COMPONENTS.names()` is sorted; `ORDER` is the table order)."""

ORDER = []
for _c in [
    Component("cells", "array", "1T1R weight cells (whole arrays; energy from the programmed conductances)"),
    Component("reference_columns", "periphery", "offset mapping: one reference column per tile"),
    Component("dac", "periphery", "1-bit row drivers, one per row per tile"),
    Component("sample_hold", "periphery", "sample-and-hold, one per column per tile"),
    Component("adc", "periphery", "ADCs, one per adc_share_columns columns per tile"),
    Component("shift_add", "periphery", "shift-and-add of bit-serial column results"),
    Component("pair_subtraction", "periphery", "signed weights: G+ - G- or column - reference, digital"),
    Component("gmin_correction", "periphery", "unipolar: G_min removed digitally from the input sum"),
    Component("partial_sums", "periphery", "digital sum of row-tile partial sums"),
    Component("bias_activation_requant", "periphery", "rail subtraction, bias, shared-scale requantisation, ReLU, "
                                                      "clip"),
    Component("layer_scaling", "periphery", "per-layer custom periphery only: each layer's own range rescale"),
    Component("digital_layers", "periphery", "digital steps of the mapping (BatchNorm, pooling, ...)"),
    Component("digital_units", "periphery", "digital lanes (adder, multiplier, comparator each)"),
    Component("activation_buffer", "buffer", "int8 activation buffer between layers"),
]:
    COMPONENTS.register(_c.name, _c, description=_c.description)
    ORDER.append(_c.name)

CROSSBAR_PERIPHERY = ("reference_columns", "dac", "sample_hold", "adc", "shift_add", "pair_subtraction",
                      "gmin_correction", "partial_sums")
"""The crossbar periphery: the components whose count depends on how signed weights are mapped (the paper's
"periphery"); bias/activation/re-quantisation, digital layers, lanes and the buffer are the same for every mapping."""

_COLUMNS = ["layer", "component", "group", "count", "operations", "area_um2", "energy_pj"]


def crossbar_cycles(spec: NVMSpec, tech: Technology) -> int:
    """Bit-serial cycles of one crossbar read: ``ceil(dac_bits / input_bits_per_cycle)``."""
    return -(-spec.dac_bits // tech.input_bits_per_cycle)


def cycle_ns(tech: Technology) -> float:
    """Duration of one bit-serial cycle, ns: ``max(read_pulse_ns, adc_share_columns * adc_conversion_ns)``."""
    return max(tech.read_pulse_ns, tech.adc_share_columns * tech.adc_conversion_ns)


def _row(layer, component, count, operations, area_um2, energy_pj):
    return {"layer": layer, "component": component, "group": COMPONENTS.get(component).group, "count": int(count),
            "operations": int(operations), "area_um2": float(area_um2), "energy_pj": float(energy_pj)}


def _digital_energy(work, tech):
    return (work.adds * tech.digital_energy("add_energy_pj") + work.multiplies * tech.digital_energy(
        "multiply_energy_pj") + work.compares * tech.digital_energy("compare_energy_pj"))


def layer_components(plan: LayerPlan, spec: NVMSpec, tech: Technology) -> tuple[list[dict[str, Any]], OpWork, OpWork]:
    """Rows of one crossbar layer (dicts with the `CostResult.components` columns) and its digital work.

    Args:
        plan: `tf_nvm.cost.plan.LayerPlan`.
        spec: `NVMSpec` (rows, cols, adc_bits, dac_bits of the hardware).
        tech: `Technology`.

    Returns:
        (list of row dicts, `OpWork` of the layer's digital steps, buffer `OpWork`).
    """
    rows = _array_rows(plan, spec, tech) + _converter_rows(plan, spec, tech)
    digital_rows, work = _digital_rows(plan, tech)
    buffer = OpWork(bytes_read=plan.reads * plan.rows, bytes_written=plan.outputs)
    return rows + digital_rows, work, buffer


def _physical_tiles(plan, spec, tech):
    """(rows, device columns) of each tile's physical array, as ``tech.array_sizing`` sizes it."""
    if tech.array_sizing == "fixed":  # every tile a full spec.rows x spec.cols macro with its full periphery
        return [(spec.rows, spec.cols)] * len(plan.tiles)
    return list(plan.tiles)  # "fit": each tile's array and periphery sized to the rows and device columns it uses


def _array_rows(plan, spec, tech):
    """The ``cells`` row and (offset mapping) the ``reference_columns`` row of one crossbar layer."""
    cycles = crossbar_cycles(spec, tech)
    reads = plan.reads
    offset = plan.kind == "offset"
    ref = 1 if offset else 0
    cell_reads = sum(r * (c - ref) for r, c in plan.tiles) * reads * cycles
    # E = activity * V^2 * G * t per device read; uS * ns * V^2 = 1e-15 J = 1e-3 pJ
    cell_energy = tech.input_activity * tech.read_voltage_v ** 2 * plan.mean_conductance_us * tech.read_pulse_ns * 1e-3
    phys = _physical_tiles(plan, spec, tech)
    phys_rows = sum(r for r, _ in phys)
    phys_cells = sum(r * (c - ref) for r, c in phys)
    rows = [_row(plan.name, "cells", phys_cells, cell_reads, phys_cells * tech.cell_area_um2,
                 cell_reads * cell_energy)]
    if offset:
        ref_reads = sum(r for r, _ in plan.tiles) * reads * cycles
        rows.append(_row(plan.name, "reference_columns", phys_rows, ref_reads, phys_rows * tech.cell_area_um2,
                         ref_reads * cell_energy))
    return rows


def _converter_rows(plan, spec, tech):
    """The ``dac``, ``sample_hold``, ``adc`` and ``shift_add`` rows of one crossbar layer."""
    cycles = crossbar_cycles(spec, tech)
    reads = plan.reads
    phys = _physical_tiles(plan, spec, tech)
    phys_rows = sum(r for r, _ in phys)
    phys_cols = sum(c for _, c in phys)
    dac_scale = 2.0 ** (tech.input_bits_per_cycle - 1)  # ASSUMPTION: a k-bit driver costs 2^(k-1) 1-bit drivers
    dac_ops = sum(r for r, _ in plan.tiles) * reads * cycles
    rows = [_row(plan.name, "dac", phys_rows, dac_ops, phys_rows * tech.analog_area("dac_area_um2") * dac_scale,
                 dac_ops * tech.analog_energy("dac_energy_pj") * dac_scale)]
    conversions = sum(c for _, c in plan.tiles) * reads * cycles
    rows.append(_row(plan.name, "sample_hold", phys_cols, conversions,
                     phys_cols * tech.analog_area("sample_hold_area_um2"),
                     conversions * tech.analog_energy("sample_hold_energy_pj")))
    adcs = sum(-(-c // tech.adc_share_columns) for _, c in phys)
    rows.append(_row(plan.name, "adc", adcs, conversions, adcs * tech.adc_area_um2(spec.adc_bits),
                     conversions * tech.adc_energy_pj(spec.adc_bits)))
    shift_adds = math.ceil(adcs * tech.shift_adds_per_adc) if cycles > 1 else 0
    shift_ops = conversions if cycles > 1 else 0
    rows.append(_row(plan.name, "shift_add", shift_adds, shift_ops,
                     shift_adds * tech.analog_area("shift_add_area_um2"),
                     shift_ops * tech.analog_energy("shift_add_energy_pj")))
    return rows


def _digital_rows(plan, tech):
    """The digital periphery rows of one crossbar layer (G_min or pair subtraction, partial sums, bias/activation/
    re-quantization) and their `OpWork`."""
    rows = []
    reads = plan.reads
    if plan.kind == "unipolar":
        # per read: the sum of the int8 input codes (one 16-bit accumulate per row, costed as an ISAAC
        # shift-and-add), one multiply by g_min in code units, then one subtract per output and row tile
        input_sum = reads * plan.rows
        gmin = OpWork(adds=plan.outputs * plan.rails * plan.row_tiles, multiplies=reads)
        rows.append(_row(plan.name, "gmin_correction", 0, gmin.operations + input_sum, 0.0,
                         _digital_energy(gmin, tech) + input_sum * tech.analog_energy("shift_add_energy_pj")))
        # the input sum runs on the shift-and-add units while the array is read: energy, no lane time
    else:
        gmin = OpWork(adds=plan.outputs * plan.rails * plan.row_tiles)
        rows.append(_row(plan.name, "pair_subtraction", 0, gmin.operations, 0.0, _digital_energy(gmin, tech)))
    partial = OpWork(adds=(plan.row_tiles - 1) * plan.outputs * plan.rails)
    rows.append(_row(plan.name, "partial_sums", 0, partial.operations, 0.0, _digital_energy(partial, tech)))
    n = plan.outputs
    post = OpWork(adds=(plan.rails - 1) * n + (n if plan.has_bias else 0), multiplies=n,
                  compares=n + (n if plan.relu else 0))
    rows.append(_row(plan.name, "bias_activation_requant", 0, post.operations, 0.0, _digital_energy(post, tech)))
    return rows, OpWork() + gmin + partial + post


def _network_rows(tech, capacity, buffer):
    """The network-wide rows: the digital lanes, and the activation buffer of ``capacity`` bytes and the traffic
    ``buffer`` (`OpWork`)."""
    lane_area = tech.digital_area("add_area_um2") + tech.digital_area("multiply_area_um2") + tech.digital_area(
        "compare_area_um2")
    traffic = buffer.bytes_read + buffer.bytes_written
    return [_row(NETWORK, "digital_units", tech.digital_lanes, 0, tech.digital_lanes * lane_area, 0.0),
            _row(NETWORK, "activation_buffer", capacity, traffic,
                 capacity * tech.analog_area("buffer_area_um2_per_byte"),
                 traffic * tech.analog_energy("buffer_energy_pj_per_byte"))]


def _shapes(mapping):
    shapes = {mapping.input.name: tuple(mapping.input.shape)}
    for layer in mapping.layers:
        shapes[layer.output] = tuple(layer.output_shape)
    return shapes


@dataclasses.dataclass(frozen=True)
class CostResult:
    """The cost of one scenario of one network.

    Attributes:
        scenario: scenario name.
        kind: mapping kind of the crossbars.
        components: DataFrame, one row per (layer, component): ``layer``,
            ``component``, ``group``, ``count`` (hardware instances),
            ``operations`` (per inference), ``area_um2``, ``energy_pj`` (per
            inference).
        latency: DataFrame, one row per layer: ``layer``, ``kind``
            (crossbar/digital), ``latency_ns``.
        designs: distinct converter and scaling designs: dict ``adc``, ``dac``,
            ``scaling``.
        technology: the `Technology` used.
    """

    scenario: str
    kind: str
    components: pd.DataFrame
    latency: pd.DataFrame
    designs: dict[str, int]
    technology: Technology

    @property
    def area_um2(self) -> float:
        """Total area, um^2 (sum of the component rows)."""
        return float(self.components["area_um2"].sum())

    @property
    def energy_pj(self) -> float:
        """Total energy per inference, pJ (sum of the component rows)."""
        return float(self.components["energy_pj"].sum())

    @property
    def latency_ns(self) -> float:
        """Latency of one inference, ns (sum of the layer rows: layers run one after the other)."""
        return float(self.latency["latency_ns"].sum())

    def group_totals(self, group: str) -> tuple[float, float]:
        """(area um^2, energy pJ per inference) of one component group (``array``, ``periphery``, ``buffer``)."""
        rows = self.components[self.components["group"] == group]
        return float(rows["area_um2"].sum()), float(rows["energy_pj"].sum())

    def energy_for(self, inferences: float) -> float:
        """Energy of ``inferences`` inferences, pJ (linear: no idle or start-up energy is modelled)."""
        if not isinstance(inferences, (int, float)) or isinstance(inferences, bool) or not inferences >= 0:
            raise CostModelError(f"inferences: value {inferences!r} is not allowed; allowed: a number >= 0. Fix: pass "
                                 "a count of inferences.")
        return self.energy_pj * inferences

    def by_component(self) -> pd.DataFrame:
        """DataFrame: totals per component (count, operations, area_um2, energy_pj), in table order."""
        table = self.components.groupby("component", sort=False)[["count", "operations", "area_um2",
                                                                  "energy_pj"]].sum()
        order = [name for name in ORDER if name in table.index]
        table = table.loc[order].reset_index()
        table.insert(1, "group", [COMPONENTS.get(name).group for name in table["component"]])
        return table

    def summary(self) -> dict[str, Any]:
        """One dict: scenario, kind, area per group and total (mm^2), energy per group and total (nJ), latency (us)."""
        row: dict[str, Any] = {"scenario": self.scenario, "kind": self.kind}
        for group in ("array", "periphery", "buffer"):
            area, energy = self.group_totals(group)
            row[f"{group}_area_mm2"] = area * 1e-6
            row[f"{group}_energy_nj"] = energy * 1e-3
        rows = self.components[self.components["component"].isin(CROSSBAR_PERIPHERY)]
        row["xbar_periphery_area_mm2"] = float(rows["area_um2"].sum()) * 1e-6
        row["xbar_periphery_energy_nj"] = float(rows["energy_pj"].sum()) * 1e-3
        row["total_area_mm2"] = self.area_um2 * 1e-6
        row["total_energy_nj"] = self.energy_pj * 1e-3
        row["latency_us"] = self.latency_ns * 1e-3
        row.update({f"{key}_designs": value for key, value in self.designs.items()})
        return row


def network_cost(mapping: Mapping, technology: Technology | str | os.PathLike | None = None, *, kind: str | None = None,
                 per_layer_periphery: bool = False, scenario: str | None = None) -> CostResult:
    """The cost of ``mapping`` (optionally re-tiled for mapping ``kind``, optionally with per-layer periphery).

    Args:
        mapping: a `tf_nvm.mapping.Mapping` (validated).
        technology: `Technology`, preset name or JSON path (default ``isaac-32nm``).
        kind: None (as mapped) or a mapping kind (``"unipolar"``, ``"differential"``,
            ``"offset"``): the same weight matrices on that mapping.
        per_layer_periphery: the full-custom alternative: each crossbar layer has
            its own ADC/DAC design (converter range) and its own scaling block,
            which rescales every output of the layer (one multiply and one add
            per output value) and has ``digital_lanes`` multipliers and adders
            of its own.
        scenario: name of the scenario (default derived from the arguments).

    Returns:
        `CostResult`.

    Raises:
        CostModelError: not a mapping, invalid technology, unknown kind.
    """
    check_mapping(mapping)
    tech = get_technology(technology)
    spec = mapping.spec
    plans = plan_mapping(mapping) if kind is None else plan_as(mapping, kind)
    kind = plans[0].kind if plans else spec.mapping_kind
    by_name = {plan.name: plan for plan in plans}
    shapes = _shapes(mapping)
    rows: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    buffer = OpWork()
    capacity = 0
    lanes_per_ns = tech.digital_lanes * tech.clock_ghz
    t_cycle = cycle_ns(tech)
    cycles = crossbar_cycles(spec, tech)
    for layer in mapping.layers:
        in_shapes = [shapes[name] for name in layer.inputs]
        capacity = max(capacity, sum(math.prod(s) for s in in_shapes) + math.prod(layer.output_shape))
        if isinstance(layer, CrossbarLayer):
            plan = by_name[layer.name]
            layer_rows, work, traffic = layer_components(plan, spec, tech)
            if per_layer_periphery:
                scaling = OpWork(adds=plan.outputs, multiplies=plan.outputs)
                area = tech.digital_lanes * (tech.digital_area("multiply_area_um2") + tech.digital_area("add_area_um2"))
                layer_rows.append(_row(layer.name, "layer_scaling", tech.digital_lanes, scaling.operations, area,
                                       _digital_energy(scaling, tech)))
                work = work + scaling
            rows += layer_rows
            buffer = buffer + traffic
            latency.append({"layer": layer.name, "kind": "crossbar",
                            "latency_ns": plan.reads * cycles * t_cycle + work.operations / lanes_per_ns})
        else:
            work = op_work(layer.op, in_shapes, tuple(layer.output_shape), layer.params)
            rows.append(_row(layer.name, "digital_layers", 0, work.operations, 0.0, _digital_energy(work, tech)))
            buffer = buffer + work
            latency.append({"layer": layer.name, "kind": "digital", "latency_ns": work.operations / lanes_per_ns})
    rows += _network_rows(tech, capacity, buffer)
    layers = len(plans)
    designs = ({"adc": layers, "dac": layers, "scaling": layers} if per_layer_periphery
               else {"adc": min(1, layers), "dac": min(1, layers), "scaling": min(1, layers)})
    if scenario is None:
        scenario = ("per-layer periphery" if per_layer_periphery else "shared periphery") + f" ({kind})"
    return CostResult(scenario, kind, pd.DataFrame(rows, columns=_COLUMNS),
                      pd.DataFrame(latency, columns=["layer", "kind", "latency_ns"]), designs, tech)
