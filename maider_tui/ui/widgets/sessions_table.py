"""The sessions list: a DataTable whose cell updates repaint the cell's row, not the whole table.

`DataTable.update_cell` repaints every line of the widget, and the sessions table fills its box: at
120x40, 30 lines re-rendered each second (about 7 ms of CPU) because a live session's cost moved a
cent. Here an update that keeps the column widths marks only its row dirty. It sets the same state
`update_cell` sets (the cell, and the update count that keys DataTable's render caches), so it
relies on DataTable's private attributes: safe while Textual stays pinned (pyproject.toml), and
`tests/ui/test_home.py` paints every frame the app sends and checks each row shows its new cost.
"""

from __future__ import annotations

from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, CellType, ColumnKey, RowKey


class SessionsTable(DataTable):
    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: CellType, *,
                    update_width: bool = False) -> None:
        if update_width:  # the column may widen: every row moves, so the whole table repaints
            super().update_cell(row_key, column_key, value, update_width=True)
            return
        row_key = RowKey(row_key) if isinstance(row_key, str) else row_key
        column_key = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        if row_key not in self._row_locations or column_key not in self._column_locations:
            raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
        self._data[row_key][column_key] = value
        self._update_count += 1
        self.refresh_row(self._row_locations.get(row_key))
