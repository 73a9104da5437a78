"""The analog crossbar simulator: a mapping file run on simulated chips (TensorFlow).

* `SimulationConfig` (`DACConfig`, `ADCConfig`, `DeviceConfig`): how to
  simulate, apart from the trained `NVMSpec`.
* `Simulator`: builds the network from a mapping; `program(chip)` draws a
  chip's devices, `run(chip, x)` returns its output codes.
* `monte_carlo` (N chips x a data set) and `sweep` (one setting over values),
  written as CSV, Markdown and PNG by `write_sweep`; chips are scored with the
  task's metrics (`TASKS`, `METRICS`: accuracy, MSE, MAE, or a registered one).
* `shards`: chips ``A:B`` run anywhere (`ChipRange`, from `tf_nvm.core.chips`; `ShardInfo`) and merged into one
  run's result.

Device noise models and presets live in `tf_nvm.noise`.
"""

from tf_nvm.core.chips import ChipRange
from tf_nvm.simulator.config import ADC_MODES, READ_NOISE_MODES, ADCConfig, DACConfig, DeviceConfig, SimulationConfig
from tf_nvm.core.metrics import METRICS, TASKS, Metric, Task, resolve_task, task_of_loss
from tf_nvm.simulator.montecarlo import (MonteCarloResult, ideal_outputs, monte_carlo, sweep, sweep_values,
                                         write_sweep)
from tf_nvm.simulator.network import ADCDesign, Chip, SimulationOutputs, Simulator
from tf_nvm.simulator.shards import ShardInfo

__all__ = ["SimulationConfig", "DACConfig", "ADCConfig", "DeviceConfig", "ADC_MODES", "READ_NOISE_MODES", "Simulator",
           "Chip", "SimulationOutputs", "ADCDesign", "MonteCarloResult", "monte_carlo", "sweep", "sweep_values",
           "write_sweep", "ideal_outputs", "METRICS", "TASKS", "Metric", "Task", "resolve_task", "task_of_loss",
           "ChipRange", "ShardInfo"]
