"""ReRAM devices: the conductance-dependent spread measured by Wan et al., Nature 608 (2022), as fitted in aihwkit.

aihwkit's ``ReRamWan2022NoiseModel`` approximates the published figures of
Wan et al. ("A compute-in-memory chip based on resistive random-access
memory", Nature 2022) with a 4th-order polynomial of the deviation from the
target conductance, in µS, at three times after programming (g_max = 40 µS)::

    sigma(g, t) = sum_i c_i(t) (g / g_max)^i
    t = 1 s:   c = ( 0.348, 16.030, -43.853, 45.393, -16.815)
    t = 1 day: c = ( 0.701, 22.086, -50.773, 47.095, -16.458)
    t = 2 days: c = (0.782, 20.274, -43.507, 37.062, -11.934)

ReRAM does not drift in the PCM sense: the programmed state relaxes around
the target. As in aihwkit, programming draws the 1-s spread around the target,
and a later ``t_inference`` draws the spread of that time around the target
(only the three fitted times are allowed). No separate read (1/f) noise was
published (aihwkit suggests about 1 % of additive weight noise per read:
``read_sigma_relative``).
"""

import dataclasses
from typing import Any

from tf_nvm.keras.backend import tf
from tf_nvm.core.errors import SimulatorError
from tf_nvm.noise.base import RANDOM_ALG, NoiseModel

__all__ = ["ReRAMNoise", "WAN2022_COEFFICIENTS"]

WAN2022_COEFFICIENTS = {
    1.0: (0.348, 16.030, -43.853, 45.393, -16.815),
    86400.0: (0.701, 22.086, -50.773, 47.095, -16.458),
    172800.0: (0.782, 20.274, -43.507, 37.062, -11.934),
}
"""Seconds after programming -> polynomial coefficients (increasing powers of g/g_max), µS at g_max = 40 µS."""

_G_MAX_REFERENCE = 40.0


@dataclasses.dataclass(frozen=True)
class ReRAMNoise(NoiseModel):
    """Wan et al. (2022) ReRAM spread around the target conductance.

    Attributes:
        g_max_us: the largest programmable conductance, µS (the fit's 40 µS; other values rescale sigma).
        noise_scale: scale of the spread (1 = published).
        read_sigma_relative: per-read noise relative to the conductance (0.01 ~ aihwkit's suggested 1 %).
    """

    g_max_us: float = 40.0
    noise_scale: float = 1.0
    read_sigma_relative: float = 0.0

    name = "reram-like"

    def sigma(self, g_target: Any, t_seconds: float) -> Any:
        """Spread (µS) around ``g_target`` at ``t_seconds`` (one of `WAN2022_COEFFICIENTS`)."""
        if float(t_seconds) not in WAN2022_COEFFICIENTS:
            raise SimulatorError(
                f"reram-like noise: t_inference={t_seconds!r} s is not one of the fitted times "
                f"{sorted(WAN2022_COEFFICIENTS)} s (1 s, 1 day, 2 days; Wan et al. 2022). Fix: use one of them.")
        relative = g_target / self.g_max_us
        sigma = tf.zeros_like(g_target)
        for power, coefficient in enumerate(WAN2022_COEFFICIENTS[float(t_seconds)]):
            sigma = sigma + coefficient * tf.pow(relative, float(power))
        return tf.maximum(sigma, 0.0) * (self.g_max_us / _G_MAX_REFERENCE)

    def _draw(self, g_target, t_seconds, seed):
        noise = tf.random.stateless_normal(tf.shape(g_target), seed, alg=RANDOM_ALG)
        return tf.maximum(g_target + self.noise_scale * self.sigma(g_target, t_seconds) * noise, 0.0)

    def program(self, g_target: Any, seed: Any) -> Any:
        return self._draw(g_target, 1.0, seed)

    def drift(self, g_prog: Any, g_target: Any, nu: Any, t_inference: float, seed: Any) -> Any:
        if float(t_inference) <= 1.0:
            return g_prog
        return self._draw(g_target, t_inference, seed)

    def read_sigma(self, g_prog: Any, g_drifted: Any, t_inference: float) -> Any:
        return self.read_sigma_relative * tf.abs(g_drifted)
