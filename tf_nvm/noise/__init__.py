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

from tf_nvm.noise.base import RANDOM_ALG, NoiseModel
from tf_nvm.noise.gaussian import GaussianNoise
from tf_nvm.noise.lognormal import LognormalNoise
from tf_nvm.noise.models import MODELS, PRESETS, from_dict, get
from tf_nvm.noise.pcm import PCMLikeNoise
from tf_nvm.noise.reram import ReRAMNoise

__all__ = ["NoiseModel", "GaussianNoise", "LognormalNoise", "PCMLikeNoise", "ReRAMNoise", "PRESETS", "MODELS",
           "get", "from_dict", "RANDOM_ALG"]
