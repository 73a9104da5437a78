"""End-to-end experiments (`tf-nvm run`): train -> export -> simulate -> cost -> report, resumable.

* `experiment`: experiment recipes (`Experiment`, `load`, `names`; bundled in
  ``recipes/experiments/``).
* `steps`: the steps per variant with their markers (`run_experiment`).
* `report`: the report folder (report.md, CSV + Markdown tables, PNG plots).

Part of the application layer (it drives `tflite_export`), like `tf_nvm.cli`.
"""

from tf_nvm.pipeline.experiment import Experiment, load, names
from tf_nvm.pipeline.steps import STEPS, check_force, run_experiment

__all__ = ["Experiment", "load", "names", "STEPS", "check_force", "run_experiment"]
