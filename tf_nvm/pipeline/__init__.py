"""End-to-end experiments (`tf-nvm run`): train -> export -> simulate -> cost -> report, resumable.

* `experiment`: experiment recipes (`Experiment`, `load`, `names`; bundled in
  ``recipes/experiments/``).
* `markers`: the step registry (`STEPS`) and the markers each step leaves.
* `steps`: the steps per variant (`run_experiment`).
* `report`: the report folder (report.md and report.html, CSV + Markdown tables, PNG plots), built from
  `report_tables`, `report_plots`, `report_text` and `report_html`.
* `evaluate` (`sources`, `inputs`, `simulation`), `costing`, `shards`: the library behind ``tf-nvm simulate``,
  ``cost``, ``export`` and ``inspect``.

The modules import each other, never this package; it imports no TensorFlow (``tf-nvm run --help`` and
loading a recipe stay light): the steps import it inside the functions that need it.

Part of the application layer (it drives `tflite_export`), like `tf_nvm.cli`.
"""

from tf_nvm.pipeline.experiment import Experiment, load, names
from tf_nvm.pipeline.steps import STEPS, check_force, run_experiment

__all__ = ["Experiment", "load", "names", "STEPS", "check_force", "run_experiment"]
