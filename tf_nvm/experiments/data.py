"""Data preparation: a recipe's data set loaded, split for model selection, and standardised; test data for
the simulator and the cost report, from a registered data set or a user's ``.npz``.

The training part is split into a training and a validation part (validation
subjects held out of the training subjects for HAR, the last 10 % of the
training images for CIFAR-10: 5000 of 50,000); the test part is only evaluated, never used for
selection. Inputs are standardized with the `Standardization` fitted on the
training part (what remains after the validation part is removed), in the
data set's stored units (CIFAR-10: pixel values 0..255), so that a mapping's
``input_mean``/``input_std`` apply to the data exactly as a loader returns it.

`load_raw_data` is the one way every command reads test data (``--dataset NAME``:
a registered loader, ``--data PATH`` its explicit source; ``--data PATH`` alone: a
user's ``.npz``, see `load_npz_data`), and `evaluation_data` the one way raw data
become simulator inputs (the mapping's own standardisation, applied once).

Importing this module does not import TensorFlow.
"""

import dataclasses
from typing import Any, Optional

import numpy as np

from tf_nvm.datasets import DATASETS
from tf_nvm.datasets.user import FIX_NPZ, USER_NPZ_MAX_BYTES, RawData, load_npz_data
from tf_nvm.core.hashing import arrays_sha256
from tf_nvm.core.errors import CorruptDatasetError, DatasetNotFoundError, RecipeError, SimulatorError
from tf_nvm.core.preprocessing import Standardization
from tf_nvm.core.registry import Registry

__all__ = ["Split", "prepare_data", "subject_folds", "SPLITS", "RawData", "load_npz_data", "load_raw_data",
           "EvaluationData", "evaluation_data", "standardization_from_data", "standardisation_from_data",
           "USER_NPZ_MAX_BYTES",
           "CALIBRATION_EXAMPLES", "INPUT_STD_RANGE", "NPZ_VALIDATION_FRACTION"]

NPZ_VALIDATION_FRACTION = 0.1
"""A user's ``.npz`` (data set ``npz``): the last this fraction of ``x_train`` is the validation part."""

CIFAR10_VALIDATION_FRACTION = 0.1
"""CIFAR-10: the last this fraction of the training images is the validation part (5000 of 50,000)."""


