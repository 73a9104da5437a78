"""The report folder of `tf-nvm run`: ``report.md``, the same as one self-contained ``report.html`` (plots
embedded), CSV + Markdown tables and PNG plots, from the step markers.

Everything is computed from what the steps recorded (``metrics.json`` and the
step markers of each variant), so a report rebuilt after an interrupted and
resumed run equals the one of an uninterrupted run in every field but the
timings (the wall time per step, in report.md only).

The parts: `tf_nvm.pipeline.report_tables` (the tables), `tf_nvm.pipeline.report_plots` (the PNGs),
`tf_nvm.pipeline.report_text` (report.md's lines), `tf_nvm.pipeline.report_html` (report.html).
"""

import json
import os

from tf_nvm.core.atomic import write_bytes_atomic
from tf_nvm.core.errors import PipelineError
from tf_nvm.core.safe_io import read_json
from tf_nvm.core.tables import to_records, write_table
from tf_nvm.pipeline.experiment import Experiment
from tf_nvm.pipeline.markers import STEPS, check_marker, variant_folder
from tf_nvm.pipeline.report_html import html_page
from tf_nvm.pipeline.report_plots import plot_accuracy, plot_levels, plot_mcu, plot_periphery, plot_sweep
from tf_nvm.pipeline.report_tables import (PERIPHERY_DECIMALS, RUNTIME_COLUMNS, accuracy_table, cost_table,
                                           mcu_table, metric_of, paper_table, periphery_table, shared_table)
from tf_nvm.pipeline.report_text import report_lines, runtime_line

__all__ = ["RUNTIME_COLUMNS", "write_report", "runtime_line"]


def _collect(experiment, out):
    """Per variant: its training recipe as run (``experiment.json``), metrics.json and every step's marker."""
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


def write_report(experiment: Experiment, out: str, quick: bool, timings: dict[str, float]) -> str:
    """Writes ``out/report/`` (report.md, report.html, tables, plots, report.json); returns the folder.

    Args:
        experiment: `tf_nvm.pipeline.experiment.Experiment` as run (``--quick`` applied).
        out: the output folder of `tf_nvm.pipeline.steps.run_experiment`.
        quick: a smoke run (no verdicts).
        timings: wall time of each step this invocation ran, ``{"<variant>/<step>": seconds}``.

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
        return _write(experiment, quick, timings, folder, found)
    except (KeyError, TypeError, IndexError, AttributeError) as err:
        raise PipelineError(f"the report of {out} cannot be built: a value it reads is missing or of the wrong type "
                            f"({type(err).__name__}: {str(err)[:200]}); a variant's metrics.json or step marker "
                            "(variants/*/steps/*.json) was edited. Fix: pass --force export to redo the steps after "
                            "training (or --force train if a metrics.json was edited).") from None


def _tables(experiment, found, quick, kind):
    """``(tables, decimals)``: the report's tables by file name and the decimals of their float cells."""
    classifier = kind == "accuracy"
    tables = {kind: accuracy_table(found), "paper": paper_table(experiment, found, quick),
              "cost": cost_table(found), "unipolar_vs_bipolar": periphery_table(found),
              "shared_vs_per_layer": shared_table(found), "crossbar_vs_mcu": mcu_table(found)}
    decimals = {
        "paper": 2 if classifier else 4, "unipolar_vs_bipolar": PERIPHERY_DECIMALS, kind: 2 if classifier else 4,
        "crossbar_vs_mcu": {"test accuracy (%)": 2, "energy per inference nJ": 1, "latency us": 2}}
    return tables, decimals


def _plots(experiment, found, folder, kind, mcu):
    """Every plot of the report, written into ``folder``: {name: path}."""
    preset = experiment.simulation.preset
    plots = {kind: plot_accuracy(found, os.path.join(folder, f"{kind}.png"), preset),
             f"{kind}_vs_time": plot_sweep(found, os.path.join(folder, f"{kind}_vs_time.png"), preset),
             "levels": plot_levels(found, os.path.join(folder, "levels.png")),
             "crossbar_vs_mcu": plot_mcu(mcu, os.path.join(folder, "crossbar_vs_mcu.png"))}
    plots.update({f"periphery_{k}": v for k, v in plot_periphery(experiment, found, folder).items()})
    return plots


def _write(experiment, quick, timings, folder, found):
    """`write_report` once ``found`` is read."""
    os.makedirs(folder, exist_ok=True)
    kind = "accuracy" if metric_of(found) == "accuracy" else "error"  # a regression report never says accuracy
    tables, decimals = _tables(experiment, found, quick, kind)
    for key, table in tables.items():
        write_table(table, os.path.join(folder, key), decimals.get(key, 4))
    plots = _plots(experiment, found, folder, kind, tables["crossbar_vs_mcu"])
    lines = report_lines(experiment, found, quick, timings, tables, decimals)
    write_bytes_atomic(os.path.join(folder, "report.md"), ("\n".join(lines) + "\n").encode("utf-8"))
    write_bytes_atomic(os.path.join(folder, "report.html"),
                       html_page(experiment.name, lines, folder).encode("utf-8"))
    data = {"experiment": experiment.to_dict(), "quick": quick,
            "tables": {k: to_records(t) for k, t in tables.items()},
            "plots": {k: os.path.basename(v) for k, v in plots.items()}}
    write_bytes_atomic(os.path.join(folder, "report.json"), json.dumps(data, indent=2).encode("utf-8"))
    return folder
