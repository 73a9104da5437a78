"""Recipes: JSON training configurations (data set, architecture, spec, schedule).

The ``recipes/`` folder of the source tree holds the named recipes; a recipe
is found by name (``har-2bit-unipolar``) or by path to a ``.json`` file.
"""

import dataclasses
import json
import os
from typing import Optional, Union

from tf_nvm import models, presets
from tf_nvm.errors import RecipeError, SpecError
from tf_nvm.spec import NVMSpec

__all__ = ["Recipe", "load", "names", "RECIPES_DIR", "DATASETS"]

RECIPES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes")
DATASETS = ("har", "cifar10")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training configuration.

    Attributes:
        name: recipe name.
        dataset: ``"har"`` or ``"cifar10"``.
        architecture: a name in `tf_nvm.models.ARCHITECTURES`.
        spec: preset name or full spec dict.
        architecture_args: keyword arguments of the architecture builder.
        init: `quantize_model` init (``"keep"`` or ``"device"``).
        epochs: training epochs (the best validation epoch is kept).
        batch_size: examples per step.
        learning_rate: peak Adam learning rate (cosine decay to 0).
        seeds: seeds run by default.
        validation_subjects: HAR: number of training subjects held out for validation.
        augment_scale: standard deviation of a random per-example, per-channel gain
            around 1 (training only; 0 disables).
        augment_noise: standard deviation of additive Gaussian noise on the
            standardised inputs (training only; 0 disables).
        description: one line.
    """

    name: str
    dataset: str
    architecture: str
    spec: Union[str, dict]
    architecture_args: dict = dataclasses.field(default_factory=dict)
    init: str = "device"
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 2e-3
    seeds: tuple = (0, 1, 2)
    validation_subjects: int = 4
    augment_scale: float = 0.0
    augment_noise: float = 0.0
    description: Optional[str] = None

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise RecipeError(f"recipe {self.name!r}: dataset must be one of {list(DATASETS)}, got {self.dataset!r}.")
        if self.architecture not in models.ARCHITECTURES:
            raise RecipeError(f"recipe {self.name!r}: architecture must be one of "
                              f"{sorted(models.ARCHITECTURES)}, got {self.architecture!r}.")
        for field, lo in (("epochs", 1), ("batch_size", 1), ("validation_subjects", 1)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise RecipeError(f"recipe {self.name!r}: {field} must be an integer >= {lo}, got {value!r}.")
        if not isinstance(self.learning_rate, (int, float)) or not self.learning_rate > 0:
            raise RecipeError(f"recipe {self.name!r}: learning_rate must be > 0, got {self.learning_rate!r}.")
        for field in ("augment_scale", "augment_noise"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 10:
                raise RecipeError(f"recipe {self.name!r}: {field} must be a number in [0, 10), got {value!r}.")
        try:
            self.nvm_spec  # noqa: B018  (validates)
        except SpecError as err:
            raise RecipeError(f"recipe {self.name!r}: invalid spec: {err}") from err

    @property
    def nvm_spec(self):
        """The recipe's `NVMSpec`."""
        return presets.get(self.spec) if isinstance(self.spec, str) else NVMSpec.from_dict(self.spec)

    @property
    def spec_name(self):
        """Preset name, or ``"custom"``."""
        return self.spec if isinstance(self.spec, str) else "custom"

    def replace(self, **changes):
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["seeds"] = list(self.seeds)
        return out


def names():
    """Names of the recipes in `RECIPES_DIR`."""
    if not os.path.isdir(RECIPES_DIR):
        return []
    return sorted(f[:-5] for f in os.listdir(RECIPES_DIR) if f.endswith(".json"))


def load(name_or_path):
    """Loads a recipe by name (in `RECIPES_DIR`) or from a JSON file path.

    Raises:
        RecipeError: not found, not JSON, unknown or invalid fields.
    """
    path = name_or_path if name_or_path.endswith(".json") else os.path.join(RECIPES_DIR, name_or_path + ".json")
    if not os.path.isfile(path):
        raise RecipeError(f"recipe {name_or_path!r} not found (looked for {path}). Known recipes: {names()}. "
                          "Fix: pass a recipe name or the path of a .json recipe file.")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        raise RecipeError(f"recipe file {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise RecipeError(f"recipe file {path} must hold a JSON object, got {type(data).__name__}.")
    data.setdefault("name", os.path.basename(path)[:-5])
    fields = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise RecipeError(f"recipe file {path} has unknown field(s) {unknown}; allowed: {sorted(fields)}.")
    if "seeds" in data:
        data["seeds"] = tuple(data["seeds"])
    try:
        return Recipe(**data)
    except TypeError as err:
        raise RecipeError(f"recipe file {path}: {err}") from err
