"""Run folders: what `tf-nvm train` writes and later steps (export, simulate, cost) read.

Layout of a run folder (``schema_version`` 2)::

    run.json            manifest: {"format": "tf_nvm.run", "schema_version": 2, "tf_nvm_version": ..., "git_commit":
                        ..., "git_dirty": ...} (`tf_nvm.core.provenance.current`)
    recipe.json         the recipe (`Recipe.to_dict`)
    tf_nvm_output.json  names the command that wrote the folder (`tf_nvm.core.outputs`, the rule of every --out)
    preprocessing.json  input standardisation (`Standardization.to_dict`), ``data_source`` and ``data_sha256``
    model.keras         the NVM model of the seed with the best validation accuracy
    float_model.keras   its float baseline
    seed<N>/            model.keras, float_model.keras and result.json (its numbers, written last) of seed N;
                        while seed N trains, progress-float/ and progress-nvm/ (`tf_nvm.experiments.progress`)
    spec.json           the resolved `NVMSpec` of model.keras
    metrics.json        accuracies (see `tf_nvm.experiments.train.run_recipe`)
    steps/<step>.json   step markers: a step that finished (`mark_done`), so a pipeline can reuse it

A folder without ``run.json`` (written before the manifest existed) is read as
version 1: the same files without manifest and step markers. Every file is
written atomically (`tf_nvm.core.atomic`). Importing this module does not import
TensorFlow; `read_run` loads the models with it.
"""

import dataclasses
import json
import os
import re
import shutil
from typing import Any

from tf_nvm.core.version import __version__
from tf_nvm.core import provenance
from tf_nvm.core.atomic import atomic_path, write_json_atomic
from tf_nvm.core.errors import RunFolderError, SpecError
from tf_nvm.core.outputs import claim_output_folder, mark_output_folder
from tf_nvm.core.preprocessing import Standardization
from tf_nvm.core.safe_io import json_plain, read_json
from tf_nvm.core.spec import NVMSpec

__all__ = ["FORMAT", "SCHEMA_VERSION", "RunFolder", "prepare_folder", "check_resumable", "create_run", "save_model",
           "write_seed", "read_seed", "SHARED_FLOAT_CODE", "StaleFloat", "write_shared_float", "read_shared_float",
           "write_result", "read_run",
           "mark_done", "is_done", "step_info", "step_stale", "MAX_RUN_JSON_BYTES"]

FORMAT = "tf_nvm.run"
"""The ``format`` field of ``run.json``."""
SCHEMA_VERSION = 2
"""The run-folder version this module writes; it reads 1 (no ``run.json``) to this."""

MANIFEST = "run.json"
MODEL = "model.keras"
FLOAT_MODEL = "float_model.keras"
SPEC = "spec.json"
RECIPE = "recipe.json"
PREPROCESSING = "preprocessing.json"
METRICS = "metrics.json"
SEED_RESULT = "result.json"
STEPS = "steps"
MAX_RUN_JSON_BYTES = 16 * 1024 * 1024
"""Largest JSON file of a run folder read, bytes (16 MiB; a metrics.json of 1,000 epochs is about 100 KiB)."""

PathLike = str | os.PathLike
"""A file or folder path."""

