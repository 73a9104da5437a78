"""Training on real data through the public paths: the CLI, recipes, and plain fit."""

import dataclasses
import json
import pathlib
import re
import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm import NonInhibitingCrossbarWarning, RecipeError
from tf_nvm.experiments import recipes, runs
from tf_nvm.cli import main
from tf_nvm.experiments.data import SPLITS, prepare_data
from tf_nvm.datasets import DATASETS
from tf_nvm.experiments.recipes import Recipe
from tf_nvm.experiments.train import train_model

from conftest import synthetic_cifar_folder as _synthetic_cifar_folder


@pytest.fixture(scope="module")
def har_split():
    return prepare_data(Recipe(name="t", dataset="har", architecture="har_cnn", spec="paper-2bit-bipolar"),
                        verbose=False)


def test_bundled_recipes_load():
    assert {"har-2bit-unipolar", "har-2bit-bipolar", "har-4bit-bipolar", "har-4bit-unipolar"} <= set(recipes.names())
    recipe = recipes.load("har-2bit-unipolar")
    assert recipe.nvm_spec.weight_bits == 2 and recipe.nvm_spec.unipolar


@pytest.mark.slow
def test_cli_train_writes_run_folder(tmp_path, capsys, har_split):
    recipe = {"dataset": "har", "architecture": "har_signed_cnn", "spec": "paper-2bit-unipolar",
              "architecture_args": {"filters": [16], "kernel_sizes": [9]}, "epochs": 2, "seeds": [0]}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(recipe))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out), "--quiet"]) == 0
    for name in ("model.keras", "float_model.keras", "spec.json", "metrics.json", "recipe.json",
                 "preprocessing.json", "seed0/model.keras"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"test_accuracy", "float_test_accuracy", "spec"} <= set(metrics)
    assert metrics["spec"]["weight_bits"] == 2 and metrics["spec"]["weight_scale"] > 0
    assert metrics["test_accuracy"] > 0.6 and metrics["float_test_accuracy"] > 0.6  # 6 classes: chance ~0.17
    assert metrics["split_sizes"]["test"] == 2996
    assert metrics["split_sizes"]["train"] + metrics["split_sizes"]["val"] == 7415
    model = tf_nvm.load_model(out / "model.keras")
    assert tf_nvm.model_spec(model).to_dict() == metrics["spec"]
    assert '"test_accuracy"' in capsys.readouterr().out
    assert json.loads((out / "run.json").read_text()) == {"format": "tf_nvm.run", "schema_version": 2,
                                                          **tf_nvm.core.provenance.current()}
    assert set(json.loads((out / "preprocessing.json").read_text())) == {"input_mean", "input_std", "formula",
                                                                         "data_source", "data_sha256"}
    run = runs.read_run(out)
    assert run.schema_version == 2 and run.tf_nvm_version == tf_nvm.__version__
    assert run.spec.to_dict() == metrics["spec"] and run.metrics == metrics and run.dataset == "har"
    assert run.recipe["architecture_args"] == {"filters": [16], "kernel_sizes": [9]}
    assert run.float_model_path == str(out / "float_model.keras") and (out / "seed0" / "float_model.keras").exists()
    assert run.preprocessing == har_split.standardisation  # same training part, same standardisation
    # the same data set; its path may differ (first load from the package, later ones from the cache)
    assert run.data_source.split(":")[0] == har_split.source.split(":")[0]
    assert runs.is_done(out, "train") and runs.step_info(out, "train") == {"seeds": [0], "selected_seed": 0}


@pytest.mark.slow
def test_relu_cnn_trains_normally_as_2bit_bipolar(har_split):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonInhibitingCrossbarWarning)
        model = tf_nvm.quantize_model(tf_nvm.models.build("har_cnn"), "paper-2bit-bipolar", init="device")
    recipe = Recipe(name="t", dataset="har", architecture="har_cnn", spec="paper-2bit-bipolar", epochs=3)
    result = train_model(model, recipe, har_split, verbose=0)
    assert result["test_accuracy"] > 0.8
    assert len(result["epoch_seconds"]) == 3 and sum(result["epoch_seconds"]) <= result["seconds"]


