"""Monte Carlo over programmed chips, and one-parameter sweeps: tables (pandas) and plots (PNG).

`monte_carlo` programs ``chips`` chips (chip k draws its devices from
(seed, k)), runs each on a labelled data set and returns a `MonteCarloResult`:
per-chip accuracy, its mean, standard deviation and minimum, and the
per-example agreement of each chip's prediction with the ideal network's (an
ideal simulation equals the exact evaluator, `tf_nvm.mapping.reference`).
`sweep` repeats it over the values of one setting (``"device.t_inference"``,
``"adc.bits"``, ...) and `write_sweep` writes the table as CSV and Markdown and
a PNG plot with error bars.
"""

import dataclasses
import os
import time

import numpy as np

from tf_nvm.errors import SimulatorError
from tf_nvm.mapping import Mapping, load
from tf_nvm.simulator.config import SimulationConfig
from tf_nvm.simulator.network import Simulator
from tf_nvm.tables import write_table

__all__ = ["MonteCarloResult", "monte_carlo", "ideal_predictions", "sweep", "write_sweep", "sweep_values"]


@dataclasses.dataclass(frozen=True)
class MonteCarloResult:
    """Accuracy of ``chips`` programmed chips on one data set.

    Attributes:
        accuracies: per-chip top-1 accuracy (0..1), chip order.
        agreement: per-chip fraction of examples whose prediction equals the ideal network's (0..1).
        ideal_accuracy: accuracy of the ideal network (no device or converter effect).
        examples: examples evaluated.
        seconds: wall time of the chips (programming and inference), seconds.
    """

    accuracies: tuple
    agreement: tuple
    ideal_accuracy: float
    examples: int
    seconds: float

    @property
    def mean(self):
        """Mean accuracy over chips."""
        return float(np.mean(self.accuracies))

    @property
    def std(self):
        """Standard deviation of the accuracy over chips (population)."""
        return float(np.std(self.accuracies))

    @property
    def min(self):
        """Worst chip's accuracy."""
        return float(np.min(self.accuracies))

    def row(self):
        """A flat dict for tables."""
        return {"chips": len(self.accuracies), "accuracy_mean": self.mean, "accuracy_std": self.std,
                "accuracy_min": self.min, "accuracy_max": float(np.max(self.accuracies)),
                "agreement_with_ideal_mean": float(np.mean(self.agreement)), "ideal_accuracy": self.ideal_accuracy,
                "examples": self.examples, "seconds": round(self.seconds, 2)}


def _labels(y, count):
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != count or y.dtype.kind not in "iu":
        raise SimulatorError(f"monte_carlo: labels must be {count} integers (one per example), got "
                             f"{y.dtype} {list(y.shape)}. Fix: pass the integer class labels of x.")
    return y


def _progress(text, verbose):
    if verbose:
        print(text, flush=True)


def ideal_predictions(mapping, x, batch_size=256):
    """Arg-max predictions of the ideal network (every source off, exact converters) on ``x``."""
    sim = Simulator(mapping, SimulationConfig(batch_size=batch_size))
    return sim.run(sim.program(0), x).values().argmax(axis=-1)


def monte_carlo(mapping, x, y, config=None, chips=25, calibration=None, verbose=False, ideal=None):
    """Runs ``chips`` programmed chips on (x, y).

    Args:
        mapping: a `tf_nvm.mapping.Mapping` or its path.
        x: standardised inputs.
        y: integer labels (one per example).
        config: `SimulationConfig` (default: ideal).
        chips: number of chips (int >= 1).
        calibration: inputs for ``per-layer`` ADC ranges.
        verbose: print one progress line per chip.
        ideal: the ideal network's predictions on ``x`` if already known (`ideal_predictions`).

    Returns:
        `MonteCarloResult`.

    Raises:
        SimulatorError: bad chips count, labels or inputs.
    """
    if isinstance(chips, bool) or not isinstance(chips, int) or not 1 <= chips <= 100000:
        raise SimulatorError(f"monte_carlo: chips must be an integer in 1..100000, got {chips!r}. Fix: pass e.g. 25.")
    config = SimulationConfig() if config is None else config
    sim = Simulator(mapping, config, calibration=calibration)
    labels = _labels(y, len(x))
    if ideal is None:
        ideal = ideal_predictions(sim.mapping, x, config.batch_size)
    accuracies, agreement = [], []
    start = time.perf_counter()
    for chip in range(chips):
        predicted = sim.run(sim.program(chip), x).values().argmax(axis=-1)
        accuracies.append(float(np.mean(predicted == labels)))
        agreement.append(float(np.mean(predicted == ideal)))
        _progress(f"[tf-nvm] chip {chip + 1}/{chips}: accuracy {accuracies[-1]:.4f} "
                  f"(ideal {np.mean(ideal == labels):.4f})", verbose)
    return MonteCarloResult(tuple(accuracies), tuple(agreement), float(np.mean(ideal == labels)), len(x),
                            time.perf_counter() - start)


def sweep_values(text):
    """``"v1,v2,..."`` -> list of values (ints, floats, None, true/false or strings)."""
    out = []
    for item in text.split(","):
        item = item.strip()
        low = item.lower()
        if low in ("none", "null"):
            out.append(None)
        elif low in ("true", "false"):
            out.append(low == "true")
        else:
            try:
                out.append(int(item))
            except ValueError:
                try:
                    out.append(float(item))
                except ValueError:
                    out.append(item)
    return out


def sweep(mapping, x, y, path, values, config=None, chips=25, calibration=None, verbose=False):
    """Monte Carlo for each value of one setting.

    Args:
        path: the setting's dotted path (`SimulationConfig.paths`).
        values: the values to try.
        (other arguments as `monte_carlo`)

    Returns:
        pandas DataFrame, one row per value (the value in column ``path``).
    """
    import pandas as pd  # noqa: PLC0415

    config = SimulationConfig() if config is None else config
    mapping = mapping if isinstance(mapping, Mapping) else load(mapping)
    ideal = ideal_predictions(mapping, x, config.batch_size)  # the same for every value
    rows = []
    for value in values:
        _progress(f"[tf-nvm] {path} = {value!r}", verbose)
        result = monte_carlo(mapping, x, y, config.replace_path(path, value), chips, calibration, verbose, ideal)
        rows.append({path: value, **result.row()})
    return pd.DataFrame(rows)


def write_sweep(table, path, out_dir, title):
    """Writes ``sweep.csv``, ``sweep.md`` and ``sweep.png`` (accuracy vs the setting, error bars = std over chips).

    Returns:
        dict of the three paths.
    """
    from tf_nvm.plots import pyplot, write_png  # noqa: PLC0415

    plt = pyplot()
    os.makedirs(out_dir, exist_ok=True)
    csv_path, md_path = write_table(table, os.path.join(out_dir, "sweep"))
    files = {"csv": csv_path, "markdown": md_path, "png": os.path.join(out_dir, "sweep.png")}
    labels = [str(v) for v in table[path]]
    positions = np.arange(len(labels))
    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    axes.errorbar(positions, 100 * table["accuracy_mean"], yerr=100 * table["accuracy_std"], marker="o", capsize=4,
                  label="programmed chips (mean ± std)")
    axes.plot(positions, 100 * table["ideal_accuracy"], linestyle="--", color="grey", label="ideal network")
    axes.set_xticks(positions, labels)
    axes.set_xlabel(path)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    write_png(figure, files["png"])
    return files
