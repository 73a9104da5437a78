"""Recipes: JSON training configurations (data set, architecture, spec, schedule).

A recipe is found by name (``har-2bit-unipolar``) among the bundled recipes,
or by the path of a ``.json`` file. The bundled recipes are the ``recipes/``
folder of the repository; a built package carries them as package data in
``tf_nvm/_recipes/`` (setup.py maps ``recipes/`` there), so an installed
wheel finds them too (`tf_nvm.core.bundled`).

Importing this module does not import TensorFlow; a recipe's architecture and
its arguments are checked when the recipe is built (`Recipe.check_architecture`).
"""

import dataclasses
import inspect
import math
import os
import re
from typing import Any, Callable, Optional, Sequence, Union

from tf_nvm.core import bundled
from tf_nvm.experiments import models
from tf_nvm.core.bundled import recipes_dir  # noqa: F401  (tf_nvm.experiments.recipes.recipes_dir, as before)
from tf_nvm.datasets import DATASETS
from tf_nvm.datasets.har import HAR_TRAIN_SUBJECTS
from tf_nvm.core.errors import RecipeError, SearchError, SpecError, UnknownNameError
from tf_nvm.core.safe_io import read_json
from tf_nvm.core.spec import INITS, SIGN_SPLITS, NVMSpec, resolve_spec
from tf_nvm.core.validate import Field, Problem, check_keys, find_problem, problem_of

__all__ = ["Recipe", "NOISE_AWARE_DEFAULTS", "check_noise_aware", "load", "from_dict", "names", "recipes_dir",
           "read_json_config", "check_seeds", "MAX_CONFIG_BYTES", "TRAINING_TASKS", "NAME_PATTERN", "TUNER_LIMITS",
           "SEARCH_FIELDS", "SEARCH_FIX", "check_search_fields", "check_search_config", "check_search_keys"]

