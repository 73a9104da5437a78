"""The report folder of `tf-nvm run`: ``report.md``, the same as one self-contained ``report.html`` (plots
embedded), CSV + Markdown tables and PNG plots, from the step markers.

Everything is computed from what the steps recorded (``metrics.json`` and the
step markers of each variant), so a report rebuilt after an interrupted and
resumed run equals the one of an uninterrupted run in every field but the
timings (the wall time per step, in report.md only).
"""

import base64
import datetime
import html
import json
import os
import platform
import re
import sys

import numpy as np
import pandas as pd

from tf_nvm.core import provenance
from tf_nvm.experiments import runs
from tf_nvm.pipeline.experiment import variant_kind
from tf_nvm.core.atomic import write_bytes_atomic
from tf_nvm.core.errors import PipelineError
from tf_nvm.core.plots import pyplot, write_png
from tf_nvm.core.safe_io import read_json
from tf_nvm.core.tables import to_markdown, to_records, write_table

__all__ = ["RUNTIME_COLUMNS", "write_report", "runtime_line"]


def _pct(value):
    return f"{100 * value:.2f} %"


def _fixed(value, decimals):
    """``value`` as `tf_nvm.core.tables.to_markdown` writes a float cell with ``decimals`` decimals (a headline
    quoting a cell uses this, so the two read the same)."""
    return f"{float(value):.{decimals}f}"


def _metric(found):
    """The training metric of the variants (one task per experiment): ``"accuracy"``, or ``"mse"`` for regression
    and reconstruction (``metrics.json``'s ``metric``; folders of classifiers record none)."""
    return next(iter(found.values()))["metrics"].get("metric", "accuracy")


def _scale(metric):
    """Plot factor and axis words of ``metric``: accuracy in %, errors in model units."""
    return (100, "test accuracy (%)") if metric == "accuracy" else (1, f"test {metric.upper()} (target units)")


_RUNTIME_NAMES = {"litert": "LiteRT", "tflm": "TFLite Micro"}


def runtime_line(info, task="classification"):
    """One line of an export marker's ``runtime_report``: the runtime the Keras model matches bit for bit and,
    on the other, how many int8 outputs (and, for a classifier, arg-max predictions) differ."""
    deployed, other = info["deployed"], info["other"]
    name, other_name = _RUNTIME_NAMES[info["runtime"]], _RUNTIME_NAMES[other["runtime"]]
    head = (f"bit-exact on {name}" if deployed["differing"] == 0 else
            f"NOT bit-exact on {name} (max {deployed['max_abs_lsb']} LSB)")
    line = (f"runtime check on {info['inputs']}: the Keras model is trained for {name} (spec runtime "
            f"{info['runtime']!r}) and is {head}: {deployed['differing']}/{deployed['outputs']} outputs differ; on "
            f"{other_name} {other['differing']}/{other['outputs']} outputs differ (max {other['max_abs_lsb']} LSB)")
    if task == "classification":
        changed = other["examples"] - round(other["argmax_agreement"] * other["examples"])
        line += (f" and {changed} of {other['examples']} predictions (arg-max) change "
                 f"({100 * other['argmax_agreement']:.2f} % agree)")
    return line + f". To deploy on {other_name}, train with spec runtime {other['runtime']!r}."


def _collect(experiment, out):
    """Per variant: its training recipe as run (``experiment.json``), metrics.json and every step's marker."""
    from tf_nvm.pipeline.steps import STEPS, check_marker, variant_folder  # noqa: PLC0415

    recipes = read_json(os.path.join(out, "experiment.json"), what="experiment record", error=PipelineError,
                        fix=f"Fix: delete {out} and run the experiment again.", object_only=True).get("recipes", {})
    # "recipes" is absent in folders written before tf_nvm recorded them
    found = {}
    for name in experiment.variant_names:
        folder = variant_folder(out, name)
        fix = "Fix: pass --force train to train every variant again (or restore the file from a copy)."
        path = os.path.join(folder, "metrics.json")
        metrics = read_json(path, what="variant metrics", error=PipelineError, fix=fix, object_only=True)
        metric = metrics.get("metric", "accuracy")
        missing = [key for key in ("seeds", f"test_{metric}", f"test_{metric}_summary", f"float_test_{metric}_summary")
                   if key not in metrics]
        if missing:
            raise PipelineError(f"variant metrics {path} lacks {missing} (found {sorted(metrics)[:12]}); it was edited "
                                f"or written by another tool. {fix}")
        found[name] = {"folder": folder, "recipe": recipes.get(name, {}), "metrics": metrics,
                       **{step: check_marker(folder, step) for step in STEPS if step != "train"}}
    return found


