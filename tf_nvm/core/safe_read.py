"""Bounded reading of files that may be hostile: regular-file checks, whole-file, gzip and zip-member reads.

Part of :mod:`tf_nvm.core.safe_io` (which re-exports every public name here and
documents the limits). Nothing here imports TensorFlow.
"""

import contextlib
import gzip
import io
import os
import stat
import zipfile
import zlib
from typing import IO, Iterator

from tf_nvm.core.errors import CorruptDatasetError

__all__ = ["MIB", "MAX_READ_BYTES", "MAX_SINGLE_READ_BYTES", "READ_CHUNK_BYTES", "DEFAULT_FIX", "READ_ERRORS",
           "size_text", "file_kind", "check_regular", "open_regular", "read_bytes", "read_maybe_gzip", "open_zip",
           "read_zip_member"]

MIB = 1 << 20
MAX_READ_BYTES = 256 * MIB
MAX_SINGLE_READ_BYTES = 4 * MIB
READ_CHUNK_BYTES = 1 * MIB

DEFAULT_FIX = "Fix: replace the file with an intact copy, or pass another path."
"""The default ``Fix:`` sentence of the readers' messages."""
READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, TypeError, RuntimeError,
               NotImplementedError, OverflowError, SyntaxError, KeyError, zlib.error)
"""What a damaged or hostile archive / stream can raise while being read."""


def size_text(n: int) -> str:
    """``n`` bytes as a short human string (exact bytes in parentheses)."""
    return f"{n / MIB:.1f} MiB ({n:,} bytes)"


def file_kind(mode: int) -> str:
    """Names the kind of file a ``st_mode`` describes ("regular file", "FIFO (named pipe)", ...)."""
    for test, name in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"),
                       (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def _check_stat(path, st, max_bytes, error, fix):
    """Raises ``error`` unless ``st`` describes a regular file of at most ``max_bytes`` (None: any size)."""
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: is a {file_kind(st.st_mode)}, not a regular file; only regular files are read "
                    f"(symbolic links are followed). {fix}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{path}: is {size_text(st.st_size)}; at most {size_text(max_bytes)} is read. {fix}")


