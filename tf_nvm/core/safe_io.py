"""Bounded reading of files that may be hostile (numpy only; TensorFlow is never imported).

This module gathers three readers, one module each, and re-exports their public
names (import them from here): :mod:`tf_nvm.core.safe_read` (regular files,
whole-file, gzip and zip-member reads), :mod:`tf_nvm.core.safe_npz` (``.npz``
archives) and :mod:`tf_nvm.core.safe_json` (JSON files and text).

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

from tf_nvm.core.safe_json import (MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_FLOAT, MAX_JSON_INT, json_plain,
                                   loads_json, read_json)
from tf_nvm.core.safe_npz import MAX_NPY_DIMS, MAX_NPY_HEADER_BYTES, MAX_NPZ_BYTES, load_npz
from tf_nvm.core.safe_read import (MAX_READ_BYTES, MAX_SINGLE_READ_BYTES, MIB, READ_CHUNK_BYTES, check_regular,
                                   file_kind, open_regular, open_zip, read_bytes, read_maybe_gzip, read_zip_member)

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
