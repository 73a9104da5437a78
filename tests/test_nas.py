"""Architecture search (tf_nvm.nas): tuners driving tf_keras NVM models, hardware counts, failed trials,
resume after SIGKILL, outputs, and pinned errors. Synthetic data, tiny models, 1 epoch."""

import inspect
import json
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import tf_nvm
from tf_nvm import nas
from tf_nvm.keras.backend import keras
from tf_nvm.experiments.data import Split
from tf_nvm.core.errors import SearchError
from tf_nvm.nas import config as search_config
from tf_nvm.nas.search import run_search
from tf_nvm.core.preprocessing import Standardization
from tf_nvm.experiments.runs import read_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_SPACE = {"depth": [1], "filters": [4, 8], "kernel_size": [3], "pool": [2], "input_pool": [1], "head_units": [0],
              "dropout": [0.0]}


def synthetic_split(n=240, t=16, c=3, k=3, seed=0):
    """A learnable 3-class problem on (16, 3) windows: 160 training, 40 validation, 40 test examples."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, t, c)).astype(np.float32)
    x[:, :, 0] += (y[:, None] - 1) * 1.5
    st = Standardization.fit(x[:160])
    x = st.apply(x)
    y = y.astype(np.int32)
    return Split(x[:160], y[:160], x[160:200], y[160:200], x[200:], y[200:], st, "synthetic")


SYNTHETIC = inspect.getsource(synthetic_split)  # the resume script below uses the same data


def _config(**changes):
    data = {"name": "tiny", "hypermodel": "har_cnn", "space": TINY_SPACE,
            "training": {"epochs": 1, "batch_size": 32}, "tuner": {"kind": "random", "max_trials": 2, "seed": 0},
            "retrain": {"epochs": 1, "seeds": [0]}}
    data.update(changes)
    return search_config.from_dict(data)


def _hypermodel(space=None):
    return nas.make_hypermodel("har_cnn", space or TINY_SPACE, input_shape=(16, 3), num_classes=3)


# ------------------------------------------------------------------ hardware counts
@pytest.mark.slow
def test_hardware_counts_equal_the_mapping_and_the_hand_made_model():
    from tflite_export import build_mapping

    keras.utils.set_random_seed(0)
    model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn"), "paper-2bit-unipolar", init="device")
    counts = nas.hardware_counts(model)
    assert (counts.weights, counts.tiles) == (52096, 8)  # the hand-made model: 52,096 weights on 8 tiles
    summary = build_mapping(model).summary()
    assert (counts.tiles, counts.devices, counts.adc_columns) == (summary["tiles"], summary["devices"],
                                                                  summary["adc_columns"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tf_nvm.NonInhibitingCrossbarWarning)
        small = tf_nvm.quantize_model(tf_nvm.models.build("har_search_cnn", filters=(8, 8), kernel_sizes=(3, 3),
                                                          signs="bn", head_units=16), "paper-2bit-bipolar")
    summary = build_mapping(small).summary()
    counts = nas.hardware_counts(small)
    assert (counts.tiles, counts.devices, counts.adc_columns) == (summary["tiles"], summary["devices"],
                                                                  summary["adc_columns"])


def test_budget_and_score_formula():
    counts = nas.HardwareCounts(crossbar_layers=3, weights=1000, tiles=4, devices=1000, adc_columns=100)
    assert nas.Budget(max_tiles=3).violation(counts) == "tiles 4 > max_tiles 3"
    assert nas.Budget(max_tiles=4).violation(counts) is None
    objective = nas.SearchObjective.from_dict({"metric": "score",
                                               "penalties": {"tiles": {"weight": 0.02, "reference": 8}}})
    assert objective.score(0.95, counts) == pytest.approx(0.95 - 0.02 * 4 / 8)
    assert nas.DIRECTIONS["tiles"] == "min" and objective.keras_tuner_objective().direction == "max"


# ------------------------------------------------------------------ the three tuners
@pytest.mark.slow
@pytest.mark.parametrize("kind, arguments", [("random", {"max_trials": 2}), ("bayesian", {"max_trials": 2}),
                                             ("hyperband", {"max_epochs": 2, "factor": 2})])
def test_each_tuner_drives_nvm_models_and_reloads_the_best(tmp_path, kind, arguments):
    split = synthetic_split()
    make = lambda: nas.TUNERS.get(kind)(_hypermodel(), spec="paper-2bit-unipolar",  # noqa: E731
                                        training=nas.Training(epochs=1, batch_size=32), directory=tmp_path,
                                        project_name="p", verbose=False, **arguments)
    tuner = make()
    tuner.search(split)
    trials = list(tuner.oracle.trials.values())
    assert trials and all(t.status == "COMPLETED" for t in trials)
    if kind == "hyperband":  # tuner/epochs honoured; a second-round trial warm-started from its first round
        assert {t.metrics.get_last_value("epochs") for t in trials} == {1.0, 2.0}
        assert any(t.hyperparameters.values.get("tuner/trial_id") for t in trials)
    best = tuner.get_best_models(1)[0]
    assert tf_nvm.model_spec(best).unipolar and tf_nvm.nvm_layers(best)
    reopened = make()  # overwrite=False: the project is reloaded, not searched again
    assert len(reopened.oracle.trials) == len(trials)
    again = reopened.get_best_models(1)[0]
    np.testing.assert_array_equal(best.predict(split.x_val, verbose=0), again.predict(split.x_val, verbose=0))


# ------------------------------------------------------------------ failed trials and errors
def test_unquantizable_candidate_is_a_failed_trial_with_its_reason(tmp_path):
    def build(hp):
        units = hp.Choice("units", [4])
        inputs = keras.Input((16, 3))
        return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.LSTM(units)(inputs)))

    tuner = nas.NVMRandomSearch(build, spec="paper-2bit-bipolar", training=nas.Training(epochs=1), max_trials=1,
                                directory=tmp_path, project_name="p", verbose=False)
    tuner.search(synthetic_split())
    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "FAILED"
    assert "FailedTrialError: cannot be quantized: UnsupportedLayerError: " in trial.message
    assert "LSTM" in trial.message


@pytest.mark.slow
def test_average_and_max_pooling_candidates_pass_the_exporters_dry_run(tmp_path):
    """`tf-nvm search` passes the exporter's dry run: average pooling (exact now) and max pooling both run."""
    from tflite_export.crossbar import build_mapping  # noqa: PLC0415

    config = _config(space={**TINY_SPACE, "filters": [4], "pooling": ["avg", "max"]},
                     tuner={"kind": "random", "max_trials": 2, "seed": 0, "max_consecutive_failed_trials": 4})
    run_search(config, tmp_path / "s", split=synthetic_split(), verbose=False, candidate_check=build_mapping)
    table = pd.read_csv(tmp_path / "s" / "trials.csv").set_index("pooling")
    assert table.loc["max", "status"] == "COMPLETED"
    assert table.loc["avg", "status"] == "COMPLETED"


