"""Tables (pandas) and PNG plots (matplotlib, stacked bars by component) of cost results, written atomically.

Numpy/pandas/matplotlib only (cost-model layer).
"""

import os

import pandas as pd

from tf_nvm.cost.crossbar import ORDER, CostResult
from tf_nvm.core.plots import pyplot, write_png
from tf_nvm.core.tables import write_table

__all__ = ["component_table", "plot_components", "plot_crossbar_vs_mcu", "write_table"]

_UNITS = {"area_um2": ("area", "mm$^2$", 1e-6), "energy_pj": ("energy per inference", "nJ", 1e-3)}


def component_table(results: dict[str, CostResult]) -> pd.DataFrame:
    """DataFrame: one row per (scenario, component) with group, count, operations, area (mm^2), energy (nJ).

    Args:
        results: {label: `CostResult`}.
    """
    frames = []
    for label, result in results.items():
        table = result.by_component()
        table.insert(0, "scenario", label)
        frames.append(table)
    table = pd.concat(frames, ignore_index=True)
    table["area_mm2"] = table.pop("area_um2") * 1e-6
    table["energy_nj"] = table.pop("energy_pj") * 1e-3
    return table


def plot_components(results: dict[str, CostResult], metric: str, path: str | os.PathLike, title: str) -> str:
    """Stacked bars, one bar per scenario, one segment per component.

    Args:
        results: {label: `CostResult`}.
        metric: ``"area_um2"`` or ``"energy_pj"``.
        path: PNG file.
        title: plot title.
    """
    plt = pyplot()
    name, unit, factor = _UNITS[metric]
    labels = list(results)
    totals = {label: result.by_component().set_index("component")[metric] * factor
              for label, result in results.items()}
    figure, axis = plt.subplots(figsize=(max(5.0, 1.8 * len(labels) + 3), 4.5))
    bottom = [0.0] * len(labels)
    for index, component in enumerate(ORDER):
        values = [float(totals[label].get(component, 0.0)) for label in labels]
        if not any(values):
            continue
        axis.bar(labels, values, bottom=bottom, label=component, color=plt.cm.tab20(index % 20))
        bottom = [b + v for b, v in zip(bottom, values)]
    axis.set_title(title)
    axis.set_xlabel("scenario")
    axis.set_ylabel(f"{name} ({unit})")
    axis.legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    axis.tick_params(axis="x", labelrotation=15)
    return write_png(figure, path)


def plot_crossbar_vs_mcu(table: pd.DataFrame, path: str | os.PathLike, title: str) -> str:
    """Two bar panels (energy and latency per inference, log scale), one bar per platform.

    Args:
        table: DataFrame with ``platform``, ``energy_nj``, ``latency_us``.
    """
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, column, label in ((axes[0], "energy_nj", "energy per inference (nJ)"),
                                (axes[1], "latency_us", "latency per inference (us)")):
        axis.bar(table["platform"], table[column])
        axis.set_yscale("log")
        axis.set_xlabel("platform")
        axis.set_ylabel(label)
        axis.tick_params(axis="x", labelrotation=15)
    figure.suptitle(title)
    return write_png(figure, path)
