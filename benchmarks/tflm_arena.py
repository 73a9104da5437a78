"""Benchmark: the TFLite Micro arena of the MLPerf Tiny anomaly-detection autoencoder (issue 24, item 8).

The autoencoder (Dense 640 -> 128 x4 -> 8 -> 128 x4 -> 640, each hidden Dense followed by BatchNormalization
and ReLU) is quantized in each preset, trained one epoch on 64 random examples (reconstruction, MSE; the
untrained 4-bit bipolar model converts to a slightly smaller graph: 16,384 / 19,136 bytes instead of
16,576 / 19,584) and exported. Printed per preset: TFLite Micro's own "Arena allocation total" after one invoke (what
`tflite_export.measure_arena` returned before), the measured smallest arena that runs, and the result of
running the model in a child process at sizes around them (ok / failed / crashed with a signal).

Run::

    PYTHONPATH=. python3 benchmarks/tflm_arena.py
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

import tf_nvm  # first: puts TensorFlow in legacy-Keras (tf_keras) mode
import tf_keras as keras
from tflite_export import export_tflite
from tflite_export.tflm import _CHILD, _TOTAL, ARENA_STEP, measure_arena

L = keras.layers


def autoencoder():
    """The MLPerf Tiny anomaly-detection autoencoder (input 640)."""
    inputs = keras.Input((640,))
    x = inputs
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = L.ReLU()(L.BatchNormalization()(L.Dense(units)(x)))
    return keras.Model(inputs, L.Dense(640)(x), name="autoencoder")


def _run(path, size):
    result = subprocess.run([sys.executable, "-c", _CHILD, path, str(size)], capture_output=True, text=True,
                            timeout=120, check=False)
    match = _TOTAL.search(result.stdout + result.stderr)
    if result.returncode == 0 and match:
        return "ok", int(match.group(1))
    return ("crashed (signal %d)" % -result.returncode if result.returncode < 0 else "failed"), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper-4bit-bipolar", "paper-2bit-unipolar"])
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    warnings.simplefilter("ignore")
    for preset in args.presets:
        keras.utils.set_random_seed(0)
        model = tf_nvm.quantize_model(autoencoder(), preset)
        model.compile("adam", "mse")
        x = np.random.default_rng(0).normal(size=(64, 640)).astype(np.float32)
        model.fit(x, x, epochs=1, verbose=0)
        path = os.path.join(folder, f"{preset}.tflite")
        export_tflite(model, path, measure_arena=False)
        _, total = _run(path, 1 << 20)
        start = time.time()
        need = measure_arena(path)
        seconds = time.time() - start
        print(f"{preset}: allocator total {total} B, measured arena {need} B ({seconds:.1f} s)")
        for size in (total, total + 1024, need - ARENA_STEP, need):
            print(f"  arena {size} B: {_run(path, size)[0]}")


if __name__ == "__main__":
    main()
