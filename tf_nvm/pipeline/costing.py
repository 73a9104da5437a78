"""The library behind ``tf-nvm cost``: the settings, the MCU baseline's ``.tflite``, every table and plot.

* `cost_settings`: a technology (preset, JSON file or `Technology`) and ``--set`` texts -> (technology, cores);
  every setting is checked here, before any computation.
* `read_mcu_model`: a ``.tflite`` (bounded read, refused when hostile, optionally checked against the sha256 its
  export recorded) -> parsed graph and TFLite Micro arena.
* `cost_source`: ``tf-nvm cost`` as a function: a run variant is costed with its experiment's technology and its
  own exported ``.tflite`` (the numbers of its report), a mapping or ``tf-nvm train`` folder with the defaults.
* `write_cost`: the scenarios (`tf_nvm.cost.standard_scenarios`), unipolar vs bipolar, shared vs per-layer
  periphery and, with a graph, the crossbar-vs-MCU table, written to an output folder that commits whole
  (`tf_nvm.core.outputs.staged_output`); returns the results dict and a short human summary.

Application layer (imports ``tflite_export`` to parse the flatbuffer).
"""

import dataclasses
import hashlib
import os
from collections.abc import Iterable
from typing import Any

import pandas as pd

from tf_nvm.core.atomic import write_json_atomic
from tf_nvm.core.errors import CostModelError, ExportError, OutputFolderError
from tf_nvm.core.outputs import claim_output_folder, final_paths, staged_output
from tf_nvm.core.safe_io import read_bytes
from tf_nvm.core.tables import to_records
from tf_nvm.cost import (MCU_CORES, McuCore, Technology, apply_settings, check_tflite_bytes, compare_mappings,
                         get_technology, mcu_cost, op_table, shared_vs_per_layer, standard_scenarios)
from tf_nvm.cost.report import component_table, plot_components, plot_crossbar_vs_mcu, write_table
from tf_nvm.cost.technology import parse_setting
from tf_nvm.pipeline.evaluate import ideal_scores, read_source

__all__ = ["cost_settings", "read_mcu_model", "write_cost", "cost_source", "si", "MAX_TFLITE_BYTES"]

MAX_TFLITE_BYTES = 256 << 20
"""Largest ``.tflite`` read as the MCU baseline, bytes."""

_FIX = "Fix: pass the .tflite file written by tf-nvm export --tflite."


def si(value: float, unit: str) -> str:
    """``value`` (in ``unit``) with an SI prefix, 4 significant digits: ``si(9.38e-3, "J") -> "9.378 mJ"``."""
    for factor, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value / 1e-12:.4g} p{unit}"


def cost_settings(technology: str | os.PathLike | Technology | None = None,
                  settings: Iterable[str] = ()) -> tuple[Technology, dict[str, McuCore]]:
    """(technology, {core name: `McuCore`}) from a technology and ``key=value`` texts.

    A key ``mcu.<core>.<field>`` sets a field of an MCU core; any other key a technology field
    (`tf_nvm.cost.apply_settings`). Every value is validated here (before anything is computed).

    Raises:
        CostModelError: an unknown technology, core or field, or a value that is not allowed.
    """
    tech_settings, cores = [], {name: core for name, core in MCU_CORES.items()}
    for text in settings:
        key, value = parse_setting(text)
        if key.startswith("mcu."):
            parts = key.split(".")
            if len(parts) != 3 or parts[1] not in cores:
                raise CostModelError(f"--set {text!r}: an MCU key is mcu.<core>.<field> with core one of "
                                     f"{sorted(cores)}. Fix: e.g. --set mcu.cortex-m7.clock_mhz=400.")
            fields = [f.name for f in dataclasses.fields(cores[parts[1]])]
            if parts[2] not in fields:
                raise CostModelError(f"--set {text!r}: unknown MCU core field {parts[2]!r}; known: {fields}. Fix: use "
                                     "one of those.")
            try:
                cores[parts[1]] = dataclasses.replace(cores[parts[1]], **{parts[2]: value})
            except CostModelError as err:
                raise CostModelError(f"--set {text[:120]!r}: {err}") from None
        else:
            tech_settings.append(text)
    return apply_settings(get_technology(technology), tech_settings), cores


