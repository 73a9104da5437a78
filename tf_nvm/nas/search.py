"""`run_search`: one architecture search from a `SearchConfig` into an output folder.

Output folder (``DIR``)::

    search.json          the config (a resumed search must match it, see RESUMABLE_CHANGES)
    tuner/               the keras-tuner project: oracle.json, tuner0.json, trial_<id>/ (trial.json,
                         checkpoint*, nvm_trial.json)
    trials.csv, .md      every trial: hyperparameters, val accuracy, score, tiles, devices, ..., status, reason
    pareto.png           validation accuracy vs tiles, Pareto front and the best trial marked
    best_recipe.json     the best candidate as a recipe (``tf-nvm train DIR/best_recipe.json`` retrains it)
    best/                with export_best: the run folder of the retrained best candidate (as ``tf-nvm train``)
    finalists/           with export_best and retrain.finalists > 1: trial_<id>/, the run folder of every retrained
                         finalist; the one with the best mean validation accuracy is copied to best/
    summary.json         counts of trials by status, the best trial, elapsed time, retrained accuracies

Resume: a folder holding a search (``search.json``) is continued only with
``resume=True`` (keras-tuner reloads its project: completed trials are kept, the
trial that was running is run again), restarted only with ``overwrite=True``
(the folder's search files are removed first); neither raises `SearchError`.

Distributed (keras-tuner's own chief/worker mode): with ``KERASTUNER_ORACLE_IP``,
``KERASTUNER_ORACLE_PORT`` and ``KERASTUNER_TUNER_ID`` set, the process whose id
contains ``chief`` serves the oracle over gRPC and, once every trial has ended,
writes the table, the plot and the best candidate; the others (workers) run
trials. All use the same config and ``DIR`` (on one machine or a shared file system).
"""

import json
import os
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from tf_nvm.core.atomic import write_json_atomic
from tf_nvm.core.errors import SearchError
from tf_nvm.experiments.data import Split, prepare_data, subject_folds
from tf_nvm.experiments.recipes import MAX_CONFIG_BYTES
from tf_nvm.experiments.train import run_recipe
from tf_nvm.core.safe_io import json_plain, read_json
from tf_nvm.nas import config as config_module
from tf_nvm.nas.hypermodels import make_hypermodel
from tf_nvm.nas.report import plot_pareto, trials_table
from tf_nvm.nas.tuners import TUNERS
from tf_nvm.core.outputs import claim_output_folder, mark_output_folder
from tf_nvm.core.tables import write_table

__all__ = ["run_search", "distributed_role", "summary_text", "SEARCH_FILE", "PROJECT"]

SEARCH_FILE = "search.json"
PROJECT = "tuner"
FINALISTS = "finalists"
_OUTPUTS = (SEARCH_FILE, PROJECT, "trials.csv", "trials.md", "pareto.png", "best_recipe.json", "best",
            FINALISTS, "summary.json")


def _best_line(best):
    """One line on the best trial of a summary (``summary["best"]``)."""
    args = {k: v for k, v in best["architecture_args"].items() if k not in ("input_shape", "num_classes")}
    return (f"best trial {best['trial']}: validation accuracy {best['val_accuracy']:.4f}, {best['tiles']} tile(s), "
            f"{best['devices']} devices; {best['architecture']} {json.dumps(args)}")


def summary_text(summary: dict[str, Any], out: str | os.PathLike) -> str:
    """A short human summary of `run_search`'s result (the whole of it is ``out/summary.json``).

    Args:
        summary: the dict `run_search` returns.
        out: the search folder.

    Returns:
        str: a few lines, without a trailing newline.
    """
    if summary.get("role") == "worker":
        return f"[tf-nvm] worker finished after {summary['seconds']:.0f} s; the chief writes the results in {out}"
    counts = ", ".join(f"{n} {status.lower()}" for status, n in sorted(summary["by_status"].items()))
    lines = [f"[tf-nvm] search {summary['name']}: {summary['trials']} trial(s) ({counts or 'none'}) in "
             f"{summary['search_seconds']:.0f} s{' (stopped by max_minutes)' if summary['stopped_by_time'] else ''}"]
    if summary.get("best"):
        lines.append(f"[tf-nvm] {_best_line(summary['best'])}")
    retrained = summary.get("retrained")
    if retrained:
        lines.append(f"[tf-nvm] retrained best: NVM test accuracy {retrained['test_accuracy_summary']}, float "
                     f"{retrained['float_test_accuracy_summary']} ({os.path.join(out, 'best')})")
    files = [name for name in ("trials.md", "pareto.png", "best_recipe.json", "summary.json")
             if os.path.exists(os.path.join(out, name))]
    lines.append(f"[tf-nvm] in {os.path.abspath(out)}: {', '.join(files)}")
    return "\n".join(lines)


