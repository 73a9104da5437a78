"""Left from the first hardening round (issue 26, item 7): training and export arguments that ended in a raw error
or after work had started now end in named errors before anything is read or written.

The spec's bit fields and choices are pinned in tests/test_spec.py, the CLI's ``--seeds`` in
tests/test_cli_failfast.py.
"""

import json
import types
import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm.experiments import recipes
from tf_nvm.experiments.data import SPLITS
from tf_nvm.datasets.har import HAR_TEST_SUBJECTS, HAR_TRAIN_SUBJECTS
from tf_nvm.core.errors import ExportError, RecipeError


@pytest.mark.parametrize("seeds", [[-7], [2 ** 32], [], [1.0], [True], "0"])
def test_bad_seeds_are_refused_before_the_data_loads_and_nothing_is_written(tmp_path, seeds):
    from tf_nvm.experiments.train import run_recipe

    recipe = recipes.load("har-2bit-unipolar")
    out = tmp_path / "run"
    # a data path that does not exist: loading the data would fail with DatasetNotFoundError, so a RecipeError
    # here proves the seeds were checked first
    with pytest.raises(RecipeError, match=r"^seeds must be a non-empty list of integers in 0\.\.2\^32-1, got .*\. "
                                          r"Fix: pass integers in 0\.\.2\^32-1"):
        run_recipe(recipe, str(out), seeds=seeds, data_path=str(tmp_path / "missing.npz"), verbose=0)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_har_training_subjects_are_the_official_split():
    assert len(HAR_TRAIN_SUBJECTS) == 21 and not set(HAR_TRAIN_SUBJECTS) & set(HAR_TEST_SUBJECTS)
    assert sorted(HAR_TRAIN_SUBJECTS + HAR_TEST_SUBJECTS) == list(range(1, 31))


@pytest.mark.parametrize("value", [21, 100])
def test_validation_subjects_beyond_the_data_set_are_refused_at_recipe_load(tmp_path, value):
    data = recipes.load("har-2bit-unipolar").to_dict()
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**data, "validation_subjects": value}))
    with pytest.raises(RecipeError, match=rf"recipe 'har-2bit-unipolar': validation_subjects must be an integer in "
                                          rf"1\.\.20 for data set 'har' \(its training split has 21 volunteers, and "
                                          rf"at least one must stay for training\), got {value}\. Fix: "):
        recipes.load(str(path))
    assert recipes.load("har-2bit-unipolar").replace(validation_subjects=20).validation_subjects == 20


def test_validation_subjects_beyond_a_files_volunteers_are_refused_at_the_split():
    """A HAR-format file with fewer volunteers than the official split: the split names the file's count
    (before, TensorFlow failed on an empty training set with InvalidArgumentError)."""
    recipe = recipes.load("har-2bit-unipolar").replace(validation_subjects=3)
    x = np.zeros((6, 128, 9), np.float32)
    data = types.SimpleNamespace(x_train=x, y_train=np.zeros(6, np.int32), subject_train=np.array([1, 1, 3, 3, 5, 5]),
                                 x_test=x, y_test=np.zeros(6, np.int32), source="npz", path="small.npz")
    with pytest.raises(RecipeError, match=r"validation_subjects is 3, and the training split of npz: small\.npz has 3 "
                                          r"volunteers; allowed: 1\.\.2 \(at least one stays for training\)\. Fix"):
        SPLITS.get("har")(data, recipe)
    x_tr, _, x_val, _, _, _, _ = SPLITS.get("har")(data, recipe.replace(validation_subjects=2))
    assert len(x_tr) == 2 and len(x_val) == 4


@pytest.fixture(scope="module")
def tiny_model():
    from tf_nvm.keras.backend import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf_nvm.quantize_model(keras.Model(inputs, keras.layers.Dense(3)(inputs)), "paper-2bit-unipolar",
                                     init="device")


@pytest.mark.parametrize("data, message", [
    (np.array([["a"] * 8] * 4), r"representative_data must hold numbers, got dtype <U1 \(e\.g\. np\.str_\('a'\)\)\. "
                                r"Fix: pass standardised model inputs"),
    (np.array([[b"1"] * 8] * 4), r"representative_data must hold numbers, got dtype \|S1"),
    ([[1.0] * 8, [2.0] * 7], r"representative_data cannot be an array \(.*\)\. Fix"),
    (np.full((4, 8), np.nan, np.float32), r"representative_data holds NaN or infinite values"),
    (np.full((4, 8), 1e39), r"representative_data holds NaN or infinite values \(or values beyond float32\)"),
])
def test_representative_data_that_is_not_numbers_is_a_named_export_error(tmp_path, tiny_model, data, message):
    from tflite_export import export_tflite

    with pytest.raises(ExportError, match=message):
        export_tflite(tiny_model, tmp_path / "m.tflite", data, measure_arena=False)
    assert not (tmp_path / "m.tflite").exists()
