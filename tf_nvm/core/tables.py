"""Result tables as users read them: pandas DataFrames written as CSV and Markdown (atomically).

Markdown is rendered here (no extra dependency): numbers with a fixed number
of decimals, missing values (None, NaN, pandas NA) as empty cells, one row per
line, a header separator.
"""

import math
import numbers
from typing import Any

import pandas as pd

from tf_nvm.core.atomic import write_bytes_atomic
from tf_nvm.core.safe_io import loads_json

__all__ = ["to_markdown", "write_table", "to_records"]


def _cell(value, decimals):
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.{decimals}f}"
    return str(value).replace("|", "\\|")


def to_markdown(table: pd.DataFrame, decimals: int | dict[str, int] = 4) -> str:
    """A Markdown table of a DataFrame (index left out).

    Args:
        table: pandas DataFrame.
        decimals: decimals of float cells: one int, or ``{column: int}`` (columns not named: 4).

    Returns:
        str, ending in a newline.
    """
    header = [str(c) for c in table.columns]
    places = [decimals.get(c, 4) if isinstance(decimals, dict) else decimals for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, d) for v, d in zip(row, places)) + " |")
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, prefix: str, decimals: int | dict[str, int] = 4) -> tuple[str, str]:
    """Writes ``PREFIX.csv`` and ``PREFIX.md``.

    Returns:
        (csv path, markdown path).
    """
    csv_path, md_path = f"{prefix}.csv", f"{prefix}.md"
    write_bytes_atomic(csv_path, table.to_csv(index=False).encode("utf-8"))
    write_bytes_atomic(md_path, to_markdown(table, decimals).encode("utf-8"))
    return csv_path, md_path


def to_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame as a JSON-ready list of row dicts (numpy numbers as Python numbers, NaN as None).

    Args:
        table: pandas DataFrame.

    Returns:
        list of ``{column: value}``, one per row, as ``table.to_json(orient="records")`` reads back.
    """
    return loads_json(table.to_json(orient="records"), where="result table")
