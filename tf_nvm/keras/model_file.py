"""Loading a saved NVM model safely: a ``.keras`` zip of bounded size, its ``config.json`` checked first.

`load_model` accepts by default only a regular ``.keras`` zip (`check_keras_file`) whose ``config.json``
names nothing outside the Keras and tf_nvm registries (`check_keras_config`), and loads it with Keras
``safe_mode``; ``trusted=True`` is the explicit opt-in for other files.
"""

import contextlib
import importlib
import os
import shutil
import stat
import sys
import zipfile
from typing import Any, Iterator

from tf_nvm.core.errors import ModelFileError, PrecisionError
from tf_nvm.core.safe_io import loads_json, open_zip, read_zip_member
from tf_nvm.keras.backend import keras, keras_api_symbol, quantize_scope, tf
from tf_nvm.keras.precision import require_float32
from tf_nvm.keras.serialization import custom_objects

__all__ = ["load_model", "check_keras_file", "check_keras_config", "MAX_CONFIG_BYTES", "MAX_MODEL_BYTES",
           "MAX_CONFIG_DEPTH"]

MAX_CONFIG_BYTES = 64 * 1024 * 1024
"""Largest uncompressed ``config.json`` (and ``metadata.json``) accepted in a ``.keras`` zip, bytes."""

MAX_MODEL_BYTES = 4 * 1024 ** 3
"""Largest total uncompressed size of a ``.keras`` zip's members accepted, bytes (4 GiB)."""

MAX_CONFIG_DEPTH = 200
"""Deepest nesting of lists/dicts accepted in a ``.keras`` ``config.json`` (a tf_nvm model nests about 15 deep)."""



def check_keras_file(path: str | os.PathLike[str]) -> None:
    """Checks that ``path`` is a regular ``.keras`` zip of sane size, without loading it.

    A file named ``*.keras`` that is really HDF5 would take tf_keras's legacy
    loader, where ``safe_mode`` does not apply and a ``Lambda`` layer's code runs
    while the model loads; FIFOs and devices would hang or never end.

    Args:
        path: the file.

    Raises:
        ModelFileError: not a regular file, not named ``.keras``, not a zip, no
            ``config.json``, or members larger than `MAX_CONFIG_BYTES` /
            `MAX_MODEL_BYTES` uncompressed.
    """
    path = os.fspath(path)
    fix = ("Fix: pass a model saved with model.save('NAME.keras') by tf_nvm/tf_keras, or call "
           "tf_nvm.load_model(path, trusted=True) for a file you trust (SavedModel folders, .h5).")
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as err:
        raise ModelFileError(f"model file {path!r} cannot be read: {err}. {fix}") from None
    if not stat.S_ISREG(mode):
        raise ModelFileError(f"model file {path!r} is not a regular file (a folder, FIFO or device). {fix}")
    if not path.endswith(".keras"):
        raise ModelFileError(f"model file {path!r} does not end in '.keras'; tf_nvm loads only .keras zips "
                             f"(with Keras safe_mode). {fix}")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ModelFileError(f"model file {path!r} is not a .keras zip ({err}); an HDF5 or other file renamed to "
                             f".keras is refused, since its legacy loader can run code. {fix}") from None
    if "config.json" not in members:
        raise ModelFileError(f"model file {path!r} is a zip without config.json, not a .keras model. {fix}")
    for name in ("config.json", "metadata.json"):
        if name in members and members[name].file_size > MAX_CONFIG_BYTES:
            raise ModelFileError(f"model file {path!r}: {name} declares {members[name].file_size} bytes, more than "
                                 f"the {MAX_CONFIG_BYTES}-byte limit. {fix}")
    total = sum(info.file_size for info in members.values())
    if total > MAX_MODEL_BYTES:
        raise ModelFileError(f"model file {path!r} declares {total} uncompressed bytes, more than the "
                             f"{MAX_MODEL_BYTES}-byte limit of a tf_nvm model. {fix}")


_KERAS_FUNCTION_MODULES = ("activations", "constraints", "initializers", "losses", "metrics", "optimizers",
                           "regularizers")
"""Keras API modules whose functions a config may name (tf_keras's own list of built-in function modules)."""
_KERAS_CLASS_MODULES = _KERAS_FUNCTION_MODULES + ("layers", "mixed_precision", "models")
"""Keras API modules whose classes a config may name."""
_DATA_OBJECTS = ("__tensor__", "__numpy__", "__bytes__")
"""Serialised values (not code) of the Keras v3 format."""
_CODE_NAMES = ("Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__")
"""Objects that carry Python code or call a function by name: refused unless trusted."""


