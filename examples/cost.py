"""Hardware cost of a crossbar mapping: area, energy and latency; unipolar vs bipolar; shared vs per-layer.

Needs no TensorFlow. Reads a mapping written by `tf-nvm export --mapping` or examples/export_and_compare.py.

Run: python examples/cost.py [MAPPING_PREFIX]
"""

import sys

import pandas as pd

from tf_nvm import mapping
from tf_nvm.cost import Technology, compare_mappings, network_cost, shared_vs_per_layer

prefix = sys.argv[1] if len(sys.argv) > 1 else "exports/har-2bit-unipolar/mapping"
m = mapping.load(prefix)
tech = Technology(array_sizing="fit")  # every constant cited in docs/cost_model.md
result = network_cost(m, tech)
summary = result.summary()              # one dict: area (mm^2), energy (nJ) per group, latency (us) per inference
print(pd.DataFrame([{"part": group, "area (mm^2)": summary[f"{group}_area_mm2"],
                     "energy (nJ)": summary[f"{group}_energy_nj"]} for group in ("array", "periphery", "buffer", "total")
                    ]).to_string(index=False, float_format="{:.4f}".format))
print(f"latency: {summary['latency_us']:.2f} us per inference")
print(result.by_component().to_string(index=False, float_format="{:.1f}".format))  # per block: cells, DACs, ADCs, S&H, shift-add, digital, buffers
comparison = compare_mappings(m, tech)  # the same weights mapped unipolar vs differential
print(f"unipolar vs bipolar: periphery area -{100 * comparison['area_reduction']:.1f} % (paper 67 %), "
      f"power -{100 * comparison['power_reduction']:.1f} % (paper 40 %)")
print(shared_vs_per_layer(m, tech).to_string(index=False, float_format="{:.4f}".format))  # one shared converter design vs per-layer custom periphery
