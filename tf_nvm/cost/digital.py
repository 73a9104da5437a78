"""Digital work of every op of the mapping's digital-op table: adds, multiplies, compares, buffer traffic.

`DIGITAL_OP_WORK` has one entry per op of `tf_nvm.mapping.ops.DIGITAL_OPS`
(a test keeps the two tables equal). Each entry maps (input shapes, output
shape, params) to an `OpWork`: integer operations and the activation bytes
read from and written to the inter-layer buffer per inference. The counts
follow the op's exact semantics in ``tf_nvm.mapping.ops`` (e.g. the digital
BatchNorm ``round(float32(q * m + k) * u)`` is one multiply, one add, one
multiply and one clip per element). Pure data movement (reshape, flatten,
concatenate, zero padding, identity) is address arithmetic: no operations and
no buffer traffic (an assumption, stated in ``docs/cost_model.md``). Softmax's
exponential is counted as one multiply, two adds and one compare per element
(an assumption: a table look-up exponential, a running sum and a normalising
multiply).

Numpy-free (cost-model layer).
"""

import dataclasses
from typing import Any
import math

from tf_nvm.core.errors import CostModelError
from tf_nvm.core.registry import Registry

__all__ = ["OpWork", "DIGITAL_OP_WORK", "op_work"]


@dataclasses.dataclass(frozen=True)
class OpWork:
    """Digital work of one step per inference.

    Attributes:
        adds: integer additions (32-bit).
        multiplies: integer multiplications (32-bit).
        compares: comparisons (ReLU, clipping, max).
        bytes_read: activation bytes read from the buffer (int8 codes).
        bytes_written: activation bytes written to the buffer.
    """

    adds: int = 0
    multiplies: int = 0
    compares: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    def __add__(self, other: "OpWork") -> "OpWork":
        return OpWork(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    @property
    def operations(self) -> int:
        """All digital operations."""
        return self.adds + self.multiplies + self.compares


DIGITAL_OP_WORK = Registry("digital-op cost", error=CostModelError,
                           fix="add an entry to tf_nvm.cost.digital.DIGITAL_OP_WORK for the new op")
"""Op name -> function(input shapes, output shape, params) -> `OpWork`."""


def _size(shape):
    return math.prod(shape)


def _elementwise(adds=0, multiplies=0, compares=0):
    def work(in_shapes, out_shape, params):
        n = _size(out_shape)
        return OpWork(adds * n, multiplies * n, compares * n, sum(_size(s) for s in in_shapes), n)
    return work


def _moves(in_shapes, out_shape, params):
    return OpWork()


def _add(in_shapes, out_shape, params):
    n = _size(out_shape)
    return OpWork((len(in_shapes) - 1) * n, 0, n, sum(_size(s) for s in in_shapes), n)


def _global_average_pool(in_shapes, out_shape, params):
    n_in, n_out = _size(in_shapes[0]), _size(out_shape)
    return OpWork(n_in, n_out, n_out, n_in, n_out)


def _global_max_pool(in_shapes, out_shape, params):
    n_in, n_out = _size(in_shapes[0]), _size(out_shape)
    return OpWork(0, 0, n_in, n_in, n_out)


def _max_pool(in_shapes, out_shape, params):
    window = math.prod(params["pool_size"])
    n_out = _size(out_shape)
    return OpWork(0, 0, (window - 1) * n_out, _size(in_shapes[0]), n_out)


def _average_pool(in_shapes, out_shape, params):
    window = math.prod(params["pool_size"])
    n_out = _size(out_shape)
    return OpWork((window - 1) * n_out, n_out, n_out, _size(in_shapes[0]), n_out)


for _name, _work, _text in [
    ("add", _add, "one add per extra input and one clip per element"),
    ("average_pool", _average_pool, "window-1 adds, one divide (counted as a multiply) and one clip per output"),
    ("batch_norm", _elementwise(adds=1, multiplies=2, compares=1), "q*m+k, *u, clip"),
    ("concatenate", _moves, "address arithmetic only"),
    ("crop", _moves, "address arithmetic only"),
    ("flatten", _moves, "address arithmetic only"),
    ("global_average_pool", _global_average_pool, "one add per input, one multiply and clip per output"),
    ("global_max_pool", _global_max_pool, "one compare per input"),
    ("identity", _moves, "address arithmetic only"),
    ("max_pool", _max_pool, "window-1 compares per output"),
    ("relu", _elementwise(compares=1), "one compare per element"),
    ("rescale", _elementwise(adds=1, multiplies=1, compares=1), "x*scale+offset, clip"),
    ("reshape", _moves, "address arithmetic only"),
    ("subtract", _elementwise(adds=1, compares=1), "one subtract and one clip per element"),
    ("softmax", _elementwise(adds=2, multiplies=1, compares=1), "ASSUMPTION: table exp, sum, normalise"),
    ("transpose", _moves, "address arithmetic only"),
    ("zero_pad", _moves, "address arithmetic only"),
]:
    DIGITAL_OP_WORK.register(_name, _work, description=_text)


def op_work(op: str, in_shapes: list[tuple[int, ...]], out_shape: tuple[int, ...], params: dict[str, Any]) -> OpWork:
    """`OpWork` of one digital step (``op`` a digital-op name).

    Raises:
        CostModelError: an op without a cost entry (the message lists the known ops).
    """
    return DIGITAL_OP_WORK.get(op)(in_shapes, out_shape, params)
