"""Benchmark: the microcontroller model of a unipolar recipe with both signs folded (``conv(t, W+ - W-)``) vs kept.

For one recipe (default ``cifar10-2bit-unipolar``): builds and quantizes the recipe's network (its spec and
init), trains it for ``--steps`` Adam steps on the real training data (sizes and exactness do not depend on how
long it trained), exports the TFLite model with ``fold_sign_split=False`` (both halves, as the crossbar) and
``True`` (the default), and prints per model: flash bytes, TFLite Micro arena bytes, multiply-accumulates and
the modelled latency on each `tf_nvm.cost.MCU_CORES` core, the folded layers, and the outputs of LiteRT and
TFLite Micro that differ from the Keras model on ``--examples`` test examples.

Run (reads the development data through an explicit path)::

    PYTHONPATH=. python3 benchmarks/unipolar_fold.py --recipe cifar10-2bit-unipolar --data /work/shared/data/cifar10
    PYTHONPATH=. python3 benchmarks/unipolar_fold.py --recipe har-2bit-unipolar \
        --data /work/shared/data/har/har_uci_style.npz

Measured (Dec 2026, ``--steps 10``, 256 test examples, 0 differing outputs in LiteRT and TFLite Micro for every
model): ``cifar10-2bit-unipolar``: flash 607,336 -> 317,816 bytes (0.523), arena 146,704 -> 79,248 bytes (0.540),
MACs 77.38 M -> 39.63 M (0.512), modelled latency Cortex-M4F 6,559 -> 3,360 ms, M7 622 -> 319 ms (every
crossbar but the first folds: it reads the signed image).
``har-2bit-unipolar``: nothing folds (71,040 bytes, 3.97 M MACs both ways): every crossbar of
``har_signed_cnn`` reads ``[x, -x]`` of a signed ``x`` (the input, BatchNorm outputs), where ``-x`` clips at
the range's top for ``x`` = -A (int8 -128 -> 127), so ``conv(x, W+ - W-)`` would not be exact.
"""

import argparse
import json
import os
import tempfile
import warnings


import tf_nvm  # first: legacy-Keras mode
from tf_nvm.experiments import models, recipes
from tf_nvm.keras.backend import keras
from tf_nvm.cost import MCU_CORES, mcu_cost
from tf_nvm.experiments.data import prepare_data
from tflite_export import export_tflite, read_tflite
from tflite_export.verify import compare


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="cifar10-2bit-unipolar")
    parser.add_argument("--data", default=None, help="data source for tf_nvm.experiments.data.prepare_data")
    parser.add_argument("--steps", type=int, default=20, help="training steps (batch: the recipe's)")
    parser.add_argument("--examples", type=int, default=256, help="test examples compared")
    args = parser.parse_args(argv)
    recipe = recipes.load(args.recipe)
    split = prepare_data(recipe, data_path=args.data, verbose=False)
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nvm = tf_nvm.quantize_model(models.build(recipe.architecture, **recipe.architecture_args), recipe.nvm_spec,
                                    init=recipe.init)
    nvm.compile(keras.optimizers.Adam(recipe.learning_rate),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    n = min(len(split.x_train), args.steps * recipe.batch_size)
    nvm.fit(split.x_train[:n], split.y_train[:n], batch_size=recipe.batch_size, epochs=1, verbose=0)
    x = split.x_test[:args.examples]
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, fold in (("halves", False), ("folded", True)):
            path = os.path.join(folder, f"{label}.tflite")
            summary = export_tflite(nvm, path, split.x_train[:256], fold_sign_split=fold, measure_arena=True)
            with open(path, "rb") as handle:
                graph = read_tflite(handle.read())
            results = compare(nvm, path, x, runtimes=("litert", "tflm"), arena_size=summary.arena_bytes)
            costs = {name: mcu_cost(graph, name, summary.arena_bytes)[1] for name in MCU_CORES.names()}
            rows[label] = {"flash_bytes": summary.model_bytes, "arena_bytes": summary.arena_bytes,
                           "macs": next(iter(costs.values()))["macs"],
                           "latency_ms": {name: round(c["latency_us"] / 1000, 3) for name, c in costs.items()},
                           "folded_layers": list(summary.folded_layers),
                           "differing_outputs": {k: int(v.differing) for k, v in results.items()},
                           "examples": len(x)}
    rows["folded/halves"] = {key: round(rows["folded"][key] / rows["halves"][key], 4)
                             for key in ("flash_bytes", "arena_bytes", "macs")}
    print(json.dumps({"recipe": args.recipe, **rows}, indent=1))


if __name__ == "__main__":
    main()
