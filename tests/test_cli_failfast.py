"""Fail fast: every command checks its names and plain arguments before TensorFlow loads, and names the closest
known name (issue 26, item 8).

Every case runs the CLI's ``main`` in one fresh interpreter that never imports TensorFlow otherwise: after each
failing call it records the exit status, the time taken and whether ``tensorflow`` is in ``sys.modules`` (a module
once imported stays there, so this is its state at the moment of the error).
"""

import json
import os
import re
import subprocess
import sys

import pytest

from tf_nvm import cli
from tf_nvm.core.registry import closest_name, did_you_mean

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = {
    # name: (argv, the error message must match (re.search))
    "train recipe": (["train", "har-2bt-unipolar"],
                     r"recipe 'har-2bt-unipolar' not found \(looked for .*\)\. Did you mean 'har-2bit-unipolar'\? "
                     r"Known recipes: \[.*'har-2bit-unipolar'.*\]\. Fix: pass one of those names \(`tf-nvm recipes`"),
    "train seeds": (["train", "har-2bit-unipolar", "--seeds", "-7", "--out", "{tmp}/seeds"],
                    r"--seeds must be a non-empty list of integers in 0\.\.2\^32-1, got \[-7\]\. Fix: e\.g\. --seeds"),
    "train epochs": (["train", "har-2bit-unipolar", "--epochs", "0", "--out", "{tmp}/epochs"],
                     r"recipe 'har-2bit-unipolar': epochs must be an integer >= 1, got 0\."),
    "train data name": (["train", "har-2bit-unipolar", "--data", "har", "--out", "{tmp}/data"],
                        r"--data 'har': no such file or folder \('har' is a registered data set: a recipe names it"),
    "run experiment": (["run", "paper-hr", "--out", "{tmp}/run"],
                       r"experiment recipe 'paper-hr' not found \(looked for .*\)\. Did you mean 'paper-har'\? "
                       r"Known experiment recipes: \['paper-cifar10', 'paper-har'\]\. Fix"),
    "run force": (["run", "paper-har", "--force", "trian", "--out", "{tmp}/run"],
                  r"--force must be one of \['train', 'export', 'simulate', 'cost'\], got 'trian'\. "
                  r"Did you mean 'train'\? Fix: pass one of those step names\."),
    "run data": (["run", "paper-har", "--data", "{tmp}/missing.npz", "--out", "{tmp}/run"],
                 r"--data '.*missing\.npz': no such file or folder\. --data is the path of a data file"),
    "search config": (["search", "har-2bit-unipolar-serch", "--out", "{tmp}/search"],
                      r"search config 'har-2bit-unipolar-serch' not found \(looked for .*\)\. "
                      r"Did you mean 'har-2bit-unipolar-search'\? Known search configs: \["),
    "search trials": (["search", "har-2bit-unipolar-search", "--max-trials", "0", "--out", "{tmp}/search"],
                      r"--max-trials: value 0 is not allowed; allowed: a number >= 1\. Fix"),
    "simulate preset": (["simulate", "{tmp}", "--preset", "pcm-lik", "--out", "{tmp}/sim"],
                        r"--preset: unknown noise preset 'pcm-lik'; known: ideal, pcm-like, pcm-prog-x12, reram-like\. "
                        r"Did you mean 'pcm-like'\? Fix"),
    "simulate dataset": (["simulate", "{tmp}", "--dataset", "cifar1", "--out", "{tmp}/sim"],
                         r"--dataset: unknown data set 'cifar1'; known: cifar10, har, npz\. Did you mean 'cifar10'\?"),
    "simulate chips text": (["simulate", "{tmp}", "--chips", "3-5", "--out", "{tmp}/sim"],  # ChipRange.parse's
                            r"--chips: '3-5' is not a chip count N or a chip range A:B\. Fix: e\.g\. --chips 25"),
    "simulate chips order": (["simulate", "{tmp}", "--chips", "5:3", "--out", "{tmp}/sim"],
                             r"--chips 5:3: chip range 5:3 holds -2 chips; allowed 1\.\.100000 \(stop > start\)\. Fix"),
    "simulate chips many": (["simulate", "{tmp}", "--chips", "200000", "--out", "{tmp}/sim"],
                            r"--chips 200000: chip range 0:200000 holds 200000 chips; allowed 1\.\.100000"),
    "cost tech": (["cost", "{tmp}", "--tech", "isaac-32", "--out", "{tmp}/cost"],
                  r"unknown technology 'isaac-32'; known: .*\. Did you mean 'isaac-32nm'\? Fix"),
    "export source": (["export", "{tmp}/nope", "--tflite", "{tmp}/x.tflite"],
                      r"RUN_OR_MODEL '.*nope': no such file or folder; expected a run folder"),
    "export nothing": (["export", "{tmp}"], r"tf-nvm export: nothing to write\. Fix"),
    "export dataset": (["export", "{tmp}", "--tflite", "{tmp}/x.tflite", "--dataset", "hr"],
                       r"--dataset: unknown data set 'hr'; known: cifar10, har, npz\. Did you mean 'har'\?"),
}