def _allowed_classes() -> dict[str, Any]:
    """{registered or class name: class} of the tf_nvm registry and tfmot's quantize scope."""
    allowed = dict(custom_objects())
    scope = quantize_scope()
    for objects in getattr(scope, "custom_objects", ()):  # a tuple of the dicts passed to the scope
        allowed.update(objects)
    return allowed


def _keras_symbol(module: Any, name: Any) -> Any:
    """The object Keras's public API exports as ``module.name`` (``module`` "keras.X..."), or None; imports nothing."""
    if not isinstance(module, str) or not isinstance(name, str):
        return None
    if module.startswith("tf_keras."):
        module = module[3:]
    return keras_api_symbol(f"{module}.{name}")


def _keras_bases() -> tuple[type, ...]:
    return (keras.layers.Layer, keras.initializers.Initializer, keras.constraints.Constraint,
            keras.regularizers.Regularizer, keras.optimizers.Optimizer, keras.optimizers.legacy.Optimizer,
            keras.optimizers.schedules.LearningRateSchedule, keras.losses.Loss, keras.metrics.Metric,
            keras.mixed_precision.Policy)


def _refusal(obj: dict[str, Any], allowed: dict[str, Any]) -> str | None:
    """What is wrong with one serialised object (a dict with ``class_name``), or None when it is allowed."""
    class_name = obj.get("class_name")
    if class_name in _DATA_OBJECTS:
        return None
    if class_name in _CODE_NAMES or (isinstance(class_name, str) and class_name.endswith("Lambda")):
        return _code_refusal(class_name, obj.get("config"))
    if class_name == "__typespec__":
        return _typespec_refusal(obj)
    if class_name == "function":
        return _function_refusal(obj, allowed)
    return _class_refusal(obj, allowed)


def _code_refusal(class_name: str, inner: Any) -> str:
    """Why a ``Lambda``-like layer (``class_name``, its ``config`` ``inner``) is refused: the code it holds."""
    found = ""
    if isinstance(inner, dict) and inner.get("function_type") == "lambda":
        found = " with serialised Python bytecode (function_type 'lambda')"
    elif isinstance(inner, dict) and "function" in inner:
        function = inner["function"]
        if isinstance(function, dict):
            function = f"{function.get('module')}.{function.get('config')}"
        found = f" with function {str(function)[:80]!r} (function_type {inner.get('function_type')!r})"
    return f"a {class_name} layer{found}, which holds Python code or calls a function by name"


def _typespec_refusal(obj: dict[str, Any]) -> str | None:
    """None for a TensorFlow ``TypeSpec`` (not registered elsewhere), else why the type spec is refused."""
    module, spec_name = obj.get("module"), obj.get("spec_name")
    cls = getattr(sys.modules.get(module) if isinstance(module, str) else None, str(spec_name), None)
    if isinstance(module, str) and module.startswith("tensorflow.") and isinstance(cls, type) \
            and issubclass(cls, tf.TypeSpec) and obj.get("registered_name") is None:
        return None
    return f"a type spec {module!r}.{spec_name!r} outside TensorFlow"


def _function_refusal(obj: dict[str, Any], allowed: dict[str, Any]) -> str | None:
    """None for a function of Keras's function modules or a registered function, else why it is refused."""
    module, name, registered = obj.get("module"), obj.get("config"), obj.get("registered_name")
    if not isinstance(name, str):
        return f"a function reference whose name is {type(name).__name__} {str(name)[:80]!r}"
    if module == "builtins":
        found = any(_keras_symbol(f"keras.{mod}", name) is not None for mod in _KERAS_FUNCTION_MODULES)
    else:
        found = isinstance(module, str) and module.startswith(("keras.", "tf_keras.")) \
            and module.split(".")[-1] in _KERAS_FUNCTION_MODULES and callable(_keras_symbol(module, name))
    if found or (isinstance(registered, str) and registered in allowed and not isinstance(allowed[registered],
                                                                                            type)):
        return None
    return f"the function {module}.{name} (registered_name {registered!r})"


