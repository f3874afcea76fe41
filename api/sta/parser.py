"""Recursive-descent parser of ``$filter``, ``$orderby``, ``$select`` and ``$expand``.

Operator precedence, loosest first (the OData rules, with ``not`` applying to a whole
comparison as users expect: ``not name eq 'x'`` is ``not (name eq 'x')``)::

    or  <  and  <  not  <  eq ne gt ge lt le  <  add sub  <  mul div mod  <  primary

A primary is a literal, a parenthesised expression, a function call ``name(args)`` or a property
path ``a/b/c``. Comparisons do not chain (``a eq b eq c`` is an error). Nesting is bounded by
:data:`MAX_DEPTH`, so a hostile ``((((…`` ends in a :class:`~api.sta.errors.StaQueryError`, never
in a ``RecursionError``. Operator and function names are matched case-insensitively.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

from api.sta.ast import (
    ARITHMETIC,
    COMPARISONS,
    BinOp,
    Call,
    ExpandItem,
    Expr,
    Literal,
    LitKind,
    Not,
    OrderItem,
    Path,
    QueryOptions,
)
from api.sta.errors import StaQueryError
from api.sta.lexer import Tok, Token, tokenize

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_DEPTH: Final = 40
"""Deepest nesting of parentheses, calls, ``not`` and ``$expand`` accepted."""

MAX_ITEMS: Final = 100
"""Most items in one ``$orderby``, ``$select`` or ``$expand`` list."""

_KEYWORDS: Final = COMPARISONS | ARITHMETIC | {"and", "or", "not", "asc", "desc"}
_LITERAL_NAMES: Final = {
    "true": (LitKind.BOOLEAN, True),
    "false": (LitKind.BOOLEAN, False),
    "null": (LitKind.NULL, None),
}
_TOKEN_LITERALS: Final = {
    Tok.STRING: LitKind.STRING,
    Tok.INTEGER: LitKind.INTEGER,
    Tok.FLOAT: LitKind.FLOAT,
    Tok.DATETIME: LitKind.DATETIME,
    Tok.DATE: LitKind.DATE,
    Tok.TIME: LitKind.TIME,
    Tok.DURATION: LitKind.DURATION,
    Tok.GEOMETRY: LitKind.GEOMETRY,
}
_EXPAND_OPTIONS: Final = ("$filter", "$orderby", "$top", "$skip", "$count", "$select", "$expand")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind is not Tok.EOF:
            self.i += 1
        return token

    def error(self, message: str, token: Token | None = None) -> StaQueryError:
        t = token or self.tok
        shown = t.text if t.kind is not Tok.EOF else "end of input"
        return StaQueryError(message, position=t.pos, token=shown)

    def expect(self, kind: Tok, what: str) -> Token:
        if self.tok.kind is not kind:
            raise self.error(f"expected {what}")
        return self.advance()

    def keyword(self) -> str | None:
        """The lower-cased keyword under the cursor, if the token is one."""
        if self.tok.kind is Tok.NAME and self.tok.text.lower() in _KEYWORDS:
            return self.tok.text.lower()
        return None

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested more than {MAX_DEPTH} levels deep")

    def leave(self) -> None:
        self.depth -= 1

    def end(self) -> None:
        if self.tok.kind is not Tok.EOF:
            raise self.error("unexpected text")

    # -- expressions -----------------------------------------------------------------------

    def expression(self) -> Expr:
        self.enter()
        try:
            return self.or_expr()
        finally:
            self.leave()

    def or_expr(self) -> Expr:
        left = self.and_expr()
        while self.keyword() == "or":
            op = self.advance()
            left = BinOp("or", left, self.and_expr(), op.pos)
        return left

    def and_expr(self) -> Expr:
        left = self.not_expr()
        while self.keyword() == "and":
            op = self.advance()
            left = BinOp("and", left, self.not_expr(), op.pos)
        return left

    def not_expr(self) -> Expr:
        if self.keyword() == "not":
            op = self.advance()
            self.enter()
            try:
                return Not(self.not_expr(), op.pos)
            finally:
                self.leave()
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.additive()
        kw = self.keyword()
        if kw in COMPARISONS:
            op = self.advance()
            left = BinOp(kw, left, self.additive(), op.pos)
            if self.keyword() in COMPARISONS:
                raise self.error("comparisons cannot be chained; combine them with and/or")
        return left

    def additive(self) -> Expr:
        left = self.multiplicative()
        while (kw := self.keyword()) in ("add", "sub"):
            op = self.advance()
            left = BinOp(kw, left, self.multiplicative(), op.pos)
        return left

    def multiplicative(self) -> Expr:
        left = self.primary()
        while (kw := self.keyword()) in ("mul", "div", "mod"):
            op = self.advance()
            left = BinOp(kw, left, self.primary(), op.pos)
        return left

    def primary(self) -> Expr:
        t = self.tok
        if t.kind in _TOKEN_LITERALS:
            self.advance()
            return Literal(_TOKEN_LITERALS[t.kind], t.value, t.pos)
        if t.kind is Tok.LPAREN:
            self.advance()
            inner = self.expression()
            self.expect(Tok.RPAREN, "')'")
            return inner
        if t.kind is Tok.NAME:
            lowered = t.text.lower()
            if lowered in _LITERAL_NAMES:
                self.advance()
                kind, value = _LITERAL_NAMES[lowered]
                return Literal(kind, value, t.pos)
            if lowered in _KEYWORDS:
                raise self.error("expected a value, a property or a function")
            self.advance()
            if self.tok.kind is Tok.LPAREN:
                return self.call(t)
            return self.path(t)
        raise self.error("expected a value, a property or a function")

    def call(self, name: Token) -> Expr:
        self.advance()  # '('
        self.enter()
        try:
            args: list[Expr] = []
            if self.tok.kind is not Tok.RPAREN:
                args.append(self.expression())
                while self.tok.kind is Tok.COMMA:
                    self.advance()
                    args.append(self.expression())
                    if len(args) > MAX_ITEMS:
                        raise self.error("too many arguments")
            self.expect(Tok.RPAREN, "',' or ')'")
        finally:
            self.leave()
        return Call(name.text.lower(), tuple(args), name.pos)

    def path(self, first: Token) -> Path:
        segments = [first.text]
        while self.tok.kind is Tok.SLASH:
            self.advance()
            seg = self.expect(Tok.NAME, "a property name after '/'")
            if seg.text.lower() in _KEYWORDS:
                raise self.error("expected a property name after '/'", seg)
            segments.append(seg.text)
            if len(segments) > MAX_DEPTH:
                raise self.error("property path too long")
        return Path(tuple(segments), first.pos)

    # -- lists -----------------------------------------------------------------------------

    def items(self, one: Callable[[], object], what: str) -> list[object]:
        out = [one()]
        while self.tok.kind is Tok.COMMA:
            self.advance()
            out.append(one())
            if len(out) > MAX_ITEMS:
                raise self.error(f"more than {MAX_ITEMS} {what}")
        return out

    def order_item(self) -> OrderItem:
        expr = self.expression()
        kw = self.keyword()
        if kw in ("asc", "desc"):
            self.advance()
            return OrderItem(expr, kw == "desc")
        return OrderItem(expr, descending=False)

    def orderby(self) -> tuple[OrderItem, ...]:
        return tuple(self.items(self.order_item, "$orderby keys"))  # type: ignore[arg-type]

    def select_item(self) -> str:
        t = self.expect(Tok.NAME, "a property or relation name")
        if t.text.lower() in _KEYWORDS:
            raise self.error("expected a property or relation name", t)
        return t.text

    def select(self) -> tuple[str, ...]:
        return tuple(self.items(self.select_item, "$select names"))  # type: ignore[arg-type]

    def expand_item(self) -> ExpandItem:
        first = self.expect(Tok.NAME, "a relation name")
        names = [first]
        while self.tok.kind is Tok.SLASH:
            self.advance()
            names.append(self.expect(Tok.NAME, "a relation name after '/'"))
            if len(names) > MAX_DEPTH:
                raise self.error("$expand path too long")
        options = QueryOptions()
        if self.tok.kind is Tok.LPAREN:
            self.advance()
            self.enter()
            try:
                options = self.expand_options()
            finally:
                self.leave()
        # a/b/c(opts) expands a, within it b, within it c with the options.
        item = ExpandItem(names[-1].text, options, names[-1].pos)
        for name in reversed(names[:-1]):
            item = ExpandItem(name.text, QueryOptions(expand=(item,)), name.pos)
        return item

    def expand_options(self) -> QueryOptions:
        values: dict[str, object] = {}
        while True:
            name = self.expect(Tok.NAME, "a query option such as $filter or $top")
            option = name.text
            if option not in _EXPAND_OPTIONS:
                raise self.error(
                    f"unknown option inside $expand: use {', '.join(_EXPAND_OPTIONS)}", name
                )
            if option in values:
                raise self.error(f"{option} given twice", name)
            self.expect(Tok.EQUALS, f"'=' after {option}")
            values[option] = self.option_value(option)
            if self.tok.kind is Tok.SEMI:
                self.advance()
                continue
            self.expect(Tok.RPAREN, "';' or ')'")
            break
        return QueryOptions(
            filter=values.get("$filter"),  # type: ignore[arg-type]
            orderby=values.get("$orderby", ()),  # type: ignore[arg-type]
            top=values.get("$top"),  # type: ignore[arg-type]
            skip=values.get("$skip", 0),  # type: ignore[arg-type]
            count=bool(values.get("$count", False)),
            select=values.get("$select"),  # type: ignore[arg-type]
            expand=values.get("$expand", ()),  # type: ignore[arg-type]
        )

    def option_value(self, option: str) -> object:
        if option == "$filter":
            return self.expression()
        if option == "$orderby":
            return self.orderby()
        if option == "$select":
            return self.select()
        if option == "$expand":
            return self.expand()
        if option == "$count":
            t = self.expect(Tok.NAME, "true or false")
            if t.text.lower() not in ("true", "false"):
                raise self.error("expected true or false", t)
            return t.text.lower() == "true"
        t = self.expect(Tok.INTEGER, "a non-negative integer")
        if not isinstance(t.value, int) or t.value < 0:
            raise self.error("expected a non-negative integer", t)
        return t.value

    def expand(self) -> tuple[ExpandItem, ...]:
        items: list[ExpandItem] = self.items(self.expand_item, "$expand relations")  # type: ignore[assignment]
        return merge_expands(items)


def merge_expands(items: list[ExpandItem]) -> tuple[ExpandItem, ...]:
    """Combine items naming the same relation (``Datastreams,Datastreams/Observations``).

    The options of the item that states them win; nested expansions are merged recursively.
    """
    merged: dict[str, ExpandItem] = {}
    for item in items:
        seen = merged.get(item.relation)
        if seen is None:
            merged[item.relation] = item
            continue
        base = item if item.options != QueryOptions(expand=item.options.expand) else seen
        children = merge_expands([*seen.options.expand, *item.options.expand])
        merged[item.relation] = ExpandItem(
            item.relation, dataclasses.replace(base.options, expand=children), seen.pos
        )
    return tuple(merged.values())


def _run(text: str, option: str, parse: Callable[[_Parser], object]) -> object:
    try:
        parser = _Parser(text)
        if parser.tok.kind is Tok.EOF:
            raise parser.error("is empty")
        result = parse(parser)
        parser.end()
    except StaQueryError as err:
        raise err.located(option) from None
    return result


def parse_filter(text: str) -> Expr:
    """Parse a ``$filter`` expression.

    Raises:
        StaQueryError: naming the position and token where parsing failed.
    """
    return _run(text, "$filter", _Parser.expression)  # type: ignore[return-value]


def parse_orderby(text: str) -> tuple[OrderItem, ...]:
    """Parse ``$orderby``: comma-separated expressions, each optionally ``asc``/``desc``.

    Raises:
        StaQueryError: naming the position and token where parsing failed.
    """
    return _run(text, "$orderby", _Parser.orderby)  # type: ignore[return-value]


def parse_select(text: str) -> tuple[str, ...]:
    """Parse ``$select``: comma-separated property and relation names.

    Raises:
        StaQueryError: naming the position and token where parsing failed.
    """
    return _run(text, "$select", _Parser.select)  # type: ignore[return-value]


def parse_expand(text: str) -> tuple[ExpandItem, ...]:
    """Parse ``$expand``: relations, paths (``Datastreams/Observations``) and nested options
    in parentheses separated by ``;`` (``Observations($top=1;$orderby=phenomenonTime desc)``).

    Raises:
        StaQueryError: naming the position and token where parsing failed.
    """
    return _run(text, "$expand", _Parser.expand)  # type: ignore[return-value]
