"""A trained model or mapping on test data: the library behind ``tf-nvm simulate``, ``cost --data`` and
``export --data``, gathered from the modules of one concept each:

* `tf_nvm.pipeline.sources`: `read_source` (a run folder, mapped now, or a mapping file -> `Source`),
  `run_standardization`, `export_metadata`, `model_task`, `recipe_task`.
* `tf_nvm.pipeline.inputs`: `test_data` (the one data path of every command), `input_standardization`,
  `export_inputs`.
* `tf_nvm.pipeline.simulation`: `simulate` (Monte Carlo chips or a sweep, written to a folder),
  `write_monte_carlo`, `monte_carlo_settings`.
* here: `ideal_scores`, the task's metrics of the ideal chip (exact evaluator) on the test data (``tf-nvm cost``).
"""

from tf_nvm.core.metrics import METRICS, resolve_task, targets_for
from tf_nvm.mapping import reference
from tf_nvm.pipeline.inputs import (DEFAULT_DATASET, USER_DATA, ExportInputs, export_inputs, input_standardisation,
                                    input_standardization, test_data)
from tf_nvm.pipeline.simulation import monte_carlo_settings, simulate, write_monte_carlo
from tf_nvm.pipeline.sources import (RECIPE_TASK, SOURCES, Source, export_metadata, model_task, read_source,
                                     recipe_task, run_standardisation, run_standardization)

__all__ = ["Source", "read_source", "SOURCES", "test_data", "input_standardization", "input_standardisation",
           "simulate", "model_task", "export_metadata", "export_inputs", "ideal_scores", "run_standardization",
           "run_standardisation", "ExportInputs", "DEFAULT_DATASET", "USER_DATA", "RECIPE_TASK", "recipe_task",
           "write_monte_carlo", "monte_carlo_settings"]


def ideal_scores(source: Source, dataset: str | None = None, data: str | None = None, examples: int | None = None,
                 task: str | None = None, where: str = "tf-nvm cost",
                 verbose: bool = False) -> tuple[str, dict[str, float]]:
    """Every metric of the task for the ideal chip (the exact evaluator `tf_nvm.mapping.reference`, numpy, no
    TensorFlow) on the test data of ``source`` (read as `test_data` reads it).

    Returns:
        ``(task name, {metric name: value})``, the task's primary metric first.
    """
    evaluation = test_data(source, dataset, data, examples, where=where, verbose=verbose)
    mapping = source.mapping
    output_shape = tuple(mapping.layer(mapping.outputs[0]).output_shape)
    chosen = resolve_task(task, mapping, evaluation.y, output_shape, where=where)
    targets = targets_for(chosen, evaluation.x, evaluation.y, output_shape, where=where)
    outputs = reference.evaluate(mapping, evaluation.x).values()
    return chosen.name, {name: METRICS.get(name).score(outputs, targets) for name in chosen.metrics}
