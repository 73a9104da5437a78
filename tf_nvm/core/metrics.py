"""Tasks and metrics of a simulated network: what a chip is scored on.

A task names what the network's output means and how a chip is scored:

* ``classification``: outputs are class scores, targets integer labels;
  metric ``accuracy`` (top-1), and the agreement of each chip's arg-max with the
  ideal chip's.
* ``regression``: outputs are values, targets float arrays of the output's shape;
  metrics ``mse`` and ``mae`` against the targets and against the ideal chip.
* ``reconstruction``: an autoencoder, a regression whose targets are the model
  inputs (standardised, model units).

`TASKS` and `METRICS` are registries: a user's metric is one
``METRICS.register(name, Metric(...))``. `resolve_task` picks the task: an
explicit choice, else the mapping's ``metadata["task"]`` (written at export
from the trained model, `task_of_loss`), else the targets (integer labels of one
per example: classification; float targets of the output's shape: regression;
none: reconstruction).

Numpy only.
"""

import dataclasses
from typing import Any, Callable

import numpy as np

from tf_nvm.core.errors import SimulatorError
from tf_nvm.core.registry import Registry

__all__ = ["Metric", "Task", "METRICS", "TASKS", "resolve_task", "task_of_loss", "targets_for", "metric_for"]


@dataclasses.dataclass(frozen=True)
class Metric:
    """One score of a chip's outputs.

    Attributes:
        name: the metric's name (``--metric NAME``).
        score: ``(outputs, targets) -> float``; outputs float (N, ...) in model units.
        from_outputs: ideal-chip outputs -> the targets a chip is compared with when scored against the ideal
            chip (``accuracy``: the ideal arg-max; ``mse``/``mae``: the outputs themselves).
        higher_is_better: True for accuracy-like scores, False for errors.
        unit: printed after the value (``"%"`` scales by 100).
    """

    name: str
    score: Callable
    from_outputs: Callable
    higher_is_better: bool
    unit: str = ""

    def format(self, value: float) -> str:
        """``value`` as printed (accuracy in %, errors with 4 significant digits)."""
        return f"{100 * value:.2f} %" if self.unit == "%" else f"{value:.4g}"


def _argmax(outputs):
    return np.asarray(outputs).reshape(len(outputs), -1).argmax(axis=-1)


def _accuracy(outputs, targets):
    return float(np.mean(_argmax(outputs) == np.asarray(targets).reshape(-1)))


def _mse(outputs, targets):
    return float(np.mean((np.asarray(outputs, np.float64) - np.asarray(targets, np.float64)) ** 2))


def _mae(outputs, targets):
    return float(np.mean(np.abs(np.asarray(outputs, np.float64) - np.asarray(targets, np.float64))))


METRICS = Registry("metric", error=SimulatorError,
                   fix="pass one of the registered metrics, or register one with "
                       "tf_nvm.core.metrics.METRICS.register(name, Metric(...))")
"""Metric name -> `Metric`."""
METRICS.register("accuracy", Metric("accuracy", _accuracy, _argmax, True, "%"),
                 description="top-1 accuracy: fraction of examples whose arg-max output is the label")
METRICS.register("mse", Metric("mse", _mse, np.asarray, False),
                 description="mean squared error over every output value (model units squared)")
METRICS.register("mae", Metric("mae", _mae, np.asarray, False),
                 description="mean absolute error over every output value (model units)")


@dataclasses.dataclass(frozen=True)
class Task:
    """What a network's output means.

    Attributes:
        name: ``classification``, ``regression`` or ``reconstruction``.
        metrics: metric names reported, the first the default (``--metric`` picks another).
        targets_are_inputs: the targets are the model inputs (an autoencoder).
        integer_targets: targets are integer class labels (one per example).
    """

    name: str
    metrics: tuple
    targets_are_inputs: bool = False
    integer_targets: bool = False


TASKS = Registry("task", error=SimulatorError, fix="pass classification, regression or reconstruction")
"""Task name -> `Task`."""
TASKS.register("classification", Task("classification", ("accuracy",), integer_targets=True),
               description="class scores vs integer labels: accuracy, agreement with the ideal chip")
TASKS.register("regression", Task("regression", ("mse", "mae")),
               description="values vs float targets: MSE and MAE against the targets and the ideal chip")
TASKS.register("reconstruction", Task("reconstruction", ("mse", "mae"), targets_are_inputs=True),
               description="autoencoder: MSE and MAE of the reconstruction of the (standardised) inputs")

_REGRESSION_LOSSES = ("mse", "mae", "mean_squared", "mean_absolute", "huber", "log_cosh", "logcosh", "msle")


