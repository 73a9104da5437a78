"""Hostile experiment recipes and output folders for ``tf-nvm run`` (issue #26, item 6).

Each case is a named error (rc 2 from the CLI) in bounded time and memory, before any data is read or any
model trains, and leaves every file where it was: ``quick.seeds: 5`` (a ``TypeError`` before), a damaged
``experiment.json``, step markers or ``metrics.json`` with wrong keys, ``report`` replaced by a file, ``--out``
naming a file, a sub-folder that is a symbolic link.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tf_nvm import pipeline
from tf_nvm.experiments import runs
from tf_nvm.cli import main
from tf_nvm.core.errors import PipelineError, RunFolderError
from tf_nvm.pipeline import report
from tf_nvm.pipeline.steps import MARKER_KEYS, check_marker, prepare_output, run_experiment, variant_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = "paper-har"
MAX_SECONDS = 5.0
"""Bound on the time one hostile case takes to be refused in-process, s (measured: under 0.2 s)."""
MAX_RSS_MIB = 1500
"""Bound on the peak resident memory of a `tf-nvm run` child refusing every hostile case, MiB (TensorFlow
imported: measured about 700 MiB)."""


def _snapshot(folder):
    """{relative path: bytes (files) or link target (links) or None (folders)} of everything under ``folder``."""
    out = {}
    for base, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, folder)
            out[rel] = (os.readlink(path) if os.path.islink(path) else
                        None if os.path.isdir(path) else open(path, "rb").read())
    return out


@pytest.fixture
def experiment():
    return pipeline.load(EXPERIMENT)


@pytest.fixture
def out(tmp_path, experiment):
    """An output folder as `tf-nvm run --quick` starts it (``experiment.json`` written, nothing trained)."""
    folder = tmp_path / "out"
    prepare_output(str(folder), experiment, quick=True)
    return folder


def _recipe(tmp_path, **changes):
    from tf_nvm.pipeline.experiment import experiments_dir  # noqa: PLC0415

    with open(experiments_dir() / f"{EXPERIMENT}.json", encoding="utf-8") as handle:
        data = json.load(handle)
    data.update(changes)
    path = tmp_path / "e.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("quick, message", [
    ({"seeds": 5}, r"quick\.seeds must be a non-empty list of integers >= 0, got 5"),
    ({"seeds": []}, r"quick\.seeds must be a non-empty list of integers >= 0, got \[\]"),
    ({"seeds": ["a"]}, r"quick\.seeds\[\] must be an integer >= 0, got 'a'"),
    ({"chips": "abc"}, r"quick\.chips must be an integer >= 1, got 'abc'"),
    ({"epochs": -1}, r"quick\.epochs must be an integer >= 1, got -1"),
])
def test_invalid_quick_settings_are_named_from_the_cli(tmp_path, capsys, quick, message):
    path = _recipe(tmp_path, quick=quick)
    start = time.monotonic()
    assert main(["run", str(path), "--quick", "--out", str(tmp_path / "o")]) == 2
    assert time.monotonic() - start < MAX_SECONDS
    err = capsys.readouterr().err
    assert re.search(message + r".*Fix: ", err), err
    assert not (tmp_path / "o").exists()


def _run(out, experiment):
    return run_experiment(experiment, str(out), quick=True, verbose=False)


DAMAGED_RECORDS = {
    "truncated": ('{"experiment": {"name": "paper-har"', r"experiment record .*experiment\.json is not valid JSON "
                                                        r"\(Expecting"),
    "nested": ("[" * 100_000 + "]" * 100_000, r"experiment\.json nests arrays and objects deeper"),
    "a list": ("[1, 2]", r"experiment\.json holds a JSON list; expected a JSON object"),
    "not UTF-8": (b'{"quick": "\xfe"}', r"experiment\.json is not UTF-8 text"),
    "NaN": ('{"quick": NaN}', r"experiment\.json is not valid JSON \(NaN is not a JSON number"),
    "experiment a number": ('{"experiment": 5}', r"experiment\.json: experiment must be a JSON object, got 5; the "
                                                 r"file was edited"),
    "recipes a list": ('{"experiment": {"name": "paper-har"}, "recipes": [1]}', r"recipes must be a JSON object, "
                                                                              r"got \[1\]"),
    "another experiment": ('{"experiment": {"name": "other"}}', r"holds a run of experiment 'other', not "
                                                                r"'paper-har'"),
}


@pytest.mark.parametrize("name", sorted(DAMAGED_RECORDS))
def test_a_damaged_experiment_record_is_a_named_error(out, experiment, name):
    content, message = DAMAGED_RECORDS[name]
    path = out / "experiment.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = _snapshot(out)
    start = time.monotonic()
    with pytest.raises(PipelineError, match=message + r".*Fix: "):
        _run(out, experiment)
    assert time.monotonic() - start < MAX_SECONDS
    assert _snapshot(out) == before


def _variant(out, experiment):
    name = experiment.quick_version().variant_names[0]
    folder = variant_folder(str(out), name)
    os.makedirs(folder)
    return folder


@pytest.mark.parametrize("step", list(MARKER_KEYS))
def test_a_step_marker_with_wrong_keys_is_refused_before_it_is_reused(out, experiment, step):
    folder = _variant(out, experiment)
    for earlier in list(MARKER_KEYS)[:list(MARKER_KEYS).index(step)]:  # the steps before, as finished
        runs.mark_done(folder, earlier, {key: 0 for key in MARKER_KEYS[earlier]})
    runs.mark_done(folder, step, {"wrong": 1})
    before = _snapshot(out)
    with pytest.raises(PipelineError, match=rf"steps/{step}\.json: the {step} step's marker lacks "
                                            rf"\[{', '.join(repr(k) for k in MARKER_KEYS[step])}\] \(found "
                                            rf"\['wrong'\]\); it was edited or written by another tool\. Fix: pass "
                                            rf"--force {step} to redo {step} and every later step\."):
        _run(out, experiment)
    assert _snapshot(out) == before


def test_a_step_marker_that_is_not_an_object_is_named(out, experiment):
    folder = _variant(out, experiment)
    os.makedirs(os.path.join(folder, runs.STEPS))
    with open(os.path.join(folder, runs.STEPS, "train.json"), "w") as handle:
        handle.write('{"step": "train", "info": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(RunFolderError, match=r"train\.json nests arrays and objects deeper .*Fix: delete "):
        _run(out, experiment)
    with pytest.raises(RunFolderError, match=r"train\.json nests arrays"):
        check_marker(folder, "train")


def _finished(out, experiment, metrics=None, **markers):
    """Every variant marked finished with the keys `MARKER_KEYS` names (values 0) and ``metrics``."""
    for name in experiment.quick_version().variant_names:
        folder = variant_folder(str(out), name)
        os.makedirs(folder, exist_ok=True)
        for step, keys in MARKER_KEYS.items():
            runs.mark_done(folder, step, markers.get(step, {key: 0 for key in keys}))
        with open(os.path.join(folder, "metrics.json"), "w") as handle:
            json.dump(metrics if metrics is not None else {}, handle)


@pytest.mark.parametrize("metrics, message", [
    ({"wrong": 1}, r"variant metrics .*metrics\.json lacks \['seeds', 'test_accuracy', 'test_accuracy_summary', "
                   r"'float_test_accuracy_summary'\] \(found \['wrong'\]\); it was edited or written by another "
                   r"tool\. Fix: pass --force train"),
    ({"metric": "mse", "seeds": []}, r"metrics\.json lacks \['test_mse', 'test_mse_summary', "
                                     r"'float_test_mse_summary'\]"),
    ([1], r"metrics\.json holds a JSON list; expected a JSON object"),
])
def test_metrics_with_wrong_keys_are_named_when_the_report_is_written(out, experiment, metrics, message):
    _finished(out, experiment, metrics)
    before = _snapshot(out)
    with pytest.raises(PipelineError, match=message):
        _run(out, experiment)
    assert _snapshot(out) == before


def test_values_of_the_wrong_type_deeper_in_the_results_are_named(out, experiment):
    metrics = {"seeds": [], "test_accuracy": 0.5, "test_accuracy_summary": 5, "float_test_accuracy_summary": 5}
    _finished(out, experiment, metrics)
    with pytest.raises(PipelineError, match=r"the report of .* cannot be built: a value it reads is missing or of "
                                            r"the wrong type \(TypeError: .*\); a variant's metrics\.json or step "
                                            r"marker \(variants/\*/steps/\*\.json\) was edited\. Fix: pass --force "
                                            r"export"):
        _run(out, experiment)


@pytest.mark.parametrize("sub", ["report", "variants", "floats"])
@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_sub_folder_replaced_by_a_file_or_link_is_refused_first(out, tmp_path, experiment, sub, kind):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("a user's file")
    if kind == "file":
        (out / sub).write_text("a user's file")
    else:
        os.symlink(target, out / sub)
    before = _snapshot(out)
    with pytest.raises(PipelineError, match=rf"{sub} is {'a file' if kind == 'file' else 'a symbolic link'}; "
                                            rf"tf_nvm writes {sub}/ as a folder of its own and never replaces what "
                                            r"is there\. Fix: move .* away, or pass another --out\."):
        _run(out, experiment)
    assert _snapshot(out) == before and (target / "keep.txt").read_text() == "a user's file"


def test_the_report_writer_refuses_a_report_file_too(out, experiment):
    (out / "report").write_text("mine")
    with pytest.raises(PipelineError, match=r"report is not a folder; tf_nvm writes the report into a folder of its "
                                            r"own"):
        report.write_report(experiment.quick_version(), str(out), True, {})
    assert (out / "report").read_text() == "mine"


def test_out_naming_a_file_is_refused_from_the_cli(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text("a user's file")
    assert main(["run", EXPERIMENT, "--quick", "--out", str(path)]) == 2
    assert re.search(r"output folder .*results\.json is a file, not a folder\. Fix: pass a new or empty --out\.",
                     capsys.readouterr().err)
    assert path.read_text() == "a user's file"


_CHILD = """
import json, sys, time
from tf_nvm.cli import main
import tf_nvm.pipeline.steps  # TensorFlow loads on the first experiment load; outside the timed refusals
main(["run", "paper-har", "--quick", "--out", sys.argv[1] + "/warm-up-file"])
times = []
for args in json.loads(sys.argv[2]):
    start = time.monotonic()
    times.append((main(["run", *args]), round(time.monotonic() - start, 3)))
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"results": times, "peak_mib": peak_kib // 1024}))
"""


def test_time_and_peak_memory_of_the_hostile_cases_are_bounded(tmp_path, experiment):
    """In a fresh child (VmHWM of its own, not the parent's ru_maxrss carried across fork)."""
    (tmp_path / "warm-up-file").write_text("x")
    cases = [[str(_recipe(tmp_path, quick={"seeds": 5})), "--quick", "--out", str(tmp_path / "a")]]
    for name, (content, _) in sorted(DAMAGED_RECORDS.items()):
        folder = tmp_path / f"record-{len(cases)}"
        prepare_output(str(folder), experiment, quick=True)
        (folder / "experiment.json").write_bytes(content if isinstance(content, bytes) else content.encode())
        cases.append([EXPERIMENT, "--quick", "--out", str(folder)])
    for kind in ("markers", "metrics", "report"):
        folder = tmp_path / kind
        prepare_output(str(folder), experiment, quick=True)
        if kind == "markers":
            runs.mark_done(_variant(folder, experiment), "train", {"wrong": 1})
        elif kind == "metrics":
            _finished(folder, experiment, {"wrong": 1})
        else:
            (folder / "report").write_text("x")
        cases.append([EXPERIMENT, "--quick", "--out", str(folder)])
    (tmp_path / "file").write_text("x")
    cases.append([EXPERIMENT, "--quick", "--out", str(tmp_path / "file")])
    result = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), json.dumps(cases)], capture_output=True,
                            text=True, cwd=ROOT, timeout=300, check=False)
    report_ = json.loads(result.stdout.strip().splitlines()[-1])
    assert [code for code, _ in report_["results"]] == [2] * len(cases), result.stderr[-3000:]
    assert max(seconds for _, seconds in report_["results"]) < 2.0, report_
    assert report_["peak_mib"] < MAX_RSS_MIB, report_
