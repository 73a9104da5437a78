"""The analog simulator: exact when ideal, seeded and batch-independent, noise sources of the configured size."""

import math

import numpy as np
import pytest

import tf_nvm
from tf_nvm import SimulatorError, noise
from tf_nvm.keras.backend import tf
from tf_nvm.mapping import DIGITAL_OPS, reference
from tf_nvm.simulator import ADCConfig, DACConfig, DeviceConfig, SimulationConfig, Simulator
from tf_nvm.simulator.digital import KERNELS

from test_crossbar_reference import _OP_MODELS, _exported, har_conv, har_mlp  # noqa: E402  (tests/ on sys.path)
from test_mapping import _small_model  # noqa: E402
from tflite_export import build_mapping


def _ideal_equals_reference(mapping, x, **config):
    """Both analog paths of an ideal chip (fused matmul / convolution, and per row tile) against the evaluator."""
    want = reference.evaluate(mapping, x)
    for fuse in (True, False):
        sim = Simulator(mapping, SimulationConfig(**config))
        sim._fuse = fuse
        got = sim.run(sim.program(0), x)
        for name in mapping.outputs:
            np.testing.assert_array_equal(got.codes[name], want.codes[name], err_msg=f"{name}, fused={fuse}")
    return got


# ------------------------------------------------------------------ exact when everything is off
def test_every_digital_op_has_a_kernel():
    assert sorted(KERNELS) == DIGITAL_OPS.names()


@pytest.mark.slow
@pytest.mark.parametrize("op", sorted(_OP_MODELS))
def test_ideal_simulation_equals_the_exact_evaluator_for_every_digital_op(op, tmp_path):
    _, mapping, x = _exported(_OP_MODELS[op], "paper-4bit-bipolar", tmp_path)
    _ideal_equals_reference(mapping, x, batch_size=64)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["paper-2bit-unipolar", "paper-2bit-bipolar", "paper-4bit-unipolar",
                                    "paper-4bit-bipolar"])
def test_ideal_simulation_equals_the_exact_evaluator_on_conv_and_mlp(preset, rng):
    for builder in (har_conv, har_mlp):
        import warnings  # noqa: PLC0415

        tf_nvm.keras.backend.keras.utils.set_random_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = tf_nvm.quantize_model(builder(), preset, init="device")
        x = rng.normal(0, 1.5, (300, 128, 9)).astype(np.float32)
        _ideal_equals_reference(build_mapping(model), x, batch_size=128)


def test_conv2d_depthwise_offset_tiling_and_dual_rail_are_exact(tmp_path, rng):
    L = tf_nvm.keras.backend.keras.layers

    def layers(x):
        x = L.Conv2D(6, 3, padding="same", name="c2")(x)
        x = L.BatchNormalization(name="bn")(x)
        x = L.DepthwiseConv2D(3, depth_multiplier=2, strides=(1, 2), padding="same", name="dw")(x)
        x = L.MaxPooling2D(2, padding="same", name="mp")(x)
        x = L.Conv2D(5, 2, dilation_rate=2, name="c3")(x)
        return L.Dense(4, name="fc")(L.Flatten(name="fl")(x))

    model, _, x = _exported(layers, "paper-4bit-bipolar", tmp_path, shape=(8, 9, 2))
    _ideal_equals_reference(build_mapping(model), x)
    small = tf_nvm.model_spec(model).replace(rows=8, cols=6, input_encoding="dual-rail")  # many tiles, two phases
    mapping = build_mapping(model, spec=small)
    assert max(len(layer.tiles) for layer in mapping.crossbar_layers) > 4
    _ideal_equals_reference(mapping, x, batch_size=33)
    offset = _small_model("paper-2bit-bipolar")  # a differential model; the offset mapping needs its own codes
    spec = tf_nvm.model_spec(offset)
    assert spec.bipolar_mapping == "differential"
    offset_model = tf_nvm.quantize_model(
        tf_nvm.models.build("har_signed_cnn", input_shape=(16, 3), filters=(4,), kernel_sizes=(3,)),
        spec.replace(bipolar_mapping="offset", weight_scale=None), init="device")
    _ideal_equals_reference(build_mapping(offset_model), rng.normal(0, 2, (200, 16, 3)).astype(np.float32))


# ------------------------------------------------------------------ seeds and batching
@pytest.fixture(scope="module")
def small_mapping():
    return build_mapping(_small_model("paper-2bit-bipolar"))


