"""``tf-nvm simulate RUN_OR_MAPPING``: Monte Carlo chips of the analog simulator on a test set; tables and plots.

Parses the arguments and calls `tf_nvm.pipeline.evaluate.simulate` (test data, task and metrics live there).
"""

import argparse
import os
import sys
from typing import Any

from tf_nvm.cli._checks import at_least, dataset_name
from tf_nvm.core import noise_presets
from tf_nvm.core.chips import ChipRange
from tf_nvm.core.errors import SimulatorError
from tf_nvm.core.outputs import claim_output_folder
from tf_nvm.core.registry import did_you_mean
from tf_nvm.pipeline import shards as pipeline_shards
from tf_nvm.pipeline.evaluate import DEFAULT_DATASET, read_source, simulate
from tf_nvm.core.validate import parse_override

__all__ = ["add_parser", "run", "DATA_HELP", "DATASET_HELP", "SOURCE_HELP", "VARIANT_HELP"]

SOURCE_HELP = ("a `tf-nvm train` folder, a `tf-nvm run` experiment folder (with --variant when it has several), "
               "its variants/<recipe> folder, or a mapping PREFIX / PREFIX.json")  # = pipeline.evaluate.SOURCES
VARIANT_HELP = "the variant of a `tf-nvm run` experiment folder (required when it has more than one)"

DATA_HELP = ("test data file or folder: the explicit source of the data set (--dataset, else the one the run or "
             "mapping records), else a user's .npz with x_test, y_test (integer labels or float targets; without "
             "it the targets are the inputs) and optionally x_train (ADC calibration)")
DATASET_HELP = ("a registered data set (har, cifar10), or npz: --data is a user's .npz (default: the run's or "
                "mapping's data set; else npz with --data, har without)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``simulate`` parser."""
    parser = subparsers.add_parser("simulate", help="simulate programmed crossbar chips on a test set")
    parser.add_argument("source", metavar="RUN_OR_MAPPING", help=SOURCE_HELP)
    parser.add_argument("--variant", metavar="RECIPE", help=VARIANT_HELP)
    parser.add_argument("--data", metavar="PATH", help=DATA_HELP)
    parser.add_argument("--dataset", metavar="NAME", help=DATASET_HELP)
    parser.add_argument("--data-path", help=argparse_suppress())
    parser.add_argument("--task", choices=["classification", "regression", "reconstruction"],
                        help="what the outputs mean (default: the mapping's metadata, else from the targets)")
    parser.add_argument("--metric", metavar="NAME",
                        help="the primary metric: accuracy (classification), mse or mae (regression), or a "
                             "registered one (default: the task's first)")
    parser.add_argument("--chips", default="25", metavar="N|A:B",
                        help="programmed chips per setting (default 25), or chips A..B-1 as one shard of a larger "
                             "run (merge shards with `tf-nvm simulate merge DIR... --out DIR`)")
    parser.add_argument("--preset", default="ideal",
                        help="device noise preset: ideal, pcm-like, pcm-prog-x12, reram-like")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a simulation setting, e.g. adc.mode=shared, adc.bits=6, device.t_inference=3600")
    parser.add_argument("--sweep", metavar="KEY=V1,V2,...", help="one setting over several values")
    parser.add_argument("--examples", type=int, help="use only the first N test examples")
    parser.add_argument("--out", required=True, help="output folder (results.json, CSV, Markdown, PNG): missing, "
                                                     "empty or an earlier simulation's")
    parser.add_argument("--overwrite", action="store_true", help="replace what another tf_nvm command wrote in "
                                                                 "--out (a folder of other files is never replaced)")
    _add_shard_arguments(parser)
    parser.set_defaults(func=run, check=check)
    return parser


def check(args: argparse.Namespace) -> None:
    """Checks --preset, --dataset, --chips (`ChipRange.parse`: the simulator's own rule and messages) and --workers
    before TensorFlow loads (`tf_nvm.cli._checks`)."""
    if args.preset not in noise_presets.names():
        raise SimulatorError(f"--preset: unknown noise preset {args.preset!r}; known: "
                             f"{', '.join(noise_presets.names())}.{did_you_mean(args.preset, noise_presets.names())} "
                             "Fix: pass one of those.")
    dataset_name(args.dataset)
    ChipRange.parse(args.chips)
    at_least(args.workers, "--workers", 1, SimulatorError, "Fix: e.g. --workers 2.")


# ------------------------------------------------------------------ shards (tf_nvm.pipeline.shards)
def _add_shard_arguments(parser):
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="split the chips over N local processes (merged bit-identical to one process)")
    parser.add_argument("shards", nargs="*", metavar="DIR",
                        help="with RUN_OR_MAPPING `merge`: the shard folders to merge into --out")