@dataclasses.dataclass
class Split:
    """Standardised arrays of one data set, ready for ``fit``.

    Attributes:
        x_train, y_train: training part (validation part removed).
        x_val, y_val: validation part (model selection).
        x_test, y_test: test part (reported only).
        standardization: per-channel `Standardization` fitted on the training
            part (part of the input encoding; a run folder's ``preprocessing.json``).
            ``standardisation`` is its deprecated alias (read-only).
        source: where the data came from (a description: the same data may come from several places).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    standardization: Standardization
    source: str
    _sha256: Optional[str] = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @property
    def standardisation(self) -> Standardization:
        """Deprecated alias of `standardization` (British spelling), kept for one release."""
        return self.standardization

    def content_hash(self) -> str:
        """SHA-256 (hex str) of the six arrays (dtype, shape and bytes, in field order), whatever their source.

        What identifies the data in run folders and training keys: the same arrays read from a package, a cache
        or a copy give the same hash; one changed value gives another. Computed once per `Split` (a run keys
        every seed's trainings on it; CIFAR-10's arrays are 0.7 GB): change the arrays through
        ``dataclasses.replace``, which makes a new `Split`, not in place.
        """
        if self._sha256 is None:
            self._sha256 = arrays_sha256((name, getattr(self, name)) for name in ("x_train", "y_train", "x_val",
                                                                                 "y_val", "x_test", "y_test"))
        return self._sha256


SPLITS = Registry("data split", error=RecipeError,
                  fix="register a split for the data set with tf_nvm.experiments.data.SPLITS.register(name, split)")
"""Data-set name -> split: (loaded data, recipe) -> raw (x_tr, y_tr, x_val, y_val, x_te, y_te, source)."""


@SPLITS.register("har")
def _split_har(data, recipe):
    """HAR: ``recipe.validation_subjects`` training subjects, evenly spaced by id, are the validation part."""
    subjects = np.unique(data.subject_train)
    if recipe.validation_subjects >= len(subjects):  # a HAR file with fewer volunteers than the official split
        raise RecipeError(f"recipe {recipe.name!r}: validation_subjects is {recipe.validation_subjects}, and the "
                          f"training split of {data.source}: {data.path} has {len(subjects)} volunteers; allowed: "
                          f"1..{len(subjects) - 1} (at least one stays for training). Fix: lower the recipe's "
                          "validation_subjects.")
    val_subjects = subjects[np.linspace(0, len(subjects) - 1, recipe.validation_subjects).round().astype(int)]
    is_val = np.isin(data.subject_train, val_subjects)
    return (data.x_train[~is_val], data.y_train[~is_val], data.x_train[is_val], data.y_train[is_val],
            data.x_test, data.y_test, f"{data.source}: {data.path}")


@SPLITS.register("cifar10")
def _split_cifar10(data, recipe):
    """CIFAR-10: pixel values 0..255 as float32 (the standardisation is fitted on them, so a mapping's
    ``input_mean``/``input_std`` apply to the images as stored); the last 10 % of the training images are the
    validation part."""
    (x, y), (x_te, y_te) = data
    x, x_te = x.astype(np.float32), x_te.astype(np.float32)
    n_val = max(1, int(round(len(x) * CIFAR10_VALIDATION_FRACTION)))
    return x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:], x_te, y_te, "cifar10"


@SPLITS.register("npz")
def _split_npz(data, recipe):
    """A user's ``.npz``: the last 10 % of ``x_train`` (and ``y_train``) are the validation part.

    The targets the recipe's task needs: integer class labels (N,) for ``classification``, numeric targets
    (N, ...) for ``regression`` (``y_train`` and ``y_test``), none for ``reconstruction`` (an autoencoder: the
    targets are the standardised inputs, `_standardised`; a ``y_test`` given is not read).
    """
    where, task = data.source, recipe.training_task
    needed = ("x_train", "x_test") if task == "reconstruction" else ("x_train", "y_train", "x_test", "y_test")
    missing = [key for key in needed if getattr(data, key) is None]
    if missing:
        given = ", ".join(f"{key}=..." for key in needed)
        raise CorruptDatasetError(f"{where}: a recipe of task {task!r} trains on {', '.join(needed)}, and the .npz "
                                  f"lacks {missing}. Fix: add the missing arrays (numpy.savez(path, {given}))"
                                  + ("." if task == "reconstruction" else ", or set the recipe's task to "
                                     "\"reconstruction\" for an autoencoder (targets = inputs)."))
    if task == "classification":
        for key in ("y_train", "y_test"):
            y = getattr(data, key)
            if y.ndim != 1 or y.dtype.kind not in "iu":
                raise CorruptDatasetError(f"{where}: key {key!r} is {y.dtype} {list(y.shape)}; a recipe of task "
                                          "'classification' trains a classifier on integer labels (N,). Fix: pass "
                                          "integer class labels, or set the recipe's task to \"regression\" for "
                                          "float targets.")
    if len(data.x_train) < 2:
        raise CorruptDatasetError(f"{where}: key 'x_train' holds {len(data.x_train)} example(s); at least 2 are "
                                  "needed (training and validation parts). Fix: pass more training examples.")
    x = data.x_train.astype(np.float32)
    y = x if data.y_train is None or task == "reconstruction" else data.y_train
    y_test = data.x_test if task == "reconstruction" else data.y_test
    n_val = max(1, int(round(len(x) * NPZ_VALIDATION_FRACTION)))
    return x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:], data.x_test.astype(np.float32), y_test, where


def prepare_data(recipe: Any, data_path: Any = None, verbose: bool = True) -> Split:
    """Loads, splits and standardises the recipe's data set.

    Args:
        recipe: `Recipe`.
        data_path: optional explicit source (file or folder) for the loader.
        verbose: print which source was used.

    Returns:
        `Split`.

    Raises:
        RecipeError: the recipe's data set has no registered split.
    """
    split = SPLITS.get(recipe.dataset)
    x_tr, y_tr, x_val, y_val, x_te, y_te, source = split(DATASETS.get(recipe.dataset)(path=data_path,
                                                                                      verbose=verbose), recipe)
    return _standardised(x_tr, y_tr, x_val, y_val, x_te, y_te, source,
                         task=getattr(recipe, "training_task", "classification"))


def _standardised(x_tr, y_tr, x_val, y_val, x_te, y_te, source, task="classification"):
    """The `Split` of raw parts, standardised with the statistics of the training part.

    Targets by task: ``classification`` int32 labels, ``regression`` float32 targets, ``reconstruction`` the
    standardised inputs themselves (the given targets are not read).
    """
    standardization = Standardization.fit(x_tr)
    x_tr, x_val, x_te = (standardization.apply(x) for x in (x_tr, x_val, x_te))
    if task == "reconstruction":
        y_tr, y_val, y_te = x_tr, x_val, x_te
    dtype = np.int32 if task == "classification" else np.float32
    return Split(x_tr, np.asarray(y_tr, dtype), x_val, np.asarray(y_val, dtype), x_te, np.asarray(y_te, dtype),
                 standardization, source)


def subject_folds(recipe: Any, folds: int, data_path: Any = None, verbose: bool = True) -> list[Split]:
    """Cross-validation folds by subject: the training subjects dealt into ``folds`` groups by id (the i-th
    smallest id into group i mod ``folds``); fold g validates on group g and trains on the others.

    Each fold is standardised on its own training part; the test part is the data set's (never used to
    select). For a cross-validated architecture search (`tf_nvm.nas.Training.folds`).

    Args:
        recipe: `Recipe` (its data set must record subjects: HAR).
        folds: number of folds, 2 .. number of training subjects.
        data_path: optional explicit source (file or folder) for the loader.
        verbose: print which source was used.

    Returns:
        list of ``folds`` `Split` objects.

    Raises:
        RecipeError: a data set without subjects, or ``folds`` out of range.
    """
    data = DATASETS.get(recipe.dataset)(path=data_path, verbose=verbose)
    subject_train = getattr(data, "subject_train", None)
    if subject_train is None:
        raise RecipeError(f"folds by subject need a data set that records subjects (har); {recipe.dataset!r} "
                          "does not. Fix: use folds 1 for it.")
    subjects = np.unique(subject_train)
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= len(subjects):
        raise RecipeError(f"folds must be an integer from 2 to the {len(subjects)} training subjects, got "
                          f"{folds!r}. Fix: e.g. 3.")
    out = []
    for group in range(folds):
        is_val = np.isin(subject_train, subjects[group::folds])
        out.append(_standardised(data.x_train[~is_val], data.y_train[~is_val], data.x_train[is_val],
                                 data.y_train[is_val], data.x_test, data.y_test,
                                 f"{data.source}: {data.path} (subject fold {group + 1} of {folds})"))
    return out


# --------------------------------------------------------------------------- test data for simulate, cost, export
CALIBRATION_EXAMPLES = 256
"""Training examples used to calibrate per-layer ADC ranges (never the test examples they are scored on)."""

INPUT_STD_RANGE = (0.1, 10.0)
"""Allowed standard deviation of the standardised test inputs (model units): outside it the data are not in the
units the mapping's standardisation was fitted on (e.g. pixels 0..1 fed to a 0..255 standardisation: about 1/255)."""


