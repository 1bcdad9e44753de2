"""Reading the user's small text files (settings, `.env`) so that no file can hang or crash the app.

A file is read only if it is a regular file, and no further than MAX_FILE_BYTES (a device such as
/dev/zero is never opened), and its TOML may nest only MAX_DEPTH deep (tomllib recurses per level).
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 1 << 20
"""A settings or `.env` file larger than this (1 MiB) is refused unread: real ones are a few KiB."""
MAX_DEPTH = 32
"""Tables and arrays nested deeper than this are refused: the settings need three levels."""


class UnusableFile(ValueError):
    """A file that cannot be used as settings; the message says why, to follow the file's name."""


def read_text_capped(path: Path) -> str:
    """The text of a regular file of at most MAX_FILE_BYTES, read no further than that.

    Raises FileNotFoundError, another OSError, UnicodeDecodeError or UnusableFile (a folder, a
    device or a pipe, which are never opened, or a file too large)."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise UnusableFile("is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise UnusableFile("is not a regular file (a device, a pipe or a socket)")
    with open(path, "rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise UnusableFile(f"is larger than {MAX_FILE_BYTES // (1 << 20)} MiB, too large for a settings file")
    return data.decode("utf-8")


def parse_toml(text: str) -> dict[str, Any]:
    """`tomllib.loads`, refusing data nested deeper than MAX_DEPTH (which would exhaust the stack)."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        data = None
    if data is None or _depth(data) > MAX_DEPTH:
        raise UnusableFile(f"nests tables or arrays more than {MAX_DEPTH} levels deep")
    return data


def _depth(data: Any) -> int:
    """How deeply tables and arrays nest in `data`, counted without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def toml_file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be used as the settings file (a sentence without the path), or None."""
    try:
        parse_toml(read_text_capped(Path(path)))
    except FileNotFoundError:
        return "does not exist"
    except UnusableFile as exc:
        return str(exc)
    except UnicodeDecodeError:
        return "is not UTF-8 text"
    except tomllib.TOMLDecodeError as exc:
        return f"is not valid TOML ({exc})"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None
