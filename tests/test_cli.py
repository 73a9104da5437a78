"""The command line as the application layer: one module per sub-command, light sub-commands without TensorFlow."""

import os
import subprocess
import sys
import warnings

import pytest

import tf_nvm
from tf_nvm import cli
from tf_nvm.keras.backend import keras

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_subcommand_module_registers_its_parser(capsys):
    assert cli.SUBCOMMANDS == ("run", "train", "presets", "recipes", "export", "inspect", "simulate", "cost",
                               "search")
    modules = {name[:-3] for name in os.listdir(os.path.dirname(cli.__file__))
               if name.endswith(".py") and not name.startswith("_")}
    assert modules == set(cli.SUBCOMMANDS)  # no sub-command module left out of the parser
    parser = cli.build_parser()
    for name in cli.SUBCOMMANDS:
        extra = {"run": ["e"], "train": ["r"], "export": ["run"], "inspect": ["m"], "simulate": ["m", "--out", "o"],
                 "cost": ["m", "--out", "o"], "search": ["c"]}
        args = parser.parse_args([name] + extra.get(name, []))
        assert args.command == name and args.func.__module__ == f"tf_nvm.cli.{name}"
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    assert "{run,train,presets,recipes,export,inspect,simulate,cost,search}" in capsys.readouterr().out


def _light(argv):
    """Runs ``tf-nvm argv`` in a fresh interpreter; (exit status, stdout, stderr, heavy modules loaded)."""
    code = ("import sys\nfrom tf_nvm.cli import main\nstatus = main(sys.argv[1:])\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'tf_keras', 'tflite_export'})\n"
            "print('HEAVY', heavy)\nsys.exit(status)\n")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)
    out, _, heavy = result.stdout.rpartition("HEAVY ")
    return result.returncode, out, result.stderr, heavy.strip()


def _closed_stdout(argv):
    """Runs ``tf-nvm argv`` with a stdout whose reader has gone (``tf-nvm recipes | head`` once head has quit);
    (exit status, stderr)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to write_end now fails with EPIPE
    try:
        result = subprocess.run([sys.executable, "-m", "tf_nvm.cli", *argv], stdout=write_end, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)
    finally:
        os.close(write_end)
    return result.returncode, result.stderr


@pytest.mark.parametrize("argv", [["recipes"], ["recipes", "--full"], ["presets"]])
def test_a_closed_stdout_ends_quietly_with_status_141(argv):
    status, err = _closed_stdout(argv)
    assert status == cli.BROKEN_PIPE_STATUS == 141 and err == ""  # no BrokenPipeError traceback


@pytest.mark.parametrize("command, expected", [
    ("recipes", "  har-2bit-unipolar                   HAR (UCI-HAR-style windows), paper setting: 2bit-unipolar "),
    ("presets", "paper-2bit-unipolar      2-bit devices, non-negative weights only (one device per weight)"),
])
def test_listing_commands_do_not_import_tensorflow(command, expected):
    status, out, err, heavy = _light([command])
    assert status == 0, err
    assert expected in out and heavy == "[]"


def test_inspect_does_not_import_tensorflow(tmp_path):
    from tflite_export import export_crossbar

    keras.utils.set_random_seed(0)
    float_model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(3)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tf_nvm.NonInhibitingCrossbarWarning)
        model = tf_nvm.quantize_model(float_model, "paper-2bit-bipolar", init="device")
    export_crossbar(model, tmp_path / "m")
    status, out, err, heavy = _light(["inspect", str(tmp_path / "m")])
    assert status == 0, err
    assert "total: 2 crossbar layers on " in out and heavy == "[]"
    assert _closed_stdout(["inspect", str(tmp_path / "m")]) == (141, "")
    status, out, err, heavy = _light(["inspect", str(tmp_path / "missing")])
    assert status == 2 and "tf-nvm: error: " in err and "missing.json: cannot be read" in err and heavy == "[]"


@pytest.mark.slow
def test_no_tensorflow_start_up_noise_unless_verbose(tmp_path):
    """A command that loads TensorFlow prints only tf_nvm's own lines on stderr; --verbose shows TensorFlow's."""
    keras.utils.set_random_seed(0)
    float_model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(3)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tf_nvm.NonInhibitingCrossbarWarning)
        model = tf_nvm.quantize_model(float_model, "paper-2bit-bipolar", init="device")
    model.save(tmp_path / "m.keras")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_NVM_QUIET_TENSORFLOW")}
    env["PYTHONPATH"] = ROOT
    argv = ["export", str(tmp_path / "m.keras"), "--mapping", str(tmp_path / "xbar")]
    quiet = subprocess.run([sys.executable, "-m", "tf_nvm.cli", *argv], capture_output=True, text=True, env=env,
                           timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    lines = [line for line in quiet.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("[tf-nvm] warning: ") and "has no preprocessing.json" in lines[0]
    loud = subprocess.run([sys.executable, "-m", "tf_nvm.cli", "--verbose", *argv], capture_output=True, text=True,
                          env=env, timeout=300)
    assert loud.returncode == 0 and len([line for line in loud.stderr.splitlines() if line.strip()]) > 1


def test_recipes_lists_training_recipes_experiments_and_search_configs():
    from tf_nvm.core import bundled

    status, out, err, heavy = _light(["recipes"])
    assert status == 0 and heavy == "[]", err
    sections = out.strip().split("\n\n")
    assert [section.splitlines()[0] for section in sections] == [
        "Training recipes (tf-nvm train NAME):", "Experiments (tf-nvm run NAME):",
        "Search configs (tf-nvm search NAME):"]
    for section, kind in zip(sections, ("recipe", "experiment", "search")):
        rows = section.splitlines()[1:]
        assert [row.split()[0] for row in rows] == bundled.names(kind) and bundled.names(kind)
        assert all(len(row) <= 120 for row in rows)  # one short line each (no terminal: 120 columns)
    assert "  paper-har  " in out and "The paper on HAR" in out  # the description's start
    status, full, err, _ = _light(["recipes", "--full"])
    assert status == 0 and "8-bit activations" in full and len(full) > len(out)


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "tf_nvm.cli", "recipes"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)
    assert result.returncode == 0 and "har-4bit-bipolar" in result.stdout
