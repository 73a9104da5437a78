"""``tf-nvm export RUN_OR_MODEL``: write the int8 TFLite model and/or the crossbar mapping of a trained model."""

import json
import sys

from tf_nvm.errors import ExportError

__all__ = ["add_parser", "run", "REPRESENTATIVE_WINDOWS"]

REPRESENTATIVE_WINDOWS = 256
"""HAR training windows used as the TFLite converter's representative data."""


def add_parser(subparsers):
    """Adds the ``export`` parser."""
    parser = subparsers.add_parser("export", help="write the int8 .tflite and/or the crossbar mapping of a trained "
                                                  "model")
    parser.add_argument("run_or_model", metavar="RUN_OR_MODEL",
                        help="run folder written by `tf-nvm train` (model.keras, spec.json, preprocessing.json) "
                             "or a .keras file")
    parser.add_argument("--tflite", metavar="OUT.tflite", help="write the full-integer TFLite model here")
    parser.add_argument("--mapping", metavar="OUT_PREFIX",
                        help="write OUT_PREFIX.json and its arrays OUT_PREFIX.<hash>.npz")
    parser.add_argument("--container", choices=["int8", "int4"], default="int8",
                        help="TFLite weight container (int8: bit-exact in LiteRT; int4: half the weight flash, "
                             "1-LSB rounding differences, codes must fit -7..7)")
    parser.add_argument("--no-arena", action="store_true", help="do not measure the TFLite Micro arena (nor run "
                                                                "the runtime check, which needs TFLite Micro)")
    parser.add_argument("--no-check", action="store_true",
                        help="do not run the .tflite in LiteRT and TFLite Micro (by default the export says which "
                             "runtime the model matches bit for bit, its spec's runtime, and what differs on the "
                             "other)")
    parser.add_argument("--data", help="explicit HAR data source for the representative windows")
    parser.add_argument("--json", action="store_true", help="also print the TFLite summary as JSON")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Exports the run's model as asked; returns 0.

    Raises:
        ExportError: neither ``--tflite`` nor ``--mapping`` given (or the export fails).
        RunFolderError: the run folder cannot be read.
    """
    if not args.tflite and not args.mapping:
        raise ExportError("tf-nvm export: nothing to write. Fix: give --tflite OUT.tflite and/or --mapping PREFIX.")
    import tflite_export  # noqa: PLC0415  (imports TensorFlow)
    from tf_nvm.mapping import format_table, paths  # noqa: PLC0415
    from tf_nvm.runs import read_run  # noqa: PLC0415

    run_folder = read_run(args.run_or_model)
    if run_folder.preprocessing is None:
        print(f"[tf-nvm] warning: {args.run_or_model} has no preprocessing.json (a bare .keras model): the "
              "exports expect inputs that are already standardised, and the mapping records no input "
              "standardisation. Pass the run folder written by `tf-nvm train` to keep it.", file=sys.stderr)
    representative = None
    if args.tflite and run_folder.preprocessing is not None and run_folder.dataset in (None, "har"):
        from tf_nvm import datasets  # noqa: PLC0415

        (x_train, _), _ = datasets.load_har(path=args.data, verbose=False)
        representative = run_folder.preprocessing.apply(x_train[:REPRESENTATIVE_WINDOWS])
        print(f"[tf-nvm] representative data: {REPRESENTATIVE_WINDOWS} HAR training windows standardised with "
              "preprocessing.json")
    if args.tflite:
        summary = tflite_export.export_tflite(run_folder.model, args.tflite, representative, container=args.container,
                                              measure_arena=not args.no_arena,
                                              check_runtimes=not (args.no_arena or args.no_check))
        print(summary)
        if args.json:
            print(json.dumps(summary.to_dict(), indent=2))
    if args.mapping:
        mapping = tflite_export.export_crossbar(run_folder.model, args.mapping, preprocessing=run_folder.preprocessing)
        json_path, npz_path = paths(args.mapping)
        print(f"crossbar mapping: {json_path} + {npz_path}")
        print(format_table(mapping))
    return 0
