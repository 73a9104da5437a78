"""keras-tuner tuners that drive tf_keras NVM models: RandomSearch, BayesianOptimization, Hyperband.

keras-tuner 1.4 imports Keras 3 and refuses tf_keras models in its own
``run_trial``. `NVMTunerMixin` overrides the two methods that touch the model
(``run_trial`` and ``load_model``), so the oracles, resuming
(``overwrite=False``), ``get_best_models()`` and keras-tuner's own chief/worker
distribution work unchanged. Per trial:

1. the hypermodel builds a float tf_keras model and `quantize_model` makes it an
   NVM model with the search's spec; a candidate that cannot be quantized raises
   keras-tuner's ``FailedTrialError`` with the reason (a failed trial, never a crash);
2. its hardware counts (`tf_nvm.nas.hardware`) are checked against the `Budget`;
   a candidate over budget is a failed trial before any training;
3. it is trained on the training part of the split (Adam, cosine decay over the
   trial's epochs, the recipe's augmentation) and its best-validation epoch is kept
   (`tf_nvm.experiments.progress.KeepBestEpoch`, as in ``tf-nvm train``; the validation
   part is held-out subjects for HAR, as ``tf-nvm train``); for Hyperband, ``tuner/epochs``
   and ``tuner/initial_epoch`` are honoured and the weights of ``tuner/trial_id`` are loaded
   first;
4. its weights are saved in the trial folder (``checkpoint``), its counts and time
   in ``nvm_trial.json``, and the metrics (``val_accuracy``, ``score``, every
   hardware count, ``seconds``, ``epochs``) go to the oracle.
"""

import dataclasses
import os
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import keras_tuner
import numpy as np
from keras_tuner.errors import FailedTrialError

from tf_nvm.keras.backend import keras
from tf_nvm.core.atomic import write_json_atomic
from tf_nvm.core.errors import (InvalidWeightsError, NonInhibitingCrossbarWarning, SearchError, TfNvmError,
                           ZeroCodesWarning)
from tf_nvm.nas.hardware import Budget, hardware_counts
from tf_nvm.nas.hypermodels import checked_hypermodel
from tf_nvm.nas.objectives import SearchObjective
from tf_nvm.keras.nvm_model import model_spec
from tf_nvm.core.safe_io import read_json
from tf_nvm.core.registry import Registry
from tf_nvm.keras.quantize import quantize_model
from tf_nvm.keras.sign_split import fuse_sign_split
from tf_nvm.experiments.data import Split
from tf_nvm.experiments.progress import KeepBestEpoch
from tf_nvm.experiments.batches import steps_per_epoch, training_data
from tf_nvm.core.spec import NVMSpec, resolve_spec

__all__ = ["Training", "NVMTunerMixin", "NVMRandomSearch", "NVMBayesianOptimization", "NVMHyperband", "TUNERS",
           "FailureAwareBayesianOracle", "TRIAL_FILE", "MAX_TRIAL_RECORD_BYTES", "CHECKPOINT"]

TRIAL_FILE = "nvm_trial.json"
"""Per trial folder: hardware counts, reason of a failure, seconds (written atomically)."""
MAX_TRIAL_RECORD_BYTES = 1024 * 1024
"""Largest ``nvm_trial.json`` read, bytes (1 MiB; one is under 4 KiB)."""
CHECKPOINT = "checkpoint"
"""Per trial folder: the trained weights (TensorFlow checkpoint prefix)."""


@dataclasses.dataclass(frozen=True)
class Training:
    """How each trial trains (the duck type of a recipe's schedule, see `tf_nvm.experiments.train`).

    Attributes:
        epochs: epochs per trial (Hyperband: its own ``tuner/epochs`` instead).
        batch_size: examples per step.
        learning_rate: peak Adam learning rate (cosine decay to 0 over the trial's epochs).
        augment_scale: standard deviation of a per-example, per-channel gain around 1 (0: off).
        augment_noise: standard deviation of additive Gaussian noise on standardised inputs (0: off).
        folds: 1: each trial trains once and is scored on the search's validation part. k > 1: each trial
            is cross-validated over k subject folds (`tf_nvm.experiments.data.subject_folds`: every training subject
            validates once) and scored by the mean of the folds' validation accuracies; k models per trial.
            One fixed group of validation subjects ranks architectures by how well they suit those few
            people (HAR: 4 validation subjects put small networks 2-5 points above their test accuracy).
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 2e-3
    augment_scale: float = 0.0
    augment_noise: float = 0.0
    folds: int = 1

    def __post_init__(self):
        for field, lo in (("epochs", 1), ("batch_size", 1), ("folds", 1)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise SearchError(f"training.{field} must be an integer >= {lo}, got {value!r}. Fix: e.g. "
                                  f"\"{field}\": {10 if field == 'epochs' else 64}.")
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float)) \
                or not 0 < self.learning_rate <= 10:
            raise SearchError(f"training.learning_rate must be a number in (0, 10], got {self.learning_rate!r}. "
                              "Fix: e.g. 0.002.")


class _OutOfTime(Exception):
    """Raised before a new trial is created once the search's time budget is spent."""