def _noisy(seed=0, batch_size=64, **device):
    device = {"noise": "pcm-like", "t_inference": 3600.0, "stuck_at_gmin_rate": 0.01, **device}
    return SimulationConfig(device=DeviceConfig(**device), adc=ADCConfig(mode="shared", bits=10), seed=seed,
                            batch_size=batch_size)


def test_same_seed_gives_identical_results_across_runs_and_batch_sizes(small_mapping, rng):
    x = rng.normal(0, 2, (301, 16, 3)).astype(np.float32)
    runs = []
    for batch_size in (64, 64, 7, 301):
        sim = Simulator(small_mapping, _noisy(batch_size=batch_size))
        runs.append(sim.run(sim.program(3), x).codes[small_mapping.outputs[0]])
    for other in runs[1:]:
        np.testing.assert_array_equal(runs[0], other)
    sim = Simulator(small_mapping, _noisy(seed=1))
    assert np.count_nonzero(sim.run(sim.program(3), x).codes[small_mapping.outputs[0]] - runs[0]) > 0
    assert np.count_nonzero(sim.run(sim.program(4), x).codes[small_mapping.outputs[0]] - runs[0]) > 0
    # an example's read noise depends on its position in the data set, not on its neighbours
    sim = Simulator(small_mapping, _noisy(batch_size=64))
    tail = sim.run(sim.program(3), x[100:], offset=100).codes[small_mapping.outputs[0]]
    np.testing.assert_array_equal(tail, runs[0][100:])


def test_evaluator_and_adc_calibration_run_in_bounded_batches_with_the_same_results(small_mapping, rng,
                                                                                   monkeypatch):
    """Memory does not grow with the examples (2,000 unipolar CIFAR-10 images once took 9.4 GB of patches)."""
    x = rng.normal(0, 2, (301, 16, 3)).astype(np.float32)
    name = small_mapping.outputs[0]
    whole = reference.evaluate(small_mapping, x, batch_size=len(x)).codes[name]
    seen = []
    forward = reference.crossbar_forward
    monkeypatch.setattr(reference, "crossbar_forward", lambda q, layer, spec: seen.append(len(q)) or
                        forward(q, layer, spec))
    np.testing.assert_array_equal(reference.evaluate(small_mapping, x, batch_size=7).codes[name], whole)
    assert max(seen) == 7 and sum(seen) == len(x) * len(small_mapping.crossbar_layers)
    # by default every crossbar layer's int64 patches stay within the budget
    per_example = max(int(np.prod(layer.output_shape[:-1] if layer.op != "dense" else layer.input_shape[:-1]))
                      * layer.rows * 8 for layer in small_mapping.crossbar_layers)
    monkeypatch.setattr(reference, "PATCH_BUDGET_BYTES", 10 * per_example + 5)
    seen.clear()
    np.testing.assert_array_equal(reference.evaluate(small_mapping, x).codes[name], whole)
    assert max(seen) == 10 == reference.examples_per_batch(small_mapping)
    assert reference.examples_per_batch(small_mapping, budget=1) == 1
    with pytest.raises(tf_nvm.MappingError, match=r"evaluate: batch_size must be an integer >= 1 or None, got 0\. "
                                                  r"Fix: pass e\.g\. 64"):
        reference.evaluate(small_mapping, x, batch_size=0)
    # per-layer ADC ranges: calibrated batch by batch, the same ranges
    designs = [Simulator(small_mapping, SimulationConfig(adc=ADCConfig(mode="per-layer", bits=8), batch_size=size),
                         calibration=x).adc_designs() for size in (len(x), 7)]
    assert designs[0] == designs[1]


# ------------------------------------------------------------------ each noise source, by its size
def test_gaussian_programming_spread_matches_sigma():
    target = tf.fill([200_000], 10.0)
    programmed = noise.GaussianNoise(prog_sigma_us=0.7).program(target, tf.constant([1, 2]))
    assert abs(float(tf.math.reduce_std(programmed)) - 0.7) < 0.01
    assert abs(float(tf.reduce_mean(programmed)) - 10.0) < 0.01


