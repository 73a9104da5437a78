"""Benchmark: samples/s of the analog simulator against float TF inference of the same network.

Networks: the trained HAR model of a run folder (its mapping), an MLP
561-256-128-6 (ReLU) and a CIFAR-10-sized CNN (conv3x3/32, conv3x3/32, maxpool 2,
conv3x3/64, conv3x3/64, maxpool 2, flatten, dense 512, dense 10; 'same', ReLU),
the last two with random device codes (paper-4bit-bipolar). For each batch size
(1, 64, 1024) the float model (a ``tf.function`` of the Keras float model) and
the simulator run alternately, REPEATS times, in these configurations:

* ``ideal``: every source off, exact converters;
* ``all on``: PCM programming noise, drift to 1 h with global compensation,
  read noise drawn once per chip at t_inference (aihwkit's convention,
  ``read_noise="per-chip"``), 0.5 % + 0.5 % stuck devices, one shared 10-bit ADC;
* ``all on, per-read``: the same with a fresh read-noise draw at every read
  (``read_noise="per-read"``, exact in distribution per example): one normal per device column, row tile
  and read, before the ADC;
* ``per-read, exact ADC``: the same devices with exact converters: the layer is linear after the column
  sums, so the noise is one normal per output after the pair subtraction (``docs/simulator.md``).

with the default split (the ADC and accumulation XLA-compiled, convolutions by TensorFlow), or the
whole forward pass under XLA with ``--jit``. The medians give
samples/s and the ratios ``simulator time / float time``; the peak RSS of the
process is printed at the end, and the table is written as CSV + Markdown.

Run: ``python benchmarks/simulator_throughput.py [--run runs/har-2bit-unipolar] [--repeats 5] [--jit] [--out DIR]``
Targets (issue): ideal <= 2x, everything on <= 3x the float time at batch 1024 on the MLP and the CNN.
"""

import argparse
import dataclasses
import os
import resource
import statistics
import time
import warnings

import numpy as np
import pandas as pd

import tf_nvm  # first: legacy-Keras mode
import tensorflow as tf
import tf_keras as keras
from tf_nvm.simulator import ADCConfig, DeviceConfig, SimulationConfig, Simulator
from tf_nvm.core.tables import write_table
from tflite_export import build_mapping

L = keras.layers
BATCHES = (1, 64, 1024)
_DEVICE = DeviceConfig(noise="pcm-like", t_inference=3600.0, stuck_at_gmin_rate=0.005, stuck_at_gmax_rate=0.005,
                       read_noise="per-chip")
CONFIGS = {
    "ideal": SimulationConfig(),
    "all on": SimulationConfig(device=_DEVICE, adc=ADCConfig(mode="shared", bits=10)),
    "all on, per-read": SimulationConfig(device=dataclasses.replace(_DEVICE, read_noise="per-read"),
                                         adc=ADCConfig(mode="shared", bits=10)),
    "per-read, exact ADC": SimulationConfig(device=dataclasses.replace(_DEVICE, read_noise="per-read")),
}


def mlp():
    inputs = keras.Input((561,))
    x = L.Dense(256, activation="relu")(inputs)
    x = L.Dense(128, activation="relu")(x)
    return keras.Model(inputs, L.Dense(6)(x), name="mlp")


def cnn():
    inputs = keras.Input((32, 32, 3))
    x = L.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = L.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = L.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Dense(512, activation="relu")(L.Flatten()(x))
    return keras.Model(inputs, L.Dense(10)(x), name="cnn")


def _float_runner(model, batch):
    forward = tf.function(lambda x: model(x, training=False))

    def run(x):
        for start in range(0, len(x), batch):
            forward(tf.constant(x[start:start + batch])).numpy()
    return run


def _sim_runner(mapping, config, batch, jit):
    sim = Simulator(mapping, dataclasses.replace(config, batch_size=batch, jit_compile=jit))
    chip = sim.program(0)
    return lambda x: sim.run(chip, x)


def bench(name, float_model, mapping, x_pool, repeats, jit):
    print(f"\n{name}: {mapping.summary()}", flush=True)
    rows = []
    for batch in BATCHES:
        n = batch * (16 if batch == 1 else (8 if batch == 64 else 2))
        x = x_pool[:n]
        runners = {"float": _float_runner(float_model, batch)}
        runners.update({key: _sim_runner(mapping, config, batch, jit) for key, config in CONFIGS.items()})
        for run in runners.values():
            run(x)  # warm-up (tracing, XLA compilation) of every runner before the alternating repeats
        samples = {key: [] for key in runners}
        for _ in range(repeats):
            for key, run in runners.items():  # alternate, so machine drift hits all of them
                start = time.perf_counter()
                run(x)
                samples[key].append(time.perf_counter() - start)
        median = {key: statistics.median(values) for key, values in samples.items()}
        row = {"network": name, "batch": batch, "float samples/s": round(n / median["float"], 1)}
        for key in CONFIGS:
            row[f"{key} samples/s"] = round(n / median[key], 1)
            row[f"{key} / float"] = round(median[key] / median["float"], 2)
        rows.append(row)
        print("  " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "network"), flush=True)
    return rows


def _random_nvm(builder, shape, rng):
    keras.utils.set_random_seed(0)
    float_model = builder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nvm = tf_nvm.quantize_model(float_model, "paper-4bit-bipolar", init="device")
    return float_model, build_mapping(nvm), rng.normal(0, 1, (4096,) + shape).astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run folder of `tf-nvm train` (HAR) to include")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jit", action="store_true", help="compile the whole simulator forward pass with XLA")
    parser.add_argument("--out", default="benchmark_results", help="folder for simulator_throughput.{csv,md}")
    args = parser.parse_args(argv)
    jit = args.jit
    rng = np.random.default_rng(0)
    rows = []
    if args.run:
        from tf_nvm.experiments.runs import read_run  # noqa: PLC0415

        folder = read_run(args.run)
        (_, _), (x_test, _) = tf_nvm.datasets.load_har(verbose=False)
        x = folder.preprocessing.apply(np.concatenate([x_test, x_test])[:4096])
        float_har = tf_nvm.load_model(args.run + "/float_model.keras", compile=False)
        rows += bench(f"HAR run {args.run}", float_har,
                      build_mapping(folder.model, preprocessing=folder.preprocessing), x, args.repeats, jit)
    for name, builder, shape in (("MLP 561-256-128-6", mlp, (561,)), ("CIFAR-sized CNN", cnn, (32, 32, 3))):
        float_model, mapping, x = _random_nvm(builder, shape, rng)
        rows += bench(name, float_model, mapping, x, args.repeats, jit)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = pd.DataFrame(rows)
    os.makedirs(args.out, exist_ok=True)
    name = "simulator_throughput" + ("_jit" if args.jit else "")
    files = write_table(table, os.path.join(args.out, name), decimals=2)
    print(f"\n{table.to_string(index=False)}\n\npeak RSS of this process: {peak:.0f} MiB (XLA: {jit}); wrote "
          f"{', '.join(map(str, files))}")
    return table


if __name__ == "__main__":
    main()
