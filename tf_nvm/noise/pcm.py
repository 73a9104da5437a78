"""PCM-like devices: aihwkit's ``PCMLikeNoiseModel`` (Nandakumar et al., ICECS 2019; Joshi et al., Nat. Commun. 2020).

The published constants, with aihwkit's names (conductances in µS, relative to
``g_max``; fitted for g_max = 25 µS and rescaled by ``g_max / 25`` otherwise):

* programming noise: Gaussian with
  ``sigma_prog = (c0 + c1 (g/g_max) + c2 (g/g_max)^2) * g_max/25``,
  ``prog_coeff = (0.26348, 1.9650, -1.1731)``, clipped at 0 µS;
* drift: ``g(t) = g_prog * ((t + t0) / t0)^(-nu)``, ``t0 = 20 s``, with per-device
  ``nu ~ |N(mu_nu, sigma_nu^2)|``,
  ``mu_nu = clip(-0.0155 ln(g_r) + 0.0244, 0.049, 0.1)``,
  ``sigma_nu = clip(-0.0125 ln(g_r) - 0.0059, 0.008, 0.045)``, ``g_r = max(g/g_max, 1e-7)``;
* read (1/f) noise accumulated up to the read:
  ``sigma_read = |g(t)| * Q_s * sqrt(ln((t + t0 + t_read) / (2 t_read)))``,
  ``Q_s = min(0.0088 / max((|g_prog|/g_max)^0.65, 1e-3), 0.2)``, ``t_read = 250 ns``.

As in aihwkit, ``t_inference`` counts from the end of programming (so the
drift factor uses ``t = t_inference + t0``), the noise amplitude ``Q_s`` is a
function of the programmed conductance ``g_prog`` while the noise scales with the
drifted one, and a read conductance is clamped at 0 µS (`NoiseModel.read`).
aihwkit draws the read noise once per drifted weight set; the simulator draws it
at every read by default (``DeviceConfig.read_noise``; ``read_noise_scale=0``
switches it off).
"""

import dataclasses
import math
from typing import Any

from tf_nvm.keras.backend import tf
from tf_nvm.noise.base import RANDOM_ALG, NoiseModel

__all__ = ["PCMLikeNoise"]

_PROG_COEFF = (0.26348, 1.9650, -1.1731)
_PROG_COEFF_G_MAX = 25.0


@dataclasses.dataclass(frozen=True)
class PCMLikeNoise(NoiseModel):
    """PCM programming noise, drift and 1/f read noise with aihwkit's published constants.

    Attributes:
        g_max_us: the largest programmable conductance, µS (aihwkit: 25).
        prog_coeff: programming-noise polynomial coefficients (µS at g_max = 25 µS).
        t0_s: drift reference time t0, seconds (20).
        t_read_s: read time of the 1/f fit, seconds (250e-9).
        prog_noise_scale: scale of the programming noise (1 = published).
        read_noise_scale: scale of the read noise (1 = published).
        drift_scale: scale of the drift exponents (1 = published).
    """

    g_max_us: float = 25.0
    prog_coeff: tuple = _PROG_COEFF
    t0_s: float = 20.0
    t_read_s: float = 250e-9
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0

    name = "pcm-like"

    def prog_sigma(self, g_target: Any) -> Any:
        """Programming-noise standard deviation (µS) at ``g_target`` (µS)."""
        relative = g_target / self.g_max_us
        sigma = self.prog_coeff[0] + self.prog_coeff[1] * relative + self.prog_coeff[2] * relative * relative
        return sigma * (self.g_max_us / _PROG_COEFF_G_MAX)

    def program(self, g_target: Any, seed: Any) -> Any:
        noise = tf.random.stateless_normal(tf.shape(g_target), seed, alg=RANDOM_ALG)
        return tf.maximum(g_target + self.prog_noise_scale * self.prog_sigma(g_target) * noise, 0.0)

    def drift_coefficients(self, g_target: Any, seed: Any) -> Any:
        relative = tf.maximum(tf.abs(g_target / self.g_max_us), 1e-7)
        mean = tf.clip_by_value(-0.0155 * tf.math.log(relative) + 0.0244, 0.049, 0.1)
        std = tf.clip_by_value(-0.0125 * tf.math.log(relative) - 0.0059, 0.008, 0.045)
        noise = tf.random.stateless_normal(tf.shape(g_target), seed, alg=RANDOM_ALG)
        return tf.abs(mean + std * noise) * self.drift_scale

    def drift(self, g_prog: Any, g_target: Any, nu: Any, t_inference: float, seed: Any) -> Any:
        t = float(t_inference) + self.t0_s
        if t <= self.t0_s:
            return g_prog
        return g_prog * tf.pow(tf.constant(t / self.t0_s, tf.float32), -nu)

    def read_sigma(self, g_prog: Any, g_drifted: Any, t_inference: float) -> Any:
        """``|g_drifted| * Q_s(g_prog) * sqrt(ln((t + t_read) / (2 t_read)))``, µS (aihwkit's formula).

        ``Q_s`` is taken at the *programmed* conductance: taking it at the drifted one (as tf_nvm 0.2.0
        did) makes sigma ``(t / t0)^(0.65 nu)`` times larger, 1.18x at 1 h and 1.31x at 1 day
        for the slowest-drifting devices.
        """
        t = float(t_inference) + self.t0_s
        q_s = tf.minimum(0.0088 / tf.maximum(tf.pow(tf.abs(g_prog) / self.g_max_us, 0.65), 1e-3), 0.2)
        spread = math.sqrt(math.log((t + self.t_read_s) / (2 * self.t_read_s)))
        return self.read_noise_scale * tf.abs(g_drifted) * q_s * spread
