"""The steps of `tf-nvm run`: train -> export -> simulate -> cost, per variant, each resumable.

Output folder ``OUT``:

* ``experiment.json``: the experiment as run (a rerun with another recipe or
  other settings into the same folder is refused);
* ``variants/<training recipe>/``: a `tf-nvm train` run folder (float baseline
  and NVM model over the seeds) with ``export/`` (``model.tflite``, the crossbar
  mapping), ``simulate/`` (per-chip accuracies) and ``cost/`` (tables); every
  finished step leaves a marker (`tf_nvm.experiments.runs.mark_done`) holding its numbers;
* ``floats/<key>/seed<N>/``: float baselines shared by variants that differ only in the NVM spec
  (`tf_nvm.experiments.train.float_key`), each trained once;
* ``report/``: written by `tf_nvm.pipeline.report` from the markers.

A rerun reuses every step whose marker exists and says so; an interrupted run
continues at the first unfinished step; inside an interrupted training step the
seeds already trained are reused (`tf_nvm.experiments.train.run_recipe` with ``resume``) and
only the others are trained, the interrupted model from its last finished epoch
(`tf_nvm.experiments.progress`). ``force`` redoes one step and every step after it
(``force="train"`` trains every seed again).
"""

import dataclasses
import hashlib
import os
import shutil
import time

import numpy as np

from tf_nvm import mapping as mapping_io
from tf_nvm.core.atomic import write_json_atomic
from tf_nvm.core.errors import PipelineError
from tf_nvm.core.outputs import claim_output_folder, mark_output_folder
from tf_nvm.core.registry import did_you_mean
from tf_nvm.core.safe_io import json_plain, read_json
from tf_nvm.core.tables import to_records, write_table
from tf_nvm.cost import MCU_CORES, compare_mappings, mcu_cost, network_cost, shared_vs_per_layer
from tf_nvm.experiments import runs
from tf_nvm.experiments.data import prepare_data
from tf_nvm.mapping import reference
from tf_nvm.pipeline.costing import read_mcu_model
from tf_nvm.pipeline.evaluate import export_metadata, run_standardization
from tf_nvm.pipeline.experiment import REPORT_FIELDS, Experiment, from_dict
from tf_nvm.pipeline.markers import MARKER_KEYS, OUTPUT_FOLDERS, STEPS, check_marker, variant_folder
from tf_nvm.pipeline.report import runtime_line, write_report

__all__ = ["STEPS", "MARKER_KEYS", "check_marker", "check_force", "run_experiment", "variant_folder",
           "prepare_output"]

REPRESENTATIVE = 500
"""Training windows given to the TFLite converter for calibration."""


def _check_folders(out):
    """Refuses an output folder ``out``, or one of its `OUTPUT_FOLDERS`, that is a file or a symbolic link."""
    if os.path.lexists(out) and (os.path.islink(out) or not os.path.isdir(out)):
        raise PipelineError(f"output folder {out} is {'a symbolic link' if os.path.islink(out) else 'a file'}, "
                            "not a folder. Fix: pass a new or empty --out.")
    for sub in OUTPUT_FOLDERS:
        path = os.path.join(out, sub)
        if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
            kind = "a symbolic link" if os.path.islink(path) else "a file"
            raise PipelineError(f"output folder {out}: {path} is {kind}"
                                f"; tf_nvm writes {sub}/ as a folder of its own and never replaces what is there. "
                                f"Fix: move {path} away, or pass another --out.")


def _settings(data):
    """The recorded settings that fix a folder; an inline variant counts by its name (its recipe's content is
    compared per variant in `_check_recipes`, so changing a variant that has not trained yet is allowed)."""
    found = {k: v for k, v in data.get("experiment", {}).items() if k not in REPORT_FIELDS}
    if isinstance(found.get("variants"), list):
        found["variants"] = [v.get("name") if isinstance(v, dict) else v for v in found["variants"]]
    return {"quick": data.get("quick"), "experiment": found}


def _with_defaults(recorded, path):
    """The recorded experiment read as the experiment loads: a field added since takes its default."""
    try:
        return json_plain(from_dict(recorded, where=path).to_dict())
    except (PipelineError, TypeError, AttributeError):
        return recorded  # compared as recorded (and refused by the caller)


