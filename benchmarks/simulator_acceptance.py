"""Simulator acceptance on trained HAR runs: exactness, one shared ADC vs exact vs per-layer, PCM chips over time.

For each run folder (``tf-nvm train``): the crossbar mapping is built from its
model, and on the whole HAR test set

* the ideal simulation (every source off, exact converters) is compared with
  the exact evaluator (`tf_nvm.mapping.reference`): differing int8 outputs;
* accuracy with ADCs ``exact``, ``shared`` (one design for every tile of every
  layer: full range, and one output range) and ``per-layer`` (ranges calibrated
  per layer on 256 training windows), at the given ADC bits;
* PCM-like devices (aihwkit's constants) at t_inference = 1 hour and 1 day:
  accuracy mean ± std over ``--chips`` programmed chips (global drift
  compensation on).

Run: ``python benchmarks/simulator_acceptance.py runs/har-* [--chips 25] [--out DIR]``; writes
``DIR/simulator_acceptance.{json,csv,md}``.
"""

import argparse
import os

import numpy as np

import tf_nvm  # first: legacy-Keras mode
from tf_nvm.core.atomic import write_json_atomic
from tf_nvm.mapping import reference
from tf_nvm.experiments.runs import read_run
from tf_nvm.simulator import ADCConfig, DeviceConfig, SimulationConfig, Simulator, monte_carlo
from tf_nvm.core.tables import write_table
from tflite_export import build_mapping

ADC_SETTINGS = {
    "exact": ADCConfig(mode="exact"),
    "shared full-range 8 bit": ADCConfig(mode="shared", bits=8),
    "shared full-range 10 bit": ADCConfig(mode="shared", bits=10),
    "shared 1 output range 8 bit": ADCConfig(mode="shared", bits=8, shared_output_ranges=1.0),
    "per-layer 8 bit": ADCConfig(mode="per-layer", bits=8),
}


def main(argv=None):
    import pandas as pd  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--chips", type=int, default=25)
    parser.add_argument("--out", default="runs/simulator_acceptance")
    args = parser.parse_args(argv)
    (x_train_raw, _), (x_test_raw, y_test) = tf_nvm.datasets.load_har(verbose=False)
    rows = []
    for run in args.runs:
        folder = read_run(run)
        name = os.path.basename(os.path.normpath(run))
        mapping = build_mapping(folder.model, preprocessing=folder.preprocessing)
        x, calibration = folder.preprocessing.apply(x_test_raw), folder.preprocessing.apply(x_train_raw[:256])
        want = reference.evaluate(mapping, x).codes[mapping.outputs[0]]
        ideal = Simulator(mapping, SimulationConfig(batch_size=512))
        got = ideal.run(ideal.program(0), x).codes[mapping.outputs[0]]
        differing = int(np.count_nonzero(got - want))
        print(f"{name}: ideal simulation vs exact evaluator: {differing}/{got.size} int8 outputs differ", flush=True)
        row = {"run": name, "ideal_vs_evaluator_differing": differing, "outputs": int(got.size)}
        for label, adc in ADC_SETTINGS.items():
            result = monte_carlo(mapping, x, y_test, SimulationConfig(adc=adc, batch_size=512), chips=1,
                                 calibration=calibration)
            row[f"acc {label}"] = result.mean
            print(f"  ADC {label}: accuracy {100 * result.mean:.2f} %", flush=True)
        for t, label in ((3600.0, "1 h"), (86400.0, "1 day")):
            config = SimulationConfig(device=DeviceConfig(noise="pcm-like", t_inference=t), batch_size=512)
            result = monte_carlo(mapping, x, y_test, config, chips=args.chips)
            row[f"pcm {label} mean"], row[f"pcm {label} std"], row[f"pcm {label} min"] = result.mean, result.std, \
                result.min
            print(f"  PCM-like at {label}: {100 * result.mean:.2f} % ± {100 * result.std:.2f} (min "
                  f"{100 * result.min:.2f} %) over {args.chips} chips; ideal {100 * result.ideal_accuracy:.2f} %",
                  flush=True)
        rows.append(row)
    os.makedirs(args.out, exist_ok=True)
    table = pd.DataFrame(rows)
    write_table(table, os.path.join(args.out, "simulator_acceptance"))
    write_json_atomic(os.path.join(args.out, "simulator_acceptance.json"), rows)
    print(f"written {args.out}/simulator_acceptance.{{csv,md,json}}")


if __name__ == "__main__":
    main()
