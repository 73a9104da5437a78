"""Benchmark: time per training step of NVM models vs the same float models, and where the extra time goes.

Networks: the HAR recipe model (`har_signed_cnn` with the recipe's arguments, real HAR windows when
the data set is available, else synthetic windows) and the VGG-style CIFAR-10-sized networks of
issue 13 (`cifar_vgg`: 32x32x3 inputs, blocks of two 3x3 convolutions and a 2x2 max-pool, 32-64-128 or
64-128-256 filters, with or without BatchNorm after every convolution, global average pooling, Dense
head) on SYNTHETIC random images and labels: this is a speed benchmark, the values do not matter.

For each network x preset x batch size, the float model and its NVM model (`quantize_model`, same
optimizer, same loss) are built in one process and timed with ``train_on_batch`` after warm-up,
interleaving float and NVM steps (the order swaps every repeat) so that machine drift and other
processes' load hit both. The table gives the median wall ms/step over all timed steps, the ratio
of the medians (the target), and the ratio of the median process CPU times (all threads; less
sensitive to other processes on a shared machine). ``--profile`` adds a
tf.profiler trace of a few steps of float and NVM for chosen networks, summed per TensorFlow op type
(``ms/step``, all threads: ops that run in parallel both count) and per layer, with the NVM - float
difference: where the NVM step's extra time goes.

Run::

    PYTHONPATH=. python3 benchmarks/train_step.py                       # the table (about 10 min on 2 cores)
    PYTHONPATH=. python3 benchmarks/train_step.py --networks vgg32-bn --batches 128 --profile vgg32-bn

Writes ``PREFIX.csv``/``.md`` (``--out``, default ``benchmarks/results/train_step``), and
``PREFIX-profile-*.csv``/``.md`` with ``--profile``. Target (issue 13): NVM/float <= 1.25.
"""

import argparse
import collections
import glob
import os
import shutil
import statistics
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

import tf_nvm  # first: puts TensorFlow in legacy-Keras (tf_keras) mode
import tensorflow as tf
import tf_keras as keras
from tf_nvm.experiments.data import prepare_data
from tf_nvm.experiments.recipes import load as load_recipe
from tf_nvm.core.tables import write_table

TARGET = 1.25
HAR_RECIPE = "har-4bit-bipolar"

NETWORKS = {
    # name: (architecture, arguments); "har" takes its arguments from the HAR recipe.
    "har": ("har_signed_cnn", None),
    "vgg32-bn": ("cifar_vgg", {"filters": (32, 64, 128), "batch_norm": True}),
    "vgg32": ("cifar_vgg", {"filters": (32, 64, 128), "batch_norm": False}),
    "vgg64-bn": ("cifar_vgg", {"filters": (64, 128, 256), "batch_norm": True}),
    "vgg64": ("cifar_vgg", {"filters": (64, 128, 256), "batch_norm": False}),
}


def _har_data():
    """(x, y, source) of HAR training windows standardised as the recipe does; synthetic when absent."""
    recipe = load_recipe(HAR_RECIPE)
    try:
        split = prepare_data(recipe, verbose=False)
        return split.x_train.astype(np.float32), split.y_train, "HAR windows"
    except tf_nvm.DatasetNotFoundError:
        rng = np.random.default_rng(0)
        return rng.standard_normal((4096, 128, 9)).astype(np.float32), rng.integers(0, 6, 4096), "synthetic"


def _network(name):
    """(architecture, arguments, x pool, y pool, data source) of a network of `NETWORKS`."""
    architecture, arguments = NETWORKS[name]
    if name == "har":
        recipe = load_recipe(HAR_RECIPE)
        x, y, source = _har_data()
        return recipe.architecture, dict(recipe.architecture_args), x, y, source
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 32, 32, 3)).astype(np.float32)
    return architecture, arguments, x, rng.integers(0, 10, 512), "synthetic"


