"""The ``tf-nvm`` command line: the application layer.

One module per sub-command (`SUBCOMMANDS`, in ``tf-nvm --help`` order); each
has ``add_parser(subparsers)``, which adds its parser and sets ``func`` to the
function that runs it (args -> exit status), and, for a command that names
things or loads TensorFlow, ``check`` to the function that checks its names and
plain arguments first (`tf_nvm.cli._checks`). Only this layer imports
``tflite_export``. Listing recipes or presets and inspecting a mapping do not
import TensorFlow; the sub-commands that need it import it when they run.

Sub-commands:
    run EXPERIMENT [--quick] [--out DIR]
                   the paper end to end: train, export, simulate and cost
                   every variant, then a report folder (resumable).
    train RECIPE   train the float baseline and the NVM model of a recipe (over
                   its seeds) and write a run folder with metrics.json.
    presets        list the NVMSpec presets.
    recipes        list the bundled recipes.
    export RUN_OR_MODEL --tflite OUT.tflite --mapping OUT_PREFIX
                   write the int8 TFLite model and/or the crossbar mapping of a
                   trained NVM model (a run folder or a .keras file).
    inspect RUN_OR_MAPPING [--variant RECIPE]
                   print a crossbar mapping as a table per layer.
    simulate RUN_OR_MAPPING [--variant RECIPE] --out DIR
                   Monte Carlo chips of the analog simulator on a test set.
    cost RUN_OR_MAPPING [--variant RECIPE] --out DIR [--tflite MODEL]
                   area, energy and latency of the crossbar mapping (unipolar
                   vs bipolar, shared vs per-layer periphery) beside the MCU.
    search CONFIG --out DIR [--resume|--overwrite] [--export-best]
                   keras-tuner architecture search (tf_nvm.nas): trials table,
                   Pareto front, the best candidate retrained as a run folder.
"""

import argparse
import importlib
import os
import signal
import sys

from tf_nvm.core.errors import TfNvmError

QUIET_ENV = "TF_NVM_QUIET_TENSORFLOW"  # = tf_nvm.keras.backend.QUIET_ENV (that module imports TensorFlow)

__all__ = ["main", "build_parser", "SUBCOMMANDS", "BROKEN_PIPE_STATUS"]

BROKEN_PIPE_STATUS = 128 + signal.SIGPIPE
"""Exit status when the reader of stdout goes away (``tf-nvm recipes | head``): 141, a process ended by SIGPIPE,
as ``cat``, ``yes`` and other Unix tools report it; no traceback is printed."""

SUBCOMMANDS = ("run", "train", "presets", "recipes", "export", "inspect", "simulate", "cost", "search")
"""Sub-command modules of `tf_nvm.cli`, in help order; a new sub-command is one module and one name here."""


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``tf-nvm``."""
    parser = argparse.ArgumentParser(prog="tf-nvm", description="Train DNNs for analog NVM crossbars.")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up and log output")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tf-nvm``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ[QUIET_ENV] = "0"  # also when an earlier quiet command in this process set it (tf_nvm.core.quiet)
    else:
        os.environ.setdefault(QUIET_ENV, "1")  # read when TensorFlow is first imported (tf_nvm.keras.backend)
    try:
        if getattr(args, "check", None) is not None:
            args.check(args)  # names and plain arguments, before anything imports TensorFlow (tf_nvm.cli._checks)
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush (a traceback there)
        return status
    except TfNvmError as err:
        print(f"tf-nvm: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _broken_pipe()


def _broken_pipe() -> int:
    """The reader of stdout went away: stdout now writes to os.devnull (so the interpreter's last flush of what
    is still buffered does not fail); returns `BROKEN_PIPE_STATUS`."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured in a test): nothing to redirect
        pass
    return BROKEN_PIPE_STATUS
