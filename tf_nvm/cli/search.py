"""``tf-nvm search CONFIG --out DIR``: keras-tuner architecture search of NVM models (`tf_nvm.nas`)."""

import argparse
import os
from typing import Any

from tf_nvm.cli._checks import at_least, data_path
from tf_nvm.core.errors import SearchError
from tf_nvm.experiments.recipes import check_search_config

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``search`` parser."""
    parser = subparsers.add_parser(
        "search", help="architecture search (keras-tuner) for NVM models; table, Pareto front, best model",
        description="Search architectures for NVM crossbars with keras-tuner. A folder that already holds a "
                    "search needs --resume (continue; completed trials are kept) or --overwrite (start again). "
                    "Distributed: set KERASTUNER_TUNER_ID (chief, tuner0, tuner1, ...), KERASTUNER_ORACLE_IP and "
                    "KERASTUNER_ORACLE_PORT and run the same command on every process.")
    parser.add_argument("config", help="bundled search config name (searches/*.json) or path to a .json config")
    parser.add_argument("--out", help="output folder (default runs/search-<config name>)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the interrupted search in --out")
    mode.add_argument("--overwrite", action="store_true", help="delete the search in --out and start again")
    parser.add_argument("--export-best", action="store_true",
                        help="retrain the best candidate over the config's seeds into OUT/best (a run folder for "
                             "`tf-nvm export` / `tf-nvm simulate`)")
    parser.add_argument("--max-trials", type=int, help="override tuner.max_trials (may change on --resume)")
    parser.add_argument("--max-minutes", type=float, help="override max_minutes (may change on --resume)")
    parser.add_argument("--data", metavar="PATH", help="data file or folder: the explicit source of the config's data "
                                                       "set (the config names the data set)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run, check=check)
    return parser


def check(args: argparse.Namespace) -> None:
    """Checks the config name (or .json path), --max-trials, --max-minutes and --data before TensorFlow loads."""
    check_search_config(args.config)  # every field that needs no TensorFlow (the hypermodels need it: at load)
    at_least(args.max_trials, "--max-trials", 1, SearchError, "Fix: e.g. --max-trials 20.")
    at_least(args.max_minutes, "--max-minutes", 1e-3, SearchError, "Fix: e.g. --max-minutes 30.")
    data_path(args.data)


def run(args: argparse.Namespace) -> int:
    """Runs the search; prints the summary; returns 0."""
    from tf_nvm.nas import config as search_config  # noqa: PLC0415  (imports TensorFlow and keras-tuner)
    from tf_nvm.nas.search import run_search, summary_text  # noqa: PLC0415  (imports TensorFlow and keras-tuner)

    config = search_config.load(args.config)
    if args.max_trials is not None:
        config = search_config.from_dict({**config.to_dict(), "tuner": {**config.tuner, "max_trials": args.max_trials}})
    if args.max_minutes is not None:
        config = search_config.from_dict({**config.to_dict(), "max_minutes": args.max_minutes})
    out = args.out or os.path.join("runs", f"search-{config.name}")
    from tflite_export.crossbar import build_mapping  # noqa: PLC0415  (imports TensorFlow)

    # every candidate must map onto crossbars (a dry run of the exporter), else it is a failed trial with the reason
    summary = run_search(config, out, resume=args.resume, overwrite=args.overwrite, export_best=args.export_best,
                         data_path=args.data, verbose=not args.quiet, candidate_check=build_mapping)
    print(summary_text(summary, out))  # the whole summary is out/summary.json
    return 0
