"""Noise-aware training's mechanics on a tiny model and synthetic data (no real data, a few seconds each)."""

import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm import RecipeError, SimulatorError
from tf_nvm.experiments import recipes
from tf_nvm.keras.backend import keras, tf
from tf_nvm.core.modes import WeightPerturbation
from tf_nvm.noise.training import (CHIP_METRIC, DeviceNoiseTraining, NoiseAwareTraining, RelativeGaussianTraining,
                                   chip_accuracy)


def _tiny(spec="paper-4bit-bipolar"):
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn", filters=(6,), kernel_sizes=(5,),
                                                          input_shape=(32, 9)), spec, init="device")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 32, 9)).astype(np.float32), rng.integers(0, 6, n)


class _Counting(WeightPerturbation):
    """Counts its calls in a variable (traced into the training function: one per kernel per step)."""

    inference = False

    def __init__(self):
        self.calls = tf.Variable(0, trainable=False)

    def perturb(self, codes, spec):
        self.calls.assign_add(1)
        return codes


def test_warmup_switches_noise_on_at_its_epoch():
    model = _tiny()
    x, y = _data()
    callback = NoiseAwareTraining("pcm-like", t_inference=3600.0, warmup_epochs=2)
    callback.perturbation = counting = _Counting()
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(int(counting.calls.numpy())))
    model.fit(x, y, epochs=4, batch_size=32, verbose=0, callbacks=[callback, record])
    kernels = len(tf_nvm.weight_codes(model))
    assert seen == [0, 0, 3 * kernels, 6 * kernels]  # 3 steps per epoch, one perturbed chip per kernel per step
    assert callback.noisy_epochs == [2, 3]
    assert model.train_function is None  # the next fit traces a clean training function
    with pytest.raises(SimulatorError, match=r"NoiseAwareTraining: warmup_epochs must be an integer >= 0, got -1"):
        NoiseAwareTraining(warmup_epochs=-1)
    with pytest.raises(SimulatorError, match=r"kind must be one of \['device', 'relative'\], got 'add'"):
        NoiseAwareTraining(kind="add")
    with pytest.raises(SimulatorError, match=r"select_chips=3 needs validation_data=\(x_val, y_val\)"):
        NoiseAwareTraining(select_chips=3)


def test_chip_accuracy_is_inference_only_reproducible_and_exact_for_ideal_devices():
    model = _tiny()
    x, y = _data()
    clean = model(x, training=False).numpy()
    codes = {name: c.codes.copy() for name, c in tf_nvm.weight_codes(model).items()}
    clean_accuracy = float(np.mean(np.argmax(clean, -1) == y))
    # ideal devices: every chip is the trained model
    np.testing.assert_array_equal(chip_accuracy(model, x, y, DeviceNoiseTraining("ideal"), chips=2),
                                  [clean_accuracy] * 2)
    harsh = tf_nvm.noise.GaussianNoise(prog_sigma_us=6.0)  # about 4 levels of a 4-bit device: chips differ
    first = chip_accuracy(model, x, y, DeviceNoiseTraining(harsh), chips=4, seed=1)
    again = chip_accuracy(model, x, y, DeviceNoiseTraining(harsh), chips=4, seed=1)
    other = chip_accuracy(model, x, y, DeviceNoiseTraining(harsh), chips=4, seed=2)
    np.testing.assert_array_equal(first, again)  # the same seed, the same chips
    assert len(set(first.tolist() + other.tolist())) > 1
    # the model itself is untouched: inference and the codes
    np.testing.assert_array_equal(model(x, training=False).numpy(), clean)
    assert all(np.array_equal(codes[name], c.codes) for name, c in tf_nvm.weight_codes(model).items())


def test_relative_gaussian_noise_is_relative_to_the_largest_code():
    spec = tf_nvm.core.presets.get("paper-4bit-bipolar")
    codes = tf.constant(np.tile(np.array([-15.0, 0.0, 3.0, 15.0], np.float32), 25_000))
    noisy = RelativeGaussianTraining(0.04).perturb(codes, spec)
    deviation = (noisy - codes).numpy()
    assert abs(deviation.std() / (0.04 * 15) - 1) < 0.02
    small = RelativeGaussianTraining(0.04).perturb(codes / 5, spec)  # max |code| 3: five times less noise
    assert abs((small - codes / 5).numpy().std() / (0.04 * 3) - 1) < 0.02
    with pytest.raises(SimulatorError, match=r"relative_std must be a number >= 0, got -0.1"):
        RelativeGaussianTraining(-0.1)


