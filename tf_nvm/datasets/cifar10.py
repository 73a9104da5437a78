"""CIFAR-10 (60,000 32x32 RGB images, 10 classes) from an image folder or from Keras.

:func:`load_cifar10` reads a folder in the class-folder layout
``<root>/{train,test}/<class>/*.jpg`` (what
``keras.utils.image_dataset_from_directory`` reads), decodes it once with a
parallel ``tf.data`` pipeline and caches the decoded arrays as an ``.npz``;
without such a folder it falls back to ``keras.datasets.cifar10.load_data()``
(which downloads the original release).

Files are treated as hostile: images larger than :data:`CIFAR10_MAX_IMAGE_BYTES`
are refused, a JPEG's declared size is read from its header before it is
decoded (only 32x32 images are decoded), and a cache is read with
:func:`tf_nvm.core.safe_io.load_npz` (four arrays, at most
:data:`CIFAR10_MAX_CACHE_BYTES` together; a bad cache is rebuilt).
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from tf_nvm.core import safe_io
from tf_nvm.datasets._cache import (DATA_DIR_ENV, atomic_savez, data_dir_from_env, resolve_cache_dir,
                                    say)
from tf_nvm.core.errors import CorruptDatasetError, DatasetNotFoundError, UnknownNameError

__all__ = ["CIFAR10_CLASSES", "CIFAR10_SOURCES", "CIFAR10_MAX_IMAGE_BYTES", "CIFAR10_MAX_CACHE_BYTES", "load_cifar10"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
"""Class names in Keras order; label ``k`` is ``CIFAR10_CLASSES[k]``."""

CIFAR10_SOURCES = ("auto", "folder", "keras")

CIFAR10_MAX_IMAGE_BYTES = 1 * safe_io.MIB
"""Largest image file [bytes] read (a 32x32 JPEG is about 1-3 kB)."""
CIFAR10_MAX_CACHE_BYTES = 320 * safe_io.MIB
"""Most bytes [bytes] the arrays of a decoded cache may declare (the full set: 184 MB)."""

_SIZE = 32
_SPLITS = ("train", "test")
_EXTENSIONS = (".jpg", ".jpeg")
_FIX = (
    "Fix: pass path=... (a folder with train/<class>/*.jpg and test/<class>/*.jpg), "
    f"set {DATA_DIR_ENV} to a folder holding cifar10/, or connect to the internet "
    "(keras.datasets.cifar10.load_data() downloads the original release)."
)
_FIX_FOLDER = ("Fix: give the folder the layout <root>/{train,test}/<class>/*.jpg of 32x32 RGB JPEGs, "
               "or pass another path.")
_FIX_ARRAYS = "Fix: delete that file (a cache is rebuilt) or the Keras download, and load again."
_ORDER_SEED = 20191030  # fixed: the same folder always gives the same order
_CACHE_FORMAT = 2  # 2: examples in a fixed shuffled order (1: sorted by class)


def _list_folder(root):
    """Lists the images of an image-folder CIFAR-10 copy.

    Returns:
        ``{split: [(sorted file paths, label) per class]}``.

    Raises:
        CorruptDatasetError: a split or class folder is missing, or a class has no image.
    """
    listing = {}
    for split in _SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            raise CorruptDatasetError(
                f"{root}: missing folder '{split}/'; expected {root}/{{train,test}}/<class>/*.jpg "
                f"with classes {', '.join(CIFAR10_CLASSES)}. {_FIX_FOLDER}"
            )
        missing = [c for c in CIFAR10_CLASSES if not (split_dir / c).is_dir()]
        if missing:
            raise CorruptDatasetError(
                f"{split_dir}: missing class folder(s) {', '.join(missing)}; expected one folder per class: "
                f"{', '.join(CIFAR10_CLASSES)}. {_FIX_FOLDER}"
            )
        per_class = []
        for label, cls in enumerate(CIFAR10_CLASSES):
            with os.scandir(split_dir / cls) as it:
                entries = [e for e in it
                           if e.name.lower().endswith(_EXTENSIONS) and not e.name.startswith(".") and e.is_file()]
            for e in entries:
                if e.stat().st_size > CIFAR10_MAX_IMAGE_BYTES:
                    raise CorruptDatasetError(
                        f"{e.path}: is {e.stat().st_size:,} bytes; a 32x32 JPEG is at most "
                        f"{CIFAR10_MAX_IMAGE_BYTES:,} bytes here. Fix: remove or replace that file.")
            files = sorted(e.path for e in entries)
            if not files:
                raise CorruptDatasetError(
                    f"{split_dir / cls}: no images (*.jpg, *.jpeg); expected the {split} images of class {cls!r}. "
                    f"{_FIX_FOLDER}"
                )
            per_class.append((files, label))
        listing[split] = per_class
    return listing


def _cache_file(cache, root, listing):
    """The cache file of a folder: keyed on its absolute path and per-class file counts."""
    key = {
        "format": _CACHE_FORMAT,
        "root": str(root),
        "counts": {s: [len(f) for f, _ in listing[s]] for s in _SPLITS},
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache / f"cifar10_folder_{digest}.npz", key


def _find_undecodable(files: list[str]) -> tuple[str | None, str | None]:
    """Decodes ``files`` one by one and returns (file, error) of the first that fails."""
    from tf_nvm.keras.backend import tf  # noqa: PLC0415  (lazy: TensorFlow, only to decode image files)

    for f in files:
        try:
            tf.io.decode_jpeg(tf.io.read_file(f), channels=3)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as exc:
            return f, exc.message.splitlines()[0] if exc.message else type(exc).__name__
    return None, None


def _decode_images(files, where):
    """Decodes JPEG files into uint8 (N, 32, 32, 3) with a parallel tf.data pipeline.

    Raises:
        CorruptDatasetError: an image is not 32x32 or cannot be decoded (the message names it).
    """
    from tf_nvm.keras.backend import tf  # noqa: PLC0415  (lazy: TensorFlow, only to decode image files)

    def load(p):
        data = tf.io.read_file(p)
        shape = tf.image.extract_jpeg_shape(data)  # from the header: a huge declared image is never decoded
        ok = tf.logical_and(tf.equal(shape[0], _SIZE), tf.equal(shape[1], _SIZE))
        img = tf.cond(ok, lambda: tf.io.decode_jpeg(data, channels=3), lambda: tf.zeros([_SIZE, _SIZE, 3], tf.uint8))
        return tf.ensure_shape(img, [_SIZE, _SIZE, 3]), shape[:2]

    ds = (tf.data.Dataset.from_tensor_slices(np.asarray(files))
          .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
          .batch(4096)
          .prefetch(2))
    images, shapes = [], []
    try:
        for img, shape in ds.as_numpy_iterator():
            images.append(img)
            shapes.append(shape)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as exc:
        bad, why = _find_undecodable(files)
        if bad is None:
            raise CorruptDatasetError(f"{where}: cannot decode the images ({exc}). {_FIX_FOLDER}") from exc
        raise CorruptDatasetError(
            f"{bad}: not a readable JPEG image ({why}); expected a 32x32 RGB JPEG. {_FIX_FOLDER}") from exc
    x = np.concatenate(images) if images else np.zeros((0, _SIZE, _SIZE, 3), np.uint8)
    sizes = np.concatenate(shapes) if shapes else np.zeros((0, 2), np.int32)
    wrong = np.flatnonzero(np.any(sizes != _SIZE, axis=1))
    if wrong.size:
        i = int(wrong[0])
        raise CorruptDatasetError(
            f"{files[i]}: image is {int(sizes[i, 0])}x{int(sizes[i, 1])} pixels; expected 32x32 "
            f"({wrong.size} image(s) of the wrong size under {where}). {_FIX_FOLDER}"
        )
    return x


def _decode_folder(root, listing):
    """Decodes both splits, each in a fixed shuffled order (`_ORDER_SEED`), not sorted by class.

    A class-sorted array would make the last examples one class: Keras's
    ``validation_split`` (and any tail split) would then validate on trucks only.
    """
    out = {}
    for index, split in enumerate(_SPLITS):
        files = [f for fs, _ in listing[split] for f in fs]
        labels = np.concatenate([np.full(len(fs), lab, np.int32) for fs, lab in listing[split]])
        order = np.random.default_rng(_ORDER_SEED + index).permutation(len(files))
        out[f"x_{split}"] = _decode_images([files[i] for i in order], str(root / split))
        out[f"y_{split}"] = labels[order]
    return out


def _validate(arrays, where):
    """Checks the four CIFAR-10 arrays; returns them as uint8 / int32."""
    out = {}
    for split in _SPLITS:
        for key in (f"x_{split}", f"y_{split}"):
            if key not in arrays:
                raise CorruptDatasetError(
                    f"{where}: key {key!r} is missing; expected x_train, y_train, x_test, y_test. {_FIX_ARRAYS}")
        x, y = arrays[f"x_{split}"], np.asarray(arrays[f"y_{split}"]).reshape(-1)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (_SIZE, _SIZE, 3):
            raise CorruptDatasetError(
                f"{where}: key 'x_{split}' is {x.dtype} {x.shape}; expected uint8 (N, 32, 32, 3). {_FIX_ARRAYS}"
            )
        if y.dtype.kind not in "iu" or y.shape != (x.shape[0],):
            raise CorruptDatasetError(
                f"{where}: key 'y_{split}' is {y.dtype} {y.shape}; expected int ({x.shape[0]},). {_FIX_ARRAYS}")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise CorruptDatasetError(
                f"{where}: key 'y_{split}' holds labels {y.min()}..{y.max()}; expected 0..9. {_FIX_ARRAYS}")
        out[f"x_{split}"], out[f"y_{split}"] = x, y.astype(np.int32)
    return out


def _load_folder(root, cache):
    """Loads an image folder through its decoded cache. Returns (arrays, note)."""
    listing = _list_folder(root)
    file, key = _cache_file(cache, root, listing)
    if file.is_file():
        try:
            keys = ("x_train", "y_train", "x_test", "y_test")
            arrays = _validate(safe_io.load_npz(file, keys, max_bytes=CIFAR10_MAX_CACHE_BYTES, kinds="iu"), str(file))
        except CorruptDatasetError:
            arrays = None  # a damaged cache is rebuilt below
        counts = {s: sum(key["counts"][s]) for s in _SPLITS}
        if arrays is not None and all(arrays[f"y_{s}"].shape[0] == counts[s] for s in _SPLITS):
            return arrays, f"decoded cache {file}"
    arrays = _decode_folder(root, listing)
    try:
        atomic_savez(file, **arrays, cache_key=np.asarray(json.dumps(key)))
        note = f"decoded now, cached as {file}"
    except OSError as exc:
        note = f"decoded now, could not write the cache {file}: {exc}"
    return arrays, note


def _load_keras() -> dict[str, np.ndarray]:
    """Loads and checks ``keras.datasets.cifar10.load_data()``."""
    from tf_nvm.keras.backend import keras  # noqa: PLC0415  (lazy: TensorFlow, only for the Keras download)

    (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    return _validate({"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test},
                     "keras.datasets.cifar10")


def load_cifar10(source: str = "auto", *, path: str | os.PathLike[str] | None = None,
                 cache_dir: str | os.PathLike[str] | None = None,
                 verbose: bool = True) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads CIFAR-10 as Keras-style tuples.

    Args:
        source: ``"auto"`` (folders first, then Keras), ``"folder"`` (an image
            folder only) or ``"keras"`` (``keras.datasets.cifar10.load_data()`` only,
            which downloads the original binary release on first use).
        path: optional folder in the layout ``<path>/{train,test}/<class>/*.jpg`` with
            the class folders of :data:`CIFAR10_CLASSES`. When given, only ``path`` is
            read; a missing ``path`` raises :class:`DatasetNotFoundError` naming it.
        cache_dir: folder for decoded caches (created when needed); default
            ``$TF_NVM_CACHE_DIR`` or ``~/.cache/tf_nvm``. A folder's decoded arrays go
            to ``<cache_dir>/cifar10/cifar10_folder_<key>.npz``, keyed on the folder's
            absolute path and per-class file counts (about 184 MB for the full set).
        verbose: print one line naming the source and the path used.

    ``"auto"`` without ``path`` tries, in order: ``$TF_NVM_DATA_DIR/cifar10``;
    ``keras.datasets.cifar10.load_data()``. A development copy (such as
    ``../shared/data/cifar10``) is read only through ``path`` or
    ``$TF_NVM_DATA_DIR``, never by looking around the working folder. Decoding the
    60,000 JPEG files once takes about 10 s on 2 cores (more when the files are
    not in the OS file cache); later loads read the cache in about a second.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` uint8 (N, 32, 32, 3) RGB
        (50,000 train and 10,000 test images for the full set), ``y`` int32 (N,)
        labels 0..9 in Keras order (:data:`CIFAR10_CLASSES`). Folder images come in a
        fixed pseudo-random order (a seeded permutation of class, then file name), so
        that a tail split such as Keras's ``validation_split`` holds every class.

    Raises:
        DatasetNotFoundError: ``path`` does not exist, or no source could be found;
            the message lists every source tried, why it failed, and how to fix it.
        CorruptDatasetError: a folder exists but a split or class folder is missing, a
            class has no images, or an image is not a 32x32 JPEG or larger than
            :data:`CIFAR10_MAX_IMAGE_BYTES` (the message names it).
        UnknownNameError: ``source`` is not one of :data:`CIFAR10_SOURCES` (a ValueError).
    """
    if source not in CIFAR10_SOURCES:
        raise UnknownNameError(
            f"load_cifar10: source={source!r} is not allowed; expected one of {', '.join(CIFAR10_SOURCES)}. "
            "Fix: pass one of them (default 'auto').")
    cache = resolve_cache_dir(cache_dir) / "cifar10"
    tried: list[str] = []
    found = _from_folders(path, cache, tried) if source in ("auto", "folder") else None
    if found is None and (source == "keras" or (source == "auto" and path is None)):
        found = _from_keras(tried)
    if found is not None:
        arrays, label, where, note = found
        say(verbose, f"tf_nvm.datasets.load_cifar10: using {label}: {where} ({note})")
        return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    lines = "\n".join(f"  {i}. {t}" for i, t in enumerate(tried, start=1))
    raise DatasetNotFoundError(
        f"load_cifar10(source={source!r}): no source of CIFAR-10 could be loaded. Tried:\n{lines}\n{_FIX}"
    )


