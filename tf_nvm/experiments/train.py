"""Training runs: a float baseline and the NVM model of one recipe, over seeds.

A recipe (see `tf_nvm.experiments.recipes`) names a data set, an architecture, a spec, the
task and the optimiser schedule. For each seed, the float model and the NVM model of
the same architecture are trained with the same schedule; the epoch kept is the one
with the best *validation* score (the validation part of `tf_nvm.experiments.data`): the highest
accuracy for classification, the lowest MSE for regression and reconstruction
(`TRAINING`); the test part is only evaluated, never used for selection. The results
go to a run folder (`tf_nvm.experiments.runs`).
"""

import dataclasses
import hashlib
import json
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tf_nvm.experiments import models, runs
from tf_nvm.core import provenance
from tf_nvm.experiments import progress as epoch_progress
from tf_nvm.keras.backend import keras
from tf_nvm.experiments.batches import steps_per_epoch, training_data
from tf_nvm.experiments.data import Split, prepare_data
from tf_nvm.core.errors import InvalidWeightsError, RecipeError, RunFolderError
from tf_nvm.noise.training import NoiseAwareTraining
from tf_nvm.keras.nvm_model import model_spec, nonfinite_weights, nvm_layers
from tf_nvm.keras.precision import require_float32
from tf_nvm.keras.quantize import check_input_range, quantize_model
from tf_nvm.experiments.recipes import Recipe, check_seeds
from tf_nvm.core.registry import Registry
from tf_nvm.keras.sign_split import fuse_sign_split

__all__ = ["train_model", "run_recipe", "training_data", "steps_per_epoch", "noise_aware_callbacks", "float_key",
           "FLOAT_KEY_IGNORES", "TRAINING", "TrainingTask", "training_task"]


@dataclasses.dataclass(frozen=True)
class TrainingTask:
    """How a recipe's task trains and what it reports.

    Attributes:
        loss: ``() -> keras loss`` compiled into both models.
        metric: the selection and reporting metric (a Keras metric name and a `tf_nvm.core.metrics.METRICS` name):
            ``val_<metric>`` picks the best epoch and seed, ``test_<metric>`` is reported.
        extra: further Keras metrics evaluated on the test part (``test_<name>`` in the results).
        higher_is_better: True for accuracy, False for errors (the best epoch has the lowest value).
    """

    loss: Any
    metric: str
    extra: tuple[str, ...] = ()
    higher_is_better: bool = True

    @property
    def mode(self) -> str:
        """``"max"`` or ``"min"``: how the best validation value is picked."""
        return "max" if self.higher_is_better else "min"


TRAINING = Registry("training task", error=RecipeError,
                    fix="set the recipe's task to classification, regression or reconstruction")
"""Recipe task (`tf_nvm.experiments.recipes.TRAINING_TASKS`) -> `TrainingTask`."""
TRAINING.register("classification", TrainingTask(
    lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True), "accuracy"),
    description="sparse categorical cross-entropy on integer labels (logits outputs); accuracy")
TRAINING.register("regression", TrainingTask(keras.losses.MeanSquaredError, "mse", ("mae",), False),
                  description="mean squared error on float targets of the output's shape; MSE, MAE")
TRAINING.register("reconstruction", TrainingTask(keras.losses.MeanSquaredError, "mse", ("mae",), False),
                  description="autoencoder: mean squared error against the standardised inputs; MSE, MAE")


def training_task(recipe: Any) -> TrainingTask:
    """The `TrainingTask` of ``recipe`` (classification when it names none, or has no ``task``)."""
    return TRAINING.get(getattr(recipe, "task", None) or "classification")


def _check_targets(model, split, recipe, training):
    """Regression targets must have the model's output shape (a Keras shape error would not name the data)."""
    if training.higher_is_better:  # a classifier: integer labels, checked where the data are split
        return
    task = recipe.task
    output = tuple(model.output_shape[1:])
    given = tuple(np.shape(split.y_train)[1:])
    if given != output and not (given == () and output == (1,)):
        name = getattr(recipe, "name", "?")
        raise RecipeError(f"recipe {name!r} (task {task!r}): the model's output has shape {list(output)} and the "
                          f"training targets {list(given)} per example. Fix: pass targets (y_train, y_test) of the "
                          "output's shape, or an architecture whose output matches them (for an autoencoder: "
                          "task \"reconstruction\", targets = inputs).")


