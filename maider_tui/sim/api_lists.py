"""The fake Linode API's lists: X-Filter expressions (`+and`, `+or`, `+contains`, `+neq`, `+gt` ... and
`+order_by`) and pages (`page`, `page_size` 25-500), as Linode's API documents them."""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from maider_tui.sim.world import WorldError

DEFAULT_PAGE_SIZE = 100


def matches(item: dict[str, Any], flt: Any) -> bool:
    """Whether `item` passes an X-Filter expression."""
    if not isinstance(flt, dict):
        raise WorldError("X-Filter must be a JSON object", "X-Filter")
    for key, want in flt.items():
        if key == "+and":
            if not all(matches(item, sub) for sub in want):
                return False
        elif key == "+or":
            if not any(matches(item, sub) for sub in want):
                return False
        elif key.startswith("+"):
            continue  # +order_by and friends apply to the list, not to one item
        elif not _field_matches(item.get(key), want):
            return False
    return True


def _field_matches(value: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return all(_operator(value, op, arg) for op, arg in want.items())
    if isinstance(value, list):  # tags: equality means "has this tag", as on Linode
        return want in value
    return value == want


def _operator(value: Any, op: str, arg: Any) -> bool:
    if op == "+contains":
        return isinstance(value, (str, list)) and str(arg) in value
    if op == "+neq":
        return value != arg
    if op in ("+gt", "+gte", "+lt", "+lte") and value is not None:
        return {"+gt": value > arg, "+gte": value >= arg, "+lt": value < arg, "+lte": value <= arg}[op]
    raise WorldError(f"Unsupported filter operator {op}", "X-Filter")


def paginate(request: web.Request, items: list[dict[str, Any]]) -> web.Response:
    raw = request.headers.get("X-Filter")
    if raw:
        try:
            flt = json.loads(raw)
        except ValueError:
            raise WorldError("X-Filter is not valid JSON", "X-Filter") from None
        items = [i for i in items if matches(i, flt)]
        if isinstance(flt, dict) and "+order_by" in flt:
            items.sort(key=lambda i: i.get(flt["+order_by"]) or 0, reverse=flt.get("+order") == "desc")
    try:
        page = int(request.query.get("page", 1))
        page_size = int(request.query.get("page_size", DEFAULT_PAGE_SIZE))
    except ValueError:
        raise WorldError("page and page_size must be whole numbers", "page") from None
    if page < 1:
        raise WorldError("page must be 1 or more", "page")
    if not 25 <= page_size <= 500:
        raise WorldError("page_size must be between 25 and 500", "page_size")
    pages = max(1, math.ceil(len(items) / page_size))
    data = items[(page - 1) * page_size: page * page_size]
    return web.json_response({"data": data, "page": page, "pages": pages, "results": len(items)})
