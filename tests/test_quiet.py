"""TensorFlow's, the TFLite converter's and LiteRT's own output is silenced in the library unless asked for.

A child process (the output comes from native code writing to file descriptor 2, which pytest's capture of
`sys.stderr` would not see) exports a tiny NVM model with `tflite_export.export_tflite` and runs it in LiteRT.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EXPORT = """
import sys, warnings
import numpy as np
import tf_nvm
from tf_nvm.keras.backend import keras
from tflite_export import export_tflite, run_litert

keras.utils.set_random_seed(0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", tf_nvm.NonInhibitingCrossbarWarning)
    model = tf_nvm.quantize_model(keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(3)]),
                                  "paper-2bit-bipolar", init="device")
x = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
export_tflite(model, sys.argv[1], x, measure_arena=False)
run_litert(open(sys.argv[1], "rb").read(), np.zeros((2, 8), np.int8))
print("exported")
"""

NOISE = ("Statistics for quantized inputs were expected", "fully_quantize: 0, inference_type: 6",
         "Created TensorFlow Lite XNNPACK delegate", "failed call to cuInit", "oneDNN custom operations")
"""Lines each export printed before (cuInit only on machines without a CUDA driver, oneDNN on x86)."""


def _export(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_NVM_QUIET_TENSORFLOW", "TF_NVM_VERBOSE",
                          "_TF_NVM_SET_TF_CPP_MIN_LOG_LEVEL")}
    result = subprocess.run([sys.executable, "-c", EXPORT, str(tmp_path / "m.tflite")], capture_output=True,
                            text=True, cwd=ROOT, env={**clean, "PYTHONPATH": ROOT, **env}, timeout=600)
    assert result.returncode == 0 and result.stdout.strip() == "exported", result.stderr[-3000:]
    return result.stderr


def test_a_library_export_prints_nothing_on_stderr_by_default(tmp_path):
    assert _export(tmp_path) == ""


IMPORT_FIRST = """
import tf_nvm, os
import tf_keras  # the user's own import of TensorFlow, after tf_nvm's
import tensorflow as tf
tf.config.list_physical_devices()
print(os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
"""


def test_import_tf_nvm_sets_a_quiet_tensorflow_log_level_unless_the_user_chose_one():
    """The cuInit error (at device discovery) and TensorFlow's later C++ log lines are filtered even when the user
    imports TensorFlow directly after tf_nvm; a level the user chose is kept."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_NVM_QUIET_TENSORFLOW", "TF_NVM_VERBOSE",
                          "_TF_NVM_SET_TF_CPP_MIN_LOG_LEVEL")}
    for env, level in (({}, "3"), ({"TF_CPP_MIN_LOG_LEVEL": "1"}, "1")):
        result = subprocess.run([sys.executable, "-c", IMPORT_FIRST], capture_output=True, text=True, cwd=ROOT,
                                env={**clean, "PYTHONPATH": ROOT, **env}, timeout=600)
        assert result.returncode == 0 and result.stdout.strip() == level, result.stderr[-3000:]
        if not env:  # (with the user's level 1 TensorFlow shows its errors, cuInit's included: their choice)
            assert "failed call to cuInit" not in result.stderr


def test_who_asked_for_the_output(monkeypatch):
    """The rule itself, in this process: verbose only when asked for; a level tf_nvm set is not the user's."""
    from tf_nvm.core import quiet  # noqa: PLC0415

    for name in ("TF_NVM_VERBOSE", "TF_NVM_QUIET_TENSORFLOW", "TF_CPP_MIN_LOG_LEVEL", "_TF_NVM_SET_TF_CPP_MIN_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    assert quiet.wanted()
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    assert quiet.wanted()  # the user wants fewer lines: the unfiltered ones are silenced too
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert not quiet.wanted()
    monkeypatch.setenv("_TF_NVM_SET_TF_CPP_MIN_LOG_LEVEL", "1")
    assert quiet.wanted()  # that level was tf_nvm's own
    monkeypatch.setenv("TF_NVM_QUIET_TENSORFLOW", "0")  # tf-nvm --verbose
    assert not quiet.wanted()
    monkeypatch.setenv("TF_NVM_QUIET_TENSORFLOW", "1")
    monkeypatch.setenv("TF_NVM_VERBOSE", "1")
    assert not quiet.wanted()


@pytest.mark.slow
@pytest.mark.parametrize("env", [{"TF_NVM_VERBOSE": "1"}, {"TF_CPP_MIN_LOG_LEVEL": "0"}], ids=["verbose", "log-level"])
def test_the_output_comes_back_when_asked_for(tmp_path, env):
    """TF_NVM_VERBOSE=1, or TF_CPP_MIN_LOG_LEVEL=0 set by the user, shows the converter's and LiteRT's lines again."""
    stderr = _export(tmp_path, **env)
    for line in NOISE[:3]:
        assert line in stderr, stderr[-3000:]