_RUNNER = """
import contextlib, io, json, sys, time
from tf_nvm.cli import main
results = {}
for name, argv in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err):
        status = main(argv)
    results[name] = {"status": status, "seconds": time.perf_counter() - start, "stderr": err.getvalue(),
                     "tensorflow": "tensorflow" in sys.modules}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """{case: its outcome}, every case run in one interpreter (about a second each)."""
    tmp = str(tmp_path_factory.mktemp("failfast"))
    argvs = {name: [part.replace("{tmp}", tmp) for part in argv] for name, (argv, _) in CASES.items()}
    result = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(argvs)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT}, timeout=300, check=True)
    return tmp, json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_wrong_name_or_argument_fails_before_tensorflow_loads(outcomes, case):
    tmp, results = outcomes
    outcome = results[case]
    assert outcome["status"] == 2, outcome
    assert outcome["stderr"].startswith("tf-nvm: error: "), outcome
    assert outcome["stderr"].count("\n") == 1, outcome  # one line: no traceback
    assert re.search(CASES[case][1], outcome["stderr"]), outcome["stderr"]
    assert not outcome["tensorflow"], f"{case}: TensorFlow was imported before the error"
    assert outcome["seconds"] < 10, outcome  # TensorFlow alone takes 15-70 s to import on a busy machine
    assert sorted(os.listdir(tmp)) == []  # nothing written (no half-started run folder)


def test_every_command_that_loads_tensorflow_checks_first():
    parser = cli.build_parser()
    extra = {"run": ["e"], "train": ["r"], "export": ["run"], "inspect": ["m"], "simulate": ["m", "--out", "o"],
             "cost": ["m", "--out", "o"], "search": ["c"]}
    checked = {name for name in cli.SUBCOMMANDS
               if getattr(parser.parse_args([name] + extra.get(name, [])), "check", None) is not None}
    assert checked == {"run", "train", "export", "simulate", "cost", "search"}  # presets, recipes, inspect: light


def test_the_closest_name_is_suggested_only_when_close():
    assert closest_name("har-2bt-unipolar", ["har-2bit-unipolar", "har-4bit-unipolar"]) == "har-2bit-unipolar"
    assert closest_name("nope", ["har-2bit-unipolar"]) is None
    assert closest_name(12345, ["12345"]) is None  # only a string has a close name
    assert did_you_mean("trian", ("train", "export")) == " Did you mean 'train'?"
    assert did_you_mean("xyz", ("train", "export")) == ""


def test_every_command_the_product_advises_exists(capsys):
    """Advice in messages and docstrings names real commands and options (it once named `tf-nvm run --list`)."""
    advised = set()
    for package in ("tf_nvm", "tflite_export"):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in (f for f in files if f.endswith(".py")):
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    advised |= set(re.findall(r"tf-nvm ([a-z]+)((?: --[a-z][a-z-]*)?)", handle.read()))
    assert ("run", "") in advised and ("export", " --tflite") in advised  # the search finds the advice
    parser = cli.build_parser()
    for command, option in sorted(advised):
        assert command in cli.SUBCOMMANDS, f"advice names `tf-nvm {command}`, which does not exist"
        if option:
            with pytest.raises(SystemExit):
                parser.parse_args([command, "--help"])
            assert f"{option.strip()} " in capsys.readouterr().out + " ", f"`tf-nvm {command}{option}` does not exist"