def _read_record(out, path, experiment):
    """``experiment.json`` of ``out``, checked to be a record of ``experiment`` (by name)."""
    damaged = f"Fix: delete {out} to start over, or pass another --out."
    found = read_json(path, what="experiment record", error=PipelineError, fix=damaged, object_only=True)
    for key, kind in (("experiment", dict), ("recipes", dict)):
        if key in found and not isinstance(found[key], kind):
            raise PipelineError(f"experiment record {path}: {key} must be a JSON object, got "
                                f"{repr(found[key])[:80]}; the file was edited. {damaged}")
    if found.get("experiment", {}).get("name") != experiment.name:
        other = found.get("experiment", {}).get("name")
        raise PipelineError(f"output folder {out} holds a run of experiment {other!r}, not "
                            f"{experiment.name!r}. Fix: pass another --out, or delete {out}.")
    return found


def _check_recipes(out, before, recipes, retrain):
    """Refuses variants that finished training with another version of their training recipe (unless
    ``retrain``); ``before`` is the record's ``recipes`` (absent in folders written before tf_nvm recorded them)."""
    changed = [] if retrain else sorted(
        name for name in recipes if name in before and before[name] != recipes[name]
        and os.path.isdir(variant_folder(out, name)) and runs.is_done(variant_folder(out, name), "train"))
    if changed:
        raise PipelineError(f"output folder {out}: variant(s) {changed} were trained with another version of "
                            "their training recipe. Fix: delete "
                            f"{', '.join(variant_folder(out, name) for name in changed)} to retrain only them, "
                            "rerun with --force train to retrain every variant, or pass another --out.")


def prepare_output(out: str, experiment: Experiment, quick: bool, retrain: bool = False) -> None:
    """Creates ``out`` or checks that it holds this experiment with these settings; writes ``experiment.json``.

    ``experiment.json`` records the experiment, ``quick`` and every variant's training recipe as run.
    Fields that only shape the report (`tf_nvm.pipeline.experiment.REPORT_FIELDS`) may differ from the
    record (the report is rebuilt with them), and so may the training recipe of a variant that has not
    finished training (e.g. whose folder was deleted to retrain it), or any training recipe when
    ``retrain`` (``--force train``: every variant trains again); the record is then updated.

    Raises:
        PipelineError: ``out`` holds another experiment, the same one with other settings, a variant
            trained with a training recipe that has changed since, or unrelated files.
    """
    _check_folders(out)
    chosen = experiment.quick_version() if quick else experiment
    recipes = {name: chosen.training_recipe(name).to_dict() for name in chosen.variant_names}
    record = json_plain({"experiment": experiment.to_dict(), "quick": bool(quick), "recipes": recipes})
    path = os.path.join(out, "experiment.json")
    if os.path.isfile(path):
        found = _read_record(out, path, experiment)
        if _settings({**found, "experiment": _with_defaults(found.get("experiment", {}), path)}) != _settings(record):
            raise PipelineError(f"output folder {out} holds a run of {experiment.name!r} with other settings "
                                f"(quick={found.get('quick')}, or a changed recipe). Fix: rerun with the same "
                                "settings to continue it, pass another --out, or delete the folder.")
        _check_recipes(out, found.get("recipes", {}), recipes, retrain)
        if found != record:
            write_json_atomic(path, record)  # report fields, or recipes of variants still to train, changed
        return
    claim_output_folder(out, "run", error=PipelineError)  # the rule of every --out (tf_nvm.core.outputs)
    mark_output_folder(out, "run")
    write_json_atomic(path, record)


def _say(verbose, text):
    if verbose:
        print(f"[tf-nvm] {text}", flush=True)


class _Data:
    """The experiment's data split, loaded once and shared by every variant (same data set and split)."""

    def __init__(self, data_path, verbose):
        self.data_path, self.verbose, self._split = data_path, verbose, None

    def get(self, recipe):
        if self._split is None:
            self._split = prepare_data(recipe, self.data_path, verbose=self.verbose)
        return self._split