def distributed_role() -> str:
    """``"single"``, ``"chief"`` or ``"worker"``, from keras-tuner's environment variables.

    Raises:
        SearchError: ``KERASTUNER_ORACLE_IP`` is set without ``KERASTUNER_ORACLE_PORT`` or ``KERASTUNER_TUNER_ID``.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    missing = [name for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if not os.environ.get(name)]
    if missing:
        raise SearchError(f"KERASTUNER_ORACLE_IP is set but {missing} not; distributed search needs all three. "
                          "Fix: set KERASTUNER_TUNER_ID=chief (or tuner0, tuner1, ...) and KERASTUNER_ORACLE_PORT "
                          "on every process, or unset KERASTUNER_ORACLE_IP.")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def _comparable(data):
    """The config without the fields a resume may change (`RESUMABLE_CHANGES`)."""
    data = json_plain(data)
    for path in config_module.RESUMABLE_CHANGES:
        *parents, leaf = path.split(".")
        section = data
        for part in parents:
            section = section.get(part, {}) if isinstance(section, dict) else {}
        if isinstance(section, dict):
            section.pop(leaf, None)
    return data


def _prepare_folder(config, out, resume, overwrite):
    """Checks and prepares ``out`` for a new or resumed search (single process or chief)."""
    if resume and overwrite:
        raise SearchError("resume and overwrite were both given; they exclude each other. Fix: pass --resume to "
                          "continue the search in the folder, or --overwrite to start it again.")
    saved_path = os.path.join(out, SEARCH_FILE)
    if os.path.exists(out) and not os.path.isdir(out):
        raise SearchError(f"output folder {out!r} is a file. Fix: pass another --out.")
    holds_search = os.path.isfile(saved_path)
    if resume:
        if not holds_search:
            raise SearchError(f"resume: {out!r} holds no search ({SEARCH_FILE} missing), nothing to resume. Fix: "
                              "drop --resume to start a new search there, or pass the folder of the interrupted "
                              "search.")
        saved = read_json(saved_path, max_bytes=MAX_CONFIG_BYTES, what="resume: the search's config", error=SearchError,
                          fix="Fix: pass --overwrite to start the search again (its trials are lost), or restore "
                              f"{SEARCH_FILE} from a copy.", object_only=True)
        if _comparable(saved) != _comparable(config.to_dict()):
            changed = sorted(k for k in set(saved) | set(config.to_dict())
                             if _comparable(saved).get(k) != _comparable(config.to_dict()).get(k))
            raise SearchError(f"resume: the config differs from the one the search in {out!r} started with "
                              f"(fields {changed}); only {list(config_module.RESUMABLE_CHANGES)} may change. Fix: "
                              "resume with the same config, or pass --overwrite to start again.")
        _check_project(out)
    elif holds_search:
        if not overwrite:
            raise SearchError(f"output folder {out!r} already holds a search. Fix: pass --resume to continue it "
                              "(completed trials are kept), --overwrite to delete it and start again, or another "
                              "--out.")
        for name in _OUTPUTS:
            path = os.path.join(out, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)  # a file, or a symbolic link (removed itself: its target is left alone)
    elif claim_output_folder(out, "search", overwrite, error=SearchError) == "other":  # the rule of every --out
        shutil.rmtree(out)  # another command's output, replaced as --overwrite asked
    mark_output_folder(out, "search")
    write_json_atomic(saved_path, config.to_dict())


_PROJECT_FILES = {"oracle.json": ("ongoing_trials", "hyperparameters", "tried_so_far", "seed"),
                  "tuner0.json": (), "trial.json": ("trial_id", "hyperparameters", "metrics", "status")}
"""keras-tuner files a resume reloads, and the keys each must hold (checked before keras-tuner reads them)."""
MAX_PROJECT_JSON_BYTES = 16 * 1024 * 1024
"""Largest keras-tuner project file a resume reads, bytes (16 MiB; an oracle.json of 1,000 trials is ~1 MiB)."""


def _check_project(out):
    """Resume: reads the keras-tuner project's files as bounded JSON objects holding the keys keras-tuner reloads,
    so a damaged, deeply nested or replaced file is a named error instead of keras-tuner's traceback."""
    project = os.path.join(out, PROJECT)
    fix = ("Fix: pass --overwrite to start the search again (its trials are lost), or restore the folder "
           f"{project} from a copy.")
    if os.path.islink(project) or (os.path.lexists(project) and not os.path.isdir(project)):
        raise SearchError(f"resume: {project} is {'a symbolic link' if os.path.islink(project) else 'not a folder'}; "
                          f"a search keeps its keras-tuner project in a folder of its own. {fix}")
    if not os.path.isdir(project):
        return  # interrupted before keras-tuner wrote anything: the search starts from its first trial
    files = [os.path.join(project, name) for name in ("oracle.json", "tuner0.json")]
    files += [os.path.join(project, name, "trial.json") for name in sorted(os.listdir(project))
              if name.startswith("trial_")]
    for path in files:
        if not os.path.lexists(path):
            continue
        data = read_json(path, max_bytes=MAX_PROJECT_JSON_BYTES, what="resume: keras-tuner's file", error=SearchError,
                         fix=fix, object_only=True)
        missing = [key for key in _PROJECT_FILES[os.path.basename(path)] if key not in data]
        if missing:
            raise SearchError(f"resume: keras-tuner's file {path} lacks the key(s) {missing} keras-tuner reloads "
                              f"(found: {sorted(data)[:10]}). {fix}")