# A source found: (arrays, label of the source, where it was read, note) for the verbose line.
_Found = tuple[dict[str, np.ndarray], str, str | Path, str]


def _from_folders(path: str | os.PathLike[str] | None, cache: Path, tried: list[str]) -> _Found | None:
    """Loads the image folder ``path`` (when given, the only one) or ``$TF_NVM_DATA_DIR/cifar10``."""
    candidates: list[tuple[str, Path | None, str | None]] = []  # (label, folder or None, reason when None)
    if path is not None:  # when given, the only source (never silently replaced by another one)
        candidates.append(("path", Path(path).expanduser(), None))
    else:
        env = data_dir_from_env()
        if env is None:
            candidates.append((f"${DATA_DIR_ENV}/cifar10", None, f"{DATA_DIR_ENV} is not set"))
        else:
            candidates.append((f"${DATA_DIR_ENV}", env / "cifar10", None))
    for label, folder, reason in candidates:
        if folder is None:
            tried.append(f"{label}: {reason}")
        elif folder.is_dir():
            root = folder.resolve()
            arrays, note = _load_folder(root, cache)
            return arrays, f"image folder ({label})", root, note
        else:
            tried.append(f"{label} {folder}: {'not a folder' if folder.exists() else 'does not exist'}")
    return None


def _from_keras(tried: list[str]) -> _Found | None:
    """Loads ``keras.datasets.cifar10.load_data()`` (downloads the original release on first use)."""
    try:
        arrays = _load_keras()
    except CorruptDatasetError:
        raise
    except Exception as exc:  # no network, HTTP error, damaged download, ...
        tried.append(f"keras.datasets.cifar10.load_data(): failed ({type(exc).__name__}: {exc})")
        return None
    return arrays, "keras.datasets.cifar10", "keras.datasets.cifar10.load_data()", "original release"

