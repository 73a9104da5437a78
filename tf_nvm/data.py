"""Data preparation: a recipe's data set loaded, split for model selection, and standardised.

The training part is split into a training and a validation part (validation
subjects held out of the training subjects for HAR, the last 10 % of the
training images for CIFAR-10: 5000 of 50,000); the test part is only evaluated, never used for
selection. Inputs are standardised with the `Standardisation` fitted on the
training part (what remains after the validation part is removed).

Importing this module does not import TensorFlow.
"""

import dataclasses

import numpy as np

from tf_nvm.datasets import DATASETS
from tf_nvm.errors import RecipeError
from tf_nvm.preprocessing import Standardisation
from tf_nvm.registry import Registry

__all__ = ["Split", "prepare_data", "subject_folds", "SPLITS"]

CIFAR10_VALIDATION_FRACTION = 0.1
"""CIFAR-10: the last this fraction of the training images is the validation part (5000 of 50,000)."""


@dataclasses.dataclass
class Split:
    """Standardised arrays of one data set, ready for ``fit``.

    Attributes:
        x_train, y_train: training part (validation part removed).
        x_val, y_val: validation part (model selection).
        x_test, y_test: test part (reported only).
        standardisation: per-channel `Standardisation` fitted on the training
            part (part of the input encoding; a run folder's ``preprocessing.json``).
        source: where the data came from.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    standardisation: Standardisation
    source: str


SPLITS = Registry("data split", error=RecipeError,
                  fix="register a split for the data set with tf_nvm.data.SPLITS.register(name, split)")
"""Data-set name -> split: (loaded data, recipe) -> raw (x_tr, y_tr, x_val, y_val, x_te, y_te, source)."""


@SPLITS.register("har")
def _split_har(data, recipe):
    """HAR: ``recipe.validation_subjects`` training subjects, evenly spaced by id, are the validation part."""
    subjects = np.unique(data.subject_train)
    val_subjects = subjects[np.linspace(0, len(subjects) - 1, recipe.validation_subjects).round().astype(int)]
    is_val = np.isin(data.subject_train, val_subjects)
    return (data.x_train[~is_val], data.y_train[~is_val], data.x_train[is_val], data.y_train[is_val],
            data.x_test, data.y_test, f"{data.source}: {data.path}")


@SPLITS.register("cifar10")
def _split_cifar10(data, recipe):
    """CIFAR-10: pixels scaled to [0, 1]; the last 10 % of the training images are the validation part."""
    (x, y), (x_te, y_te) = data
    x, x_te = x.astype(np.float32) / 255.0, x_te.astype(np.float32) / 255.0
    n_val = max(1, int(round(len(x) * CIFAR10_VALIDATION_FRACTION)))
    return x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:], x_te, y_te, "cifar10"


def prepare_data(recipe, data_path=None, verbose=True):
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
    return _standardised(*split(DATASETS.get(recipe.dataset)(path=data_path, verbose=verbose), recipe))


def _standardised(x_tr, y_tr, x_val, y_val, x_te, y_te, source):
    """The `Split` of raw parts, standardised with the statistics of the training part."""
    standardisation = Standardisation.fit(x_tr)
    x_tr, x_val, x_te = (standardisation.apply(x) for x in (x_tr, x_val, x_te))
    return Split(x_tr, y_tr.astype(np.int32), x_val, y_val.astype(np.int32), x_te, y_te.astype(np.int32),
                 standardisation, source)


def subject_folds(recipe, folds, data_path=None, verbose=True):
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
