"""Epoch-level progress of one training, so a killed ``model.fit`` resumes at its last finished epoch.

A CIFAR-10 model trains for about an hour on two CPU cores; losing it to a
killed process or a closed session costs that hour again. `EpochProgress` is a
Keras callback that, after every epoch, writes into its own folder:

    epoch-<N>.index / .data-*   weights and optimizer state (a `tf.train.Checkpoint`) after epoch N
    best-<E>.npz                weights of the best epoch so far (by ``monitor``)
    state.json                  what the training is (``identity``), epochs done, the per-epoch history,
                                the best epoch and its value, seconds trained (in all and per epoch);
                                written last, atomically

so a folder always describes one consistent epoch. `train_model` restores it
before ``fit`` (``initial_epoch`` = epochs done; the cosine schedule continues
from the restored optimizer step) and, at the end, sets the weights of the best
epoch over the whole training, not only over the part after the resume. A resumed
training is not bit-identical to an uninterrupted one: the data order of the
epochs after the resume differs. The caller removes the folder once it has
written the finished model (`remove`).
"""

import contextlib
import glob
import io
import math
import os
import shutil
import time
from typing import Any

import numpy as np

from tf_nvm.keras.backend import keras, tf
from tf_nvm.core.atomic import write_bytes_atomic, write_json_atomic
from tf_nvm.core.errors import RunFolderError
from tf_nvm.core.safe_io import json_plain, read_json

__all__ = ["EpochTimes", "KeepBestEpoch", "EpochProgress", "remove", "STATE"]

STATE = "state.json"
"""The file naming the last finished epoch; the others in the folder are only read through it."""
_FORMAT = "tf_nvm.epoch_progress"


class EpochTimes(keras.callbacks.Callback):
    """Records the wall time of every epoch (seconds, validation included) in ``epoch_seconds``.

    Their median tells what a model costs per epoch even when the training was paused or shared the
    cores for a while (the total ``seconds`` of a training counts those too).
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch_seconds: list[float] = []
        self._epoch_started: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._epoch_started is not None:
            self.epoch_seconds.append(round(time.perf_counter() - self._epoch_started, 2))


class KeepBestEpoch(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best ``monitor`` value and sets them when training ends.

    The one keep-the-best-epoch mechanism of tf_nvm: `tf_nvm.experiments.train.train_model` (in memory),
    `EpochProgress` (resumable) and every search trial (`tf_nvm.nas.tuners`) use it. It selects as
    ``keras.callbacks.EarlyStopping(monitor, mode=mode, restore_best_weights=True)`` with a patience
    longer than the training did (it never stops): the first epoch is kept until a later one is strictly
    better (a tie keeps the earlier epoch; a NaN value is never better, and any number is better than a
    NaN first epoch). One instance serves one training (its best epoch is not reset when ``fit`` starts,
    so that `EpochProgress` can continue a restored one).

    Args:
        monitor: the logged metric whose best value selects the epoch (e.g. ``"val_accuracy"``).
        mode: ``"max"`` (the highest ``monitor`` value is best: accuracy) or ``"min"`` (the lowest: an error).

    Attributes:
        best_epoch: 1-based epoch with the best ``monitor`` value (0: none yet; counted from epoch 0 of
            ``fit``, so a ``fit`` with ``initial_epoch`` counts on from there).
        best_value: that value (None: none yet).

    Raises:
        RunFolderError: ``mode`` is neither ``"max"`` nor ``"min"``; at an epoch's end, ``monitor`` is not logged.
    """

    def __init__(self, monitor: str = "val_accuracy", mode: str = "max") -> None:
        super().__init__()
        if mode not in ("max", "min"):
            raise RunFolderError(f"{type(self).__name__}: mode must be 'max' or 'min', got {mode!r}. Fix: pass one "
                                 "of those.")
        self.monitor = monitor
        self.mode = mode
        self.best_epoch = 0
        self.best_value: float | None = None
        self._best_weights: list[np.ndarray] | None = None

    def improves(self, value: float) -> bool:
        """Whether an epoch of ``monitor`` value ``value`` replaces the best one so far."""
        if self.best_value is None:
            return True
        if math.isnan(value):
            return False
        if math.isnan(self.best_value):
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        logs = logs or {}
        if self.monitor not in logs:
            raise RunFolderError(f"{type(self).__name__} monitors {self.monitor!r}, which the training does not "
                                 f"log (logged: {sorted(logs)}). Fix: pass validation data to fit.")
        value = float(logs[self.monitor])
        if self.improves(value):
            self.best_epoch, self.best_value = epoch + 1, value
            self._best_weights = [np.array(w) for w in self.model.get_weights()]
            self._kept_best(epoch + 1)

    def _kept_best(self, epoch: int) -> None:
        """Called when epoch ``epoch`` (1-based) became the best one (its weights in ``_best_weights``)."""

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)