def _class_refusal(obj: dict[str, Any], allowed: dict[str, Any]) -> str | None:
    """None for a registered class or a Keras API class derived from a Keras base, else why it is refused."""
    class_name, module, registered = obj.get("class_name"), obj.get("module"), obj.get("registered_name")
    if isinstance(class_name, str) and (class_name in allowed or (registered is not None and registered in allowed)):
        return None
    if not isinstance(class_name, str) or (module is not None and not isinstance(module, str)):
        return f"an object reference with class_name {str(class_name)[:80]!r} and module {str(module)[:80]!r}"
    cls = None
    parts = (module or "").split(".")
    if parts[0] in ("keras", "tf_keras") and (len(parts) == 1 or parts[1] in _KERAS_CLASS_MODULES):
        cls = _keras_symbol(module, class_name)
    elif module is not None and module.startswith("tf_keras.src.") and module in sys.modules:
        cls = vars(sys.modules[module]).get(class_name)
    if isinstance(cls, type) and issubclass(cls, _keras_bases()) and (registered is None or registered == class_name):
        return None
    return f"the class {module}.{class_name} (registered_name {registered!r})"


def check_keras_config(path: str | os.PathLike[str], compile: bool = True) -> None:
    """Refuses a ``.keras`` file whose ``config.json`` names code outside the Keras and tf_nvm registries.

    Keras ``safe_mode`` refuses only serialised lambdas: a ``Lambda`` layer with
    ``function_type: "function"`` naming ``builtins.exit``, an activation or
    initializer given as ``{"class_name": "function", "module": "os", "config":
    "system"}``, or a class in any importable module are looked up (the module
    imported) and called by tf_keras while it loads. This walks the config
    itself, before Keras reads anything, and allows only: tf_keras's
    serialised values (tensors, arrays, bytes); classes of the tf_nvm registry
    (`tf_nvm.keras.serialization.custom_objects`) and of tfmot's quantize scope;
    classes of Keras's public ``layers``/``initializers``/``constraints``/
    ``regularizers``/``optimizers``/``losses``/``metrics``/``mixed_precision``/
    ``models`` API (or its engine's ``Functional``/``Sequential``) derived from a
    Keras base class; functions of Keras's ``activations``, ``initializers``,
    ``constraints``, ``regularizers``, ``losses``, ``metrics``, ``optimizers``.
    Every ``Lambda`` (and ``TFOpLambda``, which calls TensorFlow functions by name)
    is refused.

    Args:
        path: the ``.keras`` file (already checked by `check_keras_file`).
        compile: also check ``compile_config`` (the optimizer, loss and metrics
            that ``compile=True`` deserialises).

    Raises:
        ModelFileError: the first refused reference: the file, the layer, the
            place in config.json, what was found, what is allowed and the fix.
    """
    path = os.fspath(path)
    _walk_config(_read_config(path), path, compile)


_CONFIG_FIX = ("Fix: rebuild the model without Lambda layers and with Keras or tf_nvm layers, activations and "
               "initializers only (register a custom class with tf_nvm.keras.serialization.add_custom_object), or "
               "call tf_nvm.load_model(path, trusted=True) only for a file you trust.")
"""The fix named by every refusal of `check_keras_config`."""


def _read_config(path: str) -> Any:
    """The parsed ``config.json`` of the ``.keras`` zip ``path`` (size and nesting bounded; `ModelFileError`)."""
    fix = _CONFIG_FIX
    with open_zip(path, where=f"model file {path!r}", error=ModelFileError, fix=fix) as archive:
        text = read_zip_member(archive, "config.json", max_bytes=MAX_CONFIG_BYTES, where=f"model file {path!r}",
                               error=ModelFileError, fix=fix)
    return loads_json(text, where=f"model file {path!r}: config.json", max_depth=MAX_CONFIG_DEPTH,
                      error=ModelFileError, fix="Fix: re-save the model with model.save('NAME.keras'), or re-run "
                                                "`tf-nvm train`.")


