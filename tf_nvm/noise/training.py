"""Noise-aware training: the simulator's device noise applied to the device codes during ``model.fit``.

`NoiseAwareTraining` is a Keras callback: during ``fit`` every training step
sees the kernels of a freshly "programmed" chip (each device's conductance
drawn by the noise model, drifted to ``t_inference`` and globally
compensated, as `tf_nvm.simulator` does), while the gradients are the usual
straight-through ones. Validation, inference (``training=False``),
`tf_nvm.weight_codes` and both exports are unchanged: the noise exists only in
the traced training function.

Example:
    >>> model.fit(x, y, epochs=30, callbacks=[NoiseAwareTraining("pcm-like", t_inference=3600.0)])
"""

import contextlib

from tf_nvm import noise as noise_models
from tf_nvm._keras import keras, tf
from tf_nvm.errors import SimulatorError
from tf_nvm.modes import WeightPerturbation, perturbed_training

__all__ = ["DeviceNoiseTraining", "NoiseAwareTraining"]


class DeviceNoiseTraining(WeightPerturbation):
    """Perturbs device codes with a noise model's programming noise and drift (a `WeightPerturbation`).

    Args:
        noise: a noise preset name or `tf_nvm.noise.NoiseModel`.
        t_inference: seconds after programming at which the chip is assumed to be read.
        scale: multiplies the conductance deviation (1 = the model's noise).
    """

    def __init__(self, noise="pcm-like", t_inference=0.0, scale=1.0):
        self.model = noise_models.get(noise)
        if not isinstance(t_inference, (int, float)) or isinstance(t_inference, bool) or t_inference < 0:
            raise SimulatorError(f"DeviceNoiseTraining: t_inference must be a number >= 0 (seconds), got "
                                 f"{t_inference!r}. Fix: pass e.g. t_inference=3600.0.")
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale >= 0:
            raise SimulatorError(f"DeviceNoiseTraining: scale must be a number >= 0, got {scale!r}.")
        self.t_inference = float(t_inference)
        self.scale = float(scale)

    def _levels(self, levels, spec):
        """Target levels -> the levels one programmed, drifted, compensated device realises."""
        step = spec.level_step_us
        target = spec.g_min_us + levels * step
        seed = tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int32)  # a new chip every step
        programmed, drifted = self.model.realise(target, self.t_inference, [seed, seed + 1, seed + 2])
        alpha = tf.reduce_sum(programmed) / tf.maximum(tf.reduce_sum(drifted), 1e-12)  # global drift compensation
        return levels + self.scale * (alpha * drifted - target) / step

    def perturb(self, codes, spec):
        kind = spec.mapping_kind
        if kind == "unipolar":
            return self._levels(codes, spec)
        if kind == "differential":
            return self._levels(tf.maximum(codes, 0.0), spec) - self._levels(tf.maximum(-codes, 0.0), spec)
        return self._levels(codes - spec.code_min, spec) + spec.code_min  # offset: the weight device only


class NoiseAwareTraining(keras.callbacks.Callback):
    """Keras callback: ``fit`` trains through device noise (see the module docstring).

    Args:
        noise: a noise preset name (``tf_nvm.noise.PRESETS``) or a `tf_nvm.noise.NoiseModel`.
        t_inference: seconds after programming (drift), >= 0.
        scale: multiplies the conductance deviations.
    """

    def __init__(self, noise="pcm-like", t_inference=0.0, scale=1.0):
        super().__init__()
        self.perturbation = DeviceNoiseTraining(noise, t_inference, scale)
        self._context = None

    def on_train_begin(self, logs=None):
        self._context = contextlib.ExitStack()
        self._context.enter_context(perturbed_training(self.perturbation))
        self.model.train_function = self.model.make_train_function(force=True)  # traced inside the context

    def on_train_end(self, logs=None):
        if self._context is not None:
            self._context.close()
            self._context = None
        self.model.train_function = None  # the next fit traces a clean training function again
