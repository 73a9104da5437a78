"""Scenarios from one mapping: as mapped; the same network unipolar vs bipolar; shared vs per-layer periphery.

* ``as mapped``: the mapping's own kind and tiles, one shared ADC/DAC/scaling design.
* ``unipolar`` / ``differential`` / ``offset``: the same weight matrices re-tiled
  for that mapping kind (`tf_nvm.cost.plan.plan_as`); the device conductances of
  a counterfactual follow `tf_nvm.cost.plan` (|code| on a unipolar device).
* ``per-layer periphery``: the full-custom alternative the paper avoids: each
  crossbar layer its own converter design (range) and its own scaling block,
  counted as distinct designs, plus one rescale (multiply + add) per output value
  (`tf_nvm.cost.crossbar.network_cost`, ``per_layer_periphery=True``).

`compare_mappings` gives the unipolar-vs-bipolar reduction of the crossbar
periphery (area and energy per inference; at equal inference rate the power
reduction equals the energy reduction).

Numpy/pandas only (cost-model layer).
"""

import os
from typing import Any

import pandas as pd

from tf_nvm.cost.crossbar import CostResult, network_cost
from tf_nvm.cost.technology import Technology, get_technology
from tf_nvm.mapping.network import Mapping

__all__ = ["standard_scenarios", "compare_mappings", "shared_vs_per_layer", "PAPER_REDUCTION"]

PAPER_REDUCTION = {"area": 0.67, "power": 0.40}
"""The paper's unipolar-vs-bipolar periphery figures (arXiv:1910.13850 abstract: 67 % area, up to 40 % power)."""


def standard_scenarios(mapping: Mapping,
                       technology: Technology | str | os.PathLike | None = None) -> dict[str, CostResult]:
    """{label: `CostResult`}: as mapped (label ``"as mapped (<kind>)"``), the same matrices re-tiled for every other
    mapping kind (``"unipolar"``, ``"differential"``, ``"offset"``), and per-layer periphery as mapped
    (``"per-layer periphery (<kind>)"``); the rows of ``tf-nvm cost``'s summary, in that order."""
    tech = get_technology(technology)
    kind = mapping.spec.mapping_kind
    results = {f"as mapped ({kind})": network_cost(mapping, tech, scenario=f"as mapped ({kind})")}
    for other in ("unipolar", "differential", "offset"):
        if other != kind:
            results[other] = network_cost(mapping, tech, kind=other, scenario=other)
    results[f"per-layer periphery ({kind})"] = network_cost(mapping, tech, per_layer_periphery=True,
                                                           scenario=f"per-layer periphery ({kind})")
    return results


def _reduction(new, old):
    return 1.0 - new / old if old else 0.0


def compare_mappings(mapping: Mapping, technology: Technology | str | os.PathLike | None = None,
                     bipolar: str = "differential") -> dict[str, Any]:
    """Unipolar vs bipolar for the same weight matrices.

    Returns:
        dict: crossbar-periphery area (mm^2) and energy (nJ/inference) of both, their
        reductions (0..1), the same for the whole periphery group (crossbar periphery plus the digital
        units, ``unipolar_periphery_*`` / ``bipolar_periphery_*`` and ``all_periphery_*_reduction``), and
        the paper's figures.
    """
    tech = get_technology(technology)
    uni = network_cost(mapping, tech, kind="unipolar").summary()
    bip = network_cost(mapping, tech, kind=bipolar).summary()
    return {
        "bipolar_mapping": bipolar, "array_sizing": tech.array_sizing,
        "unipolar_xbar_periphery_area_mm2": uni["xbar_periphery_area_mm2"],
        "bipolar_xbar_periphery_area_mm2": bip["xbar_periphery_area_mm2"],
        "area_reduction": _reduction(uni["xbar_periphery_area_mm2"], bip["xbar_periphery_area_mm2"]),
        "unipolar_xbar_periphery_energy_nj": uni["xbar_periphery_energy_nj"],
        "bipolar_xbar_periphery_energy_nj": bip["xbar_periphery_energy_nj"],
        "power_reduction": _reduction(uni["xbar_periphery_energy_nj"], bip["xbar_periphery_energy_nj"]),
        "unipolar_periphery_area_mm2": uni["periphery_area_mm2"],
        "bipolar_periphery_area_mm2": bip["periphery_area_mm2"],
        "unipolar_periphery_energy_nj": uni["periphery_energy_nj"],
        "bipolar_periphery_energy_nj": bip["periphery_energy_nj"],
        "all_periphery_area_reduction": _reduction(uni["periphery_area_mm2"], bip["periphery_area_mm2"]),
        "all_periphery_power_reduction": _reduction(uni["periphery_energy_nj"], bip["periphery_energy_nj"]),
        "paper_area_reduction": PAPER_REDUCTION["area"], "paper_power_reduction": PAPER_REDUCTION["power"],
    }


def shared_vs_per_layer(mapping: Mapping, technology: Technology | str | os.PathLike | None = None) -> pd.DataFrame:
    """DataFrame with one row per design choice (shared, per-layer): distinct designs, area, energy, latency."""
    tech = get_technology(technology)
    rows = []
    for per_layer in (False, True):
        result = network_cost(mapping, tech, per_layer_periphery=per_layer)
        summary = result.summary()
        rows.append({"periphery": "per-layer custom" if per_layer else "shared (one design)",
                     "adc_designs": result.designs["adc"], "dac_designs": result.designs["dac"],
                     "scaling_designs": result.designs["scaling"],
                     "periphery_area_mm2": summary["periphery_area_mm2"],
                     "periphery_energy_nj": summary["periphery_energy_nj"],
                     "total_area_mm2": summary["total_area_mm2"], "total_energy_nj": summary["total_energy_nj"],
                     "latency_us": summary["latency_us"]})
    return pd.DataFrame(rows)
