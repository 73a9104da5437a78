"""Noise-aware training: the simulator's device noise applied to the device codes during ``model.fit``.

`NoiseAwareTraining` is a Keras callback: during ``fit`` every training step
sees the kernels of a freshly "programmed" chip (each device's conductance
drawn by the noise model, drifted to ``t_inference``, read once with its read
noise and compensated with the simulator's global drift-compensation factor,
as `tf_nvm.simulator` does with ``read_noise="per-chip"``), while the gradients are the usual
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
from tf_nvm.noise.compensation import global_factor

__all__ = ["DeviceNoiseTraining", "NoiseAwareTraining"]


class DeviceNoiseTraining(WeightPerturbation):
    """Perturbs device codes with a noise model's programming noise, drift and read noise (a `WeightPerturbation`).

    Every call draws a new chip: programmed, drifted to ``t_inference``, read once (read noise
    from the programmed conductance, clamped at 0 µS) and compensated with the simulator's
    factor (`tf_nvm.noise.compensation.global_factor` over the kernel's effective weights).

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

    def _devices(self, levels, spec, seed):
        """Target levels -> (programmed, read) deviations from them, level units ``(g - g_target) / dG``.

        The read is at ``t_inference``: drift plus one draw of the read noise (from the programmed
        conductance, clamped at 0 µS), as the simulator's ``per-chip`` read noise.
        """
        step = spec.level_step_us
        target = float(spec.g_min_us) + levels * step
        programmed, drifted = self.model.realise(target, self.t_inference, [seed, seed + 1, seed + 2])
        read = self.model.read(programmed, drifted, self.t_inference, seed + 3)
        return (programmed - target) / step, (read - target) / step

    def perturb(self, codes, spec):
        """One freshly programmed chip's compensated weights (level units) for the device ``codes``."""
        kind = spec.mapping_kind
        seed = tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int32)  # a new chip every step
        if kind == "differential":
            plus_prog, plus_read = self._devices(tf.maximum(codes, 0.0), spec, seed)
            minus_prog, minus_read = self._devices(tf.maximum(-codes, 0.0), spec, seed + 4)
            prog_dev, read_dev = plus_prog - minus_prog, plus_read - minus_read
        elif kind == "unipolar":
            prog_dev, read_dev = self._devices(codes, spec, seed)
        else:  # offset: the weight device only; the reference column is not perturbed
            prog_dev, read_dev = self._devices(codes - spec.code_min, spec, seed)
        # the simulator's global drift compensation: the same readout ratio, one factor per kernel
        # (exactly 1 for ideal devices, so ideal devices return the codes unchanged)
        alpha = global_factor(codes + prog_dev, codes + read_dev)
        return codes + self.scale * (alpha * (codes + read_dev) - codes)


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
