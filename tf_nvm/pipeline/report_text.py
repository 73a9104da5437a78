"""The text of ``report.md`` (`tf-nvm run`): its sections as Markdown lines, from the step markers and the
report's tables (`tf_nvm.pipeline.report_tables`); every number a headline quotes is a cell of a table, written
as that cell is."""

import datetime
import importlib.metadata
import os
import platform
import sys
from typing import Any

import pandas as pd

from tf_nvm.core import provenance
from tf_nvm.core.tables import to_markdown
from tf_nvm.pipeline.report_tables import (PERIPHERY_DECIMALS, PERIPHERY_SCOPES, accuracies, float_baselines,
                                           metric_of, model_times, pct, periphery_table, recipe_hours, step_times)

__all__ = ["runtime_line", "report_lines", "headlines", "explanations"]


def _fixed(value, decimals):
    """``value`` as `tf_nvm.core.tables.to_markdown` writes a float cell with ``decimals`` decimals (a headline
    quoting a cell uses this, so the two read the same)."""
    return f"{float(value):.{decimals}f}"


_RUNTIME_NAMES = {"litert": "LiteRT", "tflm": "TFLite Micro"}


def runtime_line(info: dict, task: str | None = "classification") -> str:
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


def explanations(experiment: Any, found: dict) -> list[str]:
    """One line per missed target: by how much, the gap to the variant's own float baseline (measured) and
    the experiment's ``notes`` for that label."""
    lines = []
    targets, notes = experiment.targets, experiment.notes
    missed = [f"{label}: {pct(accuracy)} (missed by {100 * (targets['float'] - accuracy):.2f} pts)"
              for label, accuracy in float_baselines(found) if "float" in targets and accuracy < targets["float"]]
    if missed:
        lines.append(f"- float, against the target {pct(targets['float'])}: {'; '.join(missed)}. "
                     f"{notes.get('float', '')}".rstrip())
    for name, kind, nvm, flt in accuracies(found):
        allowed = targets.get(f"{kind} vs float")
        if allowed is not None and nvm - flt < allowed:
            lines.append(f"- {name}: {pct(nvm)}, {100 * (nvm - flt):.2f} pts from its float baseline "
                         f"{pct(flt)} (target: >= {100 * allowed:.2f} pts; missed by "
                         f"{100 * (allowed - (nvm - flt)):.2f} pts). {notes.get(f'{kind} vs float', '')}".rstrip())
        if kind not in targets or nvm >= targets[kind]:
            continue
        target = targets[kind]
        baseline = (f"its float counterpart (same architecture, same seeds) reaches {pct(flt)}, "
                    + ("itself below the target, so the architecture and data limit it before quantization"
                       if flt < target else f"so quantization to {kind} changes it by {100 * (nvm - flt):.2f} pts"))
        lines.append(f"- {name}: {pct(nvm)} against the target {pct(target)} (missed by "
                     f"{100 * (target - nvm):.2f} pts); {baseline}. {notes.get(kind, '')}".rstrip())
    return lines


def headlines(found: dict, quick: bool) -> list[str]:
    """The summary lines at the top of report.md. Every number in them is a cell of a table of the same report,
    written as that cell is (a test parses the report and checks it)."""
    lines = []
    if quick:
        lines.append("- Quick mode: a smoke run (fewer seeds, epochs and chips: see What was run). It checks that "
                     "every step works; its numbers are not the paper's results and are not judged against the "
                     "paper's numbers or the targets.")
    metric = metric_of(found)
    for name, kind, nvm, flt in accuracies(found):
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
    table = periphery_table({name: found[name]}).set_index("periphery")

    def cell(scope, column):
        value = table.loc[scope, column]
        return "?" if value is None or pd.isna(value) else _fixed(value, PERIPHERY_DECIMALS[column])

    xbar, whole = (scope for scope, *_ in PERIPHERY_SCOPES)
    lines.append(
        f"- unipolar vs bipolar, {name}'s network mapped both ways (table Unipolar vs bipolar periphery): {xbar} "
        f"area {cell(xbar, 'area change (%)')} %, energy {cell(xbar, 'energy change (%)')} % (paper: area "
        f"{cell(xbar, 'paper area change (%)')} %, power up to {cell(xbar, 'paper power change (%)')} %); "
        f"{whole}: area {cell(whole, 'area change (%)')} %, energy {cell(whole, 'energy change (%)')} %.")
    return lines


