"""One output-folder rule for every command (issue #26 item 2): `tf_nvm.core.outputs`.

Every command that writes a folder goes through `claim_output_folder` (a test lists the call sites); a user's
folder is never written into nor removed; another command's output is replaced only with --overwrite; the files
of one simulate / cost commit together (an interrupted command leaves the earlier output whole).
"""

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tf_nvm.core import outputs
from tf_nvm.core.errors import OutputFolderError, PipelineError, RunFolderError, SearchError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CLAIMING = {"claim_output_folder", "staged_output", "mark_output_folder"}


def _call_sites():
    """{command: {module path}} of every call to the output-folder functions in tf_nvm (commands as literals)."""
    found = {}
    for folder, _, files in os.walk(os.path.join(ROOT, "tf_nvm")):
        for name in files:
            if not name.endswith(".py") or os.path.join(folder, name) == outputs.__file__:
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) \
                        in _CLAIMING and len(node.args) >= 2:
                    command = node.args[1]
                    assert isinstance(command, ast.Constant), f"{path}:{node.lineno}: the command must be a literal"
                    found.setdefault(command.value, set()).add(os.path.relpath(path, ROOT))
    return found


def _commands_with_out():
    from tf_nvm.cli import build_parser  # noqa: PLC0415

    parser = build_parser()
    sub = next(action for action in parser._actions if action.dest == "command")
    return {name for name, command in sub.choices.items()
            if any("--out" in action.option_strings for action in command._actions)}


def test_every_command_that_writes_a_folder_goes_through_the_one_rule():
    sites = _call_sites()
    assert set(outputs.COMMANDS) == _commands_with_out() == set(sites)
    assert sites == {"train": {"tf_nvm/experiments/runs.py"}, "run": {"tf_nvm/pipeline/steps.py"},
                     "search": {"tf_nvm/nas/search.py"},
                     "simulate": {"tf_nvm/cli/simulate.py", "tf_nvm/pipeline/simulation.py",
                                  "tf_nvm/pipeline/shards.py"},  # one run, and the merge of shards
                     "cost": {"tf_nvm/pipeline/costing.py"}}


@pytest.mark.parametrize("command, error", [("train", RunFolderError), ("run", PipelineError),
                                            ("search", SearchError), ("simulate", OutputFolderError),
                                            ("cost", OutputFolderError)])
def test_the_rule_for_each_command(command, error, tmp_path):
    assert outputs.claim_output_folder(tmp_path / "new", command) == "missing"
    (tmp_path / "empty").mkdir()
    assert outputs.claim_output_folder(tmp_path / "empty", command) == "empty"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.json").write_text('{"mine": 1}')
    for overwrite in (False, True):  # a user's folder: never written into nor removed
        with pytest.raises(error, match=re.escape(f"output folder {str(mine)!r} is not empty and holds no ")
                           + r".*tf_nvm never writes into or removes it\. Fix: pass an empty or new --out\."):
            outputs.claim_output_folder(mine, command, overwrite, error=error)
    assert (mine / "results.json").read_text() == '{"mine": 1}'
    own = tmp_path / "own"
    outputs.mark_output_folder(own, command)
    assert outputs.claim_output_folder(own, command, error=error) == "own"
    other = "cost" if command != "cost" else "simulate"
    theirs = tmp_path / "theirs"
    outputs.mark_output_folder(theirs, other)
    with pytest.raises(error, match=re.escape(f"output folder {str(theirs)!r} holds the output of `tf-nvm {other}`; "
                                              "allowed: a missing or empty folder, or the output of `tf-nvm "
                                              f"{command}`. Fix: pass another --out, or --overwrite to replace it.")):
        outputs.claim_output_folder(theirs, command, error=error)
    assert outputs.claim_output_folder(theirs, command, True, error=error) == "other"
    (tmp_path / "file").write_text("x")
    with pytest.raises(error, match=r"--out '.*file' is a file; allowed: a folder \(missing, empty, or the output of "
                                    rf"an earlier `tf-nvm {command}`\)\. Fix: pass another --out\."):
        outputs.claim_output_folder(tmp_path / "file", command, error=error)
    with pytest.raises(error, match=r"--out: value 'a\\x00b' is not a folder path \(empty, or holding a NUL "
                                    r"character\)\. Fix: pass a folder name\."):
        outputs.claim_output_folder("a\x00b", command, error=error)
    with pytest.raises(error, match=r"--out '/proc/tf_nvm_out' cannot be written: .*Fix: pass a folder in a place "
                                    r"you may write\."):  # a read-only (virtual) file system, even for root
        outputs.claim_output_folder("/proc/tf_nvm_out", command, error=error)


