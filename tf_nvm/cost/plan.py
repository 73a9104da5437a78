"""Hardware counts of a mapping: per crossbar layer its tiles, row drivers, device columns and reads.

A `LayerPlan` is what the cost model needs of one crossbar layer: the tiles
(rows used, device columns), the number of crossbar reads per inference, the
mapping kind and the mean conductance of its devices. `plan_mapping` reads them
from a mapping's tiles (the counts ``tf-nvm inspect`` shows in its DACs / ADCs /
reads columns, which a test keeps equal); `plan_as` re-tiles the same weight
matrices for another mapping kind (the "same network, other mapping" scenario; a
block-diagonal depthwise layer is re-planned with the channels per tile that kind allows).
Only programmed devices count: a block-diagonal depthwise layer's tiles, each its used rows x
used device columns (the convention of every partially filled tile).

Numpy only (cost-model layer).
"""

import dataclasses
import math
from typing import Any

import numpy as np

from tf_nvm.core.errors import CostModelError, MappingError
from tf_nvm.core.spec import NVMSpec
from tf_nvm.mapping.device import conductance_table, levels_from_codes
from tf_nvm.mapping.tiling import depthwise_layout, layer_tiles, plan_diagonal_tiles, plan_tiles
from tf_nvm.mapping.network import Mapping

__all__ = ["LayerPlan", "plan_mapping", "plan_as", "spec_for_kind", "MAPPING_KINDS", "check_mapping"]

MAPPING_KINDS = ("unipolar", "differential", "offset")
"""How a weight is realised (`NVMSpec.mapping_kind`)."""


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """One crossbar layer as hardware.

    Attributes:
        name: layer name.
        kind: mapping kind (`MAPPING_KINDS`).
        rows: weight-matrix rows (im2col rows).
        cols: weight-matrix columns (outputs).
        tiles: ((rows used, device columns), ...) per physical crossbar.
        row_tiles: tiles whose column sums one output adds digitally (the grid's row tiles; 1 for a
            block-diagonal depthwise layer, whose every output lives in one tile).
        positions: output positions per inference (1 for dense; im2col patches for convolutions).
        rails: input rails (2: dual-rail model input read in two phases, else 1).
        mean_conductance_us: mean conductance of the layer's devices, uS.
        has_bias: the layer adds a digital bias.
        relu: the layer applies ReLU digitally.
    """

    name: str
    kind: str
    rows: int
    cols: int
    tiles: tuple[tuple[int, int], ...]
    row_tiles: int
    positions: int
    rails: int
    mean_conductance_us: float
    has_bias: bool
    relu: bool

    @property
    def reads(self) -> int:
        """Crossbar reads per inference: output positions x input rails (``inspect``'s reads column)."""
        return self.positions * self.rails

    @property
    def outputs(self) -> int:
        """Output values per inference: positions x columns."""
        return self.positions * self.cols

    @property
    def devices(self) -> int:
        """Devices programmed (reference columns included)."""
        return sum(rows * cols for rows, cols in self.tiles)

    @property
    def row_drivers_used(self) -> int:
        """Row drivers (DACs) in use over all tiles (``inspect``'s DACs column)."""
        return sum(rows for rows, _ in self.tiles)

    @property
    def device_columns(self) -> int:
        """Device columns digitised over all tiles (``inspect``'s ADCs column)."""
        return sum(cols for _, cols in self.tiles)


def check_mapping(mapping: Any) -> Mapping:
    """Raises `CostModelError` unless ``mapping`` is a `Mapping` (which validated itself on construction)."""
    if not isinstance(mapping, Mapping):
        raise CostModelError(f"the cost model needs a tf_nvm.mapping.Mapping, got {type(mapping).__name__}. Fix: load "
                             "one with tf_nvm.mapping.load(PREFIX) or export one with tf-nvm export --mapping.")
    return mapping


def spec_for_kind(spec: NVMSpec, kind: str) -> NVMSpec:
    """``spec`` with the mapping kind ``kind`` (`MAPPING_KINDS`).

    Raises:
        CostModelError: unknown kind.
    """
    if kind not in MAPPING_KINDS:
        raise CostModelError(f"mapping kind {kind!r} is not allowed; allowed: {list(MAPPING_KINDS)}. Fix: pass one of "
                             "those.")
    if kind == "unipolar":
        return spec.replace(unipolar=True)
    return spec.replace(unipolar=False, bipolar_mapping=kind)


