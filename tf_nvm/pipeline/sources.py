"""What ``RUN_OR_MAPPING`` names, read one way for ``tf-nvm inspect``, ``simulate``, ``cost`` and ``export``.

* `read_source`: a run folder (mapped now) or a mapping file -> `Source` (mapping, data set, task).
* `run_standardization`: a run folder's input standardization in the units its data set stores.
* `export_metadata`: the mapping metadata an export writes (task, data set).
* `model_task`: the task a Keras model was trained for (its loss, else its output activation);
  `recipe_task`: the task of a model trained from a recipe.

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
from typing import Any

from tf_nvm import mapping as mapping_io
from tf_nvm.core.errors import MappingError, PipelineError, RunFolderError, SimulatorError
from tf_nvm.core.metrics import TASKS, task_of_loss
from tf_nvm.core.safe_io import read_json
from tf_nvm.experiments import runs
from tf_nvm.mapping.io import json_path_of
from tf_nvm.pipeline.experiment import Experiment, from_dict
from tf_nvm.pipeline.markers import variant_folder

__all__ = ["Source", "read_source", "SOURCES", "model_task", "export_metadata", "run_standardization",
           "run_standardisation", "RECIPE_TASK", "recipe_task", "MAX_JSON_BYTES"]

MAX_JSON_BYTES = 1 << 20
"""Largest JSON file (an experiment record, a ``--standardisation`` file) read here, bytes."""


def model_task(model: Any) -> str | None:
    """The task a Keras model was trained for: its compiled loss (`tf_nvm.core.metrics.task_of_loss`), else
    ``"classification"`` when its last layer ends in a softmax, else None (decided later from the targets)."""
    task = task_of_loss(getattr(model, "loss", None))
    if task is None and getattr(model, "layers", None):
        last = model.layers[-1]
        activation = getattr(getattr(last, "layer", last), "activation", None)  # a tfmot wrapper holds .layer
        if getattr(activation, "__name__", "") == "softmax" or type(last).__name__ in ("Softmax", "QuantSoftmax"):
            task = "classification"
    return task


RECIPE_TASK = "classification"
"""The task of a model trained from a recipe that names none (`tf_nvm.experiments.train`: sparse categorical
cross-entropy on integer labels)."""


def recipe_task(recipe: dict | None) -> str | None:
    """The task of a model trained from ``recipe`` (a recipe dict, e.g. a run folder's ``recipe.json``): its
    ``task`` field, else `RECIPE_TASK`; None without a recipe."""
    if recipe is None:
        return None
    return recipe.get("task") or RECIPE_TASK


def export_metadata(model: Any, task: str | None = None, dataset: str | None = None) -> dict[str, str]:
    """The mapping metadata an export writes: ``{"task": ..., "dataset": ...}`` (unknown entries left out).

    Raises:
        SimulatorError: ``task`` is not a registered task.
    """
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

    mapping: Any
    dataset: str | None
    accuracy: float | None
    path: str | os.PathLike
    variant: str | None = None
    technology: Any = None
    tflite: str | None = None
    tflite_sha256: str | None = None
    arena_bytes: int | None = None


def run_standardization(folder: Any, where: str) -> Any:
    """A run folder's input standardization in the units its data set stores (None: none recorded).

    CIFAR-10 runs of tf_nvm 0.2.0 and earlier fitted it on pixels scaled to 0..1; it is read in pixel units
    0..255 (mean and std x 255: the same map of the stored images) with a note on stderr.

    Args:
        folder: `tf_nvm.experiments.runs.RunFolder`.
        where: named in the note.

    Returns:
        `tf_nvm.core.preprocessing.Standardization`, or None.
    """
    found = folder.preprocessing
    if folder.dataset == "cifar10" and found is not None and float(found.std.max()) <= 1.0:
        print(f"[tf-nvm] {where}: preprocessing.json was fitted on pixels scaled to 0..1 (tf_nvm 0.2.0 and "
              "earlier); read in pixel units 0..255 (mean and std x 255)", file=sys.stderr)
        return type(found)(found.mean * 255, found.std * 255)
    return found


run_standardisation = run_standardization
"""Deprecated alias of `run_standardization` (kept for one release)."""

SOURCES = ("a `tf-nvm train` folder, a `tf-nvm run` experiment folder (with --variant when it has several), its "
           "variants/<recipe> folder, or a mapping PREFIX / PREFIX.json")
"""What ``RUN_OR_MAPPING`` may name (`read_source`)."""


def read_source(source: str | os.PathLike, variant: str | None = None) -> Source:
    """What ``RUN_OR_MAPPING`` names, read one way for ``inspect``, ``simulate`` and ``cost``.

    ``source`` is a ``tf-nvm train`` run folder (mapped now, imports TensorFlow), a ``tf-nvm run`` experiment
    folder (with ``variant``, required when it has more than one), one of its ``variants/<recipe>`` folders (its
    exported mapping, technology and ``.tflite``: the numbers of its report), or a mapping PREFIX / PREFIX.json.

    Raises:
        RunFolderError, MappingError: the folder or mapping cannot be read, or ``variant`` is missing or unknown.
    """
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        folder = os.fspath(source)
        experiment_dir, name = _experiment_of(folder, variant)
        if experiment_dir is not None:
            return _read_variant(folder, experiment_dir, name, variant_folder(experiment_dir, name))
        return _read_train_folder(folder)
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


def _read_train_folder(folder):
    """A ``tf-nvm train`` run folder, mapped now (imports TensorFlow)."""
    import tflite_export  # noqa: PLC0415  (imports TensorFlow)

    run = runs.read_run(folder)
    task = recipe_task(run.recipe)
    mapping = tflite_export.build_mapping(run.model, preprocessing=run_standardization(run, folder),
                                          metadata=export_metadata(run.model, task, run.dataset))
    return Source(mapping, run.dataset, (run.metrics or {}).get("test_accuracy"), folder)


def _experiment_record(experiment_dir: str) -> Experiment:
    """The experiment a ``tf-nvm run`` folder records (``--quick`` applied as recorded)."""
    path = os.path.join(experiment_dir, "experiment.json")
    fix = f"Fix: rerun `tf-nvm run` into {experiment_dir}, or pass its variants/<recipe> folder."
    record = read_json(path, max_bytes=MAX_JSON_BYTES, what="experiment record", error=RunFolderError, fix=fix,
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
