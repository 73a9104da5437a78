"""What a search leaves for people: the table of every trial and the Pareto front (accuracy vs tiles)."""

import os
from typing import Any

import numpy as np
import pandas as pd

from tf_nvm.nas.hardware import COUNTS
from tf_nvm.nas.tuners import MAX_TRIAL_RECORD_BYTES, TRIAL_FILE
from tf_nvm.core.errors import SearchError
from tf_nvm.core.safe_io import read_json

__all__ = ["trials_table", "pareto_front", "plot_pareto", "failure_reason"]


def failure_reason(trial: Any, record: dict | None = None) -> str:
    """The one-line reason a trial failed (from its ``nvm_trial.json`` or the last line of its traceback)."""
    if record and record.get("reason"):
        return record["reason"]
    lines = (trial.message or "").strip().splitlines()
    return lines[-1].split("FailedTrialError: ", 1)[-1] if lines else ""


def _record(project_dir, trial_id):
    path = os.path.join(project_dir, f"trial_{trial_id}", TRIAL_FILE)
    try:
        return read_json(path, max_bytes=MAX_TRIAL_RECORD_BYTES, what="trial record", error=SearchError,
                         object_only=True)
    except SearchError:
        return None  # a trial that never wrote its record (or a damaged one) is reported from its oracle status


def trials_table(tuner: Any) -> pd.DataFrame:
    """One row per trial of a tuner's oracle, in trial order.

    Columns: ``trial``, ``status`` (COMPLETED, FAILED, INVALID, RUNNING),
    every hyperparameter (Hyperband's ``tuner/*`` bookkeeping left out),
    ``val_accuracy`` (fraction), ``score``, the hardware counts (`COUNTS`),
    ``epochs``, ``seconds`` (wall-clock of the trial), ``pareto`` (on the
    accuracy-vs-tiles front) and ``reason`` (why a trial failed).

    Returns:
        pandas DataFrame.
    """
    rows: list[dict] = []
    integers: set[str] = set()
    others: set[str] = set()
    for trial_id in sorted(tuner.oracle.trials):
        trial = tuner.oracle.trials[trial_id]
        record = _record(tuner.project_dir, trial_id)
        row = {"trial": trial_id, "status": trial.status}
        values = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
        for key, value in values.items():
            (integers if isinstance(value, int) and not isinstance(value, bool) else others).add(key)
        row.update(values)
        for name in ("val_accuracy", "score", *COUNTS, "epochs", "seconds"):
            value = trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None
            if value is None and record:
                value = (record.get("counts") or {}).get(name, record.get(name))
            row[name] = value
        row["reason"] = "" if trial.status == "COMPLETED" else failure_reason(trial, record)
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["pareto"] = pareto_front(table)
        # integer columns stay integers where some trials lack them (inactive layers, failed trials): pandas NA
        for name in (*COUNTS, "epochs", *sorted(integers - others)):
            table[name] = table[name].astype("Int64") if table[name].notna().any() else table[name]
    return table


def pareto_front(table: pd.DataFrame) -> pd.Series:
    """Boolean Series: completed trials no other completed trial beats on both tiles (min) and accuracy (max)."""
    done = table[(table["status"] == "COMPLETED") & table["val_accuracy"].notna()]
    tiles = done["tiles"].astype(float).to_numpy()
    acc = done["val_accuracy"].astype(float).to_numpy()
    on = pd.Series(False, index=table.index)
    for i, index in enumerate(done.index):
        dominated = np.any((tiles <= tiles[i]) & (acc >= acc[i]) & ((tiles < tiles[i]) | (acc > acc[i])))
        on[index] = not dominated
    return on


def plot_pareto(table: pd.DataFrame, path: str | os.PathLike,
                title: str = "Architecture search: validation accuracy vs crossbar tiles",
                best: str | None = None) -> str | os.PathLike:
    """Writes a PNG: every completed trial (accuracy vs tiles), the Pareto front and the best trial.

    Args:
        table: `trials_table` output.
        path: PNG file (written atomically).
        title: plot title.
        best: trial id to mark (None: none).

    Returns:
        ``path``.
    """
    from tf_nvm.core.plots import pyplot, write_png  # noqa: PLC0415  (matplotlib only when a plot is drawn)

    plt = pyplot()
    done = table[(table["status"] == "COMPLETED") & table["val_accuracy"].notna()]
    front = done[done["pareto"]].sort_values("tiles")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.scatter(done["tiles"].astype(float), 100 * done["val_accuracy"].astype(float), c="0.6", s=22,
               label=f"completed trials ({len(done)})")
    ax.step(front["tiles"].astype(float), 100 * front["val_accuracy"].astype(float), where="post", c="C3")
    ax.scatter(front["tiles"].astype(float), 100 * front["val_accuracy"].astype(float), c="C3", s=36,
               label="Pareto front")
    if best is not None and (done["trial"] == best).any():
        row = done[done["trial"] == best].iloc[0]
        ax.scatter([float(row["tiles"])], [100 * float(row["val_accuracy"])], marker="*", s=220, c="C0",
                   label=f"best (trial {best})", zorder=3)
    ax.set_title(title)
    ax.set_xlabel("crossbar tiles (count)")
    ax.xaxis.get_major_locator().set_params(integer=True)  # tiles are whole crossbars
    ax.set_ylabel("NVM validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    write_png(fig, path)
    return path
