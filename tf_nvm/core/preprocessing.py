"""Input standardization: the one place raw inputs become model inputs.

A model trained by tf_nvm sees ``x_model = (x_raw - mean) / std`` with one
mean and standard deviation per input channel (last axis), computed on the
training part of the data. The pair is part of the input encoding: run folders
store it (``preprocessing.json``) and the crossbar mapping carries it.

Numpy only (foundation layer).
"""

import dataclasses
import math
from typing import Any

import numpy as np

from tf_nvm.core.errors import SpecError

__all__ = ["Standardization", "Standardisation", "EPSILON", "FORMULA"]

EPSILON = 1e-8
"""Added to every standard deviation (raw units) so that a constant channel does not divide by zero."""

FORMULA = "x_model = (x_raw - input_mean) / input_std"
"""The formula stored beside the mean and std (``formula`` of :meth:`Standardization.to_dict`)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Standardization:
    """Per-channel standardization of raw inputs.

    Attributes:
        mean: float32 array, one value per input channel (raw units).
        std: float32 array, one value per input channel (raw units, > 0).
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x_train: Any) -> "Standardization":
        """Mean and standard deviation (+ `EPSILON`) per channel over every axis but the last.

        Args:
            x_train: float array, channels last (raw units).

        Returns:
            `Standardization`.
        """
        x_train = np.asarray(x_train)
        axes = tuple(range(x_train.ndim - 1))
        return cls(np.asarray(x_train.mean(axes), np.float32),
                   np.asarray(x_train.std(axes) + EPSILON, np.float32))

    def apply(self, x: Any) -> np.ndarray:
        """Raw inputs -> model inputs, ``(x - mean) / std`` in float32.

        Args:
            x: float array, channels last, last axis of ``len(mean)``.

        Returns:
            float32 array of ``x``'s shape.
        """
        return ((np.asarray(x, np.float32) - self.mean) / self.std).astype(np.float32)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Standardization) and np.array_equal(self.mean, other.mean)
                and np.array_equal(self.std, other.std))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"input_mean", "input_std", "formula"}``."""
        return {"input_mean": self.mean.tolist(), "input_std": self.std.tolist(), "formula": FORMULA}

    @classmethod
    def from_dict(cls, data: Any, where: str = "preprocessing",
                  error: type[Exception] = SpecError) -> "Standardization":
        """Reads ``{"input_mean": [...], "input_std": [...]}`` (other keys are ignored) and checks it.

        Args:
            data: the dict (e.g. a run folder's ``preprocessing.json``).
            where: what ``data`` came from (named in messages).
            error: the `TfNvmError` subclass to raise.

        Returns:
            `Standardization`.

        Raises:
            ``error``: not a dict, a key missing, values that are not finite numbers, a
                std <= 0, or mean and std of different lengths.
        """
        if not isinstance(data, dict):
            raise error(f"{where}: expected an object with input_mean and input_std, got {type(data).__name__}. "
                        "Fix: re-run `tf-nvm train`, or pass {'input_mean': [...], 'input_std': [...]}.")
        values = {}
        for key in ("input_mean", "input_std"):
            if key not in data:
                raise error(f"{where}: field {key!r} is missing. Fix: re-run `tf-nvm train`, or pass "
                            "{'input_mean': [...], 'input_std': [...]} (one value per input channel).")
            raw = data[key]
            items = raw if isinstance(raw, (list, tuple)) else [raw]
            if not items or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                    and abs(v) < 3.0e38 for v in items):
                raise error(f"{where}: field {key!r} must be a non-empty list of finite numbers (float32 range), "
                            f"got {str(raw)[:80]}. Fix: re-run `tf-nvm train`.")
            values[key] = np.asarray(items, np.float32)
        if len(values["input_mean"]) != len(values["input_std"]):
            raise error(f"{where}: input_mean has {len(values['input_mean'])} values and input_std "
                        f"{len(values['input_std'])}; one per input channel each. Fix: re-run `tf-nvm train`.")
        if not np.all(values["input_std"] > 0):
            raise error(f"{where}: every input_std must be > 0, got {values['input_std'].tolist()[:8]}. "
                        "Fix: re-run `tf-nvm train`.")
        return cls(values["input_mean"], values["input_std"])


Standardisation = Standardization
"""Deprecated alias of :class:`Standardization` (British spelling), kept for one release."""
