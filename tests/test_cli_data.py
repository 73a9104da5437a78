"""A user's data and model from the command line, the same as from Python (issue 24, items 5, 6 and 8).

* A user's ``.npz`` is read with the checks of the bundled data sets (no pickle, shapes, dtypes) and the errors
  name the key.
* CIFAR-shaped uint8 images: ``tf-nvm simulate --dataset cifar10`` scores exactly what the Python API scores on
  the same model and data (the mapping's standardisation is applied once, on pixels as stored), and data in other
  units are refused instead of giving chance accuracy.
* A tiny autoencoder: ``tf-nvm export --data`` attaches the standardisation, ``tf-nvm simulate`` and the Python
  API give the same MSE/MAE per chip; ``tf-nvm cost --data`` reports the ideal chip's error.
"""

import json
import os
import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm.experiments import data as experiments_data
from tf_nvm.experiments.data import (INPUT_STD_RANGE, RawData, Split, evaluation_data, load_npz_data, load_raw_data,
                                     standardization_from_data)
from tf_nvm.core.errors import CorruptDatasetError, SimulatorError
from tf_nvm.core import preprocessing
from tf_nvm.core.preprocessing import Standardization


# --------------------------------------------------------------------------- a user's .npz (no TensorFlow)
def test_user_npz_is_read_with_the_data_set_checks(tmp_path, rng):
    x = rng.normal(size=(6, 4)).astype(np.float32)
    np.savez(tmp_path / "ok.npz", x_test=x, y_test=np.arange(6), x_train=x[:3], other=np.zeros(3))
    data = load_npz_data(tmp_path / "ok.npz")
    assert data.x_test.shape == (6, 4) and data.y_test.tolist() == list(range(6)) and data.x_train.shape == (3, 4)
    assert data.dataset is None and "user .npz" in data.source
    np.savez(tmp_path / "auto.npz", x_test=x)  # no targets: an autoencoder's
    assert load_raw_data(path=tmp_path / "auto.npz").y_test is None

    np.savez(tmp_path / "nokey.npz", x=x, y_test=np.arange(6))
    with pytest.raises(CorruptDatasetError, match=r"nokey\.npz: key 'x_test' is missing; expected keys x_test.*"
                                                  r"\(found: x, y_test\)\. Fix: pass a \.npz written with"):
        load_npz_data(tmp_path / "nokey.npz")
    np.savez(tmp_path / "rows.npz", x_test=x, y_test=np.arange(5))
    with pytest.raises(CorruptDatasetError, match=r"key 'y_test' has 5 rows and 'x_test' 6; one target per test "
                                                  r"example\. Fix:"):
        load_npz_data(tmp_path / "rows.npz")
    np.savez(tmp_path / "flat.npz", x_test=np.zeros(6, np.float32))
    with pytest.raises(CorruptDatasetError, match=r"key 'x_test' is float32 \[6\]; expected a float or integer "
                                                  r"array \(N >= 1, \*input_shape\) with at least 2 dimensions"):
        load_npz_data(tmp_path / "flat.npz")
    np.savez(tmp_path / "train.npz", x_test=x, x_train=np.zeros((3, 5), np.float32))
    with pytest.raises(CorruptDatasetError, match=r"key 'x_train' is \[3, 5\] and 'x_test' \[6, 4\]; expected the "
                                                  r"same example shape \[4\]"):
        load_npz_data(tmp_path / "train.npz")
    np.savez(tmp_path / "pickle.npz", x_test=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(CorruptDatasetError, match=r"key 'x_test' holds an object array \(a pickle\); tf_nvm never "
                                                  r"loads pickles"):
        load_npz_data(tmp_path / "pickle.npz")
    np.savez(tmp_path / "nan.npz", x_test=np.full((2, 3), np.nan, np.float32))
    with pytest.raises(CorruptDatasetError, match=r"key 'x_test' holds 6 NaN or infinite value\(s\)"):
        load_npz_data(tmp_path / "nan.npz")
    with pytest.raises(tf_nvm.core.errors.DatasetNotFoundError, match=r"no test data: .*Fix: pass --data PATH"):
        load_raw_data()
    with pytest.raises(CorruptDatasetError, match=r"has no 'x_train', so no input standardisation can be fitted"):
        standardization_from_data(load_npz_data(tmp_path / "auto.npz"))


def test_british_names_are_deprecated_aliases_of_the_american_ones():
    """The public names spelt the British way stay for one release, as aliases of the American ones."""
    assert preprocessing.Standardisation is Standardization and "Standardisation" in preprocessing.__all__
    assert experiments_data.standardisation_from_data is standardization_from_data
    assert "standardisation_from_data" in experiments_data.__all__
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    fitted = Standardization.fit(x)
    split = Split(x, x, x, x, x, x, fitted, "test")
    assert split.standardisation is split.standardization is fitted
    evaluation = experiments_data.EvaluationData(x, None, None, None, "test", False)
    assert evaluation.standardised is evaluation.standardized is False
    assert fitted.to_dict()["input_mean"] == [5.0, 6.0]  # file format unchanged: same keys, same values


# --------------------------------------------------------------------------- CIFAR-shaped images, CLI == Python
def _quantized(float_model, preset="paper-4bit-bipolar"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf_nvm.quantize_model(float_model, preset, init="device")


def test_cli_and_python_give_the_same_cifar_accuracy(tmp_path, capsys):
    from conftest import synthetic_cifar_folder  # noqa: PLC0415

    from tf_nvm.cli import main  # noqa: PLC0415
    from tf_nvm.simulator import monte_carlo  # noqa: PLC0415
    from tflite_export import export_crossbar  # noqa: PLC0415

    keras = tf_nvm.keras.backend.keras
    folder = synthetic_cifar_folder(tmp_path / "images", per_class=6, test_per_class=3)
    (x_train, y_train), (x_test, y_test) = tf_nvm.datasets.load_cifar10(path=folder, verbose=False)
    assert x_test.dtype == np.uint8 and x_test.shape == (30, 32, 32, 3)
    standardisation = Standardization.fit(x_train.astype(np.float32))  # as tf_nvm.experiments.data.prepare_data fits it
    keras.utils.set_random_seed(0)
    model = _quantized(keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, strides=4),
                                         keras.layers.ReLU(), keras.layers.Flatten(), keras.layers.Dense(10)]))
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(standardisation.apply(x_train), y_train, epochs=3, batch_size=20, verbose=0)
    mapping = export_crossbar(model, tmp_path / "m", preprocessing=standardisation)

    python = monte_carlo(mapping, standardisation.apply(x_test), y_test, chips=1)
    assert python.ideal_accuracy > 0.2  # learnt something: chance is 0.1
    out = tmp_path / "sim"
    assert main(["simulate", str(tmp_path / "m"), "--dataset", "cifar10", "--data", str(folder), "--chips", "1",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["chips"] == list(python.accuracies) and results["summary"]["ideal_accuracy"] == python.ideal_accuracy
    assert results["task"] == "classification" and results["metric"] == "accuracy"
    # the same images as a user's .npz give the same numbers
    np.savez(tmp_path / "c.npz", x_test=x_test, y_test=y_test, x_train=x_train)
    assert main(["simulate", str(tmp_path / "m"), "--data", str(tmp_path / "c.npz"), "--chips", "1",
                 "--out", str(tmp_path / "sim2")]) == 0
    assert json.loads((tmp_path / "sim2" / "results.json").read_text())["chips"] == list(python.accuracies)
    # the old spelling still works, with a deprecation line
    assert main(["simulate", str(tmp_path / "m"), "--data", "cifar10", "--data-path", str(folder), "--chips", "1",
                 "--examples", "10", "--out", str(tmp_path / "sim3")]) == 0
    assert "--data-path is deprecated; use --data PATH" in capsys.readouterr().err
    # pixels scaled by 1/255 before the mapping's own standardisation (the old CLI's defect) are refused
    scaled = RawData(x_test / np.float32(255), y_test, None, None, "cifar10", "cifar10 / 255")
    with pytest.raises(SimulatorError, match=r"standardised with the mapping's input_mean/input_std has a standard "
                                             r"deviation of 0\.0\d+ \(allowed 0\.1\.\.10.*different units"):
        evaluation_data(mapping, scaled)
    assert INPUT_STD_RANGE == (0.1, 10.0)


# --------------------------------------------------------------------------- regression: a tiny autoencoder
@pytest.fixture
def autoencoder(tmp_path, rng):
    """A Dense 16-8-16 autoencoder (paper-4bit-bipolar) trained 2 epochs on random data; its .keras and .npz."""
    keras = tf_nvm.keras.backend.keras
    keras.utils.set_random_seed(0)
    x_train = rng.normal(3, 2, (64, 16)).astype(np.float32)
    x_test = rng.normal(3, 2, (32, 16)).astype(np.float32)
    standardisation = Standardization.fit(x_train)
    model = _quantized(keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu"),
                                         keras.layers.Dense(16)]))
    model.compile("adam", "mse")
    model.fit(standardisation.apply(x_train), standardisation.apply(x_train), epochs=2, batch_size=32, verbose=0)
    model.save(tmp_path / "ae.keras")
    np.savez(tmp_path / "ae.npz", x_train=x_train, x_test=x_test)
    return model, standardisation, x_test


