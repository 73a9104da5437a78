"""A trained model or mapping on test data: the library behind ``tf-nvm simulate``, ``cost --data`` and
``export --data``.

* `read_source`: a run folder (mapped now) or a mapping file -> `Source` (mapping, data set, task).
* `test_data`: the one data path of every command: ``--dataset NAME`` (a registered
  loader, ``--data PATH`` its explicit source; default: the data set the run or
  mapping records) or ``--data PATH`` alone / ``--dataset npz`` (a user's
  ``.npz``), standardised once with the mapping's own standardisation
  (`tf_nvm.experiments.data.evaluation_data`).
* `input_standardisation`: the standardisation an export attaches: from a JSON file
  (``{"input_mean": [...], "input_std": [...]}``, a run folder's
  ``preprocessing.json``) or fitted on the ``x_train`` of ``--data``.
* `simulate`: Monte Carlo chips (or a sweep) scored with the task's metrics, written to
  a folder (``results.json``, ``chips.csv``/``.md`` or ``sweep.*``).
* `ideal_scores`: the task's metrics of the ideal chip (exact evaluator) on the test data (``tf-nvm cost``).
* `export_inputs`: the standardisation and representative data of ``tf-nvm export``.
* `model_task`: the task a Keras model was trained for (its loss, else its output activation).

Where the task lives: the mapping's ``metadata["task"]``, written at export: given
(``tf-nvm export --task``, an experiment's ``task``), else the recipe's ``task`` for a run folder
of ``tf-nvm train`` (classification when it names none, `recipe_task`), else from the model
(`model_task`); simulate takes ``--task`` first, then that metadata, then the targets
(`tf_nvm.core.metrics.resolve_task`).
The data set a run folder was trained on is written as ``metadata["dataset"]`` too.
"""

import dataclasses
import os
import sys
from typing import Optional

from tf_nvm.core.errors import SimulatorError

__all__ = ["Source", "read_source", "SOURCES", "test_data", "input_standardisation", "simulate", "model_task",
           "export_metadata", "export_inputs", "ideal_scores", "run_standardisation", "ExportInputs",
           "DEFAULT_DATASET", "USER_DATA", "RECIPE_TASK", "recipe_task", "write_monte_carlo",
           "monte_carlo_settings"]

USER_DATA = "npz"
"""The registered data set of a user's ``.npz`` (`tf_nvm.datasets.user`): ``--dataset npz``, the default when
``--data PATH`` is given and the source names no data set."""

DEFAULT_DATASET = "har"
"""The data set of a mapping that records none, when neither ``--data`` nor ``--dataset`` is given."""

_MAX_JSON_BYTES = 1 << 20
_TRAINING_NAMES = {"har": "HAR training windows", "cifar10": "CIFAR-10 training images"}


def model_task(model):
    """The task a Keras model was trained for: its compiled loss (`tf_nvm.core.metrics.task_of_loss`), else
    ``"classification"`` when its last layer ends in a softmax, else None (decided later from the targets)."""
    from tf_nvm.core.metrics import task_of_loss  # noqa: PLC0415

    task = task_of_loss(getattr(model, "loss", None))
    if task is None and getattr(model, "layers", None):
        last = model.layers[-1]
        activation = getattr(getattr(last, "layer", last), "activation", None)  # a tfmot wrapper holds .layer
        if getattr(activation, "__name__", "") == "softmax" or type(last).__name__ in ("Softmax", "QuantSoftmax"):
            task = "classification"
    return task


RECIPE_TASK = "classification"
"""The task of a model trained from a recipe that names none (`tf_nvm.experiments.train`: sparse categorical cross-entropy on
integer labels)."""


def recipe_task(recipe):
    """The task of a model trained from ``recipe`` (a recipe dict, e.g. a run folder's ``recipe.json``): its
    ``task`` field, else `RECIPE_TASK`; None without a recipe."""
    if recipe is None:
        return None
    return recipe.get("task") or RECIPE_TASK


def export_metadata(model, task=None, dataset=None):
    """The mapping metadata an export writes: ``{"task": ..., "dataset": ...}`` (unknown entries left out).

    Raises:
        SimulatorError: ``task`` is not a registered task.
    """
    from tf_nvm.core.metrics import TASKS  # noqa: PLC0415

    if task is not None and task not in TASKS:
        raise SimulatorError(f"--task: value {task!r} is not allowed; allowed: {TASKS.names()}. Fix: pass one of "
                             "those.")
    task = task or model_task(model)
    return {key: value for key, value in (("task", task), ("dataset", dataset)) if value is not None}