def test_pcm_programming_spread_follows_the_published_polynomial():
    model = noise.PCMLikeNoise()
    for g in (1.0, 9.0, 25.0):
        relative = g / 25.0
        sigma = 0.26348 + 1.9650 * relative - 1.1731 * relative ** 2  # Joshi et al. 2020 / aihwkit, g_max 25 uS
        programmed = model.program(tf.fill([200_000], g), tf.constant([3, g.__hash__() % 1000]))
        measured = float(tf.math.reduce_std(programmed))
        assert abs(measured - sigma) / sigma < 0.03, (g, measured, sigma)


def test_pcm_drift_follows_a_power_law_with_the_published_exponents():
    model = noise.PCMLikeNoise()
    g = tf.fill([100_000], 12.5)
    nu = model.drift_coefficients(g, tf.constant([5, 6]))
    relative = 12.5 / 25.0
    mean_nu = min(max(-0.0155 * math.log(relative) + 0.0244, 0.049), 0.1)
    assert abs(float(tf.reduce_mean(nu)) - mean_nu) < 0.003
    for t in (3600.0, 86400.0):
        drifted = model.drift(g, g, nu, t, tf.constant([0, 0]))
        expected = g * tf.pow((t + 20.0) / 20.0, -nu)  # g(t) = g(t0) ((t + t0) / t0)^-nu, t0 = 20 s
        np.testing.assert_allclose(drifted.numpy(), expected.numpy(), rtol=1e-6)
        ratio = float(tf.reduce_mean(drifted)) / 12.5
        assert abs(math.log(ratio) / math.log((t + 20.0) / 20.0) + mean_nu) < 0.004


def test_pcm_read_noise_follows_the_programmed_conductance_and_is_clamped_at_zero():
    model = noise.PCMLikeNoise()
    n, t = 200_000, 86400.0
    g_prog = tf.fill([n], 25.0)  # g_max: the drift-exponent floor (mu_nu = 0.049), where Q_s(g_t) is furthest off
    nu = model.drift_coefficients(g_prog, tf.constant([7, 8]))
    g_t = model.drift(g_prog, g_prog, nu, t, tf.constant([0, 0]))
    read = model.read(g_prog, g_t, t, tf.constant([9, 10]))
    spread = math.sqrt(math.log((t + 20.0 + 250e-9) / (2 * 250e-9)))
    q_s = min(0.0088 / 1.0 ** 0.65, 0.2)  # Q_s at the programmed conductance g_prog / g_max = 1 (aihwkit)
    np.testing.assert_allclose(model.read_sigma(g_prog, g_t, t).numpy(), g_t.numpy() * q_s * spread, rtol=1e-5)
    relative = ((read - g_t) / g_t).numpy()  # N(0, (Q_s spread)^2) for every device
    # a sample std's relative standard error is 1 / sqrt(2 n) = 0.16 %: allow 4 of them; Q_s(g_t) would be
    # (t / t0)^(0.65 nu) = 1.31x larger here
    assert abs(relative.std() / (q_s * spread) - 1) < 4 / math.sqrt(2 * n), relative.std() / (q_s * spread)
    # the clamp at 0 uS: a device at 0.05 uS with a large read noise is read at >= 0, at 0 with P = Phi(-0.5)
    low = model.read(tf.fill([n], 1.0), tf.fill([n], 0.05), t, tf.constant([11, 12])).numpy()
    sigma = float(model.read_sigma(tf.fill([1], 1.0), tf.fill([1], 0.05), t)[0])
    expected = 0.5 * math.erfc(0.05 / sigma / math.sqrt(2))
    assert low.min() == 0.0
    assert abs(np.mean(low == 0.0) - expected) < 4 * math.sqrt(expected * (1 - expected) / n)


def test_global_drift_compensation_gain_is_one_within_its_spread(mlp_mapping):
    # the compensated effective weights against the target codes: least-squares gain per chip. aihwkit's rule (mean
    # |w| after programming over mean |w| read at t) leaves the gain within 0.3 % of 1 (its own bias: the noise
    # on zero weights raises the absolute readout; aihwkit: 0.998); the raw-conductance ratio of tf_nvm 0.2.0
    # over-corrected by +1.4 % at 1 h and +2.1 % at 1 day on this network (chip-to-chip spread 0.03 %).
    for t in (3600.0, 86400.0):
        sim = Simulator(mlp_mapping, SimulationConfig(device=DeviceConfig(noise="pcm-like", t_inference=t,
                                                                          read_noise="per-chip")))
        gains = []
        for chip in range(3):
            programmed = sim.program(chip)
            assert set(programmed.drift_compensation) == set(sim.layouts)  # one factor per layer
            assert all(f > 1.2 for f in programmed.drift_compensation.values())  # drift is being compensated
            num = den = 0.0
            for name, layout in sim.layouts.items():
                levels, cols = programmed.layers[name].weights.numpy(), layout.cols
                weight = levels[..., :cols] - levels[..., cols:2 * cols]
                target = layout.levels[..., :cols] - layout.levels[..., cols:2 * cols]
                num, den = num + float((weight * target).sum()), den + float((target * target).sum())
            gains.append(num / den)
        assert abs(np.mean(gains) - 1) < 0.005, (t, gains)
        assert np.std(gains) < 0.002, (t, gains)


