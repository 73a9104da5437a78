"""Export a trained NVM model for a microcontroller (TFLite int8) and for crossbars (mapping file); compare them.

Reads a run folder written by `tf-nvm train` or `tf-nvm run` (default: the 2-bit unipolar variant of
`tf-nvm run paper-har --quick`), writes OUT/model.tflite and the mapping OUT/mapping.{json,npz}, and checks
that LiteRT, TFLite Micro and the exact crossbar evaluator all compute what the Keras model computes.

Run: python examples/export_and_compare.py [RUN_FOLDER] [OUT]
"""

import os
import sys

import numpy as np

import tf_nvm  # first: puts TensorFlow in legacy-Keras (tf_keras) mode
import tflite_export
from tf_nvm.experiments.runs import read_run
from tf_nvm.mapping import format_table, reference
from tflite_export.verify import compare

run_folder = sys.argv[1] if len(sys.argv) > 1 else "runs/paper-har-quick/variants/har-2bit-unipolar"
out = sys.argv[2] if len(sys.argv) > 2 else "exports/har-2bit-unipolar"
os.makedirs(out, exist_ok=True)

run = read_run(run_folder)
(x_train, _), (x_test, _) = tf_nvm.datasets.load_har(verbose=False)
x_train, x_test = run.preprocessing.apply(x_train), run.preprocessing.apply(x_test[:500])

tflite = tflite_export.export_tflite(run.model, os.path.join(out, "model.tflite"), x_train[:500])
print(tflite)  # flash bytes, TFLite Micro arena (RAM), ops
for runtime, result in compare(run.model, tflite.path, x_test, runtimes=("litert", "tflm")).items():
    print(result)  # differing int8 outputs against the Keras model (0 expected)

mapping = tflite_export.export_crossbar(run.model, os.path.join(out, "mapping"), preprocessing=run.preprocessing)
print(format_table(mapping))  # crossbar layers, tiles, devices, ADC columns
crossbar = reference.evaluate(mapping, x_test).values()  # the exact integer crossbar computation
keras_out = run.model.predict(x_test, verbose=0)
print(f"crossbar vs Keras arg-max agreement: {np.mean(crossbar.argmax(-1) == keras_out.argmax(-1)):.4f}")