@dataclasses.dataclass(frozen=True, eq=False)
class Source:
    """What ``RUN_OR_MAPPING`` names (`read_source`).

    Attributes:
        mapping: the `tf_nvm.mapping.Mapping`.
        dataset: the data set it was trained on (run folder's recipe, or the mapping's ``metadata["dataset"]``),
            or None.
        accuracy: the run's test accuracy (``metrics.json``), or None.
        path: the path given.
        variant: the variant of a ``tf-nvm run`` experiment folder, or None.
        technology: the `tf_nvm.cost.Technology` the experiment's report costed with (a run variant), or None.
        tflite: the run variant's exported ``.tflite`` (the MCU baseline of its report), or None.
        tflite_sha256: the sha256 its export recorded (a swapped file is refused), or None.
        arena_bytes: the TFLite Micro arena its export measured, or None.
    """

    mapping: object
    dataset: Optional[str]
    accuracy: Optional[float]
    path: str
    variant: Optional[str] = None
    technology: object = None
    tflite: Optional[str] = None
    tflite_sha256: Optional[str] = None
    arena_bytes: Optional[int] = None


def run_standardisation(folder, where):
    """A run folder's input standardisation in the units its data set stores (None: none recorded).

    CIFAR-10 runs of tf_nvm 0.2.0 and earlier fitted it on pixels scaled to 0..1; it is read in pixel units
    0..255 (mean and std x 255: the same map of the stored images) with a note on stderr.
    """
    found = folder.preprocessing
    if folder.dataset == "cifar10" and found is not None and float(found.std.max()) <= 1.0:
        print(f"[tf-nvm] {where}: preprocessing.json was fitted on pixels scaled to 0..1 (tf_nvm 0.2.0 and "
              "earlier); read in pixel units 0..255 (mean and std x 255)", file=sys.stderr)
        return type(found)(found.mean * 255, found.std * 255)
    return found


def read_source(source, variant=None):
    """What ``RUN_OR_MAPPING`` names, read one way for ``inspect``, ``simulate`` and ``cost``.

    ``source`` is a ``tf-nvm train`` run folder (mapped now, imports TensorFlow), a ``tf-nvm run`` experiment
    folder (with ``variant``, required when it has more than one), one of its ``variants/<recipe>`` folders (its
    exported mapping, technology and ``.tflite``: the numbers of its report), or a mapping PREFIX / PREFIX.json.

    Raises:
        RunFolderError, MappingError: the folder or mapping cannot be read, or ``variant`` is missing or unknown.
    """
    from tf_nvm import mapping as mapping_io  # noqa: PLC0415
    from tf_nvm.core.errors import MappingError, RunFolderError  # noqa: PLC0415
    from tf_nvm.mapping.io import json_path_of  # noqa: PLC0415

    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        source = os.fspath(source)
        experiment_dir, name = _experiment_of(source, variant)
        if experiment_dir is not None:
            return _read_variant(source, experiment_dir, name, _variant_dir(experiment_dir, name))
        folder = source
        import tflite_export  # noqa: PLC0415  (application layer; imports TensorFlow)
        from tf_nvm.experiments.runs import read_run  # noqa: PLC0415

        run = read_run(folder)
        task = recipe_task(run.recipe)
        mapping = tflite_export.build_mapping(run.model, preprocessing=run_standardisation(run, folder),
                                              metadata=export_metadata(run.model, task, run.dataset))
        return Source(mapping, run.dataset, (run.metrics or {}).get("test_accuracy"), source)
    if variant is not None:
        raise RunFolderError(f"--variant {variant!r} was given, but {str(source)[:200]!r} is no `tf-nvm run` "
                             "experiment folder (a mapping or a missing path). Fix: drop --variant, or pass the "
                             "experiment folder.")
    json_path = json_path_of(source)
    if not os.path.lexists(json_path):
        raise MappingError(f"{json_path}: cannot be read: {os.fspath(source)!r} is neither a folder nor a mapping; "
                           f"allowed: {SOURCES}. Fix: pass one of those (`tf-nvm run` writes runs/<experiment>, "
                           "`tf-nvm train` runs/<recipe>).")
    mapping = mapping_io.load(source)
    return Source(mapping, (mapping.metadata or {}).get("dataset"), None, source)


