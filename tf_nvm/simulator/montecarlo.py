"""Monte Carlo over programmed chips, and one-parameter sweeps: tables (pandas) and plots (PNG).

`monte_carlo` programs ``chips`` chips (chip k draws its devices from
(seed, k)), runs each on a data set and returns a `MonteCarloResult`: per-chip
scores of the task's metrics (`tf_nvm.core.metrics`: accuracy for
classification, MSE and MAE for regression and autoencoders) against the
targets and against the ideal network (every source off, exact converters: an
ideal simulation equals the exact evaluator, `tf_nvm.mapping.reference`), their
mean, standard deviation and worst chip. `sweep` repeats it over the values of
one setting (``"device.t_inference"``, ``"adc.bits"``, ...) and `write_sweep`
writes the table as CSV and Markdown and a PNG plot with error bars.
"""

import dataclasses
import os
import time
from typing import Any

import numpy as np
import pandas as pd

from tf_nvm.core.chips import MAX_CHIPS
from tf_nvm.core.errors import SimulatorError
from tf_nvm.core.metrics import METRICS, metric_for, resolve_task, targets_for
from tf_nvm.core.plots import pyplot, write_png
from tf_nvm.core.tables import write_table
from tf_nvm.mapping import Mapping, load
from tf_nvm.simulator.config import SimulationConfig
from tf_nvm.simulator.network import Simulator

__all__ = ["MonteCarloResult", "monte_carlo", "ideal_outputs", "ideal_predictions", "sweep", "write_sweep",
           "sweep_values"]


@dataclasses.dataclass(frozen=True)
class MonteCarloResult:
    """Scores of ``chips`` programmed chips on one data set.

    Attributes:
        scores: per-chip value of the primary metric against the targets, chip order (accuracy: 0..1).
        agreement: per-chip value of the primary metric against the ideal network's outputs (accuracy: the
            fraction of predictions equal to the ideal network's; MSE: the mean squared difference).
        ideal_score: the primary metric of the ideal network against the targets.
        examples: examples evaluated.
        seconds: wall time of the chips (programming and inference), seconds.
        task: the task name (`tf_nvm.core.metrics.TASKS`).
        metric: the primary metric's name.
        metrics: ``{name: per-chip tuple}`` of every reported metric against the targets, and
            ``{name}_vs_ideal`` against the ideal network.
        ideal_metrics: ``{name: value}`` of the ideal network against the targets.
        first_chip: index of the first chip (a shard ``--chips A:B`` holds chips A..B-1; chip k's devices and
            read noise depend only on (seed, k), `tf_nvm.simulator.shards`).
    """

    scores: tuple[float, ...]
    agreement: tuple[float, ...]
    ideal_score: float
    examples: int
    seconds: float
    task: str = "classification"
    metric: str = "accuracy"
    metrics: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    ideal_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    first_chip: int = 0

    def _accuracy_only(self, what):
        if self.metric != "accuracy":
            raise SimulatorError(f"MonteCarloResult.{what}: this result scores {self.metric!r} (task "
                                 f"{self.task!r}), not accuracy. Fix: read .scores / .ideal_score, or .metrics.")

    @property
    def accuracies(self) -> tuple[float, ...]:
        """Per-chip accuracy (0..1); only when the primary metric is accuracy."""
        self._accuracy_only("accuracies")
        return self.scores

    @property
    def ideal_accuracy(self) -> float:
        """Accuracy of the ideal network; only when the primary metric is accuracy."""
        self._accuracy_only("ideal_accuracy")
        return self.ideal_score

    @property
    def mean(self) -> float:
        """Mean of the primary metric over chips."""
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """Standard deviation of the primary metric over chips (population)."""
        return float(np.std(self.scores))

    @property
    def min(self) -> float:
        """Smallest value of the primary metric over chips (the worst chip for accuracy)."""
        return float(np.min(self.scores))

    @property
    def worst(self) -> float:
        """The worst chip's primary metric (lowest accuracy, highest error)."""
        return float(np.min(self.scores) if METRICS.get(self.metric).higher_is_better else np.max(self.scores))

    def row(self) -> dict[str, Any]:
        """A flat dict for tables: ``<metric>_mean/_std/_min/_max``, ``<metric>_vs_ideal_mean``, ``ideal_<metric>``
        for every reported metric (classification keeps ``agreement_with_ideal_mean``)."""
        out: dict[str, Any] = {"chips": len(self.scores)}
        for name, values in self.metrics.items():
            if name.endswith("_vs_ideal"):
                continue
            out.update({f"{name}_mean": float(np.mean(values)), f"{name}_std": float(np.std(values)),
                        f"{name}_min": float(np.min(values)), f"{name}_max": float(np.max(values))})
            vs = self.metrics.get(f"{name}_vs_ideal")
            if vs is not None:
                key = "agreement_with_ideal_mean" if name == "accuracy" else f"{name}_vs_ideal_mean"
                out[key] = float(np.mean(vs))
            out[f"ideal_{name}"] = self.ideal_metrics[name]
        out.update(examples=self.examples, seconds=round(self.seconds, 2), task=self.task, metric=self.metric)
        return out

    def chip_table(self) -> pd.DataFrame:
        """pandas DataFrame, one row per chip: every metric against the targets and against the ideal network."""
        columns: dict[str, Any] = {"chip": range(self.first_chip, self.first_chip + len(self.scores))}
        for name, values in self.metrics.items():
            columns["agreement_with_ideal" if name == "accuracy_vs_ideal" else name] = list(values)
        return pd.DataFrame(columns)

    def summary_line(self) -> str:
        """One line: primary metric mean ± std, worst chip, ideal network."""
        m = METRICS.get(self.metric)
        return (f"{self.metric} {m.format(self.mean)} ± {m.format(self.std)} (worst {m.format(self.worst)}) over "
                f"{len(self.scores)} chips; ideal {m.format(self.ideal_score)}")


