"""Per-read noise: the fast draws keep the distribution of drawing every device's noise on every read.

The reference is the definition itself, in numpy: on every read every device conductance gets its own
N(0, sigma^2), the column sums of every row tile are taken, then the pair / reference subtraction and the
sum of row tiles. The simulator's two paths (one normal per device column and row tile before the ADC, and
with exact converters one normal per output after the pair subtraction) must match it: two-sample KS test,
mean and standard deviation of the output codes over many reads.
"""

import warnings

import numpy as np
import pytest
from scipy import stats

import tf_nvm
from tf_nvm.keras.backend import keras, tf
from tf_nvm.simulator import DeviceConfig, SimulationConfig, Simulator
from tf_nvm.simulator.devices import stream_key
from tf_nvm.simulator.network import standard_normals
from tflite_export import build_mapping

READS = 6000


def test_standard_normals_are_standard_normal_and_independent_of_batching():
    key = stream_key(0, 1, 2, 3)
    draws = standard_normals(key, tf.constant(0, tf.int64), 400, 501).numpy()  # odd width: a padded half row
    assert draws.shape == (400, 501) and draws.dtype == np.float32
    flat = draws.ravel()
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    assert abs(flat.mean()) < 4 / np.sqrt(flat.size) and abs(flat.std() - 1) < 4 / np.sqrt(2 * flat.size)
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 4 / np.sqrt(flat.size)  # cos and sin halves uncorrelated
    tail = standard_normals(key, tf.constant(150, tf.int64), 250, 501).numpy()
    np.testing.assert_array_equal(tail, draws[150:])  # row i depends on (key, offset + i) only


def _dense_mapping(bipolar_mapping):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((40,))
    spec = tf_nvm.resolve_spec("paper-4bit-bipolar").replace(bipolar_mapping=bipolar_mapping, weight_scale=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(keras.Model(inputs, keras.layers.Dense(4)(inputs)), spec, init="device")
    # 3 row tiles of 16 rows and several column tiles: the row-tile sum and the reference columns matter
    return build_mapping(model, spec=tf_nvm.model_spec(model).replace(rows=16, cols=4))


def _per_device_reads(sim, chip, x1, reads, rng):
    """Output codes of ``reads`` reads of one example, drawing every device's read noise (numpy)."""
    layer = sim.mapping.crossbar_layers[0]
    layout = sim.layouts[layer.name]
    q = np.rint(x1 / sim.spec.activation_step).clip(-128, 127).astype(np.float64)  # the input codes (8-bit DAC)
    blocks = np.zeros(layout.row_tiles * layout.tile_rows)
    blocks[:layer.rows] = q
    blocks = blocks.reshape(layout.row_tiles, layout.tile_rows)
    weights = chip.layers[layer.name].weights.numpy().astype(np.float64)
    sigma = chip.layers[layer.name].read_sigma.numpy().astype(np.float64)
    noise = rng.standard_normal((reads,) + weights.shape) * sigma  # [reads, R, T, Cdev]: every device, every read
    sums = np.einsum("rt,nrtc->nrc", blocks, weights + noise)  # column sums per row tile
    cols, devices = layout.cols, layout.devices
    out = sums[..., :cols]
    if devices == 2:
        out = out - sums[..., cols:2 * cols]
    if layout.ref_columns:
        out = out - sums[..., cols * devices:][..., layout.col_tile_of_output]
    acc = out.sum(axis=1) + layer.bias_int32
    return np.clip(np.rint(acc * sim.spec.weight_scale), -128, 127)


@pytest.mark.parametrize("bipolar_mapping", ["differential", "offset"])
def test_per_read_noise_matches_drawing_every_device(bipolar_mapping):
    mapping = _dense_mapping(bipolar_mapping)
    layer = mapping.crossbar_layers[0]
    assert len({t.row_tile for t in layer.tiles}) == 3 and len({t.col_tile for t in layer.tiles}) > 1
    assert (bipolar_mapping == "offset") == (mapping.spec.reference_level is not None)
    config = SimulationConfig(device=DeviceConfig(noise="pcm-like", t_inference=3600.0, drift_compensation=False),
                              batch_size=2000)
    x1 = np.random.default_rng(1).normal(0, 1.5, (1, 40)).astype(np.float32)
    x = np.repeat(x1, READS, axis=0)  # one example read READS times (each row its own reads)
    paths = {}
    for fuse in (True, False):  # one normal per output / per device column and row tile
        sim = Simulator(mapping, config)
        sim._fuse = fuse
        chip = sim.program(0)
        paths[fuse] = sim.run(chip, x).codes[mapping.outputs[0]].astype(np.float64)
    want = _per_device_reads(sim, chip, x1[0], READS, np.random.default_rng(2))
    assert np.all(want.std(axis=0) > 1.0)  # the noise spans several output codes
    for fuse, got in paths.items():
        for c in range(want.shape[1]):
            where = f"{bipolar_mapping}, fused={fuse}, output {c}"
            assert stats.ks_2samp(got[:, c], want[:, c]).pvalue > 1e-3, where
            sd = want[:, c].std()
            assert abs(got[:, c].mean() - want[:, c].mean()) < 4 * sd * np.sqrt(2 / READS), where
            assert abs(got[:, c].std() / sd - 1) < 4 / np.sqrt(READS), where
    assert np.count_nonzero(paths[True] != paths[False]) > 0  # two different draws of one distribution


def test_british_spellings_stay_as_deprecated_aliases():
    """``NoiseModel.realise`` and ``Simulator._digitise`` (0.3) still answer, with the same numbers as the new names."""
    from tf_nvm import noise
    from tf_nvm.simulator.devices import stream_seed

    model = noise.get("pcm-like")
    target = tf.fill([4, 3], 10.0)
    seeds = [stream_seed(0, 0, 0, purpose) for purpose in (1, 2, 3)]
    new, old = model.realize(target, 3600.0, seeds), model.realise(target, 3600.0, seeds)
    for a, b in zip(new, old):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert float(tf.reduce_max(tf.abs(new[1] - target))) > 0  # a noisy, drifted device, not the target back
    assert Simulator._digitise is Simulator._digitize