RUNTIME_COLUMNS = {
    "litert": "LiteRT vs Keras (LiteRT arithmetic) differing outputs",
    "tflm": "TFLite Micro vs Keras (TFLite Micro arithmetic) differing outputs",
    "deployed": "deployed runtime (spec)",
    "other": "other runtime vs Keras as trained differing outputs",
}
"""Column names of the accuracy table's exactness checks: each runtime against the Keras model computing in that
runtime's own arithmetic (the export is right for it), and the runtime the model was not trained for against the
model as trained (what deploying there costs; section Deployment runtime)."""


def _accuracy_table(found):
    """Per variant: the training metric (accuracy in %, or MSE in model units) of the float and NVM models, the
    simulated chips' metric against the targets (and, for regression, against the ideal chip), and the exactness
    checks (`RUNTIME_COLUMNS`)."""
    rows = []
    for name, v in found.items():
        m, sim, exp = v["metrics"], v["simulate"], v["export"]
        trained = m.get("metric", "accuracy")
        short, factor = ("acc %", 100) if trained == "accuracy" else (trained, 1)
        nvm, flt = m[f"test_{trained}_summary"], m[f"float_test_{trained}_summary"]
        summary, metric = sim["summary"], sim.get("metric", "accuracy")  # older markers hold accuracy only
        label = " acc %" if metric == "accuracy" else f" {metric}"
        scale = 100 if metric == "accuracy" else 1
        row = {
            "variant": name, "seeds": len(m["seeds"]),
            f"float test {short} (mean)": factor * flt["mean"], "float std": factor * flt["std"],
            f"NVM test {short} (mean)": factor * nvm["mean"], "NVM std": factor * nvm["std"],
            "NVM min": factor * nvm["min"], "NVM max": factor * nvm["max"],
            f"crossbar ideal{label} (selected seed)": scale * sim[f"ideal_{metric}"],
            f"crossbar {sim['preset']}{label} (mean)": scale * summary[f"{metric}_mean"],
            f"crossbar {sim['preset']}{label} std": scale * summary[f"{metric}_std"],
            f"crossbar {sim['preset']}{label} min": scale * summary[f"{metric}_min"]}
        if metric != "accuracy":  # errors against the ideal chip, and the task's other metrics
            row[f"crossbar {sim['preset']}{label} vs ideal (mean)"] = summary.get(f"{metric}_vs_ideal_mean")
            for other in ("mse", "mae"):
                if other != metric and f"{other}_mean" in summary:
                    row[f"crossbar ideal {other}"] = summary.get(f"ideal_{other}")
                    row[f"crossbar {sim['preset']} {other} (mean)"] = summary[f"{other}_mean"]
                    row[f"crossbar {sim['preset']} {other} vs ideal (mean)"] = summary.get(f"{other}_vs_ideal_mean")
        runtime = exp.get("runtime_report") or {}  # markers of older exports hold none
        row.update({
            "chips": summary["chips"],
            RUNTIME_COLUMNS["litert"]: exp["runtimes"]["litert"]["differing"],
            RUNTIME_COLUMNS["tflm"]: exp["runtimes"]["tflm"]["differing"],
            RUNTIME_COLUMNS["deployed"]: runtime.get("runtime"),
            RUNTIME_COLUMNS["other"]: (runtime.get("other") or {}).get("differing"),
            "simulator vs evaluator differing": sim["ideal_vs_evaluator_differing"],
        })
        rows.append(row)
    return pd.DataFrame(rows)


def _cost_table(found):
    rows = []
    for name, v in found.items():
        summary, mapping = v["cost"]["summary"], v["export"]["mapping"]
        rows.append({
            "variant": name, "tiles": mapping["tiles"], "devices": mapping["devices"],
            "total area mm^2": summary["total_area_mm2"], "energy per inference nJ": summary["total_energy_nj"],
            "latency us": summary["latency_us"],
        })
    return pd.DataFrame(rows)


_PERIPHERY_SCOPES = (
    ("crossbar periphery", "xbar_periphery", "area_reduction", "power_reduction"),
    ("periphery incl. digital units", "periphery", "all_periphery_area_reduction", "all_periphery_power_reduction"))