def read_mcu_model(path: str | os.PathLike, arena_bytes: int | None = None, expected_sha256: str | None = None,
                   where: str | None = None) -> tuple[Any, int | None, list[str]]:
    """The MCU baseline's ``.tflite``: ``(graph, arena bytes or None, notes)``.

    Impossible sizes and indices, control flow and files that are no TFLite flatbuffer are refused before the
    model runs; the TFLite Micro arena is measured in a child process (when ``tflite-micro`` is installed and
    ``arena_bytes`` is None).

    Args:
        path: the ``.tflite`` file.
        arena_bytes: the arena in bytes (None: measure it).
        expected_sha256: the sha256 (hex) the export recorded for this file; a different file is refused.
        where: named in messages (default ``--tflite PATH``).

    Raises:
        CostModelError: the file cannot be read, is not the file its export recorded, or is refused.
    """
    from tflite_export.flatbuffer import check_runnable, read_tflite  # noqa: PLC0415  (imports TensorFlow)

    where = where or f"--tflite {os.fspath(path)!r}"
    content = read_bytes(path, max_bytes=MAX_TFLITE_BYTES, error=CostModelError, fix=_FIX)
    if expected_sha256 is not None:
        found = hashlib.sha256(content).hexdigest()
        if found != expected_sha256:
            raise CostModelError(f"{where}: sha256 {found[:16]}... is not the {expected_sha256[:16]}... its export "
                                 "recorded: the file was replaced or edited after `tf-nvm run` exported it. Fix: "
                                 "rerun with --force export, or restore the exported file.")
    check_tflite_bytes(content, where)
    try:
        graph = read_tflite(content)
        check_runnable(graph)  # a WHILE loop: no tf_nvm export, and its cost is not one pass of its body
    except ExportError as err:
        raise CostModelError(f"{where}: {err}") from None
    except Exception as err:  # a corrupt flatbuffer fails inside the generated bindings
        raise CostModelError(f"{where}: the flatbuffer cannot be parsed ({type(err).__name__}: {err}). "
                             f"{_FIX}") from None
    try:
        op_table(graph)  # refuses impossible sizes and indices before the model runs to measure its arena
    except CostModelError as err:
        raise CostModelError(f"{where}: {err}") from None
    notes = []
    if arena_bytes is None:
        try:
            import tflite_micro  # noqa: F401, PLC0415  (optional and heavy: only to know whether it is installed)
        except ImportError:
            notes.append("warning: tflite-micro is not installed: RAM (arena) not measured; pass --arena-bytes N")
        else:
            from tflite_export.verify import measure_arena  # noqa: PLC0415  (imports TensorFlow)

            try:
                arena_bytes = measure_arena(content)
            except ExportError as err:
                raise CostModelError(f"{where}: {err}") from None
    return graph, arena_bytes, notes