class EpochProgress(KeepBestEpoch, EpochTimes):
    """Keeps a training resumable epoch by epoch and keeps the weights of its best epoch.

    A `KeepBestEpoch` that also keeps its folder: at the end of training the model holds the weights
    of the best epoch, counted over every epoch of the training including those before a resume.

    Args:
        directory: the progress folder (created at the first finished epoch).
        identity: JSON-able description of the training (recipe fields, seed, model kind); a folder
            written for another identity is not resumed but started over (with a message).
        monitor: the logged metric whose best value selects the best epoch (e.g. ``"val_accuracy"``).
        verbose: print what was resumed or discarded.
        mode: ``"max"`` (the highest ``monitor`` value is best: accuracy) or ``"min"`` (the lowest: an error).

    Attributes:
        history: {metric: [value per epoch]} over the whole training (restored epochs first).
        best_epoch: 1-based epoch with the best ``monitor`` value (0: none yet).
        best_value: that value (None: none yet).
        seconds_before: seconds trained before the resume (0.0 for a fresh training).
        epoch_seconds: wall time of each epoch (restored ones first; folders written before tf_nvm
            recorded them restore none).
    """

    def __init__(self, directory: str | os.PathLike, identity: object, monitor: str = "val_accuracy",
                 verbose: bool = True, mode: str = "max") -> None:
        super().__init__(monitor, mode)
        self.directory = os.fspath(directory)
        self.identity = json_plain(identity)
        self.verbose = verbose
        self.history: dict[str, list[float]] = {}
        self.seconds_before = 0.0
        self._started: float | None = None

    # ------------------------------------------------------------- resume
    def restore(self, model: keras.Model) -> int:
        """Loads the last finished epoch into ``model`` (compiled) and its optimizer; returns epochs done.

        Returns 0 (nothing changed) when the folder is missing or was written for
        another identity (that folder is removed).

        Raises:
            RunFolderError: ``state.json`` is unreadable or names files that are missing or do not fit
                the model (the folder was edited or truncated); the message names the folder and the fix.
        """
        state_path = os.path.join(self.directory, STATE)
        if not os.path.isfile(state_path):
            return 0
        fix = f"Fix: delete {self.directory} to train this model from its first epoch."
        try:
            state = read_json(state_path, what="training progress", error=RunFolderError, fix=fix,
                              object_only=True)
            epochs = int(state["epochs_done"])
            history = {str(k): [float(v) for v in values] for k, values in state["history"].items()}
            best_epoch, best_value = int(state["best_epoch"]), state["best_value"]
            seconds = float(state["seconds"])
            epoch_seconds = [float(v) for v in state.get("epoch_seconds", [])][:epochs]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise RunFolderError(f"training progress {state_path!r} is unreadable ({err}). {fix}") from err
        if state.get("format") != _FORMAT or state.get("identity") != self.identity:
            if self.verbose:
                print(f"[tf-nvm] {self.directory}: progress of another training, started over", flush=True)
            remove(self.directory)
            return 0
        if epochs < 1 or any(len(values) != epochs for values in history.values()) or not 1 <= best_epoch <= epochs:
            raise RunFolderError(f"training progress {state_path!r}: {epochs} epoch(s) done but histories of "
                                 f"{sorted({len(v) for v in history.values()})} epochs and best epoch {best_epoch}. "
                                 f"{fix}")
        try:
            # slots first, so the checkpoint restores Adam's moments at once rather than on a later build
            model.optimizer.build(model.trainable_variables)
            self._checkpoint(model).read(os.path.join(self.directory, f"epoch-{epochs}")).assert_consumed()
            with np.load(os.path.join(self.directory, f"best-{best_epoch}.npz"), allow_pickle=False) as data:
                best_weights = [data[f"w{i}"] for i in range(len(data.files))]
        except (OSError, ValueError, KeyError, AssertionError, tf.errors.OpError) as err:
            raise RunFolderError(f"training progress in {self.directory!r} does not restore into model "
                                 f"{model.name!r}: {str(err)[:300]}. {fix}") from err
        if [w.shape for w in best_weights] != [tuple(w.shape) for w in model.weights]:
            raise RunFolderError(f"training progress in {self.directory!r}: best-{best_epoch}.npz holds "
                                 f"{len(best_weights)} arrays that do not fit model {model.name!r}'s "
                                 f"{len(model.weights)} weights. {fix}")
        self.history, self.best_epoch, self.best_value = history, best_epoch, float(best_value)
        self.seconds_before, self._best_weights, self.epoch_seconds = seconds, best_weights, epoch_seconds
        if self.verbose:
            print(f"[tf-nvm] resumed after epoch {epochs} (best so far: epoch {best_epoch}, {self.monitor} "
                  f"{self.best_value:.4f}; {seconds:.0f} s trained before) from {self.directory}", flush=True)
        return epochs

    @staticmethod
    def _checkpoint(model):
        return tf.train.Checkpoint(model=model, optimizer=model.optimizer)

    # ------------------------------------------------------------- training
    def on_train_begin(self, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, logs)  # the time, the check of ``monitor`` and the best epoch (`_kept_best`)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        done = epoch + 1
        os.makedirs(self.directory, exist_ok=True)
        self._checkpoint(self.model).write(os.path.join(self.directory, f"epoch-{done}"))
        write_json_atomic(os.path.join(self.directory, STATE), {
            "format": _FORMAT, "identity": self.identity, "epochs_done": done, "history": self.history,
            "best_epoch": self.best_epoch, "best_value": self.best_value, "seconds": self.seconds,
            "epoch_seconds": self.epoch_seconds})
        self._remove_stale(done)

    def _kept_best(self, epoch: int) -> None:
        """Writes the new best epoch's weights (``best-<epoch>.npz``)."""
        os.makedirs(self.directory, exist_ok=True)
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {f"w{i}": w for i, w in enumerate(self._best_weights or [])}
        np.savez(buffer, **arrays)
        write_bytes_atomic(os.path.join(self.directory, f"best-{epoch}.npz"), buffer.getvalue())

    @property
    def seconds(self) -> float:
        """Seconds trained, over the resumes (the epochs lost to a kill are not counted)."""
        return self.seconds_before + (time.perf_counter() - self._started if self._started is not None else 0.0)

    def _remove_stale(self, done):
        keep = {f"epoch-{done}", f"best-{self.best_epoch}"}
        for path in glob.glob(os.path.join(self.directory, "epoch-*")) + \
                glob.glob(os.path.join(self.directory, "best-*")):
            if os.path.basename(path).split(".")[0] not in keep:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def remove(directory: str | os.PathLike) -> None:
    """Removes a progress folder (after the finished model was written); a missing folder is fine."""
    shutil.rmtree(directory, ignore_errors=True)