def _progress(text, verbose):
    if verbose:
        print(text, flush=True)


def ideal_outputs(mapping: Mapping | str | os.PathLike, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Float outputs (model units) of the ideal network (every source off, exact converters) on ``x``."""
    sim = Simulator(mapping, SimulationConfig(batch_size=batch_size))
    return sim.run(sim.program(0), x).values()


def ideal_predictions(mapping: Mapping | str | os.PathLike, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Arg-max predictions of the ideal network (every source off, exact converters) on ``x``."""
    return ideal_outputs(mapping, x, batch_size).argmax(axis=-1)


def monte_carlo(mapping: Mapping | str | os.PathLike, x: np.ndarray, y: np.ndarray | None,
                config: SimulationConfig | None = None, chips: int = 25, calibration: np.ndarray | None = None,
                verbose: bool = False, ideal: np.ndarray | None = None, task: str | None = None,
                metric: str | None = None, first_chip: int = 0) -> MonteCarloResult:
    """Runs ``chips`` programmed chips on (x, y) and scores them with the task's metrics.

    Chip k's devices and read noise are drawn from streams of (seed, k) alone, so chips
    ``first_chip .. first_chip + chips - 1`` score the same whether run here or as part of a larger run
    (shards: `tf_nvm.simulator.shards`).

    Args:
        mapping: a `tf_nvm.mapping.Mapping` or its path.
        x: standardised inputs.
        y: targets: integer labels (classification), float targets of the output's shape (regression), or None
            (reconstruction: the targets are ``x``).
        config: `SimulationConfig` (default: ideal).
        chips: number of chips (int >= 1).
        calibration: inputs for ``per-layer`` ADC ranges.
        verbose: print one progress line per chip.
        ideal: the ideal network's float outputs on ``x`` if already known (`ideal_outputs`); for
            classification its arg-max predictions are accepted too.
        task: a task name (`tf_nvm.core.metrics.TASKS`); None: the mapping's ``metadata["task"]``, else
            from ``y`` (`resolve_task`).
        metric: the primary metric's name (None: the task's first).
        first_chip: index of the first chip (int >= 0).

    Returns:
        `MonteCarloResult`.

    Raises:
        SimulatorError: bad chips count, targets, task, metric or inputs.
    """
    _check_counts(chips, first_chip)
    config = SimulationConfig() if config is None else config
    sim = Simulator(mapping, config, calibration=calibration)
    mapping = sim.mapping
    output_shape = tuple(mapping.layer(mapping.outputs[0]).output_shape) if mapping.outputs else ()
    chosen = resolve_task(task, mapping, y, output_shape, where="monte_carlo")
    primary = metric_for(chosen, metric, where="monte_carlo")
    targets = targets_for(chosen, x, y, output_shape, where="monte_carlo")
    names = [primary.name] + [name for name in chosen.metrics if name != primary.name]
    reported = [METRICS.get(name) for name in names]
    if ideal is None:
        ideal = ideal_outputs(mapping, x, config.batch_size)
    ideal_refs, ideal_metrics = _ideal_scores(np.asarray(ideal), primary, reported, targets)
    start = time.perf_counter()
    per_chip: dict[str, list[float]] = {key: [] for m in reported for key in (m.name, f"{m.name}_vs_ideal")}
    for chip in range(first_chip, first_chip + chips):
        values = sim.run(sim.program(chip), x).values()
        for m in reported:
            per_chip[m.name].append(m.score(values, targets))
            per_chip[f"{m.name}_vs_ideal"].append(m.score(values, ideal_refs[m.name]))
        _progress(f"[tf-nvm] chip {chip + 1}/{first_chip + chips}: {primary.name} "
                  f"{primary.format(per_chip[primary.name][-1])} (ideal {primary.format(ideal_metrics[primary.name])})",
                  verbose)
    scores = {key: tuple(values) for key, values in per_chip.items()}
    return MonteCarloResult(scores[primary.name], scores[f"{primary.name}_vs_ideal"],
                            ideal_metrics[primary.name], len(x), time.perf_counter() - start, chosen.name,
                            primary.name, scores, ideal_metrics, first_chip)


def _check_counts(chips, first_chip):
    """`monte_carlo`'s chip count (1..100000) and first chip (>= 0)."""
    if isinstance(chips, bool) or not isinstance(chips, int) or not 1 <= chips <= MAX_CHIPS:
        raise SimulatorError(f"monte_carlo: chips must be an integer in 1..{MAX_CHIPS}, got {chips!r}. Fix: pass e.g. "
                             "25.")
    if isinstance(first_chip, bool) or not isinstance(first_chip, int) or first_chip < 0:
        raise SimulatorError(f"monte_carlo: first_chip must be an integer >= 0, got {first_chip!r}. Fix: pass e.g. 0.")


def _ideal_scores(ideal, primary, reported, targets):
    """(``{metric: reference}`` a chip's outputs are compared with, ``{metric: ideal network's score}``).

    ``ideal``: the ideal network's float outputs, or (classification) its arg-max predictions.
    """
    if ideal.ndim == 1 and primary.name == "accuracy":
        return {"accuracy": ideal}, {"accuracy": float(np.mean(ideal == targets))}
    return ({m.name: m.from_outputs(ideal) for m in reported}, {m.name: m.score(ideal, targets) for m in reported})


def sweep_values(text: str) -> list[Any]:
    """``"v1,v2,..."`` -> list of values (ints, floats, None, true/false or strings)."""
    out: list[Any] = []
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


def sweep(mapping: Mapping | str | os.PathLike, x: np.ndarray, y: np.ndarray | None, path: str, values: list[Any],
          config: SimulationConfig | None = None, chips: int = 25, calibration: np.ndarray | None = None,
          verbose: bool = False, task: str | None = None, metric: str | None = None) -> pd.DataFrame:
    """Monte Carlo for each value of one setting; the other arguments are those of `monte_carlo`.

    Args:
        path: the setting's dotted path (`SimulationConfig.paths`).
        values: the values to try.

    Returns:
        pandas DataFrame, one row per value (the value in column ``path``).
    """
    config = SimulationConfig() if config is None else config
    mapping = mapping if isinstance(mapping, Mapping) else load(mapping)
    ideal = ideal_outputs(mapping, x, config.batch_size)  # the same for every value
    rows = []
    for value in values:
        _progress(f"[tf-nvm] {path} = {value!r}", verbose)
        result = monte_carlo(mapping, x, y, config.replace_path(path, value), chips, calibration, verbose, ideal,
                             task=task, metric=metric)
        rows.append({path: value, **result.row()})
    return pd.DataFrame(rows)


def write_sweep(table: pd.DataFrame, path: str, out_dir: str | os.PathLike, title: str) -> dict[str, str]:
    """Writes ``sweep.csv``, ``sweep.md`` and ``sweep.png`` (the primary metric vs the setting, error bars = std
    over chips; the metric is the table's ``metric`` column, accuracy in %).

    Returns:
        dict of the three paths.
    """
    plt = pyplot()
    os.makedirs(out_dir, exist_ok=True)
    csv_path, md_path = write_table(table, os.path.join(out_dir, "sweep"))
    files = {"csv": csv_path, "markdown": md_path, "png": os.path.join(out_dir, "sweep.png")}
    labels = [str(v) for v in table[path]]
    positions = np.arange(len(labels))
    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    metric = str(table["metric"].iloc[0]) if "metric" in table else "accuracy"
    factor = 100.0 if METRICS.get(metric).unit == "%" else 1.0
    axes.errorbar(positions, factor * table[f"{metric}_mean"], yerr=factor * table[f"{metric}_std"], marker="o",
                  capsize=4, label="programmed chips (mean ± std)")
    axes.plot(positions, factor * table[f"ideal_{metric}"], linestyle="--", color="grey", label="ideal network")
    axes.set_xticks(positions, labels)
    axes.set_xlabel(path)
    axes.set_ylabel("test accuracy (%)" if metric == "accuracy" else f"test {metric}")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    write_png(figure, files["png"])
    return files
