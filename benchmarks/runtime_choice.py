"""Benchmark: a DS-CNN trained for one int8 runtime, run on both (issue 24, item 9).

The MLPerf Tiny keyword-spotting DS-CNN (input 49x10x1; Conv2D 64 10x4 stride 2 + BN + ReLU;
4 x [DepthwiseConv2D 3x3 + BN + ReLU, Conv2D 64 1x1 + BN + ReLU]; GlobalAveragePooling2D; Dense 12;
the published network's dropout and its AveragePooling2D head are left out: the pooling is
GlobalAveragePooling2D here) is quantized in each preset with ``NVMSpec.runtime`` set to each runtime,
trained on SYNTHETIC learnable data (per class one random profile over the 10 coefficients, the same in
all 49 frames, so that global pooling keeps it, plus unit Gaussian noise; held-out examples drawn the
same way), exported, and run in LiteRT and TFLite Micro on held-out synthetic inputs
(`tflite_export.runtime_report`): the runtime it was trained for must give 0 differing int8 outputs;
for the other one the differing outputs and the arg-max agreement are printed.

Run::

    PYTHONPATH=. python3 benchmarks/runtime_choice.py --examples 300 --epochs 2
"""

import argparse
import os
import warnings
import tempfile
import time

import numpy as np

import tf_nvm  # first: puts TensorFlow in legacy-Keras (tf_keras) mode
import tf_keras as keras
from tflite_export import export_tflite, runtime_report

L = keras.layers


def ds_cnn(classes=12):
    """The MLPerf Tiny DS-CNN (see the module docstring for where it differs)."""
    inputs = keras.Input((49, 10, 1))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(64, (10, 4), strides=2, padding="same")(inputs)))
    for _ in range(4):
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(x)))
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(64, 1)(x)))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(12)(x), name="ds_cnn")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper-2bit-unipolar", "paper-4bit-bipolar"])
    parser.add_argument("--runtimes", nargs="+", default=["tflm", "litert"])
    parser.add_argument("--train", type=int, default=1024, help="synthetic training examples")
    parser.add_argument("--examples", type=int, default=300, help="held-out examples compared")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    templates = np.broadcast_to(rng.normal(size=(12, 1, 10, 1)), (12, 49, 10, 1))

    def draw(count):
        labels = rng.integers(0, 12, count)
        return (templates[labels] + rng.normal(size=(count, 49, 10, 1))).astype(np.float32), labels

    x_train, y_train = draw(args.train)
    x_test, y_test = draw(args.examples)
    folder = tempfile.mkdtemp()
    warnings.simplefilter("ignore", tf_nvm.NonInhibitingCrossbarWarning)  # unipolar DS-CNN: one per crossbar
    for preset in args.presets:
        for runtime in args.runtimes:
            keras.utils.set_random_seed(0)
            spec = tf_nvm.core.presets.get(preset).replace(runtime=runtime)
            model = tf_nvm.quantize_model(ds_cnn(), spec, init="device")
            model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])
            start = time.time()
            model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=0)
            fit_s = time.time() - start
            path = os.path.join(folder, f"{preset}-{runtime}.tflite")
            summary = export_tflite(model, path, x_train[:128])
            report = runtime_report(model, path, x_test, inputs=f"{len(x_test)} held-out synthetic inputs")
            logits = model.predict(x_test, verbose=0)
            accuracy = float(np.mean(logits.argmax(1) == y_test))
            print(f"{preset} runtime={runtime} (fit {fit_s:.0f} s, Keras held-out accuracy {100 * accuracy:.1f} %, "
                  f"logit std {logits.std():.3f}, arena {summary.arena_bytes} B): "
                  f"{report.deployed}; other {report.other}", flush=True)
            print(f"  {report}", flush=True)


if __name__ == "__main__":
    main()
