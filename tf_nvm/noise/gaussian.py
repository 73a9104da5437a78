"""Conductance-independent Gaussian programming and read noise (the simplest device model)."""

import dataclasses
from typing import Any

from tf_nvm.keras.backend import tf
from tf_nvm.noise.base import RANDOM_ALG, NoiseModel

__all__ = ["GaussianNoise"]


@dataclasses.dataclass(frozen=True)
class GaussianNoise(NoiseModel):
    """Every device is programmed to ``g_target + N(0, prog_sigma_us^2)`` and read with ``N(0, read_sigma_us^2)``.

    Attributes:
        prog_sigma_us: programming (write) noise standard deviation, µS, >= 0.
        read_sigma_us: per-read noise standard deviation, µS, >= 0.
    """

    prog_sigma_us: float = 0.0
    read_sigma_us: float = 0.0

    name = "gaussian"

    def program(self, g_target: Any, seed: Any) -> Any:
        noise = tf.random.stateless_normal(tf.shape(g_target), seed, alg=RANDOM_ALG)
        return tf.maximum(g_target + self.prog_sigma_us * noise, 0.0)

    def read_sigma(self, g_prog: Any, g_drifted: Any, t_inference: float) -> Any:
        return tf.fill(tf.shape(g_drifted), tf.constant(self.read_sigma_us, tf.float32))
