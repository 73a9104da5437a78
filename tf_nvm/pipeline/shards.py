"""Monte Carlo shards of ``tf-nvm simulate``: ``--chips A:B`` folders merged into one run, ``--workers N`` locally.

* `merge`: result folders of contiguous shards (``tf-nvm simulate ... --chips A:B --out DIR``) -> one folder
  whose ``results.json``, ``chips.csv`` and ``chips.md`` equal those of one run over the whole range, bit for
  bit, except the two fields that say where and how long: ``files`` (paths in the output folder) and
  ``summary.seconds`` (the sum of the shards' wall times).
* `simulate_parallel`: the chips split over ``workers`` spawned local processes (each its own TensorFlow),
  each writing a shard folder under ``OUT/shards/``, then `merge` into ``OUT``.

The chip streams and the checks behind it live in `tf_nvm.simulator.shards`; ``docs/simulate_shards.md`` shows a
Slurm array and a Kubernetes indexed job.
"""

import os
from collections.abc import Iterable
from typing import Any

from tf_nvm.core.errors import ShardMergeError
from tf_nvm.core.outputs import staged_output
from tf_nvm.core.safe_io import read_json
from tf_nvm.pipeline.simulation import simulate, write_monte_carlo
from tf_nvm.pipeline.sources import read_source

__all__ = ["merge", "simulate_parallel", "read_shard", "SHARDS_FOLDER", "MAX_RESULTS_BYTES"]

SHARDS_FOLDER = "shards"
"""Sub-folder of ``--out`` holding the shard folders of ``--workers N`` (``chips-A-B``)."""
MAX_RESULTS_BYTES = 256 * 1024 * 1024
"""Largest ``results.json`` `read_shard` reads, bytes."""

_HEADER = ("source", "dataset", "data", "examples", "config", "mapping")
"""results.json fields before the scores, in the order `tf_nvm.pipeline.simulation.simulate` writes them."""


def read_shard(folder: str | os.PathLike) -> tuple[dict, Any, Any]:
    """``(results dict, ShardInfo, MonteCarloResult)`` of a Monte Carlo result folder.

    Raises:
        ShardMergeError: no readable ``results.json``, a sweep, or a malformed shard record.
    """
    from tf_nvm.simulator import MonteCarloResult, ShardInfo  # noqa: PLC0415  (imports TensorFlow)

    path = os.path.join(folder, "results.json")
    fix = "Fix: pass folders written by `tf-nvm simulate ... --out DIR` (one setting, no --sweep)."
    if not os.path.isfile(path):
        raise ShardMergeError(f"merge: {folder} holds no results.json. {fix}")
    results = read_json(path, max_bytes=MAX_RESULTS_BYTES, what="merge: shard results", error=ShardMergeError,
                        fix=fix)
    if not isinstance(results, dict) or "sweep" in results or "chip_metrics" not in results:
        raise ShardMergeError(f"merge: {path} is not a Monte Carlo result (a sweep, or no chip_metrics). {fix}")
    info = ShardInfo.from_dict(results.get("shard"), path)
    try:
        metric, summary, per_chip = results["metric"], results["summary"], results["chip_metrics"]
        names = [name for name in per_chip if not name.endswith("_vs_ideal")]
        result = MonteCarloResult(tuple(results["chips"]), tuple(per_chip[f"{metric}_vs_ideal"]),
                                  summary[f"ideal_{metric}"], results["examples"], float(summary["seconds"]),
                                  results["task"], metric, {k: tuple(v) for k, v in per_chip.items()},
                                  {name: summary[f"ideal_{name}"] for name in names}, info.chips.start)
    except (KeyError, TypeError) as err:
        raise ShardMergeError(f"merge: {path} lacks a field of a Monte Carlo result ({err!r}). {fix}") from None
    if any(len(values) != info.chips.count for values in result.metrics.values()) or \
            len(result.scores) != info.chips.count:
        raise ShardMergeError(f"merge: {path} records chips {info.chips} ({info.chips.count}) but holds "
                              f"{len(result.scores)} chip scores. {fix}")
    return results, info, result


