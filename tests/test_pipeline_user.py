"""`tf-nvm run` on a user's own .npz and model: recipe tasks, experiment variants by name, path or inline, a tiny
autoencoder end to end (the report says MSE, never accuracy), and the errors a user meets, pinned."""

import json
import re

import numpy as np
import pytest

from tf_nvm import CorruptDatasetError, PipelineError, RecipeError
from tf_nvm.experiments import recipes, runs
from tf_nvm.experiments.data import prepare_data
from tf_nvm.core.metrics import TASKS
from tf_nvm.pipeline import experiment as experiments
from tf_nvm.pipeline.report import RUNTIME_COLUMNS

_AE = {"architecture": "fc_autoencoder", "task": "reconstruction", "spec": "paper-4bit-bipolar", "batch_size": 32,
       "architecture_args": {"input_dim": 16, "units": 8, "bottleneck": 4, "depth": 1}}


def _experiment(variants, **changes):
    data = {"name": "ae", "description": "a tiny autoencoder on a user's .npz", "dataset": "npz",
            "variants": variants, "seeds": [0], "epochs": 1, "export_examples": 20,
            "simulation": {"chips": 2, "examples": 20, "sweep_t_inference": []}}
    data.update(changes)
    return data


def _low_rank(path, rows=200, test=40, dim=16, **extra):
    """Rows on a 3-dimensional subspace plus noise: what an autoencoder with a bottleneck can learn."""
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, dim))
    x = (rng.normal(size=(rows + test, 3)) @ basis + 0.1 * rng.normal(size=(rows + test, dim))).astype(np.float32)
    np.savez(path, x_train=x[:rows], x_test=x[rows:], **extra)
    return path


def test_training_tasks_are_the_metric_tasks_and_left_out_of_the_recipe_dict_by_default():
    from tf_nvm.experiments.train import TRAINING  # noqa: PLC0415

    assert sorted(recipes.TRAINING_TASKS) == TRAINING.names() == TASKS.names()
    bundled = recipes.load("har-2bit-unipolar")
    assert bundled.task is None and bundled.training_task == "classification" and "task" not in bundled.to_dict()
    recipe = recipes.from_dict({"name": "ae", "dataset": "npz", **_AE})
    assert recipe.to_dict()["task"] == "reconstruction"
    with pytest.raises(RecipeError, match=r"recipe 'ae': task must be null or one of \['classification', "
                                          r"'regression', 'reconstruction'\], got 'ranking'\. Fix: "):
        recipes.from_dict({"name": "ae", "dataset": "npz", **_AE, "task": "ranking"})


def test_variants_by_name_path_or_inline(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "ae-2bit.json").write_text(json.dumps({**_AE, "spec": "paper-2bit-unipolar"}))
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(_experiment([{"name": "ae-4bit", **_AE}, "recipes/ae-2bit.json"])))
    loaded = experiments.load(str(path))
    assert loaded.variant_names == ("ae-4bit", "ae-2bit")  # a path's name is its file stem
    assert loaded.variants[1] == str(tmp_path / "recipes" / "ae-2bit.json")  # relative to the experiment file
    assert loaded.training_recipe("ae-2bit").dataset == "npz"  # left out: the experiment's
    assert loaded.training_recipe("ae-2bit").seeds == (0,) and loaded.training_recipe("ae-2bit").epochs == 1
    assert loaded.resolved_task == "reconstruction" and loaded.metric_name == "mse"
    assert experiments.from_dict(loaded.to_dict()).variant_names == loaded.variant_names  # experiment.json reads back


