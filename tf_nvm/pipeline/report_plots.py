"""The plots of the `tf-nvm run` report (PNG, matplotlib through `tf_nvm.core.plots`), from the step markers:
the training metric per variant, the metric vs time after programming, the conductance levels, crossbar vs
microcontroller, and the area and energy by component (unipolar vs bipolar vs per-layer periphery).

Each function writes one PNG (two for `plot_periphery`) and returns its path.
"""

import os
from typing import Any

import numpy as np
import pandas as pd

from tf_nvm import mapping as mapping_io
from tf_nvm.core.plots import pyplot, write_png
from tf_nvm.cost import network_cost
from tf_nvm.cost.report import plot_components
from tf_nvm.pipeline.report_tables import metric_of

__all__ = ["plot_accuracy", "plot_sweep", "plot_levels", "plot_mcu", "plot_periphery"]


def _scale(metric):
    """Plot factor and axis words of ``metric``: accuracy in %, errors in model units."""
    return (100, "test accuracy (%)") if metric == "accuracy" else (1, f"test {metric.upper()} (target units)")


def plot_accuracy(found: dict, path: str, preset: str) -> str:
    """Bars of the training metric per variant: accuracy in %, or the error (MSE) in model units."""
    plt = pyplot()
    names = list(found)
    metric = metric_of(found)
    factor, ylabel = _scale(metric)
    series = {
        "float (seeds)": [(v["metrics"][f"float_test_{metric}_summary"]["mean"],
                           v["metrics"][f"float_test_{metric}_summary"]["std"]) for v in found.values()],
        "NVM, Keras (seeds)": [(v["metrics"][f"test_{metric}_summary"]["mean"],
                                v["metrics"][f"test_{metric}_summary"]["std"]) for v in found.values()],
        "crossbar ideal": [(v["simulate"].get(f"ideal_{metric}", v["simulate"]["summary"].get(f"ideal_{metric}",
                                                                                              np.nan)), 0.0)
                           for v in found.values()],
        f"crossbar {preset} (chips)": [(v["simulate"]["summary"].get(f"{metric}_mean", np.nan),
                                        v["simulate"]["summary"].get(f"{metric}_std", 0.0)) for v in found.values()],
    }
    figure, axis = plt.subplots(figsize=(1.9 * len(names) + 3, 4.5))
    width = 0.8 / len(series)
    for index, (label, values) in enumerate(series.items()):
        xs = np.arange(len(names)) + (index - (len(series) - 1) / 2) * width
        axis.bar(xs, [factor * m for m, _ in values], width, yerr=[factor * s for _, s in values], capsize=3,
                 label=label)
    if metric == "accuracy":
        low = min(100 * m for values in series.values() for m, _ in values)
        axis.set_ylim(max(0.0, low - 5), 100)
    else:
        axis.set_ylim(0, 1.25 * max(m + s for values in series.values() for m, s in values if np.isfinite(m)))
    axis.set_xticks(np.arange(len(names)), names)
    axis.set_title(f"Test {'accuracy' if metric == 'accuracy' else metric.upper()} per variant (error bars: std "
                   "over seeds or chips)")
    axis.set_xlabel("variant (training recipe)")
    axis.set_ylabel(ylabel)
    axis.legend(fontsize="small", loc="upper center", ncol=len(series))  # above the bars, below the top
    return write_png(figure, path)


def plot_sweep(found: dict, path: str, preset: str) -> str:
    """The chips' metric (mean and std) vs time after programming, one line per variant (log time axis)."""
    plt = pyplot()
    metric = next(iter(found.values()))["simulate"].get("metric", "accuracy")
    factor, ylabel = _scale(metric)
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    for name, v in found.items():
        sweep = v["simulate"]["sweep"]
        if sweep:
            axis.errorbar([p["t_inference"] for p in sweep], [factor * p["mean"] for p in sweep],
                          yerr=[factor * p["std"] for p in sweep], marker="o", capsize=3, label=name)
    axis.set_xscale("log")
    axis.set_title(f"Crossbar {'accuracy' if metric == 'accuracy' else metric.upper()} vs time after programming "
                   f"({preset}, drift-compensated)")
    axis.set_xlabel("t_inference (s, log scale)")
    axis.set_ylabel(f"{ylabel}, mean ± std over chips")
    axis.legend(fontsize="small")
    return write_png(figure, path)