def _train(experiment, name, folder, data, verbose, retrain=False, shared_floats=None):
    from tf_nvm.experiments.train import run_recipe  # noqa: PLC0415  (imports TensorFlow)

    recipe = experiment.training_recipe(name)
    metrics = run_recipe(recipe, folder, data_path=data.data_path, verbose=2 if verbose else 0,
                         overwrite=True, resume=not retrain, shared_floats=shared_floats)
    metric = metrics.get("metric", "accuracy")  # mse for regression and reconstruction
    extra = {} if metric == "accuracy" else {"task": metrics["task"], "metric": metric}
    return {"recipe": recipe.to_dict(), **extra, f"test_{metric}": metrics[f"test_{metric}_summary"],
            f"float_test_{metric}": metrics[f"float_test_{metric}_summary"],
            "per_seed": [{"seed": row["seed"], "nvm": row["nvm"][f"test_{metric}"],
                          "float": row["float"][f"test_{metric}"]} for row in metrics["seeds"]],
            "selected_seed": metrics["selected_seed"]}


def _export(experiment, name, folder, data, verbose):
    import tflite_export  # noqa: PLC0415  (imports TensorFlow)
    from tf_nvm.keras.nvm_model import model_spec  # noqa: PLC0415  (imports TensorFlow)
    from tflite_export.verify import RuntimeReport, compare  # noqa: PLC0415  (imports TensorFlow)

    run = runs.read_run(folder)
    split = data.get(experiment.training_recipe(name))
    out = os.path.join(folder, "export")
    os.makedirs(out, exist_ok=True)
    tflite = tflite_export.export_tflite(run.model, os.path.join(out, "model.tflite"),
                                         split.x_train[:REPRESENTATIVE], measure_arena=True)
    x = split.x_test[:experiment.export_examples] if experiment.export_examples else split.x_test
    _say(verbose, f"{name}: TFLite model {tflite.model_bytes} bytes, arena {tflite.arena_bytes} bytes; comparing "
                  f"LiteRT and TFLite Micro with the Keras model on {len(x)} test examples")
    checks = compare(run.model, tflite.path, x, runtimes=("litert", "tflm"), arena_size=tflite.arena_bytes)
    # the deployment view (tflite_export.runtime_report): both runtimes against the model as trained; its own
    # runtime is the exactness check above, the other is compared once more in the model's arithmetic
    runtime = model_spec(run.model).runtime
    other = "litert" if runtime == "tflm" else "tflm"
    other_check = compare(run.model, tflite.path, x, runtimes=(other,), arena_size=tflite.arena_bytes,
                          emulate="model")[other]
    report = RuntimeReport(runtime=runtime, deployed=checks[runtime], other=other_check,
                           inputs=f"{len(x)} test examples")
    task = experiment.resolved_task
    _say(verbose, f"{name}: {runtime_line(_runtime_dict(report), task)}")
    mapping = tflite_export.export_crossbar(run.model, os.path.join(out, "mapping"),
                                            preprocessing=run_standardization(run, folder),
                                            metadata=export_metadata(run.model, task, run.dataset))
    with open(tflite.path, "rb") as handle:  # recorded so the cost step costs this file, not a swapped one
        digest = hashlib.sha256(handle.read()).hexdigest()
    return {"tflite": {**tflite.to_dict(), "sha256": digest}, "mapping_prefix": os.path.join(out, "mapping"),
            "mapping": mapping.summary(), "runtimes": {key: dataclasses.asdict(value) for key, value in
                                                       checks.items()},
            "runtime_report": _runtime_dict(report)}


def _runtime_dict(report):
    """The export marker's ``runtime_report``: `tflite_export.verify.RuntimeReport` as a JSON-ready dict."""
    return {"runtime": report.runtime, "inputs": report.inputs, "exact": report.exact,
            "deployed": dataclasses.asdict(report.deployed), "other": dataclasses.asdict(report.other)}


