"""Experiment recipes: what `tf-nvm run` trains, exports, simulates, costs and reports.

An experiment recipe is a JSON file (bundled ones in ``recipes/experiments/``,
listed by `names`) with these fields:

* ``description`` (str), ``dataset`` (a `tf_nvm.datasets.DATASETS` name: ``"har"``, ``"cifar10"``, or
  ``"npz"`` for a user's ``.npz`` passed with ``tf-nvm run ... --data PATH``; every variant's training recipe
  uses it);
* ``variants``: training recipes (`tf_nvm.experiments.recipes`) run one after the other; each
  trains its float baseline and its NVM model over the seeds. Each entry is a bundled
  recipe's name (``"har-2bit-unipolar"``), the path of a recipe ``.json`` (relative to
  the experiment file's folder; its ``name`` defaults to the file stem), or the
  recipe itself inline as a JSON object (with a ``name``). A recipe given by path or
  inline may leave out ``dataset`` (it takes the experiment's); its ``seeds`` and, when
  the experiment sets them, ``epochs`` are the experiment's. Every variant trains the
  same task (the recipes' ``task``: classification, regression or reconstruction);
* ``seeds``: training seeds (non-empty list of ints >= 0);
* ``epochs``: None (each training recipe's own) or an int >= 1;
* ``simulation``: ``preset`` (a device preset of `tf_nvm.noise.PRESETS`),
  ``t_inference`` (s, >= 0), ``chips`` (>= 1), ``read_noise`` (a
  `tf_nvm.simulator.READ_NOISE_MODES` mode), ``examples`` (None: the whole test set),
  ``sweep_t_inference`` (seconds of the accuracy-vs-time plot);
* ``cost``: ``technology`` (a `tf_nvm.cost.TECHNOLOGIES` name), ``array_sizing``
  (``"fixed"`` or ``"fit"``);
* ``task``: None (the variants' training task: their recipes' ``task``, classification
  when they name none) or that same task (``"classification"``, ``"regression"`` or
  ``"reconstruction"``, `tf_nvm.core.metrics.TASKS`): recorded in the mapping's metadata and
  used to score chips; for regression and reconstruction the report shows MSE and MAE
  (against the targets and against the ideal chip) where a classifier shows accuracy;
* ``metric``: None (the task's first: accuracy, or MSE) or a `tf_nvm.core.metrics.METRICS`
  name suiting the task: the primary metric of the simulate step;
* ``export_examples``: test examples the export step runs through LiteRT and TFLite
  Micro to compare them with the Keras model (None: the whole test set);
* ``quick``: overrides used by ``--quick`` (any of ``seeds``, ``epochs``,
  ``chips``, ``examples`` (simulated), ``export_examples``);
* ``paper``: the paper's published numbers shown beside the measured ones
  (``{label: value}``, accuracies in 0..1); an NVM variant is matched by the label
  ``"<b>-bit <unipolar|bipolar> accuracy"``, the float baselines by ``"float accuracy"`` (regression and
  reconstruction: ``"<b>-bit <unipolar|bipolar> mse"`` and ``"float mse"``);
* ``targets`` (classification only): the accuracies this experiment should reach (``{label: value}``;
  test accuracy, mean over seeds): ``"float"`` or ``"<b>-bit <unipolar|bipolar>"``
  with an accuracy in 0..1, or ``"<b>-bit <unipolar|bipolar> vs float"`` with the
  least difference to the variant's own float baseline in -1..0 (``-0.02``: at most
  2 points below it); the report says met or missed by how much and why;
* ``notes``: ``{label: text}`` explanations printed under the measured-vs-paper
  table (labels as in ``targets``).

``description``, ``paper``, ``targets`` and ``notes`` only shape the report: they
may change between invocations on one output folder (the report is rebuilt, no
step is redone); every other field is fixed for an output folder.

Unknown keys, wrong types and out-of-range values raise `PipelineError`
naming the field, the value and what is allowed.
"""

import dataclasses
import functools
import os
import re
from typing import Any, Optional

from tf_nvm.core import bundled, noise_presets
from tf_nvm.core.errors import PipelineError, RecipeError
from tf_nvm.core.metrics import METRICS, TASKS
from tf_nvm.core.noise_presets import READ_NOISE_MODES
from tf_nvm.core.safe_io import json_plain
from tf_nvm.core.validate import Field, is_kind, problem_of
from tf_nvm.datasets import DATASETS
from tf_nvm.experiments import recipes

