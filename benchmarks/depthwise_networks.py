"""Benchmark: MobileNetV1-0.25 (96x96) and DS-CNN in paper-4bit-bipolar: exact export and device utilisation.

The two MLPerf Tiny networks built on depthwise convolutions (issue 24, items 3 and 8), written here from
their published layer lists (mlcommons/tiny: visual wake words MobileNetV1 alpha 0.25, keyword spotting
DS-CNN) with GlobalAveragePooling2D for their pooling: quantized, one epoch on 32 random examples, then
exported to TFLite (LiteRT and TFLite Micro compared with the Keras model on 100 random on-grid inputs) and
to a crossbar mapping, whose table (`tf_nvm.mapping.format_table`, as ``tf-nvm inspect`` prints it) gives
devices, weights and device utilisation (weights / devices) per layer and in total.

Run::

    PYTHONPATH=. python3 benchmarks/depthwise_networks.py [--out DIR] [--size 96]   # about 4 min on 2 cores
"""

import argparse
import os
import tempfile
import time

import numpy as np

import tf_nvm  # noqa: F401  first: puts TensorFlow in legacy-Keras (tf_keras) mode
from tf_nvm.keras.backend import keras
from tf_nvm.mapping import format_table

L = keras.layers


def mobilenet_v1(size=96, alpha=0.25, classes=2):
    """MobileNetV1 (mlcommons/tiny visual wake words), GlobalAveragePooling2D for the pooling."""
    x = inputs = keras.Input((size, size, 3))
    x = L.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False)(x)
    x = L.ReLU()(L.BatchNormalization()(x))
    for filters, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + \
            [(1024, 2), (1024, 1)]:
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
        x = L.Conv2D(int(filters * alpha), 1, padding="same", use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
    x = L.Dense(classes)(L.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, L.Softmax()(x), name="mobilenet_v1_025")


def ds_cnn(classes=12):
    """DS-CNN (mlcommons/tiny keyword spotting), input 49x10x1."""
    x = inputs = keras.Input((49, 10, 1))
    x = L.Conv2D(64, (10, 4), strides=2, padding="same", use_bias=False)(x)
    x = L.ReLU()(L.BatchNormalization()(x))
    for _ in range(4):
        x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
        x = L.Conv2D(64, 1, padding="same", use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
    x = L.Dense(classes)(L.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, x, name="ds_cnn")


def run(name, model, preset, out):
    """Quantize, fit one epoch, export both ways; prints the comparisons and the mapping table."""
    from tflite_export import compare, export_crossbar, export_tflite  # noqa: PLC0415

    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    model = tf_nvm.quantize_model(model, preset)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=name == "ds_cnn"))
    shape, classes = tuple(model.inputs[0].shape[1:]), int(model.outputs[0].shape[-1])
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(32,) + shape).astype(np.float32), rng.integers(0, classes, 32), epochs=1,
              batch_size=16, verbose=0)
    step = tf_nvm.model_spec(model).activation_step
    data = (rng.integers(-128, 128, (100,) + shape) * step).astype(np.float32)
    path = os.path.join(out, f"{name}.tflite")
    summary = export_tflite(model, path, data[:16])
    print(summary)
    for result in compare(model, path, data, runtimes=("litert", "tflm"), arena_size=summary.arena_bytes + 4096).values():
        print(f"{name}: {result}")
    mapping = export_crossbar(model, os.path.join(out, f"{name}_mapping"))
    print(format_table(mapping))
    print(f"{name}: {mapping.summary()}; {time.perf_counter() - start:.0f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for the .tflite and mapping files (default: temporary)")
    parser.add_argument("--size", type=int, default=96, help="MobileNetV1 input size (default 96)")
    parser.add_argument("--preset", default="paper-4bit-bipolar")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="tf_nvm_depthwise_")
    os.makedirs(out, exist_ok=True)
    run("ds_cnn", ds_cnn(), args.preset, out)
    run("mobilenet_v1_025", mobilenet_v1(args.size), args.preset, out)


if __name__ == "__main__":
    main()