def _reason(err):
    return f"{type(err).__name__}: {err}"


if TYPE_CHECKING:  # the tuner class a mixin goes before (what mypy checks the mixin's methods against)
    from keras_tuner import Tuner as _Tuner
else:
    _Tuner = object


class NVMTunerMixin(_Tuner):
    """Mixin before a keras-tuner tuner class: its trials are tf_nvm NVM models.

    Args:
        hypermodel: `ArchitectureHyperModel`, any ``keras_tuner.HyperModel`` or
            function ``build(hp)`` returning a float tf_keras model.
        spec: the NVM spec (`NVMSpec`, preset name or dict) every candidate is quantized with.
        training: `Training` (default: ``Training()``).
        objective: `SearchObjective` (default: validation accuracy).
        budget: `Budget` (default: no limit).
        init: `quantize_model` init (``"device"`` or ``"keep"``).
        seed: seed of the oracle and of each trial's initialisation (trial seed: seed + crc32(trial_id)).
        max_seconds: wall-clock budget of one `search` call (s); no new trial starts after it (None: none).
        candidate_check: optional ``check(nvm_model)`` run on every quantized candidate before it trains;
            any exception it raises fails the trial with that reason (`tf-nvm search` passes a dry run of the
            crossbar exporter, ``tflite_export.crossbar.build_mapping``, so that every completed candidate can
            be exported).
        verbose: print one progress line per trial.
        **kwargs: the tuner's own arguments (``max_trials``, ``directory``,
            ``project_name``, ``overwrite``, ``max_consecutive_failed_trials``, ...).

    Call ``search(split)`` with a `tf_nvm.experiments.data.Split` (only its training and
    validation parts are used), or with a list of them (the folds of a cross-validated search, see
    `Training.folds`).
    """

    def __init__(self, hypermodel: Any, *, spec: NVMSpec | str | dict, training: Training | None = None,
                 objective: SearchObjective | None = None, budget: Budget | None = None, init: str = "device",
                 seed: int | None = 0, max_seconds: float | None = None,
                 candidate_check: Callable[[Any], object] | None = None, verbose: bool = True,
                 **kwargs: Any) -> None:
        self.spec = resolve_spec(spec, owner="search")
        self.candidate_check = candidate_check
        self.training = training or Training()
        self.search_objective = objective or SearchObjective()
        self.budget = budget or Budget()
        self.init = init
        self.max_seconds = max_seconds
        self.seed = seed  # workers' oracle proxies expose no seed
        self.verbose = verbose
        self.stopped_by_time = False
        self._deadline: float | None = None
        self._started: float | None = None
        super().__init__(hypermodel=checked_hypermodel(hypermodel),
                         objective=self.search_objective.keras_tuner_objective(), seed=seed, **kwargs)

    # ------------------------------------------------------------- building
    def build_nvm_model(self, hp: keras_tuner.HyperParameters, spec: NVMSpec | None = None) -> keras.Model:
        """The quantized (untrained) NVM model of ``hp``.

        Args:
            hp: the trial's hyperparameters.
            spec: the spec to quantize with (default: the search's; its weight scale, when
                not fixed, is calibrated on the freshly built float model).

        Raises:
            FailedTrialError: the hypermodel's model cannot be quantized (the reason in the message).
        """
        try:
            float_model = self.hypermodel.build(hp)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NonInhibitingCrossbarWarning)
                warnings.simplefilter("ignore", ZeroCodesWarning)
                return quantize_model(float_model, self.spec if spec is None else spec, init=self.init)
        except TfNvmError as err:
            raise FailedTrialError(f"cannot be quantized: {_reason(err)}") from err

    def _trial_seed(self, trial_id):
        return (int(self.seed or 0) + zlib.crc32(str(trial_id).encode())) % (2 ** 31)

    def _checkpoint(self, trial_id):
        return os.path.join(self.get_trial_dir(trial_id), CHECKPOINT)

    def _record(self, trial_id, **info):
        write_json_atomic(os.path.join(self.get_trial_dir(trial_id), TRIAL_FILE), info)

    def trained_spec(self, trial_id: str) -> NVMSpec:
        """The spec (weight scale included) trial ``trial_id`` was trained with, from its ``nvm_trial.json``.

        The weight scale is a constant of the quantized graph, not a checkpointed
        variable, so rebuilding a trained trial needs it.

        Raises:
            SearchError: the trial folder has no record of a trained model.
        """
        path = os.path.join(self.get_trial_dir(trial_id), TRIAL_FILE)
        try:
            record = read_json(path, max_bytes=MAX_TRIAL_RECORD_BYTES, what="trial record", error=SearchError,
                               object_only=True)
            return NVMSpec.from_dict(record["spec"])
        except (ValueError, KeyError, TypeError) as err:
            raise SearchError(f"trial {trial_id}: {path} holds no trained spec ({type(err).__name__}: {err}). "
                              "Fix: load only completed trials of this search folder (on the machine that ran "
                              "them), or rerun the search with --overwrite.") from None

    # ------------------------------------------------------------- the two overrides
    def run_trial(self, trial: keras_tuner.engine.trial.Trial, split: Split | Sequence[Split],
                  **_: Any) -> dict[str, float]:
        """Builds, quantizes, checks, trains and scores one candidate; returns its metrics dict.

        Raises:
            FailedTrialError: not quantizable, over budget, or training diverged.
        """
        hp = trial.hyperparameters
        start = time.perf_counter()
        keras.backend.clear_session()
        keras.utils.set_random_seed(self._trial_seed(trial.trial_id))

        def failed(reason, counts=None):
            """Records the trial as failed (reason, counts, seconds so far); the error to raise."""
            self._record(trial.trial_id, status="FAILED", reason=reason, counts=counts,
                         seconds=round(time.perf_counter() - start, 2))
            return FailedTrialError(reason)

        model, counts = self._checked_candidate(hp, failed)
        epochs = int(hp.values.get("tuner/epochs", self.training.epochs))
        initial_epoch = int(hp.values.get("tuner/initial_epoch", 0))
        splits = list(split) if isinstance(split, (list, tuple)) else [split]
        fold_vals = []
        for fold, fold_split in enumerate(splits):
            if fold:  # every fold starts from its own fresh initialisation
                keras.utils.set_random_seed(self._trial_seed(trial.trial_id) + fold)
                model = self.build_nvm_model(hp)
            if hp.values.get("tuner/trial_id"):  # Hyperband: continue the earlier trial's model (same weight scale)
                previous = hp.values["tuner/trial_id"]
                model = self.build_nvm_model(hp, self.trained_spec(previous))
                model.load_weights(self._checkpoint(previous)).expect_partial()
            fold_vals.append(self._fit(model, fold_split, epochs, initial_epoch, counts, failed))
        val = float(np.mean(fold_vals))
        model.save_weights(self._checkpoint(trial.trial_id))  # the last fold's model (get_best_models)
        seconds = time.perf_counter() - start
        metrics = {"val_accuracy": val, "score": self.search_objective.score(val, counts),
                   **{k: float(v) for k, v in counts.to_dict().items()}, "seconds": float(seconds),
                   "epochs": float(epochs)}
        self._record(trial.trial_id, status="COMPLETED", reason=None, counts=counts.to_dict(),
                     spec=model_spec(model).to_dict(),
                     seconds=round(seconds, 2), val_accuracy=val, epochs=epochs, initial_epoch=initial_epoch,
                     **({"fold_val_accuracies": fold_vals} if len(fold_vals) > 1 else {}))
        return metrics

    def _checked_candidate(self, hp, failed):
        """(the trial's quantized model, its hardware counts), or ``failed(reason)`` raised: not quantizable, refused
        by ``candidate_check`` or over the budget."""
        try:
            model = self.build_nvm_model(hp)
        except FailedTrialError as err:
            raise failed(str(err)) from err
        if self.candidate_check is not None:
            try:
                self.candidate_check(model)
            except Exception as err:  # noqa: BLE001  (any refusal is this trial's failure, with its reason)
                raise failed(f"cannot be exported: {_reason(err)}") from err
        counts = hardware_counts(model)
        over = self.budget.violation(counts)
        if over:
            raise failed(f"over the hardware budget: {over}", counts.to_dict())
        return model, counts

    def _fit(self, model, split, epochs, initial_epoch, counts, failed):
        """Trains ``model`` on one split (keeping its best validation epoch); returns that epoch's val accuracy.

        Raises ``failed(reason)`` when the training diverged.
        """
        fuse_sign_split(model)  # [t, -t] convolutions of a non-negative t: half the multiply-adds
        per_epoch = steps_per_epoch(self.training, split)
        steps = max(1, epochs - initial_epoch) * per_epoch
        model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
            self.training.learning_rate, steps)),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        keep_best = KeepBestEpoch("val_accuracy", mode="max")
        history = model.fit(training_data(self.training, split, repeat=True), epochs=epochs,
                            steps_per_epoch=per_epoch, initial_epoch=initial_epoch,
                            validation_data=(split.x_val, split.y_val),
                            verbose=0, callbacks=[keep_best, keras.callbacks.TerminateOnNaN()])
        losses = history.history.get("loss", [])
        if not losses or any(loss != loss or abs(loss) == float("inf") for loss in losses):
            raise failed(f"training diverged (loss {losses[-1] if losses else None!r}): "
                         f"{_reason(InvalidWeightsError('non-finite loss'))}; lower training.learning_rate",
                         counts.to_dict())
        return float(keep_best.best_value)

    def load_model(self, trial: keras_tuner.engine.trial.Trial) -> keras.Model:
        """The trained NVM model of ``trial``: rebuilt from its hyperparameters, its checkpoint loaded."""
        model = self.build_nvm_model(trial.hyperparameters, self.trained_spec(trial.trial_id))
        model.load_weights(self._checkpoint(trial.trial_id)).expect_partial()
        return model

    def save_model(self, trial_id: str, model: keras.Model, step: int = 0) -> None:
        """Saves ``model``'s weights as the checkpoint of ``trial_id`` (and its spec, for `load_model`)."""
        model.save_weights(self._checkpoint(trial_id))
        self._record(trial_id, status="SAVED", reason=None, counts=hardware_counts(model).to_dict(),
                     spec=model_spec(model).to_dict(), seconds=None)

    # ------------------------------------------------------------- search loop
    def search(self, split: Split | Sequence[Split], **kwargs: Any) -> None:
        """Runs trials until the oracle stops (max trials, Hyperband's brackets) or ``max_seconds`` is spent.

        Args:
            split: `tf_nvm.experiments.data.Split`.

        Raises:
            SearchError: more consecutive failed trials than ``max_consecutive_failed_trials``
                (the message gives the last reason).
        """
        self._started = time.monotonic()
        self._deadline = None if self.max_seconds is None else self._started + float(self.max_seconds)
        self.stopped_by_time = False
        if isinstance(self.oracle, keras_tuner.Oracle):
            # keras-tuner's own display numbers trials from 1 ("Running Trial #1" is trial "0", folder trial_0);
            # one progress line per trial (`on_trial_end`) names each by its trial id, as the folders, trials.csv
            # and summary.json do.
            self.oracle.verbose = 0
        try:
            super().search(split, **kwargs)
        except _OutOfTime:
            self.stopped_by_time = True
            if self.verbose:
                print(f"[tf-nvm] search: time budget of {self.max_seconds:.0f} s spent; no new trial started",
                      flush=True)
        except RuntimeError as err:
            if "consecutive failures" not in str(err):
                raise
            last = str(err).strip().splitlines()[-1] if str(err).strip() else ""
            raise SearchError(
                f"{getattr(self.oracle, 'max_consecutive_failed_trials', 'too many')} candidates in a row failed; "
                f"the last: {last}. Fix: "
                f"loosen the budget (now {self.budget.to_dict()}), narrow the space to candidates that fit, or "
                "raise max_consecutive_failed_trials.") from None

    def pre_create_trial(self) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise _OutOfTime()

    def on_trial_begin(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_begin(trial)
        if self.verbose:
            values = ", ".join(f"{k} {v}" for k, v in trial.hyperparameters.values.items())
            print(f"[tf-nvm] trial {trial.trial_id}: running ({values[:300]})", flush=True)

    def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_end(trial)
        if not self.verbose:
            return
        metrics = {name: trial.metrics.get_last_value(name) for name in ("val_accuracy", "tiles", "devices",
                                                                         "seconds")
                   if trial.metrics.exists(name)}
        done = ", ".join(f"{k} {v:.4f}" if k == "val_accuracy" else f"{k} {v:.0f}" for k, v in metrics.items())
        message = (trial.message or "").strip().splitlines()
        reason = "" if metrics or not message else f" ({message[-1][:200]})"
        elapsed = (time.monotonic() - self._started) / 60 if self._started else 0.0
        print(f"[tf-nvm] trial {trial.trial_id}: {trial.status} {done}{reason}; {elapsed:.1f} min elapsed",
              flush=True)


TUNERS = Registry("tuner", error=SearchError, fix="use one of the registered tuners")
"""Tuner kind (a search config's ``tuner.kind``) -> NVM tuner class."""


@TUNERS.register("random")
class NVMRandomSearch(NVMTunerMixin, keras_tuner.RandomSearch):
    """keras-tuner's RandomSearch over NVM models (``max_trials``)."""


class FailureAwareBayesianOracle(keras_tuner.oracles.BayesianOptimizationOracle):
    """keras-tuner's Gaussian-process oracle that also learns from failed trials.

    keras-tuner's oracle leaves FAILED trials out of the Gaussian process, so it
    learns nothing from a candidate over the hardware budget (or one that cannot
    be quantized) and keeps proposing its neighbours: on HAR it proposed 20
    over-budget candidates in a row. Here each failed trial enters the fit with a
    score worse than every completed one (the worst score plus the spread of the
    scores, at least 1e-3), so the acquisition moves away from regions that fail.
    The trials themselves stay FAILED with their reasons.
    """

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """The Gaussian process's proposal, or random values when it proposes hyperparameters already tried.

        keras-tuner's oracle returns the acquisition optimum without checking it against the trials so far
        (its random phase does check), so on a discrete space it proposes the same architecture again and
        again (on HAR, 3 of 4 consecutive trials). A repeat is replaced by untried random values.
        """
        proposal = super().populate_space(trial_id)
        if proposal.get("values") is not None and self._duplicate(proposal["values"]):
            return self._random_populate_space()
        return proposal

    def _vectorize_trials(self):
        x, y = super()._vectorize_trials()
        failed = [trial for trial in self.trials.values() if trial.status in ("FAILED", "INVALID")]
        if not failed or len(y) == 0:
            return x, y
        worst = float(np.max(y))  # the oracle minimises (scores of "max" objectives are negated)
        penalty = worst + max(float(np.ptp(y)), 1e-3)
        extra = np.array([self._trial_vector(trial) for trial in failed])
        return np.concatenate([x, extra]), np.concatenate([y, np.full(len(failed), penalty)])

    def _trial_vector(self, trial):
        """A trial's hyperparameters embedded in [0, 1] as keras-tuner's oracle does (defaults where inactive)."""
        values = trial.hyperparameters
        return [hp.value_to_prob(values.values[hp.name] if values.is_active(hp) and hp.name in values.values
                                 else hp.default) for hp in self._nonfixed_space()]


class _FailureAwareBayesianOptimization(keras_tuner.Tuner):
    """`keras_tuner.BayesianOptimization` with `FailureAwareBayesianOracle` (the same arguments)."""

    def __init__(self, hypermodel=None, objective=None, max_trials=10, num_initial_points=None, alpha=1e-4,
                 beta=2.6, seed=None, hyperparameters=None, tune_new_entries=True, allow_new_entries=True,
                 max_retries_per_trial=0, max_consecutive_failed_trials=3, **kwargs):
        oracle = FailureAwareBayesianOracle(
            objective=objective, max_trials=max_trials, num_initial_points=num_initial_points, alpha=alpha,
            beta=beta, seed=seed, hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries, max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials)
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)


@TUNERS.register("bayesian")
class NVMBayesianOptimization(NVMTunerMixin, _FailureAwareBayesianOptimization):
    """Bayesian optimisation (Gaussian process) over NVM models (``max_trials``, ``num_initial_points``), with
    `FailureAwareBayesianOracle`: failed candidates (over budget, not quantizable) steer the search away."""


@TUNERS.register("hyperband")
class NVMHyperband(NVMTunerMixin, keras_tuner.Hyperband):
    """keras-tuner's Hyperband over NVM models (``max_epochs``, ``factor``, ``hyperband_iterations``)."""