def train_model(model: keras.Model, recipe: Any, split: Split, verbose: int = 2,
                callbacks: Sequence[keras.callbacks.Callback] = (),
                progress: tuple[str | os.PathLike, object] | None = None) -> dict[str, Any]:
    """Compiles and fits ``model`` with the recipe's schedule; keeps the best validation epoch.

    Convolutions that read both signs ``[t, -t]`` of a non-negative ``t`` train in the fused form
    ``conv(t, W+ - W-)`` (`tf_nvm.keras.sign_split.fuse_sign_split`: same outputs, half the multiply-adds).
    For an NVM model, `tf_nvm.keras.quantize.check_input_range` warns (`InputRangeWarning`) when more than
    0.1 % of the training inputs lie outside the shared activation range (they are clipped).

    The loss and the metric follow the recipe's ``task`` (`TRAINING`): cross-entropy and accuracy for a
    classifier (logits outputs), mean squared error for regression and reconstruction.

    Args:
        model: float or NVM tf_keras model (logits outputs for classification).
        recipe: `Recipe` (epochs, batch_size, learning_rate, task).
        split: `Split`.
        verbose: Keras ``fit`` verbosity (2: one line per epoch).
        callbacks: extra Keras callbacks (e.g. `tf_nvm.noise.training.NoiseAwareTraining`).
        progress: ``(folder, identity)``: keep every finished epoch in ``folder`` and resume from it
            (`tf_nvm.experiments.progress.EpochProgress`); the caller removes the folder once the model is written.
            None: the training lives in memory only.

    Returns:
        dict with ``val_<metric>`` (best; ``val_accuracy``, or ``val_mse`` for regression), ``best_epoch``
        (1-based), ``test_<metric>`` (and ``test_mae`` for regression),
        ``seconds`` (wall-clock training time; over the resumes, without the epochs lost to a kill),
        ``epoch_seconds`` (wall time of each epoch, validation included; after a resume of a progress
        folder written before tf_nvm recorded them, only the epochs since) and ``resumed_after`` (epochs
        restored from ``progress``; present only when > 0).
    """
    task = training_task(recipe)
    _prepare_model(model, recipe, split, task)
    # a callback with a ``monitor`` (noise-aware training's simulated chips) selects the epoch; it runs first
    selectors = [callback for callback in callbacks if getattr(callback, "monitor", None)]
    monitor = selectors[0].monitor if selectors else f"val_{task.metric}"
    if progress is None:
        keep_best: epoch_progress.KeepBestEpoch = epoch_progress.KeepBestEpoch(monitor, mode=task.mode)
        timer = epoch_progress.EpochTimes()
        done = 0
    else:
        keep_best = timer = epoch_progress.EpochProgress(*progress, monitor=monitor, verbose=bool(verbose),
                                                         mode=task.mode)
        done = keep_best.restore(model)
    callbacks = [*selectors, keep_best, keras.callbacks.TerminateOnNaN(),
                 *[callback for callback in callbacks if callback not in selectors]]
    if timer is not keep_best:
        callbacks.append(timer)
    start = time.perf_counter()
    history = model.fit(training_data(recipe, split, repeat=True, epochs_done=done), epochs=recipe.epochs,
                        steps_per_epoch=steps_per_epoch(recipe, split), initial_epoch=done,
                        validation_data=(split.x_val, split.y_val), callbacks=callbacks, verbose=verbose).history
    seconds = time.perf_counter() - start
    if isinstance(keep_best, epoch_progress.EpochProgress):
        history, seconds = keep_best.history, keep_best.seconds
    _check_finite(model, history, recipe)
    best = keep_best.best_epoch - 1  # the epoch whose weights the model now holds
    test = model.evaluate(split.x_test, split.y_test, verbose=0, batch_size=512, return_dict=True)
    result = {monitor: float(history[monitor][best]), f"val_{task.metric}": float(history[f"val_{task.metric}"][best]),
              "best_epoch": best + 1, f"test_{task.metric}": float(test[task.metric]),
              **{f"test_{name}": float(test[name]) for name in task.extra},
              "seconds": round(seconds, 2), "epoch_seconds": timer.epoch_seconds}
    if done:
        result["resumed_after"] = done
    return result


