"""The noise-model registries: model classes by name (`MODELS`) and ready-made devices (`PRESETS`).

`get` resolves a preset name (or returns a model unchanged), `from_dict` rebuilds a model from
`NoiseModel.to_dict`. The presets' table (`tf_nvm.core.noise_presets.NOISE_PRESETS`) is read without
TensorFlow; the models themselves are TensorFlow functions. `tf_nvm.noise` re-exports every name.
"""

from typing import Any

from tf_nvm.core.errors import SimulatorError
from tf_nvm.core.noise_presets import NOISE_PRESETS
from tf_nvm.core.registry import Registry
from tf_nvm.noise.base import NoiseModel
from tf_nvm.noise.gaussian import GaussianNoise
from tf_nvm.noise.lognormal import LognormalNoise
from tf_nvm.noise.pcm import PCMLikeNoise
from tf_nvm.noise.reram import ReRAMNoise

__all__ = ["MODELS", "PRESETS", "get", "from_dict"]

MODELS = Registry("noise model", error=SimulatorError, fix="use one of the noise model names")
"""Noise model name -> class (for `from_dict`)."""
for _cls in (GaussianNoise, LognormalNoise, PCMLikeNoise, ReRAMNoise):
    MODELS.register(_cls.name, _cls)

PRESETS = Registry("noise preset", error=SimulatorError, fix="run `tf-nvm simulate --help` for the presets")
"""Preset name -> `NoiseModel` instance (built from `tf_nvm.core.noise_presets.NOISE_PRESETS`)."""
for _name, (_model, _arguments, _description) in NOISE_PRESETS.items():  # one table, read without TensorFlow
    PRESETS.register(_name, MODELS.get(_model)(**_arguments), description=_description)


def get(name_or_model: str | NoiseModel) -> NoiseModel:
    """A `NoiseModel` from a preset name (a model is returned unchanged).

    Raises:
        SimulatorError: unknown preset (the message lists the known ones).
    """
    return PRESETS.resolve(name_or_model, NoiseModel)


def from_dict(data: dict[str, Any]) -> NoiseModel:
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