TRAINING_TASKS = ("classification", "regression", "reconstruction")
MAX_CONFIG_BYTES = 1024 * 1024
"""Largest recipe, experiment or search config file read, bytes (1 MiB; the bundled ones are under 4 KiB)."""
"""The tasks a recipe trains (the `tf_nvm.core.metrics.TASKS` names; the loss of each is in
`tf_nvm.experiments.train`)."""

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""What a recipe or experiment name may be: it names a folder (no path separator, no leading dot)."""

_FIX = "Fix: correct the recipe file, or start from a bundled one (`tf-nvm recipes`)."


_BELOW_10 = math.nextafter(10.0, 0.0)  # [0, 10): the largest float below 10
_SCHEDULE_FIELDS = (
    Field("epochs", "int", minimum=1),
    Field("batch_size", "int", minimum=1),
    Field("validation_subjects", "int", minimum=1),
    Field("learning_rate", "number", minimum=0, exclusive_minimum=True, maximum=10, allowed="a number in (0, 10]"),
    Field("augment_scale", "number", minimum=0, maximum=_BELOW_10, allowed="a number in [0, 10)"),
    Field("augment_noise", "number", minimum=0, maximum=_BELOW_10, allowed="a number in [0, 10)"),
    Field("augment_crop", "int", minimum=0, maximum=16, allowed="an integer in 0..16 (pixels)"),
    Field("augment_flip", "bool"),
)
"""The training schedule's numeric and boolean fields of a `Recipe`, in the order they are checked."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training configuration.

    Attributes:
        name: recipe name.
        dataset: a `tf_nvm.datasets.DATASETS` name: ``"har"``, ``"cifar10"`` or ``"npz"`` (a user's ``.npz``,
            ``--data PATH``).
        architecture: a name in `tf_nvm.models.ARCHITECTURES`.
        spec: preset name or full spec dict.
        architecture_args: keyword arguments of the architecture builder.
        init: `quantize_model` init (``"keep"`` or ``"device"``).
        sign_split: `quantize_model` sign_split (None, or ``"auto"``: under a unipolar spec every crossbar
            that reads only non-negative inputs is fed ``[x, -x]``).
        task: what the network learns (`tf_nvm.core.metrics.TASKS`), which sets the loss and the reported metric:
            None or ``"classification"`` (sparse categorical cross-entropy on integer labels, logits outputs;
            accuracy), ``"regression"`` (mean squared error on float targets of the output's shape; MSE and
            MAE) or ``"reconstruction"`` (an autoencoder: mean squared error against its own standardised
            inputs; MSE and MAE). Left out of the recipe dict when None.
        epochs: training epochs (the best validation epoch is kept: highest accuracy, or lowest MSE).
        batch_size: examples per step.
        learning_rate: peak Adam learning rate (cosine decay to 0).
        seeds: seeds run by default.
        validation_subjects: HAR: number of training subjects held out for validation.
        augment_scale: standard deviation of a random per-example, per-channel gain
            around 1 (training only; 0 disables).
        augment_noise: standard deviation of additive Gaussian noise on the
            standardised inputs (training only; 0 disables).
        augment_crop: images: random crops of the image padded by this many pixels
            on each side (training only; 0 disables; 4 is the usual CIFAR-10 setting).
        augment_flip: images: random horizontal flips (training only).
        noise_aware: None (plain training), or noise-aware training of the NVM model
            (`tf_nvm.noise.training.NoiseAwareTraining`): a JSON object with the keys of
            `NOISE_AWARE_DEFAULTS` (missing keys take those values). Left out of the recipe dict when None.
        description: one line.
    """

    name: str
    dataset: str
    architecture: str
    spec: Union[str, dict]
    architecture_args: dict = dataclasses.field(default_factory=dict)
    init: str = "device"
    sign_split: Optional[str] = None
    task: Optional[str] = None
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 2e-3
    seeds: tuple = (0, 1, 2)
    validation_subjects: int = 4
    augment_scale: float = 0.0
    augment_noise: float = 0.0
    augment_crop: int = 0
    augment_flip: bool = False
    noise_aware: Optional[dict] = None
    description: Optional[str] = None

    def __post_init__(self) -> None:
        for field, kind, what in (("name", str, "a string"), ("architecture", str, "a string"),
                                  ("architecture_args", dict, "a JSON object"), ("init", str, "a string")):
            value = getattr(self, field)
            if not isinstance(value, kind):
                raise RecipeError(f"recipe {self.name!r}: {field} must be {what}, got {value!r}. {_FIX}")
        if not NAME_PATTERN.fullmatch(self.name):
            raise RecipeError(f"recipe name {self.name!r} must be 1-64 letters, digits, '.', '_' or '-' starting "
                              "with a letter or digit (it names the run folder runs/<name>). Fix: rename the recipe "
                              "file or its \"name\" field.")
        check_seeds(self.seeds, f"recipe {self.name!r}: seeds", _FIX)
        if self.sign_split not in SIGN_SPLITS:
            raise RecipeError(f"recipe {self.name!r}: sign_split must be one of {list(SIGN_SPLITS)} (null or "
                              f"\"auto\"), got {self.sign_split!r}. {_FIX}")
        if self.task is not None and self.task not in TRAINING_TASKS:
            raise RecipeError(f"recipe {self.name!r}: task must be null or one of {list(TRAINING_TASKS)}, got "
                              f"{self.task!r}. {_FIX}")
        if self.init not in INITS:
            raise RecipeError(f"recipe {self.name!r}: init must be one of {list(INITS)}, got {self.init!r}. {_FIX}")
        if self.dataset not in DATASETS:
            raise RecipeError(f"recipe {self.name!r}: dataset must be one of {DATASETS.names()}, got "
                              f"{self.dataset!r}. {_FIX}")
        self._check_schedule()
        if (self.augment_crop or self.augment_flip) and self.dataset != "cifar10":
            raise RecipeError(f"recipe {self.name!r}: augment_crop and augment_flip apply to images (dataset "
                              f"'cifar10'), not to dataset {self.dataset!r}. Fix: remove them, or use "
                              "augment_scale / augment_noise for sensor windows.")
        if self.noise_aware is not None:
            object.__setattr__(self, "noise_aware", check_noise_aware(self.noise_aware, f"recipe {self.name!r}"))
        try:
            self.nvm_spec  # noqa: B018  (validates)
        except (SpecError, UnknownNameError) as err:
            raise RecipeError(f"recipe {self.name!r}: invalid spec: {err}") from err
        self.check_architecture()

    def _check_schedule(self):
        """The numeric and boolean training fields, each against its `_SCHEDULE_FIELDS` entry."""
        for field in _SCHEDULE_FIELDS:
            value = getattr(self, field.name)
            if problem_of(value, field, field.name) is not None:
                why = " (larger steps diverge to NaN weights)" if field.name == "learning_rate" else ""
                raise RecipeError(f"recipe {self.name!r}: {field.name} must be {field.describe()}, got {value!r}"
                                  f"{why}. {_FIX}")
        if self.dataset == "har" and self.validation_subjects >= len(HAR_TRAIN_SUBJECTS):
            raise RecipeError(f"recipe {self.name!r}: validation_subjects must be an integer in "
                              f"1..{len(HAR_TRAIN_SUBJECTS) - 1} for data set 'har' (its training split has "
                              f"{len(HAR_TRAIN_SUBJECTS)} volunteers, and at least one must stay for training), got "
                              f"{self.validation_subjects!r}. {_FIX}")

    def check_architecture(self) -> None:
        """Checks ``architecture`` and ``architecture_args`` against `tf_nvm.models.ARCHITECTURES` (no TensorFlow).

        Raises:
            RecipeError: unknown architecture (the message lists the known ones), or
                arguments its builder does not take.
        """
        if self.architecture not in models.ARCHITECTURES:
            raise RecipeError(f"recipe {self.name!r}: architecture must be one of {models.ARCHITECTURES.names()}, "
                              f"got {self.architecture!r}. {_FIX}")
        builder = models.ARCHITECTURES.get(self.architecture)
        if not isinstance(self.architecture_args, dict):
            raise RecipeError(f"recipe {self.name!r}: architecture_args must be an object, got "
                              f"{type(self.architecture_args).__name__}. {_FIX}")
        try:
            inspect.signature(builder).bind(**self.architecture_args)
        except TypeError as err:
            accepted = [p for p in inspect.signature(builder).parameters]
            raise RecipeError(f"recipe {self.name!r}: architecture_args {sorted(self.architecture_args)} do not fit "
                              f"{self.architecture} ({err}); it takes {accepted}. {_FIX}") from None

    @property
    def nvm_spec(self) -> NVMSpec:
        """The recipe's `NVMSpec`."""
        return resolve_spec(self.spec, owner=f"recipe {self.name!r}")

    @property
    def spec_name(self) -> str:
        """Preset name, or ``"custom"``."""
        return self.spec if isinstance(self.spec, str) else "custom"

    def replace(self, **changes: Any) -> "Recipe":
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["seeds"] = list(self.seeds)
        # left out when off: recipes (and run folders) from before match
        for field in ("sign_split", "task", "noise_aware"):
            if out[field] is None:
                del out[field]
        return out

    @property
    def training_task(self) -> str:
        """The task the recipe trains (``"classification"`` when ``task`` is None)."""
        return self.task or "classification"


