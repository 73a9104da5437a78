"""The one place that starts matplotlib (headless) and writes figures as PNG atomically.

Every plot of the product (simulator sweeps, cost bars, search Pareto fronts,
the `tf-nvm run` report) goes through `pyplot` and `write_png`, so figures are
rendered without a display and never left half-written.
"""

import io
import os
from typing import Any

from tf_nvm.core.atomic import write_bytes_atomic

__all__ = ["pyplot", "write_png"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend (imported on first use: matplotlib is slow to import)."""
    import matplotlib  # noqa: PLC0415  (lazy: matplotlib takes seconds to import, only needed to plot)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415  (lazy, as above; after the backend is chosen)

    return plt


def write_png(figure: Any, path: str | os.PathLike[str], dpi: int = 120) -> str:
    """Saves ``figure`` as a PNG at ``path`` atomically (tight bounding box) and closes it; returns ``str(path)``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(figure)
    write_bytes_atomic(path, buffer.getvalue())
    return str(path)