def test_keras3_hypermodel_is_refused_when_the_tuner_is_created(tmp_path):
    import keras as keras3

    def build(hp):
        hp.Choice("units", [4])
        return keras3.Sequential([keras3.Input((16, 3)), keras3.layers.Flatten(), keras3.layers.Dense(3)])

    with pytest.raises(SearchError, match=r"hypermodel 'build': build\(hp\) returned a Keras 3 model, not a tf_keras "
                                          r"\(Keras 2\) model; .* Fix: build it with `import tf_keras as keras`"):
        nas.NVMRandomSearch(build, spec="paper-2bit-unipolar", max_trials=1, directory=tmp_path, project_name="p")


def test_a_budget_no_candidate_meets_fails_every_trial_then_names_the_reason(tmp_path):
    config = _config(budget={"max_tiles": 1})
    with pytest.raises(SearchError, match=r"search 'tiny': no candidate completed \(\{'FAILED': 2\}\); reasons: "
                                          r"\['over the hardware budget: tiles 2 > max_tiles 1'\]\. Fix: loosen the "
                                          r"budget \{'max_tiles': 1, 'max_devices': None, 'max_weights': None\}"):
        run_search(config, tmp_path / "s", split=synthetic_split(), verbose=False)
    table = pd.read_csv(tmp_path / "s" / "trials.csv")
    assert list(table["status"]) == ["FAILED", "FAILED"] and list(table["tiles"]) == [2, 2]