def _walk_config(config: Any, path: str, compile: bool) -> None:
    """Raises `ModelFileError` at the first object of ``config`` that `_refusal` refuses (depth-first walk)."""
    fix = _CONFIG_FIX
    allowed = _allowed_classes()
    stack: list[tuple[Any, str, Any, int]] = [(config, "config.json", None, 0)]
    while stack:
        node, where, layer, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise ModelFileError(f"model file {path!r}: config.json nests deeper than {MAX_CONFIG_DEPTH} levels at "
                                 f"{where[:200]}; a tf_nvm model nests about 15. {fix}")
        if isinstance(node, list):
            stack.extend((value, f"{where}[{i}]", layer, depth + 1) for i, value in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        if "class_name" in node:
            inner = node.get("config")
            if isinstance(inner, dict) and isinstance(inner.get("name"), str):
                layer = inner["name"]
            problem = _refusal(node, allowed)
            if problem is None and isinstance(inner, dict) and "function_type" in inner:
                problem = f"a {node.get('class_name')} with function_type {inner['function_type']!r}"
            if problem is not None:
                raise ModelFileError(
                    f"model file {path!r}: layer {layer!r} ({where[:200]}) holds {problem[:400]}; tf_nvm loads "
                    "only layers, functions and objects of the Keras and tf_nvm registries (and tfmot's quantize "
                    f"wrappers) and refuses it before Keras reads the file. {fix}")
        for key, value in node.items():
            if key == "compile_config" and not compile:
                continue
            stack.append((value, f"{where}.{key}", layer, depth + 1))


@contextlib.contextmanager
def _removing_extraction_folders() -> Iterator[list[str]]:
    """Removes the folders tf_keras extracts a ``.keras`` zip into, whatever the outcome of the load.

    tf_keras (``saving_lib.DiskIOStore``) extracts an archive of more than three
    members into a ``tempfile.mkdtemp()`` folder and removes it only when the load
    succeeds: each failed load left a folder as large as the archive's members in
    ``$TMPDIR``. The folders it creates (``saving_lib.get_temp_dir``) are recorded
    here and removed afterwards; nothing else in ``$TMPDIR`` is touched.
    """
    saving_lib = importlib.import_module("tf_keras.src.saving.saving_lib")
    original = getattr(saving_lib, "get_temp_dir", None)
    made = []

    def tracked():
        folder = original()
        made.append(folder)
        return folder

    if original is not None:
        setattr(saving_lib, "get_temp_dir", tracked)
    try:
        yield made
    finally:
        if original is not None:
            setattr(saving_lib, "get_temp_dir", original)
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)


def load_model(path: str | os.PathLike[str], compile: bool = True, *, trusted: bool = False) -> keras.Model:
    """Loads a saved NVM model with no extra arguments, safely.

    By default only a ``.keras`` zip is accepted (`check_keras_file`), its
    ``config.json`` is checked before Keras reads it (`check_keras_config`: every
    ``Lambda`` and every class or function outside the Keras and tf_nvm
    registries is refused) and it is loaded with Keras ``safe_mode=True``. The
    folder tf_keras extracts the archive into is removed whatever the outcome.

    Args:
        path: ``.keras`` file written by ``model.save``.
        compile: restore the optimizer/loss as saved.
        trusted: opt-in for files you trust: also accept SavedModel folders and
            ``.h5`` files and load with ``safe_mode=False`` (code inside the file
            may run). Default False.

    Returns:
        the tf_keras model.

    Raises:
        ModelFileError: not a ``.keras`` zip, damaged, too large, or holding
            code that ``safe_mode`` refuses (the message says which and the fix).
        PrecisionError: a mixed-precision global policy (`tf_nvm.keras.precision.require_float32`).
    """
    path = os.fspath(path)
    if not trusted:
        check_keras_file(path)
        check_keras_config(path, compile=compile)
    require_float32("load_model")  # no mixed-precision policy; TF32 off
    try:
        with quantize_scope(custom_objects()), _removing_extraction_folders():
            return keras.models.load_model(path, custom_objects=custom_objects(), compile=compile,
                                           safe_mode=not trusted)
    except (ModelFileError, PrecisionError):
        raise
    except Exception as err:  # Keras raises ValueError/TypeError/KeyError/OSError for damaged or unsafe files
        text = str(err)
        if "safe_mode" in text or "Lambda" in text:
            raise ModelFileError(
                f"model file {path!r} holds serialised Python code (e.g. a Lambda layer), which tf_nvm refuses to "
                f"run while loading (Keras safe_mode): {text[:300]}. Fix: rebuild the model without Lambda layers, "
                "or call tf_nvm.load_model(path, trusted=True) only for a file you trust.") from None
        raise ModelFileError(f"model file {path!r} could not be loaded: {type(err).__name__}: {text[:300]}. "
                             "Fix: re-save the model with model.save('NAME.keras'), or re-run `tf-nvm train`.") \
            from None
