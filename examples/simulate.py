"""Simulate programmed crossbar chips: ideal, then PCM-like devices over drift time, then one shared ADC.

Reads a crossbar mapping written by `tf-nvm export --mapping` or examples/export_and_compare.py, and prints
the accuracy of Monte Carlo chips on the HAR test set (mean ± std over chips).

Run: python examples/simulate.py [MAPPING_PREFIX] [CHIPS]
"""

import sys

import numpy as np

import tf_nvm  # first: puts TensorFlow in legacy-Keras (tf_keras) mode
from tf_nvm.mapping import load
from tf_nvm.simulator import ADCConfig, DeviceConfig, SimulationConfig, monte_carlo

prefix = sys.argv[1] if len(sys.argv) > 1 else "exports/har-2bit-unipolar/mapping"
chips = int(sys.argv[2]) if len(sys.argv) > 2 else 5
mapping = load(prefix)
_, (x_test, y_test) = tf_nvm.datasets.load_har(verbose=False)
x, y = mapping.input.standardize(x_test), np.asarray(y_test)  # the mapping records the input standardisation

for label, config in [
    ("ideal chip", SimulationConfig()),
    ("PCM-like, 1 hour", SimulationConfig(device=DeviceConfig(noise="pcm-like", t_inference=3600.0))),
    ("PCM-like, 1 month", SimulationConfig(device=DeviceConfig(noise="pcm-like", t_inference=2.6e6))),
    ("PCM-like, 1 hour, one shared 8-bit ADC", SimulationConfig(
        device=DeviceConfig(noise="pcm-like", t_inference=3600.0), adc=ADCConfig(mode="shared", bits=8))),
]:
    result = monte_carlo(mapping, x, y, config, chips=1 if label == "ideal chip" else chips)
    print(f"{label}: {100 * result.mean:.2f} % ± {100 * result.std:.2f} over {len(result.accuracies)} chip(s)")
