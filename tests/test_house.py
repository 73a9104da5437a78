"""The size rules of the house and its import graph (sources parsed with ast; nothing imported).

* no module of ``tf_nvm`` or ``tflite_export`` over `MAX_MODULE_LINES` lines;
* no function over `MAX_FUNCTION_LINES` lines of code (its docstring not counted);
* no import circle among the product's modules, function-level imports included (the
  ``tf_nvm`` facade's lazy name table is not an import);
* every function-level import is a lazy import of something heavy, and says so.
"""

import ast

import pytest

from test_layering import MODULES, _imports

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
HEAVY = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "keras_tuner", "keras", "ai_edge_litert",
         "tflite_micro", "tflite_export", "pandas", "matplotlib", "scipy", "markdown")
"""Third-party modules (and the exporter) a light module may import inside a function, when first needed."""


def _tree(module):
    with open(MODULES[module], encoding="utf-8") as handle:
        return ast.parse(handle.read(), MODULES[module])


def _code_lines(function):
    """Lines of ``function`` from ``def`` to its end, without its docstring."""
    lines = function.end_lineno - function.lineno + 1
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        lines -= body[0].end_lineno - body[0].lineno + 1
    return lines


def test_no_module_is_too_long():
    long = {}
    for module, path in MODULES.items():
        with open(path, encoding="utf-8") as handle:
            count = sum(1 for _ in handle)
        if count > MAX_MODULE_LINES:
            long[module] = count
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_too_long():
    long = {}
    for module in MODULES:
        for node in ast.walk(_tree(module)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > MAX_FUNCTION_LINES:
                long[f"{module}:{node.name}"] = _code_lines(node)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines of code (docstrings not counted): {long}"


def _graph():
    graph = {module: {name for name in _imports(module) if name in MODULES and name != module} for module in MODULES}
    graph["tf_nvm"] = set()  # the facade: its imports of core names only; its lazy names are strings
    return graph


def _circles(graph):
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, circles, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    assert _circles(_graph()) == []


def _function_level_imports(module):
    """(line, imported name) of every import inside a function of ``module``."""
    found = []
    for function in ast.walk(_tree(module)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                found.extend((node.lineno, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.append((node.lineno, node.module or ""))
    return found


def _reaches_heavy(name, seen=None):
    """Whether importing ``name`` loads a `HEAVY` module (directly or through tf_nvm modules)."""
    if name.split(".")[0] in HEAVY:
        return True
    seen = set() if seen is None else seen
    if name not in MODULES or name in seen:
        return False
    seen.add(name)
    return any(_reaches_heavy(child, seen) for child in _imports(name) if child != "tf_nvm")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "tf_nvm"))
def test_function_level_imports_are_lazy_heavy_imports(module):
    light = sorted({f"line {line}: {name}" for line, name in _function_level_imports(module)
                    if (name.startswith(("tf_nvm", "tflite_export")) or name.split(".")[0] in HEAVY)
                    and not _reaches_heavy(name)})
    assert not light, f"{module} imports light modules inside functions (move them to the top): {light}"


def test_the_heavy_rule_sees_heavy_modules():
    assert _reaches_heavy("tf_nvm.keras.quantize") and _reaches_heavy("tensorflow")
    assert not _reaches_heavy("tf_nvm.core.errors") and not _reaches_heavy("tf_nvm.mapping.io")


def test_every_all_names_each_public_name_once():
    """No name twice in a module's ``__all__`` (a renamed name next to its kept alias is the usual slip)."""
    twice = {}
    for module in MODULES:
        for node in _tree(module).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets) \
                    and isinstance(node.value, (ast.List, ast.Tuple)):
                names = [getattr(e, "value", None) for e in node.value.elts]
                repeated = sorted({name for name in names if names.count(name) > 1})
                if repeated:
                    twice[module] = repeated
    assert not twice, f"names listed twice in __all__: {twice}"