"""(label, `compare_mappings` key stem, area reduction key, power reduction key) of the two periphery scopes:
the crossbar periphery (DACs, S&H, ADCs, shift-and-add, pair subtraction or G_min correction, partial sums:
`tf_nvm.cost.CROSSBAR_PERIPHERY`, the paper's "periphery") and the whole periphery group (the same plus the
digital units, bias/activation/requantisation and digital layers)."""

PERIPHERY_DECIMALS = {"bipolar area mm^2": 4, "unipolar area mm^2": 4, "area change (%)": 1,
                      "bipolar energy nJ": 1, "unipolar energy nJ": 1, "energy change (%)": 1,
                      "paper area change (%)": 1, "paper power change (%)": 1}
"""Decimals of the unipolar-vs-bipolar table's columns (its cells and the headline quoting them)."""


def _change(reduction):
    """A reduction (0..1) as a change in percent (-49.9 for 0.499); None stays None."""
    return None if reduction is None else 0.0 - 100 * reduction  # 0.0 - x: no "-0.0"


def _periphery_table(found):
    """Unipolar vs bipolar (differential) for each variant's network, mapped both ways: area and energy per
    inference of the crossbar periphery and of the whole periphery (with the digital units), and the change."""
    rows = []
    for name, v in found.items():
        c = v["cost"]["unipolar_vs_bipolar"]
        for label, stem, area, power in _PERIPHERY_SCOPES:
            crossbar = stem == "xbar_periphery"
            rows.append({
                "variant": name, "periphery": label,
                "bipolar area mm^2": c.get(f"bipolar_{stem}_area_mm2"),  # absent in markers of older versions
                "unipolar area mm^2": c.get(f"unipolar_{stem}_area_mm2"), "area change (%)": _change(c.get(area)),
                "bipolar energy nJ": c.get(f"bipolar_{stem}_energy_nj"),
                "unipolar energy nJ": c.get(f"unipolar_{stem}_energy_nj"),
                "energy change (%)": _change(c.get(power)),
                "paper area change (%)": _change(c["paper_area_reduction"]) if crossbar else None,
                "paper power change (%)": _change(c["paper_power_reduction"]) if crossbar else None})
    return pd.DataFrame(rows)


_SHARED_COLUMNS = {"periphery": "converter and scaling design", "adc_designs": "ADC designs",
                   "dac_designs": "DAC designs", "scaling_designs": "scaling designs",
                   "periphery_area_mm2": "periphery incl. digital units area mm^2",
                   "periphery_energy_nj": "periphery incl. digital units energy nJ",
                   "total_area_mm2": "total area mm^2", "total_energy_nj": "energy per inference nJ",
                   "latency_us": "latency us"}
"""The shared-vs-per-layer table's columns ({marker key: header}): its periphery is the whole group (crossbar
periphery and digital units), named so beside the crossbar-only periphery of the unipolar-vs-bipolar table."""


def _shared_table(found):
    rows = []
    for name, v in found.items():
        for row in v["cost"]["shared_vs_per_layer"]:
            rows.append({"variant": name, **{header: row[key] for key, header in _SHARED_COLUMNS.items()}})
    return pd.DataFrame(rows)


def _mcu_table(found):
    rows = []
    for name, v in found.items():
        metric = v["metrics"].get("metric", "accuracy")
        summary, acc = v["cost"]["summary"], v["metrics"][f"test_{metric}"]
        column, acc = (("test accuracy (%)", 100 * acc) if metric == "accuracy" else (f"test {metric}", acc))
        rows.append({"variant": name, "platform": f"crossbar ({v['cost']['technology']})", column: acc,
                     "memory": f"{v['export']['mapping']['devices']} devices",
                     "energy per inference nJ": summary["total_energy_nj"], "latency us": summary["latency_us"]})
        for core, totals in v["cost"]["mcu"].items():
            rows.append({"variant": name, "platform": core, column: acc,
                         "memory": f"flash {totals['flash_bytes']} B, RAM {totals['ram_bytes']} B",
                         "energy per inference nJ": totals["energy_nj"], "latency us": totals["latency_us"]})
    return pd.DataFrame(rows)


def _verdict(measured, target):
    if target is None:
        return ""
    return "met" if measured >= target else f"missed by {100 * (target - measured):.2f} pts"