def test_read_noise_of_a_column_sum_has_the_configured_size(small_mapping):
    sim = Simulator(small_mapping, SimulationConfig(device=DeviceConfig(noise=noise.GaussianNoise(read_sigma_us=2.0),
                                                                        drift_compensation=False)))
    chip = sim.program(0)
    layer = small_mapping.crossbar_layers[-1]  # dense
    step_us = (small_mapping.spec.g_max_us - small_mapping.spec.g_min_us) / small_mapping.spec.top_level
    sigma_levels = chip.layers[layer.name].read_sigma.numpy()
    assert np.allclose(sigma_levels[sigma_levels > 0], 2.0 / step_us)
    x = np.full((4000, layer.rows), 3.0, np.float32)  # input codes 3 on every row
    patches = tf.constant(x)
    weights = chip.layers[layer.name]
    layout = sim.layouts[layer.name]
    blocks = tf.reshape(tf.pad(patches, [(0, 0), (0, layout.row_tiles * layout.tile_rows - layer.rows)]),
                        [-1, layout.row_tiles, layout.tile_rows])
    spread = tf.sqrt(tf.einsum("mrt,rtc->mrc", blocks * blocks, weights.read_sigma ** 2))
    draws = spread * sim._read_normals(sim_keys(sim, 0, layer), tf.constant(0, tf.int64), 4000, 1, layout)
    expected = 3.0 * math.sqrt(layer.rows) * 2.0 / step_us  # sqrt(sum_i x_i^2 sigma^2), rows all in one tile
    measured = float(tf.math.reduce_std(draws[:, 0, 0]))
    assert abs(measured - expected) / expected < 0.05, (measured, expected)


def test_per_chip_read_noise_is_frozen_into_the_conductances_with_the_configured_size(mlp_mapping):
    small_mapping = mlp_mapping  # 2 x 2304 x 32 + 2 x 64 x 6 devices: the spread is measured within 1 %
    model = noise.GaussianNoise(read_sigma_us=2.0)
    step_us = (small_mapping.spec.g_max_us - small_mapping.spec.g_min_us) / small_mapping.spec.top_level
    sims = {mode: Simulator(small_mapping, SimulationConfig(device=DeviceConfig(noise=model, read_noise=mode,
                                                                                drift_compensation=False)))
            for mode in ("per-chip", "off")}
    chips = {mode: sim.program(2) for mode, sim in sims.items()}
    deviations, level0 = [], []
    for name, layout in sims["off"].layouts.items():
        assert chips["per-chip"].layers[name].read_sigma is None  # nothing left to draw per read
        used = layout.used > 0
        frozen, plain = (chips[mode].layers[name].weights.numpy()[used] for mode in ("per-chip", "off"))
        high = layout.levels[used] >= 2  # >= 17 uS: more than 8 sigma above 0 uS, never clamped
        deviations.append((frozen - plain)[high])
        level0.append(frozen[layout.levels[used] == 0])
    deviations = np.concatenate(deviations)
    assert deviations.size > 10_000
    # relative standard error of a sample std: 1 / sqrt(2 n) (< 0.7 % here); 4 of them
    assert abs(deviations.std() * step_us - 2.0) / 2.0 < 4 / math.sqrt(2 * deviations.size), deviations.std()
    # the clamp at 0 uS (aihwkit's): a level-0 device sits at g_min = 1 uS, so N(1, 2^2) < 0 with P = Phi(-0.5)
    level0 = np.concatenate(level0)
    g_level0 = level0 * step_us + small_mapping.spec.g_min_us
    assert g_level0.min() == 0.0
    clamped = float(np.mean(level0 == -small_mapping.spec.g_min_us / step_us))
    expected = 0.5 * math.erfc(0.5 / math.sqrt(2))  # Phi(-0.5) = 0.3085
    assert abs(clamped - expected) < 4 * math.sqrt(expected * (1 - expected) / level0.size), (clamped, expected)
    again = sims["per-chip"].program(2)  # the same chip again: the same frozen draw
    for name in again.layers:
        np.testing.assert_array_equal(again.layers[name].weights.numpy(),
                                      chips["per-chip"].layers[name].weights.numpy())
    with pytest.raises(SimulatorError, match=r"DeviceConfig.read_noise must be one of \['per-read', 'per-chip', "
                                             r"'off'\], got True. Fix: pass read_noise='per-read'"):
        DeviceConfig(read_noise=True)