def _mean_conductance(blocks, spec):
    """Mean device conductance (uS) of the code blocks ``blocks`` (one 2-D array per tile) realised with ``spec``.

    Codes outside ``spec``'s range are first mapped to it: a unipolar device
    holds ``|code|`` clipped to the top level (ASSUMPTION for the counterfactual
    of a signed network), other kinds clip to their code range. Offset mappings
    include one reference device per block row at the reference level.
    """
    table = conductance_table(spec)
    total, count = 0.0, 0
    for codes in blocks:
        codes = np.asarray(codes, np.int64)
        if spec.mapping_kind == "unipolar":
            codes = np.minimum(np.abs(codes), spec.top_level)
        else:
            codes = np.clip(codes, spec.code_min, spec.code_max)
        levels = levels_from_codes(codes, spec)
        total += float(table[levels].sum())
        count += levels.size
        if spec.reference_level is not None:
            total += float(table[spec.reference_level]) * codes.shape[0]
            count += codes.shape[0]
    return total / max(count, 1)


def _tiles(layer, spec, replan):
    """The layer's tiles on ``spec``: its own layout, or (``replan``) the block-diagonal layout re-planned for it."""
    if layer.channels_per_tile is None or not replan:
        return layer_tiles(layer, spec)
    taps, multiplier = math.prod(layer.kernel_size), layer.cols // layer.in_channels
    channels_per_tile = depthwise_layout(taps, layer.in_channels, multiplier, spec)
    if channels_per_tile is None:  # a channel no longer fits one crossbar of this kind: the grid, same matrix
        return plan_tiles(layer.rows, layer.cols, spec)
    return plan_diagonal_tiles(layer.in_channels, taps, multiplier, channels_per_tile, spec)


def _plan(layer, spec, replan=False):
    positions = math.prod(layer.output_shape[:-1])
    tiles = _tiles(layer, spec, replan)
    # only the devices of the tiles: a block-diagonal depthwise layer programs nothing off its diagonal tiles
    blocks = ([layer.codes] if layer.channels_per_tile is None else
              [layer.codes[t.row_start:t.row_stop, t.col_start:t.col_stop] for t in tiles])
    first = tiles[0].col_tile
    return LayerPlan(
        name=layer.name, kind=spec.mapping_kind, rows=layer.rows, cols=layer.cols,
        tiles=tuple((t.rows_used, t.device_cols) for t in tiles),
        row_tiles=len({t.row_tile for t in tiles if t.col_tile == first}), positions=positions,
        rails=layer.input_rails, mean_conductance_us=_mean_conductance(blocks, spec),
        has_bias=layer.bias is not None, relu=layer.activation == "relu")


def plan_mapping(mapping: Mapping) -> list[LayerPlan]:
    """`LayerPlan` of every crossbar layer of ``mapping`` as it is mapped (its own tiles), in execution order."""
    check_mapping(mapping)
    plans = []
    for layer in mapping.crossbar_layers:
        plan = _plan(layer, mapping.spec)
        recorded = tuple((t.rows_used, t.device_cols) for t in layer.tiles)
        if plan.tiles != recorded:  # the mapping validated its tiles; this guards the two planners agreeing
            raise CostModelError(f"layer {layer.name!r}: the mapping's tiles {recorded[:3]}... differ from the plan "
                                 f"{plan.tiles[:3]}.... Fix: re-export the mapping.")
        plans.append(plan)
    return plans


def plan_as(mapping: Mapping, kind: str) -> list[LayerPlan]:
    """`LayerPlan` of every crossbar layer re-tiled for mapping kind ``kind`` (same weight matrices).

    Raises:
        CostModelError: unknown kind, or the crossbar is too narrow for the kind.
    """
    check_mapping(mapping)
    spec = spec_for_kind(mapping.spec, kind)
    try:
        return [_plan(layer, spec, replan=True) for layer in mapping.crossbar_layers]
    except MappingError as err:
        raise CostModelError(f"cannot re-tile the mapping as {kind!r}: {err}") from None
