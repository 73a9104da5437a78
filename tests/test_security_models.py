"""Hostile model files: no code runs while a model loads, nothing hangs, every refusal is a named error."""

import os
import zipfile

import pytest

import tf_nvm
from tf_nvm.keras import model_file
from tf_nvm.keras.backend import keras
from tf_nvm.core.errors import ModelFileError

FIX = r"Fix: pass a model saved with model.save\('NAME.keras'\)"


@pytest.fixture
def lambda_model(tmp_path):
    """A model whose Lambda layer writes a marker file when it runs (i.e. when its code executes)."""
    marker = tmp_path / "CODE_RAN"
    where = str(marker)  # the closure must hold a JSON-serialisable value
    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda x: (open(where, "w").close(), x)[1])(inputs)  # noqa: SIM115
    model = keras.Model(inputs, outputs)
    marker.unlink(missing_ok=True)  # building the model ran it once
    return model, marker


def test_hdf5_renamed_to_keras_is_refused_and_its_lambda_never_runs(lambda_model, tmp_path):
    model, marker = lambda_model
    model.save(tmp_path / "legacy.h5")
    marker.unlink(missing_ok=True)
    os.replace(tmp_path / "legacy.h5", tmp_path / "model.keras")
    with pytest.raises(ModelFileError, match=r"is not a \.keras zip \(File is not a zip file\); an HDF5 or other "
                                             r"file renamed to \.keras is refused, since its legacy loader can run "
                                             r"code\. " + FIX):
        tf_nvm.load_model(tmp_path / "model.keras")
    assert not marker.exists()
    # The hole this closes: tf_keras's own loader runs the Lambda for the same file.
    keras.models.load_model(tmp_path / "model.keras")
    assert marker.exists()


def test_lambda_in_a_real_keras_zip_is_refused_by_safe_mode(lambda_model, tmp_path):
    model, marker = lambda_model
    model.save(tmp_path / "m.keras")
    marker.unlink(missing_ok=True)
    with pytest.raises(ModelFileError, match=r"layer 'lambda_\d+' \(config\.json\.config\.layers\[1\]\) holds a "
                                             r"Lambda layer with serialised Python bytecode \(function_type "
                                             r"'lambda'\), which holds Python code or calls a function by name; .*"
                                             r"Fix: rebuild the model without Lambda layers .* or call "
                                             r"tf_nvm\.load_model\(path, trusted=True\) only for a file you trust\."):
        tf_nvm.load_model(tmp_path / "m.keras")
    assert not marker.exists()


def test_explicit_trust_is_the_only_way_to_run_code(lambda_model, tmp_path):
    model, marker = lambda_model
    model.save(tmp_path / "m.keras")
    marker.unlink(missing_ok=True)
    tf_nvm.load_model(tmp_path / "m.keras", trusted=True)
    assert marker.exists()


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "folder", "missing", "suffix", "not_zip", "no_config"])
def test_paths_that_are_not_keras_zips_fail_at_once(kind, tmp_path):
    path = tmp_path / "m.keras"
    expected = {
        "fifo": r"is not a regular file \(a folder, FIFO or device\)",
        "dev_zero": r"is not a regular file \(a folder, FIFO or device\)",
        "folder": r"is not a regular file \(a folder, FIFO or device\)",
        "missing": r"cannot be read: \[Errno 2\] No such file or directory",
        "suffix": r"does not end in '\.keras'; tf_nvm loads only \.keras zips \(with Keras safe_mode\)",
        "not_zip": r"is not a \.keras zip",
        "no_config": r"is a zip without config\.json, not a \.keras model",
    }[kind]
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block forever
    elif kind == "dev_zero":
        os.symlink("/dev/zero", path)  # reading it would never end
    elif kind == "folder":
        path.mkdir()
    elif kind == "suffix":
        path = tmp_path / "m.h5"
        path.write_bytes(b"\x89HDF\r\n\x1a\n")
    elif kind == "not_zip":
        path.write_bytes(b"garbage" * 10)
    elif kind == "no_config":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("model.weights.h5", b"")
    with pytest.raises(ModelFileError, match=expected + r".*" + FIX):
        tf_nvm.load_model(path)


def test_zip_bomb_config_is_refused_before_decompression(tmp_path):
    """A config.json declaring more than MAX_CONFIG_BYTES (64 MiB of zeros, ~65 KB compressed) is refused unread."""
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", b"0" * (model_file.MAX_CONFIG_BYTES + 1))
    assert path.stat().st_size < 200_000
    with pytest.raises(ModelFileError, match=r"config\.json declares 67108865 bytes, more than the 67108864-byte "
                                             r"limit\. " + FIX):
        tf_nvm.load_model(path)


def test_damaged_keras_zip_is_a_named_error(tmp_path, seeded):
    model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn", filters=(4,), kernel_sizes=(3,)),
                                  "paper-4bit-bipolar")
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, b"{not json" if name == "config.json" else data)
    with pytest.raises(ModelFileError, match=r"bad\.keras': config\.json is not valid JSON \(Expecting property name .*"
                                             r"\)\. Fix: re-save the model with "
                                             r"model\.save\('NAME\.keras'\), or re-run `tf-nvm train`\."):
        tf_nvm.load_model(tmp_path / "bad.keras")
