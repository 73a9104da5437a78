"""The exact numpy evaluator of a crossbar mapping: the executable semantics of the format.

`evaluate` reads only the mapping (a `Mapping`, or the files through
`tf_nvm.mapping.load`) and computes what the crossbars and the digital
periphery compute, in integers: int8 input codes on the DAC rows; per tile and
per device column the column sums ``sum q * level`` (the G_min offset already
removed); the pair / reference-column subtraction; dual-rail phases; the
digital sum of row tiles (only the tiles listed exist: a block-diagonal
depthwise layer's entries outside its diagonal tiles are structural zeros);
then bias, one float32 product with the weight scale, activation and
re-quantisation; and every digital step with the
reference function of its entry in `tf_nvm.mapping.ops.DIGITAL_OPS`.

It is the oracle of the simulator: its outputs equal the Keras NVM model's
(``model.predict``) and LiteRT's on the int8 grid. Imports no TensorFlow.
Examples are evaluated in batches whose int64 im2col patches stay within
`PATCH_BUDGET_BYTES` per crossbar layer (`examples_per_batch`), so memory does
not grow with the number of examples.
"""

import dataclasses
import math
from typing import Any

import numpy as np

from tf_nvm.core.errors import MappingError
from tf_nvm.core.grid import rint_clip
from tf_nvm.core.spec import NVMSpec
from tf_nvm.core.validate import is_kind
from tf_nvm.mapping.reader import load
from tf_nvm.mapping.ops import DIGITAL_OPS
from tf_nvm.mapping.tiling import channel_major_rows
from tf_nvm.mapping.network import Mapping
from tf_nvm.mapping.types import CrossbarLayer

__all__ = ["MappingOutputs", "evaluate", "grid_steps", "crossbar_forward", "im2col", "examples_per_batch",
           "PATCH_BUDGET_BYTES"]

PATCH_BUDGET_BYTES = 256 * 2 ** 20
"""Bytes of int64 patches (examples x output positions x rows x 8) one crossbar layer may hold in `evaluate`.

Unbatched, 2,000 CIFAR-10 images through a unipolar 3x3 convolution of 64 input channels at 32x32 (576 rows)
need 9.4 GB of patches: the full ``paper-cifar10`` run was killed for lack of memory (24 GiB) there.
"""


@dataclasses.dataclass(frozen=True, eq=False)
class MappingOutputs:
    """What `evaluate` returns: the codes of every network output and their grid steps.

    Attributes:
        codes: ``{output tensor name: int64 codes}``, examples first, in the
            order of ``Mapping.outputs``.
        steps: ``{output tensor name: grid step}`` (model units per code: the
            shared step A/128, or 1/256 for softmax probabilities).
    """

    codes: dict
    steps: dict

    @property
    def names(self) -> tuple[str, ...]:
        """Output tensor names, in the mapping's order (tuple of str)."""
        return tuple(self.codes)

    def values(self, name: str | None = None) -> np.ndarray:
        """Float values ``codes * step`` (float64, model units) of output ``name`` (default: the first).

        Raises:
            MappingError: ``name`` is not an output.
        """
        name = self.names[0] if name is None else name
        if name not in self.codes:
            raise MappingError(f"MappingOutputs.values: {name!r} is not an output; outputs: {list(self.names)}. "
                               "Fix: pass one of those names, or None for the first.")
        return self.codes[name] * self.steps[name]


def _take_last(x, index):
    return x[..., index]


