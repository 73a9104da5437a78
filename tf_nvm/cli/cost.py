"""``tf-nvm cost RUN_OR_MAPPING``: area, energy and latency of the crossbar mapping beside the MCU baseline.

Writes to ``--out DIR`` (every file atomically): ``summary`` (one row per
scenario), ``components`` (per scenario and component), ``layers`` (per layer
and component, as mapped), ``unipolar_vs_bipolar`` (beside the paper's
67 % / 40 %), ``shared_vs_per_layer``, and with ``--tflite`` ``mcu_ops`` and
``crossbar_vs_mcu``, each as CSV + Markdown; PNG stacked bars
``area_by_component.png``, ``energy_by_component.png`` and
``crossbar_vs_mcu.png``; ``results.json``.

A mapping (PREFIX or PREFIX.json) is read without TensorFlow; a run folder is
mapped first (imports TensorFlow). ``--tflite`` parses the flatbuffer with
``tflite_export`` and measures the TFLite Micro arena in a child process when
the ``tflite-micro`` package is installed (``--arena-bytes N`` gives it
instead).
"""

import argparse
import sys
from typing import Any

from tf_nvm.cli._checks import dataset_name
from tf_nvm.cli.simulate import DATA_HELP, DATASET_HELP, SOURCE_HELP, VARIANT_HELP
from tf_nvm.pipeline.costing import cost_source

__all__ = ["add_parser", "run"]

def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``cost`` parser."""
    parser = subparsers.add_parser("cost", help="hardware cost (area, energy, latency) of the crossbar mapping and "
                                                "the MCU baseline")
    parser.add_argument("source", metavar="RUN_OR_MAPPING", help=SOURCE_HELP)
    parser.add_argument("--variant", metavar="RECIPE", help=VARIANT_HELP)
    parser.add_argument("--tflite", metavar="MODEL", help="the int8 .tflite of the same model (MCU baseline; "
                                                         "default: a run variant's own export)")
    parser.add_argument("--tech", metavar="NAME_OR_FILE",
                        help="technology preset (isaac-32nm, murmann-median-adc, murmann-best-adc) or JSON file "
                             "(default: a run variant's experiment technology, else isaac-32nm)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a technology key (e.g. adc_share_columns=4, array_sizing=fit) or an MCU core key "
                             "(mcu.cortex-m7.clock_mhz=400)")
    parser.add_argument("--arena-bytes", type=int, help="TFLite Micro arena (RAM) in bytes, instead of measuring it")
    parser.add_argument("--accuracy", type=float,
                        help="test accuracy (0..1) for the crossbar vs MCU table (a run folder supplies its own)")
    parser.add_argument("--data", metavar="PATH", help=DATA_HELP + "; the ideal chip's score on it (exact "
                                                                  "evaluator) fills the accuracy column")
    parser.add_argument("--dataset", metavar="NAME", help=DATASET_HELP)
    parser.add_argument("--task", choices=["classification", "regression", "reconstruction"],
                        help="what the outputs mean (default: the mapping's metadata, else from the targets)")
    parser.add_argument("--out", required=True, help="output folder (missing, empty or an earlier cost's)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace what another tf_nvm command wrote in --out (a folder of other files is "
                             "never replaced)")
    parser.set_defaults(func=run, check=check)
    return parser


def check(args: argparse.Namespace) -> None:
    """Checks --tech and --dataset before anything heavy loads (`tf_nvm.cli._checks`)."""
    from tf_nvm.cost import get_technology  # noqa: PLC0415  (tf_nvm.cost imports pandas: not for --help)

    get_technology(args.tech)
    dataset_name(args.dataset)


def run(args: argparse.Namespace) -> int:
    """Costs the source (`tf_nvm.pipeline.costing.cost_source`); prints a short summary; returns 0."""
    _, lines = cost_source(args.source, args.out, variant=args.variant, technology=args.tech, settings=args.set,
                           tflite=args.tflite, arena_bytes=args.arena_bytes, accuracy=args.accuracy, data=args.data,
                           dataset=args.dataset, task=args.task, overwrite=args.overwrite)
    for line in lines:
        print(f"[tf-nvm] {line}", file=sys.stderr if line.startswith("warning") else sys.stdout)
    return 0
