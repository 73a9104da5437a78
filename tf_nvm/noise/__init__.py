"""Device noise models over conductances, one per file, and named presets.

Every model follows one contract (`NoiseModel`: program, drift coefficients,
drift, per-read sigma; conductances in µS, times in seconds) and draws its
randomness from explicit stateless seeds. `PRESETS` names ready-made devices:

* ``ideal``: no noise (`GaussianNoise` with zero sigmas).
* ``pcm-like``: aihwkit's ``PCMLikeNoiseModel`` constants (Nandakumar et al.,
  ICECS 2019; Joshi et al., Nat. Commun. 11, 2473, 2020), g_max = 25 µS.
* ``pcm-prog-x12``: a harsh PCM device, ``pcm-like`` with 12 times the programming noise
  (``prog_noise_scale=12``): plain HAR models lose several points after a day on it, so
  ``benchmarks/noise_aware.py`` measures noise-aware training there
  (``docs/results/noise-aware/``).
* ``reram-like``: aihwkit's ``ReRamWan2022NoiseModel`` fit of Wan et al.,
  Nature 608, 504 (2022), rescaled to g_max = 25 µS, with 1 % per-read noise
  (aihwkit's suggestion for the short-term read noise the paper does not give).

Example:
    >>> from tf_nvm import noise
    >>> noise.get("pcm-like").prog_noise_scale
    1.0
"""

from tf_nvm.core.errors import SimulatorError
from tf_nvm.noise.base import RANDOM_ALG, NoiseModel
from tf_nvm.noise.gaussian import GaussianNoise
from tf_nvm.noise.lognormal import LognormalNoise
from tf_nvm.noise.pcm import PCMLikeNoise
from tf_nvm.noise.reram import ReRAMNoise
from tf_nvm.core.noise_presets import NOISE_PRESETS
from tf_nvm.core.registry import Registry

__all__ = ["NoiseModel", "GaussianNoise", "LognormalNoise", "PCMLikeNoise", "ReRAMNoise", "PRESETS", "MODELS",
           "get", "from_dict", "RANDOM_ALG"]

MODELS = Registry("noise model", error=SimulatorError, fix="use one of the noise model names")
"""Noise model name -> class (for `from_dict`)."""
for _cls in (GaussianNoise, LognormalNoise, PCMLikeNoise, ReRAMNoise):
    MODELS.register(_cls.name, _cls)

PRESETS = Registry("noise preset", error=SimulatorError, fix="run `tf-nvm simulate --help` for the presets")
"""Preset name -> `NoiseModel` instance (built from `tf_nvm.core.noise_presets.NOISE_PRESETS`)."""
for _name, (_model, _arguments, _description) in NOISE_PRESETS.items():  # one table, read without TensorFlow
    PRESETS.register(_name, MODELS.get(_model)(**_arguments), description=_description)


def get(name_or_model):
    """A `NoiseModel` from a preset name (a model is returned unchanged).

    Raises:
        SimulatorError: unknown preset (the message lists the known ones).
    """
    return PRESETS.resolve(name_or_model, NoiseModel)


def from_dict(data):
    """Builds a model from `NoiseModel.to_dict` output.

    Raises:
        SimulatorError: not a dict, unknown model name or fields.
    """
    if not isinstance(data, dict) or "name" not in data:
        raise SimulatorError(f"noise model: expected a dict with 'name', got {str(data)[:80]}. Fix: pass "
                             "NoiseModel.to_dict() output or a preset name.")
    fields = dict(data)
    cls = MODELS.get(fields.pop("name"))
    try:
        return cls(**fields)
    except TypeError as err:
        raise SimulatorError(f"noise model {cls.name!r}: {err}. Fix: use the fields of {cls.__name__}.") from None
