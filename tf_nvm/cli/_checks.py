"""Checks of names and plain arguments that run before a command loads anything heavy (no TensorFlow).

`tf_nvm.cli.main` calls a sub-command's ``check(args)`` (set with
``parser.set_defaults(check=...)``) before its ``func``: a misspelt recipe,
experiment, search config, preset, data set or step, a missing file or an
impossible number fails in about a second instead of after TensorFlow has
loaded, and an unknown name is answered with the closest known one. The name
lists come from TensorFlow-free modules (`tf_nvm.core.bundled`,
`tf_nvm.core.noise_presets`, `tf_nvm.datasets.DATASETS`, `tf_nvm.pipeline.STEPS`),
and the checks raise the same errors the library raises later.
"""

import os

from tf_nvm.core.errors import DatasetNotFoundError, TfNvmError
from tf_nvm.datasets import DATASETS

__all__ = ["data_path", "dataset_name", "existing_path", "at_least"]


def data_path(value: str | None, option: str = "--data") -> None:
    """Checks that ``--data PATH`` names an existing file or folder (a data set's name is not a path).

    Raises:
        DatasetNotFoundError: no such file or folder.
    """
    if value is None:
        return
    if "\x00" in value or not os.path.exists(value):
        named = (f" ({value!r} is a registered data set: a recipe names it, or --dataset {value} where the command "
                 "has that option)") if value in DATASETS else ""
        raise DatasetNotFoundError(
            f"{option} {value!r}: no such file or folder{named}. {option} is the path of a data file or folder (a "
            f"user's .npz, or the files of the recipe's data set); a registered data set ({DATASETS.names()}) is "
            f"named by the recipe or --dataset. Fix: pass an existing path, or leave {option} out to use the "
            "recipe's data set.")


def dataset_name(value: str | None, option: str = "--dataset") -> None:
    """Checks a registered data-set name (`tf_nvm.datasets.DATASETS`).

    Raises:
        UnknownNameError: unknown name (the message names the closest one).
    """
    if value is None:
        return
    try:
        DATASETS.get(value)
    except TfNvmError as err:
        raise type(err)(f"{option}: {err}") from None


def existing_path(value: str | None, option: str, what: str, error: type[TfNvmError], fix: str) -> None:
    """Checks that ``value`` (when given) names an existing file or folder.

    Args:
        value: the path received (None: not given, nothing checked).
        option: the option or argument, for the message.
        what: what it should be (``"a run folder or a .keras file"``).
        error: the `TfNvmError` subclass raised.
        fix: the "Fix: ..." sentence.

    Raises:
        ``error``: no such file or folder.
    """
    if value is not None and ("\x00" in value or not os.path.exists(value)):
        raise error(f"{option} {value!r}: no such file or folder; expected {what}. {fix}")


def at_least(value: float | None, option: str, low: float, error: type[TfNvmError], fix: str) -> None:
    """Checks that a number given on the command line (when given) is at least ``low`` (and finite).

    Raises:
        ``error``: smaller, or not finite.
    """
    if value is not None and not (value >= low and value != float("inf")):
        raise error(f"{option}: value {value!r} is not allowed; allowed: a number >= {low}. {fix}")
