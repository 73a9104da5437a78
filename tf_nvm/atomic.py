"""Atomic file writes: a temporary file in the destination folder, then a rename.

Readers never see a half-written file, and a write that fails midway leaves no
file under the final name (and the previous file, if any, untouched).
"""

import contextlib
import json
import os
import secrets
from pathlib import Path

__all__ = ["atomic_path", "write_json_atomic", "write_bytes_atomic"]


@contextlib.contextmanager
def atomic_path(path):
    """Context manager yielding a temporary path that replaces ``path`` on success.

    The temporary file sits in the same folder (so the rename is atomic), keeps
    the destination's suffix (writers such as Keras pick the format from it), and
    follows the umask. On any exception it is removed and the exception re-raised.

    Args:
        path: final destination; its folder is created when missing.

    Yields:
        pathlib.Path of the temporary file to write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path, data):
    """Writes ``data`` (bytes) to ``path`` atomically and fsyncs it."""
    with atomic_path(path) as tmp, open(tmp, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_json_atomic(path, data):
    """Writes ``data`` as indented, key-sorted JSON to ``path`` atomically."""
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