__all__ = ["Experiment", "Simulation", "Cost", "load", "names", "experiments_dir", "from_dict", "REPORT_FIELDS",
           "variant_kind"]

REPORT_FIELDS = ("description", "paper", "targets", "notes")
"""Fields that only shape the report (they may change on an existing output folder)."""

_LABEL = re.compile(r"float|[1-8]-bit (unipolar|bipolar)( vs float)?")


def variant_kind(spec: dict[str, Any]) -> str:
    """The label of an NVM spec dict (``metrics.json``'s ``spec``) in ``targets`` / ``notes``: ``"2-bit unipolar"``."""
    return f"{spec['weight_bits']}-bit {'unipolar' if spec['unipolar'] else 'bipolar'}"

_FIX = "Fix: correct the experiment recipe, or start from a bundled one (`tf-nvm recipes` lists them)."


def _fail(where, field, value, allowed):
    raise PipelineError(f"{where}: {field} must be {allowed}, got {value!r}. {_FIX}")


def _int(where, field, value, low, allow_none=False):
    allowed = f"an integer >= {low}" + (" or null" if allow_none else "")
    if problem_of(value, Field(field, "int", nullable=allow_none, minimum=low), field) is not None:
        _fail(where, field, value, allowed)
    return value


def _number(where, field, value, low):
    if problem_of(value, Field(field, "number", minimum=low), field) is not None:
        _fail(where, field, value, f"a finite number >= {low}")
    return float(value)


def _known(where, data, cls):
    if not isinstance(data, dict):
        _fail(where, cls.__name__.lower(), data, "a JSON object")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise PipelineError(f"{where} has unknown field(s) {unknown}; allowed: {sorted(fields)}. {_FIX}")


@dataclasses.dataclass(frozen=True)
class Simulation:
    """Device conditions of the simulation step.

    Attributes:
        preset: realistic device preset (`tf_nvm.noise.PRESETS`), simulated beside ``ideal``.
        t_inference: seconds after programming (drift).
        chips: programmed chips per variant under the preset.
        read_noise: `tf_nvm.simulator.READ_NOISE_MODES` mode.
        examples: test examples simulated (None: all).
        sweep_t_inference: inference times (s) of the accuracy-vs-drift-time plot, ``chips`` chips each.
    """

    preset: str = "pcm-like"
    t_inference: float = 3600.0
    chips: int = 25
    read_noise: str = "per-chip"
    examples: Optional[int] = None
    sweep_t_inference: tuple = (1.0, 3600.0, 86400.0, 2592000.0)

    def check(self, where: str) -> None:
        """Raises `PipelineError` naming the first field that is not allowed."""
        if self.preset not in noise_presets.names():
            _fail(where, "simulation.preset", self.preset, f"one of {noise_presets.names()}")
        _number(where, "simulation.t_inference", self.t_inference, 0)
        _int(where, "simulation.chips", self.chips, 1)
        if self.read_noise not in READ_NOISE_MODES:
            _fail(where, "simulation.read_noise", self.read_noise, f"one of {list(READ_NOISE_MODES)}")
        _int(where, "simulation.examples", self.examples, 1, allow_none=True)
        if not isinstance(self.sweep_t_inference, (list, tuple)):
            _fail(where, "simulation.sweep_t_inference", self.sweep_t_inference, "a list of seconds >= 0")
        for value in self.sweep_t_inference:
            _number(where, "simulation.sweep_t_inference[]", value, 0)