def test_recipe_errors(tmp_path):
    with pytest.raises(RecipeError, match=r"recipe 'nope' not found \(looked for .*nope.json\)\. Known recipes: "
                                          r"\[.*'har-2bit-unipolar'.*\]\. Fix: pass one of those names "):
        recipes.load("nope")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dataset": "mnist", "architecture": "har_cnn", "spec": "paper-2bit-bipolar"}))
    with pytest.raises(RecipeError, match=r"recipe 'bad': dataset must be one of \['cifar10', 'har', 'npz'\], got "
                                          r"'mnist'\. Fix: correct the recipe file"):
        recipes.load(str(bad))
    bad.write_text(json.dumps({"dataset": "har", "architecture": "har_cnn", "spec": {"weight_bits": 0}}))
    with pytest.raises(RecipeError, match=r"recipe 'bad': invalid spec: NVMSpec.weight_bits must be an integer"):
        recipes.load(str(bad))
    bad.write_text(json.dumps({"dataset": "har", "architecture": "har_cnn", "spec": "paper-2bit-bipolar", "lr": 1}))
    with pytest.raises(RecipeError, match=r"has unknown field\(s\) \['lr'\]; allowed: .* Fix: correct"):
        recipes.load(str(bad))
    bad.write_text(json.dumps({"dataset": "har", "architecture": "har_cnn", "spec": "paper-9bit"}))
    with pytest.raises(RecipeError, match=r"recipe 'bad': invalid spec: unknown NVM preset 'paper-9bit'"):
        recipes.load(str(bad))
    bad.write_text(json.dumps({"dataset": "har", "spec": "paper-2bit-bipolar"}))
    with pytest.raises(RecipeError, match=r"lacks required field\(s\) \['architecture'\]\. Fix: correct"):
        recipes.load(str(bad))
    bad.write_text(json.dumps({"dataset": "har", "architecture": "har_cnn", "spec": "paper-2bit-bipolar",
                               "seeds": [0, "1"]}))
    with pytest.raises(RecipeError, match=r"seeds must be a non-empty list of integers in 0\.\.2\^32-1, got "
                                          r"\(0, '1'\)\. Fix"):
        recipes.load(str(bad))
    bad.write_text('{"dataset": "har", "architecture": "har_cnn", "spec": "paper-2bit-bipolar", "epochs": NaN}')
    with pytest.raises(RecipeError, match=r"bad.json is not valid JSON \(NaN is not a JSON number.*Fix: correct"):
        recipes.load(str(bad))


def test_unknown_architecture_or_arguments_are_refused_when_the_recipe_loads(tmp_path, capsys):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({"dataset": "har", "architecture": "resnet", "spec": "paper-2bit-bipolar"}))
    with pytest.raises(RecipeError, match=r"recipe 'arch': architecture must be one of \['cifar_cnn', 'cifar_vgg', "
                                          r"'ds_cnn', 'fc_autoencoder', 'har_cnn', 'har_search_cnn', 'har_search_mlp', "
                                          r"'har_signed_cnn', 'mobilenet_v1', 'resnet8'\], got 'resnet'\. Fix: correct "
                                          r"the recipe file"):
        recipes.load(str(path))
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--data", str(tmp_path / "no-data")]) == 2
    assert "architecture must be one of" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    path.write_text(json.dumps({"dataset": "har", "architecture": "har_cnn", "spec": "paper-2bit-bipolar",
                                "architecture_args": {"filterz": [4]}}))
    with pytest.raises(RecipeError, match=r"recipe 'arch': architecture_args \['filterz'\] do not fit har_cnn "
                                          r"\(got an unexpected keyword argument 'filterz'\); it takes "
                                          r"\['input_shape', 'num_classes', 'filters'\]\. Fix"):
        recipes.load(str(path))
    for rate in (float("inf"), 1e308, True):
        with pytest.raises(RecipeError, match=r"learning_rate must be a number in \(0, 10\], got .* \(larger steps "
                                              r"diverge to NaN weights\)"):
            recipes.Recipe(name="r", dataset="har", architecture="har_cnn", spec="paper-2bit-bipolar",
                           learning_rate=rate)


def test_every_registered_data_set_has_a_split():
    assert SPLITS.names() == DATASETS.names() == ["cifar10", "har", "npz"]


