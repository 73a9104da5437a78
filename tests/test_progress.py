"""Epoch-level resume of a killed training (`tf_nvm.experiments.progress`), in `train_model` and `run_recipe`."""

import json
import os

import numpy as np
import pytest

import tf_nvm
from tf_nvm.experiments import progress as epoch_progress
from tf_nvm.keras.backend import keras
from tf_nvm.experiments.data import Split, prepare_data
from tf_nvm.core.errors import RunFolderError
from tf_nvm.keras.quantize import quantize_model
from tf_nvm.experiments.recipes import Recipe
from tf_nvm.experiments.train import run_recipe, train_model

RECIPE = Recipe(name="t", dataset="har", architecture="har_signed_cnn", spec="paper-2bit-unipolar", epochs=3,
                seeds=(0,), architecture_args={"filters": [8], "kernel_sizes": [5]})


class Killed(Exception):
    """Stands for the process being killed right after an epoch was kept."""


class KillAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            self.weights = [np.array(w) for w in self.model.get_weights()]
            raise Killed


class Watch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if not hasattr(self, "first"):
            self.first = epoch
            self.iterations = int(self.model.optimizer.iterations.numpy())
            self.weights = [np.array(w) for w in self.model.get_weights()]


@pytest.fixture(scope="module")
def small():
    s = prepare_data(RECIPE, verbose=False)
    return Split(s.x_train[:320], s.y_train[:320], s.x_val[:160], s.y_val[:160], s.x_test[:160], s.y_test[:160],
                 s.standardisation, s.source)


def _nvm_model():
    keras.utils.set_random_seed(0)
    return quantize_model(tf_nvm.models.build(RECIPE.architecture, **RECIPE.architecture_args), RECIPE.spec)


@pytest.mark.slow
def test_a_killed_training_resumes_at_its_last_finished_epoch(tmp_path, small):
    folder = tmp_path / "progress"
    identity = {"kind": "nvm", "seed": 0}
    killer = KillAfter(2)
    with pytest.raises(Killed):
        train_model(_nvm_model(), RECIPE, small, verbose=0, callbacks=[killer], progress=(folder, identity))
    state = json.loads((folder / epoch_progress.STATE).read_text())
    assert state["epochs_done"] == 2 and len(state["history"]["val_accuracy"]) == 2
    assert len(state["epoch_seconds"]) == 2 and min(state["epoch_seconds"]) > 0
    assert sorted(p.name.split(".")[0] for p in folder.iterdir() if p.name != "state.json") == \
        ["best-%d" % state["best_epoch"], "epoch-2", "epoch-2"]  # .index and .data of epoch 2, one best

    watch = Watch()
    model = _nvm_model()  # a new process builds the same model again
    result = train_model(model, RECIPE, small, verbose=0, callbacks=[watch], progress=(folder, identity))
    steps = int(np.ceil(len(small.x_train) / RECIPE.batch_size))
    assert watch.first == 2 and watch.iterations == 2 * steps  # the third epoch, the cosine schedule continued
    for restored, kept in zip(watch.weights, killer.weights):  # quantizer ranges and weights of epoch 2
        np.testing.assert_array_equal(restored, kept)
    history = json.loads((folder / epoch_progress.STATE).read_text())["history"]["val_accuracy"]
    assert result["resumed_after"] == 2 and len(history) == 3
    assert len(result["epoch_seconds"]) == 3 and result["epoch_seconds"][:2] == state["epoch_seconds"]
    assert result["val_accuracy"] == pytest.approx(max(history))
    assert result["best_epoch"] == int(np.argmax(history)) + 1
    _, val = model.evaluate(small.x_val, small.y_val, verbose=0)
    assert val == pytest.approx(result["val_accuracy"])  # the best epoch over both parts, not the last one
    # killed after the last epoch, before the model was written: nothing left to train, the same model
    again = train_model(_nvm_model(), RECIPE, small, verbose=0, progress=(folder, identity))
    assert again["resumed_after"] == 3 and again["epoch_seconds"] == result["epoch_seconds"]
    assert {k: again[k] for k in ("val_accuracy", "best_epoch", "test_accuracy")} == \
        {k: result[k] for k in ("val_accuracy", "best_epoch", "test_accuracy")}