def task_of_loss(loss: Any) -> str | None:
    """The task a Keras loss implies: ``"classification"`` for cross-entropies (and hinge), ``"regression"``
    for squared/absolute/Huber errors, None when unknown (a custom loss, no loss).

    Args:
        loss: a loss name, a loss object or function, or None.
    """
    if loss is None:
        return None
    name = loss if isinstance(loss, str) else getattr(loss, "name", None) or getattr(loss, "__name__", "")
    name = str(name).lower()
    if "crossentropy" in name or "hinge" in name:
        return "classification"
    if any(key in name for key in _REGRESSION_LOSSES):
        return "regression"
    return None


def resolve_task(task: str | None = None, mapping: Any = None, y: Any = None, output_shape: Any = None,
                 where: str = "simulate") -> "Task":
    """The task of a simulation: ``task`` if given, else ``mapping.metadata["task"]``, else from the targets.

    From the targets: None -> ``reconstruction``; integer labels, one per example -> ``classification``;
    otherwise -> ``regression``. A ``regression`` (given or recorded) without targets is a ``reconstruction``
    (an autoencoder trained with an MSE loss: its targets are its inputs).

    Args:
        task: a `TASKS` name or None.
        mapping: a `tf_nvm.mapping.Mapping` or None.
        y: the targets or None.
        output_shape: shape of one output example (for messages and checks), or None.
        where: named in messages.

    Returns:
        `Task`.

    Raises:
        SimulatorError: an unknown task name (given or recorded).
    """
    if task is None and mapping is not None:
        task = (mapping.metadata or {}).get("task")
    if task is not None:
        if not isinstance(task, str) or task not in TASKS:
            raise SimulatorError(f"{where}: task {task!r} is not known; known: {TASKS.names()}. Fix: pass one of "
                                 "those (--task NAME).")
        if task == "regression" and y is None:
            return TASKS.get("reconstruction")  # a regression network without targets: an autoencoder
        return TASKS.get(task)
    if y is None:
        return TASKS.get("reconstruction")
    y = np.asarray(y)
    if y.dtype.kind in "iu" and y.ndim == 1:
        return TASKS.get("classification")
    return TASKS.get("regression")


def targets_for(task: "Task", x: Any, y: Any, output_shape: Any, where: str = "simulate") -> np.ndarray:
    """The targets of ``task`` checked against the outputs: integer labels, float targets or the inputs.

    Args:
        task: `Task`.
        x: model inputs (N, ...).
        y: targets or None.
        output_shape: shape of one output example.
        where: named in messages.

    Returns:
        numpy array: (N,) int64 labels, or float32 (N, *output_shape).

    Raises:
        SimulatorError: targets missing or of the wrong shape or dtype for the task.
    """
    n = len(x)
    output_shape = tuple(output_shape)
    if task.targets_are_inputs:
        if tuple(np.shape(x)[1:]) != output_shape:
            raise SimulatorError(f"{where}: task {task.name!r} compares the outputs with the inputs, but the inputs "
                                 f"have shape {list(np.shape(x)[1:])} and the outputs {list(output_shape)}. Fix: pass "
                                 "--task regression with targets (y_test), or a model whose output has the input's "
                                 "shape.")
        return np.asarray(x, np.float32)
    if y is None:
        raise SimulatorError(f"{where}: task {task.name!r} needs targets, but the data have none (no y_test). Fix: "
                             "add y_test to the data, or pass --task reconstruction for an autoencoder.")
    y = np.asarray(y)
    if task.integer_targets:
        if y.ndim != 1 or len(y) != n or y.dtype.kind not in "iu":
            raise SimulatorError(f"{where}: labels must be {n} integers (one per example), got {y.dtype} "
                                 f"{list(y.shape)}. Fix: pass the integer class labels of x, or --task regression "
                                 "for float targets.")
        return y.astype(np.int64)
    if y.dtype.kind not in "iuf" or len(y) != n or y.size != n * int(np.prod(output_shape)):
        raise SimulatorError(f"{where}: task {task.name!r} needs {n} targets of the output's shape "
                             f"{list(output_shape)}, got {y.dtype} {list(y.shape)}. Fix: pass float targets "
                             "(N, *output_shape), or --task classification for integer labels.")
    return y.reshape((n,) + output_shape).astype(np.float32)


def metric_for(task: "Task", metric: str | None = None, where: str = "simulate") -> Metric:
    """The primary `Metric` of ``task``: ``metric`` by name if given (it must suit the task), else the task's first.

    Raises:
        SimulatorError: an unknown metric, or one that does not suit the task (accuracy on regression targets).
    """
    name = task.metrics[0] if metric is None else metric
    found = METRICS.get(name)
    if task.integer_targets != (name == "accuracy") and name in ("accuracy", "mse", "mae"):
        raise SimulatorError(f"{where}: metric {name!r} does not suit task {task.name!r}; its metrics: "
                             f"{list(task.metrics)}. Fix: pass one of those (--metric NAME) or another --task.")
    return found