def im2col(q: Any, layer: CrossbarLayer, pad: Any = np.pad, concat: Any = np.concatenate,
           take: Any = _take_last) -> Any:
    """Input codes ``[N, *spatial, C]`` -> patches ``[N, *out_spatial, rows]`` of a convolution layer.

    Rows are in the layer's `row_order`: kernel position major (C order), channel
    fastest, or channel major for a block-diagonal depthwise layer
    (`tf_nvm.mapping.tiling.channel_major_rows`); the layer's explicit ``pads`` are
    applied with code 0. ``pad``, ``concat`` and ``take(x, index)`` (a gather on the
    last axis) are numpy's by default (the simulator passes TensorFlow's).
    """
    x = pad(q, [(0, 0)] + [tuple(p) for p in layer.pads] + [(0, 0)])
    out_spatial = tuple(layer.output_shape[:-1])
    cols = []
    for offsets in np.ndindex(*layer.kernel_size):
        cols.append(x[(slice(None),) + tuple(slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in
                                             zip(offsets, layer.dilation, layer.strides, out_spatial))])
    patches = concat(cols, axis=-1)  # [N, *out_spatial, prod(kernel) * C] = [N, *out_spatial, rows]
    if layer.channels_per_tile is not None:
        patches = take(patches, channel_major_rows(math.prod(layer.kernel_size), layer.in_channels))
    return patches


def crossbar_forward(q: np.ndarray, layer: CrossbarLayer, spec: NVMSpec) -> np.ndarray:
    """Exact output codes of a crossbar layer.

    Args:
        q: int64 input codes ``[N, *input_shape]``.
        layer: `CrossbarLayer`.
        spec: the mapping's `NVMSpec`.

    Returns:
        int64 codes ``[N, *output_shape]`` on the shared grid.
    """
    patches = q if layer.op == "dense" else im2col(q, layer)
    flat = patches.reshape(-1, layer.rows).astype(np.int64, copy=False)
    acc = np.zeros((flat.shape[0], layer.cols), np.int64)
    for tile in layer.tiles:
        levels = layer.levels[tile.row_start:tile.row_stop, tile.col_start:tile.col_stop].astype(np.int64)
        part = np.zeros((flat.shape[0], tile.col_stop - tile.col_start), np.int64)
        rows = flat[:, tile.row_start:tile.row_stop]
        rails = [rows] if layer.input_rails == 1 else [np.maximum(rows, 0), np.maximum(-rows, 0)]
        for sign, x in zip((1, -1), rails):
            columns = [x @ levels[..., d] for d in range(levels.shape[-1])]  # one ADC result per device column
            if len(columns) == 2:  # differential pair: G+ - G-
                column_sum = columns[0] - columns[1]
            elif layer.reference_level is not None:  # offset mapping: subtract the reference column
                column_sum = columns[0] - x.sum(axis=1, keepdims=True) * layer.reference_level
            else:
                column_sum = columns[0]
            part += sign * column_sum
        acc[:, tile.col_start:tile.col_stop] += part  # digital partial-sum accumulation
    if layer.bias_int32 is not None:
        acc = acc + layer.bias_int32.astype(np.int64)
    v = acc.astype(np.float32) * np.float32(spec.weight_scale)  # one float32 product, as the runtimes
    if layer.activation == "relu":
        v = np.maximum(v, 0)
    return rint_clip(v).reshape((q.shape[0],) + tuple(layer.output_shape))


def _input_step(layer, moves_codes, steps, shared):
    """The one grid step of a layer's inputs; MappingError if the layer cannot read them.

    A layer that moves codes reads any one grid; every other layer (crossbars
    included) needs the shared grid A/128.
    """
    found = {steps[name] for name in layer.inputs}
    if len(found) > 1 or (not moves_codes and found != {shared}):
        needed = "inputs on one grid" if moves_codes else f"inputs on the shared grid (step {shared!r})"
        raise MappingError(
            f"layer {layer.name!r} (op {layer.op!r}) reads tensors {list(layer.inputs)} on grid steps "
            f"{sorted(found)}; it needs {needed}. Fix: apply softmax only as the last step of the network.")
    return found.pop()