def _arrays_of(loaded):
    """(x_train, y_train, x_test, y_test) of a registered loader's result (an object with those attributes,
    e.g. `HARData`, or Keras-style ``((x_train, y_train), (x_test, y_test))``)."""
    if hasattr(loaded, "x_test"):
        return loaded.x_train, loaded.y_train, loaded.x_test, loaded.y_test
    (x_train, y_train), (x_test, y_test) = loaded
    return x_train, y_train, x_test, y_test


def load_raw_data(dataset: str | None = None, path: Any = None, verbose: bool = False) -> RawData:
    """The test data of every command, read one way.

    ``dataset`` names a registered data set (`tf_nvm.datasets.DATASETS`), read by its
    loader with ``path`` as its explicit source (the ``--data`` of ``tf-nvm train``);
    without ``dataset`` (or with ``"npz"``), ``path`` is a user's ``.npz`` (`load_npz_data`).

    Args:
        dataset: registered data-set name, or None.
        path: the loader's explicit source, or the user's ``.npz`` when ``dataset`` is None.
        verbose: let the loader print which source it used.

    Returns:
        `RawData`.

    Raises:
        UnknownNameError: ``dataset`` is not registered.
        DatasetNotFoundError: neither a data set nor a path given, or nothing found.
        CorruptDatasetError: the data are damaged or of the wrong shape (see `load_npz_data`).
    """
    if dataset is None:
        if path is None:
            raise DatasetNotFoundError("no test data: neither a data set nor a data file was given. Fix: pass "
                                       "--data PATH (a .npz with x_test, y_test and optionally x_train) or "
                                       f"--dataset NAME (one of {DATASETS.names()}).")
        return load_npz_data(path)
    if dataset == "npz":
        return load_npz_data(path) if path is not None else DATASETS.get("npz")(path=path, verbose=verbose)
    loaded = DATASETS.get(dataset)(path=path, verbose=verbose)
    x_train, y_train, x_test, y_test = _arrays_of(loaded)
    source = getattr(loaded, "source", None) or dataset
    return RawData(np.asarray(x_test), np.asarray(y_test), np.asarray(x_train), np.asarray(y_train), dataset,
                   f"{dataset} ({source}{'' if path is None else ': ' + str(path)})")


