"""The mapping file's JSON Schema: generated from the reader's field definitions, shipped, and satisfied by
real exports (checked with the `jsonschema` library); a wrong field fails both the schema and the reader."""

import copy
import importlib.resources
import json
import os
import warnings

import jsonschema
import pytest

import tf_nvm
from tf_nvm import MappingError
from tf_nvm import mapping as M
from tf_nvm.keras.backend import keras
from tflite_export import export_crossbar

L = keras.layers


def _shipped():
    return json.loads(importlib.resources.files("tf_nvm.mapping").joinpath("mapping.schema.json").read_text())


def test_the_shipped_schema_is_the_generated_one():
    """Regenerate with: python3 -c "import json, tf_nvm.mapping as m; print(json.dumps(m.json_schema(), indent=1))"
    > tf_nvm/mapping/mapping.schema.json"""
    assert _shipped() == M.json_schema()


def test_the_schema_is_a_valid_draft_2020_12_schema():
    schema = M.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_docs_embed_the_shipped_schema():
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "mapping_schema.md"), encoding="utf-8") as handle:
        text = handle.read()
    block = text.split("<!-- schema:begin -->")[1].split("<!-- schema:end -->")[0]
    assert json.loads(block.strip().removeprefix("```json").removesuffix("```")) == M.json_schema()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny conv + batch norm + dense mapping with a standardization, exported (json document, path)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 2), name="window")
    x = L.Concatenate(name="pm")([inputs, L.Rescaling(-1.0, name="neg")(inputs)])
    x = L.Conv1D(3, 3, padding="same", name="conv")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    x = L.Flatten(name="flat")(x)
    outputs = L.Dense(2, name="out")(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(keras.Model(inputs, outputs), "paper-2bit-bipolar", init="device")
    prefix = str(tmp_path_factory.mktemp("schema") / "m")
    export_crossbar(model, prefix, preprocessing={"input_mean": [0.1, 0.2], "input_std": [1.0, 2.0]})
    with open(prefix + ".json", encoding="utf-8") as handle:
        return json.load(handle), prefix


def test_an_exported_mapping_satisfies_the_schema(exported):
    doc, _ = exported
    assert {layer["kind"] for layer in doc["layers"]} == {"crossbar", "digital"}
    jsonschema.validate(doc, _shipped(), cls=jsonschema.Draft202012Validator)


def _write(prefix, doc, tmp_path):
    """``doc`` saved as ``tmp_path/m.json`` beside a copy of the export's npz (which it names)."""
    name = doc["arrays_file"].get("name") or os.path.basename(prefix)
    source = os.path.join(os.path.dirname(prefix), name)
    if os.path.isfile(source):
        (tmp_path / name).write_bytes(open(source, "rb").read())
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _crossbar(doc):
    return next(layer for layer in doc["layers"] if layer["kind"] == "crossbar")


@pytest.mark.parametrize("change, message", [
    (lambda d: _crossbar(d)["geometry"].update(rows=True), r"geometry\.rows: expected int, got True"),
    (lambda d: _crossbar(d)["tiling"]["tiles"][0].update(col_stop="4"), r"tiles\[0\]\.col_stop: expected int"),
    (lambda d: _crossbar(d).pop("adc_full_scale"), r"\.adc_full_scale: is missing"),
    (lambda d: d["input"].update(shape=[8, 0]), r"input\.shape\[1\]: value 0 is below the minimum 1"),
    (lambda d: d["layers"][0].update(kind="analog"), r"\.kind: value 'analog' is not 'crossbar' or 'digital'"),
    (lambda d: d["spec"].update(weight_bits=9), r"NVMSpec\.weight_bits must be an integer in 1\.\.7"),
    (lambda d: d["spec"].update(weight_scale=None), r"spec\.weight_scale: is null"),
    (lambda d: d["arrays_file"].pop("sha256"), r"arrays_file\.sha256: is missing"),
])
def test_a_wrong_field_fails_the_schema_and_the_reader(exported, tmp_path, change, message):
    doc, prefix = exported
    bad = copy.deepcopy(doc)
    change(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, _shipped(), cls=jsonschema.Draft202012Validator)
    with pytest.raises(MappingError, match=message + r".*Fix: "):
        M.load(_write(prefix, bad, tmp_path))