def _prepare_model(model: keras.Model, recipe: Any, split: Split, task: TrainingTask) -> None:
    """Checks the targets (and an NVM model's precision and inputs), fuses sign splits and compiles ``model``."""
    _check_targets(model, split, recipe, task)
    fuse_sign_split(model)
    if nvm_layers(model):  # an NVM model clips its inputs to the shared activation range: say so when it matters
        require_float32("train_model", model)  # exact float32 (no mixed precision, TF32 off)
        check_input_range(split.x_train, model_spec(model), owner="train_model")
    steps = recipe.epochs * steps_per_epoch(recipe, split)
    schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, steps)
    model.compile(keras.optimizers.Adam(schedule), task.loss(), metrics=[task.metric, *task.extra])


def _check_finite(model: keras.Model, history: dict, recipe: Any) -> None:
    """Raises `InvalidWeightsError` when the training diverged (a non-finite loss or weight)."""
    bad = [weight for _, weight, _, _ in nonfinite_weights(model)]
    if bad or not np.all(np.isfinite(history["loss"])):
        raise InvalidWeightsError(
            f"training of model {model.name!r} diverged: loss {history['loss'][-1]!r} after "
            f"{len(history['loss'])} epoch(s), non-finite weights {bad[:4]}. Nothing was written. Fix: "
            f"lower the recipe's learning_rate (now {recipe.learning_rate!r}) or check the inputs for NaN.")


def noise_aware_callbacks(recipe: Any, split: Split, seed: int = 0) -> list[keras.callbacks.Callback]:
    """The recipe's noise-aware training callback (a list of 0 or 1 `NoiseAwareTraining`) for its NVM model.

    Args:
        recipe: `Recipe` (its ``noise_aware`` settings, `tf_nvm.experiments.recipes.NOISE_AWARE_DEFAULTS`; None: plain).
        split: `Split` (the validation part scores the selection chips).
        seed: training seed (also the seed of the selection chips).
    """
    settings = getattr(recipe, "noise_aware", None)
    if not settings:
        return []
    return [NoiseAwareTraining(validation_data=(split.x_val, split.y_val), select_seed=seed, **settings)]


def _summary(values):
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


FLOAT_KEY_IGNORES = ("name", "description", "spec", "init", "seeds", "noise_aware")
"""Recipe fields that do not change the float baseline (`run_recipe`'s ``shared_floats``)."""


def float_key(recipe: Any, split: Split) -> str:
    """Identifies a float baseline: the recipe fields that shape it and the data's standardisation (hex str)."""
    return _training_key(recipe, split, FLOAT_KEY_IGNORES)


def _training_key(recipe, split, ignores):
    fields = {k: v for k, v in recipe.to_dict().items() if k not in ignores}
    fields["data"] = {**split.standardisation.to_dict(), "sha256": split.content_hash()}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _seed_progress(out_dir, seed, kind):
    """The progress folder of the ``kind`` ("float" or "nvm") model of one seed in run folder ``out_dir``."""
    return os.path.join(out_dir, f"seed{seed}", f"progress-{kind}")


def _progress(folder, recipe, split, seed, kind):
    """``train_model``'s ``progress`` for the ``kind`` ("float" or "nvm") model of one seed."""
    ignores = FLOAT_KEY_IGNORES if kind == "float" else ("name", "description", "seeds")
    code = {key: value for key, value in provenance.current().items() if key != "git_dirty"}
    return folder, {"kind": kind, "seed": seed, "training": _training_key(recipe, split, ignores),
                    "code": code}  # epochs of other code are not resumed (`tf_nvm.core.provenance`)


def _float_baseline(recipe, split, seed, verbose, shared_floats, out_dir):
    """(float model, result) of one seed: trained, or read from ``shared_floats`` when an earlier recipe
    with the same float-relevant fields trained it. Its epochs are kept in ``<shared folder>/progress``
    (or ``out_dir/seed<N>/progress-float``) until the model is written."""
    folder = None
    progress = _seed_progress(out_dir, seed, "float")
    if shared_floats is not None:
        folder = os.path.join(shared_floats, float_key(recipe, split), f"seed{seed}")
        found = runs.read_shared_float(folder)
        if isinstance(found, runs.StaleFloat):
            if verbose:
                print(f"[tf-nvm] {recipe.name} seed {seed}: the float baseline in {folder} was {found}; trained "
                      "again", flush=True)
        elif found is not None:
            if verbose:
                print(f"[tf-nvm] {recipe.name} seed {seed}: float baseline ({recipe.architecture}) shared with an "
                      f"earlier variant, reused ({folder})", flush=True)
            return found[1], found[0]
        progress = os.path.join(folder, "progress")
    keras.utils.set_random_seed(seed)
    model = models.build(recipe.architecture, **recipe.architecture_args)
    if verbose:
        print(f"[tf-nvm] {recipe.name} seed {seed}: float baseline ({recipe.architecture})", flush=True)
    result = train_model(model, recipe, split, verbose, progress=_progress(progress, recipe, split, seed, "float"))
    if folder is not None:
        runs.write_shared_float(folder, model, result)
        epoch_progress.remove(progress)
    return model, result


