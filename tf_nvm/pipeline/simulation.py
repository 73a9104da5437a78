"""Monte Carlo chips of ``tf-nvm simulate``: one setting or a sweep, scored with the task's metrics, written to a
folder (``results.json``, ``chips.csv``/``.md`` or ``sweep.*``) with the shard record that lets shards merge.

* `simulate`: the command as a function (test data from `tf_nvm.pipeline.inputs.test_data`).
* `monte_carlo_settings`: what sets a Monte Carlo's numbers besides the chips and the mapping.
* `write_monte_carlo`: a `MonteCarloResult` and its shard record written to a folder (also the merge of shards,
  `tf_nvm.pipeline.shards`).
"""

import os
from typing import Any

from tf_nvm.core.atomic import write_json_atomic
from tf_nvm.core.errors import OutputFolderError, SimulatorError
from tf_nvm.core.outputs import claim_output_folder, final_paths, staged_output
from tf_nvm.core.tables import to_records, write_table
from tf_nvm.mapping import content_hash
from tf_nvm.pipeline.inputs import test_data
from tf_nvm.pipeline.sources import Source

__all__ = ["simulate", "write_monte_carlo", "monte_carlo_settings"]


def simulate(source: Source, out: str, *, config: Any, chips: Any = 25, dataset: str | None = None,
             data: str | None = None, examples: int | None = None, sweep: tuple[str, Any] | None = None,
             task: str | None = None, metric: str | None = None, verbose: bool = True,
             overwrite: bool = False) -> dict:
    """Monte Carlo chips of ``source`` on its test data, scored with the task's metrics; writes ``out``.

    Args:
        source: `Source` (`tf_nvm.pipeline.sources.read_source`).
        out: output folder (``results.json``; ``chips.csv``/``.md`` or ``sweep.csv``/``.md``/``.png``).
        config: `tf_nvm.simulator.SimulationConfig`.
        chips: programmed chips per setting, or a `tf_nvm.simulator.ChipRange` (a shard: chips A..B-1; merge
            shards with `tf_nvm.pipeline.shards.merge`).
        dataset, data, examples: the test data (`tf_nvm.pipeline.inputs.test_data`).
        sweep: ``(setting path, values)`` or None.
        task: a task name or None (`tf_nvm.core.metrics.resolve_task`).
        metric: the primary metric's name or None.
        verbose: progress lines.
        overwrite: ``out`` may hold another command's output, which is replaced (`tf_nvm.core.outputs`).

    Returns:
        the results dict written to ``results.json`` (``summary`` holds the per-metric means).

    Raises:
        OutputFolderError: ``out`` is a file, cannot be written, or holds files that are not a simulation's
            (checked before the data are read; the folder is replaced whole only when every file is written).
    """
    from tf_nvm.simulator import ChipRange, monte_carlo  # noqa: PLC0415  (imports TensorFlow)

    chip_range = chips if isinstance(chips, ChipRange) else None
    if chip_range is not None and sweep is not None:
        raise SimulatorError(f"simulate: a sweep runs every value on the same chips; chip range {chip_range} (a "
                             "shard) is for one setting. Fix: pass a chip count with the sweep, or run one "
                             "setting per shard (--set).")
    chips = chips if chip_range is None else chip_range.count
    claim_output_folder(out, "simulate", overwrite, error=OutputFolderError)  # before the data are read
    evaluation = test_data(source, dataset, data, examples, verbose=verbose)
    mapping = source.mapping
    if verbose:
        note = "" if evaluation.standardised else " (the mapping records no standardisation: inputs fed as given)"
        which = "" if chip_range is None or not chip_range.start else f" (chips {chip_range})"
        print(f"[tf-nvm] simulating {source.path} on {len(evaluation.x)} {evaluation.label} test examples, "
              f"{chips} chip(s){which}, noise {config.device.noise}{note}", flush=True)
    results = {"source": os.path.abspath(source.path), "dataset": evaluation.dataset, "data": evaluation.source,
               "examples": len(evaluation.x), "config": config.to_dict(), "mapping": mapping.summary()}
    with staged_output(out, "simulate", overwrite, error=OutputFolderError) as staging:  # every file commits together
        if sweep is not None:
            _write_sweep(staging, out, results, source, evaluation, sweep, config, chips, task, metric, verbose)
        else:
            result = monte_carlo(mapping, evaluation.x, evaluation.y, config, chips, evaluation.calibration,
                                 verbose=verbose, task=task, metric=metric,
                                 first_chip=0 if chip_range is None else chip_range.start)
            write_monte_carlo(staging, results, result, monte_carlo_settings(config, evaluation, result), mapping,
                              verbose, final=out)
    return results


