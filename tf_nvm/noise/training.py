"""Noise-aware training: device noise on the device codes during ``model.fit`` (training only).

`NoiseAwareTraining` is a Keras callback that follows the hardware-aware training recipe of
Joshi et al. (Nat. Commun. 11, 2473, 2020) as aihwkit implements it (``InferenceRPUConfig``:
a weight modifier applied in the forward pass of every training step, a clean warm-up, an
epoch chosen under noise):

* **what noise** (``kind``): ``"device"`` (`DeviceNoiseTraining`): every training step sees the
  kernels of a freshly "programmed" chip of the target device (each device's conductance drawn
  by the noise model, drifted to ``t_inference``, read once with its read noise and compensated
  with the simulator's global drift-compensation factor, as `tf_nvm.simulator` does with
  ``read_noise="per-chip"``); ``"relative"`` (`RelativeGaussianTraining`): additive Gaussian
  noise of standard deviation ``relative_std * max|code|`` of each kernel (aihwkit's
  ``WeightModifierType.ADD_NORMAL`` with ``rel_to_actual_wmax``);
* **how much** (``scale``): the deviation of the device path multiplied by ``scale`` (the field
  trains with a little more noise than the device has, e.g. 1.5);
* **when** (``warmup_epochs``): noise off for the first epochs (clean training), on after;
* **which epoch** (``select_chips``): with ``select_chips = K > 0`` the callback scores every
  epoch on K fixed simulated chips of the target device at ``t_inference`` on the validation
  split (`chip_accuracy`: the training noise model applied to the codes of the Keras model,
  inference mode, no ADC) and writes their mean accuracy to the logs as ``val_chip_accuracy``;
  `tf_nvm.experiments.train.train_model` then keeps the epoch with the best ``val_chip_accuracy`` instead
  of the best noise-free ``val_accuracy``.

The gradients are the usual straight-through ones. Validation (``val_accuracy``), inference
(``training=False``), `tf_nvm.weight_codes` and both exports are unchanged: the noise exists
only in the traced training function and in the callback's own chip evaluation.

Example:
    >>> model.fit(x, y, epochs=30, validation_data=(x_val, y_val),
    ...           callbacks=[NoiseAwareTraining("pcm-like", t_inference=86400.0, scale=1.5,
    ...                                         warmup_epochs=10, select_chips=5)])
"""

import contextlib
import itertools
from typing import Any

import numpy as np

from tf_nvm.keras.backend import keras, tf
from tf_nvm.core.errors import SimulatorError
from tf_nvm.core.modes import WeightPerturbation, perturbed_training
from tf_nvm.core.spec import NVMSpec
from tf_nvm.noise import models as noise_models
from tf_nvm.noise.base import RANDOM_ALG, NoiseModel
from tf_nvm.noise.compensation import global_factor

__all__ = ["DeviceNoiseTraining", "RelativeGaussianTraining", "NoiseAwareTraining", "KINDS", "chip_accuracy",
           "CHIP_METRIC"]

KINDS = ("device", "relative")
"""Training noise: the target device's own model (`DeviceNoiseTraining`) or Gaussian relative to the
largest code of each kernel (`RelativeGaussianTraining`)."""

CHIP_METRIC = "val_chip_accuracy"
"""The log key `NoiseAwareTraining` writes (mean accuracy of the selection chips on the validation split)."""


def _number(owner, name, value, low=0, integer=False):
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or not np.isfinite(value) or value < low:
        kind = "an integer" if integer else "a number"
        raise SimulatorError(f"{owner}: {name} must be {kind} >= {low}, got {value!r}. Fix: pass {name}=<{kind} "
                             f">= {low}>.")
    return value if integer else float(value)


