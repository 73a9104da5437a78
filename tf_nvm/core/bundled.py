"""The bundled JSON configurations: where training recipes, experiment recipes and search configs live, their names.

A configuration is found by name among the bundled ones or by the path of a
``.json`` file. A built package carries the repository's ``recipes/`` (with
``recipes/experiments/``) as ``tf_nvm/_recipes/`` and ``searches/`` as
``tf_nvm/_searches/`` (setup.py); a source checkout (also an editable install)
reads the repository's folders.

This module imports nothing from TensorFlow (nor numpy): the command line
checks a name here before it loads anything heavy (`find`), and the loaders
(`tf_nvm.experiments.recipes.load`, `tf_nvm.pipeline.load`, `tf_nvm.nas.config.load`)
word their "not found" errors with `not_found_message`.

Example:
    >>> from tf_nvm.core import bundled
    >>> "har-2bit-unipolar" in bundled.names("recipe")
    True
"""

import dataclasses
import importlib.resources
import os
from pathlib import Path
from typing import Any

from tf_nvm.core.errors import PipelineError, RecipeError, SearchError
from tf_nvm.core.registry import did_you_mean

__all__ = ["KINDS", "folder", "names", "find", "not_found_message", "recipes_dir", "experiments_dir", "searches_dir"]


@dataclasses.dataclass(frozen=True)
class _Kind:
    """One kind of bundled configuration."""

    label: str
    """How messages name one file (``"recipe"``)."""
    packaged: str
    """Folder inside an installed ``tf_nvm`` package (``"_recipes"``)."""
    checkout: str
    """Folder in a source checkout, relative to its root (``"recipes"``)."""
    error: type
    """The `TfNvmError` subclass the kind's loader raises."""
    command: str
    """The command that lists the names (for messages)."""


KINDS = {
    "recipe": _Kind("recipe", "_recipes", "recipes", RecipeError, "tf-nvm recipes"),
    "experiment": _Kind("experiment recipe", os.path.join("_recipes", "experiments"),
                        os.path.join("recipes", "experiments"), PipelineError, "tf-nvm recipes"),
    "search": _Kind("search config", "_searches", "searches", SearchError, "tf-nvm recipes"),
}
"""Kinds of bundled configuration: ``"recipe"`` (training recipes, `tf-nvm train`), ``"experiment"`` (experiment
recipes, `tf-nvm run`), ``"search"`` (search configs, `tf-nvm search`)."""


def _kind(kind: str) -> _Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise RecipeError(f"bundled configuration kind {kind!r} is not known; known: {sorted(KINDS)}. Fix: pass one "
                          "of those.") from None


def folder(kind: str, required: bool = True) -> Path:
    """The folder of the bundled configurations of ``kind`` (`pathlib.Path`).

    Args:
        kind: a `KINDS` name.
        required: raise when neither folder exists (else return the checkout's path, which may not exist).

    Raises:
        the kind's error: neither the installed nor the checkout folder exists (a broken installation).
    """
    spec = _kind(kind)
    packaged = Path(str(importlib.resources.files("tf_nvm"))) / spec.packaged
    if packaged.is_dir():
        return packaged
    root = Path(__file__).resolve().parents[2]  # tf_nvm/core/bundled.py -> the checkout
    checkout = root / spec.checkout
    if (root / "setup.cfg").is_file() and checkout.is_dir() or not required:
        return checkout
    raise spec.error(f"no bundled {spec.label}s: neither {packaged} (installed package) nor {checkout} (source "
                     f"checkout) is a folder. Fix: reinstall tf-nvm (pip install --force-reinstall tf-nvm), or pass "
                     f"the path of a .json {spec.label}.")


def _folder(kind: str) -> Path:
    """`folder`, where the experiment recipes' folder is optional (a package may bundle none)."""
    return folder(kind, required=kind != "experiment")


def recipes_dir() -> Path:
    """The folder of the bundled training recipes (`folder("recipe")`)."""
    return folder("recipe")


def experiments_dir() -> Path:
    """The folder of the bundled experiment recipes (``experiments/`` beside the training recipes; may not exist)."""
    return folder("experiment", required=False)


def searches_dir() -> Path:
    """The folder of the bundled search configs (`folder("search")`)."""
    return folder("search")


def names(kind: str) -> list[str]:
    """Names of the bundled configurations of ``kind`` (sorted file stems; [] without a folder)."""
    path = _folder(kind)
    return sorted(p.stem for p in path.glob("*.json")) if path.is_dir() else []


def not_found_message(kind: str, name_or_path: str | os.PathLike[str], path: str) -> str:
    """The message of a configuration that is not found: what was asked, where it was looked for, the closest
    bundled name, the bundled names and the fix.

    Args:
        kind: a `KINDS` name.
        name_or_path: what the user gave.
        path: the file looked for.
    """
    spec, known, asked = _kind(kind), names(kind), os.fspath(name_or_path)
    hint = "" if asked.endswith(".json") else did_you_mean(asked, known)
    return (f"{spec.label} {asked!r} not found (looked for {path}).{hint} Known {spec.label}s: {known}. Fix: pass "
            f"one of those names (`{spec.command}` lists them) or the path of a .json {spec.label} file.")


def find(kind: str, name_or_path: Any) -> str:
    """The file of a bundled configuration name, or the ``.json`` path given, checked to exist.

    Reads nothing: the command line calls it before anything heavy loads, the loaders read the file.

    Args:
        kind: a `KINDS` name.
        name_or_path: a bundled name or a path ending in ``.json``.

    Returns:
        the path (str).

    Raises:
        the kind's error: not a string, or no such file (the message names the closest bundled name).
    """
    spec = _kind(kind)
    if not isinstance(name_or_path, (str, os.PathLike)) or not os.fspath(name_or_path):
        raise spec.error(f"{spec.label}: expected a name or a .json path, got {name_or_path!r}. Fix: pass one of "
                         f"{names(kind)} or the path of a .json {spec.label} file.")
    name_or_path = os.fspath(name_or_path)
    path = name_or_path if name_or_path.endswith(".json") else str(_folder(kind) / (name_or_path + ".json"))
    if "\x00" in path or not os.path.isfile(path):
        raise spec.error(not_found_message(kind, name_or_path, path))
    return path
