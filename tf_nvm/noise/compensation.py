"""Global drift compensation: one digital gain from a reference read at programming time and at t_inference.

aihwkit's ``GlobalDriftCompensation`` reads every tile with the one-hot input
vectors (``torch.eye``) right after programming and again at ``t_inference``
(drifted conductances *with* their accumulated read noise), and multiplies the
tile's outputs by the ratio of the mean absolute outputs. A one-hot read of row
``i`` returns row ``i`` of the effective weight matrix (after the pair
subtraction, G_min removal or reference column), so the factor is

    alpha = sum_ij |w_prog_ij| / sum_ij |w_t_ij|

over the effective weights of one layer, in any unit (here level units). It is
measured on the *weights*, not on raw conductances: the G_min offsets and both
devices of a differential pair would otherwise enter the sums, and the level-0
devices, which drift fastest (``mu_nu`` is largest at small conductances), make a
raw-conductance ratio over-correct (tf_nvm 0.2.0: mean gain 1.016 at 1 h, 1.023 at
1 day against aihwkit's 0.998).

Both the simulator (`tf_nvm.simulator.devices.program_chip`, one factor per
crossbar layer, as aihwkit has one per tile) and noise-aware training
(`tf_nvm.noise.training`, one per kernel) use `global_factor`.
"""

from typing import Any

from tf_nvm.keras.backend import tf

__all__ = ["global_factor", "READOUT_FLOOR"]

READOUT_FLOOR = 1e-4
"""Smallest readout (mean absolute output) used in the ratio, as aihwkit clamps it (``clamp(min=0.0001)``)."""


def global_factor(programmed: Any, read: Any) -> Any:
    """The compensation gain ``mean|programmed| / mean|read|`` (a float32 scalar tensor).

    Args:
        programmed: effective weights right after programming (tensor, or list of tensors
            concatenated), without read noise.
        read: the same weights read at ``t_inference`` (drift and read noise).

    Returns:
        float32 scalar, ``> 0``; 1 when both readouts are below `READOUT_FLOOR`.
    """
    def readout(values):
        values = values if isinstance(values, (list, tuple)) else [values]
        total = tf.add_n([tf.reduce_sum(tf.abs(v)) for v in values])
        count = tf.add_n([tf.cast(tf.size(v), tf.float32) for v in values])
        return tf.maximum(total / tf.maximum(count, 1.0), READOUT_FLOOR)

    return readout(programmed) / readout(read)