class _ChipSeeds:
    """Seeds of the perturbations: a fresh random chip every call (training), or one fixed chip (evaluation).

    In the fixed mode (``chip`` a `tf.Variable` of shape [2]), the k-th kernel traced draws its devices from
    ``chip + [0, 97 k]``: one traced function evaluates any chip by assigning the variable.
    """

    def __init__(self):
        self.chip = None
        self._kernels = itertools.count()

    def fix(self):
        """Switches to fixed chips (evaluation): returns the chip variable."""
        self.chip = tf.Variable([0, 0], dtype=tf.int32, trainable=False)
        return self.chip

    def next(self):
        if self.chip is None:
            return tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int32)  # a new chip every step
        return self.chip + tf.constant([0, 97], tf.int32) * next(self._kernels)


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

    inference = False
    """True: the quantizers apply the perturbation at inference too (the callback's chip evaluation only)."""

    def __init__(self, noise: str | NoiseModel = "pcm-like", t_inference: float = 0.0, scale: float = 1.0) -> None:
        self.model = noise_models.get(noise)
        if not isinstance(t_inference, (int, float)) or isinstance(t_inference, bool) or t_inference < 0:
            raise SimulatorError(f"DeviceNoiseTraining: t_inference must be a number >= 0 (seconds), got "
                                 f"{t_inference!r}. Fix: pass e.g. t_inference=3600.0.")
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale >= 0:
            raise SimulatorError(f"DeviceNoiseTraining: scale must be a number >= 0, got {scale!r}.")
        self.t_inference = float(t_inference)
        self.scale = float(scale)
        self.seeds = _ChipSeeds()

    def _devices(self, levels, spec, seed):
        """Target levels -> (programmed, read) deviations from them, level units ``(g - g_target) / dG``.

        The read is at ``t_inference``: drift plus one draw of the read noise (from the programmed
        conductance, clamped at 0 µS), as the simulator's ``per-chip`` read noise.
        """
        step = spec.level_step_us
        target = float(spec.g_min_us) + levels * step
        programmed, drifted = self.model.realize(target, self.t_inference, [seed, seed + 1, seed + 2])
        read = self.model.read(programmed, drifted, self.t_inference, seed + 3)
        return (programmed - target) / step, (read - target) / step

    def perturb(self, codes: Any, spec: NVMSpec) -> Any:
        """One programmed chip's compensated weights (level units) for the device ``codes``."""
        kind = spec.mapping_kind
        seed = self.seeds.next()
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


class RelativeGaussianTraining(WeightPerturbation):
    """Additive Gaussian noise relative to the largest code of each kernel (aihwkit ``ADD_NORMAL``).

    ``codes + relative_std * max|codes| * N(0, 1)``, drawn independently per weight at every
    call (every training step), ``max`` over the kernel (one crossbar layer), as aihwkit's weight
    modifier with ``rel_to_actual_wmax=True``. In level units of the effective weight.

    Args:
        relative_std: standard deviation relative to the kernel's largest |code| (aihwkit's examples: 0.02-0.1).
    """

    inference = False

    def __init__(self, relative_std: float = 0.05) -> None:
        self.relative_std = _number("RelativeGaussianTraining", "relative_std", relative_std)
        self.seeds = _ChipSeeds()

    def perturb(self, codes: Any, spec: NVMSpec) -> Any:
        """``codes`` plus Gaussian noise of ``relative_std * max|codes|`` (level units)."""
        noise = tf.random.stateless_normal(tf.shape(codes), self.seeds.next(), alg=RANDOM_ALG)
        return codes + self.relative_std * tf.reduce_max(tf.abs(codes)) * noise


def chip_accuracy(model: Any, x: np.ndarray, y: np.ndarray, perturbation: WeightPerturbation, chips: int, seed: int = 0,
                  batch_size: int = 512) -> float:
    """Accuracy of ``model`` on ``chips`` programmed chips (the perturbation's noise, inference mode), numpy.

    The perturbation is applied to every NVM kernel of the Keras model in inference mode (BatchNorm
    statistics and dropout as at inference); the same ``seed`` gives the same chips. No ADC or DAC:
    the crossbar simulator (`tf_nvm.simulator.monte_carlo` on the exported mapping) is the reference.

    Args:
        model: NVM classifier (logits outputs).
        x: inputs (standardised), numpy.
        y: integer labels, numpy.
        perturbation: a fresh `DeviceNoiseTraining` (or `RelativeGaussianTraining`); switched to fixed chips.
        chips: number of chips (int >= 1).
        seed: base seed of the chips.
        batch_size: examples per forward pass.

    Returns:
        float32 numpy array [chips]: the accuracy of each chip.
    """
    return _ChipScorer(model, perturbation, x.shape[1:])(x, y, chips, seed, batch_size)


class _ChipScorer:
    """One traced inference function of ``model`` whose NVM kernels are perturbed by fixed, seeded chips."""

    def __init__(self, model, perturbation, input_shape):
        perturbation.inference = True
        self.chip = perturbation.seeds.fix()
        forward = tf.function(lambda x: model(x, training=False))
        with perturbed_training(perturbation):  # read at trace time: trace once, here
            self.forward = forward.get_concrete_function(tf.TensorSpec([None, *input_shape], tf.float32))

    def __call__(self, x, y, chips, seed, batch_size):
        accuracy = np.zeros(chips, np.float32)
        for chip in range(chips):
            self.chip.assign([int(seed) % (2 ** 31 - 1), 1009 * chip])
            correct = 0
            for start in range(0, len(x), batch_size):
                logits = self.forward(tf.constant(x[start:start + batch_size], tf.float32))
                correct += int(np.sum(np.argmax(logits.numpy(), axis=-1) == y[start:start + batch_size]))
            accuracy[chip] = correct / max(len(x), 1)
        return accuracy


