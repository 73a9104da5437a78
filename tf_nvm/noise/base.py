"""The contract of a device noise model: conductances in, conductances out (microsiemens).

A noise model acts on the conductances of programmed devices, as in aihwkit's
inference noise models (weights -> conductances -> programming noise -> drift
-> compensation -> read noise). Every method is a pure TensorFlow function of
its inputs and an explicit stateless seed (``tf.random.stateless_*`` with the
Philox algorithm), so a chip's devices depend only on the seed, never on how
the data are batched.

* `program`: the conductance actually reached when programming ``g_target``
  (drawn once per programmed chip).
* `drift_coefficients`: per-device drift exponents nu (drawn once per chip).
* `drift`: conductances at ``t_inference`` seconds after programming, before
  read noise (drawn once per chip and inference time; PCM: deterministic
  given g_prog and nu; ReRAM: a relaxation around the target).
* `read_sigma`: standard deviation (µS) of the read noise of a device programmed to
  ``g_prog`` and drifted to ``g_drifted`` (PCM: the 1/f noise amplitude ``Q_s`` is a
  function of the *programmed* conductance, as in aihwkit).
* `read`: one read of the devices: ``max(g_drifted + read_sigma * N(0, 1), 0)``,
  clamped at 0 µS as aihwkit clamps (a conductance cannot be negative).

All conductances are float32 tensors in microsiemens (µS); times are seconds.
"""

import abc
import dataclasses
import math
from typing import Any

from tf_nvm.keras.backend import tf
from tf_nvm.core.errors import SimulatorError

__all__ = ["NoiseModel", "RANDOM_ALG"]

_POSITIVE = ("g_max_us", "t0_s", "t_read_s")
"""Fields that must be > 0 (conductance ceilings and time constants); every other numeric field must be >= 0."""

RANDOM_ALG = "philox"
"""Stateless random algorithm used everywhere (explicit: the default is slow under XLA and device-dependent)."""


@dataclasses.dataclass(frozen=True)
class NoiseModel(abc.ABC):
    """Base class of device noise models (frozen dataclasses: the fields are the parameters).

    Subclasses set ``name`` (the registry key) and implement `program`; the
    default drift is none and the default read noise is zero.
    """

    name = "base"

    def __post_init__(self) -> None:
        """Checks every numeric field: finite, >= 0 (> 0 for `_POSITIVE`; polynomial coefficients any sign)."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            values = value if isinstance(value, tuple) else (value,)
            if field.name in _POSITIVE:
                ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
                         for v in values)
                allowed = "a finite number > 0"
            elif isinstance(value, tuple):
                ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
                allowed = "finite numbers"
            else:
                ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                         for v in values)
                allowed = "a finite number >= 0"
            if not ok:
                raise SimulatorError(f"{type(self).__name__}.{field.name} must be {allowed}, got {value!r}. "
                                     f"Fix: pass {field.name}=<{allowed}>.")

    @abc.abstractmethod
    def program(self, g_target: Any, seed: Any) -> Any:
        """Programmed conductances.

        Args:
            g_target: float32 tensor of target conductances, µS.
            seed: int32 tensor of shape [2] (stateless seed).

        Returns:
            float32 tensor of ``g_target``'s shape, µS, >= 0.
        """

    def drift_coefficients(self, g_target: Any, seed: Any) -> Any:
        """Per-device drift exponents nu (dimensionless, >= 0); zeros when the device does not drift."""
        return tf.zeros_like(g_target)

    def drift(self, g_prog: Any, g_target: Any, nu: Any, t_inference: float, seed: Any) -> Any:
        """Conductances at ``t_inference`` seconds after programming (no drift by default).

        Args:
            g_prog: programmed conductances, µS.
            g_target: target conductances, µS.
            nu: `drift_coefficients` output.
            t_inference: seconds since the end of programming (Python float >= 0).
            seed: int32 [2] stateless seed.
        """
        return g_prog

    def read_sigma(self, g_prog: Any, g_drifted: Any, t_inference: float) -> Any:
        """Standard deviation of the read noise of each device, µS (zero by default).

        Args:
            g_prog: programmed conductances (`program` output), µS.
            g_drifted: the same devices at ``t_inference`` (`drift` output), µS.
            t_inference: seconds since the end of programming.
        """
        return tf.zeros_like(g_drifted)

    def read(self, g_prog: Any, g_drifted: Any, t_inference: float, seed: Any) -> Any:
        """One read of the devices at ``t_inference``: drifted conductances plus read noise, clamped at 0 µS.

        Args:
            g_prog: programmed conductances, µS.
            g_drifted: conductances at ``t_inference``, µS.
            t_inference: seconds since the end of programming.
            seed: int32 [2] stateless seed.

        Returns:
            float32 tensor of ``g_drifted``'s shape, µS, >= 0 (aihwkit clamps the same way).
        """
        noise = tf.random.stateless_normal(tf.shape(g_drifted), seed, alg=RANDOM_ALG)
        return tf.maximum(g_drifted + self.read_sigma(g_prog, g_drifted, t_inference) * noise, 0.0)

    def realize(self, g_target: Any, t_inference: float, seeds: list[Any]) -> tuple[Any, Any]:
        """Programs ``g_target`` and drifts it to ``t_inference``: the pipeline every user of a model runs.

        Args:
            g_target: target conductances, µS.
            t_inference: seconds since the end of programming.
            seeds: three stateless seeds (programming, drift exponents, drift).

        Returns:
            (programmed conductances, conductances at ``t_inference``), µS.
        """
        programmed = self.program(g_target, seeds[0])
        nu = self.drift_coefficients(g_target, seeds[1])
        return programmed, self.drift(programmed, g_target, nu, t_inference, seeds[2])

    def realise(self, g_target: Any, t_inference: float, seeds: list[Any]) -> tuple[Any, Any]:
        """Deprecated alias of `realize` (British spelling), kept for one release."""
        return self.realize(g_target, t_inference, seeds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters with the model's ``name``."""
        return {"name": self.name, **dataclasses.asdict(self)}
