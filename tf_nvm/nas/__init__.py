"""Architecture search for NVM crossbar networks with keras-tuner (tf_keras models, quantized per trial).

- `hypermodels`: HyperModels over registered architectures (`HYPERMODELS`: HAR CNN and MLP
  families, a small CIFAR-10 CNN) and `CheckedHyperModel` for any user ``build(hp)``.
- `tuners`: `NVMRandomSearch`, `NVMBayesianOptimization`, `NVMHyperband` (`TUNERS`).
- `objectives`: validation accuracy or a hardware-aware score (`SearchObjective`).
- `hardware`: tiles, devices, ADC columns of an NVM model (`hardware_counts`) and `Budget`.
- `config`: `SearchConfig`, the JSON search configuration; bundled configs by name.
- `search`: `run_search` (resume / overwrite, table, Pareto front, retraining the best).
- `report`: the trials table and the Pareto-front plot.

Importing this package imports TensorFlow (tf_keras) and keras-tuner.
"""

from tf_nvm.keras import backend as _keras  # noqa: F401  (tf_keras mode before keras_tuner imports Keras 3)
from tf_nvm.nas.hardware import COUNTS, Budget, HardwareCounts, hardware_counts
from tf_nvm.nas.hypermodels import (HYPERMODELS, ArchitectureHyperModel, CheckedHyperModel, CifarCNNHyperModel,
                                    HarCNNHyperModel, HarMLPHyperModel, checked_hypermodel, make_hypermodel)
from tf_nvm.nas.objectives import DIRECTIONS, Penalty, SearchObjective
from tf_nvm.nas.tuners import TUNERS, NVMBayesianOptimization, NVMHyperband, NVMRandomSearch, NVMTunerMixin, Training

__all__ = ["COUNTS", "Budget", "HardwareCounts", "hardware_counts", "HYPERMODELS", "ArchitectureHyperModel",
           "CheckedHyperModel", "CifarCNNHyperModel", "HarCNNHyperModel", "HarMLPHyperModel", "checked_hypermodel",
           "make_hypermodel", "DIRECTIONS", "Penalty", "SearchObjective", "TUNERS", "NVMBayesianOptimization",
           "NVMHyperband", "NVMRandomSearch", "NVMTunerMixin", "Training"]