_RETRAIN = "Fix: re-run `tf-nvm train`; the run folder was edited, truncated or mixes files of different runs."
_STEP_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """A run folder (or a bare ``.keras`` file) as read by `read_run`.

    Attributes:
        path: the folder, or the ``.keras`` file.
        model_path: the NVM model file.
        model: the NVM tf_keras model (None when read with ``load_model=False``).
        float_model_path: the float baseline's file (None: not in the folder).
        spec: the model's `NVMSpec` (None: a bare ``.keras`` file read without loading it,
            or a folder without ``spec.json`` read without loading the model).
        preprocessing: input `Standardization` (None: no ``preprocessing.json``).
        data_source: where the training data came from (None: unknown).
        dataset: the recipe's data-set name (None: no ``recipe.json`` or no such field).
        recipe: contents of ``recipe.json`` (None: absent).
        metrics: contents of ``metrics.json`` (None: absent).
        schema_version: 1 (no manifest) .. `SCHEMA_VERSION`; None for a bare ``.keras`` file.
        tf_nvm_version: tf_nvm version that wrote the folder (None: unknown).
    """

    path: str
    model_path: str
    model: Any = None
    float_model_path: str | None = None
    spec: NVMSpec | None = None
    preprocessing: Standardization | None = None
    data_source: str | None = None
    dataset: str | None = None
    recipe: dict | None = None
    metrics: dict | None = None
    schema_version: int | None = None
    tf_nvm_version: str | None = None


# ------------------------------------------------------------------- writing
def prepare_folder(folder: PathLike, overwrite: bool = False, remove: bool = True) -> None:
    """Makes sure a new run may be written to ``folder``; with ``overwrite``, removes the earlier run there.

    The rule of every command's output folder (`tf_nvm.core.outputs.claim_output_folder`): an empty or missing
    folder is fine. A folder holding an earlier run (its marker, ``run.json``, ``metrics.json`` or
    ``recipe.json``) or another command's output is refused unless ``overwrite`` is True, in which case the
    whole earlier output (stale ``seedN/`` folders included) is removed. A non-empty folder that no tf_nvm
    command wrote is never removed.

    Raises:
        RunFolderError: the folder holds an earlier run and ``overwrite`` is False, or it is
            not a run folder, or it is a file.
    """
    state = claim_output_folder(folder, "train", overwrite, error=RunFolderError)  # the rule of every --out
    if state in ("missing", "empty"):
        return
    if state == "own" and not overwrite:
        raise RunFolderError(f"run folder {os.fspath(folder)!r} already holds a run. Fix: pass --overwrite (the "
                             "earlier run, its seed folders included, is removed first) or another --out.")
    if remove:
        shutil.rmtree(folder)


def create_run(folder: PathLike, recipe: Any, standardisation: Standardization, data_source: str | None,
               data_sha256: str | None = None) -> None:
    """Starts a run folder: manifest, ``recipe.json``, ``preprocessing.json``; clears old step markers.

    Files of an earlier run in ``folder`` are replaced as the new run writes them;
    its step markers are removed at once, so no later step reuses results of
    the earlier run.

    Args:
        folder: run folder (created).
        recipe: `Recipe`.
        standardisation: `Standardization` of the model inputs.
        data_source: where the data came from (str).
        data_sha256: `tf_nvm.experiments.data.Split.content_hash` of the data (None: unknown).
    """
    mark_output_folder(folder, "train")
    shutil.rmtree(os.path.join(folder, STEPS), ignore_errors=True)
    write_json_atomic(os.path.join(folder, MANIFEST), {"format": FORMAT, "schema_version": SCHEMA_VERSION,
                                                       **provenance.current()})
    write_json_atomic(os.path.join(folder, RECIPE), recipe.to_dict())
    write_json_atomic(os.path.join(folder, PREPROCESSING), _preprocessing(standardisation, data_source, data_sha256))


def _preprocessing(standardisation, data_source, data_sha256):
    """Contents of ``preprocessing.json`` (``data_sha256`` left out when unknown, as in folders from before it)."""
    out = {**standardisation.to_dict(), "data_source": data_source}
    if data_sha256 is not None:
        out["data_sha256"] = data_sha256
    return json_plain(out)  # as on disk


