"""``tf-nvm recipes``: list the bundled training recipes, experiments and search configs (does not import TensorFlow).

Three short tables, one line per name: the name and the first part of its description.
"""

import argparse
import shutil
from typing import Any

from tf_nvm.core import bundled
from tf_nvm.core.errors import TfNvmError
from tf_nvm.experiments.recipes import read_json_config

__all__ = ["add_parser", "run"]

_TABLES = (
    # (bundled kind, title, the command that takes the name)
    ("recipe", "Training recipes", "tf-nvm train NAME"),
    ("experiment", "Experiments", "tf-nvm run NAME"),
    ("search", "Search configs", "tf-nvm search NAME"),
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``recipes`` parser."""
    parser = subparsers.add_parser("recipes", help="list the bundled training recipes, experiments and search "
                                                   "configs")
    parser.add_argument("--full", action="store_true", help="print whole descriptions (default: one line each)")
    parser.set_defaults(func=run)
    return parser


def _description(kind, name):
    """The ``description`` of a bundled configuration ("" when it has none), read without building it."""
    try:
        data, _ = read_json_config(name, bundled.folder(kind), label=f"bundled {kind}", error=TfNvmError,
                                   fix="", not_found=lambda path: path, max_bytes=1 << 20)
    except TfNvmError as err:  # a broken bundled file is named, not hidden
        return f"(cannot be read: {err})"
    description = data.get("description") if isinstance(data, dict) else None
    return description if isinstance(description, str) else ""


def run(args: argparse.Namespace) -> int:
    """Prints the three tables; returns 0."""
    tables = [(title, command, bundled.names(kind), kind) for kind, title, command in _TABLES]
    width = max(len(name) for _, _, names, _ in tables for name in names) + 2
    room = max(40, shutil.get_terminal_size((120, 24)).columns - width - 3)  # the indent, and one column spare
    for index, (title, command, names, kind) in enumerate(tables):
        if index:
            print()
        print(f"{title} ({command}):")
        for name in names or ["(none bundled)"]:
            text = _description(kind, name) if names else ""
            if not args.full and len(text) > room:
                text = text[:room - 3].rstrip() + "..."
            print(f"  {name:{width}s}{text}".rstrip())
    return 0
