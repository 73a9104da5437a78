"""Hostile ``.keras`` files for `tf_nvm.load_model` (issue #26, item 3): names of code are refused before Keras
reads the file, and a failed load leaves nothing in ``$TMPDIR``."""

import json
import os
import tempfile
import zipfile

import pytest

import tf_nvm
from tf_nvm.keras.backend import keras
from tf_nvm.core.errors import ModelFileError

ALLOWED = (r"tf_nvm loads only layers, functions and objects of the Keras and tf_nvm registries \(and tfmot's "
           r"quantize wrappers\) and refuses it before Keras reads the file\. Fix: rebuild the model without Lambda "
           r"layers and with Keras or tf_nvm layers, activations and initializers only \(register a custom class "
           r"with tf_nvm\.keras\.serialization\.add_custom_object\), or call tf_nvm\.load_model\(path, trusted=True\) only "
           r"for a file you trust\.")


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A private ``$TMPDIR`` (tempfile.tempdir), so that what a load leaves there can be counted."""
    folder = tmp_path / "TMPDIR"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def saved(tmp_path):
    """(config dict, members dict) of a small plain Keras model saved as .keras."""
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2, activation="relu", name="dense")(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "plain.keras")
    with zipfile.ZipFile(tmp_path / "plain.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return json.loads(members["config.json"]), members


def _write(path, config, members, extra=None):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, json.dumps(config) if name == "config.json" else data)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def _lambda(module, name):
    """A Lambda layer config whose function is ``module.name`` (function_type "function")."""
    return {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
            "config": {"name": "lam", "trainable": True, "dtype": "float32", "function": name,
                       "function_type": "function", "module": module, "output_shape": None,
                       "output_shape_type": "raw", "output_shape_module": None, "arguments": {}},
            "name": "lam", "inbound_nodes": [[["dense", 0, 0, {}]]]}


def _with_lambda(config, module, name):
    config["config"]["layers"].append(_lambda(module, name))
    config["config"]["output_layers"] = [["lam", 0, 0]]
    return config


FUNCTIONS = [("builtins", "exit"), ("builtins", "input"), ("os", "system")]


@pytest.mark.parametrize(("module", "name"), FUNCTIONS)
def test_lambda_naming_a_function_is_refused_before_keras_reads_it(saved, tmp_path, private_tmp, module, name):
    config, members = saved
    path = _write(tmp_path / "m.keras", _with_lambda(config, module, name), members)
    with pytest.raises(ModelFileError, match=r"model file '.*m\.keras': layer 'lam' \(config\.json\.config\.layers"
                                             r"\[2\]\) holds a Lambda layer with function '" + name + r"' "
                                             r"\(function_type 'function'\), which holds Python code or calls a "
                                             r"function by name; " + ALLOWED):
        tf_nvm.load_model(path)
    assert os.listdir(private_tmp) == []


@pytest.mark.parametrize("key", ["activation", "kernel_initializer"])
@pytest.mark.parametrize(("module", "name"), FUNCTIONS)
def test_activation_or_initializer_given_as_a_foreign_function_is_refused(saved, tmp_path, private_tmp, key,
                                                                          module, name):
    config, members = saved
    config["config"]["layers"][1]["config"][key] = {"module": module, "class_name": "function", "config": name,
                                                    "registered_name": "function"}
    path = _write(tmp_path / "m.keras", config, members)
    with pytest.raises(ModelFileError, match=r"layer 'dense' \(config\.json\.config\.layers\[1\]\.config\." + key +
                                             r"\) holds the function " + module + r"\." + name +
                                             r" \(registered_name 'function'\); " + ALLOWED):
        tf_nvm.load_model(path)
    assert os.listdir(private_tmp) == []


@pytest.mark.parametrize(("where", "obj", "found"), [
    ("kernel_constraint", {"module": "os", "class_name": "system", "config": {}, "registered_name": None},
     r"the class os\.system \(registered_name None\)"),
    ("kernel_regularizer", {"module": "evil_module", "class_name": "Evil", "config": {},
                            "registered_name": "Custom>Evil"},
     r"the class evil_module\.Evil \(registered_name 'Custom>Evil'\)"),
    ("kernel_initializer", {"module": "keras.utils", "class_name": "Progbar", "config": {}, "registered_name": None},
     r"the class keras\.utils\.Progbar \(registered_name None\)"),
])
def test_class_outside_the_registries_is_refused(saved, tmp_path, private_tmp, where, obj, found):
    config, members = saved
    config["config"]["layers"][1]["config"][where] = obj
    path = _write(tmp_path / "m.keras", config, members)
    with pytest.raises(ModelFileError, match=r"layer 'dense' .* holds " + found + "; " + ALLOWED):
        tf_nvm.load_model(path)


def test_unknown_layer_class_is_refused(saved, tmp_path):
    config, members = saved
    config["config"]["layers"][1].update(module="subprocess", class_name="Popen", registered_name=None)
    path = _write(tmp_path / "m.keras", config, members)
    with pytest.raises(ModelFileError, match=r"layer 'dense' \(config\.json\.config\.layers\[1\]\) holds the class "
                                             r"subprocess\.Popen \(registered_name None\); " + ALLOWED):
        tf_nvm.load_model(path)


def test_deeply_nested_config_is_a_named_error(saved, tmp_path):
    config, members = saved
    config["config"]["layers"][1]["config"]["deep"] = json.loads("[" * 300 + "]" * 300)
    path = _write(tmp_path / "m.keras", config, members)
    with pytest.raises(ModelFileError, match=r"config\.json is refused: arrays and objects nest deeper than 200 "
                                             r"levels at \$\.config\.layers\[1\]\.config\.deep"):
        tf_nvm.load_model(path)


def test_legitimate_models_still_load(saved, tmp_path, private_tmp, seeded):
    model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn", filters=(4,), kernel_sizes=(3,)),
                                  "paper-4bit-bipolar")
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, 10)),  # as train_model does
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.save(tmp_path / "nvm.keras")
    before = sorted(os.listdir(private_tmp))
    assert tf_nvm.load_model(tmp_path / "nvm.keras").name == model.name
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_initializer="he_normal",
                                                            activation=keras.activations.tanh)]).save(
        tmp_path / "seq.keras")
    tf_nvm.load_model(tmp_path / "seq.keras")
    assert [name for name in os.listdir(private_tmp) if name not in before and not name.startswith("__autograph")] \
        == []


def test_failed_keras_load_leaves_no_extraction_folder(saved, tmp_path, private_tmp):
    """tf_keras extracts an archive of more than three members and kept the folder when loading then failed."""
    config, members = saved
    config["config"]["layers"][1]["config"]["units"] = 5  # the weights saved have 2 units: loading them fails
    path = _write(tmp_path / "m.keras", config, members, extra={"assets/big.bin": b"\0" * (1 << 20)})
    for _ in range(3):
        with pytest.raises(ModelFileError, match=r"could not be loaded: "):
            tf_nvm.load_model(path)
    assert os.listdir(private_tmp) == []
