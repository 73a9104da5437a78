"""``tf-nvm train RECIPE``: train a recipe's float baseline and NVM model over its seeds; write a run folder."""

import argparse
import json
import os
from typing import Any

from tf_nvm.cli._checks import data_path
from tf_nvm.experiments import recipes

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``train`` parser."""
    parser = subparsers.add_parser("train", help="train a recipe's float baseline and NVM model")
    parser.add_argument("recipe", help="recipe name (see `tf-nvm recipes`) or path to a recipe .json")
    parser.add_argument("--out", help="run folder (default runs/<recipe>)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the recipe's)")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--data", metavar="PATH", help="data file or folder: the explicit source of the recipe's data "
                                                       "set (the recipe names the data set)")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress output")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier run in the run folder (removed first, seed folders included)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run of the same recipe in the run folder: finished seeds "
                             "are reused, the others trained")
    parser.set_defaults(func=run, check=check)
    return parser


def _recipe(args: argparse.Namespace) -> Any:
    """The recipe (with ``--epochs``), every field and ``--seeds`` checked; does not import TensorFlow."""
    recipe = recipes.load(args.recipe)
    if args.epochs is not None:
        recipe = recipe.replace(epochs=args.epochs)
    if args.seeds is not None:
        recipes.check_seeds(args.seeds, "--seeds", "Fix: e.g. --seeds 0 1 2.")
    return recipe


def check(args: argparse.Namespace) -> None:
    """Checks the recipe, --epochs, --seeds and --data before TensorFlow loads."""
    _recipe(args)
    data_path(args.data)


def run(args: argparse.Namespace) -> int:
    """Trains and prints the test metric summary (accuracy, or MSE for regression) and the run folder; returns 0."""
    recipe = _recipe(args)
    from tf_nvm.experiments.train import run_recipe  # noqa: PLC0415  (imports TensorFlow)

    out = args.out or os.path.join("runs", recipe.name)
    metrics = run_recipe(recipe, out, seeds=args.seeds, data_path=args.data, verbose=0 if args.quiet else 2,
                         overwrite=args.overwrite, resume=args.resume)
    metric = metrics.get("metric", "accuracy")  # mse for a recipe of task regression or reconstruction
    summary = {k: metrics[k] for k in ("recipe", "task", "metric", f"test_{metric}", f"float_test_{metric}",
                                       f"test_{metric}_summary", f"float_test_{metric}_summary") if k in metrics}
    print(json.dumps(summary, indent=2))
    print(f"[tf-nvm] run folder: {os.path.abspath(out)}")
    return 0
