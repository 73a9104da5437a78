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

import os
import sys

from tf_nvm.cli.simulate import DATA_HELP, DATASET_HELP
from tf_nvm.errors import CostModelError

__all__ = ["add_parser", "run"]

def add_parser(subparsers):
    """Adds the ``cost`` parser."""
    parser = subparsers.add_parser("cost", help="hardware cost (area, energy, latency) of the crossbar mapping and "
                                                "the MCU baseline")
    parser.add_argument("source", metavar="RUN_OR_MAPPING",
                        help="run folder written by `tf-nvm train`, or a mapping PREFIX / PREFIX.json")
    parser.add_argument("--tflite", metavar="MODEL", help="the int8 .tflite of the same model (MCU baseline)")
    parser.add_argument("--tech", metavar="NAME_OR_FILE",
                        help="technology preset (isaac-32nm, murmann-median-adc, murmann-best-adc) or JSON file")
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
                        help="replace the output of another tf-nvm command in --out (a folder of other files is "
                             "never replaced)")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Checks every setting, computes every table and plot (`tf_nvm.pipeline.costing`); prints a short summary."""
    from tf_nvm.outputs import claim_output_folder  # noqa: PLC0415
    from tf_nvm.pipeline import costing  # noqa: PLC0415
    from tf_nvm.pipeline.evaluate import ideal_scores, read_source  # noqa: PLC0415

    if args.accuracy is not None and not 0.0 <= args.accuracy <= 1.0:
        raise CostModelError(f"--accuracy: value {args.accuracy!r} is not allowed; allowed: a fraction in 0..1. Fix: "
                             "e.g. --accuracy 0.93.")
    if args.arena_bytes is not None and args.arena_bytes <= 0:
        raise CostModelError(f"--arena-bytes: value {args.arena_bytes!r} is not allowed; allowed: an integer > 0. "
                             "Fix: pass the arena tf-nvm export printed.")
    tech, cores = costing.cost_settings(args.tech, args.set)  # every setting checked before any computation
    claim_output_folder(args.out, "cost", args.overwrite)
    graph, arena, notes = (costing.read_mcu_model(args.tflite, args.arena_bytes) if args.tflite
                           else (None, None, []))
    for line in notes:
        print(f"[tf-nvm] {line}", file=sys.stderr)
    source = read_source(args.source)
    accuracy, scores = source.accuracy, {}
    if args.data is not None or args.dataset is not None:
        task, scores = ideal_scores(source, args.dataset, args.data, task=args.task)
        print(f"[tf-nvm] ideal chip on the test data ({task}): "
              + ", ".join(f"{name} {value:.4g}" for name, value in scores.items()))
        accuracy = scores.get("accuracy")  # the accuracy column holds accuracies only
    accuracy = args.accuracy if args.accuracy is not None else accuracy
    _, lines = costing.write_cost(args.out, source.mapping, tech, cores, name=os.path.basename(
        os.path.normpath(args.source)), source=args.source, graph=graph, arena_bytes=arena, accuracy=accuracy,
        scores=scores, overwrite=args.overwrite)
    for line in lines:
        print(f"[tf-nvm] {line}")
    print(f"[tf-nvm] results: {os.path.abspath(os.path.join(args.out, 'results.json'))}")
    return 0