@pytest.mark.slow
def test_autoencoder_mse_per_chip_cli_equals_python(tmp_path, autoencoder, capsys):
    from tf_nvm.cli import main  # noqa: PLC0415
    from tf_nvm.mapping import reference  # noqa: PLC0415
    from tf_nvm.pipeline.evaluate import export_metadata  # noqa: PLC0415
    from tf_nvm.simulator import DeviceConfig, SimulationConfig, monte_carlo  # noqa: PLC0415
    from tflite_export import export_crossbar  # noqa: PLC0415

    model, standardisation, x_test = autoencoder
    assert export_metadata(model) == {"task": "regression"}  # from the compiled MSE loss
    mapping = export_crossbar(model, tmp_path / "py", preprocessing=standardisation, metadata=export_metadata(model))
    x = standardisation.apply(x_test)
    config = SimulationConfig(device=DeviceConfig(noise="pcm-like"))
    python = monte_carlo(mapping, x, None, config, chips=2)  # regression without targets: reconstruction
    assert python.task == "reconstruction" and python.metric == "mse"
    ideal = reference.evaluate(mapping, x).values()
    assert python.ideal_score == pytest.approx(float(np.mean((ideal - x) ** 2)))
    assert python.ideal_metrics["mae"] == pytest.approx(float(np.mean(np.abs(ideal - x))))
    assert len(set(python.scores)) == 2 and all(v > 0 for v in python.metrics["mse_vs_ideal"])
    with pytest.raises(SimulatorError, match=r"MonteCarloResult\.accuracies: this result scores 'mse'"):
        python.accuracies  # noqa: B018

    # the CLI: export attaches the standardisation fitted on x_train, simulate reads the same .npz
    assert main(["export", str(tmp_path / "ae.keras"), "--mapping", str(tmp_path / "cli"), "--data",
                 str(tmp_path / "ae.npz")]) == 0
    assert "input standardisation fitted on 64 training examples" in capsys.readouterr().out
    assert main(["simulate", str(tmp_path / "cli"), "--data", str(tmp_path / "ae.npz"), "--chips", "2", "--preset",
                 "pcm-like", "--out", str(tmp_path / "sim")]) == 0
    results = json.loads((tmp_path / "sim" / "results.json").read_text())
    assert results["task"] == "reconstruction" and results["chips"] == list(python.scores)
    assert results["chip_metrics"]["mae"] == list(python.metrics["mae"])
    assert results["summary"]["ideal_mse"] == python.ideal_score
    assert open(tmp_path / "sim" / "chips.md").readline().startswith("| chip | mse | mse_vs_ideal | mae |")
    # --metric picks the primary metric; accuracy does not suit a reconstruction
    assert main(["simulate", str(tmp_path / "cli"), "--data", str(tmp_path / "ae.npz"), "--chips", "1", "--metric",
                 "mae", "--out", str(tmp_path / "mae")]) == 0
    assert json.loads((tmp_path / "mae" / "results.json").read_text())["metric"] == "mae"
    assert main(["simulate", str(tmp_path / "cli"), "--data", str(tmp_path / "ae.npz"), "--metric", "accuracy",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "metric 'accuracy' does not suit task 'reconstruction'" in capsys.readouterr().err
    # a sweep scores the same metric, and plots it
    assert main(["simulate", str(tmp_path / "cli"), "--data", str(tmp_path / "ae.npz"), "--chips", "1", "--sweep",
                 "adc.bits=4,8", "--set", "adc.mode=shared", "--out", str(tmp_path / "sweep")]) == 0
    rows = json.loads((tmp_path / "sweep" / "results.json").read_text())["rows"]
    assert [row["adc.bits"] for row in rows] == [4, 8] and all(row["mse_vs_ideal_mean"] > 0 for row in rows)
    assert [row["ideal_mse"] for row in rows] == pytest.approx([python.ideal_score] * 2) and rows[0]["metric"] == "mse"
    assert (tmp_path / "sweep" / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    # float targets make it a regression against them
    np.savez(tmp_path / "reg.npz", x_test=x_test, y_test=x)
    assert main(["simulate", str(tmp_path / "cli"), "--data", str(tmp_path / "reg.npz"), "--chips", "2", "--preset",
                 "pcm-like", "--out", str(tmp_path / "reg")]) == 0
    reg = json.loads((tmp_path / "reg" / "results.json").read_text())
    assert reg["task"] == "regression" and reg["chips"] == list(python.scores)
    # cost: the ideal chip's errors on the data
    assert main(["cost", str(tmp_path / "cli"), "--data", str(tmp_path / "ae.npz"), "--out", str(tmp_path / "cost")
                 ]) == 0
    cost = json.loads((tmp_path / "cost" / "results.json").read_text())
    assert cost["ideal_scores"] == {"mse": pytest.approx(python.ideal_score),
                                    "mae": pytest.approx(python.ideal_metrics["mae"])}


def test_export_and_simulate_refuse_bad_user_inputs(tmp_path, autoencoder, capsys):
    from tf_nvm.cli import main  # noqa: PLC0415

    np.savez(tmp_path / "pickle.npz", x_test=np.array([1, None], dtype=object))
    assert main(["export", str(tmp_path / "ae.keras"), "--mapping", str(tmp_path / "m"), "--data",
                 str(tmp_path / "pickle.npz")]) == 2
    assert "key 'x_test' holds an object array (a pickle)" in capsys.readouterr().err
    (tmp_path / "std.json").write_text(json.dumps({"input_mean": [0.0] * 16, "input_std": [1.0] * 16}))
    assert main(["export", str(tmp_path / "ae.keras"), "--mapping", str(tmp_path / "m"), "--standardisation",
                 str(tmp_path / "std.json")]) == 0
    np.savez(tmp_path / "shape.npz", x_test=np.zeros((4, 12), np.float32))
    assert main(["simulate", str(tmp_path / "m"), "--data", str(tmp_path / "shape.npz"), "--out",
                 str(tmp_path / "s")]) == 2
    assert "has examples of shape [12]; the mapping's input" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "s" / "results.json")


def test_legacy_cifar_run_standardisation_is_read_in_pixel_units(capsys):
    import types  # noqa: PLC0415

    from tf_nvm.pipeline.evaluate import run_standardization  # noqa: PLC0415

    legacy = Standardization(np.array([0.49, 0.48, 0.45], np.float32), np.array([0.25, 0.24, 0.26], np.float32))
    found = run_standardization(types.SimpleNamespace(dataset="cifar10", preprocessing=legacy), "runs/old")
    np.testing.assert_array_equal(found.mean, legacy.mean * 255)
    np.testing.assert_array_equal(found.std, legacy.std * 255)
    assert "preprocessing.json was fitted on pixels scaled to 0..1" in capsys.readouterr().err
    pixels = Standardization(legacy.mean * 255, legacy.std * 255)
    assert run_standardization(types.SimpleNamespace(dataset="cifar10", preprocessing=pixels), "r") is pixels
    har = Standardization(np.zeros(9, np.float32), np.full(9, 0.5, np.float32))
    assert run_standardization(types.SimpleNamespace(dataset="har", preprocessing=har), "r") is har


def test_tasks_metrics_and_experiment_fields_are_checked():
    from tf_nvm.core.errors import PipelineError  # noqa: PLC0415
    from tf_nvm.core.metrics import METRICS, TASKS, resolve_task, task_of_loss  # noqa: PLC0415
    from tf_nvm.pipeline import experiment  # noqa: PLC0415

    assert TASKS.names() == ["classification", "reconstruction", "regression"]
    assert METRICS.names() == ["accuracy", "mae", "mse"]
    assert [task_of_loss(x) for x in ("mse", "sparse_categorical_crossentropy", "huber_loss", None, "mine")] == [
        "regression", "classification", "regression", None, None]
    assert resolve_task(y=np.arange(3)).name == "classification"
    assert resolve_task(y=np.zeros((3, 2), np.float32)).name == "regression"
    assert resolve_task(y=None).name == "reconstruction" and resolve_task("classification").name == "classification"
    assert resolve_task("regression", y=np.zeros((3, 2))).name == "regression"
    assert resolve_task("regression").name == "reconstruction"  # a regression without targets: an autoencoder
    with pytest.raises(SimulatorError, match=r"simulate: task 'ranking' is not known; known: \['classification', "
                                             r"'reconstruction', 'regression'\]"):
        resolve_task("ranking")
    data = experiment.load("paper-har").to_dict()
    assert data["task"] is None and data["metric"] is None
    with pytest.raises(PipelineError, match=r"task must be null or one of \['classification', "
                                            r"'reconstruction', 'regression'\], got 'ranking'"):
        experiment.from_dict({**data, "task": "ranking"})
    with pytest.raises(PipelineError, match=r"metric must be null or one of \['accuracy', 'mae', 'mse'\], got 'f1'"):
        experiment.from_dict({**data, "metric": "f1"})


@pytest.mark.slow
def test_a_recipe_trains_on_a_users_npz_and_simulate_reads_its_run_folder(tmp_path, rng, capsys):
    from tf_nvm.cli import main  # noqa: PLC0415

    y = rng.integers(0, 3, 120)
    x = (rng.normal(0, 1, (120, 16, 3)) + y[:, None, None]).astype(np.float32)  # learnable: the class shifts x
    np.savez(tmp_path / "user.npz", x_train=x[:90], y_train=y[:90], x_test=x[90:], y_test=y[90:])
    (tmp_path / "r.json").write_text(json.dumps({
        "description": "a user's .npz", "dataset": "npz", "architecture": "har_search_mlp",
        "architecture_args": {"input_shape": [16, 3], "num_classes": 3, "units": [8], "input_pool": 1},
        "spec": "paper-4bit-bipolar", "init": "device", "epochs": 2, "batch_size": 16, "learning_rate": 0.01,
        "seeds": [0]}))
    assert main(["train", str(tmp_path / "r.json"), "--data", str(tmp_path / "user.npz"), "--out",
                 str(tmp_path / "run"), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert main(["simulate", str(tmp_path / "run"), "--data", str(tmp_path / "user.npz"), "--chips", "1",
                 "--out", str(tmp_path / "sim")]) == 0
    results = json.loads((tmp_path / "sim" / "results.json").read_text())
    assert results["task"] == "classification" and results["examples"] == 30
    assert results["summary"]["ideal_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=2 / 30)
    assert main(["train", str(tmp_path / "r.json"), "--out", str(tmp_path / "run2"), "--quiet"]) == 2
    assert "data set 'npz' is a user's .npz file, and no path was given. Fix: pass --data PATH" in \
        capsys.readouterr().err
    np.savez(tmp_path / "float.npz", x_train=x[:90], y_train=x[:90, 0, 0], x_test=x[90:], y_test=y[90:])
    assert main(["train", str(tmp_path / "r.json"), "--data", str(tmp_path / "float.npz"), "--out",
                 str(tmp_path / "run3"), "--quiet"]) == 2
    assert "key 'y_train' is float32 [90]; a recipe of task 'classification' trains a classifier on integer labels" \
        in capsys.readouterr().err
