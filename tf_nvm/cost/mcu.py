"""Microcontroller baseline: the same network as int8 TFLite on a Cortex-M core.

From a parsed ``.tflite`` graph (`tflite_export.read_tflite` returns one; this
module only reads its ``operators``, ``tensors`` and ``size_bytes``, so it
imports neither TensorFlow nor ``tflite_export``): per operator the MACs
(convolution: output values x kernel height x width x input channels;
depthwise: output values x kernel size; fully connected: output values x
inputs) and the output values; flash = the model bytes; RAM = the TFLite Micro
arena (measured by ``tf-nvm cost`` / ``tflite_export.measure_arena`` and passed
in). Cycles = MACs / ``macs_per_cycle`` + other output values x
``cycles_per_value``; latency = cycles / clock; energy = cycles x
``current_ua_per_mhz`` x ``supply_v`` (the datasheet's run current scales with
the clock, so the energy per cycle does not depend on it).

Sources (``docs/cost_model.md``, "MCU baseline", gives the derivations and a check
against MLPerf Tiny): the ``cortex-m4f`` ``macs_per_cycle``, run current and supply
come from the MLPerf Tiny v0.5 reference submission (TFLite Micro v2.3.1 with
CMSIS-NN on a Nucleo-L4R5ZI, Cortex-M4F at 120 MHz, 1.8 V; repository
mlcommons/tiny_results_v0.5, ``closed/reference``): 0.148 MAC/cycle is the
image-classification ResNet's 12.50 M MACs (counted by `op_table` on the
published ``.tflite``) over its measured 704 ms x 120 MHz; 192 uA/MHz is its
measured 41.5 mW / 1.8 V / 120 MHz. ``cycles_per_value`` and every ``cortex-m7``
constant except the clock are still ASSUMPTIONS. Override any of them with
`McuCore` or ``tf-nvm cost --set mcu.<core>.<key>=value``.

Numpy/pandas only (cost-model layer).
"""

import dataclasses
import math
from typing import Any

import pandas as pd

from tf_nvm.core.errors import CostModelError
from tf_nvm.core.registry import Registry

__all__ = ["McuCore", "MCU_CORES", "check_tflite_bytes", "op_table", "mcu_cost", "MCU_COLUMNS", "MAX_MACS"]

TFLITE_IDENTIFIER = b"TFL3"


@dataclasses.dataclass(frozen=True)
class McuCore:
    """A Cortex-M core as the baseline runs on it.

    Attributes:
        name: core / device label.
        clock_mhz: CPU clock, MHz.
        macs_per_cycle: sustained int8 MACs per cycle of CMSIS-NN convolution and
            fully-connected kernels.
        cycles_per_value: cycles per output value of other ops (requantisation,
            pooling, elementwise).
        current_ua_per_mhz: run-mode supply current per MHz, uA/MHz.
        supply_v: supply voltage, V.
    """

    name: str
    clock_mhz: float
    macs_per_cycle: float
    cycles_per_value: float
    current_ua_per_mhz: float
    supply_v: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 0 < len(self.name) <= 200:
            raise CostModelError(f"mcu core name: value {str(self.name)[:80]!r} ({type(self.name).__name__}) is not "
                                 "allowed; allowed: a text of 1 to 200 characters. Fix: e.g. --set "
                                 "mcu.cortex-m7.name=\"my board\".")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "name":
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not _finite(value) or value <= 0:
                raise CostModelError(f"mcu core {self.name!r}.{field.name}: value {repr(value)[:40]} is not allowed; "
                                     "allowed: a finite number > 0. Fix: pass a positive value.")

    @property
    def energy_per_cycle_nj(self) -> float:
        """Energy of one cycle, nJ: ``current_ua_per_mhz * 1e-6 A/MHz / 1e6 Hz/MHz * supply_v`` in J, x 1e9."""
        return self.current_ua_per_mhz * 1e-12 * self.supply_v * 1e9