class NoiseAwareTraining(keras.callbacks.Callback):
    """Keras callback: ``fit`` trains through device noise (see the module docstring).

    Args:
        noise: the target device: a noise preset name (``tf_nvm.noise.PRESETS``) or a `tf_nvm.noise.NoiseModel`.
        t_inference: seconds after programming (drift) of the target read, >= 0 (training and selection).
        scale: multiplies the device path's deviations (``kind="device"``), >= 0.
        kind: one of `KINDS`.
        relative_std: ``kind="relative"``: noise standard deviation relative to each kernel's largest |code|.
        warmup_epochs: epochs trained without noise before it is switched on (0: noise from the start).
        select_chips: K > 0: score every epoch on K chips of the target device on ``validation_data`` and
            write ``val_chip_accuracy`` (the selection metric of `tf_nvm.experiments.train.train_model`); 0: off.
        validation_data: ``(x_val, y_val)`` numpy arrays for the chip scores (required when ``select_chips``).
        select_seed: seed of the selection chips (the same chips every epoch).
    """

    def __init__(self, noise: str | NoiseModel = "pcm-like", t_inference: float = 0.0, scale: float = 1.0,
                 kind: str = "device", relative_std: float = 0.05, warmup_epochs: int = 0, select_chips: int = 0,
                 validation_data: tuple[np.ndarray, np.ndarray] | None = None, select_seed: int = 0) -> None:
        super().__init__()
        if kind not in KINDS:
            raise SimulatorError(f"NoiseAwareTraining: kind must be one of {list(KINDS)}, got {kind!r}. Fix: pass "
                                 "kind=\"device\" (the target device's noise) or \"relative\" (Gaussian relative "
                                 "to each kernel's largest code).")
        self.warmup_epochs = _number("NoiseAwareTraining", "warmup_epochs", warmup_epochs, integer=True)
        self.select_chips = _number("NoiseAwareTraining", "select_chips", select_chips, integer=True)
        if self.select_chips and validation_data is None:
            raise SimulatorError(f"NoiseAwareTraining: select_chips={select_chips} needs validation_data=(x_val, "
                                 "y_val). Fix: pass the validation split, or select_chips=0.")
        self.device = (noise, float(t_inference))
        self.perturbation = (DeviceNoiseTraining(noise, t_inference, scale) if kind == "device"
                             else RelativeGaussianTraining(relative_std))
        if self.select_chips:  # fail early on a bad device rather than at the end of the first epoch
            DeviceNoiseTraining(noise, t_inference)
        self.validation_data = validation_data
        self.select_seed = int(select_seed)
        self.noisy_epochs: list[int] = []
        self._context: contextlib.ExitStack | None = None
        self._scorer: _ChipScorer | None = None

    @property
    def monitor(self) -> str | None:
        """The metric `tf_nvm.experiments.train.train_model` selects the epoch by: ``val_chip_accuracy``, or None
        (its own)."""
        return CHIP_METRIC if self.select_chips else None

    def _switch_on(self):
        self._context = contextlib.ExitStack()
        self._context.enter_context(perturbed_training(self.perturbation))
        self.model.train_function = self.model.make_train_function(force=True)  # traced inside the context

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.noisy_epochs = []
        self._scorer = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._context is None and epoch >= self.warmup_epochs:
            self._switch_on()
        if self._context is not None:
            self.noisy_epochs.append(epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        data = self.validation_data  # not None when select_chips (checked in __init__)
        if not self.select_chips or logs is None or data is None:
            return
        if self._scorer is None:
            x_val = np.asarray(data[0])
            self._scorer = _ChipScorer(self.model, DeviceNoiseTraining(*self.device), x_val.shape[1:])
        x_val, y_val = data
        logs[CHIP_METRIC] = float(np.mean(self._scorer(np.asarray(x_val), np.asarray(y_val), self.select_chips,
                                                       self.select_seed, 512)))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None
        self._scorer = None
        self.model.train_function = None  # the next fit traces a clean training function again
