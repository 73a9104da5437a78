"""The layering rules of the house (imports parsed with ast, nothing imported), and a light `import tf_nvm`.

1. Foundation modules, the mapping format and the cost model import nothing
   from TensorFlow, tf_keras or tfmot, nor any Keras-side tf_nvm module,
   directly or through other tf_nvm modules.
2. Only the application layer (`tf_nvm.cli`, `tf_nvm.pipeline`) imports `tflite_export`.
3. `tflite_export` never imports the application layer.
"""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FOUNDATION = {"tf_nvm.errors", "tf_nvm.registry", "tf_nvm.atomic", "tf_nvm.spec", "tf_nvm.presets", "tf_nvm.grid",
              "tf_nvm.preprocessing", "tf_nvm.modes", "tf_nvm.plots", "tf_nvm.tables",
              "tf_nvm.metrics", "tf_nvm.provenance", "tf_nvm.bundled", "tf_nvm.noise_presets", "tf_nvm.quiet"}
KERAS_SIDE = {f"tf_nvm.{name}" for name in ("_keras", "quantizers", "quantize_configs", "scheme", "layers", "digital",
                                            "graph", "nvm_model", "quantize", "constraints", "serialization",
                                            "models", "train", "fixed_point", "sign_split",
                                            "precision")}
TENSORFLOW = {"tensorflow", "tf_keras", "tensorflow_model_optimization", "keras"}


def _modules():
    """{dotted module name: source path} of tf_nvm and tflite_export."""
    found = {}
    for package in ("tf_nvm", "tflite_export"):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].split(os.sep)
                    if rel[-1] == "__init__":
                        rel = rel[:-1]
                    found[".".join(rel)] = os.path.join(folder, name)
    return found


MODULES = _modules()


def _imports(module):
    """Every module an ``import`` anywhere in ``module``'s source names (functions included)."""
    path = MODULES[module]
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return names


def _reachable(module):
    """Modules reachable from ``module`` through tf_nvm's own imports (the package ``tf_nvm`` itself not followed)."""
    seen, todo = set(), [module]
    while todo:
        for name in _imports(todo.pop()):
            if name not in seen:
                seen.add(name)
                if name in MODULES and name != "tf_nvm":
                    todo.append(name)
    return seen


def _is(name, roots):
    return any(name == root or name.startswith(root + ".") for root in roots)


def test_the_module_lists_name_real_modules():
    assert FOUNDATION <= set(MODULES) and KERAS_SIDE <= set(MODULES)
    assert all(any(_is(m, {root}) for m in MODULES) for root in ("tf_nvm.mapping", "tf_nvm.cli", "tf_nvm.cost"))


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m in FOUNDATION or _is(m, {"tf_nvm.mapping",
                                                                                              "tf_nvm.cost"})))
def test_foundations_and_mapping_import_no_keras(module):
    bad = sorted(name for name in _reachable(module) if _is(name, TENSORFLOW | KERAS_SIDE))
    assert not bad, f"{module} imports (directly or through tf_nvm modules) {bad}"


APPLICATION = {"tf_nvm.cli", "tf_nvm.pipeline"}


def test_only_the_application_layer_imports_tflite_export():
    bad = {m: sorted(n for n in _imports(m) if _is(n, {"tflite_export"}))
           for m in MODULES if _is(m, {"tf_nvm"}) and not _is(m, APPLICATION)}
    assert not {m: names for m, names in bad.items() if names}
    assert any(_is(n, {"tflite_export"}) for n in _imports("tf_nvm.cli.export"))  # the rule is not vacuous


def test_tflite_export_never_imports_the_cli():
    bad = {m: sorted(n for n in _imports(m) if _is(n, APPLICATION)) for m in MODULES if _is(m, {"tflite_export"})}
    assert not {m: names for m, names in bad.items() if names}


def test_the_rules_see_keras_imports():
    """The parser finds the imports the rules look for (the rules would otherwise pass on anything)."""
    assert "tensorflow" in _imports("tf_nvm._keras")
    assert "tf_nvm._keras" in _reachable("tf_nvm.models")
    assert "tf_nvm.nvm_model" in _imports("tf_nvm.runs")  # lazily, inside read_run
    assert "tf_nvm.errors" in _imports("tf_nvm.registry")


LIGHT = ["tf_nvm", "tf_nvm.presets", "tf_nvm.recipes", "tf_nvm.runs", "tf_nvm.data", "tf_nvm.datasets",
         "tf_nvm.mapping", "tf_nvm.preprocessing", "tf_nvm.cli", "tf_nvm.cost", "tf_nvm.cost.report",
         "tf_nvm.bundled", "tf_nvm.noise_presets", "tf_nvm.pipeline", "tf_nvm.cli._checks"]


def test_light_imports_leave_tensorflow_out():
    code = ("import sys\n"
            f"for name in {LIGHT!r}:\n"
            "    __import__(name)\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', "
            "'tensorflow_model_optimization', 'tflite_export'))\n"
            "print(heavy[:5])\n")
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