def test_ir_drop_follows_aihwkits_first_order_formula(small_mapping, rng):
    ratio = 2000.0  # a short, resistive wire: a drop of several percent
    sim = Simulator(small_mapping, SimulationConfig(device=DeviceConfig(ir_drop=1.0, ir_drop_g_ratio=ratio)))
    chip = sim.program(0)
    layer = small_mapping.crossbar_layers[-1]  # dense
    layout, spec = sim.layouts[layer.name], small_mapping.spec
    q = rng.integers(-128, 128, (50,) + tuple(layer.input_shape)).astype(np.float32)
    record = {}
    sim._crossbar(tf.constant(q), layer, chip.layers[layer.name], 0, [None, None], record)
    got = np.stack([t.numpy() for t in record[layer.name]], axis=1)  # [M, R, Cdev]
    # by hand, per tile r and device column: w = g / g_max, x = q / 128, n rows per tile (aihwkit applyIrDrop)
    n, dg = layout.tile_rows, spec.level_step_us
    x = np.pad(q.reshape(-1, layer.rows), [(0, 0), (0, layout.row_tiles * n - layer.rows)])
    x = x.reshape(-1, layout.row_tiles, n)
    g = (spec.g_min_us + layout.levels * dg) * layout.used  # [R, n, Cdev] uS
    ideal = np.einsum("mrt,rtc->mrc", x, layout.levels)
    a = n / ratio * np.einsum("mrt,rtc->mrc", np.abs(x) / 128, g / spec.g_max_us)
    c = a * (a * (0.05 * a - 0.2) + 0.5)
    f = 1 - (1 - np.arange(n) / n) ** 2
    loss = c * np.einsum("mrt,rtc->mrc", x / 128 * f, g / spec.g_max_us) * 128 * spec.g_max_us / dg
    np.testing.assert_allclose(got, ideal - loss, rtol=1e-4, atol=1e-2)
    assert np.abs(loss).max() > 0.02 * np.abs(ideal).max()  # the effect is visible at this wire conductance
    off = Simulator(small_mapping, SimulationConfig(device=DeviceConfig(ir_drop=0.0)))
    record = {}
    off._crossbar(tf.constant(q), layer, off.program(0).layers[layer.name], 0, [None, None], record)
    np.testing.assert_array_equal(np.stack([t.numpy() for t in record[layer.name]], axis=1), ideal)


def sim_keys(sim, chip, layer):
    from tf_nvm.simulator.devices import stream_key  # noqa: PLC0415

    return stream_key(sim.config.seed, chip, sim.layouts[layer.name].index, 10)


@pytest.fixture(scope="module")
def mlp_mapping():
    import warnings  # noqa: PLC0415

    tf_nvm.keras.backend.keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_mapping(tf_nvm.quantize_model(har_mlp(), "paper-2bit-bipolar", init="device"))


