"""Hostile arguments and mapping files for ``tf-nvm simulate`` (and ``inspect``), issue #26 items 2, 5-7: each is
a named error (what was received, what is allowed, the fix), in bounded time and memory, writing nothing.

The mapping is the tiny one of ``tests/test_cost.py`` (a 4 x 2 dense layer, 2-bit unipolar), the data a user's
``.npz`` of 24 examples.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tf_nvm import MappingError
from tf_nvm import mapping as M
from tf_nvm.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REEXPORT = r"Fix: re-export the mapping with tflite_export\.export_crossbar\."
MAX_SECONDS = 5
"""Bound on the time of each hostile case in the child process (TensorFlow imported before timing), s."""
MAX_RSS_MIB = 1500
"""Bound on the peak resident memory (VmHWM) of the child that runs every hostile case, MiB."""


def _write(tmp_path):
    """(mapping prefix, data path, the mapping's JSON document) in ``tmp_path``."""
    from tests.test_cost import _mapping, _spec  # noqa: PLC0415

    M.save(_mapping(_spec(), 4, 2), tmp_path / "m")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x_test=rng.random((24, 4), np.float32), y_test=np.arange(24) % 2)
    return str(tmp_path / "m"), str(tmp_path / "data.npz"), json.loads((tmp_path / "m.json").read_text())


def _variant(tmp_path, doc, name, change=None, text=None):
    """A copy of the mapping JSON (beside the same npz) with ``change(doc)`` applied, or ``text(json)``."""
    doc = json.loads(json.dumps(doc))
    if change is not None:
        change(doc)
    content = json.dumps(doc)
    path = tmp_path / f"{name}.json"
    path.write_text(text(content) if text is not None else content)
    return str(path)


def _std(values):
    return lambda doc: doc["input"].__setitem__("standardisation", {"mean": [0.0] * 4, "std": values})


def _cases(tmp_path):
    """{case: (argv, message regex)}."""
    prefix, data, doc = _write(tmp_path)
    (tmp_path / "afile").write_text("x")
    sim = ["--data", data, "--chips", "1"]
    nul = _variant(tmp_path, doc, "nul", lambda d: d["arrays_file"].__setitem__("name", "a\x00b.npz"))
    return {
        "examples_minus_5": (["simulate", prefix, *sim, "--examples", "-5", "--out", str(tmp_path / "o1")],
                             r"examples: value -5 is not allowed; allowed: an integer >= 1\. Fix: e\.g\. --examples"),
        "examples_minus_1000": (["simulate", prefix, *sim, "--examples", "-1000", "--out", str(tmp_path / "o2")],
                                r"examples: value -1000 is not allowed; allowed: an integer >= 1\."),
        "out_is_a_file": (["simulate", prefix, *sim, "--out", str(tmp_path / "afile")],
                          r"--out '.*afile' is a file; allowed: a folder \(missing, empty, or the output of an "
                          r"earlier `tf-nvm simulate`\)\. Fix: pass another --out\."),
        "out_read_only": (["simulate", prefix, *sim, "--out", "/proc/tf_nvm_sim"],
                          r"--out '/proc/tf_nvm_sim' cannot be written: .*Fix: pass a folder in a place you may "
                          r"write\."),
        "nul_in_arrays_file_simulate": (["simulate", nul, *sim, "--out", str(tmp_path / "o3")],
                                        r"field arrays_file\.name: value 'a\\x00b\.npz' must be a file name ending "
                                        r"in \.npz, beside the JSON\. " + REEXPORT),
        "nul_in_arrays_file_inspect": (["inspect", nul], r"field arrays_file\.name: value 'a\\x00b\.npz' must be"),
        "std_beyond_float32": (["simulate", _variant(tmp_path, doc, "std", _std([1e39, 1, 1, 1])), *sim, "--out",
                                str(tmp_path / "o4")],
                               r"field input\.standardisation\.std\[0\]: value 1e\+39 is not allowed; allowed: a "
                               r"number > 0 within float32 \(1\.17549e-38\.\.3\.40282e\+38 in magnitude\)\. "
                               + REEXPORT),
        "std_below_float32": (["simulate", _variant(tmp_path, doc, "tiny", _std([1e-45, 1, 1, 1])), *sim, "--out",
                               str(tmp_path / "o5")],
                              r"field input\.standardisation\.std\[0\]: value 1e-45 is not allowed"),
        "mean_beyond_float32": (["simulate", _variant(tmp_path, doc, "mean", lambda d: d["input"].__setitem__(
            "standardisation", {"mean": [1e39, 0, 0, 0], "std": [1.0] * 4})), *sim, "--out", str(tmp_path / "o6")],
                                r"field input\.standardisation\.mean\[0\]: value 1e\+39 is not allowed; allowed: a "
                                r"number within float32"),
        "input_scale_400_digits": (["simulate", _variant(tmp_path, doc, "big", text=lambda t: t.replace(
            '"scale": 0.0625', '"scale": 1' + "0" * 400, 1)), *sim, "--out", str(tmp_path / "o7")],
                                   r"big\.json is refused: the integer 10+\.\.\. \(401 characters\) is beyond "
                                   r"\+-9223372036854775807 \(2\*\*63 - 1\), the largest integer allowed\. Fix: re-export"),
        "adc_full_scale_1e308": (["simulate", _variant(tmp_path, doc, "e308", text=lambda t: t.replace(
            '"adc_full_scale": 1536', '"adc_full_scale": 1e308')), *sim, "--out", str(tmp_path / "o8")],
                                 r"e308\.json is refused: the number 1e308 is beyond \+-1e\+300, the largest magnitude "
                                 r"allowed\. Fix: re-export the mapping"),
    }


