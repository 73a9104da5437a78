"""Bounded reading of files that may be hostile (numpy only; TensorFlow is never imported).

Every function here treats its file as untrusted: it refuses anything that is
not a regular file before opening it (so a FIFO never blocks and ``/dev/zero``
is never read), checks sizes that the file *declares* before allocating or
decompressing anything, and never unpickles (``.npy`` members with object
dtypes are refused). Failures raise the tf_nvm error class the caller passes
(``error=``, default :class:`~tf_nvm.core.errors.CorruptDatasetError`) with a message
that names the file, what was found, what is allowed and a ``Fix:``. The data
set loaders use it; the crossbar mapping reader and run folders can reuse it
with ``error=MappingError`` / ``error=RunFolderError``.

Limits (module constants; each function takes its own cap as an argument, and
these are the defaults):

* :data:`MAX_READ_BYTES` = 256 MiB (268,435,456 bytes): default cap of one
  whole-file read (:func:`read_bytes`) and of one decompressed gzip stream
  (:func:`read_maybe_gzip`); at most cap + 1 bytes are ever read.
* :data:`MAX_NPZ_BYTES` = 256 MiB: default cap of the *sum* of the declared
  sizes (shape x itemsize) of the ``.npy`` members :func:`load_npz` reads.
  Members not asked for are never decompressed.
* :data:`MAX_NPY_HEADER_BYTES` = 10,000 bytes: longest ``.npy`` header parsed
  (numpy's own default).
* :data:`MAX_NPY_DIMS` = 32: most dimensions of an array.
* :data:`MAX_SINGLE_READ_BYTES` = 4 MiB: largest single ``read()`` that
  :mod:`zipfile` may issue on an archive (its central directory is read in one
  call, so this also bounds the directory, about 90,000 entries).
* :data:`READ_CHUNK_BYTES` = 1 MiB: chunk size of every streamed read, so no
  read allocates more than that beyond its result.
* :data:`MAX_JSON_BYTES` = 64 MiB: default cap of one JSON file (:func:`read_json`).
* :data:`MAX_JSON_DEPTH` = 64: default deepest nesting of arrays and objects in a
  JSON document (a recipe, config or run file nests 3 to 5 levels).
* :data:`MAX_JSON_INT` = 2**63 - 1 and :data:`MAX_JSON_FLOAT` = 1e300: largest
  magnitude of a JSON integer / real number (no quantity tf_nvm reads comes
  near either; arithmetic on larger values overflows).

Every JSON file and JSON text the product reads goes through :func:`read_json` /
:func:`loads_json` (a test greps the sources for any other ``json.load``).

Callers pass tighter caps measured on their real files (e.g.
``tf_nvm.datasets.har.HAR_MAX_NPZ_BYTES``, ``tf_nvm.datasets._hapt.MAX_PICKLE_BYTES``).
"""

import contextlib
import gzip
import io
import json
import math
import os
import stat
import zipfile
import zlib

import numpy as np

from tf_nvm.core.errors import CorruptDatasetError

__all__ = [
    "MIB",
    "MAX_READ_BYTES",
    "MAX_NPZ_BYTES",
    "MAX_NPY_HEADER_BYTES",
    "MAX_NPY_DIMS",
    "MAX_SINGLE_READ_BYTES",
    "READ_CHUNK_BYTES",
    "file_kind",
    "check_regular",
    "open_regular",
    "read_bytes",
    "read_maybe_gzip",
    "open_zip",
    "read_zip_member",
    "load_npz",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT",
    "MAX_JSON_FLOAT",
    "loads_json",
    "read_json",
    "json_plain",
]

MIB = 1 << 20
MAX_READ_BYTES = 256 * MIB
MAX_NPZ_BYTES = 256 * MIB
MAX_NPY_HEADER_BYTES = 10_000
MAX_NPY_DIMS = 32
MAX_SINGLE_READ_BYTES = 4 * MIB
READ_CHUNK_BYTES = 1 * MIB
MAX_JSON_BYTES = 64 * MIB
MAX_JSON_DEPTH = 64
MAX_JSON_INT = 2 ** 63 - 1
MAX_JSON_FLOAT = 1e300

_DEFAULT_FIX = "Fix: replace the file with an intact copy, or pass another path."
# What a damaged or hostile archive / stream can raise while being read.
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, TypeError, RuntimeError,
                NotImplementedError, OverflowError, SyntaxError, KeyError, zlib.error)


def _size(n):
    """``n`` bytes as a short human string (exact bytes in parentheses)."""
    return f"{n / MIB:.1f} MiB ({n:,} bytes)"


def file_kind(mode):
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
        raise error(f"{path}: is {_size(st.st_size)}; at most {_size(max_bytes)} is read. {fix}")


def check_regular(path, *, max_bytes=None, error=CorruptDatasetError, fix=_DEFAULT_FIX):
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


