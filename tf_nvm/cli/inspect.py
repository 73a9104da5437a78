"""``tf-nvm inspect MAPPING``: print a crossbar mapping as a table per layer (does not import TensorFlow)."""

import argparse
import json
from typing import Any

from tf_nvm.cli.simulate import SOURCE_HELP, VARIANT_HELP
from tf_nvm.mapping import format_table, layer_table
from tf_nvm.pipeline.evaluate import read_source

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``inspect`` parser."""
    parser = subparsers.add_parser("inspect", help="print a crossbar mapping as a table per layer")
    parser.add_argument("mapping", metavar="RUN_OR_MAPPING", help=SOURCE_HELP + " (a `tf-nvm train` folder is "
                                                                                "mapped now: imports TensorFlow)")
    parser.add_argument("--variant", metavar="RECIPE", help=VARIANT_HELP)
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Prints the mapping's table (or JSON); returns 0."""
    mapping = read_source(args.mapping, args.variant).mapping
    if args.json:
        print(json.dumps({"summary": mapping.summary(), "layers": layer_table(mapping)}, indent=2))
    else:
        print(format_table(mapping))
    return 0
