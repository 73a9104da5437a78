"""One bounded JSON reader for every JSON file the product reads (issue #26, item 6).

`tf_nvm.core.safe_io.read_json` / `loads_json` turn deeply nested documents (``RecursionError``), 400-digit
integers and 1e308 values (``OverflowError`` later), NaN/Infinity, non-UTF-8 bytes and lone surrogates
into the caller's named error. The first test greps the sources: no module but ``safe_io`` parses JSON
itself (its JSON part, ``tf_nvm.core.safe_json``), and it lists the modules that read JSON through the one reader.
"""

import ast
import os
import time

import pytest

from tf_nvm.experiments import runs
from tf_nvm.core import safe_io
from tf_nvm.core.errors import CostModelError, PipelineError, RecipeError, RunFolderError, SearchError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEEP = "[" * 100_000 + "]" * 100_000
"""100,000 nested arrays: Python's json module raises RecursionError at about 1,000."""
DEEP_OBJECT = '{"a": ' * 100_000 + "1" + "}" * 100_000
JSON_MODULE = "tf_nvm/core/safe_json.py"  # the one module that parses JSON (re-exported by tf_nvm.core.safe_io)
MAX_SECONDS = 2.0
"""Bound on the time one hostile document takes to be refused, s (measured: under 0.01 s)."""

READERS = {
    # module: why it reads JSON
    "tf_nvm/cost/technology.py": "technology files",
    "tf_nvm/core/validate.py": "--set KEY=VALUE values (parse_override, the one override parser)",
    "tf_nvm/mapping/io.py": "the npz a mapping file names (before an export replaces it)",
    "tf_nvm/mapping/reader.py": "mapping files",
    "tf_nvm/nas/report.py": "trial records (nvm_trial.json)",
    "tf_nvm/nas/search.py": "search.json on --resume",
    "tf_nvm/nas/tuners.py": "trial records (trained spec)",
    "tf_nvm/keras/model_file.py": "config.json of .keras files",
    "tf_nvm/core/outputs.py": "output-folder markers",
    "tf_nvm/pipeline/inputs.py": "--standardisation files",
    "tf_nvm/pipeline/sources.py": "a run's experiment.json",
    "tf_nvm/pipeline/shards.py": "the results.json of Monte Carlo shards to merge",
    "tf_nvm/pipeline/report.py": "experiment.json and variants' metrics.json",
    "tf_nvm/pipeline/steps.py": "experiment.json of an output folder",
    "tf_nvm/experiments/progress.py": "training progress state.json",
    "tf_nvm/experiments/recipes.py": "training recipes, experiment recipes and search configs",
    "tf_nvm/experiments/runs.py": "run folder files and step markers",
    "tf_nvm/core/tables.py": "tables as records",
    "tflite_export/tflm.py": "the arena probe's answers",
}