def save_model(model: Any, path: PathLike) -> None:
    """Saves a Keras model to ``path`` (``.keras``) atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp, overwrite=True)


def write_seed(folder: PathLike, seed: int, model: Any, float_model: Any, result: dict | None = None) -> None:
    """Writes ``seed<N>/model.keras``, ``seed<N>/float_model.keras`` and then ``seed<N>/result.json``.

    ``result.json`` (the seed's numbers) is written last, so its presence means
    that both models of the seed are complete: `read_seed` reuses only such seeds.
    """
    seed_dir = os.path.join(folder, f"seed{seed}")
    save_model(float_model, os.path.join(seed_dir, FLOAT_MODEL))
    save_model(model, os.path.join(seed_dir, MODEL))
    if result is not None:
        write_json_atomic(os.path.join(seed_dir, SEED_RESULT), result)


def read_seed(folder: PathLike, seed: int) -> tuple[dict, Any, Any] | None:
    """A finished seed of an interrupted run: ``(result, model, float_model)``, or None when unfinished.

    Raises:
        RunFolderError: ``seed<N>/result.json`` is unreadable or is not a dict with the seed's number.
    """
    seed_dir = os.path.join(folder, f"seed{seed}")
    fix = f"Fix: delete {seed_dir} to train seed {seed} again."
    result = _read_json(seed_dir, SEED_RESULT, fix=fix) if os.path.isdir(seed_dir) else None
    if result is None:
        return None
    if not isinstance(result, dict) or result.get("seed") != seed:
        raise RunFolderError(f"{os.path.join(seed_dir, SEED_RESULT)} must hold the result of seed {seed}, got "
                             f"{str(result)[:80]}. {fix}")
    return result, _load_model(os.path.join(seed_dir, MODEL)), _load_model(os.path.join(seed_dir, FLOAT_MODEL))


SHARED_FLOAT_CODE = "code"
"""Key of a shared float baseline's ``result.json`` recording the code that trained it (`provenance.current`)."""


def write_shared_float(folder: PathLike, model: Any, result: dict) -> None:
    """Writes a float baseline that several run folders share (``folder/float_model.keras``, then
    ``folder/result.json``); see `tf_nvm.experiments.train.run_recipe`'s ``shared_floats``."""
    save_model(model, os.path.join(folder, FLOAT_MODEL))
    write_json_atomic(os.path.join(folder, SEED_RESULT), {**result, SHARED_FLOAT_CODE: provenance.current()})


class StaleFloat(str):
    """`read_shared_float`'s answer for a baseline made by other code: why (a str), so the caller trains it again."""


def read_shared_float(folder: PathLike) -> tuple[dict, Any] | StaleFloat | None:
    """A shared float baseline written by `write_shared_float`: ``(result, model)``; None when unfinished.

    A baseline made by other code than the running one (`tf_nvm.core.provenance.stale_reason`; one written before
    baselines recorded their code counts as such) is not reused either: `StaleFloat` says why.

    Raises:
        RunFolderError: ``result.json`` is unreadable.
    """
    result = _read_json(folder, SEED_RESULT, fix=f"Fix: delete {folder} to train it again.") \
        if os.path.isdir(folder) else None
    if result is None:
        return None
    reason = provenance.stale_reason(result.pop(SHARED_FLOAT_CODE, None)) if isinstance(result, dict) else None
    if reason:
        return StaleFloat(reason)
    return result, _load_model(os.path.join(folder, FLOAT_MODEL))


def check_resumable(folder: PathLike, recipe: Any, standardisation: Standardization, data_source: str | None,
                    data_sha256: str | None = None) -> bool:
    """Whether ``folder`` holds an interrupted (or finished) run of exactly this recipe on this data.

    The data are the same when their standardisation and content hash (``data_sha256``) are, wherever they were
    read from; a folder written before the hash was recorded (or a call without it) compares ``data_source``.

    Returns:
        False when ``folder`` is missing or empty (nothing to resume); True when it holds a run of ``recipe``
        (same ``recipe.json``) prepared from the same data.

    Raises:
        RunFolderError: ``folder`` holds something else (another recipe, other data, not a run folder).
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder) or not os.listdir(folder):
        return False
    fix = f"Fix: pass --overwrite to start {folder} over, or another --out."
    saved_recipe = _read_json(folder, RECIPE, fix=fix)
    saved_pre = _read_json(folder, PREPROCESSING, fix=fix)
    if saved_recipe is None or saved_pre is None:
        raise RunFolderError(f"cannot resume in {folder!r}: it holds no {RECIPE} / {PREPROCESSING} of an earlier "
                             f"run. {fix}")
    mine = json_plain(recipe.to_dict())  # as on disk
    if saved_recipe != mine:
        diff = sorted(k for k in set(saved_recipe) | set(mine) if saved_recipe.get(k) != mine.get(k))
        raise RunFolderError(f"cannot resume in {folder!r}: it holds a run of another recipe (fields differing: "
                             f"{diff}). {fix}")
    wanted = _preprocessing(standardisation, data_source, data_sha256)
    by_content = "data_sha256" in saved_pre and data_sha256 is not None
    ignored = ("data_source",) if by_content else ("data_sha256",)
    if {k: v for k, v in saved_pre.items() if k not in ignored} != {k: v for k, v in wanted.items()
                                                                      if k not in ignored}:
        what = (f"content sha256 {str(saved_pre.get('data_sha256'))[:12]}..., now {str(data_sha256)[:12]}..."
                if by_content else f"{saved_pre.get('data_source')!r}, now {data_source!r}")
        raise RunFolderError(f"cannot resume in {folder!r}: its run was prepared from other data ({what}). {fix}")
    return True


def write_result(folder: PathLike, model: Any, float_model: Any, spec: NVMSpec, metrics: dict) -> None:
    """Writes the selected ``model.keras``, ``float_model.keras``, ``spec.json`` and ``metrics.json``."""
    save_model(model, os.path.join(folder, MODEL))
    save_model(float_model, os.path.join(folder, FLOAT_MODEL))
    write_json_atomic(os.path.join(folder, SPEC), spec.to_dict())
    write_json_atomic(os.path.join(folder, METRICS), metrics)


# ------------------------------------------------------------------- reading
def read_run(path: PathLike, load_model: bool = True) -> RunFolder:
    """Reads a run folder written by `tf-nvm train` (any version up to `SCHEMA_VERSION`) or a ``.keras`` file.

    Checks the manifest (format and version), that ``preprocessing.json`` holds
    finite ``input_mean``/``input_std`` of equal length, and (when the model is
    loaded) that ``spec.json`` matches the model.

    Args:
        path: run folder or ``.keras`` file.
        load_model: load ``model.keras`` (imports TensorFlow); False reads only the JSON files.

    Returns:
        `RunFolder`.

    Raises:
        RunFolderError: not a folder or ``.keras`` file, no ``model.keras``, a JSON file
            that is not a JSON object (NaN and Infinity included), invalid preprocessing,
            a spec that does not match the model, or a newer or foreign manifest.
    """
    path = os.fspath(path)
    if os.path.isfile(path) and path.endswith(".keras"):
        model = _load_model(path) if load_model else None
        return RunFolder(path=path, model_path=path, model=model, spec=_model_spec(model))
    schema_version, version = _read_manifest(_run_folder(path))
    model_path = _run_model_path(path)
    preprocessing, data_source = _read_preprocessing(path)
    saved_spec = _read_spec(path)
    model = _load_model(model_path) if load_model else None
    spec = saved_spec if model is None else _checked_spec(path, saved_spec, model, model_path)
    recipe = _read_json(path, RECIPE)
    float_model_path = os.path.join(path, FLOAT_MODEL)
    return RunFolder(path=path, model_path=model_path, model=model,
                     float_model_path=float_model_path if os.path.isfile(float_model_path) else None,
                     spec=spec, preprocessing=preprocessing, data_source=data_source,
                     dataset=None if recipe is None else recipe.get("dataset"), recipe=recipe,
                     metrics=_read_json(path, METRICS), schema_version=schema_version, tf_nvm_version=version)


def _run_folder(path):
    """``path``; `RunFolderError` when it is not a folder."""
    if not os.path.isdir(path):
        what = "is a file without the .keras suffix" if os.path.exists(path) else "does not exist"
        raise RunFolderError(f"{path!r} {what}; a run is a folder written by `tf-nvm train` or a .keras model "
                             "file. Fix: pass the folder written by `tf-nvm train` or the model's .keras file.")
    return path


def _run_model_path(path):
    """``path/model.keras``; `RunFolderError` when the run folder holds no ``model.keras``."""
    model_path = os.path.join(path, MODEL)
    if not os.path.isfile(model_path):
        raise RunFolderError(f"run folder {path!r} (holding {sorted(os.listdir(path))[:12]}) has no model.keras. "
                             "Fix: pass a folder written by `tf-nvm train` (model.keras, spec.json, "
                             "preprocessing.json) or a .keras file; a training that did not finish leaves no "
                             "model.keras.")
    return model_path


def _read_preprocessing(path):
    """(`Standardization`, data source) of ``preprocessing.json``; (None, None) without it."""
    prep = _read_json(path, PREPROCESSING)
    if prep is None:
        return None, None
    preprocessing = Standardization.from_dict(prep, where=os.path.join(path, PREPROCESSING), error=RunFolderError)
    return preprocessing, prep.get("data_source")


def _read_spec(path):
    """The `NVMSpec` of the run's ``spec.json`` (None: no such file)."""
    saved = _read_json(path, SPEC)
    if saved is None:
        return None
    try:
        return NVMSpec.from_dict(saved)
    except SpecError as err:
        raise RunFolderError(f"{os.path.join(path, SPEC)}: {err} {_RETRAIN}") from err


def _checked_spec(path, spec, model, model_path):
    """The loaded model's spec; `RunFolderError` when ``spec.json`` (``spec``; None: absent) differs from it."""
    actual = _model_spec(model)
    if spec is not None and spec != actual:
        raise RunFolderError(f"{os.path.join(path, SPEC)} does not match the spec of {model_path} "
                             f"({_spec_difference(spec, actual)}); spec.json must be the spec of model.keras. "
                             f"{_RETRAIN}")
    return actual


def _load_model(model_path):
    from tf_nvm.keras.nvm_model import load_model  # noqa: PLC0415  (imports TensorFlow; reading JSON does not)

    return load_model(model_path, compile=False)


def _model_spec(model):
    if model is None:
        return None
    from tf_nvm.keras.nvm_model import model_spec  # noqa: PLC0415  (imports TensorFlow; reading JSON does not)

    return model_spec(model)


def _spec_difference(saved, actual):
    saved, actual = saved.to_dict(), actual.to_dict()
    return "; ".join(f"{key}: {saved.get(key)!r} in spec.json, {actual.get(key)!r} in the model"
                     for key in sorted(set(saved) | set(actual)) if saved.get(key) != actual.get(key))


def _read_manifest(folder):
    """(schema_version, tf_nvm_version) of a run folder; (1, None) without ``run.json``."""
    manifest = _read_json(folder, MANIFEST)
    if manifest is None:
        return 1, None
    where = os.path.join(folder, MANIFEST)
    if manifest.get("format") != FORMAT:
        raise RunFolderError(f"{where}: format {manifest.get('format')!r} is not a tf_nvm run folder (allowed: "
                             f"{FORMAT!r}). Fix: pass a folder written by `tf-nvm train`.")
    version = manifest.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RunFolderError(f"{where}: schema_version must be an integer >= 1, got {version!r}. {_RETRAIN}")
    if version > SCHEMA_VERSION:
        raise RunFolderError(f"{where}: schema_version {version} (written by tf_nvm "
                             f"{manifest.get('tf_nvm_version')}) is newer than this tf_nvm {__version__} "
                             f"reads (1..{SCHEMA_VERSION}). Fix: upgrade tf-nvm (pip install -U tf-nvm), or re-run "
                             "`tf-nvm train` with this version.")
    return version, manifest.get("tf_nvm_version")


def _read_json(folder, name, fix=_RETRAIN):
    """The JSON object in ``folder/name``, or None when the file is absent."""
    where = os.path.join(folder, name)
    if not os.path.lexists(where):
        return None
    return read_json(where, max_bytes=MAX_RUN_JSON_BYTES, what="run file", error=RunFolderError, fix=fix,
                     object_only=True)


# -------------------------------------------------------------- step markers
def _marker(folder, step):
    if not isinstance(step, str) or not _STEP_NAME.fullmatch(step):
        raise RunFolderError(f"step name must be lower-case letters, digits, '-' or '_' (starting with a letter, at "
                             f"most 64), got {step!r}. Fix: name steps like 'train', 'export', 'simulate'.")
    if not os.path.isdir(folder):
        raise RunFolderError(f"run folder {os.fspath(folder)!r} does not exist. Fix: run `tf-nvm train` first, "
                             "or pass the folder it wrote.")
    return os.path.join(folder, STEPS, f"{step}.json")


def mark_done(folder: PathLike, step: str, info: dict | None = None) -> None:
    """Records that ``step`` finished in run folder ``folder`` (``steps/<step>.json``, written atomically).

    Args:
        folder: run folder.
        step: step name (``"train"``, ``"export"``, ...).
        info: JSON-ready dict saved with the marker (e.g. the files the step wrote).

    Raises:
        RunFolderError: invalid step name, missing folder, or ``info`` not a JSON-ready dict.
    """
    where = _marker(folder, step)
    info = {} if info is None else info
    problem = None if isinstance(info, dict) else f"a {type(info).__name__}"
    if problem is None:
        try:
            json.dumps(info, allow_nan=False)
        except (TypeError, ValueError) as err:
            problem = str(err)
    if problem is not None:
        raise RunFolderError(f"mark_done({step!r}): info must be a JSON-ready dict without NaN, got {problem}. "
                             "Fix: pass plain dicts, lists, str, int and finite floats.")
    write_json_atomic(where, {"step": step, "info": info, **provenance.current()})


def _step_marker(folder, step):
    """The whole marker dict of ``step`` (see `mark_done`), or None when it is not marked done.

    Raises:
        RunFolderError: invalid step name, missing folder, or an unreadable marker.
    """
    where = _marker(folder, step)
    marker = _read_json(os.path.dirname(where), os.path.basename(where), fix=f"Fix: delete {where} to redo the step.")
    if marker is None:
        return None
    if marker.get("step") != step or not isinstance(marker.get("info"), dict):
        raise RunFolderError(f"{where}: a step marker holds {{'step': {step!r}, 'info': {{...}}}}, got "
                             f"{str(marker)[:80]}. Fix: delete {where} to redo the step.")
    return marker


def step_info(folder: PathLike, step: str) -> dict | None:
    """The ``info`` dict ``step`` was marked done with, or None when it is not marked done.

    Raises:
        RunFolderError: invalid step name, missing folder, or an unreadable marker.
    """
    marker = _step_marker(folder, step)
    return None if marker is None else marker["info"]


def is_done(folder: PathLike, step: str) -> bool:
    """Whether ``step`` was marked done in run folder ``folder`` (see `mark_done`)."""
    return _step_marker(folder, step) is not None


def step_stale(folder: PathLike, step: str) -> str | None:
    """Why the finished ``step`` of ``folder`` is stale (made by other tf_nvm code), or None (same code, or not done).

    See `tf_nvm.core.provenance.stale_reason`; a marker written before markers recorded the commit is judged by its
    version.

    Raises:
        RunFolderError: as `step_info`.
    """
    marker = _step_marker(folder, step)
    return None if marker is None else provenance.stale_reason(marker)
