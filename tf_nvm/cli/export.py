"""``tf-nvm export RUN_OR_MODEL``: write the int8 TFLite model and/or the crossbar mapping of a trained model."""

import argparse
import json
import sys
from typing import Any

from tf_nvm.cli._checks import data_path, dataset_name, existing_path
from tf_nvm.core.errors import ExportError
from tf_nvm.experiments.runs import read_run
from tf_nvm.mapping import format_table, paths
from tf_nvm.pipeline import evaluate

__all__ = ["add_parser", "run", "REPRESENTATIVE_WINDOWS"]

REPRESENTATIVE_WINDOWS = 256
"""Training examples (standardised) used as the TFLite converter's representative data."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
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
    parser.add_argument("--data", metavar="PATH",
                        help="training data: the explicit source of the run's data set (--dataset), else a user's "
                             ".npz whose x_train gives the representative data and, for a model without "
                             "preprocessing.json, the input standardisation the mapping carries")
    parser.add_argument("--dataset", metavar="NAME",
                        help="a registered data set (har, cifar10) or npz (--data is a user's .npz; default: the "
                             "run's data set, else npz with --data)")
    parser.add_argument("--standardisation", metavar="FILE.json",
                        help="the input standardisation of a bare .keras model: {\"input_mean\": [...], "
                             "\"input_std\": [...]} (raw units, one value per input channel)")
    parser.add_argument("--task", choices=["classification", "regression", "reconstruction"],
                        help="what the outputs mean, recorded in the mapping (default: from the model's loss or "
                             "softmax output; else decided by simulate from the targets)")
    parser.add_argument("--json", action="store_true", help="also print the TFLite summary as JSON")
    parser.set_defaults(func=run, check=check)
    return parser


def check(args: argparse.Namespace) -> None:
    """Checks that there is something to write, the input paths and --dataset before TensorFlow loads.

    Raises:
        ExportError: neither ``--tflite`` nor ``--mapping`` given, or RUN_OR_MODEL / --standardisation missing.
        DatasetNotFoundError: --data missing.
        UnknownNameError: unknown --dataset.
    """
    if not args.tflite and not args.mapping:
        raise ExportError("tf-nvm export: nothing to write. Fix: give --tflite OUT.tflite and/or --mapping PREFIX.")
    existing_path(args.run_or_model, "RUN_OR_MODEL", "a run folder written by `tf-nvm train` or a .keras model file",
                  ExportError, "Fix: pass the folder written by `tf-nvm train` or the model's .keras file.")
    existing_path(args.standardisation, "--standardisation", "a JSON file of input_mean and input_std", ExportError,
                  "Fix: pass the path of that file.")
    dataset_name(args.dataset)
    data_path(args.data)


def run(args: argparse.Namespace) -> int:
    """Exports the run's model as asked; returns 0.

    Raises:
        ExportError: the export fails (`check` has run: there is something to write).
        RunFolderError: the run folder cannot be read.
    """
    import tflite_export  # noqa: PLC0415  (imports TensorFlow)

    run_folder = read_run(args.run_or_model)
    plan = evaluate.export_inputs(run_folder, data=args.data, dataset=args.dataset,
                                  standardisation=args.standardisation, representative=bool(args.tflite),
                                  examples=REPRESENTATIVE_WINDOWS)
    for line in plan.notes:
        print(f"[tf-nvm] {line}", file=sys.stderr if line.startswith("warning") else sys.stdout)
    preprocessing, representative = plan.standardisation, plan.representative
    if args.tflite:
        summary = tflite_export.export_tflite(run_folder.model, args.tflite, representative, container=args.container,
                                              measure_arena=not args.no_arena,
                                              check_runtimes=not (args.no_arena or args.no_check))
        print(summary)
        if args.json:
            print(json.dumps(summary.to_dict(), indent=2))
    if args.mapping:
        metadata = evaluate.export_metadata(run_folder.model, args.task or plan.task, plan.dataset)
        mapping = tflite_export.export_crossbar(run_folder.model, args.mapping, preprocessing=preprocessing,
                                                metadata=metadata)
        json_path, npz_path = paths(args.mapping)
        print(f"crossbar mapping: {json_path} + {npz_path}")
        print(format_table(mapping))
    return 0
