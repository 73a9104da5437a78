"""Hostile or interrupted mapping files: bounded reads, one commit point, concurrent exporters, no hangs."""

import io
import json
import multiprocessing
import os
import pathlib
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest

from tf_nvm import MappingError
from tf_nvm import mapping as M
from tf_nvm.mapping import io as mapping_io

from test_mapping import _small_model  # noqa: E402  (tests/ is on sys.path under pytest)
from tflite_export import build_mapping


@pytest.fixture(scope="module")
def two_mappings():
    """Two different mappings of the same network shape (different weights)."""
    return build_mapping(_small_model("paper-2bit-bipolar", seed=0)), build_mapping(_small_model("paper-2bit-bipolar",
                                                                                                  seed=1))


def _arrays_of(json_path):
    return json.loads(open(json_path, "rb").read())["arrays_file"]["name"]


def test_reexport_failing_before_the_commit_keeps_the_previous_export(two_mappings, tmp_path, monkeypatch):
    first, second = two_mappings
    json_path, old_npz = M.save(first, tmp_path / "m")

    def killed():
        raise KeyboardInterrupt("killed between the npz and the JSON (injected)")

    monkeypatch.setattr(mapping_io, "_before_rename_hook", killed)
    with pytest.raises(KeyboardInterrupt):
        M.save(second, tmp_path / "m")
    monkeypatch.undo()
    again = M.load(tmp_path / "m")  # the previous export, whole
    np.testing.assert_array_equal(again.crossbar_layers[0].codes, first.crossbar_layers[0].codes)
    assert sorted(os.listdir(tmp_path)) == sorted(["m.json", os.path.basename(old_npz)])
    _, new_npz = M.save(second, tmp_path / "m")  # a later export commits and removes the old arrays
    assert sorted(os.listdir(tmp_path)) == sorted(["m.json", os.path.basename(new_npz)])
    np.testing.assert_array_equal(M.load(tmp_path / "m").crossbar_layers[0].codes, second.crossbar_layers[0].codes)


def test_reexport_killed_by_sigkill_keeps_a_loadable_export(two_mappings, tmp_path):
    """A child that exports in a loop is SIGKILLed at random moments; the pair on disk always loads."""
    first, _ = two_mappings
    M.save(first, tmp_path / "m")
    code = ("import sys, pickle\nfrom tf_nvm import mapping as M\nm = pickle.load(open(sys.argv[1], 'rb'))\n"
            "print('ready', flush=True)\nwhile True:\n    M.save(m, sys.argv[2])\n")
    pickle_path = tmp_path / "m.pickle"  # written by this test, read by its own child
    import pickle  # noqa: PLC0415
    pickle_path.write_bytes(pickle.dumps(first))
    rng = np.random.default_rng(0)
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", code, str(pickle_path), str(tmp_path / "m")],
                                 stdout=subprocess.PIPE, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert child.stdout.readline().strip() == b"ready"
        threading.Event().wait(float(rng.uniform(0.05, 0.4)))
        child.kill()
        child.wait()
        assert M.load(tmp_path / "m").summary() == first.summary()


def _export_many(args):
    mapping, prefix, count = args
    for _ in range(count):
        M.save(mapping, prefix)
    return True


def test_concurrent_exporters_leave_a_pair_that_loads(two_mappings, tmp_path):
    first, second = two_mappings
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        assert all(pool.map(_export_many, [(first, str(tmp_path / "m"), 15), (second, str(tmp_path / "m"), 15)]))
    loaded = M.load(tmp_path / "m")
    assert loaded.summary() == first.summary()
    codes = loaded.crossbar_layers[0].codes
    assert np.array_equal(codes, first.crossbar_layers[0].codes) or np.array_equal(codes,
                                                                                   second.crossbar_layers[0].codes)


def test_readers_never_see_a_json_without_its_npz(two_mappings, tmp_path):
    first, second = two_mappings
    M.save(first, tmp_path / "m")
    stop = threading.Event()
    failures = []

    def read():
        while not stop.is_set():
            try:
                M.load(tmp_path / "m")
            except MappingError as err:  # pragma: no cover (the failure this test exists to catch)
                failures.append(str(err))

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(30):
        M.save((first, second)[i % 2], tmp_path / "m")
    stop.set()
    reader.join()
    assert failures == []


# ---------------------------------------------------------------- bounded reads
def _resave_npz(json_path, arrays, extra=None):
    """Rewrites the npz the JSON names with ``arrays`` (+ ``extra`` raw members) and fixes the recorded hash."""
    import hashlib  # noqa: PLC0415

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    if extra:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for item in src.infolist():
                dst.writestr(item, src.read(item.filename))
            for name, payload in extra.items():
                dst.writestr(name, payload)
        data = out.getvalue()
    json_path = pathlib.Path(json_path)
    doc = json.loads(json_path.read_bytes())
    (json_path.parent / doc["arrays_file"]["name"]).write_bytes(data)
    doc["arrays_file"]["sha256"] = hashlib.sha256(data).hexdigest()
    json_path.write_text(json.dumps(doc))


