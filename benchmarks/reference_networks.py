"""The four MLPerf Tiny reference networks end to end, in the paper's presets: one table of what each costs.

For each network (`tf_nvm.models`: ``resnet8``, ``ds_cnn``, ``fc_autoencoder``, ``mobilenet_v1``) and each
preset (``paper-2bit-unipolar`` with ``sign_split="auto"``, ``paper-4bit-bipolar``):

1. ``quantize_model``, then ``model.fit`` for ``--epochs`` epochs on generated data of the network's input
   shape (standard-normal inputs; labels the arg-max of a fixed random projection of the input, so there is
   something to learn; the autoencoder reconstructs its inputs): this measures that every step runs and is
   exact, not accuracy on a real task;
2. TFLite export (INT8 container), compared with the Keras model in LiteRT and TFLite Micro on ``--examples``
   inputs (differing int8 outputs; each runtime against the Keras model in that runtime's rounding);
3. crossbar export, the ideal simulated chip against the exact evaluator (differing output codes);
4. ``--chips`` PCM-like chips at 1 h (accuracy, or the reconstruction MSE for the autoencoder), beside the
   ideal chip;
5. cost: crossbar chip area (mm^2), energy (uJ) and latency (us) per inference (isaac-32nm technology,
   `tf_nvm.cost.network_cost`) beside the Cortex-M4F baseline of the TFLite model (MACs, uJ, ms).

Run: python3 benchmarks/reference_networks.py [--epochs 2] [--examples 200] [--chips 5] [--out DIR]
Writes DIR/reference_networks.csv and .md (one row per network and preset) and prints the table.
"""

import argparse
import os
import time

import numpy as np

import tf_nvm  # first: legacy-Keras mode
import tflite_export
from tf_nvm.keras.backend import keras
from tf_nvm.cost import mcu_cost, network_cost
from tf_nvm.mapping import reference
from tf_nvm.simulator import DeviceConfig, SimulationConfig, Simulator, monte_carlo
from tf_nvm.core.tables import write_table
from tflite_export.flatbuffer import read_tflite

NETWORKS = {  # name -> (builder keyword arguments, task)
    "resnet8": ({}, "classification"),
    "ds_cnn": ({}, "classification"),
    "fc_autoencoder": ({}, "regression"),
    "mobilenet_v1": ({}, "classification"),
}
PRESETS = {"paper-2bit-unipolar": {"sign_split": "auto"}, "paper-4bit-bipolar": {}}


def _data(model, task, count, rng, projection):
    """Standard-normal inputs; labels: the arg-max of a fixed random projection (learnable); or the inputs."""
    shape = tuple(model.input_shape[1:])
    x = rng.standard_normal((count,) + shape).astype(np.float32)
    if task == "regression":
        return x, x
    return x, np.argmax(x.reshape(count, -1) @ projection, axis=1)


def run_one(name, preset, args, out):
    """One network in one preset: returns the table row (a dict)."""
    kwargs, task = NETWORKS[name]
    rng = np.random.default_rng(0)
    float_model = tf_nvm.models.build(name, **kwargs)
    start = time.perf_counter()
    model = tf_nvm.quantize_model(float_model, preset, init="device", **PRESETS[preset])
    projection = rng.standard_normal((int(np.prod(model.input_shape[1:])), model.output_shape[-1]))
    x_train, y_train = _data(model, task, args.train_examples, rng, projection)
    x_test, y_test = _data(model, task, args.examples, rng, projection)
    if task == "regression":
        model.compile("adam", "mse")
    else:
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=0)
    row = {"network": name, "preset": preset, "weights": int(sum(np.prod(w.shape) for w in float_model.weights
                                                                if len(w.shape) > 1)),
           "train_s": round(time.perf_counter() - start, 1)}
    prefix = os.path.join(out, f"{name}-{preset}")
    summary = tflite_export.export_tflite(model, prefix + ".tflite", x_train[:256])
    row.update(tflite_bytes=summary.model_bytes, tflm_arena_bytes=summary.arena_bytes)
    checks = tflite_export.compare(model, summary.path, x_test, ("litert", "tflm"), summary.arena_bytes + 1024)
    for runtime, result in checks.items():
        row[f"{runtime}_differing"] = f"{result.differing}/{result.outputs}"
    mapping = tflite_export.export_crossbar(model, prefix + ".mapping")
    counts = mapping.summary()
    row.update(tiles=counts["tiles"], devices=counts["devices"], device_utilisation=counts["device_utilisation"])
    ideal_sim = Simulator(mapping, SimulationConfig(batch_size=256))
    ideal = ideal_sim.run(ideal_sim.program(0), x_test)
    want = reference.evaluate(mapping, x_test)
    row["ideal_vs_evaluator_differing"] = int(sum(np.count_nonzero(ideal.codes[k] != want.codes[k])
                                                  for k in mapping.outputs))
    config = SimulationConfig(device=DeviceConfig(noise="pcm-like", t_inference=3600.0), batch_size=256)
    chips = monte_carlo(mapping, x_test, y_test if task == "classification" else None, config, args.chips,
                        task="classification" if task == "classification" else "reconstruction")
    row["pcm_1h_metric"] = chips.metric
    row["pcm_1h"] = f"{chips.mean:.4g} +- {chips.std:.2g}"
    row["ideal"] = round(float(chips.ideal_score), 4)
    cost = network_cost(mapping).summary()
    with open(summary.path, "rb") as handle:
        _, mcu = mcu_cost(read_tflite(handle.read()), "cortex-m4f", summary.arena_bytes)
    return dict(row, **units(cost, mcu), total_s=round(time.perf_counter() - start, 1))


def units(cost, mcu):
    """The cost columns of a row in readable units: crossbar chip vs the Cortex-M4F running the .tflite."""
    return {"xbar_area_mm2": round(cost["total_area_mm2"], 3),
            "xbar_energy_uj": round(cost["total_energy_nj"] / 1e3, 3), "xbar_latency_us": round(cost["latency_us"], 1),
            "mcu_macs": int(mcu["macs"]),
            "mcu_energy_uj": round(mcu["energy_nj"] / 1e3, 1), "mcu_latency_ms": round(mcu["latency_us"] / 1e3, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-examples", type=int, default=512)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--chips", type=int, default=5)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS))
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--out", default="reference-networks")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import pandas as pd

    rows = []
    for name in args.networks:
        for preset in args.presets:
            rows.append(run_one(name, preset, args, args.out))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    write_table(table, os.path.join(args.out, "reference_networks"))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
