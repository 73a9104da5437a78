"""keras-tuner HyperModels whose ``build(hp)`` returns a *float* tf_keras model; the search quantizes it.

Each registered family (`HYPERMODELS`) maps hyperparameters (every one an
``hp.Choice`` over a list of values: `ArchitectureHyperModel.SPACE`, narrowed or
widened by a search config's ``space``) onto the keyword arguments of a
registered architecture (`tf_nvm.models.ARCHITECTURES`), so the best candidate
is an ordinary recipe (``architecture`` + ``architecture_args``) that
``tf-nvm train`` retrains and `tf_nvm.experiments.runs` stores.

Any other HyperModel (or function ``build(hp)``) works too: `checked_hypermodel`
wraps it so that a build returning something other than a tf_keras model (a
Keras 3 model, for example) raises `SearchError` at once, when the tuner is
created, instead of failing every trial.
"""

import json
from collections.abc import Callable, Sequence
from typing import Any, cast

import keras_tuner

from tf_nvm.experiments import models
from tf_nvm.keras.backend import keras
from tf_nvm.core.errors import SearchError
from tf_nvm.core.registry import Registry

__all__ = ["HYPERMODELS", "ArchitectureHyperModel", "HarCNNHyperModel", "HarMLPHyperModel", "CifarCNNHyperModel",
           "ResNet8HyperModel", "CheckedHyperModel", "checked_hypermodel", "make_hypermodel", "MAX_CHOICES"]

MAX_CHOICES = 64
"""Most values one hyperparameter of a search space may list."""

HYPERMODELS = Registry("hypermodel", error=SearchError,
                       fix="use a registered hypermodel, or register a tf_nvm.nas.ArchitectureHyperModel subclass "
                           "with tf_nvm.nas.HYPERMODELS.register")
"""Hypermodel family name -> `ArchitectureHyperModel` subclass."""