SOURCES = ("a `tf-nvm train` folder, a `tf-nvm run` experiment folder (with --variant when it has several), its "
           "variants/<recipe> folder, or a mapping PREFIX / PREFIX.json")
"""What ``RUN_OR_MAPPING`` may name (`read_source`)."""


def _variant_dir(experiment_dir, name):
    from tf_nvm.pipeline.steps import variant_folder  # noqa: PLC0415

    return variant_folder(experiment_dir, name)


def _experiment_record(experiment_dir):
    """The experiment a ``tf-nvm run`` folder records (``--quick`` applied as recorded)."""
    from tf_nvm.core.errors import PipelineError, RunFolderError  # noqa: PLC0415
    from tf_nvm.pipeline.experiment import from_dict  # noqa: PLC0415
    from tf_nvm.core.safe_io import read_json  # noqa: PLC0415

    path = os.path.join(experiment_dir, "experiment.json")
    fix = f"Fix: rerun `tf-nvm run` into {experiment_dir}, or pass its variants/<recipe> folder."
    record = read_json(path, max_bytes=_MAX_JSON_BYTES, what="experiment record", error=RunFolderError, fix=fix,
                       object_only=True)
    try:
        experiment = from_dict(record["experiment"], where=path)
    except (ValueError, KeyError, TypeError, PipelineError) as err:
        raise RunFolderError(f"{path}: not an experiment record ({type(err).__name__}: {str(err)[:200]}). "
                             f"{fix}") from None
    return experiment.quick_version() if record.get("quick") else experiment


def _experiment_of(source, variant):
    """``(experiment folder, variant name)`` of an experiment folder or one of its variant folders, else
    ``(None, None)`` (a ``tf-nvm train`` folder)."""
    from tf_nvm.core.errors import RunFolderError  # noqa: PLC0415

    if os.path.isfile(os.path.join(source, "experiment.json")):
        names = list(_experiment_record(source).variant_names)
        if variant is None and len(names) == 1:
            return source, names[0]
        if variant not in names:
            got = "no --variant" if variant is None else f"--variant {variant!r}"
            raise RunFolderError(f"{source!r} is a `tf-nvm run` experiment folder of {len(names)} variant(s) "
                                 f"{names}; got {got}. Fix: pass --variant with one of them, e.g. --variant "
                                 f"{names[0]}.")
        return source, variant
    parent = os.path.dirname(os.path.abspath(source))
    if os.path.basename(parent) == "variants" and os.path.isfile(os.path.join(os.path.dirname(parent),
                                                                              "experiment.json")):
        name = os.path.basename(os.path.abspath(source))
        if variant not in (None, name):
            raise RunFolderError(f"--variant {variant!r} was given with the folder of variant {name!r}. Fix: drop "
                                 "--variant, or pass the experiment folder.")
        return os.path.dirname(parent), name
    if variant is not None:
        raise RunFolderError(f"--variant {variant!r} was given, but {source!r} is no `tf-nvm run` experiment folder "
                             "(no experiment.json). Fix: drop --variant, or pass the experiment folder.")
    return None, None


def _read_variant(source, experiment_dir, name, folder):
    """A variant of a ``tf-nvm run`` folder as its report saw it: the exported mapping, the experiment's
    technology, the exported ``.tflite`` (with its recorded sha256 and arena)."""
    from tf_nvm import mapping as mapping_io  # noqa: PLC0415
    from tf_nvm.experiments import runs  # noqa: PLC0415
    from tf_nvm.core.errors import RunFolderError  # noqa: PLC0415

    if not os.path.isdir(folder) or not runs.is_done(folder, "export"):
        raise RunFolderError(f"variant {name!r} of {experiment_dir!r} has not been exported yet ({folder} holds no "
                             "finished export step). Fix: let `tf-nvm run` finish (rerun it to continue).")
    export = runs.step_info(folder, "export")
    tflite = export.get("tflite") if isinstance(export.get("tflite"), dict) else {}
    run = runs.read_run(folder, load_model=False)
    mapping = mapping_io.load(os.path.join(folder, "export", "mapping"))
    return Source(mapping, run.dataset, (run.metrics or {}).get("test_accuracy"), source, variant=name,
                  technology=_experiment_record(experiment_dir).cost.resolve(),
                  tflite=os.path.join(folder, "export", "model.tflite"), tflite_sha256=tflite.get("sha256"),
                  arena_bytes=tflite.get("arena_bytes"))


