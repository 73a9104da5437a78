"""The data a command evaluates or exports with: test data, the input standardization, representative data.

* `test_data`: the one data path of every command: ``--dataset NAME`` (a registered
  loader, ``--data PATH`` its explicit source; default: the data set the run or
  mapping records) or ``--data PATH`` alone / ``--dataset npz`` (a user's
  ``.npz``), standardised once with the mapping's own standardization
  (`tf_nvm.experiments.data.evaluation_data`).
* `input_standardization`: the standardization an export attaches: from a JSON file
  (``{"input_mean": [...], "input_std": [...]}``, a run folder's
  ``preprocessing.json``) or fitted on the ``x_train`` of ``--data``.
* `export_inputs`: the standardization and representative data of ``tf-nvm export``.
"""

import dataclasses
import os
import sys
from typing import Any

from tf_nvm.core.errors import ExportError
from tf_nvm.core.preprocessing import Standardization
from tf_nvm.core.safe_io import read_json
from tf_nvm.datasets import DATASETS
from tf_nvm.experiments.data import evaluation_data, load_raw_data, standardization_from_data
from tf_nvm.pipeline.sources import MAX_JSON_BYTES, Source, recipe_task, run_standardization

__all__ = ["test_data", "input_standardization", "input_standardisation", "export_inputs", "ExportInputs",
           "DEFAULT_DATASET", "USER_DATA"]

USER_DATA = "npz"
"""The registered data set of a user's ``.npz`` (`tf_nvm.datasets.user`): ``--dataset npz``, the default when
``--data PATH`` is given and the source names no data set."""

DEFAULT_DATASET = "har"
"""The data set of a mapping that records none, when neither ``--data`` nor ``--dataset`` is given."""

_TRAINING_NAMES = {"har": "HAR training windows", "cifar10": "CIFAR-10 training images"}


def _named(dataset, data, where):
    """Reads the old spelling ``--data NAME`` (a data-set name that is no file) as ``--dataset NAME``."""
    if dataset is None and data is not None and data in DATASETS and not os.path.exists(data):
        print(f"[tf-nvm] warning: {where} --data {data} names a data set; --data now takes a PATH (a .npz with "
              f"x_test, y_test). Use --dataset {data} (this spelling will be removed).", file=sys.stderr)
        return data, None
    return dataset, data


def test_data(source: Source, dataset: str | None = None, data: str | None = None, examples: int | None = None,
              where: str = "tf-nvm simulate", verbose: bool = False) -> Any:
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
    dataset, data = _named(dataset, data, where)
    dataset = dataset or source.dataset or (USER_DATA if data is not None else DEFAULT_DATASET)
    raw = load_raw_data(dataset, data, verbose=verbose)
    return evaluation_data(source.mapping, raw, examples, where=f"{where} --data" if dataset == USER_DATA
                           else f"{where} --dataset {dataset}")


def input_standardization(data: str | None = None, standardisation: str | None = None, dataset: str | None = None,
                          where: str = "tf-nvm export") -> Standardization | None:
    """The input standardization an export attaches to a model that has none.

    Args:
        data: a user's ``.npz`` (its ``x_train`` is fitted, `tf_nvm.experiments.data.standardization_from_data`),
            or the explicit source of ``dataset``.
        standardisation: a JSON file ``{"input_mean": [...], "input_std": [...]}`` (raw units, one value per
            input channel; a run folder's ``preprocessing.json``).
        dataset: a registered data set whose training part is fitted.
        where: named in messages.

    Returns:
        `tf_nvm.core.preprocessing.Standardization`, or None when nothing is given.

    Raises:
        ExportError: both a file and data given, or an unreadable file.
        CorruptDatasetError: the data have no ``x_train``.
    """
    dataset, data = _named(dataset, data, where)
    if standardisation is not None:
        if data is not None or dataset is not None:
            raise ExportError(f"{where}: both --standardisation and --data/--dataset were given; the input "
                              "standardisation comes from one of them. Fix: pass only one.")
        parsed = read_json(standardisation, max_bytes=MAX_JSON_BYTES, what=f"{where} --standardisation",
                           error=ExportError,
                           fix="Fix: pass a JSON file {\"input_mean\": [...], \"input_std\": [...]}.")
        return Standardization.from_dict(parsed, where=f"{where} --standardisation {standardisation}",
                                         error=ExportError)
    if data is None and dataset is None:
        return None
    return standardization_from_data(load_raw_data(dataset, data), where=f"{where} --data")