class _Scripted(NoiseAwareTraining):
    """Writes a scripted chip accuracy instead of scoring chips."""

    def __init__(self, script):
        super().__init__("ideal", select_chips=1, validation_data=(np.zeros((1, 32, 9), np.float32), np.zeros(1)))
        self.script = script

    def on_epoch_end(self, epoch, logs=None):
        logs[CHIP_METRIC] = self.script[epoch]


def test_train_model_keeps_the_epoch_of_the_best_chip_accuracy():
    from tf_nvm.experiments.data import Split  # noqa: PLC0415
    from tf_nvm.core.preprocessing import Standardization  # noqa: PLC0415
    from tf_nvm.experiments.train import train_model  # noqa: PLC0415

    x, y = _data(96)
    split = Split(x, y, x[:32], y[:32], x[:32], y[:32], Standardization.fit(x), "synthetic")
    recipe = recipes.load("har-4bit-bipolar").replace(epochs=4, batch_size=32, augment_scale=0, augment_noise=0)
    model = _tiny()
    weights = {}
    grab = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: weights.setdefault(
        epoch, [w.copy() for w in model.get_weights()]))
    result = train_model(model, recipe, split, verbose=0, callbacks=[grab, _Scripted([0.2, 0.9, 0.1, 0.3])])
    assert result["best_epoch"] == 2 and result[CHIP_METRIC] == 0.9 and "val_accuracy" in result
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights[1]))  # epoch 2's weights kept


def test_noise_aware_training_leaves_the_export_exact(tmp_path):
    from tflite_export import check_nvm_weights, compare, export_tflite  # noqa: PLC0415

    model = _tiny("paper-2bit-unipolar")
    x, y = _data()
    callback = NoiseAwareTraining("pcm-like", t_inference=86400.0, scale=2.0, warmup_epochs=1, select_chips=2,
                                  validation_data=(x[:32], y[:32]))
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[callback]).history
    assert len(history[CHIP_METRIC]) == 2
    export_tflite(model, tmp_path / "m.tflite", x[:16], measure_arena=False)  # refuses if the codes differ
    assert all(check.matches_keras and check.allowed for check in check_nvm_weights(model, tmp_path / "m.tflite"))
    results = compare(model, tmp_path / "m.tflite", x[:64], runtimes=("litert",))
    assert [r.differing for r in results.values()] == [0], [str(r) for r in results.values()]


def test_recipe_noise_aware_settings():
    base = recipes.load("har-2bit-unipolar")
    assert "noise_aware" not in base.to_dict()  # plain recipes (and their run folders) unchanged
    aware = base.replace(noise_aware={"noise": "pcm-prog-x12", "scale": 1.5, "warmup_epochs": 10, "select_chips": 5})
    assert aware.noise_aware == {**recipes.NOISE_AWARE_DEFAULTS, "noise": "pcm-prog-x12", "scale": 1.5,
                                 "warmup_epochs": 10, "select_chips": 5}
    assert recipes.from_dict(aware.to_dict()) == aware
    with pytest.raises(RecipeError, match=r"noise_aware has unknown key\(s\) \['warmup'\]; allowed: \['noise'"):
        base.replace(noise_aware={"warmup": 3})
    with pytest.raises(RecipeError, match=r"noise_aware.select_chips must be an integer in 0..100, got -2"):
        base.replace(noise_aware={"select_chips": -2})


def test_an_experiment_variant_can_train_noise_aware():
    from tf_nvm.pipeline import experiment  # noqa: PLC0415

    data = experiment.load("paper-har").to_dict()
    plain = recipes.load("har-2bit-unipolar").to_dict()
    data["variants"] = ["har-2bit-unipolar", {**plain, "name": "har-2bit-unipolar-aware",
                                              "noise_aware": {"noise": "pcm-prog-x12", "select_chips": 5}}]
    found = experiment.from_dict(data).variant_recipes
    assert found["har-2bit-unipolar"].noise_aware is None
    assert found["har-2bit-unipolar-aware"].noise_aware["select_chips"] == 5