def _simulate(experiment, name, folder, data, verbose):
    from tf_nvm.simulator import DeviceConfig, SimulationConfig, Simulator, monte_carlo  # noqa: PLC0415  (TensorFlow)

    sim_cfg = experiment.simulation
    mapping = mapping_io.load(os.path.join(folder, "export", "mapping"))
    split = data.get(experiment.training_recipe(name))
    x, y = split.x_test, np.asarray(split.y_test)
    if sim_cfg.examples:
        x, y = x[:sim_cfg.examples], y[:sim_cfg.examples]
    ideal_sim = Simulator(mapping, SimulationConfig(batch_size=512))
    ideal = ideal_sim.run(ideal_sim.program(0), x)
    want = reference.evaluate(mapping, x)
    differing = int(sum(np.count_nonzero(ideal.codes[k] != want.codes[k]) for k in mapping.outputs))
    outputs = int(sum(want.codes[k].size for k in mapping.outputs))
    config = SimulationConfig(device=DeviceConfig(noise=sim_cfg.preset, t_inference=sim_cfg.t_inference,
                                                  read_noise=sim_cfg.read_noise), batch_size=512)
    _say(verbose, f"{name}: {sim_cfg.chips} {sim_cfg.preset} chips at t = {sim_cfg.t_inference:g} s on {len(x)} "
                  "test examples")
    result = monte_carlo(mapping, x, y, config, sim_cfg.chips, verbose=verbose, ideal=ideal.values(),
                         metric=experiment.metric)
    sweep = []
    for seconds in sim_cfg.sweep_t_inference:
        point = monte_carlo(mapping, x, y, dataclasses.replace(config, device=dataclasses.replace(
            config.device, t_inference=float(seconds))), sim_cfg.chips, ideal=ideal.values(),
            metric=experiment.metric)
        sweep.append({"t_inference": float(seconds), "mean": point.mean, "std": point.std, "min": point.min})
        _say(verbose, f"{name}: {sim_cfg.preset} at t = {seconds:g} s: {point.summary_line()}")
    out = os.path.join(folder, "simulate")
    os.makedirs(out, exist_ok=True)
    write_table(result.chip_table(), os.path.join(out, "chips"))
    return {"examples": len(x), "ideal_vs_evaluator_differing": differing, "ideal_vs_evaluator_outputs": outputs,
            "task": result.task, "metric": result.metric, f"ideal_{result.metric}": result.ideal_score,
            "preset": sim_cfg.preset, "t_inference": sim_cfg.t_inference,
            "read_noise": sim_cfg.read_noise, "chips": list(map(float, result.scores)),
            "summary": {key: value for key, value in result.row().items() if key != "seconds"}, "sweep": sweep,
            "levels": _level_histograms(mapping)}


def _level_histograms(mapping):
    """Per crossbar layer, how many devices sit at each conductance level (the report plots them)."""
    top = mapping.spec.top_level
    return {layer.name: np.bincount(layer.levels.ravel().astype(np.int64), minlength=top + 1).tolist()
            for layer in mapping.crossbar_layers}


def _cost(experiment, name, folder, data, verbose):
    mapping = mapping_io.load(os.path.join(folder, "export", "mapping"))
    tech = experiment.cost.resolve()
    as_mapped = network_cost(mapping, tech)
    components = as_mapped.by_component()
    export = runs.step_info(folder, "export")
    path = os.path.join(folder, "export", "model.tflite")  # the folder may have moved: not the recorded path
    graph, _, _ = read_mcu_model(path, export["tflite"]["arena_bytes"] or 1, export["tflite"].get("sha256"),
                                 where=f"tf-nvm run: {path}")
    mcu = {}
    for core_name, core in MCU_CORES.items():
        _, totals = mcu_cost(graph, core, export["tflite"]["arena_bytes"])
        mcu[core_name] = totals
    shared = shared_vs_per_layer(mapping, tech)
    return {"technology": tech.name, "array_sizing": tech.array_sizing, "summary": as_mapped.summary(),
            "by_component": to_records(components),
            "unipolar_vs_bipolar": compare_mappings(mapping, tech),
            "shared_vs_per_layer": to_records(shared), "mcu": mcu}


def _jsonable(value):
    """``value`` with numpy scalars and arrays turned into Python numbers and lists (every step marker goes
    through it, so the steps may return numpy values)."""
    def default(obj):
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON-ready")
    return json_plain(value, default=default)


_STEP_FUNCTIONS = {"train": _train, "export": _export, "simulate": _simulate, "cost": _cost}


