"""The step registry of `tf-nvm run` and its markers: the steps in order, the keys each marker holds, the folders.

Read by the steps that write the markers (`tf_nvm.pipeline.steps`), by the report that reads them
(`tf_nvm.pipeline.report`) and by the source reader (`tf_nvm.pipeline.sources`); it imports none of them.
"""

import os

from tf_nvm.core.errors import PipelineError
from tf_nvm.experiments import runs

__all__ = ["STEPS", "MARKER_KEYS", "OUTPUT_FOLDERS", "check_marker", "variant_folder"]

STEPS = ("train", "export", "simulate", "cost")
"""Per-variant steps in order (the report follows them)."""

MARKER_KEYS = {"train": ("selected_seed",), "export": ("tflite", "mapping", "runtimes"),
               "simulate": ("examples", "preset", "summary", "sweep", "ideal_vs_evaluator_differing"),
               "cost": ("technology", "summary", "unipolar_vs_bipolar", "shared_vs_per_layer", "mcu")}
"""Keys of each step marker's info that later steps and the report read (a reused marker must hold them)."""
OUTPUT_FOLDERS = ("variants", "floats", "report")
"""Sub-folders of an output folder; each must be a folder (not a file or a symbolic link) if it exists."""


def check_marker(folder: str, step: str) -> dict | None:
    """The info of ``step``'s marker in ``folder`` (None: not done), checked to hold `MARKER_KEYS`.

    Raises:
        PipelineError: the marker lacks a key later steps or the report read (edited, or written by another tool).
        RunFolderError: the marker is not a readable JSON object (`tf_nvm.experiments.runs.step_info`).
    """
    info = runs.step_info(folder, step)
    missing = [] if info is None else [key for key in MARKER_KEYS[step] if key not in info]
    if missing:
        raise PipelineError(f"{os.path.join(folder, runs.STEPS, step + '.json')}: the {step} step's marker lacks "
                            f"{missing} (found {sorted(info or {})[:12]}); it was edited or written by another "
                            f"tool. Fix: pass --force {step} to redo {step} and every later step.")
    return info


def variant_folder(out: str, name: str) -> str:
    """The run folder of variant ``name`` inside the output folder ``out``."""
    return os.path.join(out, "variants", name)
