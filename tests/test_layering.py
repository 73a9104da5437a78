"""The layering rules of the house, by folder (imports parsed with ast, nothing imported), and a light `import tf_nvm`.

1. The packages form layers (``RANKS``): a module imports only its own package and
   packages of a lower rank, function-level imports included. The foundations
   (``tf_nvm.core``), the mapping format and the cost model are the lowest layers
   and never reach TensorFlow, tf_keras or tfmot, directly or through other modules.
2. Only the application layer (`tf_nvm.cli`, `tf_nvm.pipeline`) imports `tflite_export`.
3. `tflite_export` never imports the application layer.
"""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RANKS = {"tf_nvm.core": 0, "tf_nvm.mapping": 1, "tf_nvm.cost": 2, "tf_nvm.keras": 3, "tf_nvm.datasets": 4,
         "tf_nvm.noise": 4, "tf_nvm.simulator": 5, "tflite_export": 5, "tf_nvm.experiments": 6, "tf_nvm.nas": 7,
         "tf_nvm.pipeline": 8, "tf_nvm.cli": 9}
"""Package -> layer: a package may import packages of a lower rank (same rank: neither imports the other)."""
NO_TENSORFLOW = ("tf_nvm.core", "tf_nvm.mapping", "tf_nvm.cost")
"""Packages that never reach TensorFlow (``pip install tf-nvm[mapping]`` without it)."""
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


def _package(module):
    """The ranked package ``module`` belongs to, or None (the ``tf_nvm`` facade and its helper ``tf_nvm._moved``)."""
    return next((root for root in RANKS if _is(module, {root})), None)


def test_every_module_is_in_a_ranked_package():
    """No flat module left at the root of ``tf_nvm``: only the facade ``__init__`` and the old-path aliases."""
    assert sorted(m for m in MODULES if _package(m) is None) == ["tf_nvm", "tf_nvm._moved"]
    assert all(any(_is(m, {root}) for m in MODULES) for root in RANKS)


@pytest.mark.parametrize("package", sorted(RANKS))
def test_a_package_imports_only_lower_layers(package):
    bad = {}
    for module in (m for m in MODULES if _package(m) == package):
        for name in _imports(module):
            target = _package(name)
            if target is not None and target != package and RANKS[target] >= RANKS[package]:
                bad.setdefault(module, []).append(name)
    assert not bad, f"{package} (rank {RANKS[package]}) imports a layer at or above its own: {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _is(m, set(NO_TENSORFLOW))))
def test_foundations_and_mapping_import_no_keras(module):
    bad = sorted(name for name in _reachable(module) if _is(name, TENSORFLOW) or _package(name) not in
                 (None, *NO_TENSORFLOW))
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
    assert "tensorflow" in _imports("tf_nvm.keras.backend")
    assert "tf_nvm.keras.backend" in _reachable("tf_nvm.experiments.models")
    assert "tf_nvm.keras.nvm_model" in _imports("tf_nvm.experiments.runs")  # lazily, inside read_run
    assert "tf_nvm.core.errors" in _imports("tf_nvm.core.registry")


LIGHT = ["tf_nvm", "tf_nvm.core.presets", "tf_nvm.experiments.recipes", "tf_nvm.experiments.runs", "tf_nvm.experiments.data", "tf_nvm.datasets",
         "tf_nvm.mapping", "tf_nvm.core.preprocessing", "tf_nvm.cli", "tf_nvm.cost", "tf_nvm.cost.report",
         "tf_nvm.core.bundled", "tf_nvm.core.noise_presets", "tf_nvm.pipeline", "tf_nvm.cli._checks"]


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