def _named(dataset, data, where):
    """Reads the old spelling ``--data NAME`` (a data-set name that is no file) as ``--dataset NAME``."""
    from tf_nvm.datasets import DATASETS  # noqa: PLC0415

    if dataset is None and data is not None and data in DATASETS and not os.path.exists(data):
        print(f"[tf-nvm] warning: {where} --data {data} names a data set; --data now takes a PATH (a .npz with "
              f"x_test, y_test). Use --dataset {data} (this spelling will be removed).", file=sys.stderr)
        return data, None
    return dataset, data


def test_data(source, dataset=None, data=None, examples=None, where="tf-nvm simulate", verbose=False):
    """The test data of ``source``, read one way for every command.

    The data set is ``dataset``, else the source's (a run folder's recipe, a mapping's ``metadata["dataset"]``),
    else `USER_DATA` when ``data`` is given, else `DEFAULT_DATASET`. A registered data set is read by its loader
    with ``data`` as its explicit source (as ``tf-nvm train --data``); `USER_DATA` (``--dataset npz``) reads
    ``data`` as a user's ``.npz`` (x_test, optional y_test and x_train). The raw data then go through the
    mapping's own input standardisation exactly once (`tf_nvm.experiments.data.evaluation_data`).

    Args:
        source: `Source`.
        dataset: registered data-set name or None.
        data: a path or None.
        examples: use only the first N test examples.
        where: named in messages.
        verbose: the loader prints which source it used.

    Returns:
        `tf_nvm.experiments.data.EvaluationData`.
    """
    from tf_nvm.experiments.data import evaluation_data, load_raw_data  # noqa: PLC0415

    dataset, data = _named(dataset, data, where)
    dataset = dataset or source.dataset or (USER_DATA if data is not None else DEFAULT_DATASET)
    raw = load_raw_data(dataset, data, verbose=verbose)
    return evaluation_data(source.mapping, raw, examples, where=f"{where} --data" if dataset == USER_DATA
                           else f"{where} --dataset {dataset}")


def input_standardisation(data=None, standardisation=None, dataset=None, where="tf-nvm export"):
    """The input standardisation an export attaches to a model that has none.

    Args:
        data: a user's ``.npz`` (its ``x_train`` is fitted, `tf_nvm.experiments.data.standardisation_from_data`), or the
            explicit source of ``dataset``.
        standardisation: a JSON file ``{"input_mean": [...], "input_std": [...]}`` (raw units, one value per
            input channel; a run folder's ``preprocessing.json``).
        dataset: a registered data set whose training part is fitted.
        where: named in messages.

    Returns:
        `tf_nvm.core.preprocessing.Standardisation`, or None when nothing is given.

    Raises:
        ExportError: both a file and data given, or an unreadable file.
        CorruptDatasetError: the data have no ``x_train``.
    """
    from tf_nvm.experiments.data import load_raw_data, standardisation_from_data  # noqa: PLC0415
    from tf_nvm.core.errors import ExportError  # noqa: PLC0415
    from tf_nvm.core.preprocessing import Standardisation  # noqa: PLC0415
    from tf_nvm.core.safe_io import read_json  # noqa: PLC0415

    dataset, data = _named(dataset, data, where)
    if standardisation is not None:
        if data is not None or dataset is not None:
            raise ExportError(f"{where}: both --standardisation and --data/--dataset were given; the input "
                              "standardisation comes from one of them. Fix: pass only one.")
        parsed = read_json(standardisation, max_bytes=_MAX_JSON_BYTES, what=f"{where} --standardisation",
                           error=ExportError,
                           fix="Fix: pass a JSON file {\"input_mean\": [...], \"input_std\": [...]}.")
        return Standardisation.from_dict(parsed, where=f"{where} --standardisation {standardisation}",
                                         error=ExportError)
    if data is None and dataset is None:
        return None
    return standardisation_from_data(load_raw_data(dataset, data), where=f"{where} --data")


