"""A compositor that renders, for a partial update, only the widgets whose pixels the update shows.

Textual's compositor answers a partial update (some lines of some widgets changed) by rendering
every widget whose clipping region crosses the rectangle around all the changed regions, each one
whole, and then keeping, line by line and front to back, the first widget's piece of each line. A
dashboard whose GPU lines (left) and countdown (right) change every second thus renders all of its
widgets every second, the containers behind the panels, the log below them and the footer included,
though only the changed lines of three widgets reach the terminal.

`CullingCompositor` keeps the same rule and the same output, and skips the work that cannot change
it: going front to back, it renders a widget only when some piece of a line that the update sends
to the terminal lies in the widget's visible region and no widget in front of it has drawn that
piece. Full updates (a resize, a new layout, a screenshot) are Textual's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual._compositor import ChopsUpdate, Compositor
from textual.geometry import Region
from textual.strip import Strip


class CullingCompositor(Compositor):
    """Textual's compositor, rendering only the widgets that draw what a partial update sends."""

    def render_partial_update(self) -> ChopsUpdate | None:
        update_regions = self._dirty_regions.copy()
        self._dirty_regions.clear()
        if not update_regions:
            return None
        crop = Region.from_union(update_regions).intersection(self.size.region)
        spans = list(self._regions_to_spans(update_regions))
        chops = self._render_spans(crop, spans)
        return ChopsUpdate(chops, spans, [cut_set[1:] for cut_set in self.cuts])

    def _render_spans(self, crop: Region,
                      spans: Sequence[tuple[int, int, int]]) -> Sequence[Mapping[int, Strip]]:
        """The pieces of each line (by the x where each starts) that the spans show; others stay None."""
        cuts = self.cuts
        chops: list[dict[int, Strip | None]] = [dict.fromkeys(cut_set[:-1]) for cut_set in cuts]
        # Per line, the pieces still to draw: those with at least one cell in a span.
        wanted: dict[int, set[int]] = {}
        for y, x1, x2 in spans:
            line = cuts[y]
            wanted.setdefault(y, set()).update(x for x, end in zip(line, line[1:]) if x < x2 and end > x1)
        intersection = Region.intersection
        for widget, (region, clip) in self.visible_widgets.items():  # front to back
            if not wanted:
                break  # every piece sent is drawn: the widgets behind would be dropped
            if not crop.overlaps(clip):
                continue
            visible = intersection(region, clip)
            first_cut, last_cut = visible.column_span
            top, bottom = visible.y, visible.bottom
            if not any(top <= y < bottom and any(first_cut <= x < last_cut for x in xs)
                       for y, xs in wanted.items()):
                continue  # nothing of it is sent, or what is sent there is drawn by a widget in front
            if visible == region:
                strips = widget.render_lines(Region(0, 0, region.width, region.height))
            else:
                strips = widget.render_lines(Region(visible.x - region.x, visible.y - region.y,
                                                    visible.width, visible.height))
            render_x = visible.x
            for y, strip in zip(visible.line_range, strips):
                line_wanted = wanted.get(y)
                if line_wanted is None:
                    continue
                chops_line = chops[y]
                final_cuts = [cut for cut in cuts[y] if last_cut >= cut >= first_cut]
                cut_strips = strip.divide([cut - render_x for cut in final_cuts[1:]])
                for cut, piece in zip(final_cuts, cut_strips):
                    if chops_line.get(cut) is None:
                        chops_line[cut] = piece
                        line_wanted.discard(cut)
                if not line_wanted:
                    del wanted[y]
        return chops  # type: ignore[return-value]
