"""Run folders (tf_nvm.experiments.runs): reading every version, the errors a broken folder gives, step markers."""

import json
import os
import shutil

import numpy as np
import pytest

import tf_nvm
from tf_nvm import RunFolderError
from tf_nvm.experiments import runs
from tf_nvm.keras.backend import keras
from tf_nvm.core.preprocessing import Standardization
from tf_nvm.experiments.recipes import Recipe

STANDARDISATION = Standardization(np.asarray([0.5, -1.0, 2.0], np.float32), np.asarray([1.0, 2.0, 0.25], np.float32))
RECIPE = Recipe(name="tiny", dataset="har", architecture="har_cnn", spec="paper-2bit-bipolar", seeds=(0,))


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    float_model = keras.Sequential([keras.Input((4, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    return tf_nvm.quantize_model(float_model, "paper-2bit-bipolar", init="device"), float_model


@pytest.fixture(scope="module")
def written(models, tmp_path_factory):
    """A run folder written through the writer API (as `run_recipe` does)."""
    folder = tmp_path_factory.mktemp("runs") / "run"
    model, float_model = models
    runs.create_run(folder, RECIPE, STANDARDISATION, "test data")
    runs.write_seed(folder, 0, model, float_model)
    runs.write_result(folder, model, float_model, tf_nvm.model_spec(model), {"test_accuracy": 0.5})
    return folder


@pytest.fixture
def run(written, tmp_path):
    """A fresh copy of the written run folder, free to break."""
    return shutil.copytree(written, tmp_path / "run")


def test_written_folder_reads_back(written, models):
    run = runs.read_run(written)
    assert sorted(os.listdir(written)) == ["float_model.keras", "metrics.json", "model.keras", "preprocessing.json",
                                           "recipe.json", "run.json", "seed0", "spec.json", "tf_nvm_output.json"]
    assert run.schema_version == runs.SCHEMA_VERSION == 2 and run.tf_nvm_version == tf_nvm.__version__
    assert run.spec == tf_nvm.model_spec(models[0]) and run.spec.weight_scale > 0
    assert run.preprocessing == STANDARDISATION and run.data_source == "test data"
    assert run.recipe == RECIPE.to_dict() and run.dataset == "har" and run.metrics == {"test_accuracy": 0.5}
    assert run.model_path == os.path.join(written, "model.keras")
    assert run.float_model_path == os.path.join(written, "float_model.keras")
    x = np.random.default_rng(0).normal(size=(5, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(run.model.predict(x, verbose=0), models[0].predict(x, verbose=0))
    light = runs.read_run(written, load_model=False)
    assert light.model is None and light.spec == run.spec and light.metrics == run.metrics


def test_folder_of_the_previous_release_reads_as_version_1(run):
    """Before run.json: no manifest, preprocessing.json without formula, recipe.json possibly partial."""
    os.remove(run / "run.json")
    (run / "preprocessing.json").write_text(json.dumps({"input_mean": [0.5, -1.0, 2.0],
                                                        "input_std": [1.0, 2.0, 0.25]}))
    (run / "recipe.json").write_text(json.dumps({"dataset": "har"}))
    folder = runs.read_run(run)
    assert folder.schema_version == 1 and folder.tf_nvm_version is None
    assert folder.preprocessing == STANDARDISATION and folder.data_source is None and folder.dataset == "har"
    for name in ("spec.json", "preprocessing.json", "recipe.json", "metrics.json", "float_model.keras"):
        os.remove(run / name)
    bare = runs.read_run(run)
    assert bare.preprocessing is bare.recipe is bare.metrics is bare.float_model_path is bare.dataset is None
    assert bare.spec.weight_scale > 0  # from the model


def test_a_keras_file_is_a_run(written):
    run = runs.read_run(written / "model.keras")
    assert run.model is not None and run.spec.weight_scale > 0 and run.schema_version is None
    assert run.preprocessing is None and run.recipe is None


def test_not_a_run(tmp_path):
    with pytest.raises(RunFolderError, match=r"'.*missing' does not exist; a run is a folder written by `tf-nvm "
                                             r"train` or a \.keras model file\. Fix: pass the folder"):
        runs.read_run(tmp_path / "missing")
    (tmp_path / "model.h5").write_text("")
    with pytest.raises(RunFolderError, match=r"model\.h5' is a file without the \.keras suffix; a run is a folder"):
        runs.read_run(tmp_path / "model.h5")


def test_missing_model(run):
    os.remove(run / "model.keras")
    with pytest.raises(RunFolderError, match=r"run folder '.*run' \(holding \['float_model.keras', 'metrics.json', "
                                             r".*\]\) has no model.keras. Fix: pass a folder written by `tf-nvm "
                                             r"train`"):
        runs.read_run(run)


@pytest.mark.parametrize("text, message", [
    ('{"input_mean": [1, 2', r"preprocessing.json is not valid JSON \(Expecting"),
    ('{"input_mean": [NaN, 0, 0], "input_std": [1, 1, 1]}', r"preprocessing.json is not valid JSON \(NaN is not a "
                                                             r"JSON number"),
    ('{"input_mean": [0, 0, 0], "input_std": [1, Infinity, 1]}', r"\(Infinity is not a JSON number"),
    ('[0, 1]', r"preprocessing.json holds a JSON list; expected a JSON object"),
    ('{"input_mean": [0, 0, 0]}', r"preprocessing.json: field 'input_std' is missing"),
    ('{"input_mean": [0, 0, 0], "input_std": [1, 0, 1]}', r"every input_std must be > 0, got \[1.0, 0.0, 1.0\]"),
    ('{"input_mean": [0, 0], "input_std": [1, 1, 1]}', r"input_mean has 2 values and input_std 3"),
])
def test_bad_preprocessing(run, text, message):
    (run / "preprocessing.json").write_text(text)
    with pytest.raises(RunFolderError, match=message + r".*Fix: re-run `tf-nvm train`"):
        runs.read_run(run)


def test_spec_must_match_the_model(run):
    spec = json.loads((run / "spec.json").read_text())
    scale = spec["weight_scale"]
    spec["weight_scale"] = 2 * scale
    (run / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(RunFolderError, match=rf"spec.json does not match the spec of .*model.keras \(weight_scale: "
                                             rf"{2 * scale!r} in spec.json, {scale!r} in the model\); spec.json must "
                                             r"be the spec of model.keras. Fix: re-run `tf-nvm train`; the run folder "
                                             r"was edited, truncated or mixes files of different runs\."):
        runs.read_run(run)
    assert runs.read_run(run, load_model=False).spec.weight_scale == 2 * scale  # no model: nothing to compare
    spec["weight_bits"] = 0
    (run / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(RunFolderError, match=r"spec.json: NVMSpec.weight_bits must be an integer .*Fix: re-run"):
        runs.read_run(run)


@pytest.mark.parametrize("manifest, message", [
    ({"format": "tf_nvm.run", "schema_version": 3, "tf_nvm_version": "9.0"},
     r"run.json: schema_version 3 \(written by tf_nvm 9.0\) is newer than this tf_nvm .* reads \(1..2\)\. Fix: "
     r"upgrade tf-nvm \(pip install -U tf-nvm\), or re-run `tf-nvm train` with this version\."),
    ({"format": "keras-tuner", "schema_version": 1},
     r"run.json: format 'keras-tuner' is not a tf_nvm run folder \(allowed: 'tf_nvm.run'\)\. Fix: pass a folder"),
    ({"format": "tf_nvm.run", "schema_version": "2"},
     r"run.json: schema_version must be an integer >= 1, got '2'\. Fix: re-run `tf-nvm train`"),
])
def test_manifest_errors(run, manifest, message):
    (run / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(RunFolderError, match=message):
        runs.read_run(run, load_model=False)


def test_step_markers(run):
    assert not runs.is_done(run, "export") and runs.step_info(run, "export") is None
    runs.mark_done(run, "export", {"tflite": "har.tflite"})
    assert runs.is_done(run, "export") and runs.step_info(run, "export") == {"tflite": "har.tflite"}
    assert json.loads((run / "steps" / "export.json").read_text()) == {
        "step": "export", "info": {"tflite": "har.tflite"}, **tf_nvm.core.provenance.current()}
    runs.mark_done(run, "simulate")
    assert runs.step_info(run, "simulate") == {}
    assert sorted(os.listdir(run / "steps")) == ["export.json", "simulate.json"]  # no temporary files left
    runs.create_run(run, RECIPE, STANDARDISATION, "again")  # a new training invalidates every later step
    assert not runs.is_done(run, "export") and not runs.is_done(run, "simulate")


def test_step_marker_errors(run, tmp_path):
    with pytest.raises(RunFolderError, match=r"step name must be lower-case letters, digits, '-' or '_' .*got "
                                             r"'\.\./x'\. Fix: name steps like 'train'"):
        runs.mark_done(run, "../x")
    with pytest.raises(RunFolderError, match=r"run folder '.*nowhere' does not exist\. Fix: run `tf-nvm train` "
                                             r"first"):
        runs.is_done(tmp_path / "nowhere", "train")
    with pytest.raises(RunFolderError, match=r"mark_done\('train'\): info must be a JSON-ready dict without NaN, "
                                             r"got Out of range float values are not JSON compliant.*Fix: pass plain"):
        runs.mark_done(run, "train", {"accuracy": float("nan")})
    with pytest.raises(RunFolderError, match=r"info must be a JSON-ready dict without NaN, got a list\. Fix"):
        runs.mark_done(run, "train", [1])
    assert not runs.is_done(run, "train")
    (run / "steps").mkdir(exist_ok=True)
    (run / "steps" / "train.json").write_text('{"step": "export", "info": {}}')
    with pytest.raises(RunFolderError, match=r"train.json: a step marker holds \{'step': 'train', 'info': \{...\}\}, "
                                             r"got .*Fix: delete .*train.json to redo the step\."):
        runs.is_done(run, "train")
    (run / "steps" / "train.json").write_text('{"step": "tr')
    with pytest.raises(RunFolderError, match=r"train.json is not valid JSON .*Fix: delete .*train.json to redo"):
        runs.is_done(run, "train")


def test_resuming_reuses_finished_seeds_and_refuses_other_runs(run, models, tmp_path):
    """`run_recipe(resume=True)` reads finished seeds back; another recipe or other data is a named error."""
    assert runs.check_resumable(tmp_path / "missing", RECIPE, STANDARDISATION, "test data") is False
    assert runs.check_resumable(run, RECIPE, STANDARDISATION, "test data") is True
    assert runs.read_seed(run, 0) is None  # written without a result: not finished
    row = {"seed": 0, "nvm": {"val_accuracy": 0.5, "test_accuracy": 0.25}}
    runs.write_seed(run, 0, *models, result=row)
    result, model, float_model = runs.read_seed(run, 0)
    x = np.random.default_rng(1).normal(size=(3, 4, 3)).astype(np.float32)
    assert result == row
    np.testing.assert_array_equal(model.predict(x, verbose=0), models[0].predict(x, verbose=0))
    np.testing.assert_array_equal(float_model.predict(x, verbose=0), models[1].predict(x, verbose=0))
    other = Recipe(name="tiny", dataset="har", architecture="har_cnn", spec="paper-2bit-unipolar", seeds=(0,))
    with pytest.raises(RunFolderError, match=r"cannot resume in .*: it holds a run of another recipe \(fields "
                                             r"differing: \['spec'\]\)\. Fix: pass --overwrite to start .* over"):
        runs.check_resumable(run, other, STANDARDISATION, "test data")
    with pytest.raises(RunFolderError, match=r"its run was prepared from other data \('test data', now 'other'\)"):
        runs.check_resumable(run, RECIPE, STANDARDISATION, "other")
    # with a content hash recorded, the data are the same wherever they were read from, and other when it differs
    runs.create_run(tmp_path / "hashed", RECIPE, STANDARDISATION, "PyPI package", "ab" * 32)
    assert runs.check_resumable(tmp_path / "hashed", RECIPE, STANDARDISATION, "cache", "ab" * 32) is True
    with pytest.raises(RunFolderError, match=r"its run was prepared from other data \(content sha256 abababababab\.\.\., "
                                             r"now cdcdcdcdcdcd\.\.\.\)\. Fix: pass --overwrite"):
        runs.check_resumable(tmp_path / "hashed", RECIPE, STANDARDISATION, "PyPI package", "cd" * 32)
    (run / "seed0" / "result.json").write_text('{"seed": 1}')
    with pytest.raises(RunFolderError, match=r"result.json must hold the result of seed 0, got \{'seed': 1\}\. "
                                             r"Fix: delete .*seed0 to train seed 0 again"):
        runs.read_seed(run, 0)
    os.remove(run / "recipe.json")
    with pytest.raises(RunFolderError, match=r"it holds no recipe.json / preprocessing.json of an earlier run"):
        runs.check_resumable(run, RECIPE, STANDARDISATION, "test data")