def _finite(value):
    """Whether a number is finite as a float (an integer of 400 digits is not: float() overflows)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


MCU_CORES = Registry("MCU core", error=CostModelError)
"""Named cores of the baseline (sources and remaining ASSUMPTIONS: docs/cost_model.md, "MCU baseline")."""
# macs_per_cycle, current_ua_per_mhz, supply_v: MLPerf Tiny v0.5 reference (TFLM v2.3.1 + CMSIS-NN,
# Nucleo-L4R5ZI, 120 MHz, 1.8 V), image classification; cycles_per_value: assumption.
MCU_CORES.register("cortex-m4f", McuCore("cortex-m4f (STM32L4-class, 80 MHz)", 80.0, 0.148, 4.0, 192.0, 1.8),
                   description="Cortex-M4F at 80 MHz; MAC rate and energy per cycle from the MLPerf Tiny v0.5 "
                               "reference run (TFLM + CMSIS-NN, STM32L4R5); cycles_per_value assumed")
# clock: the STM32F746 at 216 MHz of the MLPerf Tiny DISCO-F746NG systems (Plumerai, Bosch);
# macs_per_cycle, cycles_per_value, current_ua_per_mhz, supply_v: assumptions.
MCU_CORES.register("cortex-m7", McuCore("cortex-m7 (STM32F7-class, 216 MHz)", 216.0, 0.58, 2.0, 450.0, 3.3),
                   description="Cortex-M7 at 216 MHz, STM32F7-class (MAC rate and run current assumed)")

MCU_COLUMNS = ["index", "op", "output_values", "macs"]


def check_tflite_bytes(content: bytes, what: str = "--tflite") -> bytes:
    """Raises `CostModelError` unless ``content`` (bytes) carries the TFLite flatbuffer identifier ``TFL3``."""
    if not isinstance(content, (bytes, bytearray)) or len(content) < 8 or bytes(content[4:8]) != TFLITE_IDENTIFIER:
        head = bytes(content[4:8]) if isinstance(content, (bytes, bytearray)) else type(content).__name__
        raise CostModelError(f"{what}: not a TFLite flatbuffer (identifier {head!r}, expected {TFLITE_IDENTIFIER!r}). "
                             "Fix: pass the .tflite file written by tf-nvm export --tflite.")
    return content


MAX_MACS = 10 ** 12
"""Most multiply-accumulates a model may declare in total (a MobileNet on 224x224 images: about 6e8)."""
_FIX = "Fix: pass the .tflite file written by tf-nvm export --tflite."


def _size(shape, where):
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise CostModelError(f"TFLite model: {where} has shape {dims}; allowed: sizes >= 0. {_FIX}")
    return math.prod(dims)


def _tensor(graph, index, where):
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(graph.tensors):
        raise CostModelError(f"TFLite model: {where} is tensor index {index!r}; allowed: 0 to {len(graph.tensors) - 1} "
                             f"(the graph has {len(graph.tensors)} tensors). {_FIX}")
    return graph.tensors[index]


_WEIGHT_RANK = {"CONV_2D": 4, "DEPTHWISE_CONV_2D": 4, "FULLY_CONNECTED": 2}


def op_table(graph: Any) -> pd.DataFrame:
    """DataFrame, one row per operator: ``index``, ``op``, ``output_values``, ``macs``.

    Args:
        graph: a parsed TFLite graph (``operators`` with ``op``/``inputs``/``outputs``,
            ``tensors`` with ``shape``).

    Raises:
        CostModelError: a tensor index out of range (an omitted weights tensor,
            -1, included), a negative size, a weights tensor of the wrong rank, or
            more than `MAX_MACS` multiply-accumulates in total.
    """
    rows = []
    total = 0
    for op in graph.operators:
        where = f"operator {op.index} ({op.op})"
        out = _tensor(graph, op.outputs[0], f"{where}: output 0") if op.outputs else None
        values = _size(out.shape, f"{where}: output tensor {out.index}") if out is not None else 0
        macs = 0
        if op.op in _WEIGHT_RANK and len(op.inputs) > 1:
            weights = _tensor(graph, op.inputs[1], f"{where}: the weights (input 1)")
            shape = tuple(weights.shape)
            _size(shape, f"{where}: weights tensor {weights.index}")
            if len(shape) != _WEIGHT_RANK[op.op]:
                raise CostModelError(f"TFLite model: {where}: weights tensor {weights.index} has shape {shape}; "
                                     f"allowed: {_WEIGHT_RANK[op.op]} dimensions. {_FIX}")
            if op.op == "CONV_2D":       # weights [out, kh, kw, in]
                macs = values * math.prod(shape[1:])
            elif op.op == "DEPTHWISE_CONV_2D":  # weights [1, kh, kw, out]
                macs = values * math.prod(shape[1:3])
            else:                        # weights [out, in]
                macs = values * shape[-1]
        total += macs
        if total > MAX_MACS:
            raise CostModelError(f"TFLite model: the operators up to {where} declare {total:.3g} multiply-accumulates; "
                                 f"at most {MAX_MACS:.0e} are allowed (shapes this large are no MCU model). {_FIX}")
        rows.append({"index": op.index, "op": op.op, "output_values": values, "macs": macs})
    return pd.DataFrame(rows, columns=MCU_COLUMNS)


def mcu_cost(graph: Any, core: McuCore | str, arena_bytes: int | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-operator and total cost of the model on ``core``.

    Args:
        graph: a parsed TFLite graph (see `op_table`) with ``size_bytes``.
        core: `McuCore` or a name in `MCU_CORES`.
        arena_bytes: the TFLite Micro arena (RAM), bytes, or None when not measured.

    Returns:
        (DataFrame per operator with ``cycles``, ``latency_us``, ``energy_nj``;
        dict of totals: ``core``, ``flash_bytes``, ``ram_bytes``, ``macs``, ``cycles``,
        ``latency_us``, ``energy_nj``).
    """
    cpu: McuCore = MCU_CORES.resolve(core, McuCore)
    table = op_table(graph)
    other = table["output_values"].where(table["macs"] == 0, 0)
    table["cycles"] = table["macs"] / cpu.macs_per_cycle + other * cpu.cycles_per_value
    table["latency_us"] = table["cycles"] / cpu.clock_mhz
    table["energy_nj"] = table["cycles"] * cpu.energy_per_cycle_nj
    totals = {"core": cpu.name, "flash_bytes": int(graph.size_bytes),
              "ram_bytes": None if arena_bytes is None else int(arena_bytes), "macs": int(table["macs"].sum()),
              "cycles": float(table["cycles"].sum()), "latency_us": float(table["latency_us"].sum()),
              "energy_nj": float(table["energy_nj"].sum())}
    return table, totals