def _sources():
    for top in ("tf_nvm", "tflite_export"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    yield os.path.relpath(path, ROOT).replace(os.sep, "/"), open(path, encoding="utf-8").read()


def _calls(tree, names):
    """Names of the calls in ``tree`` that are ``json.<name>``, ``<x>.<name>`` or ``<name>`` for ``names``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "json":
            found += [f"from json import {alias.name}" for alias in node.names if alias.name in ("load", "loads")]
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
            if name in names or (owner == "json" and name in ("load", "loads", "JSONDecoder")):
                found.append(f"{owner + '.' if owner else ''}{name}")
    return found


def test_only_safe_io_parses_json_and_every_reader_uses_it():
    parsers, readers = {}, {}
    for path, text in _sources():
        tree = ast.parse(text)
        direct = [c for c in _calls(tree, ()) if "json" in c]
        if direct and path != JSON_MODULE:
            parsers[path] = direct
        through = _calls(tree, ("read_json", "loads_json"))
        if through and path not in (JSON_MODULE, "tf_nvm/core/safe_io.py"):
            readers[path] = len(through)
    assert parsers == {}, f"modules parsing JSON without tf_nvm.core.safe_io.read_json/loads_json: {parsers}"
    assert sorted(readers) == sorted(READERS), readers


@pytest.fixture
def timed():
    start = time.monotonic()
    yield
    assert time.monotonic() - start < MAX_SECONDS


@pytest.mark.parametrize("text", [DEEP, DEEP_OBJECT], ids=["arrays", "objects"])
def test_deep_technology_file(tmp_path, text, timed):
    from tf_nvm.cost.technology import load_technology  # noqa: PLC0415

    path = tmp_path / "tech.json"
    path.write_text(text)
    with pytest.raises(CostModelError, match=r"technology file .*tech\.json nests arrays and objects deeper than "
                                             r"Python's JSON parser allows .* at most 64 are allowed\. Fix: write a "
                                             r"JSON object of technology keys"):
        load_technology(str(path))


def test_deep_training_recipe(tmp_path, timed):
    from tf_nvm.experiments import recipes  # noqa: PLC0415

    path = tmp_path / "r.json"
    path.write_text(DEEP)
    with pytest.raises(RecipeError, match=r"recipe file .*r\.json nests arrays and objects deeper .*Fix: correct "
                                          r"the recipe file"):
        recipes.load(str(path))


def test_deep_search_config(tmp_path, timed):
    from tf_nvm.nas import config  # noqa: PLC0415

    path = tmp_path / "s.json"
    path.write_text('{"name": "s", "space": ' + DEEP + "}")
    with pytest.raises(SearchError, match=r"search config .*s\.json nests arrays and objects deeper"):
        config.load(str(path))


def test_deep_experiment_config(tmp_path, timed):
    from tf_nvm import pipeline  # noqa: PLC0415

    path = tmp_path / "e.json"
    path.write_text(DEEP_OBJECT)
    with pytest.raises(PipelineError, match=r"experiment recipe .*e\.json nests arrays and objects deeper"):
        pipeline.load(str(path))


def test_just_too_deep_is_refused_with_its_place(tmp_path):
    from tf_nvm.experiments import recipes  # noqa: PLC0415

    path = tmp_path / "r.json"
    path.write_text('{"architecture_args": {"filters": ' + "[" * 64 + "]" * 64 + "}}")
    with pytest.raises(RecipeError, match=r"r\.json is refused: arrays and objects nest deeper than 64 levels at "
                                          r"\$\.architecture_args\.filters(\[0\])+\.\.\.; at most 64 are allowed"):
        recipes.load(str(path))


@pytest.mark.parametrize("name", [runs.MANIFEST, runs.PREPROCESSING, runs.RECIPE, runs.METRICS, runs.SPEC])
def test_deep_files_of_a_run_folder(tmp_path, name, timed):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / name).write_text(DEEP)
    with pytest.raises(RunFolderError, match=rf"run file .*{name.replace('.', '[.]')} nests arrays and objects "
                                             r"deeper .*Fix: re-run `tf-nvm train`"):
        # read_run reads run.json, then preprocessing.json, spec.json, recipe.json and metrics.json
        runs._read_json(str(folder), name)


def test_deep_step_marker(tmp_path, timed):
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "export.json").write_text(DEEP_OBJECT)
    with pytest.raises(RunFolderError, match=r"export\.json nests arrays and objects deeper .*Fix: delete "
                                             r".*export\.json to redo the step"):
        runs.step_info(str(tmp_path), "export")


def test_deep_training_progress(tmp_path, timed):
    from tf_nvm.experiments.progress import STATE, EpochProgress  # noqa: PLC0415

    (tmp_path / STATE).write_text(DEEP)
    with pytest.raises(RunFolderError, match=r"training progress .*nests arrays and objects deeper .*Fix: delete "):
        EpochProgress(str(tmp_path), {"seed": 1}, verbose=False).restore(None)


def test_deep_experiment_record_of_an_output_folder(tmp_path, timed):
    from tf_nvm import pipeline  # noqa: PLC0415
    from tf_nvm.pipeline.steps import prepare_output  # noqa: PLC0415

    (tmp_path / "experiment.json").write_text(DEEP)
    with pytest.raises(PipelineError, match=r"experiment record .*experiment\.json nests arrays and objects deeper"
                                            r" .*Fix: delete .* to start over, or pass another --out"):
        prepare_output(str(tmp_path), pipeline.load("paper-har"), quick=True)


def test_deep_search_folder_config_on_resume(tmp_path):
    from tf_nvm.nas import config  # noqa: PLC0415
    from tf_nvm.nas.search import SEARCH_FILE, _prepare_folder  # noqa: PLC0415

    (tmp_path / SEARCH_FILE).write_text(DEEP)
    chosen = config.load(config.names()[0])
    start = time.monotonic()
    with pytest.raises(SearchError, match=r"resume: the search's config .*search\.json nests arrays and objects "
                                          r"deeper .*Fix: pass --overwrite to start the search again"):
        _prepare_folder(chosen, str(tmp_path), resume=True, overwrite=False)
    assert time.monotonic() - start < MAX_SECONDS


def test_deep_trial_record_is_reported_as_missing(tmp_path, timed):
    from tf_nvm.nas.report import _record  # noqa: PLC0415
    from tf_nvm.nas.tuners import TRIAL_FILE  # noqa: PLC0415

    (tmp_path / "trial_00").mkdir()
    (tmp_path / "trial_00" / TRIAL_FILE).write_text(DEEP)
    assert _record(str(tmp_path), "00") is None


@pytest.mark.parametrize("value, message", [
    ("1" * 400, r"the integer 1111111111.* \(400 characters\) is beyond \+-9223372036854775807 \(2\*\*63 - 1\)"),
    ("-" + "9" * 20, r"the integer -9999999999.* is beyond"),
    ("1e308", r"the number 1e308 is beyond \+-1e\+300"),
    ("1e400", r"the number 1e400 is beyond"),
    ("NaN", r"is not valid JSON \(NaN is not a JSON number; NaN and Infinity are not allowed\)"),
    ("-Infinity", r"is not valid JSON \(-Infinity is not a JSON number"),
    ('"\\ud800"', r"the string '\\ud800' at \$\.adc_share_columns holds a lone UTF-16 surrogate"),
])
def test_numbers_and_strings_out_of_range_in_a_technology_file(tmp_path, value, message):
    from tf_nvm.cost.technology import load_technology  # noqa: PLC0415

    path = tmp_path / "tech.json"
    path.write_text('{"adc_share_columns": ' + value + "}")
    with pytest.raises(CostModelError, match=r"technology file .*tech\.json .*" + message + r".*Fix: write a JSON "
                                             r"object of technology keys"):
        load_technology(str(path))


def test_non_utf8_and_non_object_files(tmp_path):
    from tf_nvm.cost.technology import load_technology  # noqa: PLC0415

    path = tmp_path / "tech.json"
    path.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(CostModelError, match=r"tech\.json is not UTF-8 text \(byte 10: invalid start byte\); JSON "
                                             r"files are UTF-8\. Fix:"):
        load_technology(str(path))
    path.write_text("[1, 2]")
    with pytest.raises(CostModelError, match=r"tech\.json holds a JSON list; expected a JSON object"):
        load_technology(str(path))


def test_set_values_are_read_by_the_same_reader():
    from tf_nvm.cost.technology import parse_setting  # noqa: PLC0415

    assert parse_setting("adc_share_columns=4") == ("adc_share_columns", 4)
    assert parse_setting("name=fast") == ("name", "fast")  # not JSON: kept as text
    assert parse_setting("x=[1, 2.5]") == ("x", [1, 2.5])
    with pytest.raises(CostModelError, match=r"setting 'x=1111.* the integer 1111.* is beyond .*Fix: give a JSON "
                                             r"number"):
        parse_setting("x=" + "1" * 400)
    with pytest.raises(CostModelError, match=r"setting 'x=NaN' is not valid JSON \(NaN is not a JSON number"):
        parse_setting("x=NaN")
    with pytest.raises(CostModelError, match=r"nests arrays and objects deeper"):
        parse_setting("x=" + DEEP)


def test_read_json_refuses_special_files_and_large_files(tmp_path):
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(RecipeError, match=r"search config .*fifo\.json: is a FIFO \(named pipe\), not a regular "
                                          r"file"):
        safe_io.read_json(tmp_path / "fifo.json", what="search config", error=RecipeError)
    (tmp_path / "big.json").write_text("[" + "0," * 600_000 + "0]")
    with pytest.raises(RecipeError, match=r"big\.json: is 1\.1 MiB .*; at most 1\.0 MiB \(1,048,576 bytes\) is "
                                          r"read"):
        safe_io.read_json(tmp_path / "big.json", max_bytes=1 << 20, error=RecipeError)


def test_ordinary_documents_read_unchanged():
    text = '{"a": [1, -2, 3.5, 1e-300, 9223372036854775807, "\\u00e9", null, true], "b": {"c": []}}'
    assert safe_io.loads_json(text) == {"a": [1, -2, 3.5, 1e-300, 2 ** 63 - 1, "\u00e9", None, True], "b": {"c": []}}
    assert safe_io.loads_json("[" * 64 + "]" * 64, max_depth=64) is not None