def _shards_done(args, results):
    path = os.path.abspath(os.path.join(args.out, "results.json"))
    print(f"[tf-nvm] results: {path} ({results['task']}, {results['metric']}, chips "
          f"{':'.join(map(str, results['shard']['chips']))})")
    return 0


def _run_shards(args, config, sweep, source):
    """``simulate merge DIR...`` and ``--chips A:B`` / ``--workers N``; None when neither applies."""
    if args.source == "merge" and args.shards:
        return pipeline_shards.merge(args.shards, args.out, overwrite=args.overwrite)
    if args.shards:
        raise SimulatorError(f"tf-nvm simulate: one RUN_OR_MAPPING is simulated, got {len(args.shards) + 1} "
                             f"({args.source}, {', '.join(args.shards)}). Fix: pass one, or merge shard folders "
                             "with `tf-nvm simulate merge DIR... --out DIR`.")
    chips = ChipRange.parse(args.chips)
    if isinstance(args.workers, bool) or args.workers < 1:
        raise SimulatorError(f"tf-nvm simulate --workers: got {args.workers}; allowed an integer >= 1. Fix: e.g. "
                             "--workers 2.")
    if sweep is not None and (chips.start or args.workers > 1):
        raise SimulatorError(f"tf-nvm simulate: --sweep runs whole chip sets in one process; got --chips "
                             f"{args.chips} --workers {args.workers}. Fix: drop them, or run one setting per shard "
                             "(--set KEY=VALUE).")
    if sweep is not None or (chips.start == 0 and args.workers == 1):
        args.chips = chips.count
        return None
    kwargs = dict(config=config, dataset=args.dataset, data=args.data, examples=args.examples, task=args.task,
                  metric=args.metric, overwrite=args.overwrite)
    if args.workers > 1:
        return pipeline_shards.simulate_parallel(args.source, args.out, chips=chips, workers=args.workers,
                                                 variant=args.variant, **kwargs)
    return simulate(source, args.out, chips=chips, **kwargs)


def argparse_suppress() -> str:
    """Help text of a deprecated option (hidden)."""
    return argparse.SUPPRESS


def _setting(text):
    from tf_nvm.simulator import sweep_values  # noqa: PLC0415

    return parse_override(text, error=SimulatorError, example="adc.bits=6", owner="tf-nvm simulate: ",
                          convert=lambda raw, _text: sweep_values(raw))


def run(args: argparse.Namespace) -> int:
    """Runs the Monte Carlo (or the sweep), prints progress and a summary; returns 0."""
    from tf_nvm.simulator import DeviceConfig, SimulationConfig  # noqa: PLC0415  (tf_nvm.simulator imports TensorFlow)

    config = SimulationConfig(device=DeviceConfig(noise=args.preset))
    for text in args.set:
        key, values = _setting(text)
        if len(values) != 1:
            raise SimulatorError(f"tf-nvm simulate: --set {text!r} holds {len(values)} values. Fix: use --sweep "
                                 "for several values.")
        config = config.replace_path(key, values[0])
    sweep = _setting(args.sweep) if args.sweep else None
    if args.source == "merge" and args.shards:
        return _shards_done(args, _run_shards(args, config, sweep, None))
    claim_output_folder(args.out, "simulate", args.overwrite)  # before the source is read (tf_nvm.core.outputs)
    source = read_source(args.source, args.variant)
    if args.data_path is not None:  # the old spelling: --data-path PATH [--data NAME]
        print("[tf-nvm] warning: --data-path is deprecated; use --data PATH (with --dataset NAME for a registered "
              "data set).", file=sys.stderr)
        args.dataset = args.dataset or args.data or source.dataset or DEFAULT_DATASET
        args.data = args.data_path
    shard_results = _run_shards(args, config, sweep, source)
    if shard_results is not None:
        return _shards_done(args, shard_results)
    results = simulate(source, args.out, config=config, chips=args.chips, dataset=args.dataset,
                       data=args.data, examples=args.examples, sweep=sweep, task=args.task, metric=args.metric,
                       overwrite=args.overwrite)
    print(f"[tf-nvm] results: {os.path.abspath(os.path.join(args.out, 'results.json'))} ({results['task']}, "
          f"{results['metric']})", file=sys.stdout)
    return 0
