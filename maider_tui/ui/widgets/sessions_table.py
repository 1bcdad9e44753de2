"""The sessions list: a DataTable whose cell updates repaint the cell's row, not the whole table.

`DataTable.update_cell` sets the cell and then calls `self.refresh()`, which repaints every line of
the widget, and the sessions table fills its box: at 120x40, 30 lines re-rendered each second (about
7 ms of CPU) because a live session's cost moved a cent. Here an update that keeps the column widths
lets `DataTable.update_cell` do all of its work and turns that one whole-widget refresh into
`refresh_row` of the updated row: public API only (`update_cell`, `refresh`, `refresh_row`,
`get_row_index`). Should a Textual release stop calling `refresh()` there, the row would not repaint:
`tests/ui/test_home.py` checks that each update repaints its row and that the row shows the new value.
"""

from __future__ import annotations

from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import CellType, ColumnKey, RowKey


class SessionsTable(DataTable):
    updating_row: RowKey | str | None = None  # set while update_cell runs: its refresh is this row's

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: CellType, *,
                    update_width: bool = False) -> None:
        if update_width:  # the column may widen: every row moves, so the whole table repaints
            super().update_cell(row_key, column_key, value, update_width=True)
            return
        self.updating_row = row_key
        try:
            super().update_cell(row_key, column_key, value)
        finally:
            self.updating_row = None

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> SessionsTable:
        row = self.updating_row
        if row is not None and not regions and repaint and not layout and not recompose:
            self.updating_row = None  # refresh_row calls refresh(region): that one goes through
            self.refresh_row(self.get_row_index(row))
            return self
        super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
        return self