def _float_group(name, v):
    """What identifies the float baseline of variant ``name`` (``found`` entry ``v``) among the variants, as a
    string: the fields of its training recipe that shape that baseline and its measured test accuracy per seed
    (variants sharing a baseline report the same; run folders written before variants shared their float
    baselines trained one per variant, and those differ). Its name when no recipe was recorded."""
    from tf_nvm.experiments.train import FLOAT_KEY_IGNORES  # noqa: PLC0415

    if not v["recipe"]:
        return name
    fields = {k: x for k, x in v["recipe"].items() if k not in FLOAT_KEY_IGNORES}
    metric = v["metrics"].get("metric", "accuracy")
    measured = [(seed["seed"], seed["float"].get(f"test_{metric}")) for seed in v["metrics"].get("seeds", [])]
    return json.dumps([fields, measured], sort_keys=True)


def _float_baselines(found):
    """[(label, test metric (mean over seeds))]: each distinct float baseline once, named by its
    architecture and the variants that share it."""
    groups = {}
    for name, v in found.items():
        metric = v["metrics"].get("metric", "accuracy")
        group = groups.setdefault(_float_group(name, v),
                                  {"architecture": v["recipe"].get("architecture", "float"), "names": [],
                                   "accuracy": v["metrics"][f"float_test_{metric}"]})
        group["names"].append(name)
    return [(f"{g['architecture']} network of {', '.join(g['names'])}", g["accuracy"]) for g in groups.values()]


def _accuracies(found):
    """[(variant, kind label, NVM metric, its float metric)], test accuracies (or MSE) as means over seeds."""
    out = []
    for name, v in found.items():
        metric = v["metrics"].get("metric", "accuracy")
        out.append((name, variant_kind(v["metrics"]["spec"]), v["metrics"][f"test_{metric}"],
                    v["metrics"][f"float_test_{metric}"]))
    return out


def _percent(value):
    return None if value is None else 100 * value


def _paper_table(experiment, found, quick=False):
    """Test accuracies (mean over seeds) beside the paper's numbers and the experiment's targets, in percent
    (a difference in percentage points), with a verdict; a regression or reconstruction experiment shows its
    test MSE in the targets' units (it has no targets). In quick mode (a smoke run) neither targets nor
    verdicts. The unipolar-vs-bipolar periphery beside the paper's is `_periphery_table`."""
    metric = _metric(found)
    rows = [{"quantity": f"float test {metric} ({label})", "measured": value,
             "paper": experiment.paper.get(f"float {metric}"), "target": experiment.targets.get("float")}
            for label, value in _float_baselines(found)]
    for name, kind, nvm, flt in _accuracies(found):
        rows.append({"quantity": f"{name} ({kind}) test {metric}", "measured": nvm,
                     "paper": experiment.paper.get(f"{kind} {metric}"), "target": experiment.targets.get(kind)})
        rows.append({"quantity": f"{name} ({kind}) minus its float baseline", "measured": nvm - flt,
                     "paper": None, "target": experiment.targets.get(f"{kind} vs float")})
    table = pd.DataFrame(rows).astype(object)
    verdicts = [_verdict(m, None if t is None or pd.isna(t) else t) for m, t in zip(table["measured"], table["target"])]
    scale, unit = (_percent, "%") if metric == "accuracy" else ((lambda value: value), metric.upper())

    def cells(column):
        return [None if v is None or pd.isna(v) else scale(v) for v in table[column]]

    table = pd.DataFrame({"quantity": table["quantity"], f"measured ({unit})": cells("measured"),
                          f"paper ({unit})": cells("paper"), f"target ({unit})": cells("target"),
                          "verdict": verdicts})
    if quick:
        table = table.drop(columns=[f"target ({unit})", "verdict"])
    return table.astype(object).where(table.notna(), "")  # no "nan" where the paper gives no number