def _train_seed(recipe, split, seed, verbose, shared_floats, out_dir):
    """Trains (or shares) the float baseline and trains the NVM model of one seed; writes ``seed<N>/``.

    Returns:
        (result row, NVM model, float model).
    """
    float_model, float_result = _float_baseline(recipe, split, seed, verbose, shared_floats, out_dir)
    keras.utils.set_random_seed(seed)
    nvm_model = quantize_model(models.build(recipe.architecture, **recipe.architecture_args),
                               recipe.spec, init=recipe.init, sign_split=recipe.sign_split)
    if verbose:
        print(f"[tf-nvm] {recipe.name} seed {seed}: NVM model ({recipe.spec_name})", flush=True)
    progress = _progress(_seed_progress(out_dir, seed, "nvm"), recipe, split, seed, "nvm")
    nvm_result = train_model(nvm_model, recipe, split, verbose, progress=progress,
                             callbacks=noise_aware_callbacks(recipe, split, seed))
    row = {"seed": seed, "nvm": nvm_result, "float": float_result}
    runs.write_seed(out_dir, seed, nvm_model, float_model, result=row)
    for kind in ("nvm", "float"):
        epoch_progress.remove(_seed_progress(out_dir, seed, kind))
    if verbose:
        metric = training_task(recipe).metric
        print(f"[tf-nvm] seed {seed}: NVM test {metric} {nvm_result[f'test_{metric}']:.4f} "
              f"(val {nvm_result[f'val_{metric}']:.4f}), float test {metric} {float_result[f'test_{metric}']:.4f}",
              flush=True)
    return row, nvm_model, float_model


def run_recipe(recipe: Recipe, out_dir: str | os.PathLike, seeds: Sequence[int] | None = None,
               data_path: str | None = None, verbose: int = 2, overwrite: bool = False, split: Split | None = None,
               resume: bool = False, shared_floats: str | os.PathLike | None = None) -> dict[str, Any]:
    """Trains the recipe's float baseline and NVM model for each seed; writes a run folder.

    The folder (layout in `tf_nvm.experiments.runs`) holds ``model.keras`` (the NVM model of
    the seed with the best validation score), ``float_model.keras`` (its float
    baseline), ``seed<N>/``, ``spec.json``, ``recipe.json``,
    ``preprocessing.json``, ``metrics.json`` (``test_<metric>`` and
    ``float_test_<metric>`` as means over seeds, their spreads, per-seed numbers
    and the ``spec``; ``<metric>`` is ``accuracy``, or ``mse`` for a recipe of task
    regression or reconstruction, which also records ``task`` and ``metric``) and
    the step marker ``train``.

    Args:
        recipe: `Recipe`.
        out_dir: run folder (created; one holding an earlier run is refused unless ``overwrite``).
        seeds: seeds to run (default: the recipe's).
        data_path: explicit data source for the loader.
        verbose: Keras ``fit`` verbosity.
        overwrite: replace an earlier run in ``out_dir`` (removed before training starts).
        split: a prepared `tf_nvm.experiments.data.Split` to use instead of loading the recipe's data set.
        resume: continue an interrupted run of the same recipe and data in ``out_dir``: every seed whose
            ``seed<N>/result.json`` exists is reused (its models loaded, not trained again); the others
            are trained. An empty or missing ``out_dir`` starts a new run; with ``overwrite`` too, a folder
            that cannot be resumed (another recipe, other data, no run) is started over instead of refused.
        shared_floats: a folder where float baselines are kept by `float_key` and seed, so recipes that
            differ only in the NVM spec (e.g. 4-bit and 2-bit of one architecture) train each float
            baseline once (`tf-nvm run` passes ``OUT/floats``); None: every recipe trains its own.

    Returns:
        the metrics dict written to ``metrics.json``.

    Raises:
        RunFolderError: ``out_dir`` holds an earlier run (and neither ``overwrite`` nor ``resume``) or other
            files, or (``resume``) a run of another recipe or other data.
        InvalidWeightsError: training diverged (NaN or infinite weights).
    """
    if seeds is not None:  # before anything is read or written (a bad seed failed after loading the data)
        check_seeds(seeds, "seeds", "Fix: pass integers in 0..2^32-1, e.g. seeds=[0, 1, 2] (--seeds 0 1 2).")
    seeds = list(recipe.seeds if seeds is None else seeds)
    split, resuming = _open_run(recipe, out_dir, data_path, verbose, overwrite, split, resume)
    per_seed, (selected, nvm_model, float_model) = _train_seeds(recipe, split, seeds, verbose, shared_floats,
                                                                out_dir, resuming)
    spec = model_spec(nvm_model)
    metrics = _run_metrics(recipe, split, per_seed, selected, spec)
    runs.write_result(out_dir, nvm_model, float_model, spec, metrics)
    runs.mark_done(out_dir, "train", {"seeds": seeds, "selected_seed": selected})
    return metrics