@pytest.mark.parametrize("change, message", [
    ({"colour": 1}, r"search config has unknown field\(s\) \['colour'\]; allowed: \["),
    ({"hypermodel": "resnet"}, r"search 'tiny': hypermodel must be one of \['cifar_cnn', 'har_cnn', 'har_mlp', 'resnet8'\], "
                               r"got 'resnet'"),
    ({"space": {"width": [1]}}, r"space of hypermodel 'har_search_cnn': unknown name\(s\) \['width'\]; allowed: "),
    ({"space": {"filters": []}}, r"space.filters must be a non-empty list of numbers, strings or booleans of one "
                                 r"type, got \[\]\. Fix: e\.g\. \"filters\": \[32, 16, 24, 48, 64\]"),
    ({"tuner": {"kind": "grid"}}, r"tuner.kind must be one of \['bayesian', 'hyperband', 'random'\], got 'grid'"),
    ({"tuner": {"kind": "random", "max_epochs": 3}}, r"tuner 'random' takes no argument\(s\) \['max_epochs'\]"),
    ({"objective": {"metric": "score"}}, r"objective: metric \"score\" needs at least one penalty"),
    ({"objective": {"metric": "score", "penalties": {"area": {"weight": 1, "reference": 1}}}},
     r"objective.penalties: count 'area' is unknown; allowed: \['tiles', 'devices', 'weights', 'adc_columns', "
     r"'crossbar_layers'\]"),
    ({"budget": {"max_tiles": 0}}, r"budget.max_tiles must be an integer >= 1 or null \(no limit\), got 0"),
    ({"training": {"epochs": 0}}, r"training.epochs must be an integer >= 1, got 0"),
    ({"spec": "paper-3bit"}, r"search 'tiny': recipe 'tiny': invalid spec: unknown NVM preset 'paper-3bit'; "
                             r"known: paper-2bit-bipolar"),
    ({"training": {"folds": 0}}, r"training.folds must be an integer >= 1, got 0"),
    ({"training": {"folds": 3}, "tuner": {"kind": "hyperband", "max_epochs": 2}},
     r"search 'tiny': training.folds > 1 \(cross-validated trials\) does not combine with the hyperband tuner"),
    ({"training": {"folds": 3}, "dataset": "cifar10", "hypermodel": "cifar_cnn", "space": {}},
     r"search 'tiny': training.folds > 1 folds the training subjects, which only har records; got dataset "
     r"'cifar10'\. Fix: use folds 1\."),
    ({"retrain": {"epochs": 1, "seeds": [0], "max_tiles": 0}},
     r"search 'tiny': retrain.max_tiles must be an integer >= 1 \(only trials on at most that many tiles are "
     r"retrained\) or absent, got 0"),
    ({"retrain": {"epochs": 1, "seeds": [0], "finalists": 0}},
     r"search 'tiny': retrain.finalists must be an integer >= 1 \(trials retrained to choose the best\), got 0"),
    ({"retrain": {"epochs": 1, "top": 2}}, r"retrain must be \{\"epochs\": int, \"seeds\": \[int, \.\.\.\], "
                                           r"\"finalists\": int, \"max_tiles\": int\}, got \{'epochs': 1, 'top': 2\}"),
])
def test_invalid_search_configs_are_named(change, message):
    with pytest.raises(SearchError, match=message):
        _config(**change)


def test_bundled_configs_load():
    assert {"har-2bit-unipolar-search", "har-2bit-unipolar-search-half"} <= set(search_config.names())
    for name in search_config.names():
        config = search_config.load(name)
        assert config.max_minutes and config.tuner["max_trials"], name
    assert search_config.load("har-2bit-unipolar-search").budget.max_tiles == 8
    half = search_config.load("har-2bit-unipolar-search-half")
    assert half.budget.max_tiles == 4 and half.objective.metric == "val_accuracy"
    cv = search_config.load("har-2bit-unipolar-search-cv")
    assert (cv.budget.max_tiles, cv.retrain["max_tiles"], cv.training.folds) == (8, 4, 3)


def test_an_existing_search_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "search.json").write_text(json.dumps(_config().to_dict()))
    with pytest.raises(SearchError, match=r"already holds a search\. Fix: pass --resume to continue it"):
        run_search(_config(), out, verbose=False)
    with pytest.raises(SearchError, match=r"resume: the config differs from the one the search in .* started with "
                                          r"\(fields \['budget'\]\); only \['max_minutes', 'tuner.max_trials', "
                                          r"'tuner.max_consecutive_failed_trials', 'retrain', 'description'\] may"):
        run_search(_config(budget={"max_tiles": 3}), out, resume=True, verbose=False)
    with pytest.raises(SearchError, match=r"resume: .* holds no search \(search.json missing\), nothing to resume"):
        run_search(_config(), tmp_path / "empty", resume=True, verbose=False)
    with pytest.raises(SearchError, match=r"resume and overwrite were both given"):
        run_search(_config(), out, resume=True, overwrite=True, verbose=False)


