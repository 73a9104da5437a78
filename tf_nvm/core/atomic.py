"""Atomic file writes: a temporary file in the destination folder, then a rename.

Readers never see a half-written file, and a write that fails midway leaves no
file under the final name (and the previous file, if any, untouched).
"""

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

__all__ = ["atomic_path", "write_json_atomic", "write_bytes_atomic", "write_files_atomic", "check_writable"]


def _temporary(path: Path) -> Path:
    """A fresh temporary name in ``path``'s folder (created), keeping its suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent / f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
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
    tmp = _temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_files_atomic(files: Iterable[tuple[str | os.PathLike[str], bytes]],
                       before_rename: Callable[[], Any] | None = None) -> None:
    """Writes several files so that none appears under its final name unless all were written.

    Every file is first written (and fsynced) to a temporary name; only then are
    they renamed, in the order given. If a rename fails, the files already renamed
    by this call are removed, so a set whose last member points at the others
    (e.g. a JSON naming an npz by its hash) is never left half-replaced.

    Args:
        files: sequence of (path, bytes), in rename order.
        before_rename: optional callable run after all temporary files are
            written and before the first rename (tests inject failures there).
    """
    targets = [(Path(path), data) for path, data in files]
    temporaries: list[Path] = []
    try:
        for path, data in targets:
            temporaries.append(_temporary(path))
            with open(temporaries[-1], "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if before_rename is not None:
            before_rename()
        renamed = []
        try:
            for (path, _), tmp in zip(targets, temporaries):
                os.replace(tmp, path)
                renamed.append(path)
        except BaseException:
            for path in renamed:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise
    finally:
        for tmp in temporaries:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes ``data`` (bytes) to ``path`` atomically and fsyncs it."""
    write_files_atomic([(path, data)])


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Writes ``data`` as indented, key-sorted JSON to ``path`` atomically."""
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def check_writable(path: str | os.PathLike[str], error: type[Exception], what: str = "output file") -> None:
    """Checks, before any long computation, that ``path`` can be written as a file.

    Creates the folder if needed and a temporary file in it (removed at once),
    so a later atomic write will not fail for a missing permission, a read-only
    or virtual file system (``/proc``) or a path that names a folder.

    Args:
        path: the file to be written.
        error: the tf_nvm error class raised.
        what: what the file is, for the message.

    Raises:
        ``error``: a NUL character in the path, the path is a folder, or the folder
            cannot hold a new file (the message quotes the OS error).
    """
    text = os.fspath(path)
    if "\x00" in str(text):
        raise error(f"{what} {text!r} contains a NUL character. Fix: pass a valid file name.")
    path = Path(text)
    if path.is_dir():
        raise error(f"{what} {text!r} is a folder. Fix: pass a file name inside it, e.g. {str(path / 'model')!r}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = _temporary(path)
        with open(probe, "xb"):
            pass
        os.unlink(probe)
    except OSError as err:
        raise error(f"{what} {text!r} cannot be written: {err.strerror or err} ({type(err).__name__}). Fix: pass a "
                    "path in a writable folder.") from None
