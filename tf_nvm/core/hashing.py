"""SHA-256 of numpy arrays: the one layout of every content hash of data (no TensorFlow).

`arrays_sha256` hashes named arrays as ``"{name}:{dtype.str}:{shape};"`` (ASCII, ``shape`` a Python tuple)
followed by the array's bytes in C order, array after array; an absent array (None) counts as
``"{name}:none;"``. Two users: `tf_nvm.experiments.data.Split.content_hash` (the six arrays of a data split,
by field name: what run folders record as ``data_sha256``) and `tf_nvm.simulator.shards.array_hash` (a
Monte Carlo's test data, by position, inside a shard's settings hash).
"""

import hashlib
from collections.abc import Iterable

import numpy as np

__all__ = ["arrays_sha256"]


def arrays_sha256(named: Iterable[tuple[str, np.ndarray | None]]) -> str:
    """SHA-256 (hex str) of named arrays: names, dtypes, shapes and bytes, in the order given.

    The bytes are read in place (a C-contiguous array is not copied; another one is copied once into C order),
    so a 0.7 GB data set is hashed without a second copy of it.

    Args:
        named: ``(name, array)`` pairs; an array may be None (absent).

    Returns:
        64 lowercase hex digits.
    """
    digest = hashlib.sha256()
    for name, array in named:
        if array is None:
            digest.update(f"{name}:none;".encode("ascii"))
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode("ascii"))
        digest.update(array.reshape(-1).view(np.uint8).data)  # the bytes as a buffer, not a tobytes() copy
    return digest.hexdigest()