@pytest.mark.slow
def test_finalists_are_retrained_and_the_best_mean_validation_accuracy_is_chosen(tmp_path):
    config = _config(tuner={"kind": "random", "max_trials": 3, "seed": 0},
                     retrain={"epochs": 1, "seeds": [0, 1], "finalists": 2})
    out = tmp_path / "s"
    summary = run_search(config, out, export_best=True, split=synthetic_split(), verbose=False)
    finalists = summary["finalists"]
    assert len(finalists) == 2 and [f["chosen"] for f in finalists].count(True) == 1
    chosen = max(finalists, key=lambda f: f["retrained_val_accuracy"])
    assert chosen["chosen"] and summary["best"]["trial"] == chosen["trial"]
    assert "2 best trials, each retrained" in summary["selection"]
    for finalist in finalists:  # each retrained into its own run folder, over both seeds
        run = json.loads((out / "finalists" / f"trial_{finalist['trial']}" / "metrics.json").read_text())
        seeds = [row["seed"] for row in run["seeds"]]
        val = np.mean([row["nvm"]["val_accuracy"] for row in run["seeds"]])
        assert seeds == [0, 1] and val == pytest.approx(finalist["retrained_val_accuracy"])
    best = json.loads((out / "best" / "metrics.json").read_text())
    assert best["test_accuracy"] == pytest.approx(chosen["retrained_test_accuracy"])
    recipe = json.loads((out / "best_recipe.json").read_text())
    assert recipe["architecture_args"] == chosen["architecture_args"]
    assert not (out / "best.partial").exists()
    # retraining differently is a change a resume accepts (the trials are kept)
    resumed = run_search(_config(tuner={"kind": "random", "max_trials": 3, "seed": 0}, description="reworded",
                                 retrain={"epochs": 1, "seeds": [0]}), out, resume=True, verbose=False)
    assert resumed["trials"] == 3 and "finalists" not in resumed


@pytest.mark.slow
def test_retrain_max_tiles_retrains_the_best_trial_within_the_tiles(tmp_path):
    # [x, -x] signs: the logits layer reads 2 x filters rows, 256 (2 tiles of 128 rows) with 128 filters, 8 with 4
    space = {**TINY_SPACE, "filters": [4, 128], "signs": ["split"]}
    out = tmp_path / "s"
    run_search(_config(space=space), out, split=synthetic_split(), verbose=False)
    table = pd.read_csv(out / "trials.csv", dtype={"trial": str})
    tiles = dict(zip(table["trial"], table["tiles"]))
    assert len(set(tiles.values())) == 2, tiles
    fewest = min(tiles.values())
    smallest = next(t for t, n in tiles.items() if n == fewest)
    chosen = run_search(_config(space=space, retrain={"epochs": 1, "seeds": [0], "max_tiles": int(fewest)}), out,
                        resume=True, export_best=True, split=synthetic_split(), verbose=False)
    assert chosen["best"]["trial"] == smallest and chosen["best"]["tiles"] == fewest
    assert chosen["selection"] == ("the search objective (val_accuracy), among the trials on at most "
                                   f"{fewest} tiles (retrain.max_tiles)")
    assert json.loads((out / "best_recipe.json").read_text())["architecture_args"]["filters"] == [4]
    assert (out / "best" / "metrics.json").exists()
    with pytest.raises(SearchError, match=rf"search 'tiny': no completed trial fits retrain.max_tiles 1 \(completed "
                                          rf"trials use {fewest} tiles or more\)\. Fix: raise retrain.max_tiles"):
        run_search(_config(space=space, retrain={"epochs": 1, "seeds": [0], "max_tiles": 1}), out, resume=True,
                   split=synthetic_split(), verbose=False)