_SEED = Field("seed", "int", minimum=0, maximum=2 ** 32 - 1)
"""One training seed (numpy's seed range)."""


def check_seeds(seeds: Sequence[int], where: str, fix: str) -> None:
    """Checks a list of training seeds: non-empty, integers in 0..2^32-1 (numpy's seed range).

    Args:
        seeds: the seeds received.
        where: what the message names (e.g. ``"--seeds"``).
        fix: the "Fix: ..." sentence.

    Raises:
        RecipeError: anything else.
    """
    if not isinstance(seeds, (list, tuple)) or not seeds or any(problem_of(s, _SEED, "seed") for s in seeds):
        raise RecipeError(f"{where} must be a non-empty list of integers in 0..2^32-1, got {seeds!r}. {fix}")


NOISE_AWARE_DEFAULTS = {
    "noise": "pcm-like",
    "t_inference": 86400.0,
    "kind": "device",
    "scale": 1.0,
    "relative_std": 0.05,
    "warmup_epochs": 0,
    "select_chips": 0,
}
"""A recipe's ``noise_aware`` settings and their defaults (`tf_nvm.noise.training.NoiseAwareTraining` arguments):
the target device (a ``tf_nvm.noise.PRESETS`` name) and its read time in seconds, the training noise (``"device"``
or ``"relative"``), the device noise's scale, the relative noise's standard deviation (of each kernel's largest
code), the clean warm-up epochs, and the number of simulated validation chips that select the epoch (0: noise-free
validation accuracy selects)."""