def _open_run(recipe: Any, out_dir: str | os.PathLike, data_path: str | None, verbose: int, overwrite: bool,
              split: Split | None, resume: bool) -> tuple[Split, bool]:
    """Checks (and clears, or keeps for a resume) ``out_dir``, loads the data and writes the run's first files.

    Returns:
        (the split, whether the run in ``out_dir`` is resumed).
    """
    if not resume:
        runs.prepare_folder(out_dir, overwrite, remove=False)  # refuse before the data loads; removed below if asked
    if split is None:
        split = prepare_data(recipe, data_path, verbose=bool(verbose))
    try:
        resuming = resume and runs.check_resumable(out_dir, recipe, split.standardisation, split.source,
                                                   split.content_hash())
    except RunFolderError:
        if not overwrite:
            raise
        resuming = False  # resume where possible, else start over
    if not resuming:
        runs.prepare_folder(out_dir, overwrite=overwrite)
    runs.create_run(out_dir, recipe, split.standardisation, split.source, split.content_hash())
    return split, bool(resuming)


def _train_seeds(recipe, split, seeds, verbose, shared_floats, out_dir, resuming):
    """Trains (or reuses) every seed; keeps only the models of the best validation score (the first of equals).

    Returns:
        (one result row per seed, (the selected seed, its NVM model, its float model)).
    """
    higher = training_task(recipe).higher_is_better
    metric = training_task(recipe).metric
    per_seed, best = [], None
    for seed in seeds:
        row, nvm_model, float_model = _seed_models(recipe, split, seed, verbose, shared_floats, out_dir, resuming)
        per_seed.append(row)
        value = row["nvm"][f"val_{metric}"]
        if best is None or (value > best[0] if higher else value < best[0]):
            best = (value, seed, nvm_model, float_model)
    return per_seed, best[1:]


def _seed_models(recipe, split, seed, verbose, shared_floats, out_dir, resuming):
    """(result row, NVM model, float model) of one seed: read from ``out_dir`` when resumed and done, else trained."""
    earlier = runs.read_seed(out_dir, seed) if resuming else None
    if earlier is None:
        return _train_seed(recipe, split, seed, verbose, shared_floats, out_dir)
    if verbose:
        metric = training_task(recipe).metric
        print(f"[tf-nvm] {recipe.name} seed {seed}: trained earlier, reused (NVM test {metric} "
              f"{earlier[0]['nvm'][f'test_{metric}']:.4f})", flush=True)
    return earlier


def _run_metrics(recipe, split, per_seed, selected_seed, spec):
    """The ``metrics.json`` of a run: the means and spreads over seeds, the selected seed, the data."""
    task = training_task(recipe)
    metric = task.metric
    nvm_acc = [r["nvm"][f"test_{metric}"] for r in per_seed]
    float_acc = [r["float"][f"test_{metric}"] for r in per_seed]
    task_fields = {} if recipe.task is None else {"task": recipe.task, "metric": metric}
    return {
        "recipe": recipe.name,
        **task_fields,
        f"test_{metric}": statistics.fmean(nvm_acc),
        f"float_test_{metric}": statistics.fmean(float_acc),
        f"test_{metric}_summary": _summary(nvm_acc),
        f"float_test_{metric}_summary": _summary(float_acc),
        "selected_seed": selected_seed,
        "selection": f"model.keras is the seed with the {'best' if task.higher_is_better else 'lowest'} validation "
                     f"{metric}; test never used to select",
        "seeds": per_seed,
        "spec": spec.to_dict(),
        "data_source": split.source,
        "data_sha256": split.content_hash(),
        "split_sizes": {"train": len(split.x_train), "val": len(split.x_val), "test": len(split.x_test)},
    }
