"""Search objectives: validation accuracy, or a hardware-aware scalarised score.

Directions are explicit: ``val_accuracy`` and ``score`` are maximised; every
hardware count (`tf_nvm.nas.hardware.COUNTS`: tiles, devices, ...) is minimised.
The hardware-aware score is the linear scalarisation

    score = val_accuracy - sum_k weight_k * count_k / reference_k

with ``val_accuracy`` a fraction (0..1), ``count_k`` a hardware count of the
candidate, ``reference_k`` > 0 the same count of a reference design (e.g. 8 tiles
of the hand-made ``har_signed_cnn``) and ``weight_k`` >= 0 the accuracy (as a
fraction) one reference's worth of that count is worth. Example: tiles with
weight 0.02 and reference 8: a candidate on 4 tiles pays 0.01 (1 accuracy point),
one on 16 tiles pays 0.04.
"""

import dataclasses
from typing import Any

import keras_tuner

from tf_nvm.core.errors import SearchError
from tf_nvm.nas.hardware import COUNTS, HardwareCounts

__all__ = ["Penalty", "SearchObjective", "METRICS", "DIRECTIONS"]

METRICS = ("val_accuracy", "score")
"""The objective metrics a search may maximise."""
DIRECTIONS = {"val_accuracy": "max", "score": "max", **{name: "min" for name in COUNTS}}
"""Direction of every metric a trial reports."""


@dataclasses.dataclass(frozen=True)
class Penalty:
    """One term of the score: ``weight * count / reference`` (direction: min).

    Attributes:
        count: a hardware count (`tf_nvm.nas.hardware.COUNTS`).
        weight: accuracy (fraction, >= 0) one ``reference`` of the count costs.
        reference: the count of a reference design (> 0), same unit as the count.
    """

    count: str
    weight: float
    reference: float

    def __post_init__(self):
        if self.count not in COUNTS:
            raise SearchError(f"objective.penalties: count {self.count!r} is unknown; allowed: {list(COUNTS)}. "
                              "Fix: penalise one of those counts.")
        for field, ok, what in (("weight", lambda v: v >= 0, ">= 0"), ("reference", lambda v: v > 0, "> 0")):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
                raise SearchError(f"objective.penalties.{self.count}.{field} must be a number {what}, got "
                                  f"{value!r}. Fix: e.g. {{\"weight\": 0.02, \"reference\": 8}}.")


@dataclasses.dataclass(frozen=True)
class SearchObjective:
    """What a search maximises.

    Attributes:
        metric: ``"val_accuracy"`` (the NVM model's best validation accuracy) or
            ``"score"`` (the hardware-aware scalarisation of the module docstring).
        penalties: the score's terms (``metric="score"`` only).
    """

    metric: str = "val_accuracy"
    penalties: tuple = ()

    def __post_init__(self):
        if self.metric not in METRICS:
            raise SearchError(f"objective.metric must be one of {list(METRICS)}, got {self.metric!r}. Fix: "
                              "\"val_accuracy\", or \"score\" with penalties.")
        if self.metric == "val_accuracy" and self.penalties:
            raise SearchError("objective: penalties given with metric \"val_accuracy\", which ignores them. Fix: "
                              "use metric \"score\", or drop the penalties.")
        if self.metric == "score" and not self.penalties:
            raise SearchError("objective: metric \"score\" needs at least one penalty, e.g. "
                              "{\"tiles\": {\"weight\": 0.02, \"reference\": 8}}. Fix: add penalties, or use "
                              "metric \"val_accuracy\".")

    @classmethod
    def from_dict(cls, data: dict | None) -> "SearchObjective":
        """From ``{"metric": "score", "penalties": {"tiles": {"weight": 0.02, "reference": 8}}}``.

        Raises:
            SearchError: unknown keys or invalid values.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict) or set(data) - {"metric", "penalties"}:
            raise SearchError(f"objective must be an object with keys 'metric' and 'penalties', got {data!r}. "
                              "Fix: e.g. {\"metric\": \"val_accuracy\"}.")
        penalties = data.get("penalties") or {}
        if not isinstance(penalties, dict) or not all(isinstance(v, dict) and set(v) <= {"weight", "reference"}
                                                      and len(v) == 2 for v in penalties.values()):
            raise SearchError(f"objective.penalties must map counts to {{\"weight\": w, \"reference\": r}}, got "
                              f"{penalties!r}. Fix: e.g. {{\"tiles\": {{\"weight\": 0.02, \"reference\": 8}}}}.")
        return cls(data.get("metric", "val_accuracy"),
                   tuple(Penalty(name, **term) for name, term in sorted(penalties.items())))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (`from_dict` reads it)."""
        return {"metric": self.metric,
                "penalties": {p.count: {"weight": p.weight, "reference": p.reference} for p in self.penalties}}

    def score(self, val_accuracy: float, counts: HardwareCounts) -> float:
        """The scalarised score of a candidate (float; equals ``val_accuracy`` without penalties).

        Args:
            val_accuracy: validation accuracy, fraction.
            counts: `HardwareCounts`.
        """
        return float(val_accuracy) - sum(p.weight * getattr(counts, p.count) / p.reference for p in self.penalties)

    def keras_tuner_objective(self) -> keras_tuner.Objective:
        """The keras-tuner ``Objective`` (name and explicit direction ``"max"``)."""
        return keras_tuner.Objective(self.metric, DIRECTIONS[self.metric])
