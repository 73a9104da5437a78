"""Shared helpers of the data-set loaders: where data and caches live, atomic writes.

Reading files that may be hostile (bounded ``.npz``, gzip and zip reads) lives in
:mod:`tf_nvm.core.safe_io`. Nothing here imports TensorFlow.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np

from tf_nvm.core.atomic import atomic_path
from tf_nvm.core.errors import CorruptDatasetError

__all__ = [
    "DATA_DIR_ENV",
    "CACHE_DIR_ENV",
    "default_cache_dir",
    "resolve_cache_dir",
    "data_dir_from_env",
    "atomic_savez",
    "say",
]

DATA_DIR_ENV = "TF_NVM_DATA_DIR"
CACHE_DIR_ENV = "TF_NVM_CACHE_DIR"


def default_cache_dir() -> Path:
    """Returns the default cache folder: ``$TF_NVM_CACHE_DIR`` or ``~/.cache/tf_nvm``.

    Returns:
        An absolute :class:`pathlib.Path` (not created here).
    """
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return (Path.home() / ".cache" / "tf_nvm").resolve()


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """Returns ``cache_dir`` as an absolute path, or :func:`default_cache_dir` when it is None."""
    if cache_dir is None:
        return default_cache_dir()
    return Path(cache_dir).expanduser().resolve()


def data_dir_from_env() -> Path | None:
    """Returns ``$TF_NVM_DATA_DIR`` as a Path, or None when the variable is unset or empty."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else None


def atomic_savez(path: str | os.PathLike[str], **arrays: Any) -> Path:
    """Writes an uncompressed ``.npz`` atomically (temporary file in the same folder, then rename).

    Readers never see a half-written file, and an interrupted write leaves no
    file at ``path``.

    Args:
        path: destination file; its folder is created when missing.
        **arrays: the arrays to store (no object arrays: they could not be read back
            with ``allow_pickle=False``).

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for key, value in arrays.items():
        if np.asarray(value).dtype.hasobject:
            raise CorruptDatasetError(f"atomic_savez: array {key!r} has dtype object, which npz cannot store without "
                                      "pickle. Fix: convert it to a numeric or string dtype.")
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    return path


def say(verbose: bool, message: str) -> None:
    """Prints ``message`` on one line when ``verbose`` is true."""
    if verbose:
        print(message, flush=True)