def test_a_folder_written_before_the_marker_is_recognised_by_its_files(tmp_path):
    for command, names in outputs.LEGACY_FILES.items():
        for name in names:
            folder = tmp_path / command / name
            folder.mkdir(parents=True)
            (folder / name).write_text("{}")
            assert outputs.folder_owner(folder) == command
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / outputs.MARKER).write_text("[" * 100_000)  # deeply nested: no RecursionError, just no owner
    assert outputs.folder_owner(damaged) is None


def test_a_failure_inside_the_block_keeps_the_earlier_output_whole(tmp_path):
    out = tmp_path / "sim"
    with outputs.staged_output(out, "simulate") as staging:
        open(os.path.join(staging, "results.json"), "w").write("first")
        open(os.path.join(staging, "chips.csv"), "w").write("first")
    with pytest.raises(KeyboardInterrupt):
        with outputs.staged_output(out, "simulate") as staging:
            open(os.path.join(staging, "chips.csv"), "w").write("second")
            raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == ["sim"]  # no staging folder left
    assert (out / "results.json").read_text() == (out / "chips.csv").read_text() == "first"
    assert outputs.folder_owner(out) == "simulate"


_CHILD = """
import os, sys, time
from tf_nvm.core.outputs import staged_output
with staged_output(sys.argv[1], "simulate") as staging:
    open(os.path.join(staging, "chips.csv"), "w").write("second")
    print("written", flush=True)
    time.sleep(60)
    open(os.path.join(staging, "results.json"), "w").write("second")
"""


def test_a_killed_command_leaves_the_earlier_output_whole_and_its_leftovers_are_cleaned(tmp_path):
    out = tmp_path / "sim"
    with outputs.staged_output(out, "simulate") as staging:
        open(os.path.join(staging, "results.json"), "w").write("first")
        open(os.path.join(staging, "chips.csv"), "w").write("first")
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(out)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert child.stdout.readline().strip() == "written"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert (out / "results.json").read_text() == (out / "chips.csv").read_text() == "first"
    assert len(os.listdir(tmp_path)) == 2  # the killed child's staging folder, beside the output
    # killed between the two renames: the earlier output sits aside under a dead process id, nothing in its place
    aside = tmp_path / ".sim.tf_nvm-old-999999999-0123abcd"
    os.rename(out, aside)
    with outputs.staged_output(out, "simulate") as staging:
        assert os.path.isdir(out)  # restored before anything else
        assert (out / "results.json").read_text() == "first"
        open(os.path.join(staging, "results.json"), "w").write("third")
    assert sorted(os.listdir(tmp_path)) == ["sim"]
    assert (out / "results.json").read_text() == "third" and not (out / "chips.csv").exists()


def _tiny_mapping(tmp_path):
    from tests.test_cost import _mapping, _spec  # noqa: PLC0415
    from tf_nvm import mapping as M  # noqa: PLC0415

    M.save(_mapping(_spec(), 4, 2), tmp_path / "m")
    return str(tmp_path / "m")


def test_simulate_and_cost_refuse_a_users_folder_and_each_others(tmp_path, capsys):
    from tf_nvm.cli import main  # noqa: PLC0415

    source = _tiny_mapping(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("results.json", "chips.csv", "summary.csv"):
        (mine / name).write_text("mine")
    for command in ("simulate", "cost"):
        for extra in ([], ["--overwrite"]):
            assert main([command, source, "--out", str(mine), *extra]) == 2
            assert "is not empty and holds no" in capsys.readouterr().err
    assert all((mine / name).read_text() == "mine" for name in ("results.json", "chips.csv", "summary.csv"))
    sim = tmp_path / "sim"
    outputs.mark_output_folder(sim, "simulate")
    (sim / "results.json").write_text('{"simulated": true}')
    assert main(["cost", source, "--out", str(sim)]) == 2
    assert "holds the output of `tf-nvm simulate`" in capsys.readouterr().err
    assert json.loads((sim / "results.json").read_text()) == {"simulated": True}
    assert main(["cost", source, "--out", str(sim), "--overwrite"]) == 0
    results = json.loads((sim / "results.json").read_text())
    assert outputs.folder_owner(sim) == "cost" and results["files"]["summary"][0] == str(sim / "summary.csv")
    assert main(["cost", source, "--out", str(sim)]) == 0  # its own folder: replaced whole
    assert not [name for name in os.listdir(tmp_path) if "tf_nvm-" in name]
    (tmp_path / "afile").write_text("x")
    for command in ("simulate", "cost"):
        for out, message in ((tmp_path / "afile", r"is a file; allowed: a folder"),
                             ("/proc/tf_nvm_out", r"cannot be written: ")):
            start = time.perf_counter()
            assert main([command, source, "--out", str(out)]) == 2
            assert re.search(f"tf-nvm: error: --out '{out}' {message}", capsys.readouterr().err)
            assert time.perf_counter() - start < 5  # refused before any data is read