def simulate(source, out, *, config, chips=25, dataset=None, data=None, examples=None, sweep=None, task=None,
             metric=None, verbose=True, overwrite=False):
    """Monte Carlo chips of ``source`` on its test data, scored with the task's metrics; writes ``out``.

    Args:
        source: `Source` (`read_source`).
        out: output folder (``results.json``; ``chips.csv``/``.md`` or ``sweep.csv``/``.md``/``.png``).
        config: `tf_nvm.simulator.SimulationConfig`.
        chips: programmed chips per setting, or a `tf_nvm.simulator.ChipRange` (a shard: chips A..B-1; merge
            shards with `tf_nvm.pipeline.shards.merge`).
        dataset, data, examples: the test data (`test_data`).
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
    from tf_nvm.core.atomic import write_json_atomic  # noqa: PLC0415
    from tf_nvm.core.errors import OutputFolderError  # noqa: PLC0415
    from tf_nvm.core.outputs import claim_output_folder, final_paths, staged_output  # noqa: PLC0415
    from tf_nvm.simulator import ChipRange, monte_carlo, sweep as run_sweep, write_sweep  # noqa: PLC0415
    from tf_nvm.core.tables import to_records  # noqa: PLC0415

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
    args = (mapping, evaluation.x, evaluation.y)
    with staged_output(out, "simulate", overwrite, error=OutputFolderError) as staging:  # every file commits together
        if sweep is not None:
            key, values = sweep
            table = run_sweep(*args, key, values, config, chips, evaluation.calibration, verbose=verbose, task=task,
                              metric=metric)
            metric_name = str(table["metric"].iloc[0])
            files = write_sweep(table, key, staging, f"{os.path.basename(os.path.normpath(source.path))}: "
                                                     f"{metric_name} vs {key} ({chips} chips, {config.device.noise})")
            results.update(sweep=key, task=str(table["task"].iloc[0]), metric=metric_name,
                           rows=to_records(table), files=final_paths(files, staging, out))
            write_json_atomic(os.path.join(staging, "results.json"), results)
        else:
            result = monte_carlo(*args, config, chips, evaluation.calibration, verbose=verbose, task=task,
                                 metric=metric, first_chip=0 if chip_range is None else chip_range.start)
            write_monte_carlo(staging, results, result, monte_carlo_settings(config, evaluation, result), mapping,
                              verbose, final=out)
    return results


def monte_carlo_settings(config, evaluation, result):
    """What sets a Monte Carlo's numbers besides the chips and the mapping (hashed into its shard record)."""
    from tf_nvm.keras.backend import tf  # noqa: PLC0415  (already imported by the simulator)
    from tf_nvm.simulator.shards import array_hash  # noqa: PLC0415

    return {"config": config.to_dict(), "tensorflow": tf.__version__, "dataset": evaluation.dataset,
            "examples": len(evaluation.x),
            "task": result.task, "metric": result.metric,
            "data_sha256": array_hash(evaluation.x, evaluation.y, evaluation.calibration)}


def write_monte_carlo(out, results, result, settings, mapping, verbose=True, final=None):
    """Adds a `MonteCarloResult` and its shard record (chip range, settings and mapping hashes) to ``results``,
    writes ``chips.csv``/``.md`` and ``results.json`` in ``out``; returns ``results``.

    ``settings``: `monte_carlo_settings`, or its hash (str) when merging shards. ``final``: the folder ``out``
    becomes (``out`` is a `tf_nvm.core.outputs.staged_output` staging folder): the recorded file paths are made final.
    """
    from tf_nvm.core.outputs import final_paths  # noqa: PLC0415

    from tf_nvm.core.atomic import write_json_atomic  # noqa: PLC0415
    from tf_nvm.mapping import content_hash  # noqa: PLC0415
    from tf_nvm.simulator.shards import ChipRange, ShardInfo, settings_hash  # noqa: PLC0415
    from tf_nvm.core.tables import write_table  # noqa: PLC0415

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


@dataclasses.dataclass(frozen=True, eq=False)
class ExportInputs:
    """What an export attaches and calibrates with (`export_inputs`).

    Attributes:
        standardisation: the input `Standardisation` the mapping carries, or None.
        representative: standardised training inputs for the TFLite converter, or None.
        dataset: the registered data set the model was trained on (mapping metadata), or None.
        task: the recipe's task for a run folder of ``tf-nvm train`` (`recipe_task`), else None.
        notes: lines to print (those starting with ``warning`` go to stderr).
    """

    standardisation: object
    representative: object
    dataset: Optional[str]
    task: Optional[str]
    notes: tuple