@pytest.mark.parametrize("changes, message", [
    ({"dataset": "mnist"}, r"dataset must be one of \['cifar10', 'har', 'npz'\], got 'mnist'"),
    ({"variants": [{"name": "x", **_AE, "task": "ranking"}]},
     r"variant 'x': recipe 'x': task must be null or one of \['classification', 'regression', 'reconstruction'\], "
     r"got 'ranking'"),
    ({"variants": [dict(_AE)]}, r"an inline variant \(a training recipe written in the experiment\) needs a "
                                r"\"name\" \(it names the folder variants/<name>\), got None"),
    ({"variants": ["missing.json"]}, r"variant 'missing.json': recipe file missing.json not found\. Fix: pass the "
                                     r"path of a training recipe \.json"),
    ({"variants": [{"name": "a", **_AE}, {"name": "b", **_AE, "task": "regression"}]},
     r"variants must be training recipes of one task \(one task per experiment\), got \{'a': 'reconstruction', "
     r"'b': 'regression'\}"),
    ({"variants": [{"name": "a", **_AE}, {"name": "a", **_AE}]},
     r"variants must be distinct names, got \['a', 'a'\]"),
    ({"task": "classification"}, r"task must be null or 'reconstruction', the task its variants train"),
    ({"metric": "accuracy"}, r"metric must be null or one of \['mse', 'mae'\] \(task 'reconstruction'\), got "
                             r"'accuracy'"),
    ({"targets": {"float": 0.9}}, r"targets must be empty for task 'reconstruction' \(targets are accuracies of "
                                  r"classifiers\)"),
    ({"dataset": "har"}, r"variants must be training recipes of dataset 'har' \(one data set per experiment\)"),
])
def test_user_experiment_errors_are_named(changes, message):
    data = {**_experiment([{"name": "ae-4bit", **_AE}]), **changes}
    if changes.get("dataset") == "har":
        data["variants"] = [{"name": "ae-4bit", **_AE, "dataset": "npz"}]
    with pytest.raises(PipelineError, match=message):
        experiments.from_dict(data, where="experiment recipe x.json")


def test_a_users_npz_is_split_by_the_recipes_task(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    np.savez(tmp_path / "reg.npz", x_train=x[:40], y_train=x[:40, :2] * 3, x_test=x[40:])  # no y_test
    regression = recipes.from_dict({"name": "reg", "dataset": "npz", "architecture": "fc_autoencoder",
                                    "task": "regression", "spec": "paper-4bit-bipolar"})
    with pytest.raises(CorruptDatasetError, match=r"reg\.npz \(user \.npz\): a recipe of task 'regression' trains "
                                                  r"on x_train, y_train, x_test, y_test, and the \.npz lacks "
                                                  r"\['y_test'\]\. Fix: add the missing arrays .* or set the "
                                                  r"recipe's task to \"reconstruction\""):
        prepare_data(regression, tmp_path / "reg.npz", verbose=False)
    np.savez(tmp_path / "reg.npz", x_train=x[:40], y_train=x[:40, :2] * 3, x_test=x[40:], y_test=x[40:, :2] * 3)
    split = prepare_data(regression, tmp_path / "reg.npz", verbose=False)
    assert split.y_train.dtype == np.float32 and split.y_train.shape == (36, 2) and split.y_val.shape == (4, 2)
    np.testing.assert_array_equal(split.y_test, x[40:, :2] * 3)  # targets as given (not standardised)
    classifier = regression.replace(task=None)
    with pytest.raises(CorruptDatasetError, match=r"key 'y_train' is float32 \[40, 2\]; a recipe of task "
                                                  r"'classification' trains a classifier on integer labels \(N,\)\. "
                                                  r"Fix: pass integer class labels, or set the recipe's task to "
                                                  r"\"regression\" for float targets\."):
        prepare_data(classifier, tmp_path / "reg.npz", verbose=False)
    split = prepare_data(regression.replace(task="reconstruction"), tmp_path / "reg.npz", verbose=False)
    np.testing.assert_array_equal(split.y_train, split.x_train)  # the standardised inputs, y_train not read
    np.testing.assert_array_equal(split.y_test, split.x_test)


def test_regression_targets_must_have_the_models_output_shape(tmp_path):
    from tf_nvm.experiments import models  # noqa: PLC0415
    from tf_nvm.experiments.train import train_model  # noqa: PLC0415

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 16)).astype(np.float32)
    np.savez(tmp_path / "reg.npz", x_train=x[:40], y_train=x[:40, :3], x_test=x[40:], y_test=x[40:, :3])
    recipe = recipes.from_dict({"name": "reg", "dataset": "npz", "task": "regression", **{
        k: v for k, v in _AE.items() if k != "task"}})
    split = prepare_data(recipe, tmp_path / "reg.npz", verbose=False)
    model = models.build(recipe.architecture, **recipe.architecture_args)
    with pytest.raises(RecipeError, match=r"recipe 'reg' \(task 'regression'\): the model's output has shape \[16\] "
                                          r"and the training targets \[3\] per example\. Fix: pass targets"):
        train_model(model, recipe, split, verbose=0)