def test_stuck_at_faults_hit_the_configured_fraction(mlp_mapping):
    small_mapping = mlp_mapping  # 2 x 2304 x 32 + 2 x 64 x 6 devices
    rates = (0.05, 0.02)
    sim = Simulator(small_mapping, SimulationConfig(device=DeviceConfig(stuck_at_gmin_rate=rates[0],
                                                                        stuck_at_gmax_rate=rates[1])))
    chip = sim.program(0)
    top = small_mapping.spec.top_level
    low = high = not_low = not_high = 0
    for name, layout in sim.layouts.items():
        used = layout.used > 0
        weights, levels = chip.layers[name].weights.numpy()[used], layout.levels[used]
        not_low += np.count_nonzero(levels > 0)  # a device stuck at G_min is visible only if it should not be there
        low += np.count_nonzero((np.abs(weights) < 1e-4) & (levels > 0))
        not_high += np.count_nonzero(levels < top)
        high += np.count_nonzero((np.abs(weights - top) < 1e-4) & (levels < top))
    assert not_low > 20000 and not_high > 20000
    # binomial standard errors are below 0.01 here: 4 sigma bounds
    assert abs(low / not_low - rates[0]) < 4 * math.sqrt(rates[0] * (1 - rates[0]) / not_low), low / not_low
    assert abs(high / not_high - rates[1]) < 4 * math.sqrt(rates[1] * (1 - rates[1]) / not_high), high / not_high


# ------------------------------------------------------------------ converters
def test_shared_adc_is_one_design_for_every_layer_and_per_layer_is_not(small_mapping, rng):
    x = rng.normal(0, 2, (200, 16, 3)).astype(np.float32)
    shared = Simulator(small_mapping, SimulationConfig(adc=ADCConfig(mode="shared", bits=8)))
    designs = shared.adc_designs()
    assert len(designs) == len(small_mapping.crossbar_layers) and len(set(designs.values())) == 1
    design = next(iter(designs.values()))
    spec = small_mapping.spec
    assert design.full_scale == 128 * spec.top_level * spec.rows and design.bits == 8  # never saturates
    narrow = Simulator(small_mapping, SimulationConfig(adc=ADCConfig(mode="shared", shared_output_ranges=2.0)))
    assert len(set(narrow.adc_designs().values())) == 1
    assert next(iter(narrow.adc_designs().values())).full_scale == pytest.approx(2 * 128.0 / spec.weight_scale)
    per_layer = Simulator(small_mapping, SimulationConfig(adc=ADCConfig(mode="per-layer", bits=8)), calibration=x)
    assert len(set(per_layer.adc_designs().values())) == len(small_mapping.crossbar_layers)
    exact = reference.evaluate(small_mapping, x).codes[small_mapping.outputs[0]]
    coarse = Simulator(small_mapping, SimulationConfig(adc=ADCConfig(mode="shared", bits=3)))
    assert np.count_nonzero(coarse.run(coarse.program(0), x).codes[small_mapping.outputs[0]] - exact) > 0
    fine = Simulator(small_mapping, SimulationConfig(adc=ADCConfig(mode="shared", bits=16)))
    assert np.abs(fine.run(fine.program(0), x).codes[small_mapping.outputs[0]] - exact).max() <= 1


def test_dac_bits_drop_the_low_input_bits(small_mapping, rng):
    x = rng.normal(0, 2, (50, 16, 3)).astype(np.float32)
    exact = reference.evaluate(small_mapping, x).codes[small_mapping.outputs[0]]
    sim = Simulator(small_mapping, SimulationConfig(dac=DACConfig(bits=3)))
    assert np.count_nonzero(sim.run(sim.program(0), x).codes[small_mapping.outputs[0]] - exact) > 0


# ------------------------------------------------------------------ bad input
def test_bad_inputs_and_settings_are_named_errors(small_mapping, tmp_path):
    sim = Simulator(small_mapping)
    chip = sim.program(0)
    with pytest.raises(SimulatorError, match=r"inputs have shape \[4, 16\]; the mapping expects \[N, 16, 3\]\. Fix"):
        sim.run(chip, np.zeros((4, 16), np.float32))
    with pytest.raises(SimulatorError, match=r"inputs must be a float array, got dtype <U1\. Fix"):
        sim.run(chip, np.full((4, 16, 3), "a"))
    bad = np.zeros((4, 16, 3), np.float32)
    bad[1, 2, 0] = np.nan
    with pytest.raises(SimulatorError, match=r"inputs hold 1 NaN or infinite value\(s\)\. Fix"):
        sim.run(chip, bad)
    with pytest.raises(SimulatorError,
                       match=r"unknown noise preset 'pcm'; known: ideal, pcm-like, pcm-prog-x12, reram-like\. Fix"):
        DeviceConfig(noise="pcm")
    with pytest.raises(SimulatorError, match=r"GaussianNoise\.prog_sigma_us must be a finite number >= 0, got -0\.1"):
        noise.GaussianNoise(prog_sigma_us=-0.1)
    with pytest.raises(SimulatorError, match=r"DeviceConfig\.stuck_at_gmax_rate must be a finite number >= 0 and "
                                             r"<= 1, got 1\.5\. Fix"):
        DeviceConfig(stuck_at_gmax_rate=1.5)
    with pytest.raises(SimulatorError, match=r"DeviceConfig\.ir_drop must be a finite number >= 0 and <= 1000000\.0, "
                                             r"got -1\. Fix: pass ir_drop="):
        DeviceConfig(ir_drop=-1)
    with pytest.raises(SimulatorError, match=r"unknown simulation setting 'adc\.bitz'; known: adc\.bits, "):
        SimulationConfig().replace_path("adc.bitz", 4)
    with pytest.raises(SimulatorError, match=r"ADCConfig\(mode='per-layer'\) calibrates each layer's ADC range on "
                                             r"data, but calibration=None\. Fix"):
        Simulator(small_mapping, SimulationConfig(adc=ADCConfig(mode="per-layer")))
    with pytest.raises(tf_nvm.MappingError, match=r"cannot be read"):
        Simulator(tmp_path / "missing")