def _versions():
    out = {"python": sys.version.split()[0]}
    for package in ("tf-nvm", "tensorflow", "tf_keras", "tensorflow-model-optimization", "ai-edge-litert",
                    "tflite-micro", "numpy", "pandas"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def _what_was_run(experiment, found, quick):
    """The title, the description, the summary and what was run."""
    sim = experiment.simulation
    return [
        f"# {experiment.name}{' (quick mode: a smoke run)' if quick else ''}", "", experiment.description, "",
        "## Summary", "", *headlines(found, quick), "",
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
        f"- software: {', '.join(f'{k} {v}' for k, v in _versions().items())}"]


def _beside_paper(experiment, found, quick, tables, decimals):
    """The table beside the paper, the targets and the missed targets explained."""
    metric = metric_of(found)
    classifier = metric == "accuracy"
    kinds = {"float"} | {kind for _, kind, _, _ in accuracies(found)}
    targets = {label: value for label, value in experiment.targets.items()
               if label in kinds or label.removesuffix(" vs float") in kinds}  # only those a row of the table shows
    return [
        "## Measured beside the paper", "",
        ("Test accuracy in percent, mean over seeds (a difference from the float baseline in percentage points)."
         if classifier else f"Test {metric.upper()} in the targets' units (reconstruction: the standardised "
                            "inputs), mean over seeds (a difference from the float baseline); lower is better."),
        "", to_markdown(tables["paper"], decimals["paper"]), "",
        *(["Quick mode: no verdicts against the paper's numbers or the targets (a smoke run)."] if quick else
          [] if not classifier else [
            "Targets (test accuracy, mean over seeds): "
            + (", ".join(f"{label} >= {100 * value:.2f} pts" if label.endswith(" vs float") else
                         f"{label} >= {pct(value)}" for label, value in targets.items()) or "none") + ".", "",
            "Missed targets, and why:", "", *(explanations(experiment, found) or ["- none"])])]


def _accuracy(experiment, found, tables, decimals, kind):
    """The accuracy (or error) table with its plots, and the deployment runtime of each variant."""
    metric = metric_of(found)
    classifier = metric == "accuracy"
    return [
        "## Accuracy" if classifier else f"## Test error ({metric.upper()}, {experiment.resolved_task})", "",
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
          for name, v in found.items()]]


def _hardware(tables, decimals):
    """The hardware cost: crossbar, unipolar vs bipolar and shared vs per-layer periphery, crossbar vs MCU,
    conductance levels."""
    return [
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
        "## Crossbar vs microcontroller (per inference)", "",
        to_markdown(tables["crossbar_vs_mcu"], decimals["crossbar_vs_mcu"]), "",
        "![crossbar vs mcu](crossbar_vs_mcu.png)", "", "## Conductance levels", "", "![levels](levels.png)"]


def _wall_times(found, timings):
    """Wall time per step, this invocation's steps, training time per model and the whole recipe's hours."""
    return [
        "## Wall time per step (s, from the step markers, whichever invocation ran the step)", "",
        to_markdown(step_times(found), 0), "",
        "This invocation ran: " + (", ".join(f"{key} ({seconds:.0f} s)" for key, seconds in timings.items())
                                   or "nothing (every step was reused)") + ".", "",
        "Training time per model (minutes, mean and max over seeds; a float baseline shared by variants of one "
        "architecture was trained once and is listed with each; the median epoch, over every recorded epoch, "
        "is not moved by a few epochs paused or sharing the machine, but is by many):", "",
        to_markdown(model_times(found), 1), "",
        "Whole recipe: {:.1f} h recorded ({:.1f} h with every training at its median epoch), every training "
        "and every other step of every variant, each shared float baseline once.".format(
            *recipe_hours(found))]


def report_lines(experiment: Any, found: dict, quick: bool, timings: dict[str, float], tables: dict[str, pd.DataFrame],
                 decimals: dict[str, Any]) -> list[str]:
    """The lines of ``report.md``.

    Args:
        experiment: `tf_nvm.pipeline.experiment.Experiment` as run (``--quick`` applied).
        found: per variant, its recipe, metrics and step markers (`tf_nvm.pipeline.report` collects them).
        quick: a smoke run (no verdicts).
        timings: wall time of each step this invocation ran, ``{"<variant>/<step>": seconds}``.
        tables: the report's tables by file name (``accuracy`` or ``error``, ``paper``, ``cost``, ...).
        decimals: decimals of each table's float cells, by file name.

    Returns:
        the lines (no line ends).
    """
    kind = "accuracy" if metric_of(found) == "accuracy" else "error"
    return [*_what_was_run(experiment, found, quick), "", *_beside_paper(experiment, found, quick, tables, decimals),
            "", *_accuracy(experiment, found, tables, decimals, kind), "", *_hardware(tables, decimals), "",
            *_wall_times(found, timings),
            "", f"Host: {platform.node()}, {os.cpu_count()} CPU(s), {platform.platform()}."]
