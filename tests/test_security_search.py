"""Hostile search configs and search folders for ``tf-nvm search`` (issue #26, items 4 and 6; issue #27).

Every case is a named `SearchError` (rc 2 from the CLI) in bounded time and memory, before any model is
built or any data is read: tuner arguments out of range (``max_trials`` -5 failed inside keras-tuner with
``KeyError: 'status'``), space values out of range (``depth [1000]`` ran 282 s into a RecursionError,
``filters [100000000]`` passed 6 GB), a damaged ``search.json`` or keras-tuner project on ``--resume``, and
``--overwrite`` with ``tuner/`` a symbolic link (removed, its target left alone).

``tests/data/search_tiny`` is a real search folder (``search.json`` and the keras-tuner project without the
trial's checkpoint) written by `run_search` with the config of `_config` and one trial on `_split` data.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tf_nvm.cli import main
from tf_nvm.core.errors import SearchError
from tf_nvm.nas import config as search_config
from tf_nvm.nas.search import _prepare_folder, run_search, summary_text

from test_nas import synthetic_split  # noqa: E402  (tests/ is on sys.path under pytest)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "data", "search_tiny")
MAX_SECONDS = 5.0
"""Bound on the time one hostile config or folder takes to be refused in-process, s (measured: < 0.1 s)."""
MAX_RSS_MIB = 1500
"""Bound on the peak resident memory of a `tf-nvm search` child refusing every hostile config, MiB (TensorFlow
and keras-tuner imported: measured about 700 MiB)."""
MAX_CHILD_SECONDS = 120.0
"""Bound on that child's wall time, s (import of TensorFlow included; the refusals themselves take < 1 s)."""


def _config_dict(**changes):
    data = json.load(open(os.path.join(FIXTURE, "search.json"), encoding="utf-8"))
    for key, value in changes.items():
        section, _, leaf = key.partition(".")
        if leaf:
            data[section] = {**data[section], leaf: value}
        else:
            data[section] = value
    return data