def open_regular(path, *, max_bytes=None, error=CorruptDatasetError, fix=_DEFAULT_FIX):
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
            raise error(f"{where}: holds more than {_size(max_bytes)} of data, the most that is read. {fix}")
        chunks.append(chunk)
    return b"".join(chunks)


def read_bytes(path, *, max_bytes=MAX_READ_BYTES, error=CorruptDatasetError, fix=_DEFAULT_FIX):
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


def read_maybe_gzip(path, *, max_bytes=MAX_READ_BYTES, error=CorruptDatasetError, fix=_DEFAULT_FIX):
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
            raise self._error(f"{self._where}: the zip archive asks to read {_size(size)} at once (a forged "
                              f"directory size?); at most {_size(self._limit)} is allowed. {self._fix}")
        return self._raw.read(size)

    def readinto(self, b):
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


@contextlib.contextmanager
def open_zip(source, *, where=None, kind="zip", error=CorruptDatasetError, fix=_DEFAULT_FIX):
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
        raw = io.BytesIO(source)
    else:
        where = where or str(source)
        raw = open_regular(source, error=error, fix=fix)
    try:
        try:
            zf = zipfile.ZipFile(_BoundedReads(raw, MAX_SINGLE_READ_BYTES, where, error, fix))
        except _READ_ERRORS as exc:
            if isinstance(exc, error):
                raise
            raise error(f"{where}: not a readable {kind} file ({type(exc).__name__}: {exc}). {fix}") from exc
        with zf:
            yield zf
    finally:
        raw.close()


def read_zip_member(zf, name, *, max_bytes=MAX_READ_BYTES, where="<zip>", error=CorruptDatasetError,
                    fix=_DEFAULT_FIX):
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
        raise error(f"{where}: member {name!r} declares {_size(info.file_size)} uncompressed; at most "
                    f"{_size(max_bytes)} is read. {fix}")
    try:
        with zf.open(info) as f:
            return _read_bounded(f, max_bytes, f"{where}: member {name!r}", error, fix)
    except _READ_ERRORS as exc:
        if isinstance(exc, error):
            raise
        raise error(f"{where}: member {name!r} cannot be read, the archive looks truncated or damaged "
                    f"({type(exc).__name__}: {exc}). {fix}") from exc


def _npy_header(f, where, key, error, fix):
    """Reads a ``.npy`` header; returns ``(shape, fortran_order, dtype)``."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f, max_header_size=MAX_NPY_HEADER_BYTES)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f, max_header_size=MAX_NPY_HEADER_BYTES)
    raise error(f"{where}: key {key!r} is a .npy of format version {version[0]}.{version[1]}; "
                f"expected 1.0 or 2.0. {fix}")


def _read_member_array(zf, info, key, budget, where, error, fix, kinds):
    """Checks one ``.npy`` member's declared size, shape and dtype, then reads it. Returns (array, nbytes)."""
    if info.file_size > budget + MAX_NPY_HEADER_BYTES + 16:
        raise error(f"{where}: key {key!r} declares {_size(info.file_size)} uncompressed; at most "
                    f"{_size(budget)} may still be read. {fix}")
    with zf.open(info) as f:
        shape, fortran, dtype = _npy_header(f, where, key, error, fix)
        start = f.tell()
        if dtype.hasobject:
            raise error(f"{where}: key {key!r} holds an object array (a pickle); tf_nvm never loads pickles "
                        f"from .npz files. Expected plain numeric arrays. {fix}")
        if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in kinds:
            raise error(f"{where}: key {key!r} has dtype {dtype}; expected a plain array of kind "
                        f"{', '.join(kinds)} (no structured or sub-array dtypes). {fix}")
        if len(shape) > MAX_NPY_DIMS or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise error(f"{where}: key {key!r} declares shape {shape}; expected at most {MAX_NPY_DIMS} "
                        f"non-negative dimensions. {fix}")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes > budget:
            raise error(f"{where}: key {key!r} declares shape {shape} of {dtype} ({_size(nbytes)}); at most "
                        f"{_size(budget)} may still be read. {fix}")
        if info.file_size != start + nbytes:
            raise error(f"{where}: key {key!r} declares shape {shape} of {dtype} ({nbytes:,} bytes of data) but "
                        f"its entry holds {info.file_size - start:,} bytes after the header. {fix}")
        array = np.empty(count, dtype=dtype)
        view = memoryview(array.view(np.uint8)) if nbytes else memoryview(b"")
        done = 0
        while done < nbytes:
            n = f.readinto(view[done:done + READ_CHUNK_BYTES])
            if not n:
                raise error(f"{where}: key {key!r} ends after {done:,} of {nbytes:,} bytes of data. {fix}")
            done += n
        f.read(1)  # at the end: makes zipfile check the CRC
    if fortran:
        return array.reshape(shape[::-1]).transpose(), nbytes
    return array.reshape(shape), nbytes