def _explanations(experiment, found):
    """One line per missed target: by how much, the gap to the variant's own float baseline (measured) and
    the experiment's ``notes`` for that label."""
    lines = []
    targets, notes = experiment.targets, experiment.notes
    missed = [f"{label}: {_pct(accuracy)} (missed by {100 * (targets['float'] - accuracy):.2f} pts)"
              for label, accuracy in _float_baselines(found) if "float" in targets and accuracy < targets["float"]]
    if missed:
        lines.append(f"- float, against the target {_pct(targets['float'])}: {'; '.join(missed)}. "
                     f"{notes.get('float', '')}".rstrip())
    for name, kind, nvm, flt in _accuracies(found):
        allowed = targets.get(f"{kind} vs float")
        if allowed is not None and nvm - flt < allowed:
            lines.append(f"- {name}: {_pct(nvm)}, {100 * (nvm - flt):.2f} pts from its float baseline "
                         f"{_pct(flt)} (target: >= {100 * allowed:.2f} pts; missed by "
                         f"{100 * (allowed - (nvm - flt)):.2f} pts). {notes.get(f'{kind} vs float', '')}".rstrip())
        if kind not in targets or nvm >= targets[kind]:
            continue
        target = targets[kind]
        baseline = (f"its float counterpart (same architecture, same seeds) reaches {_pct(flt)}, "
                    + ("itself below the target, so the architecture and data limit it before quantization"
                       if flt < target else f"so quantization to {kind} changes it by {100 * (nvm - flt):.2f} pts"))
        lines.append(f"- {name}: {_pct(nvm)} against the target {_pct(target)} (missed by "
                     f"{100 * (target - nvm):.2f} pts); {baseline}. {notes.get(kind, '')}".rstrip())
    return lines


def _headlines(found, quick):
    """The summary lines at the top of report.md. Every number in them is a cell of a table of the same report,
    written as that cell is (a test parses the report and checks it)."""
    lines = []
    if quick:
        lines.append("- Quick mode: a smoke run (fewer seeds, epochs and chips: see What was run). It checks that "
                     "every step works; its numbers are not the paper's results and are not judged against the "
                     "paper's numbers or the targets.")
    metric = _metric(found)
    for name, kind, nvm, flt in _accuracies(found):
        seeds = len(found[name]["metrics"]["seeds"])
        where = f"(mean over {seeds} seed{'' if seeds == 1 else 's'}; table Measured beside the paper)."
        if metric == "accuracy":
            lines.append(f"- {name} ({kind}): NVM test accuracy {_fixed(100 * nvm, 2)} %, "
                         f"{_fixed(100 * (nvm - flt), 2)} pts from its float baseline {_fixed(100 * flt, 2)} % "
                         + where)
        else:  # the paper table's cells of a regression experiment: 4 decimals, target units
            lines.append(f"- {name} ({kind}): NVM test {metric.upper()} {_fixed(nvm, 4)}, {_fixed(nvm - flt, 4)} "
                         f"from its float baseline {_fixed(flt, 4)} " + where)
    name = next((n for n, v in found.items() if v["metrics"]["spec"]["unipolar"]), next(iter(found)))
    table = _periphery_table({name: found[name]}).set_index("periphery")

    def cell(scope, column):
        value = table.loc[scope, column]
        return "?" if value is None or pd.isna(value) else _fixed(value, PERIPHERY_DECIMALS[column])

    xbar, whole = (scope for scope, *_ in _PERIPHERY_SCOPES)
    lines.append(
        f"- unipolar vs bipolar, {name}'s network mapped both ways (table Unipolar vs bipolar periphery): {xbar} "
        f"area {cell(xbar, 'area change (%)')} %, energy {cell(xbar, 'energy change (%)')} % (paper: area "
        f"{cell(xbar, 'paper area change (%)')} %, power up to {cell(xbar, 'paper power change (%)')} %); "
        f"{whole}: area {cell(whole, 'area change (%)')} %, energy {cell(whole, 'energy change (%)')} %.")
    return lines


def _step_times(found):
    """Wall time of every step of every variant, as its marker recorded it (blank: not recorded)."""
    from tf_nvm.pipeline.steps import STEPS  # noqa: PLC0415

    rows = []
    for name, v in found.items():
        seconds = {step: (runs.step_info(v["folder"], step) or {}).get("seconds") for step in STEPS}
        total = sum(t for t in seconds.values() if t is not None)
        rows.append({"variant": name, **seconds, "total": total})
    return pd.DataFrame(rows)


