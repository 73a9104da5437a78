"""``pip install "tf-nvm[mapping]"`` without TensorFlow reads, validates, evaluates and costs an exported mapping.

The light install (setup.cfg's install_requires: numpy, pandas, matplotlib) carries `tf_nvm.core`,
`tf_nvm.mapping` and `tf_nvm.cost`; the Keras side is the ``tensorflow`` extra. The slow test builds this
checkout's wheel, installs it with the ``mapping`` extra in a fresh virtualenv (no system site packages, its
dependencies from the package index), checks TensorFlow is absent there, and compares what the light install
computes on a mapping exported here with what the full package computes.
"""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from test_packaging import ROOT, _run, build_wheel, fresh_venv

INSTALL_HINT = 'pip install "tf-nvm[tensorflow]"'

LIGHT_PROBE = """
import json, sys
import numpy as np
from tf_nvm import mapping
from tf_nvm.mapping import reference, validate
from tf_nvm.cost import network_cost
m = mapping.load(sys.argv[1])           # reads the pair and checks its hash and every field
validate.validate_mapping(m)            # the whole-mapping check, once more by name
out = reference.evaluate(m, np.load(sys.argv[2]))
cost = network_cost(m)
heavy = sorted({name.split('.')[0] for name in sys.modules} & {'tensorflow', 'tf_keras', 'keras', 'tflite_export'})
try:
    import tf_nvm.keras.backend
    keras_side = 'imported'
except ImportError as error:
    keras_side = f'{type(error).__name__}: {error}'
print(json.dumps({'file': mapping.__file__, 'codes': {k: v.tolist() for k, v in out.codes.items()},
                  'steps': {k: float(v) for k, v in out.steps.items()}, 'area_um2': cost.area_um2,
                  'energy_pj': cost.energy_pj, 'latency_ns': cost.latency_ns, 'heavy': heavy,
                  'keras_side': keras_side}))
"""

BLOCK_TENSORFLOW = """
import importlib.abc, sys
class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] == 'tensorflow':
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTensorFlow())
import tf_nvm
try:
    tf_nvm.quantize_model
except tf_nvm.KerasModeError as error:
    print(type(error).__name__, isinstance(error, ImportError), error)
"""


def test_keras_side_without_tensorflow_names_the_extra_to_install():
    # The real absence is checked in a fresh virtualenv below (slow); here TensorFlow is hidden from one child.
    out = subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": ROOT}, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("KerasModeError True tf_nvm's Keras side"), out.stdout
    assert "needs TensorFlow, but it is not installed in" in out.stdout
    assert "Allowed without it: tf_nvm.core, tf_nvm.mapping, tf_nvm.cost." in out.stdout
    assert f"Fix: {INSTALL_HINT}" in out.stdout


def _export_tiny_mapping(prefix):
    """A dense 8-6-3 2-bit unipolar NVM model exported to ``prefix``; returns the full package's results."""
    import tf_nvm
    from tf_nvm.cost import network_cost
    from tf_nvm.keras.backend import keras
    from tf_nvm.mapping import reference
    from tflite_export import export_crossbar

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,), name="features")
    hidden = keras.layers.ReLU(name="relu")(keras.layers.Dense(6, name="hidden")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(hidden))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(model, "paper-2bit-unipolar", init="device")
    export_crossbar(model, prefix)
    x = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    out, cost = reference.evaluate(str(prefix), x), network_cost(tf_nvm.mapping.load(str(prefix)))
    return x, {"codes": {k: v.tolist() for k, v in out.codes.items()},
               "steps": {k: float(v) for k, v in out.steps.items()},
               "area_um2": cost.area_um2, "energy_pj": cost.energy_pj, "latency_ns": cost.latency_ns}


@pytest.mark.slow
def test_mapping_extra_without_tensorflow_evaluates_and_costs_an_exported_mapping(tmp_path):
    x, full = _export_tiny_mapping(tmp_path / "tiny")
    np.save(tmp_path / "x.npy", x)
    wheel = build_wheel(tmp_path)
    python, env = fresh_venv(tmp_path)
    _run([str(python), "-m", "pip", "install", "-q", f"{wheel}[mapping]"], cwd=tmp_path, env=env)

    no_tf = subprocess.run([str(python), "-c", "import tensorflow"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=False)
    assert no_tf.returncode != 0 and "No module named 'tensorflow'" in no_tf.stderr, no_tf.stderr
    light = json.loads(_run([str(python), "-c", LIGHT_PROBE, str(tmp_path / "tiny"), str(tmp_path / "x.npy")],
                            cwd=tmp_path, env=env).strip().splitlines()[-1])
    assert light["file"].startswith(str(python.parent.parent)), light["file"]  # the wheel, not this checkout
    assert light["heavy"] == []
    assert light["keras_side"].startswith("KerasModeError: tf_nvm's Keras side") and INSTALL_HINT in light["keras_side"]
    assert light["codes"] == full["codes"] and light["steps"] == full["steps"]  # the same integers, bit for bit
    for key in ("area_um2", "energy_pj", "latency_ns"):
        assert light[key] == pytest.approx(full[key], rel=1e-12), key
