"""The report folder of `tf-nvm run`: ``report.md``, CSV + Markdown tables and PNG plots, from the step markers.

Everything is computed from what the steps recorded (``metrics.json`` and the
step markers of each variant), so a report rebuilt after an interrupted and
resumed run equals the one of an uninterrupted run in every field but the
timings, which are kept in a section of their own.
"""

import json
import os
import platform
import sys

import numpy as np
import pandas as pd

from tf_nvm import runs
from tf_nvm.atomic import write_bytes_atomic
from tf_nvm.plots import pyplot, write_png
from tf_nvm.tables import to_markdown, write_table

__all__ = ["write_report", "TARGETS"]

TARGETS = {"float": 0.95, "har-4bit-bipolar": 0.945, "har-2bit-unipolar": 0.935}
"""Accuracy targets of the HAR experiment (test accuracy, mean over seeds); the paper: float 95 %, 2-bit
unipolar 92.91 %."""


def _pct(value):
    return f"{100 * value:.2f} %"


def _collect(experiment, out):
    """Per variant: metrics.json and the markers of every step."""
    from tf_nvm.pipeline.steps import STEPS, variant_folder  # noqa: PLC0415

    found = {}
    for name in experiment.variants:
        folder = variant_folder(out, name)
        with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as handle:
            metrics = json.load(handle)
        found[name] = {"folder": folder, "metrics": metrics,
                       **{step: runs.step_info(folder, step) for step in STEPS if step != "train"}}
    return found


def _accuracy_table(found):
    rows = []
    for name, v in found.items():
        m, sim, exp = v["metrics"], v["simulate"], v["export"]
        nvm, flt = m["test_accuracy_summary"], m["float_test_accuracy_summary"]
        summary = sim["summary"]
        rows.append({
            "variant": name, "seeds": len(m["seeds"]),
            "float test acc (mean)": flt["mean"], "float std": flt["std"],
            "NVM test acc (mean)": nvm["mean"], "NVM std": nvm["std"], "NVM min": nvm["min"], "NVM max": nvm["max"],
            "crossbar ideal (selected seed)": sim["ideal_accuracy"],
            f"crossbar {sim['preset']} (mean)": summary["accuracy_mean"],
            f"crossbar {sim['preset']} std": summary["accuracy_std"],
            f"crossbar {sim['preset']} min": summary["accuracy_min"], "chips": summary["chips"],
            "LiteRT differing outputs": exp["runtimes"]["litert"]["differing"],
            "TFLite Micro differing outputs": exp["runtimes"]["tflm"]["differing"],
            "simulator vs evaluator differing": sim["ideal_vs_evaluator_differing"],
        })
    return pd.DataFrame(rows)


def _cost_table(found):
    rows = []
    for name, v in found.items():
        summary, comparison = v["cost"]["summary"], v["cost"]["unipolar_vs_bipolar"]
        mapping = v["export"]["mapping"]
        rows.append({
            "variant": name, "tiles": mapping["tiles"], "devices": mapping["devices"],
            "total area mm^2": summary["total_area_mm2"], "energy per inference nJ": summary["total_energy_nj"],
            "latency us": summary["latency_us"],
            "unipolar vs bipolar periphery area reduction": comparison["area_reduction"],
            "paper area reduction": comparison["paper_area_reduction"],
            "unipolar vs bipolar periphery power reduction": comparison["power_reduction"],
            "paper power reduction": comparison["paper_power_reduction"],
        })
    return pd.DataFrame(rows)


_SHARED_COLUMNS = ("periphery", "adc_designs", "dac_designs", "scaling_designs", "periphery_area_mm2",
                   "periphery_energy_nj", "total_area_mm2", "total_energy_nj", "latency_us")


def _shared_table(found):
    rows = []
    for name, v in found.items():
        for row in v["cost"]["shared_vs_per_layer"]:
            rows.append({"variant": name, **{key: row[key] for key in _SHARED_COLUMNS}})
    return pd.DataFrame(rows)


def _mcu_table(found):
    rows = []
    for name, v in found.items():
        summary, acc = v["cost"]["summary"], v["metrics"]["test_accuracy"]
        rows.append({"variant": name, "platform": f"crossbar ({v['cost']['technology']})", "test accuracy": acc,
                     "memory": f"{v['export']['mapping']['devices']} devices",
                     "energy per inference nJ": summary["total_energy_nj"], "latency us": summary["latency_us"]})
        for core, totals in v["cost"]["mcu"].items():
            rows.append({"variant": name, "platform": core, "test accuracy": acc,
                         "memory": f"flash {totals['flash_bytes']} B, RAM {totals['ram_bytes']} B",
                         "energy per inference nJ": totals["energy_nj"], "latency us": totals["latency_us"]})
    return pd.DataFrame(rows)