def standardization_from_data(raw: RawData, where: str = "--data") -> Standardization:
    """The `Standardization` fitted on ``raw.x_train`` (per channel, raw units), as `prepare_data` fits it.

    Raises:
        CorruptDatasetError: ``raw`` has no ``x_train``.
    """
    if raw.x_train is None:
        raise CorruptDatasetError(f"{where}: {raw.source} has no 'x_train', so no input standardisation can be "
                                  f"fitted. {FIX_NPZ}")
    return Standardization.fit(raw.x_train.astype(np.float32))


standardisation_from_data = standardization_from_data
"""Deprecated alias of `standardization_from_data` (British spelling), kept for one release."""


@dataclasses.dataclass(frozen=True, eq=False)
class EvaluationData:
    """Simulator-ready test data.

    Attributes:
        x: model inputs (float32, standardised with the mapping's own standardisation, once).
        y: targets (integer labels or float targets), or None (targets = inputs).
        calibration: at most `CALIBRATION_EXAMPLES` standardised training inputs, or None.
        dataset: registered data-set name or None.
        source: where the data came from.
        standardized: False when the mapping records no standardisation and ``x`` is the data as given
            (``standardised`` is its deprecated alias, read-only).
    """

    x: np.ndarray
    y: Optional[np.ndarray]
    calibration: Optional[np.ndarray]
    dataset: Optional[str]
    source: str
    standardized: bool = True

    @property
    def standardised(self) -> bool:
        """Deprecated alias of `standardized` (British spelling), kept for one release."""
        return self.standardized

    @property
    def label(self) -> str:
        """A short name of the data for progress lines."""
        return self.dataset or "user"


def evaluation_data(mapping: Any, raw: RawData, examples: int | None = None, where: str = "--data") -> EvaluationData:
    """Raw data -> simulator inputs through the mapping's own input standardisation (applied exactly once).

    Checks that the example shape equals the mapping's input shape and that the
    standardised test inputs have a standard deviation inside `INPUT_STD_RANGE`
    (about 1 when the data are in the units the standardisation was fitted on;
    pixels scaled by 1/255 before a 0..255 standardisation give about 0.004).

    Args:
        mapping: `tf_nvm.mapping.Mapping`.
        raw: `RawData` (`load_raw_data`).
        examples: use only the first N test examples (None: all).
        where: how the data were named (in messages).

    Returns:
        `EvaluationData`.

    Raises:
        SimulatorError: wrong example shape, a registered data set fed to a mapping without standardisation,
            or data in other units than the standardisation (the message says which).
    """
    x, y = raw.x_test, raw.y_test
    if examples is not None:
        if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
            raise SimulatorError(f"examples: value {examples!r} is not allowed; allowed: an integer >= 1. Fix: "
                                 "e.g. --examples 500.")
        x, y = x[:examples], (None if y is None else y[:examples])
    shape = tuple(mapping.input.shape)
    if tuple(x.shape[1:]) != shape:
        raise SimulatorError(f"{where}: {raw.source} has examples of shape {list(x.shape[1:])}; the mapping's input "
                             f"{mapping.input.name!r} takes {list(shape)}. Fix: pass the data the model was trained "
                             "for.")
    if mapping.input.mean is None and raw.dataset is not None:
        raise SimulatorError(f"{where}: the mapping records no input standardisation, so raw {raw.dataset} data "
                             "cannot be fed to it. Fix: pass the run folder written by `tf-nvm train`, a mapping "
                             "exported from it, or export with `tf-nvm export MODEL --mapping P --data DATA.npz` "
                             "(fits the standardisation on its x_train) or --standardisation FILE.json.")
    standardized = mapping.input.mean is not None
    x = mapping.input.standardize(x)
    if standardized:
        spread = float(np.std(x))
        low, high = INPUT_STD_RANGE
        if not low <= spread <= high:
            raise SimulatorError(
                f"{where}: {raw.source} standardised with the mapping's input_mean/input_std has a standard "
                f"deviation of {spread:.3g} (allowed {low:g}..{high:g}, about 1 when the data are in the units the "
                "standardisation was fitted on): the data and the mapping use different units (e.g. pixels "
                "0..255 vs 0..1). Fix: pass the data as the model's training data were stored, or re-export the "
                "mapping with the standardisation of those data (tf-nvm export --data DATA.npz).")
    calibration = None
    if raw.x_train is not None:
        calibration = mapping.input.standardize(raw.x_train[:CALIBRATION_EXAMPLES])
    return EvaluationData(x, y, calibration, raw.dataset, raw.source, standardized)
