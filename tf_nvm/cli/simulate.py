"""``tf-nvm simulate RUN_OR_MAPPING``: Monte Carlo chips of the analog simulator on a test set; tables and plots.

Parses the arguments and calls `tf_nvm.pipeline.evaluate.simulate` (test data, task and metrics live there).
"""

import sys

from tf_nvm.errors import SimulatorError

__all__ = ["add_parser", "run", "DATA_HELP", "DATASET_HELP"]

DATA_HELP = ("test data file or folder: the explicit source of the data set (--dataset, else the one the run or "
             "mapping records), else a user's .npz with x_test, y_test (integer labels or float targets; without "
             "it the targets are the inputs) and optionally x_train (ADC calibration)")
DATASET_HELP = ("a registered data set (har, cifar10), or npz: --data is a user's .npz (default: the run's or "
                "mapping's data set; else npz with --data, har without)")


def add_parser(subparsers):
    """Adds the ``simulate`` parser."""
    parser = subparsers.add_parser("simulate", help="simulate programmed crossbar chips on a test set")
    parser.add_argument("source", metavar="RUN_OR_MAPPING",
                        help="run folder written by `tf-nvm train`, or a mapping PREFIX / PREFIX.json")
    parser.add_argument("--data", metavar="PATH", help=DATA_HELP)
    parser.add_argument("--dataset", metavar="NAME", help=DATASET_HELP)
    parser.add_argument("--data-path", help=argparse_suppress())
    parser.add_argument("--task", choices=["classification", "regression", "reconstruction"],
                        help="what the outputs mean (default: the mapping's metadata, else from the targets)")
    parser.add_argument("--metric", metavar="NAME",
                        help="the primary metric: accuracy (classification), mse or mae (regression), or a "
                             "registered one (default: the task's first)")
    parser.add_argument("--chips", type=int, default=25, help="programmed chips per setting (default 25)")
    parser.add_argument("--preset", default="ideal",
                        help="device noise preset: ideal, pcm-like, pcm-prog-x12, reram-like")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a simulation setting, e.g. adc.mode=shared, adc.bits=6, device.t_inference=3600")
    parser.add_argument("--sweep", metavar="KEY=V1,V2,...", help="one setting over several values")
    parser.add_argument("--examples", type=int, help="use only the first N test examples")
    parser.add_argument("--out", required=True, help="output folder (results.json, CSV, Markdown, PNG)")
    parser.set_defaults(func=run)
    return parser


def argparse_suppress():
    """Help text of a deprecated option (hidden)."""
    import argparse  # noqa: PLC0415

    return argparse.SUPPRESS


def _setting(text):
    from tf_nvm.simulator import sweep_values  # noqa: PLC0415

    if "=" not in text:
        raise SimulatorError(f"tf-nvm simulate: setting {text!r} is not KEY=VALUE. Fix: e.g. --set adc.bits=6.")
    key, value = text.split("=", 1)
    values = sweep_values(value)
    return key.strip(), values


def run(args):
    """Runs the Monte Carlo (or the sweep), prints progress and a summary; returns 0."""
    import os  # noqa: PLC0415

    from tf_nvm.pipeline.evaluate import DEFAULT_DATASET, read_source, simulate  # noqa: PLC0415
    from tf_nvm.simulator import DeviceConfig, SimulationConfig  # noqa: PLC0415

    config = SimulationConfig(device=DeviceConfig(noise=args.preset))
    for text in args.set:
        key, values = _setting(text)
        if len(values) != 1:
            raise SimulatorError(f"tf-nvm simulate: --set {text!r} holds {len(values)} values. Fix: use --sweep "
                                 "for several values.")
        config = config.replace_path(key, values[0])
    sweep = _setting(args.sweep) if args.sweep else None
    source = read_source(args.source)
    if args.data_path is not None:  # the old spelling: --data-path PATH [--data NAME]
        print("[tf-nvm] warning: --data-path is deprecated; use --data PATH (with --dataset NAME for a registered "
              "data set).", file=sys.stderr)
        args.dataset = args.dataset or args.data or source.dataset or DEFAULT_DATASET
        args.data = args.data_path
    results = simulate(source, args.out, config=config, chips=args.chips, dataset=args.dataset,
                       data=args.data, examples=args.examples, sweep=sweep, task=args.task, metric=args.metric)
    print(f"[tf-nvm] results: {os.path.abspath(os.path.join(args.out, 'results.json'))} ({results['task']}, "
          f"{results['metric']})", file=sys.stdout)
    return 0