def grid_steps(mapping: Mapping) -> dict[str, float]:
    """The grid step of every tensor of a mapping (model units per code), checking that each layer can read its inputs.

    Returns:
        ``{tensor name: step}``: the shared step A/128, or an op's own output step (softmax: 1/256).

    Raises:
        MappingError: a layer reads tensors on different grids, or a value-computing layer (a crossbar too) reads
            a tensor that is not on the shared grid.
    """
    shared = mapping.spec.activation_step
    steps = {mapping.input.name: shared}
    for layer in mapping.layers:
        if layer.kind == "crossbar":
            _input_step(layer, False, steps, shared)
            steps[layer.output] = shared
        else:
            op = DIGITAL_OPS.get(layer.op)
            step = _input_step(layer, op.moves_codes, steps, shared)
            steps[layer.output] = op.output_step if op.output_step is not None else step
    return steps


def evaluate(path_or_mapping: Any, x: Any, batch_size: int | None = None) -> "MappingOutputs":
    """Runs the mapping on standardised model inputs ``x``, ``batch_size`` examples at a time.

    Args:
        path_or_mapping: a `Mapping`, or a mapping prefix / ``.json`` file (loaded with `load`).
        x: float model inputs (model units, standardised), ``[N, *mapping.input.shape]``.
        batch_size: examples per batch (the results do not depend on it), or None: `examples_per_batch`,
            which keeps every crossbar layer's patches within `PATCH_BUDGET_BYTES`.

    Returns:
        `MappingOutputs`: int64 codes of every output tensor and their grid steps.

    Raises:
        MappingError: an unreadable or invalid mapping, inputs of the wrong
            shape, a bad ``batch_size``, or an op reading a tensor on another grid than it needs.
    """
    mapping = path_or_mapping if isinstance(path_or_mapping, Mapping) else load(path_or_mapping)
    x = np.asarray(x)
    expected = tuple(mapping.input.shape)
    if x.ndim != len(expected) + 1 or x.shape[1:] != expected:
        raise MappingError(f"evaluate: inputs have shape {list(x.shape)}; the mapping expects [N, "
                           f"{', '.join(map(str, expected))}]. Fix: pass a batch of standardised examples.")
    if batch_size is None:
        batch_size = examples_per_batch(mapping)
    elif not (is_kind(batch_size, "int") or isinstance(batch_size, np.integer)) or batch_size < 1:
        raise MappingError(f"evaluate: batch_size must be an integer >= 1 or None, got {batch_size!r}. Fix: pass "
                           "e.g. 64, or None to bound the memory automatically.")
    steps = grid_steps(mapping)
    parts = [_evaluate_batch(mapping, x[start:start + batch_size]) for start in range(0, len(x), batch_size) or [0]]
    codes = {name: np.concatenate([part[name] for part in parts]) for name in mapping.outputs}
    return MappingOutputs(codes, {name: steps[name] for name in mapping.outputs})


def _evaluate_batch(mapping, x):
    """Output codes ``{output name: int64 [len(x), ...]}`` of one batch of standardised inputs."""
    spec = mapping.spec
    tensors = {mapping.input.name: mapping.input.quantize(x).astype(np.int64)}
    for layer in mapping.layers:
        inputs = [tensors[name] for name in layer.inputs]
        if layer.kind == "crossbar":
            tensors[layer.output] = crossbar_forward(inputs[0], layer, spec)
        else:
            tensors[layer.output] = DIGITAL_OPS.get(layer.op).reference(inputs, layer, spec)
    return {name: tensors[name] for name in mapping.outputs}


def examples_per_batch(mapping: Mapping, budget: int | None = None) -> int:
    """The most examples whose int64 patches fit ``budget`` bytes in every crossbar layer (at least 1).

    Args:
        mapping: a `Mapping`.
        budget: bytes of patches allowed per crossbar layer (default `PATCH_BUDGET_BYTES`).

    Returns:
        int >= 1.
    """
    per_example = 1
    for layer in mapping.crossbar_layers:
        positions = int(np.prod(layer.input_shape[:-1] if layer.op == "dense" else layer.output_shape[:-1]))
        per_example = max(per_example, positions * layer.rows * 8)
    return max(1, int(PATCH_BUDGET_BYTES if budget is None else budget) // per_example)
