"""``tf-nvm run EXPERIMENT``: the paper, or a user's own data and model, end to end: train, export, simulate, cost,
report (resumable)."""

import argparse
import os
from typing import Any

from tf_nvm import pipeline  # loading an experiment recipe does not import TensorFlow
from tf_nvm.cli._checks import data_path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``run`` parser."""
    parser = subparsers.add_parser("run", help="train, export, simulate and cost every variant; write a report")
    parser.add_argument("experiment", help="experiment recipe name (e.g. paper-har) or path to its .json")
    parser.add_argument("--out", help="output folder (default runs/<experiment>[-quick])")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run with the recipe's quick settings (fewer seeds, epochs and chips)")
    parser.add_argument("--force", metavar="STEP", help="redo STEP (train, export, simulate, cost) and every later one")
    parser.add_argument("--data", metavar="PATH",
                        help="data file or folder: the explicit source of the experiment's data set (the experiment "
                             "names it); for an experiment of dataset npz, the user's .npz (x_train, x_test; "
                             "y_train/y_test: labels, float targets, or none for an autoencoder)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run, check=check)
    return parser


def check(args: argparse.Namespace) -> None:
    """Checks the experiment (every field), --force and --data before TensorFlow loads."""
    pipeline.load(args.experiment)
    pipeline.check_force(args.force)
    data_path(args.data)


def run(args: argparse.Namespace) -> int:
    """Runs the experiment and prints the report folder; returns 0."""
    experiment = pipeline.load(args.experiment)
    out = args.out or os.path.join("runs", experiment.name + ("-quick" if args.quick else ""))
    folder = pipeline.run_experiment(experiment, out, quick=args.quick, force=args.force, data_path=args.data,
                                     verbose=not args.quiet)
    print(f"[tf-nvm] report: {os.path.abspath(os.path.join(folder, 'report.md'))}")
    return 0