def write_cost(out: str, mapping: Any, technology: Technology, cores: dict[str, McuCore] | None = None, *,
               name: str, source: str | os.PathLike, graph: Any = None, arena_bytes: int | None = None,
               accuracy: float | None = None, scores: dict[str, float] | None = None, overwrite: bool = False,
               extra: dict | None = None) -> tuple[dict, list[str]]:
    """Every cost table and plot of ``mapping``, written to folder ``out`` (which commits whole).

    Files: ``summary`` (one row per scenario of `tf_nvm.cost.standard_scenarios`), ``components``, ``layers``,
    ``unipolar_vs_bipolar``, ``shared_vs_per_layer`` and with ``graph`` ``mcu_ops`` and ``crossbar_vs_mcu``, each
    as CSV + Markdown; PNG stacked bars; ``results.json``.

    Args:
        out: output folder (`tf_nvm.core.outputs` rule: missing, empty, an earlier cost, or ``overwrite``).
        mapping: `tf_nvm.mapping.Mapping`.
        technology: `tf_nvm.cost.Technology`.
        cores: {name: `McuCore`} (default every registered core).
        name: the model's label in titles and lines.
        source: the path the mapping came from (recorded).
        graph, arena_bytes: the MCU baseline (`read_mcu_model`), or None.
        accuracy: the accuracy column of the crossbar-vs-MCU table, or None.
        scores: {metric: value} of the ideal chip, or None.
        overwrite: ``out`` may hold another command's output.
        extra: more JSON-ready entries for ``results.json`` (e.g. the run variant costed).

    Returns:
        ``(results dict, summary lines)``.
    """
    claim_output_folder(out, "cost", overwrite, error=OutputFolderError)
    cores = dict(MCU_CORES.items()) if cores is None else cores
    tech = technology
    kind = mapping.spec.mapping_kind
    results = standard_scenarios(mapping, tech)
    xbar = results[f"as mapped ({kind})"]
    summary = pd.DataFrame([result.summary() for result in results.values()])
    comparison = compare_mappings(mapping, tech)
    shared = shared_vs_per_layer(mapping, tech)
    report = {"source": os.path.abspath(os.fspath(source)), "technology": tech.to_dict(), **(extra or {}),
              "mapping": mapping.summary(), "summary": to_records(summary),
              "unipolar_vs_bipolar": comparison, "shared_vs_per_layer": to_records(shared)}
    if scores:
        report["ideal_scores"] = scores
    lines = [f"{name}: crossbar ({kind}, {tech.name}, {tech.array_sizing} arrays): {xbar.area_um2 * 1e-6:.4f} mm^2, "
             f"{si(xbar.energy_pj * 1e-12, 'J')} and {si(xbar.latency_ns * 1e-9, 's')} per inference",
             f"unipolar vs {comparison['bipolar_mapping']}: crossbar periphery area "
             f"{-100 * comparison['area_reduction']:+.1f} % (paper: -{100 * comparison['paper_area_reduction']:.0f} "
             f"%), power {-100 * comparison['power_reduction']:+.1f} % (paper: up to "
             f"-{100 * comparison['paper_power_reduction']:.0f} %)"]
    with staged_output(out, "cost", overwrite, error=OutputFolderError) as staging:
        files = _write_crossbar_tables(staging, name, tech, results, xbar, summary, comparison, shared)
        if graph is not None:
            rows = [{"platform": f"crossbar ({kind}, {tech.name})", "accuracy": accuracy,
                     "memory_bytes": xbar.components.loc[xbar.components["component"] == "activation_buffer",
                                                         "count"].sum(),
                     "weights_devices": mapping.summary()["devices"], "area_mm2": xbar.area_um2 * 1e-6,
                     "energy_nj": xbar.energy_pj * 1e-3, "latency_us": xbar.latency_ns * 1e-3}]
            versus, mcu = _write_mcu_tables(staging, name, graph, cores, arena_bytes, accuracy, rows, lines, files)
            report["crossbar_vs_mcu"] = to_records(versus)
            report["mcu"] = mcu
        report["files"] = final_paths(files, staging, out)
        write_json_atomic(os.path.join(staging, "results.json"), report)
    return report, lines


def _write_crossbar_tables(staging, name, tech, results, xbar, summary, comparison, shared):
    """The crossbar's tables and stacked-bar plots in ``staging`` (``xbar``: the scenario as mapped):
    {file key: path(s)}."""
    files = {"summary": write_table(summary, os.path.join(staging, "summary")),
             "components": write_table(component_table(results), os.path.join(staging, "components")),
             "layers": write_table(xbar.components.copy(), os.path.join(staging, "layers")),
             "unipolar_vs_bipolar": write_table(pd.DataFrame([comparison]),
                                                os.path.join(staging, "unipolar_vs_bipolar")),
             "shared_vs_per_layer": write_table(shared, os.path.join(staging, "shared_vs_per_layer"))}
    mapped = {key: value for key, value in results.items() if key != "offset"}
    files["area_png"] = plot_components(mapped, "area_um2", os.path.join(staging, "area_by_component.png"),
                                        f"{name}: area by component ({tech.name}, {tech.array_sizing} arrays)")
    files["energy_png"] = plot_components(mapped, "energy_pj", os.path.join(staging, "energy_by_component.png"),
                                          f"{name}: energy per inference by component ({tech.name})")
    return files


def _write_mcu_tables(staging, name, graph, cores, arena_bytes, accuracy, rows, lines, files):
    """The MCU baseline per core beside the crossbar (``rows`` holds its row): writes ``mcu_ops`` and
    ``crossbar_vs_mcu`` (table and plot) into ``staging`` and adds them to ``files``, a line per core to
    ``lines``; returns ``(crossbar-vs-MCU table, {core: totals})``."""
    mcu_tables, mcu = [], {}
    for core_name, core in cores.items():
        table, totals = mcu_cost(graph, core, arena_bytes)
        table.insert(0, "core", core_name)
        mcu_tables.append(table)
        mcu[core_name] = totals
        rows.append({"platform": core.name, "accuracy": accuracy, "flash_bytes": totals["flash_bytes"],
                     "ram_bytes": totals["ram_bytes"], "macs": totals["macs"],
                     "energy_nj": totals["energy_nj"], "latency_us": totals["latency_us"]})
        lines.append(f"{core.name}: {si(totals['energy_nj'] * 1e-9, 'J')}, "
                     f"{si(totals['latency_us'] * 1e-6, 's')} per inference, flash {totals['flash_bytes']} "
                     f"B, RAM {totals['ram_bytes']} B")
    versus = pd.DataFrame(rows, columns=["platform", "accuracy", "flash_bytes", "ram_bytes", "memory_bytes",
                                         "weights_devices", "macs", "area_mm2", "energy_nj", "latency_us"])
    files["mcu_ops"] = write_table(pd.concat(mcu_tables, ignore_index=True), os.path.join(staging, "mcu_ops"))
    files["crossbar_vs_mcu"] = write_table(versus, os.path.join(staging, "crossbar_vs_mcu"))
    files["crossbar_vs_mcu_png"] = plot_crossbar_vs_mcu(versus, os.path.join(staging, "crossbar_vs_mcu.png"),
                                                        f"{name}: crossbar vs microcontroller per inference")
    return versus, mcu