def _batches(x, y, batch, count=4):
    """``count`` fixed batches as tensors (the same for float and NVM)."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(count):
        index = rng.choice(len(x), batch, replace=False)
        out.append((tf.constant(x[index]), tf.constant(y[index])))
    return out


def _models(architecture, arguments, preset):
    """{"float": model, "nvm": model}, compiled alike."""
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unipolar VGG nets warn about non-inhibiting crossbars
        models = {"float": tf_nvm.models.build(architecture, **arguments),
                  "nvm": tf_nvm.quantize_model(tf_nvm.models.build(architecture, **arguments), preset,
                                               init="device")}
    for model in models.values():
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return models


def _time_steps(model, batches, steps):
    for i in range(steps):
        model.train_on_batch(*batches[i % len(batches)])


def time_pair(models, batches, repeats, steps, warmup=3):
    """Per-step wall and CPU seconds of each model, float and NVM interleaved step by step.

    The machine may be shared: interleaving single steps (the order swapping every repeat) makes load
    from other processes hit both models alike, and the process CPU time (all threads) is less
    sensitive to it than the wall time.

    Returns:
        {name: (median wall seconds, median CPU seconds, list of wall seconds)}.
    """
    for model in models.values():
        _time_steps(model, batches, warmup)  # trace and warm up
    wall = {name: [] for name in models}
    cpu = {name: [] for name in models}
    order = list(models)
    for _ in range(repeats):
        for i in range(steps):
            for name in order:
                start, start_cpu = time.perf_counter(), time.process_time()
                models[name].train_on_batch(*batches[i % len(batches)])
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        order.reverse()
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name]), wall[name]) for name in models}


def _xplane_events(logdir):
    """(op name, op type, microseconds) of every TensorFlow op executed in the trace under ``logdir``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: PLC0415  (only for --profile)

    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as handle:
            space.ParseFromString(handle.read())
        for plane in space.planes:
            metadata = plane.event_metadata
            for line in plane.lines:
                if not line.name.startswith("tf_Compute") and not line.name.startswith("tf_inter_op"):
                    continue
                for event in line.events:
                    name = metadata[event.metadata_id].name
                    if ":" in name and "::" not in name:
                        op, kind = name.rsplit(":", 1)
                        yield op, kind, event.duration_ps / 1e6


_STRAIGHT_THROUGH_OPS = ("FakeQuantWithMinMaxArgsGradient", "SelectV2", "LessEqual", "GreaterEqual", "LogicalAnd")


def _layer_of(op_name, model_name):
    """The layer an op belongs to (forward or gradient), else its first scope (optimizer, loss...)."""
    parts = op_name.split("/")
    if len(parts) == 1 and parts[0].split("_")[0] in _STRAIGHT_THROUGH_OPS:
        return "(straight-through gradients)"  # tf.custom_gradient functions are not named after their layer
    if parts[0] == "gradient_tape":
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == model_name:
        return parts[1].removeprefix("quant_")  # tfmot's wrapper of layer L is named quant_L
    return parts[0]


def profile(model, batches, steps):
    """ms/step per op type and per layer over ``steps`` traced steps (all threads summed)."""
    logdir = tempfile.mkdtemp(prefix="tf_nvm_profile_")
    try:
        tf.profiler.experimental.start(logdir)
        for i in range(steps):
            model.train_on_batch(*batches[i % len(batches)])
        tf.profiler.experimental.stop()
        by_type, by_layer = collections.Counter(), collections.Counter()
        for op, kind, micros in _xplane_events(logdir):
            by_type[kind] += micros / 1e3 / steps
            by_layer[_layer_of(op, model.name)] += micros / 1e3 / steps
        return by_type, by_layer
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