@pytest.mark.slow
def test_an_autoencoder_on_a_users_npz_through_tf_nvm_run(tmp_path, capsys):
    """The user's path end to end: an experiment with one inline reconstruction recipe, `tf-nvm run ... --data`,
    train -> export -> simulate -> cost -> report; the report shows MSE (targets and ideal chip), never accuracy."""
    from tf_nvm.cli import main  # noqa: PLC0415

    data = _low_rank(tmp_path / "ae.npz", y_test=np.arange(40) % 2)  # anomaly labels: not read by reconstruction
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(_experiment([{"name": "ae-4bit", **_AE}])))
    out = tmp_path / "out"
    assert main(["run", str(path), "--data", str(data), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"ae-4bit: runtime check on 20 test examples: the Keras model is trained for LiteRT \(spec "
                     r"runtime 'litert'\) and is bit-exact on LiteRT: 0/320 outputs differ; on TFLite Micro \d+/320 "
                     r"outputs differ \(max \d+ LSB\)\. To deploy on TFLite Micro", printed), printed[-3000:]
    assert "predictions" not in printed  # an autoencoder has no arg-max prediction
    folder = out / "variants" / "ae-4bit"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["task"] == "reconstruction" and metrics["metric"] == "mse"
    assert "test_accuracy" not in metrics and metrics["test_mse"] > 0 and metrics["seeds"][0]["nvm"]["test_mae"] > 0
    export = runs.step_info(folder, "export")
    assert export["runtime_report"]["runtime"] == "litert" and export["runtime_report"]["exact"]
    assert export["runtime_report"]["deployed"]["differing"] == 0
    assert export["runtime_report"]["other"]["runtime"] == "tflm"
    simulate = runs.step_info(folder, "simulate")
    assert simulate["task"] == "reconstruction" and simulate["metric"] == "mse"
    report = out / "report"
    text = (report / "report.md").read_text()
    assert "accuracy" not in text.lower() and "accuracy" not in (report / "report.json").read_text().lower()
    assert "## Test error (MSE, reconstruction)" in text and "## Deployment runtime" in text
    assert "| float test mse (fc_autoencoder network of ae-4bit) |" in text
    row = json.loads((report / "report.json").read_text())["tables"]["error"][0]
    assert row["NVM test mse (mean)"] == pytest.approx(metrics["test_mse"])
    assert row["crossbar ideal mse (selected seed)"] == pytest.approx(simulate["ideal_mse"])
    assert 0 < row["crossbar pcm-like mse vs ideal (mean)"] < row["crossbar pcm-like mse (mean)"]
    assert row[RUNTIME_COLUMNS["litert"]] == 0 and row[RUNTIME_COLUMNS["tflm"]] == 0
    assert row["simulator vs evaluator differing"] == 0 and row[RUNTIME_COLUMNS["deployed"]] == "litert"
    for name in ("error.png", "error_vs_time.png", "error.csv"):
        assert (report / name).is_file(), name
    assert not (report / "accuracy.png").exists()
    # a rerun reuses every step and rebuilds the same report
    first = json.loads((report / "report.json").read_text())
    assert main(["run", str(path), "--data", str(data), "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("done earlier, reused") == 4
    assert json.loads((report / "report.json").read_text()) == first