def _refuse_stale(experiment, out):
    """Raises `PipelineError` when a finished step in ``out`` was made by other tf_nvm code (`runs.step_stale`)."""
    stale = []
    for name in experiment.variant_names:
        folder = variant_folder(out, name)
        if os.path.isdir(folder):
            stale += [(name, step, reason) for step in STEPS if (reason := runs.step_stale(folder, step))]
    if stale:
        first = STEPS[min(STEPS.index(step) for _, step, _ in stale)]
        listed = ", ".join(f"{name}/{step}" for name, step, _ in stale)
        raise PipelineError(
            f"tf-nvm run: {out} holds steps made by other tf_nvm code ({listed}: {stale[0][2]}); reusing them "
            f"would mix results of two versions in one report. Fix: pass --force {first} to redo them and every "
            "later step, or another --out.")


def check_force(force: str | None) -> None:
    """Checks a ``force`` step name (None, or one of `STEPS`).

    Raises:
        PipelineError: another value (the message names the closest step).
    """
    if force is not None and force not in STEPS:
        raise PipelineError(f"tf-nvm run: --force must be one of {list(STEPS)}, got {force!r}."
                            f"{did_you_mean(force, STEPS)} Fix: pass one of those step names.")


def _drop_markers(experiment, out, force):
    """Removes the markers of step ``force`` and every later step of every variant (they are redone)."""
    for name in experiment.variant_names:
        folder = variant_folder(out, name)
        if os.path.isdir(folder):
            for step in STEPS[STEPS.index(force):]:
                marker = os.path.join(folder, runs.STEPS, f"{step}.json")
                if os.path.isfile(marker):
                    os.remove(marker)


def _run_steps(experiment, name, out, data, verbose, retrain, timings):
    """Runs the unfinished steps of variant ``name`` in order, marking each done; adds their wall times to
    ``timings`` (``{"<variant>/<step>": seconds}``)."""
    folder = variant_folder(out, name)
    for step in STEPS:
        if os.path.isdir(folder) and check_marker(folder, step) is not None:
            _say(verbose, f"{name}: {step} done earlier, reused")
            continue
        _say(verbose, f"{name}: {step} ...")
        start = time.perf_counter()
        options = {"retrain": retrain, "shared_floats": os.path.join(out, "floats")} if step == "train" else {}
        info = _STEP_FUNCTIONS[step](experiment, name, folder, data, verbose, **options)
        timings[f"{name}/{step}"] = time.perf_counter() - start
        runs.mark_done(folder, step, {**_jsonable(info), "seconds": round(timings[f"{name}/{step}"], 1)})
        _say(verbose, f"{name}: {step} finished in {timings[f'{name}/{step}']:.0f} s")


def run_experiment(experiment: Experiment, out: str, quick: bool = False, force: str | None = None,
                   data_path: str | None = None, verbose: bool = True) -> str:
    """Runs every step of every variant (reusing finished ones), then writes the report.

    Args:
        experiment: `tf_nvm.pipeline.experiment.Experiment` (before ``--quick`` is applied).
        out: output folder.
        quick: use the experiment's ``quick`` overrides (smoke run).
        force: a step name of `STEPS` to redo (with every later step), or None.
        data_path: explicit data source for the loader.
        verbose: progress lines.

    Returns:
        path of the report folder.

    Raises:
        PipelineError: invalid ``force``, an output folder holding another run, or finished steps made by other
            tf_nvm code (a version or commit other than the running one, `tf_nvm.core.provenance`) that ``force``
            does not redo.
    """
    check_force(force)
    chosen = experiment.quick_version() if quick else experiment
    retrain = force == "train"
    prepare_output(out, experiment, quick, retrain=retrain)
    data = _Data(data_path, verbose)
    if retrain:
        shutil.rmtree(os.path.join(out, "floats"), ignore_errors=True)
    if force is not None:
        _drop_markers(chosen, out, force)
    _refuse_stale(chosen, out)
    timings: dict[str, float] = {}
    for name in chosen.variant_names:
        _run_steps(chosen, name, out, data, verbose, retrain, timings)
    return write_report(chosen, out, quick, timings)