_NOISE_AWARE_FIELDS = (
    Field("noise", "str", min_length=1, allowed="a noise preset name (`tf-nvm simulate --help`)"),
    Field("t_inference", "number", minimum=0, allowed="a number of seconds >= 0"),
    Field("kind", "str", choices=("device", "relative"), allowed="\"device\" or \"relative\""),
    Field("scale", "number", minimum=0, maximum=100, allowed="a number in [0, 100]"),
    Field("relative_std", "number", minimum=0, maximum=10, allowed="a number in [0, 10]"),
    Field("warmup_epochs", "int", minimum=0),
    Field("select_chips", "int", minimum=0, maximum=100),
)
"""The `Field` of every key of `NOISE_AWARE_DEFAULTS`."""


def check_noise_aware(settings: Any, owner: str) -> dict[str, Any]:
    """A recipe's ``noise_aware`` object, checked and completed with `NOISE_AWARE_DEFAULTS` (a new dict).

    Raises:
        RecipeError: not an object, an unknown key, or a value outside its range.
    """
    if not isinstance(settings, dict):
        raise RecipeError(f"{owner}: noise_aware must be null or a JSON object, got {settings!r}. {_FIX}")
    unknown = sorted(set(settings) - set(NOISE_AWARE_DEFAULTS))
    if unknown:
        raise RecipeError(f"{owner}: noise_aware has unknown key(s) {unknown}; allowed: "
                          f"{list(NOISE_AWARE_DEFAULTS)}. {_FIX}")
    out = {**NOISE_AWARE_DEFAULTS, **settings}
    for field in _NOISE_AWARE_FIELDS:
        if problem_of(out[field.name], field, field.name) is not None:
            raise RecipeError(f"{owner}: noise_aware.{field.name} must be {field.describe()}, got "
                              f"{out[field.name]!r}. {_FIX}")
    return out


def names() -> list[str]:
    """Names of the bundled recipes (sorted; `tf_nvm.core.bundled`, no TensorFlow)."""
    return bundled.names("recipe")


def load(name_or_path: "str | os.PathLike") -> Recipe:
    """Loads a bundled recipe by name, or a recipe from a ``.json`` file path.

    Raises:
        RecipeError: not found, not JSON, unknown or invalid fields.
    """
    data, path = read_json_config(
        name_or_path, recipes_dir(), label="recipe file", error=RecipeError, fix=_FIX,
        not_found=lambda path: bundled.not_found_message("recipe", name_or_path, path))
    if not isinstance(data, dict):
        raise RecipeError(f"recipe file {path} must hold a JSON object, got {type(data).__name__}. {_FIX}")
    return from_dict(data, where=f"recipe file {path}")


