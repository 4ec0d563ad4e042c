"""Tables for people: plain text for terminals and teardown output, `Table` for notebooks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def text_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as an aligned text table; an empty list gives '(none)'."""
    if not rows:
        return "(none)"
    columns = list(columns or rows[0].keys())
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = "  ".join("-" * w for w in widths)
    header = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join([header.rstrip(), line, *body])


class Table(pd.DataFrame):
    """A DataFrame that a notebook shows whole: no cut text, no '.0' on whole numbers.

    Counts come back from CloudWatch as floats (37.0) and long text is cut at 50 characters
    by pandas' default display; this only changes what is displayed, not the data.
    `hide_index` drops an index that means nothing to the reader (0, 1, 2 ...).
    """

    _metadata = ["hide_index"]
    hide_index: bool = False

    @property
    def _constructor(self) -> type[Table]:
        """Slices, copies and arithmetic keep the display."""
        return Table

    def _repr_html_(self) -> str:
        """The HTML table JupyterLab shows."""
        formatters = {
            column: _whole_number
            for column in self.columns
            if pd.api.types.is_float_dtype(self[column]) and _all_whole(self[column])
        }
        with pd.option_context("display.max_colwidth", None):
            return self.to_html(
                formatters=formatters,
                index=not self.hide_index,
                notebook=True,
                max_rows=pd.get_option("display.max_rows"),
                border=1,
            )


def _all_whole(values: pd.Series) -> bool:
    """True when every value that is there is a whole number."""
    present = values.dropna()
    return bool(len(present)) and bool((present == present.round()).all())


def _whole_number(value: float) -> str:
    """37.0 as '37' (and a missing value as pandas shows it)."""
    return "NaN" if pd.isna(value) else f"{value:.0f}"