def _open_tuner(make, out, resume):
    """``make()`` (the tuner, which reloads a resumed project), with keras-tuner's errors on a damaged project
    turned into `SearchError`."""
    try:
        return make()
    except SearchError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError) as err:
        if not resume:
            raise
        raise SearchError(f"resume: keras-tuner cannot reload the project in {os.path.join(out, PROJECT)} "
                          f"({type(err).__name__}: {str(err)[:200]}); a file in it was edited or damaged. Fix: pass "
                          "--overwrite to start the search again (its trials are lost), or restore the folder from "
                          "a copy.") from None


def _best_trials(tuner, count, tiles=None, max_tiles=None):
    """The ``count`` best completed trials of distinct architectures, best first (the oracle's objective; of
    trials with the same hyperparameters, the better one); with ``max_tiles``, only trials whose ``tiles``
    ({trial id: tiles}) are at most that."""
    chosen, seen = [], set()
    for trial in tuner.oracle.get_best_trials(len(tuner.oracle.trials)):
        values = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
        key = json.dumps(values, sort_keys=True)
        if max_tiles is not None and not tiles.get(trial.trial_id, max_tiles + 1) <= max_tiles:
            continue
        if trial.status == "COMPLETED" and key not in seen:
            seen.add(key)
            chosen.append(trial)
    return chosen[:count]


def _retrain_finalists(config, out, finalists, recipe_of, described, data_path, verbose, split):
    """Retrains every finalist over ``config.retrain`` seeds into ``out/finalists/trial_<id>`` (a killed
    retraining resumes per seed) and copies the one with the best mean NVM validation accuracy to ``out/best``.

    Returns:
        (chosen trial, its `run_recipe` metrics, one dict per finalist for the summary).
    """
    rows, results = [], []
    for rank, trial in enumerate(finalists, 1):
        arguments, recipe = recipe_of(trial)
        if verbose:
            print(f"[tf-nvm] finalist {rank}/{len(finalists)}: trial {trial.trial_id}, retrained over seeds "
                  f"{list(recipe.seeds)}", flush=True)
        folder = os.path.join(out, FINALISTS, f"trial_{trial.trial_id}")
        metrics = run_recipe(recipe, folder, data_path=data_path, verbose=2 if verbose else 0, overwrite=True,
                             split=split, resume=True)
        val = statistics.fmean(row["nvm"]["val_accuracy"] for row in metrics["seeds"])
        rows.append({**described(trial, arguments, recipe), "retrained_val_accuracy": val,
                     "retrained_test_accuracy": metrics["test_accuracy"],
                     "retrained_float_test_accuracy": metrics["float_test_accuracy"]})
        results.append((val, -rank, trial, metrics, folder))
    _, _, trial, metrics, folder = max(results, key=lambda r: r[:2])
    best_dir = os.path.join(out, "best")
    staging = best_dir + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(folder, staging)
    shutil.rmtree(best_dir, ignore_errors=True)
    os.replace(staging, best_dir)
    for row in rows:
        row["chosen"] = row["trial"] == trial.trial_id
    if verbose:
        print("[tf-nvm] finalists by mean validation accuracy over seeds: "
              + ", ".join(f"trial {r['trial']} {r['retrained_val_accuracy']:.4f}" for r in rows)
              + f"; chosen: trial {trial.trial_id}", flush=True)
    return trial, metrics, rows