@dataclasses.dataclass(frozen=True)
class Cost:
    """Settings of the cost step.

    Attributes:
        technology: a `tf_nvm.cost.TECHNOLOGIES` name.
        array_sizing: ``"fixed"`` (full macros) or ``"fit"`` (arrays sized per tile).
    """

    technology: str = "isaac-32nm"
    array_sizing: str = "fit"

    def resolve(self) -> Any:
        """The `tf_nvm.cost.Technology` these settings describe."""
        from tf_nvm.cost import get_technology  # noqa: PLC0415  (tf_nvm.cost imports pandas)

        return dataclasses.replace(get_technology(self.technology), array_sizing=self.array_sizing)

    def check(self, where: str) -> None:
        """Raises `PipelineError` naming the first field that is not allowed."""
        from tf_nvm.cost import TECHNOLOGIES  # noqa: PLC0415  (tf_nvm.cost imports pandas)

        if self.technology not in TECHNOLOGIES.names():
            _fail(where, "cost.technology", self.technology, f"one of {TECHNOLOGIES.names()}")
        if self.array_sizing not in ("fixed", "fit"):
            _fail(where, "cost.array_sizing", self.array_sizing, "'fixed' or 'fit'")


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One end-to-end experiment (see the module docstring for the fields)."""

    name: str
    description: str
    dataset: str
    variants: tuple
    seeds: tuple = (0, 1, 2)
    epochs: Optional[int] = None
    simulation: Simulation = Simulation()
    cost: Cost = Cost()
    export_examples: Optional[int] = None
    task: Optional[str] = None
    metric: Optional[str] = None
    quick: dict = dataclasses.field(default_factory=dict)
    paper: dict = dataclasses.field(default_factory=dict)
    targets: dict = dataclasses.field(default_factory=dict)
    notes: dict = dataclasses.field(default_factory=dict)

    def quick_version(self) -> "Experiment":
        """The experiment with its ``quick`` overrides applied (``tf-nvm run --quick``)."""
        q = self.quick
        simulation = dataclasses.replace(self.simulation, chips=q.get("chips", self.simulation.chips),
                                         examples=q.get("examples", self.simulation.examples))
        return dataclasses.replace(self, seeds=tuple(q.get("seeds", self.seeds)), epochs=q.get("epochs", self.epochs),
                                   simulation=simulation,
                                   export_examples=q.get("export_examples", self.export_examples))

    @functools.cached_property
    def variant_recipes(self) -> dict[str, recipes.Recipe]:
        """{variant name: `tf_nvm.experiments.recipes.Recipe` as written} in the order of ``variants``."""
        return dict(_variant_recipe(entry, self.dataset, "experiment recipe") for entry in self.variants)

    @property
    def variant_names(self) -> tuple[str, ...]:
        """The variants' names (their training recipes' names; each names its folder ``variants/<name>``)."""
        return tuple(self.variant_recipes)

    @property
    def training_task(self) -> str:
        """The task every variant trains (`tf_nvm.experiments.recipes.Recipe.training_task`)."""
        return next(iter(self.variant_recipes.values())).training_task

    @property
    def resolved_task(self) -> str:
        """The task chips are scored on: ``task``, else the variants' training task."""
        return self.task or self.training_task

    @property
    def metric_name(self) -> str:
        """The primary metric's name: ``metric``, else the task's first (accuracy, or mse)."""
        return self.metric or TASKS.get(self.resolved_task).metrics[0]

    def training_recipe(self, name: str) -> recipes.Recipe:
        """The `tf_nvm.experiments.recipes.Recipe` of variant ``name`` with this experiment's seeds and epochs."""
        recipe = self.variant_recipes[name]
        changes: dict[str, Any] = {"seeds": tuple(self.seeds)}
        if self.epochs is not None:
            changes["epochs"] = self.epochs
        return dataclasses.replace(recipe, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what ``experiment.json`` in the output folder holds)."""
        out = dataclasses.asdict(self)
        out["variants"], out["seeds"] = [_copy(v) for v in self.variants], list(self.seeds)
        return out


def _copy(value):
    return json_plain(value)


def _variant_recipe(entry, dataset, where):
    """(name, `Recipe`) of one ``variants`` entry: a bundled name, a ``.json`` path (absolute, or relative to the
    working directory: `from_dict` makes the paths of an experiment file absolute), or an inline recipe.

    Raises:
        PipelineError: not found, invalid, or of another data set.
    """
    try:
        if isinstance(entry, dict):
            if not isinstance(entry.get("name"), str):
                raise PipelineError(f"{where}: an inline variant (a training recipe written in the experiment) needs "
                                    f"a \"name\" (it names the folder variants/<name>), got {entry.get('name')!r}. "
                                    f"{_FIX}")
            recipe = recipes.from_dict({"dataset": dataset, **entry}, where=f"{where} variant {entry['name']!r}")
        elif entry.endswith(".json"):
            data, path = recipes.read_json_config(
                entry, recipes.recipes_dir(), label="recipe file", error=PipelineError, fix=_FIX,
                not_found=lambda p: f"{where}: variant {entry!r}: recipe file {p} not found. Fix: pass the path of a "
                                    "training recipe .json (relative to the experiment file), a bundled recipe name, "
                                    "or the recipe inline.")
            if not isinstance(data, dict):
                raise PipelineError(f"{where}: variant {entry!r}: {path} must hold a JSON object. {_FIX}")
            recipe = recipes.from_dict({"dataset": dataset, **data}, where=f"recipe file {path}")
        else:
            recipe = recipes.load(entry)
    except RecipeError as err:
        raise PipelineError(f"{where}: variant {entry if isinstance(entry, str) else entry.get('name')!r}: {err}") \
            from None
    return recipe.name, recipe


def experiments_dir() -> Any:
    """Folder of the bundled experiment recipes (``experiments/`` beside the training recipes;
    `tf_nvm.core.bundled`)."""
    return bundled.experiments_dir()


def names() -> list[str]:
    """Names of the bundled experiment recipes (sorted; `tf_nvm.core.bundled`, no TensorFlow)."""
    return bundled.names("experiment")


def load(name_or_path: "str | os.PathLike") -> "Experiment":
    """An `Experiment` from a bundled name or a ``.json`` path.

    Raises:
        PipelineError: not found, larger than 1 MiB, not JSON, unknown or invalid fields.
    """
    data, path = recipes.read_json_config(
        name_or_path, experiments_dir(), label="experiment recipe", error=PipelineError, fix=_FIX, max_bytes=1 << 20,
        not_found=lambda path: bundled.not_found_message("experiment", name_or_path, path))
    return from_dict(data, where=f"experiment recipe {path}", base=os.path.dirname(os.path.abspath(path)))


def from_dict(data: dict, where: str = "experiment recipe", base: str | None = None) -> "Experiment":
    """An `Experiment` from its dict, every field checked.

    Args:
        data: the experiment's JSON object.
        where: named in messages.
        base: the folder relative ``variants`` paths are read from (the experiment file's); they are stored
            as absolute paths. None: as given (relative to the working directory).

    Raises:
        PipelineError: unknown or invalid fields.
    """
    _known(where, data, Experiment)
    missing = sorted(f.name for f in dataclasses.fields(Experiment) if f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING and f.name not in data)
    if missing:
        raise PipelineError(f"{where} lacks required field(s) {missing}. {_FIX}")
    data = dict(data)
    _check_names(data, where)
    variants, tasks = _check_variants(data, where, base)
    seeds = data.get("seeds", [0, 1, 2])
    _check_seeds(where, "seeds", seeds)
    _int(where, "epochs", data.get("epochs"), 1, allow_none=True)
    for field, cls in (("simulation", Simulation), ("cost", Cost)):
        section = data.get(field, {})
        _known(f"{where} {field}", section, cls)
        data[field] = cls(**section)
        data[field].check(where)
    task = _check_task(data, where, tasks)
    _int(where, "export_examples", data.get("export_examples"), 1, allow_none=True)
    _check_quick(data.get("quick", {}), where)
    _check_report(data, where, task)
    data["variants"], data["seeds"] = tuple(variants), tuple(seeds)
    return Experiment(**data)


def _check_names(data, where):
    """``name`` (it names the output folder), ``description`` and ``dataset``."""
    for field in ("name", "description", "dataset"):
        if not isinstance(data[field], str) or not data[field]:
            _fail(where, field, data[field], "a non-empty string")
    if not recipes.NAME_PATTERN.fullmatch(data["name"]):  # it names the output folder runs/<name>: no path in it
        _fail(where, "name", data["name"], "1-64 letters, digits, '.', '_' or '-' starting with a letter or digit "
                                           "(it names the output folder runs/<name>)")
    if data["dataset"] not in DATASETS:
        _fail(where, "dataset", data["dataset"], f"one of {DATASETS.names()}")


def _check_variants(data, where, base):
    """(the variants with absolute ``.json`` paths, the sorted training tasks of their recipes)."""
    variants = data["variants"]
    if not isinstance(variants, list) or not variants or not all(isinstance(v, (str, dict)) for v in variants):
        _fail(where, "variants", variants, "a non-empty list of training recipes (bundled names, .json paths or "
                                           "inline recipe objects)")
    variants = [os.path.join(base, v) if isinstance(v, str) and v.endswith(".json") and base is not None
                and not os.path.isabs(v) else v for v in variants]
    unknown = [v for v in variants if isinstance(v, str) and not v.endswith(".json") and v not in recipes.names()]
    if unknown:
        _fail(where, "variants", unknown, f"training recipes among {recipes.names()} (or .json paths, or inline "
                                          "recipe objects)")
    found = [_variant_recipe(v, data["dataset"], where) for v in variants]
    other = [name for name, recipe in found if recipe.dataset != data["dataset"]]
    if other:
        _fail(where, "variants", other, f"training recipes of dataset {data['dataset']!r} (one data set per "
                                        "experiment)")
    names = [name for name, _ in found]
    if len(set(names)) != len(names):
        _fail(where, "variants", names, "distinct names")
    tasks = sorted({recipe.training_task for _, recipe in found})
    if len(tasks) > 1:
        _fail(where, "variants", {name: recipe.training_task for name, recipe in found},
              "training recipes of one task (one task per experiment)")
    return variants, tasks


def _check_seeds(where, field, seeds):
    if not isinstance(seeds, list) or not seeds:
        _fail(where, field, seeds, "a non-empty list of integers >= 0")
    for seed in seeds:
        _int(where, f"{field}[]", seed, 0)


def _check_task(data, where, tasks):
    """``task`` and ``metric`` against the variants' task; returns the `tf_nvm.core.metrics` task scored."""
    for field, registry in (("task", TASKS), ("metric", METRICS)):
        if data.get(field) is not None and (not isinstance(data[field], str) or data[field] not in registry):
            _fail(where, field, data[field], f"null or one of {registry.names()}")
    if data.get("task") is not None and data["task"] != tasks[0]:
        _fail(where, "task", data["task"], f"null or {tasks[0]!r}, the task its variants train (their recipes' "
                                           "task)")
    task = TASKS.get(data.get("task") or tasks[0])
    if data.get("metric") is not None and (data["metric"] in ("accuracy", "mse", "mae")
                                           and task.integer_targets != (data["metric"] == "accuracy")):
        _fail(where, "metric", data["metric"], f"null or one of {list(task.metrics)} (task {task.name!r})")
    return task


def _check_quick(quick, where):
    if not isinstance(quick, dict) or set(quick) - {"seeds", "epochs", "chips", "examples", "export_examples"}:
        _fail(where, "quick", quick, "an object with any of 'seeds', 'epochs', 'chips', 'examples', "
                                     "'export_examples'")
    _check_seeds(where, "quick.seeds", quick.get("seeds", [0]))
    for field in ("epochs", "chips", "examples", "export_examples"):
        if field in quick:
            _int(where, f"quick.{field}", quick[field], 1)


def _check_report(data, where, task):
    """``paper``, ``targets`` and ``notes`` (they only shape the report)."""
    paper = data.get("paper", {})
    if not isinstance(paper, dict) or not all(is_kind(v, "int") or isinstance(v, float) for v in paper.values()):
        _fail(where, "paper", paper, "an object of {label: number}")
    targets = data.get("targets", {})
    if targets and not task.integer_targets:
        _fail(where, "targets", targets, f"empty for task {task.name!r} (targets are accuracies of classifiers)")
    if not isinstance(targets, dict):
        _fail(where, "targets", targets, "an object of {label: accuracy in 0..1}")
    for label, value in targets.items():
        if not _LABEL.fullmatch(label):
            _fail(where, "targets", label, "labelled 'float', '<b>-bit unipolar|bipolar' or '<b>-bit "
                                           "unipolar|bipolar vs float'")
        relative = label.endswith(" vs float")
        target = Field(label, "number", minimum=-1 if relative else 0, maximum=0 if relative else 1)
        if problem_of(value, target, label) is not None:
            _fail(where, f"targets[{label!r}]", value, "a difference to the float baseline in -1..0" if relative
                  else "an accuracy in 0..1")
    notes = data.get("notes", {})
    if not isinstance(notes, dict) or not all(_LABEL.fullmatch(k) and isinstance(v, str) for k, v in notes.items()):
        _fail(where, "notes", notes, "an object of {'float' or '<b>-bit unipolar|bipolar': text}")
