"""tfmot `Quantizer` objects on the ONE shared weight scale and activation range.

Each quantizer holds only its configuration (the spec as a dict); it creates no
variables, because nothing about the grid is per-layer.

Weights (straight-through estimator, STE)::

    code  = clip(round(w / s), code_min, code_max)      # integer device code
    w_q   = w + stop_gradient(code * s - w)               # forward: code*s, backward: identity
    w_out = fake_quant(w_q, min=-127 s, max=127 s, bits=8, narrow_range=True)

The last step changes no value (``code*s`` already lies on that grid) but tells
the TFLite converter to store scale ``s``, zero point 0 and exactly the codes,
non-negative codes included (a [0, max] fake-quant range converts to a zero
point every runtime rejects; see docs in stack notes). The latent float ``w``
is kept inside ``[(code_min-1/2) s, (code_max+1/2) s]`` by `NVMKernelConstraint`.

Activations: ``fake_quant(x, min=-A, max=A*127/128, bits=8)``: 256 levels of
step A/128 with zero exactly at code 0, identical in Keras and TFLite.
"""

from tf_nvm._keras import tf, tfmot
from tf_nvm.registry import register
from tf_nvm.spec import NVMSpec

__all__ = [
    "NVMWeightQuantizer",
    "NVMBiasQuantizer",
    "NVMActivationQuantizer",
    "ProbabilityQuantizer",
    "snap_to_codes",
]

_Quantizer = tfmot.quantization.keras.quantizers.Quantizer


def snap_to_codes(weights, spec):
    """Integer device codes of float ``weights`` on the spec's shared scale.

    Args:
        weights: float tensor or array (model units).
        spec: a resolved `NVMSpec` (``weight_scale`` set).

    Returns:
        float tensor of integer-valued codes in ``[spec.code_min, spec.code_max]``.
    """
    return tf.clip_by_value(tf.round(weights / spec.weight_scale), spec.code_min, spec.code_max)


class _SpecQuantizer(_Quantizer):
    """Base: a quantizer configured by one resolved `NVMSpec` and nothing else."""

    def __init__(self, spec):
        self.spec = spec if isinstance(spec, NVMSpec) else NVMSpec.from_dict(spec)

    def build(self, tensor_shape, name, layer):
        return {}

    def get_config(self):
        return {"spec": self.spec.to_dict()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.spec.to_dict().items()))))


@register
class NVMWeightQuantizer(_SpecQuantizer):
    """Snaps a kernel to ``code * s`` with device codes in the spec's code range."""

    def __call__(self, inputs, training, weights, **kwargs):
        s = self.spec.weight_scale
        snapped = snap_to_codes(inputs, self.spec) * s
        ste = inputs + tf.stop_gradient(snapped - inputs)
        return tf.quantization.fake_quant_with_min_max_vars(
            ste, min=tf.constant(-127.0 * s), max=tf.constant(127.0 * s), num_bits=8, narrow_range=True)


@register
class NVMBiasQuantizer(_SpecQuantizer):
    """Rounds a (digital) bias to the int32 grid TFLite stores it on: step (A/128)*s."""

    def __call__(self, inputs, training, weights, **kwargs):
        step = self.spec.activation_step * self.spec.weight_scale
        return inputs + tf.stop_gradient(tf.round(inputs / step) * step - inputs)


@register
class NVMActivationQuantizer(_SpecQuantizer):
    """Fake-quantizes activations on the shared 8-bit grid [-A, A*127/128]."""

    def __call__(self, inputs, training, weights, **kwargs):
        return tf.quantization.fake_quant_with_min_max_vars(
            inputs, min=tf.constant(self.spec.activation_min), max=tf.constant(self.spec.activation_max),
            num_bits=8, narrow_range=False)


@register
class ProbabilityQuantizer(_SpecQuantizer):
    """Softmax outputs on [0, 255/256] (scale 1/256, TFLite's fixed int8 softmax range).

    A digital output step, the one tensor that is not on the shared range.
    """

    def __call__(self, inputs, training, weights, **kwargs):
        return tf.quantization.fake_quant_with_min_max_vars(
            inputs, min=tf.constant(0.0), max=tf.constant(255.0 / 256.0), num_bits=8, narrow_range=False)