def run_search(config: config_module.SearchConfig | str | os.PathLike, out: str | os.PathLike, *, resume: bool = False,
               overwrite: bool = False, export_best: bool = False, split: Split | None = None,
               data_path: str | None = None, verbose: bool = True,
               candidate_check: Callable[[Any], object] | None = None,
               fold_splits: Sequence[Split] | None = None) -> dict[str, Any]:
    """Runs (or resumes) a search and writes its outputs into ``out`` (layout in the module docstring).

    Args:
        config: `SearchConfig`, a bundled config name or a ``.json`` path.
        out: output folder.
        resume: continue the search already in ``out``.
        overwrite: delete the search already in ``out`` and start again.
        export_best: retrain the best candidate over ``config.retrain`` seeds into ``out/best``.
        split: a `tf_nvm.experiments.data.Split` to search on (default: the config's data set, split and
            standardised as ``tf-nvm train`` does).
        data_path: explicit data source for the data-set loader.
        verbose: progress lines.
        candidate_check: ``check(nvm_model)`` run on every candidate before it trains; an exception fails
            the trial with its reason (see `NVMTunerMixin`; `tf-nvm search` passes the crossbar exporter's
            dry run).
        fold_splits: with ``config.training.folds`` > 1, the folds' `Split` objects to cross-validate
            each trial on (default: `tf_nvm.experiments.data.subject_folds` of the config's data set).

    Returns:
        the summary dict (also ``summary.json``); a worker returns ``{"role": "worker", ...}``.

    Raises:
        SearchError: invalid config, folder already holding a search (neither resume nor
            overwrite), a resumed config that differs, every candidate failed.
    """
    search = config if isinstance(config, config_module.SearchConfig) else config_module.load(config)
    out = os.fspath(out)
    role = distributed_role()
    if role != "worker":
        _prepare_folder(search, out, resume, overwrite)
    recipe = search.base_recipe()
    if split is None:
        split = prepare_data(recipe, data_path, verbose=verbose)
    tuner = _search_tuner(search, out, resume, split, candidate_check, verbose)
    if verbose:
        done = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
        print(f"[tf-nvm] search {search.name} ({role}): {search.tuner['kind']} over {search.hypermodel}, "
              f"{len(tuner.oracle.trials)} trial(s) so far ({done} completed), output {out}", flush=True)
    if search.training.folds > 1:
        fold_splits = _checked_folds(search, recipe, fold_splits, data_path, verbose)
    start = time.perf_counter()
    tuner.search(fold_splits if search.training.folds > 1 else split)
    elapsed = time.perf_counter() - start
    if role == "worker":
        return {"role": "worker", "seconds": elapsed}
    return _finish(search, out, tuner, elapsed, export_best, data_path, verbose, split)


def _search_tuner(config, out, resume, split, candidate_check, verbose):
    """The config's tuner over its hypermodel (sized to ``split``'s inputs and classes), in ``out/tuner``."""
    num_classes = int(max(split.y_train.max(), split.y_val.max())) + 1
    hypermodel = make_hypermodel(config.hypermodel, config.space, input_shape=split.x_train.shape[1:],
                                 num_classes=num_classes)
    tuner_args = dict(config.tuner)
    kind = tuner_args.pop("kind")
    seed = tuner_args.pop("seed", 0)
    return _open_tuner(lambda: TUNERS.get(kind)(
        hypermodel, spec=config.spec, training=config.training, objective=config.objective, budget=config.budget,
        init=config.init, seed=seed, max_seconds=None if config.max_minutes is None else 60.0 * config.max_minutes,
        candidate_check=candidate_check, verbose=verbose, directory=out, project_name=PROJECT, overwrite=False,
        **tuner_args), out, resume)


def _checked_folds(config, recipe, fold_splits, data_path, verbose):
    """The folds of a cross-validated search: ``fold_splits`` or the data set's subject folds, as many as
    ``training.folds``."""
    folds = config.training.folds
    if fold_splits is None:
        fold_splits = subject_folds(recipe, folds, data_path, verbose=verbose)
    if len(fold_splits) != folds:
        raise SearchError(f"search {config.name!r}: training.folds is {folds} but {len(fold_splits)} fold "
                          "split(s) were given. Fix: pass as many fold splits as folds.")
    return fold_splits