def export_inputs(run_folder, data=None, dataset=None, standardisation=None, representative=True, examples=256,
                  where="tf-nvm export"):
    """The input standardisation and representative data of an export, read the way `test_data` reads data.

    A run folder keeps its ``preprocessing.json``; a bare ``.keras`` model takes ``standardisation`` (a JSON
    file) or the one fitted on the ``x_train`` of ``data`` (`input_standardisation`). The representative data
    are the first ``examples`` training inputs of the data (standardised), read when ``data`` or ``dataset`` is
    given, or for a HAR run folder (its default loader).

    Args:
        run_folder: `tf_nvm.experiments.runs.RunFolder` (``read_run``).
        data: a path (the data set's explicit source, or a user's ``.npz``) or None.
        dataset: a registered data-set name, `USER_DATA`, or None (the run's).
        standardisation: a JSON file or None.
        representative: whether representative data are wanted (a TFLite export).
        examples: representative examples.
        where: named in messages.

    Returns:
        `ExportInputs`.

    Raises:
        ExportError: a standardisation given for a run folder that has one, or both a file and data.
        CorruptDatasetError, DatasetNotFoundError: the data cannot be read.
    """
    from tf_nvm.experiments.data import load_raw_data, standardisation_from_data  # noqa: PLC0415
    from tf_nvm.core.errors import ExportError  # noqa: PLC0415

    dataset, data = _named(dataset, data, where)
    chosen = dataset or run_folder.dataset or (USER_DATA if data is not None else None)
    notes = []
    wanted = representative and (data is not None or dataset is not None
                                 or (run_folder.preprocessing is not None and chosen in (None, "har")))
    raw = None
    if wanted or (run_folder.preprocessing is None and standardisation is None and chosen is not None):
        raw = load_raw_data(chosen or DEFAULT_DATASET, data)
    if run_folder.preprocessing is not None:
        if standardisation is not None:
            raise ExportError(f"{where}: --standardisation was given, but the run folder already records its input "
                              "standardisation (preprocessing.json). Fix: drop --standardisation, or export the "
                              "bare model.keras.")
        found, origin = run_standardisation(run_folder, where), "preprocessing.json"
    elif standardisation is not None:
        found, origin = input_standardisation(standardisation=standardisation, where=where), standardisation
    elif raw is not None:
        found, origin = standardisation_from_data(raw, where=f"{where} --data"), f"x_train of {raw.source}"
        notes.append(f"input standardisation fitted on {len(raw.x_train)} training examples ({origin}); the "
                     "mapping carries it")
    else:
        found = origin = None
        notes.append("warning: the model has no preprocessing.json (a bare .keras model) and no --data or "
                     "--standardisation was given: the exports expect inputs that are already standardised, and "
                     "the mapping records no input standardisation. Pass --data DATA.npz (its x_train is fitted) "
                     "or --standardisation FILE.json, or the run folder written by `tf-nvm train`.")
    x_rep = None
    if wanted and raw is not None and raw.x_train is not None:
        x_rep = raw.x_train[:examples]
        x_rep = x_rep.astype("float32") if found is None else found.apply(x_rep)
        what = _TRAINING_NAMES.get(raw.dataset) or f"training examples of {raw.source}"
        notes.append(f"representative data: {len(x_rep)} {what}"
                     + ("" if found is None else f" standardised with {origin}"))
    task = recipe_task(getattr(run_folder, "recipe", None))
    return ExportInputs(found, x_rep, None if chosen in (None, USER_DATA) else chosen, task, tuple(notes))


def ideal_scores(source, dataset=None, data=None, examples=None, task=None, where="tf-nvm cost", verbose=False):
    """Every metric of the task for the ideal chip (the exact evaluator `tf_nvm.mapping.reference`, numpy, no
    TensorFlow) on the test data of ``source`` (read as `test_data` reads it).

    Returns:
        ``(task name, {metric name: value})``, the task's primary metric first.
    """
    from tf_nvm.mapping import reference  # noqa: PLC0415
    from tf_nvm.core.metrics import METRICS, resolve_task, targets_for  # noqa: PLC0415

    evaluation = test_data(source, dataset, data, examples, where=where, verbose=verbose)
    mapping = source.mapping
    output_shape = tuple(mapping.layer(mapping.outputs[0]).output_shape)
    chosen = resolve_task(task, mapping, evaluation.y, output_shape, where=where)
    targets = targets_for(chosen, evaluation.x, evaluation.y, output_shape, where=where)
    outputs = reference.evaluate(mapping, evaluation.x).values()
    return chosen.name, {name: METRICS.get(name).score(outputs, targets) for name in chosen.metrics}