def test_progress_of_another_training_is_started_over_and_a_broken_one_is_a_named_error(tmp_path, small, capsys):
    folder = tmp_path / "progress"
    with pytest.raises(Killed):
        train_model(_nvm_model(), RECIPE, small, verbose=0, callbacks=[KillAfter(1)],
                    progress=(folder, {"seed": 0}))
    progress = epoch_progress.EpochProgress(folder, {"seed": 1})
    assert progress.restore(_nvm_model()) == 0
    assert "progress of another training, started over" in capsys.readouterr().out
    assert not folder.exists()

    with pytest.raises(Killed):
        train_model(_nvm_model(), RECIPE, small, verbose=0, callbacks=[KillAfter(1)],
                    progress=(folder, {"seed": 0}))
    for path in folder.glob("epoch-1.*"):
        path.unlink()
    model = _nvm_model()
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    with pytest.raises(RunFolderError, match=r"training progress in '.*progress' does not restore into model "
                                             r"'har_signed_cnn'.*Fix: delete .*progress to train this model from "
                                             r"its first epoch"):
        epoch_progress.EpochProgress(folder, {"seed": 0}).restore(model)
    (folder / "state.json").write_text("{not json")
    with pytest.raises(RunFolderError, match=r"training progress '.*state.json' is unreadable .*Fix: delete"):
        epoch_progress.EpochProgress(folder, {"seed": 0}).restore(model)


@pytest.mark.slow
def test_run_recipe_resumes_a_killed_seed_mid_training_and_cleans_up(tmp_path, small, monkeypatch, capsys):
    original = epoch_progress.EpochProgress.on_epoch_end

    def killed_in_nvm_epoch_2(self, epoch, logs=None):
        original(self, epoch, logs)
        if self.identity["kind"] == "nvm" and epoch + 1 == 2:
            raise Killed

    floats = tmp_path / "floats"
    monkeypatch.setattr(epoch_progress.EpochProgress, "on_epoch_end", killed_in_nvm_epoch_2)
    with pytest.raises(Killed):
        run_recipe(RECIPE, tmp_path / "run", split=small, verbose=0, shared_floats=floats)
    assert (tmp_path / "run" / "seed0" / "progress-nvm" / "state.json").exists()
    assert not list(floats.rglob("progress"))  # the float baseline was written, its progress removed
    monkeypatch.setattr(epoch_progress.EpochProgress, "on_epoch_end", original)
    metrics = run_recipe(RECIPE, tmp_path / "run", split=small, verbose=1, shared_floats=floats, resume=True)
    out = capsys.readouterr().out
    assert "float baseline (har_signed_cnn) shared with an earlier variant, reused" in out
    assert "resumed after epoch 2 (best so far: epoch" in out
    assert metrics["seeds"][0]["nvm"]["resumed_after"] == 2
    assert not (tmp_path / "run" / "seed0" / "progress-nvm").exists()
    assert sorted(os.listdir(tmp_path / "run" / "seed0")) == ["float_model.keras", "model.keras", "result.json"]


class _Replay(keras.callbacks.Callback):
    """Stands for a training whose validation scores are ``values``: sets them in the logs and marks the weights."""

    def __init__(self, values, monitor="val_accuracy"):
        super().__init__()
        self.values, self.monitor = values, monitor

    def on_epoch_end(self, epoch, logs=None):
        logs[self.monitor] = self.values[epoch]
        self.model.layers[-1].kernel.assign(np.full(self.model.layers[-1].kernel.shape, epoch + 1.0, np.float32))


@pytest.mark.parametrize("values, mode, epoch", [([0.5, 0.7, 0.7, 0.6], "max", 2),  # a tie keeps the earlier
                                                 ([float("nan"), 0.2, 0.9, 0.9], "max", 3),
                                                 ([0.3, 0.1, 0.1, 0.4], "min", 2)])
def test_trainer_progress_and_search_trials_keep_the_same_epoch(tmp_path, values, mode, epoch):
    """One keep-best mechanism: `KeepBestEpoch` (train_model in memory, every search trial) and `EpochProgress`
    (train_model resumable) keep the same epoch as ``EarlyStopping(restore_best_weights=True)`` that never stops."""
    x = np.zeros((4, 2), np.float32)
    y = np.zeros((4, 1), np.float32)
    kept = {}
    for name, make in (("early stopping", lambda: keras.callbacks.EarlyStopping(
            "val_accuracy", mode=mode, patience=len(values) + 1, restore_best_weights=True)),
                       ("keep best", lambda: epoch_progress.KeepBestEpoch("val_accuracy", mode=mode)),
                       ("progress", lambda: epoch_progress.EpochProgress(tmp_path / "p", {}, verbose=False,
                                                                          mode=mode))):
        model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
        model.compile("sgd", "mse")
        callback = make()
        model.fit(x, y, epochs=len(values), verbose=0, callbacks=[_Replay(values), callback])
        kept[name] = float(model.layers[-1].kernel.numpy()[0, 0])
        if name != "early stopping":
            assert callback.best_epoch == epoch
    assert kept == {"early stopping": epoch, "keep best": epoch, "progress": epoch}
    state = json.loads((tmp_path / "p" / epoch_progress.STATE).read_text())
    assert state["best_epoch"] == epoch
