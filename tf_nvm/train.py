"""Training runs: a float baseline and the NVM model of one recipe, over seeds.

A recipe (see `tf_nvm.recipes`) names a data set, an architecture, a spec and
the optimiser schedule. For each seed, the float model and the NVM model of the
same architecture are trained with the same schedule; the epoch kept is the one
with the best *validation* accuracy (validation subjects held out of the
training subjects for HAR, the last 5000 training images for CIFAR-10); the test
split is only evaluated, never used for selection.
"""

import dataclasses
import json
import os
import statistics
import time

import numpy as np

from tf_nvm import models
from tf_nvm._keras import keras, tf
from tf_nvm.atomic import atomic_path, write_json_atomic
from tf_nvm.errors import ExportError
from tf_nvm.nvm_model import load_model, model_spec
from tf_nvm.quantize import quantize_model
from tf_nvm.spec import NVMSpec

__all__ = ["Split", "prepare_data", "train_model", "run_recipe", "load_run", "standardise"]


@dataclasses.dataclass
class Split:
    """Standardised arrays of one data set, ready for ``fit``.

    Attributes:
        x_train, y_train: training part (validation part removed).
        x_val, y_val: validation part (model selection).
        x_test, y_test: test part (reported only).
        mean, std: per-channel standardisation from the training part
            (applied as ``(x - mean) / std``; part of the input encoding).
        source: where the data came from.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    source: str


def _standardise(train, *others):
    axes = tuple(range(train.ndim - 1))
    mean = train.mean(axes)
    std = train.std(axes) + 1e-8
    return [((a - mean) / std).astype(np.float32) for a in (train,) + others], mean, std


def prepare_data(recipe, data_path=None, verbose=True):
    """Loads and splits the recipe's data set.

    Args:
        recipe: `Recipe`.
        data_path: optional explicit source (file or folder) for the loader.
        verbose: print which source was used.

    Returns:
        `Split`.
    """
    from tf_nvm import datasets  # noqa: PLC0415  (keeps `import tf_nvm` light)

    if recipe.dataset == "har":
        data = datasets.load_har_dataset(path=data_path, verbose=verbose)
        subjects = np.unique(data.subject_train)
        val_subjects = subjects[np.linspace(0, len(subjects) - 1, recipe.validation_subjects).round().astype(int)]
        is_val = np.isin(data.subject_train, val_subjects)
        x_tr, y_tr = data.x_train[~is_val], data.y_train[~is_val]
        x_val, y_val = data.x_train[is_val], data.y_train[is_val]
        x_te, y_te, source = data.x_test, data.y_test, f"{data.source}: {data.path}"
    else:
        (x, y), (x_te, y_te) = datasets.load_cifar10(path=data_path, verbose=verbose)
        x, x_te = x.astype(np.float32) / 255.0, x_te.astype(np.float32) / 255.0
        n_val = 5000
        x_tr, y_tr, x_val, y_val = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
        source = "cifar10"
    (x_tr, x_val, x_te), mean, std = _standardise(x_tr, x_val, x_te)
    return Split(x_tr, y_tr.astype(np.int32), x_val, y_val.astype(np.int32), x_te, y_te.astype(np.int32),
                 mean, std, source)


def _training_data(recipe, split):
    """Shuffled batches of the training part, augmented as the recipe says.

    Augmentation (training only, per example): every channel multiplied by a gain
    drawn from N(1, augment_scale^2) and Gaussian noise of standard deviation
    augment_noise (standardised units) added to every value.
    """
    data = tf.data.Dataset.from_tensor_slices((split.x_train, split.y_train))
    data = data.shuffle(len(split.x_train), reshuffle_each_iteration=True).batch(recipe.batch_size)
    if recipe.augment_scale or recipe.augment_noise:
        def augment(x, y):
            channels = tf.shape(x)[-1]
            gain_shape = tf.concat([tf.shape(x)[:1], tf.ones([tf.rank(x) - 2], tf.int32), [channels]], 0)
            gain = 1.0 + recipe.augment_scale * tf.random.normal(gain_shape)
            return x * gain + recipe.augment_noise * tf.random.normal(tf.shape(x)), y
        data = data.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def train_model(model, recipe, split, verbose=2):
    """Compiles and fits ``model`` with the recipe's schedule; keeps the best validation epoch.

    Args:
        model: float or NVM tf_keras model with logits outputs.
        recipe: `Recipe` (epochs, batch_size, learning_rate).
        split: `Split`.
        verbose: Keras ``fit`` verbosity (2: one line per epoch).

    Returns:
        dict with ``val_accuracy`` (best), ``best_epoch`` (1-based), ``test_accuracy``,
        ``seconds`` (wall-clock training time).
    """
    steps = recipe.epochs * int(np.ceil(len(split.x_train) / recipe.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, steps)
    model.compile(keras.optimizers.Adam(schedule),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    keep_best = keras.callbacks.EarlyStopping("val_accuracy", mode="max", patience=recipe.epochs + 1,
                                              restore_best_weights=True)
    start = time.perf_counter()
    history = model.fit(_training_data(recipe, split), epochs=recipe.epochs,
                        validation_data=(split.x_val, split.y_val), callbacks=[keep_best], verbose=verbose)
    seconds = time.perf_counter() - start
    val = history.history["val_accuracy"]
    _, test_acc = model.evaluate(split.x_test, split.y_test, verbose=0, batch_size=512)
    return {"val_accuracy": float(max(val)), "best_epoch": int(np.argmax(val)) + 1,
            "test_accuracy": float(test_acc), "seconds": round(seconds, 2)}


def _save_model_atomic(model, path):
    with atomic_path(path) as tmp:
        model.save(tmp, overwrite=True)


def _summary(values):
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def run_recipe(recipe, out_dir, seeds=None, data_path=None, verbose=2):
    """Trains the recipe's float baseline and NVM model for each seed; writes a run folder.

    The folder holds ``model.keras`` (the NVM model of the seed with the best
    validation accuracy), ``float_model.keras`` (its float baseline),
    ``seed<N>/{model,float_model}.keras``, ``spec.json`` (the resolved spec),
    ``recipe.json``, ``preprocessing.json`` (input mean/std) and
    ``metrics.json``: ``test_accuracy`` and ``float_test_accuracy`` (means over
    seeds), their spreads, per-seed numbers and the ``spec``.

    Args:
        recipe: `Recipe`.
        out_dir: run folder (created; existing files are replaced).
        seeds: seeds to run (default: the recipe's).
        data_path: explicit data source for the loader.
        verbose: Keras ``fit`` verbosity.

    Returns:
        the metrics dict written to ``metrics.json``.
    """
    seeds = list(recipe.seeds if seeds is None else seeds)
    os.makedirs(out_dir, exist_ok=True)
    split = prepare_data(recipe, data_path, verbose=bool(verbose))
    write_json_atomic(os.path.join(out_dir, "recipe.json"), recipe.to_dict())
    write_json_atomic(os.path.join(out_dir, "preprocessing.json"),
                      {"input_mean": split.mean.tolist(), "input_std": split.std.tolist(),
                       "formula": "x_model = (x_raw - input_mean) / input_std", "data_source": split.source})
    per_seed = []
    best = None
    for seed in seeds:
        seed_dir = os.path.join(out_dir, f"seed{seed}")
        os.makedirs(seed_dir, exist_ok=True)
        keras.utils.set_random_seed(seed)
        float_model = models.build(recipe.architecture, **recipe.architecture_args)
        if verbose:
            print(f"[tf-nvm] {recipe.name} seed {seed}: float baseline ({recipe.architecture})", flush=True)
        float_result = train_model(float_model, recipe, split, verbose)
        keras.utils.set_random_seed(seed)
        nvm_model = quantize_model(models.build(recipe.architecture, **recipe.architecture_args),
                                   recipe.spec, init=recipe.init)
        if verbose:
            print(f"[tf-nvm] {recipe.name} seed {seed}: NVM model ({recipe.spec_name})", flush=True)
        nvm_result = train_model(nvm_model, recipe, split, verbose)
        _save_model_atomic(float_model, os.path.join(seed_dir, "float_model.keras"))
        _save_model_atomic(nvm_model, os.path.join(seed_dir, "model.keras"))
        row = {"seed": seed, "nvm": nvm_result, "float": float_result}
        per_seed.append(row)
        if verbose:
            print(f"[tf-nvm] seed {seed}: NVM test {nvm_result['test_accuracy']:.4f} "
                  f"(val {nvm_result['val_accuracy']:.4f}), float test {float_result['test_accuracy']:.4f}",
                  flush=True)
        if best is None or nvm_result["val_accuracy"] > best[0]:
            best = (nvm_result["val_accuracy"], seed, nvm_model, float_model)
    _save_model_atomic(best[2], os.path.join(out_dir, "model.keras"))
    _save_model_atomic(best[3], os.path.join(out_dir, "float_model.keras"))
    spec = model_spec(best[2])
    write_json_atomic(os.path.join(out_dir, "spec.json"), spec.to_dict())
    nvm_acc = [r["nvm"]["test_accuracy"] for r in per_seed]
    float_acc = [r["float"]["test_accuracy"] for r in per_seed]
    metrics = {
        "recipe": recipe.name,
        "test_accuracy": statistics.fmean(nvm_acc),
        "float_test_accuracy": statistics.fmean(float_acc),
        "test_accuracy_summary": _summary(nvm_acc),
        "float_test_accuracy_summary": _summary(float_acc),
        "selected_seed": best[1],
        "selection": "model.keras is the seed with the best validation accuracy; test never used to select",
        "seeds": per_seed,
        "spec": spec.to_dict(),
        "data_source": split.source,
        "split_sizes": {"train": len(split.x_train), "val": len(split.x_val), "test": len(split.x_test)},
    }
    write_json_atomic(os.path.join(out_dir, "metrics.json"), metrics)
    return metrics


def load_run(path):
    """Reads a run folder written by `run_recipe` (or a bare ``.keras`` file).

    Checks that ``spec.json`` matches the model and that ``preprocessing.json``
    has ``input_mean``/``input_std``.

    Args:
        path: run folder or ``.keras`` file.

    Returns:
        (model, preprocessing dict or None, dataset name or None).

    Raises:
        ExportError: not a run folder or .keras file, or inconsistent run files.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        model_path = os.path.join(path, "model.keras")
        if not os.path.isfile(model_path):
            raise ExportError(f"run folder {path!r} has no model.keras. Fix: pass a folder written by "
                              "`tf-nvm train` (model.keras, spec.json, preprocessing.json) or a .keras file.")
        model = load_model(model_path, compile=False)
        preprocessing = dataset = None
        prep_path = os.path.join(path, "preprocessing.json")
        if os.path.isfile(prep_path):
            with open(prep_path, encoding="utf-8") as handle:
                preprocessing = json.load(handle)
            for key in ("input_mean", "input_std"):
                if key not in preprocessing:
                    raise ExportError(f"{prep_path}: field {key!r} is missing. Fix: re-run `tf-nvm train`.")
        spec_path = os.path.join(path, "spec.json")
        if os.path.isfile(spec_path):
            with open(spec_path, encoding="utf-8") as handle:
                saved = NVMSpec.from_dict(json.load(handle))
            if saved != model_spec(model):
                raise ExportError(f"{spec_path} does not match the spec of {model_path}. Fix: re-run "
                                  "`tf-nvm train`; the run folder mixes files of different runs.")
        recipe_path = os.path.join(path, "recipe.json")
        if os.path.isfile(recipe_path):
            with open(recipe_path, encoding="utf-8") as handle:
                dataset = json.load(handle).get("dataset")
        return model, preprocessing, dataset
    if os.path.isfile(path) and path.endswith(".keras"):
        return load_model(path, compile=False), None, None
    raise ExportError(f"{path!r} is neither a run folder nor a .keras file. Fix: pass the folder written by "
                      "`tf-nvm train` or the model's .keras file.")


def standardise(x, preprocessing):
    """Raw inputs -> model inputs with a run's ``preprocessing.json``: ``(x - input_mean) / input_std``.

    Args:
        x: raw inputs (float array, channels last).
        preprocessing: dict with ``input_mean`` and ``input_std`` (one value per channel).

    Returns:
        float32 array.
    """
    mean = np.asarray(preprocessing["input_mean"], np.float32)
    std = np.asarray(preprocessing["input_std"], np.float32)
    return ((np.asarray(x, np.float32) - mean) / std).astype(np.float32)
