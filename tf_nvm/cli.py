"""The ``tf-nvm`` command line.

Sub-commands:
    train RECIPE   train the float baseline and the NVM model of a recipe (over
                   its seeds) and write a run folder with metrics.json.
    presets        list the NVMSpec presets.
    recipes        list the bundled recipes.
"""

import argparse
import json
import os
import sys

__all__ = ["main"]


def _train(args):
    from tf_nvm import recipes  # noqa: PLC0415
    from tf_nvm.train import run_recipe  # noqa: PLC0415

    recipe = recipes.load(args.recipe)
    changes = {}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if changes:
        recipe = recipe.replace(**changes)
    out = args.out or os.path.join("runs", recipe.name)
    metrics = run_recipe(recipe, out, seeds=args.seeds, data_path=args.data, verbose=0 if args.quiet else 2)
    summary = {k: metrics[k] for k in ("recipe", "test_accuracy", "float_test_accuracy",
                                       "test_accuracy_summary", "float_test_accuracy_summary")}
    print(json.dumps(summary, indent=2))
    print(f"[tf-nvm] run folder: {os.path.abspath(out)}")
    return 0


def _presets(args):
    from tf_nvm import presets  # noqa: PLC0415

    for name, description in presets.describe().items():
        print(f"{name:24s} {description}")
    return 0


def _recipes(args):
    from tf_nvm import recipes  # noqa: PLC0415

    for name in recipes.names():
        print(f"{name:24s} {recipes.load(name).description or ''}")
    return 0


def build_parser():
    """The argparse parser of ``tf-nvm``."""
    parser = argparse.ArgumentParser(prog="tf-nvm", description="Train DNNs for analog NVM crossbars.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a recipe's float baseline and NVM model")
    train.add_argument("recipe", help="recipe name (see `tf-nvm recipes`) or path to a recipe .json")
    train.add_argument("--out", help="run folder (default runs/<recipe>)")
    train.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the recipe's)")
    train.add_argument("--epochs", type=int, help="override the recipe's epochs")
    train.add_argument("--data", help="explicit data source (file or folder) for the data-set loader")
    train.add_argument("--quiet", action="store_true", help="no Keras progress output")
    train.set_defaults(func=_train)
    sub.add_parser("presets", help="list NVMSpec presets").set_defaults(func=_presets)
    sub.add_parser("recipes", help="list bundled recipes").set_defaults(func=_recipes)
    return parser


def main(argv=None):
    """Entry point of ``tf-nvm``; returns the exit status."""
    args = build_parser().parse_args(argv)
    import tf_nvm  # noqa: F401,PLC0415  (legacy-Keras mode before TensorFlow loads)
    from tf_nvm.errors import TfNvmError  # noqa: PLC0415

    try:
        return args.func(args)
    except TfNvmError as err:
        print(f"tf-nvm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
