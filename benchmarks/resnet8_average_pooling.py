"""Benchmark: the MLPerf Tiny ResNet-8, with its AveragePooling2D head, exported exactly (issue 24, item 2).

The issue measured this network (rewritten in tf_keras from mlcommons/tiny
``training/image_classification/keras_model.py``) as 56 of 1,000 int8 outputs differing in LiteRT and 63 in
TFLite Micro, and its crossbar export refused (AveragePooling2D not mapped). This script builds the same
layer list (three residual stacks of 16/32/64 filters, BatchNorm, ReLU, AveragePooling2D over the final 8x8,
Flatten, Dense(10); the published Dense has a softmax, which a crossbar layer cannot end in, so the logits
are the output), quantizes it, trains one epoch on SYNTHETIC images (values do not matter: exactness is
the point), and reports LiteRT and TFLite Micro differences against the Keras model (1,000 examples), the
crossbar mapping's average_pool step and evaluator-vs-Keras differences.

Run::

    PYTHONPATH=. python3 benchmarks/resnet8_average_pooling.py [--preset paper-4bit-bipolar]
"""

import argparse
import tempfile
import time
import warnings

import numpy as np

import tf_nvm
from tf_nvm.keras.backend import keras
from tf_nvm.mapping.reference import evaluate
from tflite_export import build_mapping, compare, export_tflite

L = keras.layers


def resnet8(input_shape=(32, 32, 3), classes=10):
    """ResNet-8 of MLPerf Tiny (image classification), logits output."""
    inputs = keras.Input(input_shape)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same")(inputs)))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(filters, 3, strides=stride, padding="same")(x)))
        y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same")(y))
        if stride != 1:
            x = L.Conv2D(filters, 1, strides=stride, padding="same")(x)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.AveragePooling2D(pool_size=int(min(x.shape[1:3])))(x)
    return keras.Model(inputs, L.Dense(classes)(L.Flatten()(x)), name="resnet8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper-4bit-bipolar")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (1512, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, 512)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(resnet8(), args.preset, init="device")
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.time()
    model.fit(x[:512], y, batch_size=64, epochs=1, verbose=0)
    print(f"{args.preset}: fit 1 epoch on 512 synthetic images in {time.time() - start:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        summary = export_tflite(model, f"{folder}/r8.tflite", x[:64])
        results = compare(model, f"{folder}/r8.tflite", x[512:], runtimes=("litert", "tflm"),
                          arena_size=summary.arena_bytes + 4096)
    for result in results.values():
        print(f"  {result}")
    mapping = build_mapping(model)
    pools = [layer for layer in mapping.layers if getattr(layer, "op", None) == "average_pool"]
    got = evaluate(mapping, x[512:]).values()
    differing = int(np.sum(got != model.predict(x[512:], verbose=0)))
    print(f"  mapping: {len(mapping.crossbar_layers)} crossbar layers, average_pool steps {len(pools)}, "
          f"evaluator vs Keras: {differing} differing outputs of {got.size}")


if __name__ == "__main__":
    main()