def read_json_config(name_or_path: "str | os.PathLike", folder: Any, *, label: str, error: type[Exception], fix: str,
                     not_found: Callable[[str], str], max_bytes: int | None = None) -> tuple[Any, str]:
    """A bundled JSON config (``folder/NAME.json``) or a ``.json`` path, parsed; ``name`` defaults to the file stem.

    One loader for training recipes, experiment recipes (`tf_nvm.pipeline.experiment`) and search
    configs (`tf_nvm.nas.config`), read with `tf_nvm.core.safe_io.read_json`: NaN and Infinity (not JSON), numbers
    beyond int64 or +-1e300, nesting deeper than 64 levels and non-UTF-8 bytes are refused with ``error``.

    Args:
        name_or_path: a bundled name or a path ending in ``.json``.
        folder: `pathlib.Path` of the bundled files.
        label: how messages name the file (e.g. ``"recipe file"``).
        error: exception class to raise.
        fix: the "Fix: ..." sentence of the messages.
        not_found: ``path -> message`` when the file does not exist.
        max_bytes: largest file accepted, bytes (None: `MAX_CONFIG_BYTES`, 1 MiB).

    Returns:
        (parsed JSON, the path read).

    Raises:
        ``error``: not found, too large, or not valid JSON.
    """
    name_or_path = os.fspath(name_or_path)
    path = name_or_path if name_or_path.endswith(".json") else str(folder / (name_or_path + ".json"))
    if not os.path.isfile(path):
        raise error(not_found(path))
    data = read_json(path, max_bytes=MAX_CONFIG_BYTES if max_bytes is None else max_bytes, what=label, error=error,
                     fix=fix)
    if isinstance(data, dict):
        data.setdefault("name", os.path.basename(path)[:-5])
    return data, path


def from_dict(data: dict[str, Any], where: str = "recipe") -> Recipe:
    """A `Recipe` from its dict (`Recipe.to_dict`, or a recipe file's contents with ``name``).

    Raises:
        RecipeError: unknown or invalid fields.
    """
    fields = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise RecipeError(f"{where} has unknown field(s) {unknown}; allowed: {sorted(fields)}. {_FIX}")
    missing = sorted(f.name for f in dataclasses.fields(Recipe)
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                     and f.name not in data)
    if missing:
        raise RecipeError(f"{where} lacks required field(s) {missing}. {_FIX}")
    data = dict(data)
    if isinstance(data.get("seeds"), list):
        data["seeds"] = tuple(data["seeds"])
    return Recipe(**data)


# ------------------------------------------------------------------ search configs (checked without TensorFlow)
SEARCH_FIX = "Fix: correct the search config, or start from a bundled one (`tf-nvm recipes` lists them)."
"""The fix sentence of a defective search config (`tf_nvm.nas.config`)."""

TUNER_LIMITS = {
    "max_trials": (1, 100_000, "trials in all"),
    "seed": (0, 2 ** 31 - 1, "seed of the oracle"),
    "max_consecutive_failed_trials": (1, 100_000, "failed trials in a row that stop the search"),
    "max_retries_per_trial": (0, 100, "retries of a trial that raised"),
    "num_initial_points": (1, 100_000, "random trials before the Gaussian process"),
    "alpha": (1e-12, 1.0, "the Gaussian process's noise term"),
    "beta": (0.0, 1000.0, "the exploration weight"),
    "max_epochs": (1, 10_000, "epochs of the longest Hyperband trial"),
    "factor": (2, 100, "Hyperband's reduction factor"),
    "hyperband_iterations": (1, 1000, "Hyperband brackets"),
}
"""Range of every keras-tuner argument a search config's ``tuner`` may set: (low, high, what it is); an integer
``low`` means an integer argument. Checked when the config loads (``max_trials`` -5 failed inside keras-tuner
with ``KeyError: 'status'``)."""


def _tuner_field(key: str) -> Field:
    low, high, what = TUNER_LIMITS[key]
    integer = isinstance(low, int)
    return Field(key, "int" if integer else "number", required=False, minimum=low, maximum=high, doc=what,
                 allowed=f"{'an integer' if integer else 'a number'} in {low}..{high}")


_RETRAIN_FIELDS = (
    Field("max_tiles", "int", required=False, nullable=True, minimum=1, allowed="an integer >= 1 (only trials on at "
          "most that many tiles are retrained) or absent"),
    Field("finalists", "int", required=False, minimum=1, allowed="an integer >= 1 (trials retrained to choose the "
          "best)"),
    Field("epochs", "int", required=False, minimum=1, doc="epochs of each retraining"),
    Field("seeds", "list", required=False, min_length=1, items=_SEED, allowed="a non-empty list of integers in "
          "0..2^32-1", doc="seeds of the retrainings"),
)

