"""Tokenizer of SensorThings/OData query option text.

One lexer serves ``$filter``, ``$orderby``, ``$select`` and ``$expand`` (whose nested options
are themselves query text). Every token records the character position it starts at, so errors
can name the exact place. The lexer works left to right with anchored regular expressions that
cannot backtrack badly, and refuses input longer than :data:`MAX_LENGTH`: it always ends, in
linear time, with tokens or a :class:`~api.sta.errors.StaQueryError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Final

from api.sta import geo
from api.sta.errors import StaQueryError

MAX_LENGTH: Final = 8_000
"""Longest query option accepted (characters)."""


class Tok(Enum):
    """Token kinds."""

    NAME = "name"
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    DATETIME = "datetime"
    DATE = "date"
    TIME = "time"
    DURATION = "duration"
    GEOMETRY = "geometry"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    SLASH = "/"
    SEMI = ";"
    EQUALS = "="
    EOF = "end of input"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, source text, decoded value and position."""

    kind: Tok
    text: str
    value: object
    pos: int


_PUNCT: Final = {
    "(": Tok.LPAREN,
    ")": Tok.RPAREN,
    ",": Tok.COMMA,
    "/": Tok.SLASH,
    ";": Tok.SEMI,
    "=": Tok.EQUALS,
}

# A '+' in a URL query string arrives as a space, so "…T00:00:00 07:00" is read as +07:00.
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+\- ]\d{2}:\d{2})"
)
_DATETIME_NO_ZONE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![\dT:])")
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?![\d:])")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_NAME = re.compile(r"[A-Za-z_$@][A-Za-z0-9_.$@]*")
_DURATION = re.compile(
    r"(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", re.IGNORECASE
)
_NAME_END: Final = re.compile(r"[A-Za-z0-9_.$@]")
_WORD: Final = re.compile(r"-?[A-Za-z0-9_.$@:+-]+")

MAX_INT: Final = 2**63 - 1


def tokenize(text: str) -> list[Token]:
    """Split query text into tokens, ending with one :attr:`Tok.EOF` token.

    Raises:
        StaQueryError: on an unterminated string, a malformed date or number, a character
            that belongs to no token, or text longer than :data:`MAX_LENGTH`.
    """
    if len(text) > MAX_LENGTH:
        raise StaQueryError(f"longer than {MAX_LENGTH} characters", position=MAX_LENGTH)
    tokens: list[Token] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            tokens.append(Token(Tok.EOF, "", None, end))
            return tokens
        token = _next(text, pos)
        tokens.append(token)
        pos += len(token.text)


def _next(text: str, pos: int) -> Token:
    ch = text[pos]
    if ch in _PUNCT:
        return Token(_PUNCT[ch], ch, None, pos)
    if ch == "'":
        value, raw = _string(text, pos)
        return Token(Tok.STRING, raw, value, pos)
    if ch.isdigit() or (ch == "-" and pos + 1 < len(text) and text[pos + 1].isdigit()):
        return _number_or_time(text, pos)
    m = _NAME.match(text, pos)
    if m is not None:
        name = m.group(0)
        after = m.end()
        prefix = name.lower()
        if after < len(text) and text[after] == "'" and prefix in _TYPED:
            value, raw = _string(text, after)
            return Token(_TYPED[prefix], name + raw, _typed(prefix, value, pos), pos)
        return Token(Tok.NAME, name, name, pos)
    raise StaQueryError("unexpected character", position=pos, token=ch)


_TYPED: Final = {"duration": Tok.DURATION, "geography": Tok.GEOMETRY, "geometry": Tok.GEOMETRY}


def _typed(prefix: str, value: str, pos: int) -> object:
    if prefix == "duration":
        return parse_duration(value, pos)
    try:
        return geo.parse_wkt(value)
    except StaQueryError as err:
        err.position = pos
        raise


