"""Ranges of Monte Carlo chips: ``--chips N`` (chips 0..N-1) or ``--chips A:B`` (chips A..B-1, one shard).

Numpy only, so that ``tf-nvm simulate`` checks ``--chips`` before TensorFlow loads with the very rule the
simulator applies (every module of `tf_nvm.simulator` runs its package's ``__init__``, which imports
TensorFlow); `tf_nvm.simulator` and `tf_nvm.simulator.shards` re-export `ChipRange` and `MAX_CHIPS`.
"""

import dataclasses
import re

import numpy as np

from tf_nvm.core.errors import SimulatorError

__all__ = ["ChipRange", "MAX_CHIPS"]

MAX_CHIPS = 100000
"""Most chips one run (or one chip range) may hold, as `tf_nvm.simulator.monte_carlo` allows."""

_RANGE = re.compile(r"^\s*(\d+)\s*(?::\s*(\d+)\s*)?$")


@dataclasses.dataclass(frozen=True, order=True)
class ChipRange:
    """Chips ``start .. stop - 1`` (like Python's ``range``).

    Attributes:
        start: first chip index (int >= 0).
        stop: one past the last chip (int > start; at most ``start + MAX_CHIPS``).
    """

    start: int
    stop: int

    def __post_init__(self) -> None:
        for name in ("start", "stop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise SimulatorError(f"ChipRange.{name} must be an integer >= 0, got {value!r}. Fix: e.g. "
                                     "ChipRange(0, 25) or --chips 0:25.")
        if not 1 <= self.stop - self.start <= MAX_CHIPS:
            raise SimulatorError(f"chip range {self.start}:{self.stop} holds {self.stop - self.start} chips; allowed "
                                 f"1..{MAX_CHIPS} (stop > start). Fix: pass --chips A:B with A < B, e.g. 0:25.")

    @property
    def count(self) -> int:
        """Number of chips (int)."""
        return self.stop - self.start

    def __str__(self) -> str:
        return f"{self.start}:{self.stop}"

    @classmethod
    def parse(cls, text: str | int, where: str = "--chips") -> "ChipRange":
        """``"N"`` -> chips 0..N-1; ``"A:B"`` -> chips A..B-1; an int N as ``"N"``.

        Raises:
            SimulatorError: anything else (the message quotes it).
        """
        if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
            text = str(int(text))
        match = _RANGE.match(text) if isinstance(text, str) else None
        if match is None:
            raise SimulatorError(f"{where}: {text!r} is not a chip count N or a chip range A:B. Fix: e.g. {where} 25 "
                                 f"(chips 0..24) or {where} 25:50 (chips 25..49 of a larger run).")
        start, stop = (0, int(match.group(1))) if match.group(2) is None else (int(match.group(1)),
                                                                               int(match.group(2)))
        try:
            return cls(start, stop)
        except SimulatorError as err:
            raise SimulatorError(f"{where} {text}: {err}") from None

    def split(self, parts: int) -> list["ChipRange"]:
        """``parts`` contiguous ranges covering this one, as even as possible (fewer when there are fewer chips).

        Raises:
            SimulatorError: ``parts`` is not an integer >= 1.
        """
        if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
            raise SimulatorError(f"ChipRange.split: parts must be an integer >= 1, got {parts!r}. Fix: e.g. "
                                 "--workers 2.")
        parts = min(parts, self.count)
        bounds = [self.start + (self.count * i) // parts for i in range(parts + 1)]
        return [ChipRange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
