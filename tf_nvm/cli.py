"""The ``tf-nvm`` command line.

Sub-commands:
    train RECIPE   train the float baseline and the NVM model of a recipe (over
                   its seeds) and write a run folder with metrics.json.
    presets        list the NVMSpec presets.
    recipes        list the bundled recipes.
    export RUN_OR_MODEL --tflite OUT.tflite --mapping OUT_PREFIX
                   write the int8 TFLite model and/or the crossbar mapping of a
                   trained NVM model (a run folder or a .keras file).
    inspect MAPPING
                   print a crossbar mapping as a table per layer.
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


def _export(args):
    from tf_nvm.errors import ExportError  # noqa: PLC0415
    from tf_nvm.mapping import format_table, paths  # noqa: PLC0415
    from tf_nvm.train import load_run, standardise  # noqa: PLC0415

    if not args.tflite and not args.mapping:
        raise ExportError("tf-nvm export: nothing to write. Fix: give --tflite OUT.tflite and/or --mapping PREFIX.")
    import tflite_export  # noqa: PLC0415

    model, preprocessing, dataset = load_run(args.run_or_model)
    representative = None
    if preprocessing is not None and dataset in (None, "har"):
        from tf_nvm import datasets  # noqa: PLC0415

        (x_train, _), _ = datasets.load_har(path=args.data, verbose=False)
        representative = standardise(x_train[:256], preprocessing)
        print("[tf-nvm] representative data: 256 HAR training windows standardised with preprocessing.json")
    if args.tflite:
        summary = tflite_export.export_tflite(model, args.tflite, representative, container=args.container,
                                              measure_arena=not args.no_arena)
        print(summary)
        if args.json:
            print(json.dumps(summary.to_dict(), indent=2))
    if args.mapping:
        mapping = tflite_export.export_crossbar(model, args.mapping, preprocessing=preprocessing)
        json_path, npz_path = paths(args.mapping)
        print(f"crossbar mapping: {json_path} + {npz_path}")
        print(format_table(mapping))
    return 0


def _inspect(args):
    from tf_nvm.mapping import format_table, layer_table, load  # noqa: PLC0415

    mapping = load(args.mapping)
    if args.json:
        print(json.dumps({"summary": mapping.summary(), "layers": layer_table(mapping)}, indent=2))
    else:
        print(format_table(mapping))
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
    export = sub.add_parser("export", help="write the int8 .tflite and/or the crossbar mapping of a trained model")
    export.add_argument("run_or_model", metavar="RUN_OR_MODEL",
                        help="run folder written by `tf-nvm train` (model.keras, spec.json, preprocessing.json) "
                             "or a .keras file")
    export.add_argument("--tflite", metavar="OUT.tflite", help="write the full-integer TFLite model here")
    export.add_argument("--mapping", metavar="OUT_PREFIX", help="write OUT_PREFIX.json + OUT_PREFIX.npz")
    export.add_argument("--container", choices=["int8", "int4"], default="int8",
                        help="TFLite weight container (int8: bit-exact in LiteRT; int4: half the weight flash, "
                             "1-LSB rounding differences, codes must fit -7..7)")
    export.add_argument("--no-arena", action="store_true", help="do not measure the TFLite Micro arena")
    export.add_argument("--data", help="explicit HAR data source for the representative windows")
    export.add_argument("--json", action="store_true", help="also print the TFLite summary as JSON")
    export.set_defaults(func=_export)
    inspect = sub.add_parser("inspect", help="print a crossbar mapping as a table per layer")
    inspect.add_argument("mapping", metavar="MAPPING", help="mapping prefix or its .json file")
    inspect.add_argument("--json", action="store_true", help="print the table as JSON")
    inspect.set_defaults(func=_inspect)
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