def plot_levels(found: dict, path: str) -> str:
    """Conductance-level histograms, one panel per crossbar layer of each variant."""
    plt = pyplot()
    layers = [(name, layer, counts) for name, v in found.items() for layer, counts in v["simulate"]["levels"].items()]
    cols = 3
    rows = -(-len(layers) // cols)
    figure, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for axis in axes.ravel()[len(layers):]:
        axis.set_visible(False)
    for axis, (name, layer, counts) in zip(axes.ravel(), layers):
        axis.bar(range(len(counts)), counts)
        axis.set_title(f"{name}\n{layer}", fontsize="small")
        axis.set_xlabel("conductance level")
        axis.set_ylabel("devices")
    figure.suptitle("Conductance-level histograms per crossbar layer")
    figure.tight_layout()
    return write_png(figure, path)


def plot_mcu(table: pd.DataFrame, path: str) -> str:
    """Energy and latency per inference, grouped by variant, one colour per platform (legend), log axes."""
    plt = pyplot()
    variants = list(dict.fromkeys(table["variant"]))
    platforms = list(dict.fromkeys(table["platform"]))
    colours = plt.get_cmap("tab10")
    figure, axes = plt.subplots(1, 2, figsize=(max(10.0, 2.2 * len(variants) + 6), 4.8))
    width = 0.8 / len(platforms)
    for axis, column, quantity, unit, scale in ((axes[0], "energy per inference nJ", "energy", "J", 1e-9),
                                                (axes[1], "latency us", "latency", "s", 1e-6)):
        for index, platform_name in enumerate(platforms):
            rows = table[table["platform"] == platform_name].set_index("variant")
            xs = np.arange(len(variants)) + (index - (len(platforms) - 1) / 2) * width
            values = [rows.loc[v, column] * scale if v in rows.index else np.nan for v in variants]
            axis.bar(xs, values, width, color=colours(index % 10), label=platform_name)
        axis.set_yscale("log")
        axis.set_xticks(np.arange(len(variants)), variants, rotation=20, ha="right", fontsize="small")
        axis.set_xlabel("variant (training recipe)")
        axis.set_ylabel(f"{quantity} per inference ({unit}, log scale)")
        axis.set_title(f"Crossbar vs microcontroller: {quantity} per inference")
    figure.tight_layout()
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, title="platform (one colour each)", loc="upper center",
                  bbox_to_anchor=(0.5, 0.0), ncol=len(platforms), fontsize="small")  # below both axes, no bar hidden
    return write_png(figure, path)


def plot_periphery(experiment: Any, found: dict, folder: str) -> dict[str, str]:
    """Stacked area and energy by component, unipolar vs differential, from one variant's mapping (no TF)."""
    name = next((n for n in found if "unipolar" in n), next(iter(found)))
    mapping = mapping_io.load(os.path.join(found[name]["folder"], "export", "mapping"))  # the folder may have moved
    tech = experiment.cost.resolve()
    results = {kind: network_cost(mapping, tech, kind=kind, scenario=kind) for kind in ("unipolar", "differential")}
    results["per-layer periphery"] = network_cost(mapping, tech, per_layer_periphery=True,
                                                  scenario="per-layer periphery")
    return {
        "area": plot_components(results, "area_um2", os.path.join(folder, "periphery_area.png"),
                                f"{name}: area by component, unipolar vs bipolar vs per-layer periphery"),
        "energy": plot_components(results, "energy_pj", os.path.join(folder, "periphery_energy.png"),
                                  f"{name}: energy per inference by component"),
    }
