"""Benchmark: samples/s of the analog simulator against float TF inference of the same network.

Networks: the trained HAR model of a run folder (its mapping), an MLP
561-256-128-6 (ReLU) and a CIFAR-10-sized CNN (conv3x3/32, conv3x3/32, maxpool 2,
conv3x3/64, conv3x3/64, maxpool 2, flatten, dense 512, dense 10; 'same', ReLU),
the last two with random device codes (paper-4bit-bipolar). For each batch size
(1, 64, 1024) the float model (a ``tf.function`` of the Keras float model) and
the simulator (ideal; every non-ideality on: PCM programming noise, drift to
1 h with compensation, per-read noise, 1 % stuck devices, a shared 10-bit ADC)
run alternately, REPEATS times; the medians give samples/s and the ratios
``simulator time / float time``. The peak RSS of the process is printed at the end.

Run: ``python benchmarks/simulator_throughput.py [--run runs/har-2bit-unipolar] [--repeats 5]``
Targets (issue): ideal <= 2x, everything on <= 3x the float time at batch 1024 on the MLP and the CNN.
"""

import argparse
import resource
import statistics
import time
import warnings

import numpy as np

import tf_nvm  # first: legacy-Keras mode
import tensorflow as tf
import tf_keras as keras
from tf_nvm.simulator import ADCConfig, DeviceConfig, SimulationConfig, Simulator
from tflite_export import build_mapping

L = keras.layers
BATCHES = (1, 64, 1024)
NOISY = SimulationConfig(device=DeviceConfig(noise="pcm-like", t_inference=3600.0, stuck_at_gmin_rate=0.005,
                                             stuck_at_gmax_rate=0.005), adc=ADCConfig(mode="shared", bits=10))


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


def _sim_runner(mapping, config, batch):
    sim = Simulator(mapping, SimulationConfig(dac=config.dac, adc=config.adc, device=config.device,
                                              batch_size=batch))
    chip = sim.program(0)
    return lambda x: sim.run(chip, x)


def bench(name, float_model, mapping, x_pool, repeats):
    print(f"\n{name}: {mapping.summary()}")
    print(f"{'batch':>6} {'float samples/s':>16} {'ideal samples/s':>16} {'ideal/float':>12} "
          f"{'all-on samples/s':>17} {'all-on/float':>13}")
    rows = []
    for batch in BATCHES:
        n = batch * (16 if batch == 1 else (8 if batch == 64 else 2))
        x = x_pool[:n]
        runners = {"float": _float_runner(float_model, batch), "ideal": _sim_runner(mapping, SimulationConfig(), batch),
                   "all": _sim_runner(mapping, NOISY, batch)}
        for run in runners.values():
            run(x)  # warm-up of every runner before the alternating repeats
        samples = {key: [] for key in runners}
        for _ in range(repeats):
            for key, run in runners.items():  # alternate, so machine drift hits all three
                start = time.perf_counter()
                run(x)
                samples[key].append(time.perf_counter() - start)
        median = {key: statistics.median(values) for key, values in samples.items()}
        rows.append((batch, median))
        print(f"{batch:6d} {n / median['float']:16.1f} {n / median['ideal']:16.1f} "
              f"{median['ideal'] / median['float']:12.2f} {n / median['all']:17.1f} "
              f"{median['all'] / median['float']:13.2f}", flush=True)
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
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    results = {}
    if args.run:
        from tf_nvm.runs import read_run  # noqa: PLC0415

        folder = read_run(args.run)
        (_, _), (x_test, _) = tf_nvm.datasets.load_har(verbose=False)
        x = folder.preprocessing.apply(np.concatenate([x_test, x_test])[:4096])
        float_har = tf_nvm.load_model(args.run + "/float_model.keras", compile=False)
        results["har"] = bench(f"HAR run {args.run}", float_har, build_mapping(folder.model, preprocessing=
                                                                                folder.preprocessing), x, args.repeats)
    for name, builder, shape in (("mlp 561-256-128-6", mlp, (561,)), ("cifar-sized cnn", cnn, (32, 32, 3))):
        float_model, mapping, x = _random_nvm(builder, shape, rng)
        results[name] = bench(name, float_model, mapping, x, args.repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:.0f} MiB")
    return results


if __name__ == "__main__":
    main()