def check_regular(path: str | os.PathLike[str], *, max_bytes: int | None = None,
                  error: type[Exception] = CorruptDatasetError, fix: str = DEFAULT_FIX) -> os.stat_result:
    """Checks that ``path`` is a regular file (after symlinks), at most ``max_bytes`` long.

    Args:
        path: the file.
        max_bytes: largest allowed size [bytes], or None for no size check.
        error: the tf_nvm error class raised.
        fix: the ``Fix: ...`` sentence ending every message.

    Returns:
        The ``os.stat_result`` of the file.

    Raises:
        error: the file is missing, unreadable, a directory, FIFO, device or socket,
            or larger than ``max_bytes``.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise error(f"{path}: cannot be read ({type(exc).__name__}: {exc.strerror or exc}). {fix}") from exc
    _check_stat(path, st, max_bytes, error, fix)
    return st


def open_regular(path: str | os.PathLike[str], *, max_bytes: int | None = None,
                 error: type[Exception] = CorruptDatasetError, fix: str = DEFAULT_FIX) -> IO[bytes]:
    """Opens a regular file for binary reading without ever blocking on a FIFO.

    The file is checked before it is opened (:func:`check_regular`), opened with
    ``O_NONBLOCK`` (a FIFO swapped in meanwhile does not block), and checked again
    on the open descriptor. Arguments as :func:`check_regular` (``max_bytes`` in
    bytes, ``error`` the tf_nvm error class raised, ``fix`` the ``Fix: ...`` sentence).

    Returns:
        A binary file object (close it, e.g. ``with open_regular(p) as f``).

    Raises:
        error: as :func:`check_regular`.
    """
    check_regular(path, max_bytes=max_bytes, error=error, fix=fix)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise error(f"{path}: cannot be opened ({type(exc).__name__}: {exc.strerror or exc}). {fix}") from exc
    try:
        _check_stat(path, os.fstat(fd), max_bytes, error, fix)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_bounded(stream, max_bytes, where, error, fix):
    """Reads ``stream`` to its end in chunks; raises as soon as more than ``max_bytes`` arrive."""
    chunks, total = [], 0
    while True:
        chunk = stream.read(min(READ_CHUNK_BYTES, max_bytes + 1 - total))
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            del chunks
            raise error(f"{where}: holds more than {size_text(max_bytes)} of data, the most that is read. {fix}")
        chunks.append(chunk)
    return b"".join(chunks)


def read_bytes(path: str | os.PathLike[str], *, max_bytes: int = MAX_READ_BYTES,
               error: type[Exception] = CorruptDatasetError, fix: str = DEFAULT_FIX) -> bytes:
    """Reads a whole regular file, refusing one larger than ``max_bytes``.

    Args:
        path: the file.
        max_bytes: largest allowed size [bytes] (checked on the size the file
            reports and again while reading, so a growing file cannot exceed it).
        error: the tf_nvm error class raised.
        fix: the ``Fix: ...`` sentence ending every message.

    Returns:
        The contents as bytes.

    Raises:
        error: not a regular file, larger than ``max_bytes``, or a read failed.
    """
    with open_regular(path, max_bytes=max_bytes, error=error, fix=fix) as f:
        try:
            return _read_bounded(f, max_bytes, str(path), error, fix)
        except error:
            raise
        except OSError as exc:
            raise error(f"{path}: cannot be read ({type(exc).__name__}: {exc}). {fix}") from exc


def read_maybe_gzip(path: str | os.PathLike[str], *, max_bytes: int = MAX_READ_BYTES,
                    error: type[Exception] = CorruptDatasetError, fix: str = DEFAULT_FIX) -> bytes:
    """Reads a regular file, gunzipping it when it starts with the gzip magic, with a bounded output.

    Args:
        path: the file (gzip'd or plain).
        max_bytes: largest allowed size [bytes] of the file and of its decompressed
            contents; decompression stops after ``max_bytes + 1`` bytes, so a gzip
            bomb costs at most that much memory.
        error: the tf_nvm error class raised.
        fix: the ``Fix: ...`` sentence ending every message.

    Returns:
        The (decompressed) contents as bytes.

    Raises:
        error: not a regular file, too large (before or after decompression), or a
            damaged gzip stream.
    """
    with open_regular(path, max_bytes=max_bytes, error=error, fix=fix) as f:
        try:
            head = f.read(2)
            f.seek(0)
            if head != b"\x1f\x8b":
                return _read_bounded(f, max_bytes, str(path), error, fix)
            with gzip.GzipFile(fileobj=f, mode="rb") as gz:
                return _read_bounded(gz, max_bytes, f"{path} (decompressed)", error, fix)
        except error:
            raise
        except (OSError, EOFError, zlib.error) as exc:
            raise error(f"{path}: not a readable gzip file ({type(exc).__name__}: {exc}). {fix}") from exc


class _BoundedReads(io.RawIOBase):
    """A seekable binary stream whose every single ``read`` is at most ``limit`` bytes.

    :mod:`zipfile` reads an archive's central directory (whose size the archive
    declares) in one call; this refuses such a read when it is larger than the
    limit, so a sparse or forged archive cannot make it allocate gigabytes.
    """

    def __init__(self, raw, limit, where, error, fix):
        super().__init__()
        self._raw, self._limit, self._where, self._error, self._fix = raw, limit, where, error, fix

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        return self._raw.seek(offset, whence)

    def tell(self):
        return self._raw.tell()

    def read(self, size=-1):
        if size is None or size < 0:
            here = self._raw.tell()
            size = self._raw.seek(0, io.SEEK_END) - here
            self._raw.seek(here)
        if size > self._limit:
            raise self._error(f"{self._where}: the zip archive asks to read {size_text(size)} at once (a forged "
                              f"directory size?); at most {size_text(self._limit)} is allowed. {self._fix}")
        return self._raw.read(size)

    def readinto(self, b):
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


@contextlib.contextmanager
def open_zip(source: str | os.PathLike[str] | bytes | bytearray | memoryview, *, where: str | None = None,
             kind: str = "zip", error: type[Exception] = CorruptDatasetError,
             fix: str = DEFAULT_FIX) -> Iterator[zipfile.ZipFile]:
    """Opens a zip archive (a regular file or bytes in memory) with bounded reads.

    Args:
        source: a path (checked with :func:`open_regular`) or bytes.
        where: the name used in messages (default: the path, or ``"<zip in memory>"``).
        kind: what the archive is called in messages (``"zip"``, ``".npz"``).
        error: the tf_nvm error class raised.
        fix: the ``Fix: ...`` sentence ending every message.

    Yields:
        A :class:`zipfile.ZipFile` whose underlying reads are each at most
        :data:`MAX_SINGLE_READ_BYTES`.

    Raises:
        error: not a regular file, or not a readable zip archive.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        where = where or "<zip in memory>"
        raw: IO[bytes] = io.BytesIO(source)
    else:
        where = where or str(source)
        raw = open_regular(source, error=error, fix=fix)
    try:
        try:
            zf = zipfile.ZipFile(_BoundedReads(raw, MAX_SINGLE_READ_BYTES, where, error, fix))
        except READ_ERRORS as exc:
            if isinstance(exc, error):
                raise
            raise error(f"{where}: not a readable {kind} file ({type(exc).__name__}: {exc}). {fix}") from exc
        with zf:
            yield zf
    finally:
        raw.close()


def read_zip_member(zf: zipfile.ZipFile, name: str, *, max_bytes: int = MAX_READ_BYTES, where: str = "<zip>",
                    error: type[Exception] = CorruptDatasetError, fix: str = DEFAULT_FIX) -> bytes:
    """Reads one member of an open zip archive, checking its declared size first.

    The uncompressed size stored in the archive is checked against ``max_bytes``
    before anything is decompressed; :mod:`zipfile` never returns more than that
    declared size (and checks the CRC), so the check bounds the memory used.

    Args:
        zf: an open :class:`zipfile.ZipFile` (e.g. from :func:`open_zip`).
        name: the member's name.
        max_bytes: largest allowed uncompressed size [bytes].
        where: the archive's name for messages.
        error: the tf_nvm error class raised.
        fix: the ``Fix: ...`` sentence ending every message.

    Returns:
        The member's contents as bytes.
    """
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise error(f"{where}: has no member {name!r}. {fix}") from None
    if info.file_size > max_bytes:
        raise error(f"{where}: member {name!r} declares {size_text(info.file_size)} uncompressed; at most "
                    f"{size_text(max_bytes)} is read. {fix}")
    try:
        with zf.open(info) as f:
            return _read_bounded(f, max_bytes, f"{where}: member {name!r}", error, fix)
    except READ_ERRORS as exc:
        if isinstance(exc, error):
            raise
        raise error(f"{where}: member {name!r} cannot be read, the archive looks truncated or damaged "
                    f"({type(exc).__name__}: {exc}). {fix}") from exc