def _paper_table(experiment, found):
    """Measured beside the paper's numbers and the targets, with a verdict."""
    rows = []
    floats = [v["metrics"]["float_test_accuracy"] for v in found.values()]
    rows.append({"quantity": "float test accuracy (mean over variants' baselines)", "measured": float(np.mean(floats)),
                 "paper": experiment.paper.get("float accuracy"), "target": TARGETS["float"]})
    for name, v in found.items():
        rows.append({"quantity": f"{name} test accuracy", "measured": v["metrics"]["test_accuracy"],
                     "paper": experiment.paper.get("2-bit unipolar accuracy") if name == "har-2bit-unipolar" else None,
                     "target": TARGETS.get(name)})
    uni = next((v for n, v in found.items() if "unipolar" in n), None)
    if uni is not None:
        comparison = uni["cost"]["unipolar_vs_bipolar"]
        rows.append({"quantity": "unipolar vs bipolar periphery area reduction", "measured":
                     comparison["area_reduction"], "paper": comparison["paper_area_reduction"], "target": None})
        rows.append({"quantity": "unipolar vs bipolar periphery power reduction", "measured":
                     comparison["power_reduction"], "paper": comparison["paper_power_reduction"], "target": None})
    table = pd.DataFrame(rows)
    table["verdict"] = [("" if t is None or pd.isna(t) else ("met" if m >= t else f"missed by {100 * (t - m):.2f} pts"))
                        for m, t in zip(table["measured"], table["target"])]
    return table.astype(object).where(table.notna(), "")  # no "nan" where the paper gives no number


def _plot_accuracy(found, path, preset):
    plt = pyplot()
    names = list(found)
    series = {
        "float (seeds)": [(v["metrics"]["float_test_accuracy_summary"]["mean"],
                           v["metrics"]["float_test_accuracy_summary"]["std"]) for v in found.values()],
        "NVM, Keras (seeds)": [(v["metrics"]["test_accuracy_summary"]["mean"],
                                v["metrics"]["test_accuracy_summary"]["std"]) for v in found.values()],
        "crossbar ideal": [(v["simulate"]["ideal_accuracy"], 0.0) for v in found.values()],
        f"crossbar {preset} (chips)": [(v["simulate"]["summary"]["accuracy_mean"],
                                        v["simulate"]["summary"]["accuracy_std"]) for v in found.values()],
    }
    figure, axis = plt.subplots(figsize=(1.9 * len(names) + 3, 4.5))
    width = 0.8 / len(series)
    for index, (label, values) in enumerate(series.items()):
        xs = np.arange(len(names)) + (index - (len(series) - 1) / 2) * width
        axis.bar(xs, [100 * m for m, _ in values], width, yerr=[100 * s for _, s in values], capsize=3, label=label)
    low = min(100 * m for values in series.values() for m, _ in values)
    axis.set_ylim(max(0.0, low - 5), 100)
    axis.set_xticks(np.arange(len(names)), names)
    axis.set_title("Test accuracy per variant (error bars: std over seeds or chips)")
    axis.set_xlabel("variant (training recipe)")
    axis.set_ylabel("test accuracy (%)")
    axis.legend(fontsize="small", loc="lower right")
    return write_png(figure, path)


def _plot_sweep(found, path, preset):
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    for name, v in found.items():
        sweep = v["simulate"]["sweep"]
        if sweep:
            axis.errorbar([p["t_inference"] for p in sweep], [100 * p["mean"] for p in sweep],
                          yerr=[100 * p["std"] for p in sweep], marker="o", capsize=3, label=name)
    axis.set_xscale("log")
    axis.set_title(f"Crossbar accuracy vs time after programming ({preset}, drift-compensated)")
    axis.set_xlabel("t_inference (s, log scale)")
    axis.set_ylabel("test accuracy (%), mean ± std over chips")
    axis.legend(fontsize="small")
    return write_png(figure, path)


def _plot_levels(found, path):
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


def _plot_mcu(table, path):
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = [f"{v}\n{p}" for v, p in zip(table["variant"], table["platform"])]
    for axis, column, unit, scale in ((axes[0], "energy per inference nJ", "J", 1e-9),
                                      (axes[1], "latency us", "s", 1e-6)):
        axis.bar(range(len(labels)), table[column] * scale)
        axis.set_yscale("log")
        axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize="x-small")
        axis.set_ylabel(f"{column.split(' ')[0]} per inference ({unit}, log scale)")
        axis.set_xlabel("variant and platform")
        axis.set_title(f"Crossbar vs microcontroller: {column.split(' ')[0]} per inference")
    return write_png(figure, path)


