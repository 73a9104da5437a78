"""Search configurations: JSON files naming the data, the hypermodel and its space, the tuner, the objective,
the hardware budget, the time budget and how the best candidate is retrained.

A config is found by name among the bundled ones (the repository's ``searches/``
folder, shipped in a wheel as ``tf_nvm/_searches/``) or by the path of a
``.json`` file. Example (``searches/har-2bit-unipolar-search.json``)::

    {"hypermodel": "har_cnn", "dataset": "har", "spec": "paper-2bit-unipolar",
     "space": {"depth": [1, 2, 3], "filters": [16, 32, 48, 64]},
     "training": {"epochs": 12, "batch_size": 64, "learning_rate": 0.002},
     "tuner": {"kind": "bayesian", "max_trials": 40, "seed": 0},
     "objective": {"metric": "score", "penalties": {"tiles": {"weight": 0.02, "reference": 8}}},
     "budget": {"max_tiles": 8}, "max_minutes": 40, "retrain": {"epochs": 30, "seeds": [0, 1, 2]}}
"""

import dataclasses
import inspect
import os
from typing import Any, Optional, Union

from tf_nvm.core import bundled
from tf_nvm.core.bundled import searches_dir
from tf_nvm.core.errors import RecipeError, SearchError, SpecError, UnknownNameError
from tf_nvm.nas.hardware import Budget
from tf_nvm.nas.hypermodels import HYPERMODELS
from tf_nvm.nas.objectives import SearchObjective
from tf_nvm.nas.tuners import TUNERS, Training
from tf_nvm.experiments.recipes import (SEARCH_FIX, TUNER_LIMITS, Recipe, check_search_fields, check_search_keys,
                                        read_json_config)
from tf_nvm.core.safe_io import json_plain

__all__ = ["SearchConfig", "load", "from_dict", "names", "searches_dir", "RESUMABLE_CHANGES", "TUNER_LIMITS"]

_FIX = SEARCH_FIX
RESUMABLE_CHANGES = ("max_minutes", "tuner.max_trials", "tuner.max_consecutive_failed_trials", "retrain",
                     "description")
"""Config fields a ``--resume`` may change (to extend a search, retrain its best differently or reword it); any
other change needs ``--overwrite``."""


