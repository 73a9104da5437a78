"""The analog crossbar simulator: a mapping file run on simulated chips (TensorFlow).

* `SimulationConfig` (`DACConfig`, `ADCConfig`, `DeviceConfig`): how to
  simulate, apart from the trained `NVMSpec`.
* `Simulator`: builds the network from a mapping; `program(chip)` draws a
  chip's devices, `run(chip, x)` returns its output codes.

Device noise models and presets live in `tf_nvm.noise`.
"""

from tf_nvm.simulator.config import ADC_MODES, ADCConfig, DACConfig, DeviceConfig, SimulationConfig
from tf_nvm.simulator.network import ADCDesign, Chip, SimulationOutputs, Simulator

__all__ = ["SimulationConfig", "DACConfig", "ADCConfig", "DeviceConfig", "ADC_MODES", "Simulator", "Chip",
           "SimulationOutputs", "ADCDesign"]