# ------------------------------------------------------------------ resume after SIGKILL
SCRIPT = '''
import json, sys
import numpy as np
import tf_nvm
from tf_nvm.experiments.data import Split
from tf_nvm.core.preprocessing import Standardization
from tf_nvm.experiments.runs import read_run
from tf_nvm.nas import config as search_config, tuners
from tf_nvm.nas.search import run_search
''' + SYNTHETIC + '''
original = tuners.NVMTunerMixin.run_trial
def logged(self, trial, *args, **kwargs):
    with open(sys.argv[2], "a") as log:
        log.write(trial.trial_id + "\\n")
    return original(self, trial, *args, **kwargs)
tuners.NVMTunerMixin.run_trial = logged
config = search_config.from_dict(json.loads(sys.argv[3]))
run_search(config, sys.argv[1], resume=sys.argv[4] == "resume", export_best=sys.argv[4] == "resume",
           split=synthetic_split(), verbose=False)
'''


@pytest.mark.slow
def test_a_search_killed_mid_trial_resumes_keeping_every_completed_trial(tmp_path):
    out, log = tmp_path / "s", tmp_path / "runs.log"
    config = _config(tuner={"kind": "random", "max_trials": 4, "seed": 0, "max_consecutive_failed_trials": 4},
                     space={**TINY_SPACE, "filters": [4, 6, 8, 10, 12]}).to_dict()
    env = {**os.environ, "PYTHONPATH": ROOT}
    argv = [sys.executable, "-c", SCRIPT, str(out), str(log), json.dumps(config)]
    child = subprocess.Popen(argv + ["new"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    running = out / "tuner" / "trial_2" / "trial.json"
    deadline = time.time() + 240
    while not running.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert running.exists() and child.poll() is None, "trial 2 never started"
    child.send_signal(signal.SIGKILL)  # in trial 2: it started (trial.json RUNNING) and has not ended
    child.wait()
    before = {i: json.loads((out / "tuner" / f"trial_{i}" / "trial.json").read_text()) for i in (0, 1)}
    assert [b["status"] for b in before.values()] == ["COMPLETED", "COMPLETED"]
    assert json.loads(running.read_text())["status"] == "RUNNING"
    done = subprocess.run(argv + ["resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = log.read_text().split()
    assert runs[:3] == ["0", "1", "2"] and sorted(runs[3:]) == ["2", "3"]  # 0 and 1 never ran again
    for i in (0, 1):  # the completed trials are kept unchanged
        assert json.loads((out / "tuner" / f"trial_{i}" / "trial.json").read_text()) == before[i]
    table = pd.read_csv(out / "trials.csv")
    assert list(table["trial"]) == [0, 1, 2, 3] and set(table["status"]) == {"COMPLETED"}
    markdown = (out / "trials.md").read_text()
    assert markdown.startswith("| trial | status | depth | filters_0 |")
    assert "nan" not in markdown and "<NA>" not in markdown and "| 4.0000 |" not in markdown  # ints stay ints
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    run = read_run(out / "best")  # the retrained best: a run folder tf-nvm export accepts
    assert run.recipe["architecture"] == "har_search_cnn" and run.metrics["test_accuracy"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 4 and summary["best"]["tiles"] >= 2


def _oracle(tmp_path, num_initial_points):
    """A `FailureAwareBayesianOracle` over 4 x 3 architectures (filters, kernel), maximising ``score``."""
    import keras_tuner  # noqa: PLC0415

    from tf_nvm.nas.tuners import FailureAwareBayesianOracle  # noqa: PLC0415

    space = keras_tuner.HyperParameters()
    space.Choice("filters", [16, 32, 64, 96])
    space.Choice("kernel", [3, 5, 7])
    oracle = FailureAwareBayesianOracle(objective=keras_tuner.Objective("score", "max"), max_trials=10,
                                        num_initial_points=num_initial_points, seed=0, hyperparameters=space,
                                        max_consecutive_failed_trials=100)
    oracle._set_project_dir(str(tmp_path), "p")
    return oracle


def test_bayesian_oracle_learns_from_failed_trials(tmp_path):
    import keras_tuner  # noqa: PLC0415

    from tf_nvm.nas.tuners import NVMBayesianOptimization  # noqa: PLC0415

    oracle = _oracle(tmp_path, 2)
    for status, score in (("COMPLETED", 0.9), ("COMPLETED", 0.8), ("FAILED", None), ("FAILED", None)):
        trial = oracle.create_trial("tuner0")
        if score is not None:
            oracle.update_trial(trial.trial_id, {"score": score})
        trial.status = status
        oracle.end_trial(trial)
    x, y = oracle._vectorize_trials()
    # keras-tuner's own oracle fits the two completed trials only; the failed ones enter with a score worse than
    # the worst completed one (the oracle minimises -score): -0.8 + spread 0.1
    assert x.shape == (4, 2)
    np.testing.assert_allclose(y, [-0.9, -0.8, -0.7, -0.7])
    assert [trial.status for trial in oracle.trials.values()].count("FAILED") == 2  # still recorded as failed
    assert issubclass(NVMBayesianOptimization, keras_tuner.Tuner)


@pytest.mark.slow
def test_bayesian_oracle_never_proposes_an_architecture_twice(tmp_path):
    # keras-tuner's own oracle returns the acquisition optimum unchecked: on this 12-point space with a single
    # optimum it proposed (64, 5) 2 to 5 times in 10 trials (4 runs of 4); each repeat wastes a trial
    oracle = _oracle(tmp_path, 3)
    proposed = []
    for _ in range(10):
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        values = trial.hyperparameters.values
        proposed.append((values["filters"], values["kernel"]))
        oracle.update_trial(trial.trial_id, {"score": 1 - abs(values["filters"] - 64) / 100
                                             - abs(values["kernel"] - 5) / 10})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert len(proposed) >= 8 and len(set(proposed)) == len(proposed), proposed


def test_finalists_are_distinct_architectures():
    import types  # noqa: PLC0415

    import keras_tuner  # noqa: PLC0415

    from tf_nvm.nas.search import _best_trials  # noqa: PLC0415

    def trial(trial_id, filters, status="COMPLETED"):
        hp = keras_tuner.HyperParameters()
        hp.Choice("filters", [16, 32, 64], default=filters)
        hp.values["tuner/trial_id"] = trial_id  # bookkeeping values do not make an architecture distinct
        return keras_tuner.engine.trial.Trial(hp, trial_id=trial_id, status=status)

    ranked = [trial("a", 32), trial("b", 32), trial("c", 64, "FAILED"), trial("d", 16), trial("e", 64)]
    oracle = types.SimpleNamespace(trials=dict.fromkeys("abcde"), get_best_trials=lambda n: ranked[:n])
    tuner = types.SimpleNamespace(oracle=oracle)
    assert [t.trial_id for t in _best_trials(tuner, 3)] == ["a", "d", "e"]
    assert [t.trial_id for t in _best_trials(tuner, 1)] == ["a"]


@pytest.mark.slow
def test_cross_validated_trials_score_the_mean_of_their_folds(tmp_path):
    config = _config(training={"epochs": 1, "batch_size": 32, "folds": 2})
    folds = [synthetic_split(seed=0), synthetic_split(seed=1)]
    out = tmp_path / "s"
    summary = run_search(config, out, split=folds[0], fold_splits=folds, verbose=False)
    assert summary["by_status"] == {"COMPLETED": 2}
    for trial in ("0", "1"):
        record = json.loads((out / "tuner" / f"trial_{trial}" / "nvm_trial.json").read_text())
        assert len(record["fold_val_accuracies"]) == 2
        assert record["val_accuracy"] == pytest.approx(np.mean(record["fold_val_accuracies"]))
    with pytest.raises(SearchError, match=r"training.folds is 2 but 1 fold split\(s\) were given"):
        run_search(config, tmp_path / "t", split=folds[0], fold_splits=folds[:1], verbose=False)


def test_subject_folds_validate_every_training_subject_once():
    from tf_nvm.experiments.data import subject_folds  # noqa: PLC0415
    from tf_nvm.core.errors import RecipeError  # noqa: PLC0415
    from tf_nvm.experiments import recipes  # noqa: PLC0415

    recipe = recipes.load("har-2bit-unipolar")
    (x_train, _), (x_test, _) = tf_nvm.datasets.load_har(verbose=False)
    folds = subject_folds(recipe, 3, verbose=False)
    assert len(folds) == 3 and sum(len(f.x_val) for f in folds) == len(x_train)
    for fold in folds:
        assert len(fold.x_train) + len(fold.x_val) == len(x_train) and len(fold.x_test) == len(x_test)
        np.testing.assert_allclose(fold.x_train.reshape(-1, x_train.shape[-1]).mean(axis=0), 0, atol=1e-3)
    with pytest.raises(RecipeError, match=r"folds must be an integer from 2 to the 21 training subjects, got 1"):
        subject_folds(recipe, 1, verbose=False)
