"""The hardware cost model: area, energy and latency of a mapped network, beside a microcontroller baseline.

Reads only the crossbar mapping (`tf_nvm.mapping`) and a parsed ``.tflite``
graph; imports no TensorFlow (numpy, pandas; matplotlib for plots).

Modules: `technology` (the `Technology` dataclass, presets, JSON and
``key=value`` overrides, every constant cited in ``docs/cost_model.md``), `plan`
(hardware counts of each crossbar layer from the mapping's tiles), `digital`
(work of each digital op), `crossbar` (component area / energy / latency,
`network_cost`), `scenarios` (as mapped, unipolar vs bipolar, shared vs
per-layer periphery), `mcu` (Cortex-M baseline from the TFLite graph),
`report` (tables and plots).

Example:
    >>> from tf_nvm import mapping
    >>> from tf_nvm.cost import network_cost, compare_mappings
    >>> m = mapping.load("har_xbar")
    >>> print(network_cost(m).summary())
    >>> print(compare_mappings(m))   # unipolar vs bipolar periphery, beside the paper's 67 % / 40 %
"""

from tf_nvm.cost.crossbar import COMPONENTS, CROSSBAR_PERIPHERY, CostResult, network_cost
from tf_nvm.cost.mcu import MCU_CORES, McuCore, check_tflite_bytes, mcu_cost, op_table
from tf_nvm.cost.plan import LayerPlan, plan_as, plan_mapping
from tf_nvm.cost.scenarios import PAPER_REDUCTION, compare_mappings, shared_vs_per_layer, standard_scenarios
from tf_nvm.cost.technology import TECHNOLOGIES, Technology, apply_settings, get_technology, load_technology

__all__ = [
    "Technology",
    "TECHNOLOGIES",
    "get_technology",
    "load_technology",
    "apply_settings",
    "LayerPlan",
    "plan_mapping",
    "plan_as",
    "COMPONENTS",
    "CROSSBAR_PERIPHERY",
    "CostResult",
    "network_cost",
    "standard_scenarios",
    "compare_mappings",
    "shared_vs_per_layer",
    "PAPER_REDUCTION",
    "McuCore",
    "MCU_CORES",
    "check_tflite_bytes",
    "op_table",
    "mcu_cost",
]
