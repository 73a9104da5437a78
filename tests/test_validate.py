"""tf_nvm.core.validate: the one validator (Field specs) and the one key=value parser."""

import json
import os
import subprocess
import sys

import pytest

from tf_nvm.core.errors import CostModelError, SearchError, SimulatorError, SpecError
from tf_nvm.core.validate import Field, check, find_problem, is_kind, json_schema, parse_override, validate

BITS = Field("bits", "int", minimum=1, maximum=8, doc="converter bits")
CONFIG = (BITS, Field("mode", "str", required=False, default="exact", choices=("exact", "shared")),
          Field("scale", "number", required=False, default=1.0, nullable=True, minimum=0, exclusive_minimum=True),
          Field("rows", "list", required=False, default=[], items=Field("row", "int", minimum=1)),
          Field("adc", "object", required=False, default=None, fields=(BITS,)))


@pytest.mark.parametrize("value, kind, expected", [
    (True, "int", False), (1, "int", True), (1.0, "int", False), (True, "number", False),
    (float("nan"), "number", False), (10 ** 400, "number", False), (2.5, "number", True), (False, "bool", True),
    (0, "bool", False), ({}, "object", True), ([], "list", True), ((), "list", False), (None, "any", True),
])
def test_kinds_never_take_a_bool_for_a_number(value, kind, expected):
    assert is_kind(value, kind) is expected


def test_validate_fills_defaults_and_returns_the_checked_values():
    out = validate({"bits": 4, "rows": [1, 2], "adc": {"bits": 8}}, CONFIG, where="c.json", error=SpecError, fix="f")
    assert out == {"bits": 4, "mode": "exact", "scale": 1.0, "rows": [1, 2], "adc": {"bits": 8}}


@pytest.mark.parametrize("data, message", [
    ({"bits": True}, r"^c\.json: field bits: expected int, got True\. Fix: see the docs\.$"),
    ({"bits": 9}, r"field bits: value 9 is above the maximum 8\."),
    ({}, r"field bits: is missing\."),
    ({"bits": 2, "mode": "fast"}, r"field mode: value 'fast' is not allowed; allowed: one of \['exact', 'shared'\]"),
    ({"bits": 2, "scale": 0}, r"field scale: value 0 is not above the minimum 0\."),
    ({"bits": 2, "rows": [1, 0]}, r"field rows\[1\]: value 0 is below the minimum 1\."),
    ({"bits": 2, "adc": {"bits": "8"}}, r"field adc\.bits: expected int, got '8'\."),
    ({"bits": 2, "adc": {"bits": 8, "bitz": 1}}, r"field adc\.bitz: unknown field\(s\) \['bitz'\]; allowed: "
                                                 r"\['bits'\]\. Did you mean 'bits'\?"),
    ({"bitz": 2}, r"field bitz: unknown field\(s\) \['bitz'\]; allowed: \['adc', 'bits', 'mode', 'rows', 'scale'\]\. "
                  r"Did you mean 'bits'\?"),
])
def test_a_wrong_value_names_the_file_the_path_what_was_received_and_allowed(data, message):
    with pytest.raises(SpecError, match=message):
        validate(data, CONFIG, where="c.json", error=SpecError, fix="see the docs")


def test_callers_keep_their_own_message_form():
    with pytest.raises(SimulatorError, match=r"^ADC\.bits must be an integer in 1\.\.8, got 0$"):
        check(0, BITS, where="x", error=SimulatorError, fix="", message=lambda p: (
            f"ADC.{p.path} must be {p.field.describe()}, got {p.value!r}"))


def test_find_problem_descends_into_one_of_by_the_discriminator():
    a = Field("a", "object", fields=(Field("kind", "str", choices=("a",)), Field("x", "int")))
    b = Field("b", "object", fields=(Field("kind", "str", choices=("b",)), Field("y", "str")))
    either = Field("layer", "object", one_of=(a, b), fields=(Field("kind", "str"),))
    assert find_problem({"kind": "a", "x": 1}, either, "layer") is None
    assert find_problem({"kind": "b", "y": 1}, either, "layer").path == "layer.y"


def test_the_json_schema_states_the_same_rules():
    schema = json_schema(Field("config", "object", fields=CONFIG))
    assert schema["required"] == ["bits"] and schema["additionalProperties"] is False
    assert schema["properties"]["bits"] == {"description": "converter bits", "type": "integer", "minimum": 1,
                                            "maximum": 8}
    assert schema["properties"]["scale"] == {"type": ["number", "null"], "exclusiveMinimum": 0}
    assert schema["properties"]["mode"]["enum"] == ["exact", "shared"]
    assert schema["properties"]["rows"]["items"] == {"type": "integer", "minimum": 1}
    json.dumps(schema)  # JSON-ready


@pytest.mark.parametrize("text, expected", [
    ("adc_share_columns=4", ("adc_share_columns", 4)), (" name = fast ", ("name", "fast")),
    ("table=[1, 2]", ("table", [1, 2])), ("a=b=c", ("a", "b=c")),
])
def test_the_one_override_parser_reads_json_values(text, expected):
    assert parse_override(text, error=CostModelError, example="adc_share_columns=4") == expected


def test_the_one_override_parser_refuses_a_setting_without_equals_and_converts_on_request():
    with pytest.raises(SimulatorError, match=r"^tf-nvm simulate: setting 'adc\.bits' is not KEY=VALUE\. Fix: e\.g\. "
                                             r"--set adc\.bits=6\.$"):
        parse_override("adc.bits", error=SimulatorError, example="adc.bits=6", owner="tf-nvm simulate: ")
    assert parse_override("adc.bits=4,6", error=SimulatorError, example="adc.bits=6",
                          convert=lambda raw, text: raw.split(",")) == ("adc.bits", ["4", "6"])


def test_a_search_config_is_checked_field_by_field_before_tensorflow_loads(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"hypermodel": "har_cnn", "validation_subjects": True,
                                "tuner": {"kind": "random", "max_trials": 10}}))
    code = ("import sys, tf_nvm.experiments.recipes as r\n"
            "try:\n    r.check_search_config(sys.argv[1])\n"
            "except r.SearchError as err:\n    print(err)\n"
            "print('tensorflow' in sys.modules)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this checkout's tf_nvm
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         cwd=root).stdout
    assert out.splitlines() == [
        "search 'c': validation_subjects must be an integer >= 1, got True. Fix: correct the search config, or start "
        "from a bundled one (`tf-nvm recipes` lists them).", "False"]
    assert issubclass(SearchError, ValueError)