def _model_times(found):
    """Training wall time of each model in minutes (mean and max over seeds) and its median epoch in seconds.

    The total of a training counts the time it was paused or shared the cores; the median epoch (over
    every recorded epoch of every seed) is not moved by a few such epochs, so it tells what one model costs
    unless most of its epochs shared the machine.
    """
    rows = []
    for name, v in found.items():
        row = {"variant": name}
        for kind, label in (("float", "float"), ("nvm", "NVM")):
            seeds = [seed[kind] for seed in v["metrics"]["seeds"]]
            seconds = [seed["seconds"] for seed in seeds if "seconds" in seed]
            epochs = [t for seed in seeds for t in seed.get("epoch_seconds", [])]
            row[f"{label} min (mean)"] = float(np.mean(seconds)) / 60 if seconds else None
            row[f"{label} min (max)"] = float(np.max(seconds)) / 60 if seconds else None
            row[f"{label} s/epoch (median)"] = float(np.median(epochs)) if epochs else None
        rows.append(row)
    return pd.DataFrame(rows)


def _recipe_hours(found):
    """(recorded, at the median epoch) hours of the whole recipe: every training and every other step.

    A float baseline shared by variants (one `_float_group`: their training recipes differ only in fields
    that do not change it, `tf_nvm.experiments.train.FLOAT_KEY_IGNORES`, and they measured the same float accuracy per
    seed) counts once. "At the median epoch" replaces each training's
    recorded seconds by its median epoch times its epochs (the recorded seconds when it recorded none).
    """
    from tf_nvm.pipeline.steps import STEPS  # noqa: PLC0415

    def seconds(result, epochs):
        times = result.get("epoch_seconds") or []
        median = float(np.median(times)) * epochs if times and epochs else result.get("seconds", 0.0)
        return result.get("seconds", 0.0), median

    recorded = median = 0.0
    floats_seen = set()
    for name, v in found.items():
        epochs = v["recipe"].get("epochs")
        group = _float_group(name, v)
        for seed in v["metrics"]["seeds"]:
            kinds = ["nvm"] + ([] if (group, seed["seed"]) in floats_seen else ["float"])
            floats_seen.add((group, seed["seed"]))
            for kind in kinds:
                r, m = seconds(seed[kind], epochs)
                recorded, median = recorded + r, median + m
        steps = sum((runs.step_info(v["folder"], step) or {}).get("seconds") or 0.0 for step in STEPS
                    if step != "train")
        recorded, median = recorded + steps, median + steps
    return recorded / 3600, median / 3600


def _plot_accuracy(found, path, preset):
    """Bars of the training metric per variant: accuracy in %, or the error (MSE) in model units."""
    plt = pyplot()
    names = list(found)
    metric = _metric(found)
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


def _plot_sweep(found, path, preset):
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


def _plot_periphery(experiment, found, folder):
    """Stacked area and energy by component, unipolar vs differential, from one variant's mapping (no TF)."""
    from tf_nvm import mapping as mapping_io  # noqa: PLC0415
    from tf_nvm.cost import network_cost  # noqa: PLC0415
    from tf_nvm.cost.report import plot_components  # noqa: PLC0415

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


_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")