def load_npz(path, keys, *, max_bytes=MAX_NPZ_BYTES, kinds="biufcSU", error=CorruptDatasetError,
             fix="Fix: delete it and load again, or pass another path.", where=None):
    """Reads the named arrays of an ``.npz`` archive, never unpickling and with a bounded size.

    Only the members ``<key>.npy`` for ``keys`` are opened. For each, before any
    data is decompressed, the zip entry's declared uncompressed size, the
    ``.npy`` header's dtype (no object, structured or sub-array dtypes; kind in
    ``kinds``) and shape are checked, and the declared size (elements x itemsize)
    is added to a running total that may not exceed ``max_bytes``. The data are
    then read in chunks into one preallocated array, exactly as ``np.load`` would
    return it (same dtype, byte order, memory order and values).

    Args:
        path: the ``.npz`` file (must be a regular file), or its bytes already read.
        keys: the array names to read, in order.
        max_bytes: most bytes [bytes] all the arrays read may declare together.
        kinds: allowed ``dtype.kind`` letters.
        error: the tf_nvm error class raised.
        fix: the ``Fix: ...`` sentence ending every message.
        where: the name used in messages (default: the path).

    Returns:
        A dict ``{key: numpy array}`` with every key of ``keys``.

    Raises:
        error: not a regular file, not a readable zip archive, a key missing, a
            member too large, of a refused dtype, inconsistent or damaged.
    """
    where = where or str(path)
    out = {}
    with open_zip(path, where=where, kind=".npz", error=error, fix=fix) as zf:
        names = zf.namelist()
        found = sorted(n[:-4] for n in names if n.endswith(".npy"))
        missing = [k for k in keys if f"{k}.npy" not in names]
        if missing:
            raise error(f"{where}: key {missing[0]!r} is missing; expected keys {', '.join(keys)} "
                        f"(found: {', '.join(found) or 'none'}). {fix}")
        budget = max_bytes
        for key in keys:
            try:
                out[key], nbytes = _read_member_array(zf, zf.getinfo(f"{key}.npy"), key, budget, where, error,
                                                      fix, kinds)
            except _READ_ERRORS as exc:
                if isinstance(exc, error):
                    raise
                raise error(f"{where}: key {key!r} cannot be read, the file looks truncated or damaged "
                            f"({type(exc).__name__}: {exc}). {fix}") from exc
            budget -= nbytes
    return out


# ------------------------------------------------------------------------ JSON
class _JsonRefused(Exception):
    """A number or constant a parse hook refused (internal: turned into the caller's error)."""


def _parse_int(text):
    # Python refuses more than 4,300 digits itself (ValueError); 20 digits already exceed int64.
    if len(text.lstrip("-")) > 19 or abs(int(text)) > MAX_JSON_INT:
        raise _JsonRefused(f"the integer {text[:30]}{'...' if len(text) > 30 else ''} ({len(text)} characters) is "
                           f"beyond +-{MAX_JSON_INT} (2**63 - 1), the largest integer allowed")
    return int(text)


def _parse_float(text):
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_JSON_FLOAT:
        raise _JsonRefused(f"the number {text[:30]}{'...' if len(text) > 30 else ''} is beyond +-{MAX_JSON_FLOAT:g}, the largest magnitude allowed")
    return value


def _parse_constant(name):
    raise ValueError(f"{name} is not a JSON number; NaN and Infinity are not allowed")  # reported as invalid JSON


def _json_place(link):
    """``$.a[0].b`` from the (parent, key) chain `_check_tree` keeps (built only for a message)."""
    parts = []
    while link is not None:
        link, key = link
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}"[:60])
    place = "$" + "".join(reversed(parts))
    return place if len(place) <= 160 else place[:150] + "..."


def _check_tree(value, max_depth):
    """Walks a parsed document without recursion; returns a reason string when it is refused, else None."""
    stack = [(value, 0, None)]  # (node, depth of its container nesting, (parent link, key) or None)
    while stack:
        node, depth, link = stack.pop()
        if isinstance(node, str):
            if not node.isascii():
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError:
                    return (f"the string {node[:40]!r} at {_json_place(link)} holds a lone UTF-16 surrogate "
                            "(\\ud800-\\udfff); strings must be valid Unicode text")
            continue
        if isinstance(node, (dict, list)):
            if depth >= max_depth:
                return (f"arrays and objects nest deeper than {max_depth} levels at {_json_place(link)}; at most "
                        f"{max_depth} are allowed")
            if isinstance(node, dict):
                stack.extend((key, depth, link) for key in node)
                stack.extend((item, depth + 1, (link, key)) for key, item in node.items())
            else:
                stack.extend((item, depth + 1, (link, i)) for i, item in enumerate(node))
    return None