def cost_source(source: str | os.PathLike, out: str, *, variant: str | None = None,
                technology: str | os.PathLike | Technology | None = None, settings: Iterable[str] = (),
                tflite: str | os.PathLike | None = None, arena_bytes: int | None = None, accuracy: float | None = None,
                data: str | None = None, dataset: str | None = None, task: str | None = None,
                overwrite: bool = False) -> tuple[dict, list[str]]:
    """``tf-nvm cost``: every argument checked first, then the source read and costed into ``out``.

    Args:
        source: a ``tf-nvm train`` folder, a ``tf-nvm run`` experiment folder (``variant``), its
            ``variants/<recipe>`` folder, or a mapping prefix (`tf_nvm.pipeline.evaluate.read_source`).
        out: output folder (`tf_nvm.core.outputs` rule).
        variant: the variant of an experiment folder.
        technology: preset name, JSON file or `Technology` (default: a run variant's experiment technology, else
            ``isaac-32nm``).
        settings: ``key=value`` texts (`cost_settings`).
        tflite: the MCU baseline's ``.tflite`` (default: a run variant's own export, checked by its sha256).
        arena_bytes: its TFLite Micro arena (default: measured, or the one a run variant's export measured).
        accuracy: the accuracy column (default: the run's, or the ideal chip's on ``data``/``dataset``).
        data, dataset, task: test data for the ideal chip's scores (`tf_nvm.pipeline.evaluate.ideal_scores`).
        overwrite: ``out`` may hold another command's output.

    Returns:
        ``(results dict, summary lines)``; the last line names ``results.json``.

    Raises:
        CostModelError, OutputFolderError, RunFolderError, MappingError: as the parts it calls, before any cost is
            computed.
    """
    if accuracy is not None and not 0.0 <= accuracy <= 1.0:
        raise CostModelError(f"--accuracy: value {accuracy!r} is not allowed; allowed: a fraction in 0..1. Fix: "
                             "e.g. --accuracy 0.93.")
    if arena_bytes is not None and arena_bytes <= 0:
        raise CostModelError(f"--arena-bytes: value {arena_bytes!r} is not allowed; allowed: an integer > 0. "
                             "Fix: pass the arena tf-nvm export printed.")
    settings = list(settings)
    tech, cores = cost_settings(technology, settings)  # every setting checked before anything is read
    claim_output_folder(out, "cost", overwrite, error=OutputFolderError)
    graph, arena, lines = read_mcu_model(tflite, arena_bytes) if tflite else (None, None, [])
    found = read_source(source, variant)
    if found.technology is not None and technology is None:  # a run variant: the technology of its report
        tech, cores = cost_settings(found.technology, settings)
    if graph is None and found.tflite is not None:  # a run variant: its own export is the MCU baseline
        graph, arena, lines = read_mcu_model(found.tflite, arena_bytes or found.arena_bytes, found.tflite_sha256,
                                             where=found.tflite)
    scores: dict[str, float] = {}
    measured = found.accuracy
    if data is not None or dataset is not None:
        chosen, scores = ideal_scores(found, dataset, data, task=task)
        lines.append(f"ideal chip on the test data ({chosen}): "
                     + ", ".join(f"{name} {value:.4g}" for name, value in scores.items()))
        measured = scores.get("accuracy")  # the accuracy column holds accuracies only
    accuracy = measured if accuracy is None else accuracy
    name = found.variant or os.path.basename(os.path.normpath(os.fspath(source)))
    report, summary = write_cost(out, found.mapping, tech, cores, name=name, source=source, graph=graph,
                                 arena_bytes=arena, accuracy=accuracy, scores=scores, overwrite=overwrite,
                                 extra={"variant": found.variant} if found.variant else None)
    return report, lines + summary + [f"results: {os.path.abspath(os.path.join(os.fspath(out), 'results.json'))}"]