HOSTILE = {
    # name: (config changes, message)
    "max_trials -5": ({"tuner.max_trials": -5}, r"tuner\.max_trials \(trials in all\) must be an integer in "
                                               r"1\.\.100000, got -5"),
    "max_trials abc": ({"tuner.max_trials": "abc"}, r"tuner\.max_trials .* got 'abc'"),
    "max_trials 2.5": ({"tuner.max_trials": 2.5}, r"tuner\.max_trials .* got 2\.5"),
    "max_trials true": ({"tuner.max_trials": True}, r"tuner\.max_trials .* got True"),
    "seed abc": ({"tuner.seed": "abc"}, r"tuner\.seed \(seed of the oracle\) must be an integer in 0\.\.2147483647, "
                                       r"got 'abc'"),
    "seed -1": ({"tuner.seed": -1}, r"tuner\.seed .* got -1"),
    "max_consecutive_failed_trials 0": ({"tuner.max_consecutive_failed_trials": 0},
                                        r"tuner\.max_consecutive_failed_trials .* got 0"),
    "filters [-5]": ({"space.filters": [-5]}, r"space\.filters of hypermodel 'har_search_cnn' holds -5; each value "
                                             r"must be an integer in 1\.\.256\. Fix: e\.g\. \"filters\": "
                                             r"\[32, 16, 24, 48, 64\]"),
    "filters [100000000]": ({"space.filters": [100_000_000]}, r"space\.filters .* holds 100000000; each value must "
                                                              r"be an integer in 1\.\.256"),
    "depth [1000]": ({"space.depth": [1000]}, r"space\.depth .* holds 1000; each value must be an integer in 1\.\.8"),
    "depth [0]": ({"space.depth": [0]}, r"space\.depth .* holds 0"),
    "kernel_size [2.5]": ({"space.kernel_size": [2.5]}, r"space\.kernel_size .* holds 2\.5; each value must be an "
                                                        r"integer"),
    "signs [x]": ({"space.signs": ["x"]}, r"space\.signs .* holds 'x'; each value must be one of \['split', 'bn'\]"),
    "dropout [1.5]": ({"space.dropout": [1.5]}, r"space\.dropout .* holds 1\.5; each value must be a number in "
                                                r"0\.0\.\.0\.9"),
    "filters 1000 values": ({"space.filters": list(range(1, 1001))}, r"space\.filters lists 1000 values; at most 64"),
    "space a list": ({"space": [1]}, r"space of hypermodel 'har_search_cnn' must be an object \{name: \[values\]\}, "
                                     r"got \[1\]"),
    "description 5": ({"description": 5}, r"description must be a string or null, got 5"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_search_configs_are_named_errors_from_the_cli(tmp_path, capsys, name):
    changes, message = HOSTILE[name]
    path = tmp_path / "c.json"
    path.write_text(json.dumps(_config_dict(**changes)))
    start = time.monotonic()
    assert main(["search", str(path), "--out", str(tmp_path / "out")]) == 2
    assert time.monotonic() - start < MAX_SECONDS
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Fix: " in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_cli_max_trials_override_is_checked_too(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(_config_dict()))
    assert main(["search", str(path), "--out", str(tmp_path / "out"), "--max-trials", "-5"]) == 2
    assert "--max-trials: value -5 is not allowed; allowed: a number >= 1." in capsys.readouterr().err  # before TF
    assert main(["search", str(path), "--out", str(tmp_path / "out"), "--max-trials", "1000000"]) == 2
    assert "tuner.max_trials (trials in all) must be an integer in 1..100000, got 1000000" in capsys.readouterr().err


def test_every_tuner_argument_and_space_entry_has_a_bound():
    from tf_nvm.nas import HYPERMODELS  # noqa: PLC0415
    from tf_nvm.nas.config import TUNER_LIMITS, _tuner_arguments  # noqa: PLC0415
    from tf_nvm.nas.tuners import TUNERS  # noqa: PLC0415

    for kind in TUNERS.names():
        assert set(_tuner_arguments(kind)) <= set(TUNER_LIMITS), kind
    for name in HYPERMODELS.names():
        model = HYPERMODELS.get(name)
        assert set(model.LIMITS) == set(model.SPACE), name
        model(space={key: list(values) for key, values in model.SPACE.items()})  # the defaults are within
    for name in search_config.names():
        search_config.load(name)  # every bundled config is within the bounds


_CHILD = """
import json, sys, time
from tf_nvm.cli import main
import tf_nvm.nas.config  # TensorFlow and keras-tuner load here, outside the timed refusals
times = []
for path in sys.argv[2:]:
    start = time.monotonic()
    code = main(["search", path, "--out", sys.argv[1]])
    times.append((code, round(time.monotonic() - start, 3)))
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"results": times, "peak_mib": peak_kib // 1024}))
"""


def test_time_and_peak_memory_of_every_hostile_config_are_bounded(tmp_path):
    """In a fresh child (VmHWM of its own, not the parent's ru_maxrss carried across fork): every hostile config,
    ``depth [1000]`` and ``filters [100000000]`` included, is refused in well under a second."""
    paths = []
    for i, name in enumerate(sorted(HOSTILE)):
        paths.append(str(tmp_path / f"c{i}.json"))
        with open(paths[-1], "w", encoding="utf-8") as handle:
            json.dump(_config_dict(**HOSTILE[name][0]), handle)
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "out"), *paths], capture_output=True,
                            text=True, cwd=ROOT, timeout=300, check=False)
    elapsed = time.monotonic() - start
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [code for code, _ in report["results"]] == [2] * len(HOSTILE), result.stderr[-2000:]
    assert max(seconds for _, seconds in report["results"]) < 1.0, report
    assert report["peak_mib"] < MAX_RSS_MIB, report
    assert elapsed < MAX_CHILD_SECONDS


# ----------------------------------------------------------------------------- resume and overwrite
@pytest.fixture
def folder(tmp_path):
    """A copy of the real one-trial search folder."""
    out = tmp_path / "search"
    shutil.copytree(FIXTURE, out)
    return out


def _config():
    return search_config.from_dict(_config_dict())


def _resume(out, config=None, verbose=False):
    return run_search(config or _config(), str(out), resume=True, split=synthetic_split(), verbose=verbose)


def test_an_intact_folder_resumes_and_its_summary_is_short_text(folder):
    summary = _resume(folder)
    assert summary["trials"] == 1 and summary["best"]["trial"] == "0"
    assert json.load(open(folder / "summary.json"))["best"]["trial"] == "0"
    text = summary_text(summary, str(folder))
    assert text.splitlines()[0] == "[tf-nvm] search tiny: 1 trial(s) (1 completed) in 0 s"
    assert text.splitlines()[1].startswith("[tf-nvm] best trial 0: validation accuracy 0.2500, 2 tile(s), 48 devices;")
    assert text.splitlines()[2].endswith(": trials.md, pareto.png, best_recipe.json, summary.json")
    assert "{\n" not in text and len(text.splitlines()) == 3


