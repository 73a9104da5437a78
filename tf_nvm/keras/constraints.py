"""Kernel constraint that keeps latent weights inside the device code range."""

from tf_nvm.keras.backend import keras, tf
from tf_nvm.keras.serialization import register
from tf_nvm.core.spec import SpecConfigured

__all__ = ["NVMKernelConstraint"]


@register
class NVMKernelConstraint(SpecConfigured, keras.constraints.Constraint):
    """Clips the latent float kernel to ``[(code_min - 1/2) s, (code_max + 1/2) s]``.

    Applied by the optimizer after every step, so the straight-through estimator
    never lets a latent weight wander far past the top or bottom code (where it
    would need many steps to come back). In unipolar mode this keeps every
    latent weight >= -s/2, i.e. every code >= 0, throughout training.

    Args:
        spec: a resolved `NVMSpec` (or its dict).
    """

    def __call__(self, w: tf.Tensor) -> tf.Tensor:
        s = self.spec.scale
        return tf.clip_by_value(w, (self.spec.code_min - 0.5) * s, (self.spec.code_max + 0.5) * s)