def _peak_rss_mb_of_load(prefix):
    # VmHWM (the peak of this process's own memory since exec), not ru_maxrss: Linux carries the forking parent's
    # peak (pytest's, gigabytes late in the suite) into ru_maxrss, which would hide what the load allocates.
    code = ("import sys\nfrom tf_nvm import MappingError, mapping as M\n"
            "def peak():\n    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
            "base = peak()\ntry:\n    M.load(sys.argv[1]); print('loaded')\nexcept MappingError as err:\n"
            "    print('MappingError', str(err)[:300])\n"
            "print((peak() - base) // 1024)\n")
    result = subprocess.run([sys.executable, "-c", code, str(prefix)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and len(lines) == 2, result.stderr[-2000:]
    return lines[0], int(lines[1])


@pytest.mark.slow
def test_unreferenced_huge_npz_member_is_never_decompressed(two_mappings, tmp_path):
    first, _ = two_mappings
    json_path, npz_path = M.save(first, tmp_path / "m")
    with np.load(npz_path) as npz:
        arrays = dict(npz)
    header = b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (2147483648,), }"
    header = header.ljust(10 + 0x76 - 1) + b"\n"
    bomb = header + bytes(2 * 1024 ** 3)  # 2 GiB of zeros, about 2 MB compressed
    _resave_npz(json_path, arrays, {"unused.npy": bomb})
    del bomb
    assert os.path.getsize(tmp_path / _arrays_of(json_path)) < 4 * 1024 ** 2
    outcome, peak_mb = _peak_rss_mb_of_load(tmp_path / "m")
    assert outcome == "loaded" and peak_mb < 200, (outcome, peak_mb)


def test_npy_header_declaring_a_trillion_elements_is_refused_before_allocating(two_mappings, tmp_path):
    first, _ = two_mappings
    json_path, npz_path = M.save(first, tmp_path / "m")
    with np.load(npz_path) as npz:
        arrays = dict(npz)
    key = "quant_conv/codes"
    header = b"\x93NUMPY\x01\x00v\x00{'descr': '|i1', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header = header.ljust(10 + 0x76 - 1) + b"\n"
    arrays.pop(key)
    _resave_npz(json_path, arrays, {f"{key}.npy": header + b"\x00" * 64})
    outcome, peak_mb = _peak_rss_mb_of_load(tmp_path / "m")
    assert outcome.startswith("MappingError") and "declares shape (1000000, 1000000)" in outcome, outcome
    assert peak_mb < 200, peak_mb


@pytest.mark.parametrize("kind", ["fifo", "dev_zero_json", "dev_zero_npz", "folder"])
def test_special_files_are_refused_at_once(two_mappings, tmp_path, kind):
    first, _ = two_mappings
    json_path, npz_path = M.save(first, tmp_path / "m")
    if kind == "fifo":
        os.unlink(json_path)
        os.mkfifo(json_path)  # opening it for reading would block forever
    elif kind == "dev_zero_json":
        os.unlink(json_path)
        os.symlink("/dev/zero", json_path)  # its size is 0, and it never ends
    elif kind == "dev_zero_npz":
        os.unlink(npz_path)
        os.symlink("/dev/zero", npz_path)
    else:
        os.unlink(json_path)
        os.mkdir(json_path)
    code = ("import sys\nfrom tf_nvm import MappingError, mapping as M\ntry:\n    M.load(sys.argv[1])\n"
            "except MappingError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True,
                            timeout=60)
    assert "not a regular file; only regular files are read" in result.stdout and "Fix:" in result.stdout, \
        result.stdout + result.stderr


def test_one_by_one_crossbars_are_counted_before_any_tile_is_built(two_mappings, tmp_path):
    """A small JSON whose spec asks tiny crossbars fails on the tile count, before any Tile is built."""
    first, _ = two_mappings
    json_path, _ = M.save(first, tmp_path / "m")
    doc = json.loads(open(json_path, "rb").read())
    doc["spec"]["rows"], doc["spec"]["cols"] = 1, 2
    pathlib.Path(json_path).write_text(json.dumps(doc))
    with pytest.raises(MappingError, match=r"tile\(s\) listed, the spec's 1x2 crossbars need \d+ for a"):
        M.load(tmp_path / "m")
    with pytest.raises(MappingError, match=r"needs 4194304 crossbars of 1 x 1, more than the 65536 a layer may use"):
        M.plan_tiles(2048, 2048, first.spec.replace(rows=1, cols=1, unipolar=True))
