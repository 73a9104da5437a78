"""The module paths of 0.3 still import in 0.4 (`tf_nvm._moved`): the same module objects, warned where deprecated."""

import subprocess
import sys

import pytest

from tf_nvm import _moved

_CHILD = """
import importlib, json, sys, warnings
import tf_nvm
old, new = sys.argv[1], sys.argv[2]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    module = importlib.import_module(old)
print(json.dumps({"same": module is importlib.import_module(new), "name": module.__name__,
                  "spec": module.__spec__.name,
                  "warnings": [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)
                               and "tf_nvm" in str(w.message)]}))
"""


def _import_in_child(old, new):
    import json  # noqa: PLC0415

    done = subprocess.run([sys.executable, "-c", _CHILD, old, new], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_old_path_names_an_existing_new_module():
    import importlib.util  # noqa: PLC0415

    assert len(_moved.MOVED) == 37
    missing = [new for new in _moved.MOVED.values() if importlib.util.find_spec(new) is None]
    assert not missing
    assert _moved.PUBLIC <= set(_moved.MOVED)


@pytest.mark.parametrize("old", ["tf_nvm.spec", "tf_nvm.runs", "tf_nvm._keras"])
def test_an_old_path_is_the_new_module_and_warns(old):
    new = _moved.MOVED[old]
    found = _import_in_child(old, new)
    assert found["same"] and found["name"] == new and found["spec"] == new  # the module keeps its own spec
    assert found["warnings"] == [f"{old} moved to {new} in tf_nvm 0.4; the old path goes in 0.5. Fix: import {new}."]


@pytest.mark.parametrize("old", ["tf_nvm.layers", "tf_nvm.presets"])
def test_a_public_attribute_path_imports_without_a_warning(old):
    found = _import_in_child(old, _moved.MOVED[old])
    assert found["same"] and found["warnings"] == []


def test_an_unknown_path_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError, match="tf_nvm.not_a_module"):
        __import__("tf_nvm.not_a_module")
