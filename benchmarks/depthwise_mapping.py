"""Benchmark: DS-CNN and MobileNetV1-0.25 devices, tiles, utilisation before/after the compact depthwise mapping.

Before (mapping schema 1): a DepthwiseConv2D was one block-diagonal ``(k*k*C) x C`` matrix tiled like any
matrix, so every zero off the channel blocks was a programmed device. After (schema 2): rows channel-major,
``g = floor(tile rows / (k*k))`` channels per crossbar, only the ``ceil(C / g)`` diagonal tiles programmed
(`tf_nvm.mapping.tiling.plan_diagonal_tiles`). The "before" mapping is the "after" one with every depthwise
layer put back on the grid, exactly what the schema-1 exporter wrote (`as_grid`).

For each network (`tf_nvm.models.ds_cnn`, `tf_nvm.models.mobilenet_v1` at 96x96, alpha 0.25, both as
published) and preset (``paper-4bit-bipolar``; ``paper-2bit-unipolar`` with ``sign_split="auto"``): quantize
(untrained, ``init="device"``: the counts depend only on the shapes), `tflite_export.build_mapping`, and
`Mapping.summary()` of both layouts, with the cost model's area (isaac-32nm, fixed macros and arrays fitted to
their use), energy and latency per inference. With ``--check N`` (default 16) it also runs N random on-grid inputs
through the Keras model (LiteRT rounding), the exact evaluator of both layouts and the ideal simulator of the
compact one, and counts differing int8 outputs (all must be 0).

Run::

    PYTHONPATH=. python3 benchmarks/depthwise_mapping.py [--check 16] [--networks ds_cnn mobilenet_v1] [--out DIR]  # 2-6 min
"""

import argparse
import dataclasses
import math
import os
import time

import numpy as np
import pandas as pd

import tf_nvm  # first: legacy-Keras mode
from tf_nvm.cost import get_technology, network_cost
from tf_nvm.mapping import levels_from_codes, plan_tiles, reference
from tf_nvm.mapping.tiling import channel_major_rows
from tf_nvm.simulator import SimulationConfig, Simulator
from tf_nvm.core.tables import write_table
from tflite_export import build_mapping

PRESETS = {"paper-4bit-bipolar": {}, "paper-2bit-unipolar": {"sign_split": "auto"}}
NETWORKS = ("ds_cnn", "mobilenet_v1")


def as_grid(mapping):
    """``mapping`` with every block-diagonal depthwise layer on the grid (kernel-position-major rows, all tiles)."""
    layers = []
    for layer in mapping.layers:
        if getattr(layer, "channels_per_tile", None) is not None:
            codes = layer.codes[np.argsort(channel_major_rows(math.prod(layer.kernel_size), layer.in_channels))]
            layer = dataclasses.replace(layer, channels_per_tile=None, codes=codes,
                                        levels=levels_from_codes(codes, mapping.spec),
                                        tiles=plan_tiles(layer.rows, layer.cols, mapping.spec))
        layers.append(layer)
    return dataclasses.replace(mapping, layers=tuple(layers))


def _row(network, preset, layout, mapping):
    summary = mapping.summary()
    depthwise = [layer for layer in mapping.crossbar_layers if layer.op == "depthwise_conv2d"]
    row = {"network": network, "preset": preset, "layout": layout,
            "dw_layers": len(depthwise), "dw_tiles": sum(len(layer.tiles) for layer in depthwise),
            "dw_devices": sum(layer.devices for layer in depthwise),
            "dw_weights": sum(layer.weights for layer in depthwise),
            "tiles": summary["tiles"], "devices": summary["devices"], "weights": summary["weights"],
            "device_util_%": round(100 * summary["device_utilisation"], 1), "adc_columns": summary["adc_columns"]}
    for sizing in ("fixed", "fit"):  # isaac-32nm; "fixed": every tile a full macro, "fit": arrays sized to use
        cost = network_cost(mapping, get_technology("isaac-32nm").replace(array_sizing=sizing))
        row[f"area_mm2_{sizing}"] = round(cost.area_um2 * 1e-6, 3)
    row["energy_nj"] = round(cost.energy_pj * 1e-3, 1)
    row["latency_us"] = round(cost.latency_ns * 1e-3, 1)
    return row


def _differing(model, mappings, count):
    """Differing output codes: Keras vs the evaluator of each layout, ideal simulator vs the compact evaluator."""
    spec = tf_nvm.model_spec(model)
    rng = np.random.default_rng(0)
    x = (rng.integers(-128, 128, (count,) + tuple(model.input_shape[1:])) * spec.activation_step).astype(np.float32)
    keras_out = model.predict(x, verbose=0)
    result = {}
    for layout, mapping in mappings.items():
        got = reference.evaluate(mapping, x)
        step = got.steps[mapping.outputs[0]]
        result[f"keras_vs_{layout}"] = int(np.count_nonzero(np.rint(keras_out / step) != got.codes[mapping.outputs[0]]))
    compact = mappings["after"]
    sim = Simulator(compact, SimulationConfig(batch_size=16))
    ideal = sim.run(sim.program(0), x).codes[compact.outputs[0]]
    result["ideal_sim_vs_evaluator"] = int(np.count_nonzero(ideal != reference.evaluate(compact, x).codes[
        compact.outputs[0]]))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--check", type=int, default=16, help="random inputs for the exactness check (0: skip)")
    parser.add_argument("--out", help="folder for depthwise_mapping.{csv,md} and exactness.{csv,md} (optional)")
    args = parser.parse_args()
    rows, checks = [], []
    for network in args.networks:
        for preset in args.presets:
            start = time.perf_counter()
            tf_nvm.keras.backend.keras.utils.set_random_seed(0)
            model = tf_nvm.quantize_model(tf_nvm.models.build(network), preset, init="device", **PRESETS[preset])
            after = build_mapping(model)
            before = as_grid(after)
            rows += [_row(network, preset, "before (grid)", before), _row(network, preset, "after (diagonal)", after)]
            if args.check:
                checks.append({"network": network, "preset": preset, "examples": args.check,
                               **_differing(model, {"before": before, "after": after}, args.check)})
            print(f"{network} {preset}: {time.perf_counter() - start:.0f} s", flush=True)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(rows).to_string(index=False))
        if checks:
            print(pd.DataFrame(checks).to_string(index=False))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        write_table(pd.DataFrame(rows), os.path.join(args.out, "depthwise_mapping"))
        if checks:
            write_table(pd.DataFrame(checks), os.path.join(args.out, "exactness"))
        print(f"tables written to {args.out}", flush=True)


if __name__ == "__main__":
    main()