@pytest.fixture
def cases(tmp_path):
    return _cases(tmp_path)


CASES = ("examples_minus_5", "examples_minus_1000", "out_is_a_file", "out_read_only", "nul_in_arrays_file_simulate",
         "nul_in_arrays_file_inspect", "std_beyond_float32", "std_below_float32", "mean_beyond_float32",
         "input_scale_400_digits", "adc_full_scale_1e308")


def test_the_case_list_is_complete(tmp_path):
    assert sorted(_cases(tmp_path)) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_hostile_simulate_case_is_a_named_error_writing_nothing(case, cases, tmp_path, capsys):
    argv, message = cases[case]
    before = sorted(os.listdir(tmp_path))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tf-nvm: error: ") and "Fix: " in err and re.search(message, err), err
    assert sorted(os.listdir(tmp_path)) == before  # no output folder, no staging folder


def test_mapping_load_refuses_paths_that_are_no_paths():
    with pytest.raises(MappingError, match=r"mapping path: value 'a\\x00b' is not allowed \(empty, or holding a NUL "
                                           r"character\); allowed: a file name\. Fix: pass the prefix written by "
                                           r"tflite_export\.export_crossbar\."):
        M.load("a\x00b")
    with pytest.raises(MappingError, match=r"mapping path: value '12345' \(int\) is not allowed; allowed: a str or "
                                           r"os\.PathLike naming the PREFIX or PREFIX\.json\. Fix: "):
        M.load(12345)
    with pytest.raises(MappingError, match=r"mapping path: value '' is not allowed"):
        M.paths("")


_CHILD = """
import json, re, sys, time
start = time.perf_counter()
import tf_nvm.simulator  # TensorFlow's import, paid once before the cases are timed
from tf_nvm.cli import main
warm = round(time.perf_counter() - start, 3)
cases = json.loads(open(sys.argv[1]).read())
out = {}
for name, (argv, message) in sorted(cases.items()):
    start = time.perf_counter()
    code = main(argv)
    out[name] = [code, round(time.perf_counter() - start, 3)]
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"cases": out, "peak_mib": peak_kib // 1024, "import_seconds": warm}))
"""


@pytest.mark.slow  # the child imports TensorFlow (2-5 s on an idle machine, 22 s measured on a loaded one)
def test_time_and_peak_memory_of_every_hostile_case_are_bounded(tmp_path):
    """Every case in a fresh child (VmHWM of /proc/self/status: its own high-water mark, not the parent's as
    ru_maxrss would report across fork); each refused within `MAX_SECONDS`, the whole child under `MAX_RSS_MIB`."""
    cases = _cases(tmp_path)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    result = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "cases.json")], capture_output=True,
                            text=True, cwd=ROOT, timeout=600, check=False)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    print(json.dumps(found, indent=1))  # the measured numbers, for the closing note (pytest -s)
    assert {name: code for name, (code, _) in found["cases"].items()} == {name: 2 for name in cases}, \
        result.stderr[-2000:]
    assert max(seconds for _, seconds in found["cases"].values()) < MAX_SECONDS
    assert found["peak_mib"] < MAX_RSS_MIB