def _difference_table(float_counts, nvm_counts, key, top):
    names = set(float_counts) | set(nvm_counts)
    rows = [{key: n, "float_ms": float_counts.get(n, 0.0), "nvm_ms": nvm_counts.get(n, 0.0),
             "extra_ms": nvm_counts.get(n, 0.0) - float_counts.get(n, 0.0)} for n in names]
    table = pd.DataFrame(rows).sort_values("extra_ms", ascending=False, key=abs).reset_index(drop=True)
    total = {key: "TOTAL (all ops)", "float_ms": table.float_ms.sum(), "nvm_ms": table.nvm_ms.sum(),
             "extra_ms": table.extra_ms.sum()}
    return pd.concat([table.head(top), pd.DataFrame([total])], ignore_index=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="har,vgg32-bn,vgg32,vgg64-bn,vgg64",
                        help=f"comma-separated, of {', '.join(NETWORKS)}")
    parser.add_argument("--presets", default="paper-2bit-unipolar,paper-4bit-bipolar")
    parser.add_argument("--batches", default="64,128")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="interleaved training steps per repeat")
    parser.add_argument("--profile", default="", help="comma-separated networks to profile (largest batch, "
                                                      "last preset)")
    parser.add_argument("--profile-steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=15, help="rows of the profile tables")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "train_step"))
    args = parser.parse_args()
    networks = [n for n in args.networks.split(",") if n]
    presets = [p for p in args.presets.split(",") if p]
    batch_sizes = [int(b) for b in args.batches.split(",") if b]
    for name in networks + [n for n in args.profile.split(",") if n]:
        if name not in NETWORKS:
            parser.error(f"unknown network {name!r}; known: {', '.join(NETWORKS)}")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)

    print(f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}; medians of {args.repeats} repeats x {args.steps} "
          "steps, float and NVM interleaved step by step; synthetic data for the VGG networks")
    rows = []
    for network in networks:
        architecture, arguments, x, y, source = _network(network)
        for preset in presets:
            models = _models(architecture, arguments, preset)
            for batch in batch_sizes:
                result = time_pair(models, _batches(x, y, batch), args.repeats, args.steps)
                (float_wall, float_cpu, _), (nvm_wall, nvm_cpu, _) = result["float"], result["nvm"]
                ratio = nvm_wall / float_wall
                rows.append({"network": network, "preset": preset, "batch": batch, "data": source,
                             "float_ms": float_wall * 1e3, "nvm_ms": nvm_wall * 1e3, "nvm_over_float": ratio,
                             "cpu_nvm_over_float": nvm_cpu / float_cpu, "target_met": bool(ratio <= TARGET)})
                print(f"{network:9s} {preset:20s} batch {batch:4d}: float {float_wall * 1e3:7.1f} ms  "
                      f"NVM {nvm_wall * 1e3:7.1f} ms  ratio {ratio:.3f}  (CPU time ratio {nvm_cpu / float_cpu:.3f})",
                      flush=True)
            keras.backend.clear_session()
    table = pd.DataFrame(rows)
    if len(table):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        paths = write_table(table, args.out, decimals=3)
        print(f"wrote {', '.join(paths)}; worst ratio {table.nvm_over_float.max():.3f} "
              f"(target <= {TARGET}: {'PASS' if table.target_met.all() else 'FAIL'})")

    for network in [n for n in args.profile.split(",") if n]:
        architecture, arguments, x, y, _ = _network(network)
        batch = max(batch_sizes)
        models = _models(architecture, arguments, presets[-1])
        batches = _batches(x, y, batch)
        counts = {}
        for name, model in models.items():
            _time_steps(model, batches, 3)
            counts[name] = profile(model, batches, args.profile_steps)
        for key, index in (("op_type", 0), ("layer", 1)):
            table = _difference_table(counts["float"][index], counts["nvm"][index], key, args.top)
            print(f"\nprofile {network}, {presets[-1]}, batch {batch}: ms/step per {key} (all threads summed)")
            print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
            write_table(table, f"{args.out}-profile-{network}-{key}", decimals=2)
        keras.backend.clear_session()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