def _finish(config, out, tuner, elapsed, export_best, data_path, verbose, split):
    """Writes the trials table, the plot, the best recipe and (``export_best``) the retrained best; the summary.

    Raises:
        SearchError: no trial completed (or none within ``retrain.max_tiles``).
    """
    table = trials_table(tuner)
    max_tiles = config.retrain.get("max_tiles")
    counted = table if table.empty else table.dropna(subset=["tiles"])  # a trial that failed before counting: NA
    tiles = {} if counted.empty else dict(zip(counted["trial"], counted["tiles"].astype(int)))
    best = next(iter(_best_trials(tuner, 1, tiles, max_tiles)), None)
    write_table(table, os.path.join(out, "trials"))
    statuses = table["status"].value_counts().to_dict() if not table.empty else {}
    summary = {"name": config.name, "trials": int(len(table)), "by_status": {k: int(v) for k, v in statuses.items()},
               "search_seconds": round(elapsed, 1), "stopped_by_time": tuner.stopped_by_time,
               "objective": config.objective.to_dict(), "budget": config.budget.to_dict()}
    if best is None:
        _plot(config, table, out, None)
        _no_best(config, out, table, summary, tiles, max_tiles)
    hypermodel = tuner.hypermodel

    def recipe_of(trial):
        arguments = {**hypermodel.fixed_arguments(), **hypermodel.arguments(trial.hyperparameters)}
        return arguments, config.base_recipe(arguments, name=f"{config.name}-best")

    def described(trial, arguments, recipe):
        return _described(table, trial, arguments, recipe)

    finalists = _best_trials(tuner, config.retrain.get("finalists", 1), tiles, max_tiles) if export_best else [best]
    metrics = None
    if len(finalists) > 1:
        best, metrics, finalist_rows = _retrain_finalists(config, out, finalists, recipe_of, described, data_path,
                                                          verbose, split)
        summary["finalists"] = finalist_rows
    arguments, recipe = recipe_of(best)
    summary["selection"] = (f"the best mean NVM validation accuracy over seeds {list(recipe.seeds)} of the "
                            f"{len(finalists)} best trials, each retrained" if len(finalists) > 1
                            else f"the search objective ({config.objective.metric})")
    if max_tiles is not None:
        summary["selection"] += f", among the trials on at most {max_tiles} tiles (retrain.max_tiles)"
    write_json_atomic(os.path.join(out, "best_recipe.json"), recipe.to_dict())
    summary["best"] = described(best, arguments, recipe)
    _plot(config, table, out, best.trial_id)
    if export_best:
        if metrics is None:
            metrics = run_recipe(recipe, os.path.join(out, "best"), data_path=data_path,
                                 verbose=2 if verbose else 0, overwrite=True, split=split)
        summary["retrained"] = {k: metrics[k] for k in ("test_accuracy", "float_test_accuracy",
                                                        "test_accuracy_summary", "float_test_accuracy_summary")}
    write_json_atomic(os.path.join(out, "summary.json"), summary)
    return summary


def _plot(config, table, out, best_id):
    """``out/pareto.png``: validation accuracy vs tiles, the best trial ``best_id`` marked (None: none)."""
    plot_pareto(table, os.path.join(out, "pareto.png"), best=best_id,
                title=f"{config.name}: NVM validation accuracy vs crossbar tiles")


def _described(table, trial, arguments, recipe):
    """The summary's row of a trial: its architecture, validation accuracy, score and hardware counts."""
    row = table[table["trial"] == trial.trial_id].iloc[0]
    return {"trial": trial.trial_id, "architecture": recipe.architecture, "architecture_args": arguments,
            "val_accuracy": float(row["val_accuracy"]), "score": float(row["score"]),
            **{k: int(row[k]) for k in ("tiles", "devices", "weights")}}


def _no_best(config, out, table, summary, tiles, max_tiles) -> NoReturn:
    """Writes the summary of a search without a best trial and raises `SearchError` saying why."""
    reasons = sorted(set(r for r in table.get("reason", []) if r))[:5] if not table.empty else []
    write_json_atomic(os.path.join(out, "summary.json"), {**summary, "best": None})
    if max_tiles is not None and (table["status"] == "COMPLETED").any():
        raise SearchError(f"search {config.name!r}: no completed trial fits retrain.max_tiles {max_tiles} "
                          f"(completed trials use {min(tiles.values())} tiles or more). Fix: raise "
                          f"retrain.max_tiles, remove it, or search longer (--resume).")
    raise SearchError(f"search {config.name!r}: no candidate completed ({summary['by_status']}); reasons: "
                      f"{reasons}. Fix: loosen the budget {config.budget.to_dict()}, narrow the space to "
                      f"smaller models, or check the reasons in {os.path.join(out, 'trials.md')}.")