# ------------------------------------------------------------------ Monte Carlo, sweeps, CLI
def test_monte_carlo_and_sweep_tables_and_plot(small_mapping, rng, tmp_path):
    from tf_nvm.simulator import monte_carlo, sweep, write_sweep  # noqa: PLC0415

    x = rng.normal(0, 2, (120, 16, 3)).astype(np.float32)
    y = reference.evaluate(small_mapping, x).values().argmax(axis=-1)  # labels = the ideal network's answers
    ideal = monte_carlo(small_mapping, x, y, chips=2)
    assert ideal.accuracies == (1.0, 1.0) and ideal.agreement == (1.0, 1.0) and ideal.ideal_accuracy == 1.0
    noisy = monte_carlo(small_mapping, x, y, _noisy(), chips=4)
    assert len(set(noisy.accuracies)) > 1 and noisy.min <= noisy.mean <= max(noisy.accuracies)
    table = sweep(small_mapping, x, y, "device.stuck_at_gmin_rate", [0.0, 0.3], chips=2)
    assert list(table["device.stuck_at_gmin_rate"]) == [0.0, 0.3]
    assert table["accuracy_mean"][0] == 1.0 and table["accuracy_mean"][1] < 1.0
    files = write_sweep(table, "device.stuck_at_gmin_rate", tmp_path, "test")
    assert open(files["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert open(files["markdown"]).readline().startswith("| device.stuck_at_gmin_rate | chips | accuracy_mean |")
    with pytest.raises(SimulatorError, match=r"monte_carlo: labels must be 120 integers \(one per example\)"):
        monte_carlo(small_mapping, x, y[:5], chips=1)
    with pytest.raises(SimulatorError, match=r"monte_carlo: chips must be an integer in 1\.\.100000, got 0"):
        monte_carlo(small_mapping, x, y, chips=0)


def test_cli_simulate_writes_results_atomically(tmp_path, capsys):
    import json  # noqa: PLC0415
    import warnings  # noqa: PLC0415

    from tf_nvm.cli import main  # noqa: PLC0415
    from tflite_export import export_crossbar  # noqa: PLC0415

    tf_nvm.keras.backend.keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn", filters=(4,), kernel_sizes=(5,)),
                                      "paper-2bit-unipolar", init="device")
    (x_train, _), _ = tf_nvm.datasets.load_har(verbose=False)
    export_crossbar(model, tmp_path / "m", preprocessing=tf_nvm.core.preprocessing.Standardization.fit(x_train))
    out = tmp_path / "sim"
    assert main(["simulate", str(tmp_path / "m"), "--chips", "2", "--preset", "pcm-like", "--examples", "200",
                 "--set", "adc.mode=shared", "--set", "adc.bits=12", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["examples"] == 200 and len(results["chips"]) == 2 and results["config"]["adc"]["bits"] == 12
    assert (out / "chips.csv").exists() and (out / "chips.md").exists()
    assert "chip 2/2: accuracy" in capsys.readouterr().out
    assert main(["simulate", str(tmp_path / "m"), "--set", "adc.bitz=3", "--out", str(tmp_path / "bad")]) == 2
    assert "unknown simulation setting 'adc.bitz'" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "results.json").exists()
    # one command compares the paper's ADC choices (per-layer ranges calibrated on training windows)
    assert main(["simulate", str(tmp_path / "m"), "--chips", "1", "--examples", "100", "--set", "adc.bits=6",
                 "--sweep", "adc.mode=exact,shared,per-layer", "--out", str(tmp_path / "modes")]) == 0
    rows = json.loads((tmp_path / "modes" / "results.json").read_text())["rows"]
    assert [row["adc.mode"] for row in rows] == ["exact", "shared", "per-layer"]
    assert rows[0]["agreement_with_ideal_mean"] == 1.0 and all(0 <= row["accuracy_mean"] <= 1 for row in rows)
    assert (tmp_path / "modes" / "sweep.png").exists()


# ------------------------------------------------------------------ noise-aware training
def test_noise_aware_training_perturbs_training_only(rng):
    import warnings  # noqa: PLC0415

    from tf_nvm.core.modes import ModeError, perturbed_training  # noqa: PLC0415
    from tf_nvm.noise.training import DeviceNoiseTraining, NoiseAwareTraining  # noqa: PLC0415

    keras = tf_nvm.keras.backend.keras
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn", filters=(6,), kernel_sizes=(5,),
                                                          input_shape=(32, 9)), "paper-4bit-bipolar", init="device")
    x = rng.normal(size=(128, 32, 9)).astype(np.float32)
    y = rng.integers(0, 6, 128)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = NoiseAwareTraining("pcm-like", t_inference=3600.0)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[callback])
    assert model.train_function is None  # the next fit traces a clean training function
    codes = {name: c.codes.copy() for name, c in tf_nvm.weight_codes(model).items()}
    clean = model(x[:8], training=False).numpy()
    with perturbed_training(callback.perturbation):
        np.testing.assert_array_equal(model(x[:8], training=False).numpy(), clean)  # inference unchanged
        # (training=True calls also update the BatchNorm statistics: compare them with each other only)
        first, second = model(x[:8], training=True).numpy(), model(x[:8], training=True).numpy()
        assert np.abs(first - second).max() > 0  # a new programmed chip every training step
    assert all(np.array_equal(codes[name], c.codes) for name, c in tf_nvm.weight_codes(model).items())
    # the size of the perturbation follows the noise model: no noise, no change
    ideal = DeviceNoiseTraining("ideal")
    values = tf.constant(np.arange(-15, 16, dtype=np.float32))
    np.testing.assert_array_equal(ideal.perturb(values, tf_nvm.model_spec(model)).numpy(), values.numpy())
    unipolar = tf_nvm.model_spec(model).replace(unipolar=True)  # one device at 12.2 uS: no clipping at 0 uS
    noisy = DeviceNoiseTraining(noise.GaussianNoise(prog_sigma_us=0.8)).perturb(tf.fill([50_000], 7.0), unipolar)
    step_us = 24.0 / 15  # (g_max - g_min) / top level of a 4-bit device, uS
    expected = 0.8 / step_us  # sigma 0.8 uS in level units
    assert abs(float(tf.math.reduce_std(noisy)) - expected) / expected < 0.03
    with pytest.raises(ModeError, match=r"perturbed_training: value 'pcm-like' is not a WeightPerturbation"):
        with perturbed_training("pcm-like"):
            pass
    with pytest.raises(SimulatorError, match=r"DeviceNoiseTraining: t_inference must be a number >= 0 \(seconds\)"):
        DeviceNoiseTraining("pcm-like", t_inference=-1)


def test_noise_aware_training_compensates_like_the_simulator():
    from tf_nvm.noise.training import DeviceNoiseTraining  # noqa: PLC0415

    # one training "chip" of 4-bit differential pairs at 1 day: the compensated weights' least-squares gain on the
    # codes is 1 within 0.5 % (the simulator's rule; raw-conductance ratios per device set over-corrected by ~2 %)
    spec = tf_nvm.core.presets.get("paper-4bit-bipolar")
    codes = tf.constant(np.random.default_rng(0).integers(-15, 16, 100_000).astype(np.float32))
    gains = []
    for _ in range(3):
        perturbed = DeviceNoiseTraining("pcm-like", t_inference=86400.0).perturb(codes, spec)
        gains.append(float(tf.reduce_sum(perturbed * codes) / tf.reduce_sum(codes * codes)))
    assert all(abs(gain - 1) < 0.005 for gain in gains), gains