def test_har_split_is_standardised_exactly_as_before(har_split):
    """Standardization.fit on the training part, bit-identical to the former (x - mean) / (std + 1e-8) in float32."""
    data = DATASETS.get("har")(verbose=False)
    subjects = np.unique(data.subject_train)
    val = np.isin(data.subject_train, subjects[np.linspace(0, len(subjects) - 1, 4).round().astype(int)])
    x_tr = data.x_train[~val]
    assert x_tr.dtype == np.float32
    mean = x_tr.mean((0, 1))
    std = x_tr.std((0, 1)) + 1e-8
    assert mean.dtype == std.dtype == np.float32
    np.testing.assert_array_equal(har_split.standardisation.mean, mean)
    np.testing.assert_array_equal(har_split.standardisation.std, std)
    np.testing.assert_array_equal(har_split.x_train, ((x_tr - mean) / std).astype(np.float32))
    np.testing.assert_array_equal(har_split.x_val, ((data.x_train[val] - mean) / std).astype(np.float32))
    np.testing.assert_array_equal(har_split.x_test, ((data.x_test - mean) / std).astype(np.float32))
    assert har_split.y_train.dtype == np.int32 and len(har_split.x_val) + len(har_split.x_train) == 7415


def test_cli_reports_errors_without_traceback(capsys):
    assert main(["train", "no-such-recipe"]) == 2
    assert "tf-nvm: error: recipe 'no-such-recipe' not found" in capsys.readouterr().err


SHARED_CIFAR = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar10"


@pytest.mark.slow
def test_small_4bit_bipolar_cnn_trains_on_cifar10(tmp_path):
    """Real CIFAR-10 when the development copy is there (one epoch, 45,000 images); else a generated image folder
    in the same layout, so that the pipeline (folder loader, split, NVM training) is checked without a download."""
    real = SHARED_CIFAR.is_dir()
    source = SHARED_CIFAR if real else _synthetic_cifar_folder(tmp_path / "cifar10")
    recipe = Recipe(name="c", dataset="cifar10", architecture="cifar_cnn", spec="paper-4bit-bipolar",
                    epochs=1 if real else 4, batch_size=128 if real else 32,
                    architecture_args={"filters": [16, 32, 64]})
    split = prepare_data(recipe, data_path=source, verbose=False)
    if real:
        assert split.x_train.shape == (45000, 32, 32, 3) and split.x_test.shape == (10000, 32, 32, 3)
    else:
        assert split.x_train.shape == (1800, 32, 32, 3) and split.x_test.shape == (400, 32, 32, 3)
    model = tf_nvm.quantize_model(tf_nvm.models.build("cifar_cnn", filters=(16, 32, 64)), recipe.spec,
                                  init="device")
    result = train_model(model, recipe, split, verbose=0)
    # 10 classes: chance 0.1; real data measured 0.4-0.5 after one epoch; the generated classes are easier.
    assert result["test_accuracy"] > (0.35 if real else 0.5), (real, result)
    codes = tf_nvm.weight_codes(model)
    assert all(-15 <= c.codes.min() and c.codes.max() <= 15 for c in codes.values())


@pytest.mark.parametrize("name", ["../../x", "/abs/path", ".hidden", "a/b", ""])
def test_recipe_names_cannot_leave_the_runs_folder(name):
    with pytest.raises(RecipeError, match=r"recipe name .* must be 1-64 letters, digits, '\.', '_' or '-' starting "
                                          r"with a letter or digit \(it names the run folder runs/<name>\)\. Fix"):
        recipes.Recipe(name=name, dataset="har", architecture="har_cnn", spec="paper-2bit-bipolar")


def test_seeds_and_init_are_checked_when_the_recipe_loads():
    for seeds in ([-1], [2 ** 32], [], (5.0,)):
        with pytest.raises(RecipeError, match=r"seeds must be a non-empty list of integers in 0\.\.2\^32-1"):
            recipes.Recipe(name="r", dataset="har", architecture="har_cnn", spec="paper-2bit-bipolar", seeds=seeds)
    with pytest.raises(RecipeError, match=r"init must be one of \['keep', 'device'\], got 'bogus'\. Fix"):
        recipes.Recipe(name="r", dataset="har", architecture="har_cnn", spec="paper-2bit-bipolar", init="bogus")