def _string(text: str, pos: int) -> tuple[str, str]:
    """A quoted string at ``pos``: (value with '' unescaped, source text)."""
    i = pos + 1
    parts: list[str] = []
    while True:
        j = text.find("'", i)
        if j < 0:
            raise StaQueryError("unterminated string", position=pos, token=text[pos : pos + 20])
        parts.append(text[i:j])
        if j + 1 < len(text) and text[j + 1] == "'":
            parts.append("'")
            i = j + 2
            continue
        return "".join(parts), text[pos : j + 1]


def _number_or_time(text: str, pos: int) -> Token:
    for pattern, build in ((_DATETIME, _datetime), (_DATE, _date), (_TIME, _time)):
        m = pattern.match(text, pos)
        if m is not None and not _glued(text, m.end()):
            kind, value = build(m, pos)
            return Token(kind, m.group(0), value, pos)
    m = _DATETIME_NO_ZONE.match(text, pos)
    if m is not None:
        raise StaQueryError(
            "a date-time needs a time zone (Z or ±hh:mm; send + as %2B)",
            position=pos,
            token=m.group(0),
        )
    m = _NUMBER.match(text, pos)
    if m is None or _glued(text, m.end()):
        word = _WORD.match(text, pos)
        raise StaQueryError("malformed number", position=pos, token=word.group(0) if word else "")
    raw = m.group(0)
    if m.group(1) or m.group(2):
        value = float(raw)
        if value in (float("inf"), float("-inf")):
            raise StaQueryError("number out of range", position=pos, token=raw)
        return Token(Tok.FLOAT, raw, value, pos)
    number = int(raw)
    if abs(number) > MAX_INT:
        raise StaQueryError("integer out of range", position=pos, token=raw)
    return Token(Tok.INTEGER, raw, number, pos)


def _glued(text: str, end: int) -> bool:
    """A literal followed directly by a name character (``12abc``) is malformed."""
    return end < len(text) and _NAME_END.match(text, end) is not None


def _fraction(digits: str | None) -> int:
    return int((digits or "0")[:6].ljust(6, "0"))


def _datetime(m: re.Match[str], pos: int) -> tuple[Tok, object]:
    y, mo, d, h, mi, s, frac, zone = m.groups()
    offset = timedelta(0)
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        wall = datetime(
            int(y), int(mo), int(d), int(h), int(mi), int(s or 0), _fraction(frac), tzinfo=UTC
        )
        value = wall - offset
    except (ValueError, OverflowError) as err:
        raise StaQueryError(f"invalid date-time ({err})", position=pos, token=m.group(0)) from None
    return Tok.DATETIME, value


def _date(m: re.Match[str], pos: int) -> tuple[Tok, object]:
    try:
        return Tok.DATE, date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as err:
        raise StaQueryError(f"invalid date ({err})", position=pos, token=m.group(0)) from None


def _time(m: re.Match[str], pos: int) -> tuple[Tok, object]:
    h, mi, s, frac = m.groups()
    try:
        return Tok.TIME, time(int(h), int(mi), int(s or 0), _fraction(frac))
    except ValueError as err:
        raise StaQueryError(f"invalid time ({err})", position=pos, token=m.group(0)) from None


def parse_duration(text: str, pos: int = 0) -> timedelta:
    """An ISO 8601 day-time duration (``P1D``, ``PT15M``, ``-P1DT2H``) as a timedelta.

    Raises:
        StaQueryError: for anything else (years and months have no fixed length: refused).
    """
    m = _DURATION.fullmatch(text)
    if m is None or text.upper() in ("P", "-P", "PT", "-PT") or text.upper().endswith("T"):
        raise StaQueryError(
            "invalid duration: use days, hours, minutes, seconds (P1DT2H30M)",
            position=pos,
            token=text,
        )
    neg, d, h, mi, s = m.groups()
    try:
        value = timedelta(
            days=int(d or 0), hours=int(h or 0), minutes=int(mi or 0), seconds=float(s or 0)
        )
    except OverflowError:
        raise StaQueryError("duration out of range", position=pos, token=text) from None
    return -value if neg else value