DAMAGED = {
    # name: (file, content, message)
    "search.json truncated": ("search.json", '{"name": "tiny", "hyp', r"resume: the search's config .*search\.json is "
                                                                       r"not valid JSON \(Unterminated string"),
    "search.json nested": ("search.json", "[" * 100_000 + "]" * 100_000, r"search\.json nests arrays and objects "
                                                                          r"deeper"),
    "search.json a list": ("search.json", "[1]", r"search\.json holds a JSON list; expected a JSON object"),
    "search.json not UTF-8": ("search.json", b"{\"name\": \"\xff\"}", r"search\.json is not UTF-8 text"),
    "oracle.json truncated": ("tuner/oracle.json", '{"ongoing_trials": {', r"resume: keras-tuner's file .*oracle\.json "
                                                                          r"is not valid JSON"),
    "oracle.json nested": ("tuner/oracle.json", '{"a": ' * 100_000 + "1" + "}" * 100_000,
                           r"oracle\.json nests arrays and objects deeper"),
    "oracle.json empty object": ("tuner/oracle.json", "{}", r"oracle\.json lacks the key\(s\) \['ongoing_trials', "
                                                            r"'hyperparameters', 'tried_so_far', 'seed'\]"),
    "oracle.json 400 digits": ("tuner/oracle.json", '{"seed": ' + "9" * 400 + "}", r"oracle\.json is refused: the "
                                                                                  r"integer 9999"),
    "oracle.json wrong types": ("tuner/oracle.json", None, r"resume: keras-tuner cannot reload the project in "
                                                           r".*tuner \(AttributeError: 'int' object has no attribute "
                                                           r"'items'\); a file in it was edited or damaged"),
    "trial.json wrong keys": ("tuner/trial_0/trial.json", '{"id": 0}', r"trial\.json lacks the key\(s\) \['trial_id', "
                                                                       r"'hyperparameters', 'metrics', 'status'\]"),
    "tuner0.json a list": ("tuner/tuner0.json", "[]", r"tuner0\.json holds a JSON list"),
}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_resume_with_a_damaged_folder_is_a_named_error(folder, name):
    path, content, message = DAMAGED[name]
    if content is None:  # every key keras-tuner reads, of the wrong type
        oracle = json.load(open(folder / path))
        content = json.dumps({**oracle, "ongoing_trials": 5})
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(folder / path, mode) as handle:
        handle.write(content)
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    start = time.monotonic()
    with pytest.raises(SearchError, match=message + r".*Fix: "):
        _resume(folder)
    assert time.monotonic() - start < MAX_SECONDS
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before  # nothing lost or added


@pytest.mark.parametrize("kind", ["link", "file"])
def test_resume_refuses_a_tuner_project_that_is_a_link_or_a_file(folder, tmp_path, kind):
    outside = tmp_path / "outside"
    shutil.move(str(folder / "tuner"), outside)
    if kind == "link":
        os.symlink(outside, folder / "tuner")
    else:
        (folder / "tuner").write_text("x")
    with pytest.raises(SearchError, match=rf"resume: .*tuner is {'a symbolic link' if kind == 'link' else 'not a folder'}"
                                          r"; a search keeps its keras-tuner project in a folder of its own\. Fix: "
                                          r"pass --overwrite"):
        _resume(folder)
    assert (outside / "oracle.json").is_file()


def test_overwrite_removes_links_not_their_targets(folder, tmp_path):
    outside = tmp_path / "outside"
    shutil.move(str(folder / "tuner"), outside)
    os.symlink(outside, folder / "tuner")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("a user's file")
    os.symlink(tmp_path / "mine", folder / "best")
    os.symlink(tmp_path / "mine" / "keep.txt", folder / "summary.json")
    _prepare_folder(_config(), str(folder), resume=False, overwrite=True)
    assert not os.path.lexists(folder / "tuner") and not os.path.lexists(folder / "best")
    assert not os.path.lexists(folder / "summary.json")
    assert (outside / "oracle.json").is_file() and (tmp_path / "mine" / "keep.txt").read_text() == "a user's file"
    assert sorted(os.listdir(folder)) == ["search.json", "tf_nvm_output.json"]  # the config and the folder marker


@pytest.mark.slow  # one real trial: about 25 s on a busy 2-core machine
def test_trial_ids_agree_with_keras_tuner_in_every_output(tmp_path, capsys):
    """keras-tuner names trials by their index zero-padded to the digits of max_trials ("00", "01", ... with 10)
    and its display printed "Running Trial #1" for trial "00"; tf_nvm silences that display and names each trial
    by its id everywhere: progress lines, the trial folder, trials.csv and summary.json. (The space has one
    point, so the search ends after one trial of about 15 s.)"""
    out = tmp_path / "s"
    summary = run_search(search_config.from_dict(_config_dict(**{"tuner.max_trials": 10})), str(out),
                         split=synthetic_split(), verbose=True)
    printed = capsys.readouterr().out
    assert "Running Trial #" not in printed and "Trial 1 Complete" not in printed
    assert "[tf-nvm] trial 00: running (depth 1, filters_0 4," in printed
    assert re.search(r"\[tf-nvm\] trial 00: COMPLETED val_accuracy 0\.\d{4}, tiles 2", printed), printed
    assert summary["best"]["trial"] == "00" and json.load(open(out / "summary.json"))["best"]["trial"] == "00"
    assert os.listdir(out / "tuner" / "trial_00")
    assert open(out / "trials.csv").read().splitlines()[1].startswith("00,COMPLETED,")
    assert summary_text(summary, str(out)).splitlines()[1].startswith("[tf-nvm] best trial 00: ")