def _html_page(title, markdown_lines, folder):
    """One self-contained HTML page of ``report.md`` (its headings, lists, tables, paragraphs) with the PNGs
    embedded as data URIs, so the page can be mailed or attached on its own."""
    body, table = [], None

    def close_table():
        nonlocal table
        if table is not None:
            body.append("<table>" + "".join(table) + "</table>")
            table = None

    for line in "\n".join(markdown_lines).splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip().strip("|").split("|")]
            if all(set(c) <= {"-", " ", ":"} for c in cells):
                continue  # the separator row
            tag = "th" if table is None else "td"
            table = (table or []) + ["<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"]
            continue
        close_table()
        image = _IMAGE.fullmatch(line.strip())
        if image:
            with open(os.path.join(folder, image.group(2)), "rb") as handle:
                data = base64.b64encode(handle.read()).decode("ascii")
            body.append(f'<p><img alt="{html.escape(image.group(1))}" src="data:image/png;base64,{data}"></p>')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.startswith("- "):
            body.append(f"<ul><li>{html.escape(line[2:])}</li></ul>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    close_table()
    style = ("body{font-family:sans-serif;max-width:75em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
             "td,th{border:1px solid #bbb;padding:.25em .5em;text-align:right}th{background:#eee}"
             "img{max-width:100%}ul{margin:.2em 0}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(experiment, out, quick, timings):
    """Writes ``out/report/`` (report.md, tables, plots, report.json); returns the folder.

    Raises:
        PipelineError: ``out/report`` is not a folder; a variant's ``metrics.json`` or step marker is not a
            JSON object holding what the report reads (the message names the file, or the missing key).
    """
    folder = os.path.join(out, "report")
    if os.path.lexists(folder) and (os.path.islink(folder) or not os.path.isdir(folder)):
        raise PipelineError(f"output folder {out}: {folder} is not a folder; tf_nvm writes the report into a folder "
                            f"of its own and never replaces what is there. Fix: move {folder} away and run again "
                            "(every finished step is reused).")
    found = _collect(experiment, out)
    try:
        return _write(experiment, out, quick, timings, folder, found)
    except (KeyError, TypeError, IndexError, AttributeError) as err:
        raise PipelineError(f"the report of {out} cannot be built: a value it reads is missing or of the wrong type "
                            f"({type(err).__name__}: {str(err)[:200]}); a variant's metrics.json or step marker "
                            "(variants/*/steps/*.json) was edited. Fix: pass --force export to redo the steps after "
                            "training (or --force train if a metrics.json was edited).") from None


def _write(experiment, out, quick, timings, folder, found):
    """`write_report` once ``found`` is read."""
    os.makedirs(folder, exist_ok=True)
    preset = experiment.simulation.preset
    metric = _metric(found)
    classifier = metric == "accuracy"
    kind = "accuracy" if classifier else "error"  # table and plot names: a regression report never says accuracy
    tables = {kind: _accuracy_table(found), "paper": _paper_table(experiment, found, quick),
              "cost": _cost_table(found), "unipolar_vs_bipolar": _periphery_table(found),
              "shared_vs_per_layer": _shared_table(found), "crossbar_vs_mcu": _mcu_table(found)}
    paper_decimals = 2 if classifier else 4
    decimals = {"paper": paper_decimals, "unipolar_vs_bipolar": PERIPHERY_DECIMALS, kind: 2 if classifier else 4,
                "crossbar_vs_mcu": {"test accuracy (%)": 2, "energy per inference nJ": 1, "latency us": 2}}
    for key, table in tables.items():
        write_table(table, os.path.join(folder, key), decimals.get(key, 4))
    plots = {kind: _plot_accuracy(found, os.path.join(folder, f"{kind}.png"), preset),
             f"{kind}_vs_time": _plot_sweep(found, os.path.join(folder, f"{kind}_vs_time.png"), preset),
             "levels": _plot_levels(found, os.path.join(folder, "levels.png")),
             "crossbar_vs_mcu": _plot_mcu(tables["crossbar_vs_mcu"], os.path.join(folder, "crossbar_vs_mcu.png"))}
    plots.update({f"periphery_{k}": v for k, v in _plot_periphery(experiment, found, folder).items()})
    sim = experiment.simulation
    kinds = {"float"} | {kind for _, kind, _, _ in _accuracies(found)}
    targets = {label: value for label, value in experiment.targets.items()
               if label in kinds or label.removesuffix(" vs float") in kinds}  # only those a row of the table shows
    lines = [
        f"# {experiment.name}{' (quick mode: a smoke run)' if quick else ''}", "", experiment.description, "",
        "## Summary", "", *_headlines(found, quick), "",
        "## What was run", "",
        f"- variants (training recipes): {', '.join(experiment.variant_names)}; task "
        f"{experiment.resolved_task}; seeds {list(experiment.seeds)}; epochs "
        f"{experiment.epochs or 'from each recipe'}" + (" (quick mode: a smoke run, not the paper's numbers)"
                                                        if quick else ""),
        f"- simulation: ideal chip, and {sim.chips} {sim.preset} chips at t_inference = {sim.t_inference:g} s "
        f"(read noise {sim.read_noise}, global drift compensation), on "
        f"{next(iter(found.values()))['simulate']['examples']} test examples",
        f"- export: TFLite int8 and the crossbar mapping; LiteRT and TFLite Micro compared with the Keras model on "
        f"{experiment.export_examples or 'all'} test examples",
        f"- cost: technology {experiment.cost.technology}, arrays {experiment.cost.array_sizing}",
        f"- code: {provenance.describe(provenance.current())}, report written "
        f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- software: {', '.join(f'{k} {v}' for k, v in _versions().items())}",
        "", "## Measured beside the paper", "",
        ("Test accuracy in percent, mean over seeds (a difference from the float baseline in percentage points)."
         if classifier else f"Test {metric.upper()} in the targets' units (reconstruction: the standardised "
                            "inputs), mean over seeds (a difference from the float baseline); lower is better."),
        "", to_markdown(tables["paper"], paper_decimals), "",
        *(["Quick mode: no verdicts against the paper's numbers or the targets (a smoke run)."] if quick else
          [] if not classifier else [
            "Targets (test accuracy, mean over seeds): "
            + (", ".join(f"{label} >= {100 * value:.2f} pts" if label.endswith(" vs float") else
                         f"{label} >= {_pct(value)}" for label, value in targets.items()) or "none") + ".", "",
            "Missed targets, and why:", "", *(_explanations(experiment, found) or ["- none"])]),
        "", "## Accuracy" if classifier else f"## Test error ({metric.upper()}, {experiment.resolved_task})", "",
        to_markdown(tables[kind], decimals[kind]), "",
        *([] if classifier else [
            f"{metric.upper()} against the targets"
            + (" (the standardised inputs: an autoencoder's reconstruction error)"
               if experiment.resolved_task == "reconstruction" else "")
            + "; 'vs ideal' against the ideal chip's outputs (the exact integer network); lower is better.", ""]),
        f"![{kind}]({kind}.png)", "",
        f"![{kind} vs time]({kind}_vs_time.png)", "",
        "## Deployment runtime", "",
        *[f"- {name}: " + (runtime_line(v["export"]["runtime_report"], experiment.resolved_task)
                           if v["export"].get("runtime_report") else "not recorded (exported by an older tf_nvm; "
                                                                     "rerun with --force export)")
          for name, v in found.items()], "",
        "## Hardware cost", "", to_markdown(tables["cost"], 4), "",
        "### Unipolar vs bipolar periphery", "",
        "Each variant's network mapped unipolar and bipolar (differential pairs); the crossbar periphery is what "
        "the paper compares (DACs, S&H, ADCs, shift-and-add, pair subtraction or G_min correction, partial sums), "
        "the periphery incl. digital units adds bias/activation/requantisation, digital layers and lanes. Energy "
        "per inference; at the same inference rate the power changes alike. The paper's figures compare its own "
        "circuit designs; ours come from the cited component model of docs/cost_model.md (power agrees under its "
        "assumptions; area depends on how arrays are sized, see there).", "",
        to_markdown(tables["unipolar_vs_bipolar"], PERIPHERY_DECIMALS), "",
        "### Shared vs per-layer periphery", "", to_markdown(tables["shared_vs_per_layer"], 4), "",
        "![area](periphery_area.png)", "", "![energy](periphery_energy.png)", "",
        "## Crossbar vs microcontroller (per inference)", "", to_markdown(tables["crossbar_vs_mcu"], decimals["crossbar_vs_mcu"]), "",
        "![crossbar vs mcu](crossbar_vs_mcu.png)", "", "## Conductance levels", "", "![levels](levels.png)", "",
        "## Wall time per step (s, from the step markers, whichever invocation ran the step)", "",
        to_markdown(_step_times(found), 0), "",
        "This invocation ran: " + (", ".join(f"{key} ({seconds:.0f} s)" for key, seconds in timings.items())
                                   or "nothing (every step was reused)") + ".", "",
        "Training time per model (minutes, mean and max over seeds; a float baseline shared by variants of one "
        "architecture was trained once and is listed with each; the median epoch, over every recorded epoch, "
        "is not moved by a few epochs paused or sharing the machine, but is by many):", "",
        to_markdown(_model_times(found), 1), "",
        "Whole recipe: {:.1f} h recorded ({:.1f} h with every training at its median epoch), every training "
        "and every other step of every variant, each shared float baseline once.".format(
            *_recipe_hours(found)),
    ]
    lines += ["", f"Host: {platform.node()}, {os.cpu_count()} CPU(s), {platform.platform()}."]
    write_bytes_atomic(os.path.join(folder, "report.md"), ("\n".join(lines) + "\n").encode("utf-8"))
    write_bytes_atomic(os.path.join(folder, "report.html"),
                       _html_page(experiment.name, lines, folder).encode("utf-8"))
    data = {"experiment": experiment.to_dict(), "quick": quick,
            "tables": {k: to_records(t) for k, t in tables.items()},
            "plots": {k: os.path.basename(v) for k, v in plots.items()}}
    write_bytes_atomic(os.path.join(folder, "report.json"), json.dumps(data, indent=2).encode("utf-8"))
    return folder