class ArchitectureHyperModel(keras_tuner.HyperModel):
    """A search space over one registered architecture's arguments.

    Subclasses set ``architecture`` (a name in `tf_nvm.models.ARCHITECTURES`),
    ``SPACE`` ({hyperparameter: tuple of values}, the first value the default),
    ``LIMITS`` ({hyperparameter: (low, high) for numbers, or a tuple of the allowed
    strings/booleans}: what a config's space may ask for, checked before anything is
    built, so a config cannot ask for a 100,000,000-filter layer or 1,000 blocks)
    and implement `arguments`.

    Args:
        space: {name: list of values} replacing entries of ``SPACE`` (names must be in ``SPACE``).
        input_shape: shape of one example (without the batch axis).
        num_classes: number of logits.

    Raises:
        SearchError: a space name that is not in ``SPACE``, an empty or non-scalar value list,
            more than `MAX_CHOICES` values, or a value outside ``LIMITS`` (or of another type than
            the default values: an integer hyperparameter takes integers only).
    """

    architecture: str | None = None
    SPACE: dict[str, tuple] = {}
    LIMITS: dict[str, tuple] = {}

    def __init__(self, space: dict[str, list] | None = None, input_shape: Sequence[int] | None = None,
                 num_classes: int | None = None) -> None:
        super().__init__(name=self.architecture)
        if space is not None and not isinstance(space, dict):
            raise SearchError(f"space of hypermodel {self.architecture!r} must be an object {{name: [values]}}, got "
                              f"{repr(space)[:80]}. Fix: e.g. \"space\": {{\"filters\": [16, 32]}}.")
        space = dict(space or {})
        unknown = sorted(set(space) - set(self.SPACE))
        if unknown:
            raise SearchError(f"space of hypermodel {self.architecture!r}: unknown name(s) {unknown}; allowed: "
                              f"{sorted(self.SPACE)}. Fix: use only those names.")
        for name, values in space.items():
            if (not isinstance(values, (list, tuple)) or not values
                    or not all(isinstance(v, (int, float, str, bool)) for v in values)
                    or len({type(v) for v in values}) != 1):
                raise SearchError(f"space.{name} must be a non-empty list of numbers, strings or booleans of one "
                                  f"type, got {str(values)[:200]}. Fix: e.g. "
                                  f"\"{name}\": {json.dumps(list(self.SPACE[name]))}.")
            self._check_values(name, values)
        self.space = {name: tuple(space.get(name, values)) for name, values in self.SPACE.items()}
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.num_classes = num_classes

    def _check_values(self, name, values):
        """Raises SearchError unless every value of ``space[name]`` is of the default's type and within ``LIMITS``."""
        limit, default = self.LIMITS[name], self.SPACE[name][0]
        fix = f"Fix: e.g. \"{name}\": {json.dumps(list(self.SPACE[name]))}."
        if len(values) > MAX_CHOICES:
            raise SearchError(f"space.{name} lists {len(values)} values; at most {MAX_CHOICES} are allowed. {fix}")
        for value in values:
            if isinstance(default, bool) or isinstance(default, str):
                ok = value in limit and type(value) is type(default)
                allowed = f"one of {list(limit)}"
            else:
                kinds = (int,) if isinstance(default, int) else (int, float)
                ok = (isinstance(value, kinds) and not isinstance(value, bool) and limit[0] <= value <= limit[1])
                allowed = (f"{'an integer' if kinds == (int,) else 'a number'} in {limit[0]}..{limit[1]}")
            if not ok:
                raise SearchError(f"space.{name} of hypermodel {self.architecture!r} holds {value!r}; each value must "
                                  f"be {allowed}. {fix}")

    def choice(self, hp: keras_tuner.HyperParameters, name: str, key: str | None = None) -> Any:
        """``hp.Choice(key or name, self.space[name])``: the candidate lists are looked up by ``name``."""
        return hp.Choice(key or name, list(self.space[name]))

    def arguments(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """The architecture's keyword arguments for the hyperparameters ``hp`` (dict, JSON-ready)."""
        raise NotImplementedError

    def fixed_arguments(self) -> dict[str, Any]:
        """Arguments set by the data, not searched (input shape, classes)."""
        out: dict[str, Any] = {}
        if self.input_shape is not None:
            out["input_shape"] = list(self.input_shape)
        if self.num_classes is not None:
            out["num_classes"] = int(self.num_classes)
        return out

    def build(self, hp: keras_tuner.HyperParameters) -> Any:
        """The float tf_keras model of ``hp``."""
        return models.build(cast(str, self.architecture), **self.fixed_arguments(), **self.arguments(hp))


def _blocks(self, hp, depth_name, per_block):
    """Per-block values: ``{name}_{i}`` for every block up to the largest depth, active for i < depth."""
    depth = self.choice(hp, depth_name)
    depths = list(self.space[depth_name])
    values = {name: [] for name in per_block}
    for i in range(max(depths)):
        with hp.conditional_scope(depth_name, [d for d in depths if d > i]):
            for name in per_block:
                value = self.choice(hp, name, f"{name}_{i}")
                if i < depth:
                    values[name].append(value)
    return depth, values


@HYPERMODELS.register("har_cnn")
class HarCNNHyperModel(ArchitectureHyperModel):
    """HAR 1-D CNNs (`tf_nvm.models.har_search_cnn`): depth, filters and kernel per block, pooling, signs,
    input pooling, hidden head, dropout.

    The default space holds only crossbar-mappable, TFLite-exact members: max pooling and no input pooling.
    ``"avg"`` pooling and ``input_pool`` > 1 (Keras average pooling) may be put in a config's space, but
    average pooling is neither mapped onto crossbars nor bit-exact in TFLite yet: `tf-nvm search` fails such
    candidates ("cannot be exported"), and the Python API trains them for microcontroller use only.
    """

    architecture = "har_search_cnn"
    SPACE = {"depth": (2, 1, 3), "filters": (32, 16, 24, 48, 64), "kernel_size": (5, 3, 7, 9),
             "pool": (2, 4), "pooling": ("max",), "signs": ("split", "bn"), "input_pool": (1,),
             "head_units": (0, 32), "dropout": (0.0, 0.2)}
    LIMITS = {"depth": (1, 8), "filters": (1, 256), "kernel_size": (1, 128), "pool": (1, 128),
              "pooling": ("max", "avg"), "signs": ("split", "bn"), "input_pool": (1, 128), "head_units": (0, 1024),
              "dropout": (0.0, 0.9)}

    def arguments(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        _, blocks = _blocks(self, hp, "depth", ("filters", "kernel_size"))
        return {"filters": blocks["filters"], "kernel_sizes": blocks["kernel_size"],
                **{name: self.choice(hp, name)
                   for name in ("pool", "pooling", "signs", "input_pool", "head_units", "dropout")}}


@HYPERMODELS.register("har_mlp")
class HarMLPHyperModel(ArchitectureHyperModel):
    """HAR MLPs on time-pooled windows (`tf_nvm.models.har_search_mlp`): depth, units, signs, input pooling,
    dropout.

    Its input pooling is Keras average pooling, which the crossbar mapping does not support yet (see
    `HarCNNHyperModel`): every member is for microcontroller use until it does, and no search config of it
    ships.
    """

    architecture = "har_search_mlp"
    SPACE = {"depth": (1, 0, 2), "units": (64, 16, 32, 128), "signs": ("split", "bn"), "input_pool": (4, 2, 8),
             "dropout": (0.0, 0.2)}
    LIMITS = {"depth": (0, 8), "units": (1, 1024), "signs": ("split", "bn"), "input_pool": (1, 128),
              "dropout": (0.0, 0.9)}

    def arguments(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        _, blocks = _blocks(self, hp, "depth", ("units",))
        return {"units": blocks["units"], **{name: self.choice(hp, name) for name in ("signs", "input_pool",
                                                                                       "dropout")}}


@HYPERMODELS.register("cifar_cnn")
class CifarCNNHyperModel(ArchitectureHyperModel):
    """Small CIFAR-10 CNNs (`tf_nvm.models.cifar_cnn`): depth, filters per block, sign split."""

    architecture = "cifar_cnn"
    SPACE = {"depth": (3, 2), "filters": (32, 16, 64, 128), "sign_split": (False, True)}
    LIMITS = {"depth": (1, 5), "filters": (1, 512), "sign_split": (False, True)}  # 5 poolings: 32x32 -> 1x1

    def arguments(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        _, blocks = _blocks(self, hp, "depth", ("filters",))
        return {"filters": blocks["filters"], "sign_split": self.choice(hp, "sign_split")}


@HYPERMODELS.register("resnet8")
class ResNet8HyperModel(ArchitectureHyperModel):
    """ResNet-8, the MLPerf Tiny image classification reference (`tf_nvm.models.resnet8`): width of the first
    stack and the sign split.

    It ends in the published AveragePooling2D: where the crossbar exporter does not map average pooling,
    `tf-nvm search` fails its candidates ("cannot be exported"), as for `HarCNNHyperModel`'s ``"avg"``.
    """

    architecture = "resnet8"
    SPACE = {"filters": (16, 8, 26), "sign_split": (True, False)}
    LIMITS = {"filters": (1, 128), "sign_split": (True, False)}  # the third stack has 4x the filters

    def arguments(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        return {name: self.choice(hp, name) for name in ("filters", "sign_split")}


def make_hypermodel(name: str, space: dict[str, list] | None = None, input_shape: Sequence[int] | None = None,
                    num_classes: int | None = None) -> ArchitectureHyperModel:
    """The registered hypermodel ``name`` over ``space``.

    Raises:
        SearchError: unknown name (the message lists the known ones) or invalid space.
    """
    return HYPERMODELS.get(name)(space=space, input_shape=input_shape, num_classes=num_classes)


class CheckedHyperModel(keras_tuner.HyperModel):
    """Wraps any HyperModel or ``build(hp)`` function; its builds must return tf_keras models.

    Args:
        hypermodel: a ``keras_tuner.HyperModel`` or a callable ``hp -> tf_keras model``.
    """

    def __init__(self, hypermodel: keras_tuner.HyperModel | Callable[[Any], Any]) -> None:
        super().__init__(name=getattr(hypermodel, "name", None) or getattr(hypermodel, "__name__", "hypermodel"))
        if not (isinstance(hypermodel, keras_tuner.HyperModel) or callable(hypermodel)):
            raise SearchError(f"hypermodel must be a keras_tuner.HyperModel or a function build(hp), got "
                              f"{type(hypermodel).__name__}. Fix: pass a HyperModel, a build function, or a "
                              f"registered name {HYPERMODELS.names()}.")
        self.inner = hypermodel

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        if isinstance(self.inner, keras_tuner.HyperModel):
            self.inner.declare_hyperparameters(hp)

    def build(self, hp: keras_tuner.HyperParameters) -> Any:
        """The inner build's model, checked.

        Raises:
            SearchError: the build returned a Keras 3 model or something that is not a tf_keras model.
        """
        build = self.inner.build if isinstance(self.inner, keras_tuner.HyperModel) else self.inner
        model = build(hp)
        if not isinstance(model, keras.Model):
            kind = type(model)
            keras3 = kind.__module__.startswith("keras.") or kind.__module__ == "keras"
            what = "a Keras 3 model" if keras3 else f"a {kind.__module__}.{kind.__name__}"
            raise SearchError(
                f"hypermodel {self.name!r}: build(hp) returned {what}, not a tf_keras (Keras 2) model; tf_nvm "
                "quantizes only tf_keras models (tfmot needs Keras 2). Fix: build it with `import tf_keras as "
                "keras` (or `from tf_nvm.keras.backend import keras`) after `import tf_nvm`, never `import keras`.")
        return model


def checked_hypermodel(hypermodel: Any) -> ArchitectureHyperModel | CheckedHyperModel:
    """``hypermodel`` itself when it is an `ArchitectureHyperModel`, else wrapped in `CheckedHyperModel`."""
    if isinstance(hypermodel, (ArchitectureHyperModel, CheckedHyperModel)):
        return hypermodel
    return CheckedHyperModel(hypermodel)