def loads_json(text, *, where="JSON text", max_depth=MAX_JSON_DEPTH, error=CorruptDatasetError,
               fix=_DEFAULT_FIX, object_only=False, text_fallback=False):
    """Parses JSON text that may be hostile, into plain Python values, with bounded time and depth.

    Refused, each with a named ``error`` (never ``RecursionError``, ``OverflowError``
    or ``UnicodeDecodeError``): bytes that are not UTF-8; text that is not JSON;
    ``NaN``/``Infinity`` (Python's json module would accept them); integers beyond
    +-(2**63 - 1) (:data:`MAX_JSON_INT`, e.g. 400 digits) and real numbers beyond
    +-1e300 (:data:`MAX_JSON_FLOAT`; ``1e400`` would become infinity); arrays and
    objects nested deeper than ``max_depth`` (checked without recursion after the
    parse, and a parse that hits Python's recursion limit, about 1,000 levels,
    stops there in well under a second); strings holding lone surrogates (they
    cannot be written back as UTF-8 or used as file names).

    Args:
        text: the JSON document (str, or bytes decoded as UTF-8).
        where: what the text is, for messages (e.g. ``"search config 'cfg.json'"``).
        max_depth: deepest allowed nesting of arrays and objects (a scalar document is depth 0).
        error: the tf_nvm error class raised.
        fix: the ``Fix: ...`` sentence ending every message.
        object_only: also require the document to be a JSON object.
        text_fallback: return ``text`` itself when it is not JSON at all (a command-line
            value such as ``--set name=fast``); valid JSON that is refused (too deep,
            a number out of range) still raises.

    Returns:
        The parsed value (dict, list, str, int, float, bool or None).

    Raises:
        error: any of the cases above.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as err:
            raise error(f"{where} is not UTF-8 text (byte {err.start}: {err.reason}); JSON files are UTF-8. "
                        f"{fix}") from None
    if not isinstance(text, str):
        raise error(f"{where}: expected JSON text, got a {type(text).__name__}. {fix}")
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except RecursionError:
        raise error(f"{where} nests arrays and objects deeper than Python's JSON parser allows (about 1,000 "
                    f"levels); at most {max_depth} are allowed. {fix}") from None
    except _JsonRefused as err:
        raise error(f"{where} is refused: {err}. {fix}") from None
    except (ValueError, OverflowError) as err:
        if text_fallback and not str(err).startswith(("NaN ", "Infinity ", "-Infinity ")):
            return text
        raise error(f"{where} is not valid JSON ({str(err)[:200]}). {fix}") from None
    reason = _check_tree(value, max_depth)
    if reason is not None:
        raise error(f"{where} is refused: {reason}. {fix}")
    if object_only and not isinstance(value, dict):
        raise error(f"{where} holds a JSON {type(value).__name__}; expected a JSON object ({{...}}). {fix}")
    return value


def read_json(path, *, max_bytes=MAX_JSON_BYTES, max_depth=MAX_JSON_DEPTH, what="JSON file",
              error=CorruptDatasetError, fix=_DEFAULT_FIX, object_only=False):
    """Reads a JSON file that may be hostile: a bounded read (:func:`read_bytes`), then :func:`loads_json`.

    Args:
        path: the file (a regular file: FIFOs, devices and directories are refused unopened).
        max_bytes: largest file read [bytes] (default :data:`MAX_JSON_BYTES`, 64 MiB).
        max_depth: deepest nesting of arrays and objects allowed.
        what: what the file is, for messages (``"technology file"``, ``"search config"`` ...).
        error: the tf_nvm error class raised.
        fix: the ``Fix: ...`` sentence ending every message.
        object_only: also require the document to be a JSON object.

    Returns:
        The parsed value.

    Raises:
        error: missing or not a regular file, larger than ``max_bytes``, unreadable,
            or refused by :func:`loads_json` (the message names ``what`` and the path).
    """
    where = f"{what} {os.fspath(path)}"
    try:
        data = read_bytes(path, max_bytes=max_bytes, error=error, fix=fix)
    except error as err:
        # read_bytes names the path alone; say what the file is too.
        raise error(f"{what} {err}") from None
    return loads_json(data, where=where, max_depth=max_depth, error=error, fix=fix, object_only=object_only)


def json_plain(value, *, default=None):
    """``value`` as a JSON round trip gives it back (tuples become lists, keys strings), for the product's own data.

    Not a reader of outside input (use :func:`loads_json`): it copies values the
    product built itself, so that what is compared or stored equals what a JSON
    file later returns.

    Args:
        value: JSON-serialisable value.
        default: ``json.dumps``'s hook for other objects (e.g. numpy scalars).

    Returns:
        The copied value.
    """
    return json.loads(json.dumps(value, default=default))