def _tuner_arguments(kind):
    """Keyword arguments the keras-tuner class of ``kind`` takes (besides hypermodel, objective, seed)."""
    base = TUNERS.get(kind).__mro__[2]  # (NVM class, mixin, keras-tuner class, ...)
    names = set(inspect.signature(base.__init__).parameters) - {"self", "hypermodel", "objective", "kwargs",
                                                               "hyperparameters", "tune_new_entries",
                                                               "allow_new_entries"}
    return sorted(names)


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """One architecture search.

    Attributes:
        name: config name (names the default output folder ``runs/search-<name>``).
        hypermodel: a name in `tf_nvm.nas.HYPERMODELS`.
        dataset: data set (``"har"``, ``"cifar10"``); split as ``tf-nvm train`` does.
        spec: NVM spec (preset name or dict) every candidate is quantized with.
        space: {hyperparameter: list of values} replacing the hypermodel's default lists.
        init: `quantize_model` init.
        validation_subjects: HAR: training subjects held out for validation.
        training: `Training` of each trial.
        tuner: {"kind": "random" | "bayesian" | "hyperband", "seed": int, and the tuner's own
            arguments, e.g. "max_trials", "num_initial_points", "max_epochs", "factor",
            "max_consecutive_failed_trials"}.
        objective: `SearchObjective`.
        budget: `Budget` (hardware limits; a candidate over them is a failed trial).
        max_minutes: wall-clock budget of the trials of one run of the search (min; None:
            only the tuner's limits); no new trial starts after it.
        retrain: {"epochs": int, "seeds": [int, ...], "finalists": int, "max_tiles": int}: how
            ``--export-best`` retrains the best candidate (float baseline and NVM model per seed,
            validation-selected epochs). With ``finalists`` = N > 1 (default 1) the N best trials are
            each retrained and the one with the best mean *validation* accuracy over the seeds is the
            best (the test set never selects): one short trial's validation accuracy, the maximum over
            many trials, is optimistic (the winner's curse), a mean over full retrainings much less so.
            With ``max_tiles`` (default: none) only trials on at most that many tiles are candidates
            for the best: the search explores a larger budget (its Pareto front shows what more tiles
            buy) and the best point of the front within ``max_tiles`` is retrained.
        description: one line.
    """

    name: str
    hypermodel: str
    dataset: str = "har"
    spec: Union[str, dict] = "paper-2bit-unipolar"
    space: dict = dataclasses.field(default_factory=dict)
    init: str = "device"
    validation_subjects: int = 4
    training: Training = dataclasses.field(default_factory=Training)
    tuner: dict = dataclasses.field(default_factory=lambda: {"kind": "random", "max_trials": 10})
    objective: SearchObjective = dataclasses.field(default_factory=SearchObjective)
    budget: Budget = dataclasses.field(default_factory=Budget)
    max_minutes: Optional[float] = None
    retrain: dict = dataclasses.field(default_factory=lambda: {"epochs": 30, "seeds": [0, 1, 2]})
    description: Optional[str] = None

    def __post_init__(self) -> None:
        if self.hypermodel not in HYPERMODELS:
            raise SearchError(f"search {self.name!r}: hypermodel must be one of {HYPERMODELS.names()}, got "
                              f"{self.hypermodel!r}. {_FIX}")
        HYPERMODELS.get(self.hypermodel)(space=self.space)  # validates the space names and values
        if not isinstance(self.tuner, dict) or self.tuner.get("kind") not in TUNERS:
            kind = self.tuner.get("kind") if isinstance(self.tuner, dict) else self.tuner
            raise SearchError(f"search {self.name!r}: tuner.kind must be one of {TUNERS.names()}, got {kind!r}. "
                              f"{_FIX}")
        allowed = _tuner_arguments(self.tuner["kind"])
        unknown = sorted(set(self.tuner) - {"kind"} - set(allowed))
        if unknown:
            raise SearchError(f"search {self.name!r}: tuner {self.tuner['kind']!r} takes no argument(s) {unknown}; "
                              f"allowed: {allowed}. {_FIX}")
        check_search_fields({"name": self.name, "tuner": self.tuner, "description": self.description,
                             "max_minutes": self.max_minutes, "validation_subjects": self.validation_subjects},
                            names=("tuner", "description", "max_minutes", "validation_subjects"))
        if self.training.folds > 1 and self.tuner.get("kind") == "hyperband":
            raise SearchError(f"search {self.name!r}: training.folds > 1 (cross-validated trials) does not combine "
                              f"with the hyperband tuner, whose trials continue earlier ones; got folds "
                              f"{self.training.folds}. Fix: use the bayesian or random tuner, or folds 1.")
        if self.training.folds > 1 and self.dataset != "har":
            raise SearchError(f"search {self.name!r}: training.folds > 1 folds the training subjects, which only "
                              f"har records; got dataset {self.dataset!r}. Fix: use folds 1.")
        retrain = self.retrain
        if not isinstance(retrain, dict) or set(retrain) - {"epochs", "seeds", "finalists", "max_tiles"}:
            raise SearchError(f"search {self.name!r}: retrain must be {{\"epochs\": int, \"seeds\": [int, ...], "
                              f"\"finalists\": int, \"max_tiles\": int}}, got {retrain!r}. {_FIX}")
        check_search_fields({"name": self.name, "retrain": retrain}, names=("retrain",))
        try:
            self.base_recipe()
        except RecipeError as err:
            raise SearchError(f"search {self.name!r}: {err}") from err

    def base_recipe(self, architecture_args: dict | None = None, name: str | None = None) -> Recipe:
        """The `Recipe` of a candidate: the hypermodel's architecture with ``architecture_args``,
        the config's data, spec and retraining schedule.

        Raises:
            RecipeError: invalid recipe fields (spec, data set, retrain epochs or seeds).
        """
        try:
            return Recipe(name=name or self.name, dataset=self.dataset,
                          architecture=HYPERMODELS.get(self.hypermodel).architecture,
                          spec=self.spec, architecture_args=dict(architecture_args or {}), init=self.init,
                          epochs=self.retrain.get("epochs", 30), batch_size=self.training.batch_size,
                          learning_rate=self.training.learning_rate,
                          seeds=tuple(self.retrain.get("seeds", (0, 1, 2))),
                          validation_subjects=self.validation_subjects, augment_scale=self.training.augment_scale,
                          augment_noise=self.training.augment_noise,
                          description=f"best candidate of search {self.name}")
        except (SpecError, UnknownNameError) as err:
            raise RecipeError(str(err)) from err

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (`from_dict` reads it back)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["training"] = dataclasses.asdict(self.training)
        out["objective"] = self.objective.to_dict()
        out["budget"] = self.budget.to_dict()
        return json_plain(out)

    def replace(self, **changes: Any) -> "SearchConfig":
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


def from_dict(data: dict[str, Any], where: str = "search config") -> SearchConfig:
    """A `SearchConfig` from its dict.

    Raises:
        SearchError: unknown, missing or invalid fields.
    """
    if not isinstance(data, dict):
        raise SearchError(f"{where} must be a JSON object, got {type(data).__name__}. {_FIX}")
    check_search_keys(data, where)
    data = dict(data)
    training = data.get("training", {})
    if not isinstance(training, dict) or set(training) - {f.name for f in dataclasses.fields(Training)}:
        raise SearchError(f"{where}: training must be an object with keys among "
                          f"{[f.name for f in dataclasses.fields(Training)]}, got {training!r}. {_FIX}")
    data["training"] = Training(**training)
    data["objective"] = SearchObjective.from_dict(data.get("objective"))
    data["budget"] = Budget.from_dict(data.get("budget"))
    return SearchConfig(**data)


def names() -> list[str]:
    """Names of the bundled search configs (sorted; `tf_nvm.core.bundled`, no TensorFlow)."""
    return bundled.names("search")


def load(name_or_path: "str | os.PathLike") -> SearchConfig:
    """A bundled search config by name, or one from a ``.json`` file path.

    Raises:
        SearchError: not found, not JSON, unknown or invalid fields.
    """
    data, path = read_json_config(
        name_or_path, searches_dir(), label="search config", error=SearchError, fix=_FIX,
        not_found=lambda path: bundled.not_found_message("search", name_or_path, path))
    return from_dict(data, where=f"search config {path}")