input_standardisation = input_standardization
"""Deprecated alias of `input_standardization` (kept for one release)."""


@dataclasses.dataclass(frozen=True, eq=False)
class ExportInputs:
    """What an export attaches and calibrates with (`export_inputs`).

    Attributes:
        standardisation: the input `Standardization` the mapping carries, or None.
        representative: standardised training inputs for the TFLite converter, or None.
        dataset: the registered data set the model was trained on (mapping metadata), or None.
        task: the recipe's task for a run folder of ``tf-nvm train`` (`recipe_task`), else None.
        notes: lines to print (those starting with ``warning`` go to stderr).
    """

    standardisation: Any
    representative: Any
    dataset: str | None
    task: str | None
    notes: tuple


_NO_STANDARDIZATION = (
    "warning: the model has no preprocessing.json (a bare .keras model) and no --data or --standardisation was "
    "given: the exports expect inputs that are already standardised, and the mapping records no input "
    "standardisation. Pass --data DATA.npz (its x_train is fitted) or --standardisation FILE.json, or the run "
    "folder written by `tf-nvm train`.")


def _export_standardization(run_folder, standardisation, raw, where, notes):
    """``(standardization or None, where it came from)`` of an export; appends its note to ``notes``."""
    if run_folder.preprocessing is not None:
        if standardisation is not None:
            raise ExportError(f"{where}: --standardisation was given, but the run folder already records its input "
                              "standardisation (preprocessing.json). Fix: drop --standardisation, or export the "
                              "bare model.keras.")
        return run_standardization(run_folder, where), "preprocessing.json"
    if standardisation is not None:
        return input_standardization(standardisation=standardisation, where=where), standardisation
    if raw is not None:
        origin = f"x_train of {raw.source}"
        notes.append(f"input standardisation fitted on {len(raw.x_train)} training examples ({origin}); the "
                     "mapping carries it")
        return standardization_from_data(raw, where=f"{where} --data"), origin
    notes.append(_NO_STANDARDIZATION)
    return None, None


def _representative(raw, found, origin, examples, notes):
    """The first ``examples`` training inputs of ``raw``, standardized with ``found``; appends a note."""
    x_rep = raw.x_train[:examples]
    x_rep = x_rep.astype("float32") if found is None else found.apply(x_rep)
    what = _TRAINING_NAMES.get(raw.dataset) or f"training examples of {raw.source}"
    notes.append(f"representative data: {len(x_rep)} {what}"
                 + ("" if found is None else f" standardised with {origin}"))
    return x_rep


def export_inputs(run_folder: Any, data: str | None = None, dataset: str | None = None,
                  standardisation: str | None = None, representative: bool = True, examples: int = 256,
                  where: str = "tf-nvm export") -> ExportInputs:
    """The input standardisation and representative data of an export, read the way `test_data` reads data.

    A run folder keeps its ``preprocessing.json``; a bare ``.keras`` model takes ``standardisation`` (a JSON
    file) or the one fitted on the ``x_train`` of ``data`` (`input_standardization`). The representative data
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
    dataset, data = _named(dataset, data, where)
    chosen = dataset or run_folder.dataset or (USER_DATA if data is not None else None)
    notes: list[str] = []
    wanted = representative and (data is not None or dataset is not None
                                 or (run_folder.preprocessing is not None and chosen in (None, "har")))
    raw = None
    if wanted or (run_folder.preprocessing is None and standardisation is None and chosen is not None):
        raw = load_raw_data(chosen or DEFAULT_DATASET, data)
    found, origin = _export_standardization(run_folder, standardisation, raw, where, notes)
    x_rep = None
    if wanted and raw is not None and raw.x_train is not None:
        x_rep = _representative(raw, found, origin, examples, notes)
    task = recipe_task(getattr(run_folder, "recipe", None))
    return ExportInputs(found, x_rep, None if chosen in (None, USER_DATA) else chosen, task, tuple(notes))
