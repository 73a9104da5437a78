"""``tf-nvm presets``: list the NVMSpec presets (does not import TensorFlow)."""

import argparse
from typing import Any

from tf_nvm.core import presets

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``presets`` parser."""
    parser = subparsers.add_parser("presets", help="list NVMSpec presets")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Prints one line per preset; returns 0."""
    for name, description in presets.describe().items():
        print(f"{name:24s} {description}")
    return 0