def _write_sweep(staging, out, results, source, evaluation, sweep, config, chips, task, metric, verbose):
    """Runs the sweep ``(setting path, values)`` on the same chips and writes it into ``staging`` (which becomes
    ``out``); adds it to ``results``."""
    from tf_nvm.simulator import sweep as run_sweep, write_sweep  # noqa: PLC0415  (imports TensorFlow)

    key, values = sweep
    table = run_sweep(source.mapping, evaluation.x, evaluation.y, key, values, config, chips, evaluation.calibration,
                      verbose=verbose, task=task, metric=metric)
    metric_name = str(table["metric"].iloc[0])
    files = write_sweep(table, key, staging, f"{os.path.basename(os.path.normpath(source.path))}: "
                                             f"{metric_name} vs {key} ({chips} chips, {config.device.noise})")
    results.update(sweep=key, task=str(table["task"].iloc[0]), metric=metric_name,
                   rows=to_records(table), files=final_paths(files, staging, out))
    write_json_atomic(os.path.join(staging, "results.json"), results)


def monte_carlo_settings(config: Any, evaluation: Any, result: Any) -> dict:
    """What sets a Monte Carlo's numbers besides the chips and the mapping (hashed into its shard record)."""
    from tf_nvm.keras.backend import tf  # noqa: PLC0415  (TensorFlow: already imported by the simulator)
    from tf_nvm.simulator.shards import array_hash  # noqa: PLC0415  (imports TensorFlow)

    return {"config": config.to_dict(), "tensorflow": tf.__version__, "dataset": evaluation.dataset,
            "examples": len(evaluation.x),
            "task": result.task, "metric": result.metric,
            "data_sha256": array_hash(evaluation.x, evaluation.y, evaluation.calibration)}


def write_monte_carlo(out: str, results: dict, result: Any, settings: dict | str, mapping: Any,
                      verbose: bool = True, final: str | None = None) -> dict:
    """Adds a `MonteCarloResult` and its shard record (chip range, settings and mapping hashes) to ``results``,
    writes ``chips.csv``/``.md`` and ``results.json`` in ``out``; returns ``results``.

    ``settings``: `monte_carlo_settings`, or its hash (str) when merging shards. ``mapping``: the
    `tf_nvm.mapping.Mapping`, or its content hash (str) when merging shards. ``final``: the folder ``out``
    becomes (``out`` is a `tf_nvm.core.outputs.staged_output` staging folder): the recorded file paths are made final.
    """
    from tf_nvm.simulator.shards import ChipRange, ShardInfo, settings_hash  # noqa: PLC0415  (imports TensorFlow)

    os.makedirs(out, exist_ok=True)
    csv_path, md_path = write_table(result.chip_table(), os.path.join(out, "chips"))
    shard = ShardInfo(ChipRange(result.first_chip, result.first_chip + len(result.scores)),
                      settings if isinstance(settings, str) else settings_hash(settings),
                      mapping if isinstance(mapping, str) else content_hash(mapping))
    results.update(task=result.task, metric=result.metric, summary=result.row(), chips=list(result.scores),
                   chip_metrics={k: list(v) for k, v in result.metrics.items()},
                   files=final_paths({"csv": csv_path, "markdown": md_path}, out, final if final is not None else out),
                   shard=shard.to_dict())
    if verbose:
        print(f"[tf-nvm] {result.summary_line()}", flush=True)
    write_json_atomic(os.path.join(out, "results.json"), results)
    return results