def _plot_periphery(experiment, found, folder):
    """Stacked area and energy by component, unipolar vs differential, from one variant's mapping (no TF)."""
    from tf_nvm import mapping as mapping_io  # noqa: PLC0415
    from tf_nvm.cost import network_cost  # noqa: PLC0415
    from tf_nvm.cost.report import plot_components  # noqa: PLC0415

    name = next((n for n in found if "unipolar" in n), next(iter(found)))
    mapping = mapping_io.load(found[name]["export"]["mapping_prefix"])
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


def _versions():
    import importlib.metadata as md  # noqa: PLC0415

    out = {"python": sys.version.split()[0]}
    for package in ("tf-nvm", "tensorflow", "tf_keras", "tensorflow-model-optimization", "ai-edge-litert",
                    "tflite-micro", "numpy", "pandas"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            out[package] = "not installed"
    return out


def write_report(experiment, out, quick, timings):
    """Writes ``out/report/`` (report.md, tables, plots, report.json); returns the folder."""
    folder = os.path.join(out, "report")
    os.makedirs(folder, exist_ok=True)
    found = _collect(experiment, out)
    preset = experiment.simulation.preset
    tables = {"accuracy": _accuracy_table(found), "paper": _paper_table(experiment, found),
              "cost": _cost_table(found), "shared_vs_per_layer": _shared_table(found),
              "crossbar_vs_mcu": _mcu_table(found)}
    for key, table in tables.items():
        write_table(table, os.path.join(folder, key))
    plots = {"accuracy": _plot_accuracy(found, os.path.join(folder, "accuracy.png"), preset),
             "accuracy_vs_time": _plot_sweep(found, os.path.join(folder, "accuracy_vs_time.png"), preset),
             "levels": _plot_levels(found, os.path.join(folder, "levels.png")),
             "crossbar_vs_mcu": _plot_mcu(tables["crossbar_vs_mcu"], os.path.join(folder, "crossbar_vs_mcu.png"))}
    plots.update({f"periphery_{k}": v for k, v in _plot_periphery(experiment, found, folder).items()})
    sim = experiment.simulation
    lines = [
        f"# {experiment.name}{' (quick mode)' if quick else ''}", "", experiment.description, "",
        "## What was run", "",
        f"- variants (training recipes): {', '.join(experiment.variants)}; seeds {list(experiment.seeds)}; epochs "
        f"{experiment.epochs or 'from each recipe'}" + (" (quick mode: a smoke run, not the paper's numbers)"
                                                        if quick else ""),
        f"- simulation: ideal chip, and {sim.chips} {sim.preset} chips at t_inference = {sim.t_inference:g} s "
        f"(read noise {sim.read_noise}, global drift compensation), on "
        f"{next(iter(found.values()))['simulate']['examples']} test examples",
        f"- cost: technology {experiment.cost.technology}, arrays {experiment.cost.array_sizing}",
        f"- software: {', '.join(f'{k} {v}' for k, v in _versions().items())}",
        "", "## Measured beside the paper", "", to_markdown(tables["paper"], 4), "",
        "Targets: float >= 95 %, 4-bit bipolar >= 94.5 %, 2-bit unipolar >= 93.5 % (paper 92.91 %). The paper's "
        "periphery figures compare its own circuit designs; ours come from the cited component model of "
        "docs/cost_model.md (power agrees under its assumptions; area depends on how arrays are sized, see there).",
        "", "## Accuracy", "", to_markdown(tables["accuracy"], 4), "", "![accuracy](accuracy.png)", "",
        "![accuracy vs time](accuracy_vs_time.png)", "",
        "## Hardware cost", "", to_markdown(tables["cost"], 4), "", to_markdown(tables["shared_vs_per_layer"], 4), "",
        "![area](periphery_area.png)", "", "![energy](periphery_energy.png)", "",
        "## Crossbar vs microcontroller (per inference)", "", to_markdown(tables["crossbar_vs_mcu"], 4), "",
        "![crossbar vs mcu](crossbar_vs_mcu.png)", "", "## Conductance levels", "", "![levels](levels.png)", "",
        "## Timings of this invocation (steps reused from an earlier invocation are not listed)", "",
    ]
    lines += [f"- {key}: {seconds:.0f} s" for key, seconds in timings.items()] or ["- every step was reused"]
    lines += ["", f"Host: {platform.node()}, {os.cpu_count()} CPU(s), {platform.platform()}."]
    write_bytes_atomic(os.path.join(folder, "report.md"), ("\n".join(lines) + "\n").encode("utf-8"))
    data = {"experiment": experiment.to_dict(), "quick": quick,
            "tables": {k: json.loads(t.to_json(orient="records")) for k, t in tables.items()},
            "plots": {k: os.path.basename(v) for k, v in plots.items()}}
    write_bytes_atomic(os.path.join(folder, "report.json"), json.dumps(data, indent=2).encode("utf-8"))
    return folder
