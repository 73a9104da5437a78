"""Benchmark: training-step time of unipolar [x, -x] networks with and without the fused sign split.

A unipolar crossbar fed ``[t, -t]`` has twice the input rows, so its convolution costs twice the
multiply-adds of the bipolar one. `tf_nvm.keras.sign_split.fuse_sign_split` (used by ``train_model``)
computes ``conv(t, W+ - W-)`` instead: the same outputs with half the work. This benchmark times,
in one process, the CIFAR-10 recipe network (`cifar_vgg` 32-64-128 with BatchNorm, 32x32x3 inputs,
SYNTHETIC random images: a speed benchmark, the values do not matter) for:

* ``split``: the unipolar network (``signs="split"``) as built, every crossbar reading ``[t, -t]``;
* ``split-fused``: the same network after `fuse_sign_split`;
* ``bipolar``: the bipolar network (``signs=None``), the cost the fused form aims at;

as float models and as NVM models (``--unipolar-preset`` for the split networks, ``--bipolar-preset``
for the bipolar one), timed with ``train_on_batch`` after warm-up, all three interleaved step by step
(the order reversing every repeat). Prints the median ms per step and the ratios fused/plain and
fused/bipolar (wall and process CPU time), and writes ``PREFIX.csv``/``.md`` (``--out``).

Run::

    PYTHONPATH=. python3 benchmarks/sign_split.py        # about 5 min on 2 cores
"""

import argparse
import os
import warnings

import numpy as np
import pandas as pd

import tf_nvm  # first: puts TensorFlow in legacy-Keras (tf_keras) mode
import tensorflow as tf
import tf_keras as keras
from benchmarks.train_step import _batches, time_pair
from tf_nvm.keras.sign_split import fuse_sign_split
from tf_nvm.core.tables import write_table

ARGUMENTS = {"filters": (32, 64, 128), "convs_per_block": 2, "batch_norm": True}
"""The CIFAR-10 recipes' architecture arguments (recipes/cifar10-*.json)."""


def _models(kind, unipolar_preset, bipolar_preset):
    """{"split": model, "split-fused": model, "bipolar": model}, float or NVM, compiled alike."""
    models = {}
    for name, signs in (("split", "split"), ("split-fused", "split"), ("bipolar", None)):
        keras.utils.set_random_seed(0)
        model = tf_nvm.models.build("cifar_vgg", signs=signs, **ARGUMENTS)
        if kind == "nvm":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = tf_nvm.quantize_model(model, unipolar_preset if signs else bipolar_preset, init="device")
        if name == "split-fused":
            fused = fuse_sign_split(model)
            print(f"{kind}: fused {len(fused)} convolutions: {', '.join(fused)}", flush=True)
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        models[name] = model
    return models


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unipolar-preset", default="paper-4bit-unipolar")
    parser.add_argument("--bipolar-preset", default="paper-4bit-bipolar")
    parser.add_argument("--batch", type=int, default=128, help="the CIFAR-10 recipes' batch size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6, help="interleaved training steps per repeat")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "sign_split"))
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    print(f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}; medians of {args.repeats} repeats x {args.steps} "
          f"steps, batch {args.batch}, the three networks interleaved step by step; synthetic images", flush=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 32, 32, 3)).astype(np.float32)
    batches = _batches(x, rng.integers(0, 10, 512), args.batch)
    rows = []
    for kind in ("float", "nvm"):
        result = time_pair(_models(kind, args.unipolar_preset, args.bipolar_preset), batches, args.repeats,
                           args.steps)
        wall = {name: value[0] for name, value in result.items()}
        cpu = {name: value[1] for name, value in result.items()}
        row = {"model": kind, "split_ms": wall["split"] * 1e3, "fused_ms": wall["split-fused"] * 1e3,
               "bipolar_ms": wall["bipolar"] * 1e3, "fused_over_split": wall["split-fused"] / wall["split"],
               "fused_over_bipolar": wall["split-fused"] / wall["bipolar"],
               "cpu_fused_over_split": cpu["split-fused"] / cpu["split"],
               "cpu_fused_over_bipolar": cpu["split-fused"] / cpu["bipolar"]}
        rows.append(row)
        print(f"{kind:5s}: split {row['split_ms']:7.1f} ms  fused {row['fused_ms']:7.1f} ms  bipolar "
              f"{row['bipolar_ms']:7.1f} ms  fused/split {row['fused_over_split']:.3f}  fused/bipolar "
              f"{row['fused_over_bipolar']:.3f}", flush=True)
        keras.backend.clear_session()
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {', '.join(write_table(table, args.out, decimals=3))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
