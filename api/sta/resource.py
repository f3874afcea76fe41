"""The resource path of a request: ``Things('aq-1')/Datastreams``, ``Observations('…')/result``.

A path is segments separated by ``/``; a segment is a name, optionally followed by a key in
parentheses. Keys are OData string literals (``'aq-1'``, with ``''`` for a quote) or bare
tokens (``Things(42)``: taken as the string ``42``, so a numeric id a generic client tries is a
404, not an error). Slashes inside a quoted key do not split the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from api.sta.errors import StaQueryError

MAX_SEGMENTS: Final = 12


@dataclass(frozen=True, slots=True)
class Segment:
    """One path segment: ``name`` or ``name(key)``."""

    name: str
    key: str | None
    pos: int


def _error(message: str, pos: int, token: str) -> StaQueryError:
    return StaQueryError(message, option="path", position=pos, token=token)


def parse_path(path: str) -> list[Segment]:
    """Split a resource path (after ``/sta/v1.1/``) into segments; empty for the root.

    Raises:
        StaQueryError: for an empty segment, an unterminated key or text after a key.
    """
    text = path.strip("/")
    segments: list[Segment] = []
    i, n = 0, len(text)
    while i < n:
        start = i
        while i < n and text[i] not in "(/":
            if text[i] in ")'":
                raise _error("unexpected character in a segment name", i, text[i])
            i += 1
        name = text[start:i]
        if not name:
            raise _error("empty path segment", i, text[i : i + 1] or "/")
        key = None
        if i < n and text[i] == "(":
            key, i = _key(text, i)
        if i < n and text[i] != "/":
            raise _error("expected '/' after a key", i, text[i])
        segments.append(Segment(name, key, start))
        if len(segments) > MAX_SEGMENTS:
            raise _error(f"more than {MAX_SEGMENTS} path segments", start, name)
        i += 1
    return segments


def _key(text: str, i: int) -> tuple[str, int]:
    """The key after the '(' at ``i``, and the index after its ')'."""
    open_at = i
    i += 1
    n = len(text)
    if i < n and text[i] == "'":
        parts: list[str] = []
        i += 1
        while True:
            j = text.find("'", i)
            if j < 0:
                raise _error("unterminated quoted key", open_at, text[open_at:])
            parts.append(text[i:j])
            if j + 1 < n and text[j + 1] == "'":
                parts.append("'")
                i = j + 2
                continue
            i = j + 1
            break
        key = "".join(parts)
    else:
        close = text.find(")", i)
        if close < 0:
            raise _error("unterminated key", open_at, text[open_at:])
        key = text[i:close].strip()
        i = close
    if i >= n or text[i] != ")":
        raise _error("expected ')' after the key", i, text[i : i + 1] or "end of path")
    return key, i + 1
