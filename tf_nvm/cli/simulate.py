"""``tf-nvm simulate RUN_OR_MAPPING``: Monte Carlo chips of the analog simulator on a test set; tables and plots."""

import json
import os
import sys

from tf_nvm.errors import SimulatorError

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Adds the ``simulate`` parser."""
    parser = subparsers.add_parser("simulate", help="simulate programmed crossbar chips on a test set")
    parser.add_argument("source", metavar="RUN_OR_MAPPING",
                        help="run folder written by `tf-nvm train`, or a mapping PREFIX / PREFIX.json")
    parser.add_argument("--data", choices=["har", "cifar10"],
                        help="test set (default: the run's data set, else har)")
    parser.add_argument("--data-path", help="explicit data source (file or folder) for the data-set loader")
    parser.add_argument("--chips", type=int, default=25, help="programmed chips per setting (default 25)")
    parser.add_argument("--preset", default="ideal", help="device noise preset: ideal, pcm-like, reram-like")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a simulation setting, e.g. adc.mode=shared, adc.bits=6, device.t_inference=3600")
    parser.add_argument("--sweep", metavar="KEY=V1,V2,...", help="one setting over several values")
    parser.add_argument("--examples", type=int, help="use only the first N test examples")
    parser.add_argument("--out", required=True, help="output folder (results.json, CSV, Markdown, PNG)")
    parser.set_defaults(func=run)
    return parser


def _setting(text):
    from tf_nvm.simulator import sweep_values  # noqa: PLC0415

    if "=" not in text:
        raise SimulatorError(f"tf-nvm simulate: setting {text!r} is not KEY=VALUE. Fix: e.g. --set adc.bits=6.")
    key, value = text.split("=", 1)
    values = sweep_values(value)
    return key.strip(), values


def _inputs(args):
    """(mapping, standardised test inputs, labels, data-set name, 256 standardised training inputs)."""
    import numpy as np  # noqa: PLC0415

    from tf_nvm import datasets, mapping as mapping_io  # noqa: PLC0415

    if os.path.isdir(args.source):
        import tflite_export  # noqa: PLC0415  (application layer)
        from tf_nvm.runs import read_run  # noqa: PLC0415

        folder = read_run(args.source)
        mapping = tflite_export.build_mapping(folder.model, preprocessing=folder.preprocessing)
        dataset = args.data or folder.dataset or "har"
    else:
        mapping = mapping_io.load(args.source)
        dataset = args.data or "har"
    if mapping.input.mean is None:
        raise SimulatorError(f"tf-nvm simulate: {args.source} records no input standardisation, so raw test data "
                             "cannot be fed to it. Fix: pass the run folder written by `tf-nvm train`, or a mapping "
                             "exported from it.")
    loader = datasets.load_cifar10 if dataset == "cifar10" else datasets.load_har
    (x_train, _), (x_test, y_test) = loader(path=args.data_path, verbose=False)
    if args.examples:
        x_test, y_test = x_test[:args.examples], y_test[:args.examples]
    scale = 255.0 if dataset == "cifar10" else 1.0
    x = mapping.input.standardise(x_test.astype(np.float32) / scale)
    # per-layer ADC ranges are calibrated on training windows, never on the test set they are scored on
    calibration = mapping.input.standardise(x_train[:256].astype(np.float32) / scale)
    return mapping, x, np.asarray(y_test).astype(np.int64), dataset, calibration


def run(args):
    """Runs the Monte Carlo (or the sweep), prints progress and a summary; returns 0."""
    from tf_nvm.atomic import write_json_atomic  # noqa: PLC0415
    from tf_nvm.simulator import (DeviceConfig, SimulationConfig, monte_carlo, sweep,  # noqa: PLC0415
                                  write_sweep)
    from tf_nvm.tables import write_table  # noqa: PLC0415

    config = SimulationConfig(device=DeviceConfig(noise=args.preset))
    for text in args.set:
        key, values = _setting(text)
        if len(values) != 1:
            raise SimulatorError(f"tf-nvm simulate: --set {text!r} holds {len(values)} values. Fix: use --sweep "
                                 "for several values.")
        config = config.replace_path(key, values[0])
    mapping, x, y, dataset, calibration = _inputs(args)
    print(f"[tf-nvm] simulating {args.source} on {len(x)} {dataset} test examples, {args.chips} chip(s), "
          f"noise {args.preset}", flush=True)
    results = {"source": os.path.abspath(args.source), "dataset": dataset, "examples": len(x),
               "config": config.to_dict(), "mapping": mapping.summary()}
    os.makedirs(args.out, exist_ok=True)
    if args.sweep:
        key, values = _setting(args.sweep)
        table = sweep(mapping, x, y, key, values, config, args.chips, calibration, verbose=True)
        files = write_sweep(table, key, args.out, f"{os.path.basename(os.path.normpath(args.source))}: accuracy vs "
                                                  f"{key} ({args.chips} chips, {args.preset})")
        results.update(sweep=key, rows=json.loads(table.to_json(orient="records")), files=files)
    else:
        import pandas as pd  # noqa: PLC0415

        result = monte_carlo(mapping, x, y, config, args.chips, calibration, verbose=True)
        chips = pd.DataFrame({"chip": range(len(result.accuracies)), "accuracy": result.accuracies,
                              "agreement_with_ideal": result.agreement})
        csv_path, md_path = write_table(chips, os.path.join(args.out, "chips"))
        results.update(summary=result.row(), chips=list(result.accuracies), files={"csv": csv_path,
                                                                                    "markdown": md_path})
        print(f"[tf-nvm] accuracy {100 * result.mean:.2f} % ± {100 * result.std:.2f} (min {100 * result.min:.2f} %) "
              f"over {len(result.accuracies)} chips; ideal {100 * result.ideal_accuracy:.2f} %", flush=True)
    write_json_atomic(os.path.join(args.out, "results.json"), results)
    print(f"[tf-nvm] results: {os.path.abspath(os.path.join(args.out, 'results.json'))}", file=sys.stdout)
    return 0
