"""The tables of the `tf-nvm run` report, computed from the step markers (`tf_nvm.pipeline.report` collects
them): accuracy (or error), beside the paper, hardware cost, unipolar vs bipolar periphery, shared vs per-layer
periphery, crossbar vs microcontroller, and the wall times.

Each table is a pandas DataFrame with one row per variant (or per variant and platform/scope); the report writes
each as CSV + Markdown (`tf_nvm.core.tables.write_table`) and quotes some cells in its headlines.
"""

import json
from typing import Any

import numpy as np
import pandas as pd

from tf_nvm.experiments import runs
from tf_nvm.pipeline.experiment import variant_kind
from tf_nvm.pipeline.markers import STEPS

__all__ = ["RUNTIME_COLUMNS", "PERIPHERY_DECIMALS", "PERIPHERY_SCOPES", "pct", "metric_of", "accuracy_table",
           "cost_table", "periphery_table", "shared_table", "mcu_table", "paper_table", "float_group",
           "float_baselines", "accuracies", "step_times", "model_times", "recipe_hours"]


def pct(value: float) -> str:
    return f"{100 * value:.2f} %"


def metric_of(found: dict) -> str:
    """The training metric of the variants (one task per experiment): ``"accuracy"``, or ``"mse"`` for regression
    and reconstruction (``metrics.json``'s ``metric``; folders of classifiers record none)."""
    return next(iter(found.values()))["metrics"].get("metric", "accuracy")


RUNTIME_COLUMNS = {
    "litert": "LiteRT vs Keras (LiteRT arithmetic) differing outputs",
    "tflm": "TFLite Micro vs Keras (TFLite Micro arithmetic) differing outputs",
    "deployed": "deployed runtime (spec)",
    "other": "other runtime vs Keras as trained differing outputs",
}
"""Column names of the accuracy table's exactness checks: each runtime against the Keras model computing in that
runtime's own arithmetic (the export is right for it), and the runtime the model was not trained for against the
model as trained (what deploying there costs; section Deployment runtime)."""


def accuracy_table(found: dict) -> pd.DataFrame:
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


def cost_table(found: dict) -> pd.DataFrame:
    """Per variant: tiles, devices, total area, energy and latency per inference of its crossbar mapping."""
    rows = []
    for name, v in found.items():
        summary, mapping = v["cost"]["summary"], v["export"]["mapping"]
        rows.append({
            "variant": name, "tiles": mapping["tiles"], "devices": mapping["devices"],
            "total area mm^2": summary["total_area_mm2"], "energy per inference nJ": summary["total_energy_nj"],
            "latency us": summary["latency_us"],
        })
    return pd.DataFrame(rows)