def merge(folders: Iterable[str | os.PathLike], out: str, verbose: bool = True, overwrite: bool = False) -> dict:
    """Merges Monte Carlo shard folders into ``out`` (``results.json``, ``chips.csv``, ``chips.md``).

    Args:
        folders: the shards' result folders (any order).
        out: output folder (the rule of every ``--out``: `tf_nvm.core.outputs`; written whole or not at all).
        verbose: print the summary line.
        overwrite: ``out`` may hold another command's output, which is replaced.

    Returns:
        the merged results dict (as written to ``out/results.json``).

    Raises:
        ShardMergeError: a folder that is not a Monte Carlo result, shards of other settings or mappings, a gap
            or an overlap of chips.
        OutputFolderError: ``out`` may not be written (`tf_nvm.core.outputs.claim_output_folder`).
    """
    folders = [str(folder) for folder in folders]
    shards = [read_shard(folder) for folder in folders]  # every check before ``out`` is touched
    with staged_output(out, "simulate", overwrite) as staging:
        return _merge_into(shards, folders, staging, out, verbose)


def _merge_into(shards, folders, staging, out, verbose):
    """Writes the merge of ``shards`` (`read_shard` of ``folders``) into ``staging``, which becomes ``out``."""
    from tf_nvm.simulator.shards import check_shards, merge_results  # noqa: PLC0415  (imports TensorFlow)

    _, order = check_shards([info for _, info, _ in shards], folders)
    merged = merge_results([shards[i][2] for i in order])
    first, info = shards[order[0]][0], shards[order[0]][1]
    header = {key: first[key] for key in _HEADER if key in first}
    return write_monte_carlo(staging, header, merged, info.settings_hash, info.mapping_hash, verbose, final=out)


def _shard_job(job):
    """One shard in a worker process: ``(source path, variant, shard folder, ChipRange, simulate kwargs)``."""
    source, variant, folder, chips, kwargs = job
    simulate(read_source(source, variant), folder, chips=chips, **kwargs)
    return folder


def simulate_parallel(source: str | os.PathLike, out: str, *, chips: Any, workers: int, variant: str | None = None,
                      overwrite: bool = False, **kwargs: Any) -> dict:
    """Monte Carlo of ``chips`` (a `ChipRange`) split over ``workers`` local processes, merged into ``out``.

    Each worker (``multiprocessing`` with ``spawn``: its own interpreter and TensorFlow) reads the source and the
    data itself and writes ``out/shards/chips-A-B``; the merge equals one process's run bit for bit (`merge`).
    ``out`` is written whole or not at all (`tf_nvm.core.outputs.staged_output`: the shards are written into the
    staging folder that becomes ``out``). On a machine with fewer free cores than workers this is not faster:
    TensorFlow already spreads one process's matmuls and convolutions over the cores.

    Args:
        source: a run folder or mapping path (str; each worker reads it).
        out: output folder.
        chips: `tf_nvm.simulator.ChipRange`.
        workers: processes (int >= 1).
        variant: the variant of a ``tf-nvm run`` experiment folder (`read_source`).
        overwrite: ``out`` may hold another command's output, which is replaced.
        kwargs: the other keyword arguments of `tf_nvm.pipeline.evaluate.simulate` (config, dataset, data,
            examples, task, metric, verbose).

    Returns:
        the merged results dict.
    """
    from tf_nvm.simulator.shards import run_parallel  # noqa: PLC0415  (imports TensorFlow)

    parts = chips.split(workers)
    with staged_output(out, "simulate", overwrite) as staging:
        folders = [os.path.join(staging, SHARDS_FOLDER, f"chips-{part.start}-{part.stop}") for part in parts]
        jobs = [(str(source), variant, folder, part, kwargs) for folder, part in zip(folders, parts)]
        run_parallel(_shard_job, jobs, workers)
        return _merge_into([read_shard(folder) for folder in folders], folders, staging, out,
                           kwargs.get("verbose", True))