SEARCH_FIELDS = (
    Field("name", "str"),
    Field("hypermodel", "str", doc="a name in tf_nvm.nas.HYPERMODELS"),
    Field("dataset", "str", required=False),
    Field("spec", "any", required=False, doc="a preset name or a spec object"),
    Field("space", "any", required=False, doc="{hyperparameter: [values]} (checked by the hypermodel)"),
    Field("init", "str", required=False),
    Field("validation_subjects", "int", required=False, minimum=1),
    Field("training", "any", required=False, doc="checked by tf_nvm.nas.tuners.Training"),
    Field("tuner", "object", required=False, extra=True, fields=tuple(_tuner_field(key) for key in TUNER_LIMITS)),
    Field("objective", "any", required=False),
    Field("budget", "any", required=False),
    Field("max_minutes", "number", required=False, nullable=True, minimum=0, exclusive_minimum=True,
          allowed="a number > 0 or null"),
    Field("retrain", "any", required=False, doc="{epochs, seeds, finalists, max_tiles}"),
    Field("description", "str", required=False, nullable=True, allowed="a string or null"),
)
"""The search config's fields as far as they can be checked without TensorFlow (the hypermodel, its space, the
tuner kind and its arguments' names, the objective and the budget need `tf_nvm.nas`); `tf_nvm.nas.config`
checks the same fields with these definitions."""
_SEARCH_FIELD = {field.name: field for field in SEARCH_FIELDS}


def _search_message(name: Any, problem: Problem) -> str:
    what = f" ({problem.field.doc})" if problem.path.startswith("tuner.") else ""
    return (f"search {name!r}: {problem.path}{what} must be {problem.field.describe()}, got "
            f"{repr(problem.value)[:80]}. {SEARCH_FIX}")


def check_search_fields(data: dict, names: Any = None) -> None:
    """Checks the fields of a search config dict (`SEARCH_FIELDS`; ``names``: the fields to check, default all).

    Raises:
        SearchError: a field that is not allowed (the message names the config and the field).
    """
    for key in names or _SEARCH_FIELD:
        field = _SEARCH_FIELD[key]
        if key in data:
            found = find_problem(data[key], field, key)
            if found is not None:
                raise SearchError(_search_message(data.get("name"), found))
    retrain = data.get("retrain")
    if isinstance(retrain, dict) and (names is None or "retrain" in names):
        for field in _RETRAIN_FIELDS:
            if field.name in retrain:
                value = retrain[field.name]
                value = list(value) if isinstance(value, tuple) else value  # the Python API may pass tuples
                found = find_problem(value, field, f"retrain.{field.name}")
                if found is not None:
                    raise SearchError(_search_message(data.get("name"), found))


def check_search_config(name_or_path: Any) -> dict:
    """Reads a search config by name or path and checks every field that needs no TensorFlow (`tf-nvm search`
    calls it before anything heavy loads; `tf_nvm.nas.config.load` checks the rest).

    Returns:
        the parsed config (a dict with ``name``).

    Raises:
        SearchError: not found, not JSON, unknown, missing or invalid fields.
    """
    data, path = read_json_config(
        name_or_path, bundled.searches_dir(), label="search config", error=SearchError, fix=SEARCH_FIX,
        not_found=lambda path: bundled.not_found_message("search", name_or_path, path))
    where = f"search config {path}"
    if not isinstance(data, dict):
        raise SearchError(f"{where} must be a JSON object, got {type(data).__name__}. {SEARCH_FIX}")
    check_search_keys(data, where)
    check_search_fields(data)
    return data


def check_search_keys(data: dict, where: str) -> None:
    """Unknown and missing top-level fields of a search config.

    Raises:
        SearchError: an unknown field, or no ``name`` / ``hypermodel``.
    """
    check_keys(data, _SEARCH_FIELD, where=where, error=SearchError, fix="", message=lambda problem: (
        f"{where} has unknown field(s) {problem.value}; allowed: {sorted(_SEARCH_FIELD)}. {SEARCH_FIX}"))
    if "hypermodel" not in data or "name" not in data:
        raise SearchError(f"{where} lacks required field(s) {sorted({'name', 'hypermodel'} - set(data))}. "
                          f"{SEARCH_FIX}")