PERIPHERY_SCOPES = (
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


def periphery_table(found: dict) -> pd.DataFrame:
    """Unipolar vs bipolar (differential) for each variant's network, mapped both ways: area and energy per
    inference of the crossbar periphery and of the whole periphery (with the digital units), and the change."""
    rows = []
    for name, v in found.items():
        c = v["cost"]["unipolar_vs_bipolar"]
        for label, stem, area, power in PERIPHERY_SCOPES:
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


def shared_table(found: dict) -> pd.DataFrame:
    """Per variant: one shared converter and scaling design vs one per layer (`_SHARED_COLUMNS`)."""
    rows = []
    for name, v in found.items():
        for row in v["cost"]["shared_vs_per_layer"]:
            rows.append({"variant": name, **{header: row[key] for key, header in _SHARED_COLUMNS.items()}})
    return pd.DataFrame(rows)


def mcu_table(found: dict) -> pd.DataFrame:
    """Per variant: the crossbar and each microcontroller core, with the test metric, memory, energy and latency
    per inference."""
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


def float_group(name: str, v: dict) -> str:
    """What identifies the float baseline of variant ``name`` (``found`` entry ``v``) among the variants, as a
    string: the fields of its training recipe that shape that baseline and its measured test accuracy per seed
    (variants sharing a baseline report the same; run folders written before variants shared their float
    baselines trained one per variant, and those differ). Its name when no recipe was recorded."""
    from tf_nvm.experiments.train import FLOAT_KEY_IGNORES  # noqa: PLC0415  (imports TensorFlow)

    if not v["recipe"]:
        return name
    fields = {k: x for k, x in v["recipe"].items() if k not in FLOAT_KEY_IGNORES}
    metric = v["metrics"].get("metric", "accuracy")
    measured = [(seed["seed"], seed["float"].get(f"test_{metric}")) for seed in v["metrics"].get("seeds", [])]
    return json.dumps([fields, measured], sort_keys=True)


def float_baselines(found: dict) -> list[tuple[str, float]]:
    """[(label, test metric (mean over seeds))]: each distinct float baseline once, named by its
    architecture and the variants that share it."""
    groups: dict[str, dict] = {}
    for name, v in found.items():
        metric = v["metrics"].get("metric", "accuracy")
        group = groups.setdefault(float_group(name, v),
                                  {"architecture": v["recipe"].get("architecture", "float"), "names": [],
                                   "accuracy": v["metrics"][f"float_test_{metric}"]})
        group["names"].append(name)
    return [(f"{g['architecture']} network of {', '.join(g['names'])}", g["accuracy"]) for g in groups.values()]


def accuracies(found: dict) -> list[tuple[str, str, float, float]]:
    """[(variant, kind label, NVM metric, its float metric)], test accuracies (or MSE) as means over seeds."""
    out = []
    for name, v in found.items():
        metric = v["metrics"].get("metric", "accuracy")
        out.append((name, variant_kind(v["metrics"]["spec"]), v["metrics"][f"test_{metric}"],
                    v["metrics"][f"float_test_{metric}"]))
    return out


def _percent(value):
    return None if value is None else 100 * value


def paper_table(experiment: Any, found: dict, quick: bool = False) -> pd.DataFrame:
    """Test accuracies (mean over seeds) beside the paper's numbers and the experiment's targets, in percent
    (a difference in percentage points), with a verdict; a regression or reconstruction experiment shows its
    test MSE in the targets' units (it has no targets). In quick mode (a smoke run) neither targets nor
    verdicts. The unipolar-vs-bipolar periphery beside the paper's is `periphery_table`."""
    metric = metric_of(found)
    rows = [{"quantity": f"float test {metric} ({label})", "measured": value,
             "paper": experiment.paper.get(f"float {metric}"), "target": experiment.targets.get("float")}
            for label, value in float_baselines(found)]
    for name, kind, nvm, flt in accuracies(found):
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


def step_times(found: dict) -> pd.DataFrame:
    """Wall time of every step of every variant, as its marker recorded it (blank: not recorded)."""
    rows = []
    for name, v in found.items():
        seconds = {step: (runs.step_info(v["folder"], step) or {}).get("seconds") for step in STEPS}
        total = sum(t for t in seconds.values() if t is not None)
        rows.append({"variant": name, **seconds, "total": total})
    return pd.DataFrame(rows)


def model_times(found: dict) -> pd.DataFrame:
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


def recipe_hours(found: dict) -> tuple[float, float]:
    """(recorded, at the median epoch) hours of the whole recipe: every training and every other step.

    A float baseline shared by variants (one `float_group`: their training recipes differ only in fields
    that do not change it, `tf_nvm.experiments.train.FLOAT_KEY_IGNORES`, and they measured the same float accuracy per
    seed) counts once. "At the median epoch" replaces each training's
    recorded seconds by its median epoch times its epochs (the recorded seconds when it recorded none).
    """
    def seconds(result, epochs):
        times = result.get("epoch_seconds") or []
        median = float(np.median(times)) * epochs if times and epochs else result.get("seconds", 0.0)
        return result.get("seconds", 0.0), median

    recorded = median = 0.0
    floats_seen = set()
    for name, v in found.items():
        epochs = v["recipe"].get("epochs")
        group = float_group(name, v)
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
