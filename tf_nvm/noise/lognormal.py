"""Lognormal (multiplicative) programming noise: spread proportional to the conductance."""

import dataclasses
from typing import Any

from tf_nvm.keras.backend import tf
from tf_nvm.noise.base import RANDOM_ALG, NoiseModel

__all__ = ["LognormalNoise"]


@dataclasses.dataclass(frozen=True)
class LognormalNoise(NoiseModel):
    """Every device is programmed to ``g_target * exp(N(0, prog_sigma^2))`` (median at the target).

    Attributes:
        prog_sigma: standard deviation of log(g_prog / g_target), dimensionless, >= 0.
        read_sigma_relative: per-read noise standard deviation relative to the conductance, >= 0.
    """

    prog_sigma: float = 0.0
    read_sigma_relative: float = 0.0

    name = "lognormal"

    def program(self, g_target: Any, seed: Any) -> Any:
        noise = tf.random.stateless_normal(tf.shape(g_target), seed, alg=RANDOM_ALG)
        return g_target * tf.exp(self.prog_sigma * noise)

    def read_sigma(self, g_prog: Any, g_drifted: Any, t_inference: float) -> Any:
        return self.read_sigma_relative * tf.abs(g_drifted)