def test_a_recipe_sign_split_is_checked_and_left_out_of_the_dict_when_off():
    with pytest.raises(RecipeError, match=r"sign_split must be one of \[None, 'auto'\] \(null or \"auto\"\), "
                                          r"got 'yes'\. Fix"):
        recipes.Recipe(name="r", dataset="har", architecture="har_cnn", spec="paper-2bit-unipolar", sign_split="yes")
    off = recipes.Recipe(name="r", dataset="har", architecture="har_cnn", spec="paper-2bit-unipolar")
    assert "sign_split" not in off.to_dict()  # run folders written before the field still match
    auto = recipes.from_dict(dict(off.to_dict(), sign_split="auto"))
    assert auto.sign_split == "auto" and auto.to_dict()["sign_split"] == "auto"


def test_an_earlier_run_is_never_overwritten_silently(tmp_path):
    from tf_nvm.experiments import runs  # noqa: PLC0415
    from tf_nvm.core.errors import RunFolderError  # noqa: PLC0415

    run = tmp_path / "run"
    (run / "seed7").mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    with pytest.raises(RunFolderError, match=r"already holds a run\. Fix: pass --overwrite \(the earlier run, its "
                                             r"seed folders included, is removed first\) or another --out\."):
        runs.prepare_folder(run)
    runs.prepare_folder(run, overwrite=True, remove=False)  # the check before the data loads removes nothing
    assert (run / "seed7").is_dir()
    runs.prepare_folder(run, overwrite=True)
    assert not run.exists()  # the stale seed7/ went with it
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match=r"is not empty and holds no run .* tf_nvm never writes into or "
                                             r"removes it\. Fix: pass an empty or new --out\."):
        runs.prepare_folder(other, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"
    runs.prepare_folder(tmp_path / "new")  # a missing folder is fine


def test_diverging_training_is_a_named_error_and_writes_nothing(har_split):
    import dataclasses  # noqa: PLC0415

    poisoned = dataclasses.replace(har_split, x_train=np.full_like(har_split.x_train[:256], np.nan),
                                   y_train=har_split.y_train[:256])
    recipe = Recipe(name="t", dataset="har", architecture="har_cnn", spec="paper-2bit-bipolar", epochs=2)
    # NaN inputs give a NaN or an infinite first loss (either way TerminateOnNaN stops after the first batch)
    with pytest.raises(tf_nvm.InvalidWeightsError, match=r"training of model 'har_cnn' diverged: loss (nan|inf) "
                                                         r"after 1 epoch\(s\).*Fix: lower the recipe's learning_rate"):
        train_model(tf_nvm.models.build("har_cnn", filters=(4, 4, 4)), recipe, poisoned, verbose=0)


def test_run_recipe_checks_the_folder_before_loading_data_and_honours_overwrite(tmp_path, monkeypatch):
    import tf_nvm.experiments.train as train_module  # noqa: PLC0415
    from tf_nvm.core.errors import RunFolderError  # noqa: PLC0415

    class DataLoaded(Exception):
        pass

    def loading(*args, **kwargs):
        raise DataLoaded

    monkeypatch.setattr(train_module, "prepare_data", loading)
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    recipe = Recipe(name="t", dataset="har", architecture="har_cnn", spec="paper-2bit-bipolar")
    with pytest.raises(RunFolderError, match=r"already holds a run\. Fix: pass --overwrite"):
        train_module.run_recipe(recipe, run, verbose=0)  # refused before any data is loaded
    with pytest.raises(DataLoaded):
        train_module.run_recipe(recipe, run, verbose=0, overwrite=True)  # allowed on to the data
    assert (run / "metrics.json").exists()  # nothing removed before the data loaded


@pytest.mark.slow
def test_variants_differing_only_in_the_spec_share_one_float_baseline(tmp_path, har_split, capsys, monkeypatch):
    from tf_nvm.experiments.data import Split  # noqa: PLC0415
    from tf_nvm.experiments.train import float_key, run_recipe  # noqa: PLC0415

    small = Split(har_split.x_train[:256], har_split.y_train[:256], har_split.x_val[:128], har_split.y_val[:128],
                  har_split.x_test[:128], har_split.y_test[:128], har_split.standardisation, har_split.source)
    common = dict(dataset="har", architecture="har_signed_cnn", epochs=1, seeds=(0,),
                  architecture_args={"filters": [8], "kernel_sizes": [5]})
    four = Recipe(name="four", spec="paper-4bit-bipolar", **common)
    two = Recipe(name="two", spec="paper-2bit-unipolar", **common)
    other = Recipe(name="other", spec="paper-2bit-unipolar", **{**common, "epochs": 2})
    assert float_key(four, small) == float_key(two, small) != float_key(other, small)
    # the key is the data's content, not where it was read from (a first load reads the PyPI package, later
    # loads the cache: one baseline); one changed value is other data
    moved = dataclasses.replace(small, source="npz (cache): /elsewhere/har.npz")
    assert float_key(four, moved) == float_key(four, small) and moved.content_hash() == small.content_hash()
    changed = dataclasses.replace(small, x_test=small.x_test.copy())
    changed.x_test[0, 0, 0] += 1.0
    assert float_key(four, changed) != float_key(four, small)
    floats = tmp_path / "floats"
    first = run_recipe(four, tmp_path / "four", split=small, verbose=1, shared_floats=floats)
    capsys.readouterr()
    second = run_recipe(two, tmp_path / "two", split=small, verbose=1, shared_floats=floats)
    assert "two seed 0: float baseline (har_signed_cnn) shared with an earlier variant, reused" in \
        capsys.readouterr().out
    assert second["seeds"][0]["float"] == first["seeds"][0]["float"]
    x = small.x_test[:16]
    a = runs.read_run(tmp_path / "four").float_model_path
    b = runs.read_run(tmp_path / "two").float_model_path
    np.testing.assert_array_equal(tf_nvm.load_model(a).predict(x, verbose=0),
                                  tf_nvm.load_model(b).predict(x, verbose=0))
    # a baseline made by other code (an upgrade, or a run interrupted before one) is trained again, not reused
    from tf_nvm.core import provenance  # noqa: PLC0415

    now = provenance.current()
    monkeypatch.setattr(provenance, "current", lambda: {**now, "tf_nvm_version": "9.9.9"})
    assert isinstance(runs.read_shared_float(floats / float_key(four, small) / "seed0"), runs.StaleFloat)
    run_recipe(dataclasses.replace(two, name="three"), tmp_path / "three", split=small, verbose=1,
               shared_floats=floats)
    printed = capsys.readouterr().out
    assert re.search(r"three seed 0: the float baseline in \S+ was made by tf_nvm .*, this is tf_nvm 9\.9\.9"
                     r"( \(commit \w+\))?; trained again", printed), printed
    assert "shared with an earlier variant, reused" not in printed
    assert runs.read_shared_float(floats / float_key(four, small) / "seed0")[0]["seconds"] > 0


def test_image_augmentation_is_reproducible_and_checked(tmp_path):
    from tf_nvm.keras.backend import keras  # noqa: PLC0415
    from tf_nvm.experiments.data import Split  # noqa: PLC0415
    from tf_nvm.experiments.train import training_data  # noqa: PLC0415

    recipe = Recipe(name="c", dataset="cifar10", architecture="cifar_vgg", spec="paper-4bit-bipolar", batch_size=4,
                    augment_crop=2, augment_flip=True)
    x = np.arange(8 * 6 * 6, dtype=np.float32).reshape(8, 6, 6, 1) + 1
    split = Split(x, np.arange(8), x, np.arange(8), x, np.arange(8), None, "test")

    def two_epochs():
        keras.utils.set_random_seed(0)
        data = training_data(recipe, split)
        return [np.concatenate([batch[0].numpy() for batch in data]) for _ in range(2)]

    first, again = two_epochs(), two_epochs()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # same seed, same augmented images
    assert not np.array_equal(first[0], first[1])  # a new draw each epoch
    assert first[0].shape == x.shape and (first[0] == 0).any()  # cropped from the zero-padded image
    for changes, message in (({"augment_crop": 17}, r"augment_crop must be an integer in 0..16 \(pixels\), got 17"),
                             ({"augment_flip": 1}, r"augment_flip must be true or false, got 1"),
                             ({"dataset": "har", "architecture": "har_cnn"},
                              r"augment_crop and augment_flip apply to images \(dataset 'cifar10'\), not to dataset "
                              r"'har'")):
        with pytest.raises(RecipeError, match=message):
            recipe.replace(**changes)
