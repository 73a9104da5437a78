"""The named device-noise presets as data (name -> noise model name, its arguments, one line of description), and
the read-noise modes.

`tf_nvm.noise.PRESETS` builds its models from this table (the models need
TensorFlow); the command line and the experiment recipes check a preset name
against `names` before TensorFlow loads. A new preset is one entry here.

This module imports nothing (foundation layer).
"""

__all__ = ["NOISE_PRESETS", "READ_NOISE_MODES", "names"]

READ_NOISE_MODES = ("per-read", "per-chip", "off")
"""How read noise is drawn: fresh at every read, once per chip at t_inference (aihwkit), or not at all
(`tf_nvm.simulator.DeviceConfig.read_noise`)."""

NOISE_PRESETS = {
    "ideal": ("gaussian", {}, "no device noise"),
    "pcm-like": ("pcm-like", {}, "PCM: aihwkit PCMLikeNoiseModel constants (Joshi 2020)"),
    "pcm-prog-x12": ("pcm-like", {"prog_noise_scale": 12.0},
                     "harsh PCM: pcm-like with 12x the programming noise (the noise-aware training benchmark)"),
    "reram-like": ("reram-like", {"g_max_us": 25.0, "read_sigma_relative": 0.01},
                   "ReRAM: Wan et al. Nature 2022 spread (aihwkit fit), 1 % read noise"),
}
"""Preset name -> (`tf_nvm.noise.MODELS` name, keyword arguments of that model (µS, s), description)."""


def names():
    """Preset names, sorted (the names of `tf_nvm.noise.PRESETS`)."""
    return sorted(NOISE_PRESETS)
