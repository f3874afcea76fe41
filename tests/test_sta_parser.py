"""The SensorThings query language without a database: lexer, parser, compiler, ids.

Hypothesis properties: on any text, and on valid filters with random mutations, the parser
returns a tree or raises the typed :class:`StaQueryError` (which the API answers with a 400),
never anything else; compiling any parsed tree against any entity does the same; values never
reach SQL text; and printing a tree back to text and parsing it again gives the same tree.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from api.sta import geo
from api.sta.ast import BinOp, Call, ExpandItem, Literal, LitKind, Not, Path, QueryOptions
from api.sta.compile import ExprCompiler, Params, Scope
from api.sta.entities import BY_PLURAL, ENTITIES, Entity
from api.sta.errors import StaQueryError
from api.sta.lexer import MAX_LENGTH, Tok, tokenize
from api.sta.options import parse_options, unparse_expand, unparse_expr, unparse_orderby
from api.sta.parser import MAX_DEPTH, parse_expand, parse_filter, parse_orderby, parse_select
from api.sta.resource import parse_path
from api.sta.units import UNITS
from core.metrics import METRICS
from store import sta
from store.visibility import PUBLIC_ONLY
from tests.sta_support import VALID_FILTERS, mutated

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


def compile_filter(entity: Entity, text: str) -> tuple[str, dict[str, object]]:
    params = Params()
    scope = Scope(params, lambda e: sta.view(e.name, PUBLIC_ONLY))
    compiler = ExprCompiler(scope, entity, scope.alias())
    return compiler.condition(parse_filter(text)), params.values


def error_of(text: str) -> StaQueryError:
    with pytest.raises(StaQueryError) as info:
        parse_filter(text)
    return info.value


# -- lexer -------------------------------------------------------------------------------------


def test_literals_are_typed() -> None:
    tokens = tokenize(
        "'it''s' 42 -7 2.5 1e3 2024-05-01T07:30:00+07:00 2024-05-01T00:00:00.25Z"
        " 2024-05-01 12:30:15 duration'P1DT2H' geography'POINT(106.1 20.4)' true"
    )
    assert [t.value for t in tokens[:-1]] == [
        "it's",
        42,
        -7,
        2.5,
        1000.0,
        datetime(2024, 5, 1, 0, 30, tzinfo=UTC),
        datetime(2024, 5, 1, 0, 0, 0, 250000, tzinfo=UTC),
        date(2024, 5, 1),
        time(12, 30, 15),
        timedelta(days=1, hours=2),
        geo.Point(106.1, 20.4),
        "true",
    ]
    assert tokens[-1].kind is Tok.EOF


def test_a_plus_decoded_to_a_space_still_reads_as_an_offset() -> None:
    # '+' in a query string arrives as ' ': 2024-05-01T07:30:00 07:00 means +07:00.
    [tok, _] = tokenize("2024-05-01T07:30:00 07:00")
    assert tok.value == datetime(2024, 5, 1, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "position", "token"),
    [
        ("name eq 'open", 8, "'open"),
        ("name eq 2024-13-01T00:00:00Z", 8, "2024-13-01T00:00:00Z"),
        ("phenomenonTime gt 2024-01-01T00:00:00", 18, "2024-01-01T00:00:00"),
        ("result gt 12abc", 10, "12abc"),
        ("name eq #", 8, "#"),
        ("x eq duration'P1Y'", 5, "P1Y"),
        ("st_within(location, geography'POLYGON((1 2, 3 4))')", 20, None),
        ("geo.distance(location, geography'POINT(200 10)') lt 1", 23, None),
    ],
)
def test_lexer_errors_name_position_and_token(text: str, position: int, token: str | None) -> None:
    err = error_of(text)
    assert err.option == "$filter"
    assert err.position == position
    if token is not None:
        assert token in (err.token or "")


def test_over_long_input_is_refused() -> None:
    err = error_of("a" * (MAX_LENGTH + 1))
    assert "longer than" in err.message


# -- parser ------------------------------------------------------------------------------------


def test_precedence_or_and_not_comparison_arithmetic() -> None:
    tree = parse_filter("not a eq 1 or b add 2 mul 3 gt 4 and c le 5")
    assert unparse_expr(tree) == "((not ((a eq 1))) or (((b add (2 mul 3)) gt 4) and (c le 5)))"


def test_keywords_and_functions_ignore_case() -> None:
    tree = parse_filter("StartsWith(name, 'a') AND Result GT 3")
    assert isinstance(tree, BinOp)
    assert tree.op == "and"
    assert isinstance(tree.left, Call)
    assert tree.left.name == "startswith"


def test_paths_literals_and_calls() -> None:
    tree = parse_filter("Datastream/Thing/properties/kind eq 'air_quality'")
    assert isinstance(tree, BinOp)
    assert tree.left == Path(("Datastream", "Thing", "properties", "kind"), 0)
    assert tree.right == Literal(LitKind.STRING, "air_quality", 36)
    assert parse_filter("now() gt mindatetime()") == BinOp(
        "gt", Call("now", (), 0), Call("mindatetime", (), 9), 6
    )
    assert isinstance(parse_filter("not (a eq null)"), Not)


@pytest.mark.parametrize(
    ("text", "position", "token", "says"),
    [
        ("name eq", 7, "end of input", "expected a value"),
        ("a eq b eq c", 7, "eq", "cannot be chained"),
        ("(a eq 1", 7, "end of input", "expected ')'"),
        ("startswith(name 'a')", 16, "'a'", "expected ',' or ')'"),
        ("name eq 'x' foo", 12, "foo", "unexpected text"),
        ("and eq 1", 0, "and", "expected a value"),
        ("a/ eq 1", 3, "eq", "property name after '/'"),
        ("", 0, "end of input", "is empty"),
    ],
)
def test_parse_errors_name_position_and_token(
    text: str, position: int, token: str, says: str
) -> None:
    err = error_of(text)
    assert (err.position, err.token) == (position, token)
    assert says in err.message
    assert err.describe().startswith("$filter: ")


def test_nesting_is_bounded() -> None:
    err = error_of("(" * (MAX_DEPTH + 5) + "a eq 1" + ")" * (MAX_DEPTH + 5))
    assert "nested" in err.message
    err = error_of("not " * (MAX_DEPTH + 5) + "a eq 1")
    assert "nested" in err.message


def test_orderby_and_select() -> None:
    keys = parse_orderby("phenomenonTime desc, result, length(name) asc")
    assert [k.descending for k in keys] == [True, False, False]
    assert unparse_orderby(keys) == "phenomenonTime desc,result asc,length(name) asc"
    assert parse_select("@iot.id, name ,Datastreams") == ("@iot.id", "name", "Datastreams")
    with pytest.raises(StaQueryError) as info:
        parse_select("name,")
    assert (info.value.option, info.value.position) == ("$select", 5)


def test_expand_with_nested_options() -> None:
    [things] = parse_expand(
        "Datastreams($filter=name eq 'a;b)';$top=2;$count=true;"
        "$expand=Observations($top=1;$orderby=phenomenonTime desc))"
    )
    assert things.relation == "Datastreams"
    assert things.options.top == 2
    assert things.options.count is True
    assert isinstance(things.options.filter, BinOp)
    [obs] = things.options.expand
    assert (obs.relation, obs.options.top) == ("Observations", 1)
    assert obs.options.orderby[0].descending


def test_expand_paths_nest_and_merge() -> None:
    items = parse_expand("Datastreams/Observations($top=3),Datastreams($top=2),Thing")
    assert [i.relation for i in items] == ["Datastreams", "Thing"]
    ds = items[0]
    assert ds.options.top == 2
    assert [(o.relation, o.options.top) for o in ds.options.expand] == [("Observations", 3)]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Datastreams($top=-1)", "non-negative"),
        ("Datastreams($top=1;$top=2)", "twice"),
        ("Datastreams($bogus=1)", "unknown option"),
        ("Datastreams($count=maybe)", "true or false"),
        ("Datastreams($top=1", "';' or ')'"),
    ],
)
def test_expand_errors(text: str, says: str) -> None:
    with pytest.raises(StaQueryError) as info:
        parse_expand(text)
    assert info.value.option == "$expand"
    assert says in info.value.message


def test_request_options() -> None:
    opts = parse_options(
        [("$top", "5"), ("$count", "true"), ("$resultFormat", "dataArray"), ("cb", "1")]
    )
    assert (opts.top, opts.count, opts.result_format) == (5, True, "dataArray")
    for pairs, option in [
        ([("$top", "-1")], "$top"),
        ([("$skip", "x")], "$skip"),
        ([("$count", "yes")], "$count"),
        ([("$top", "1"), ("$top", "2")], "$top"),
        ([("$format", "json")], "$format"),
        ([("$resultFormat", "csv")], "$resultFormat"),
    ]:
        with pytest.raises(StaQueryError) as info:
            parse_options(pairs)
        assert info.value.option == option


# -- resource paths and ids --------------------------------------------------------------------


def test_paths_and_keys() -> None:
    segs = parse_path("Things('it''s/odd')/Datastreams(42)/$ref")
    assert [(s.name, s.key) for s in segs] == [
        ("Things", "it's/odd"),
        ("Datastreams", "42"),
        ("$ref", None),
    ]
    assert parse_path("") == []
    assert parse_path("/") == []
    for bad in ("Things('x", "Things(x", "Things('x')y", "a//b", "Things)"):
        with pytest.raises(StaQueryError):
            parse_path(bad)


def test_ids_round_trip() -> None:
    ts = datetime(2024, 5, 1, 0, 0, 0, 123456, tzinfo=UTC)
    obs = ENTITIES["Observation"]
    ident = obs.encode(("lamp:01", "lamp_on", ts))
    assert ident == "lamp:01:lamp_on:1714521600123456"
    assert obs.decode(ident) == ("lamp:01", "lamp_on", ts)
    ds = ENTITIES["Datastream"]
    assert ds.decode("lamp:01:lamp_on") == ("lamp:01", "lamp_on")
    for bad in ("nocolon", ":pm25", "aq-1:", ""):
        assert ds.decode(bad) is None
    for bad in ("aq-1:pm25", "aq-1:pm25:x", "aq-1:pm25:" + "9" * 30, "a:b:-99999999999999999"):
        assert obs.decode(bad) is None


@given(
    device=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True),
    metric=st.sampled_from(sorted(METRICS)),
    ts=st.datetimes(
        min_value=datetime(1970, 1, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
@FUZZ
def test_observation_ids_round_trip(device: str, metric: str, ts: datetime) -> None:
    obs = ENTITIES["Observation"]
    assert obs.decode(obs.encode((device, metric, ts))) == (device, metric, ts)


def test_the_model_is_consistent() -> None:
    """Relations join declared columns; to-one relations land on the target's key; every
    relation has its inverse; every canonical unit has a unitOfMeasurement."""
    for entity in ENTITIES.values():
        assert BY_PLURAL[entity.plural] is entity
        assert set(entity.key) <= set(entity.columns)
        for prop in entity.props.values():
            assert set(prop.columns) <= set(entity.columns), (entity.name, prop.name)
        for rel in entity.relations.values():
            target = ENTITIES[rel.target]
            for source_col, target_col in rel.pairs:
                assert entity.columns[source_col] == "text"
                assert target_col in target.columns
            if not rel.many:
                assert tuple(t for _, t in rel.pairs) == target.key
            assert any(r.target == entity.name for r in target.relations.values()), rel
    assert {m.unit for m in METRICS.values()} <= set(UNITS)


# -- compiler ----------------------------------------------------------------------------------


def test_values_are_bound_never_inlined() -> None:
    hostile = "x'); DROP TABLE devices; --"
    quoted = hostile.replace("'", "''")
    sql, params = compile_filter(ENTITIES["Thing"], f"name eq '{quoted}'")
    assert "DROP" not in sql
    assert hostile in params.values()


def test_id_comparisons_use_the_key_columns() -> None:
    sql, params = compile_filter(ENTITIES["Observation"], "Datastream/@iot.id eq 'aq-1:pm25'")
    assert sql == "(e0.device_id = %(p1)s::text AND e0.metric = %(p2)s::text)"
    assert params["p1"] == "aq-1"
    sql, _ = compile_filter(ENTITIES["Datastream"], "@iot.id eq 'not an id'")
    assert sql == "false"


@pytest.mark.parametrize(
    ("entity", "text", "says"),
    [
        ("Thing", "name gt 3", "cannot compare string with number"),
        ("Thing", "nosuch eq 1", "no property or relation 'nosuch'"),
        ("Thing", "Datastreams/name eq 'a'", "to-many relation"),
        ("Observation", "Datastream eq 'a'", "is an entity"),
        ("Observation", "startswith(result, 'a')", "expects text"),
        ("Observation", "result", "must be a condition"),
        ("Observation", "year(result) eq 1", "expects a date-time"),
        ("Location", "location eq 'x'", "geometries are compared"),
        ("Location", "geo.distance(location, geography'LINESTRING(1 2, 3 4)') lt 1", "points"),
        ("Thing", "frobnicate(name)", "unknown function"),
        ("Thing", "length(name, name) eq 1", "takes 1 argument"),
        ("Datastream", "unitOfMeasurement/colour eq 'x'", "unitOfMeasurement/name"),
        ("Observation", "phenomenonTime gt 'yesterday'", "not a date-time"),
    ],
)
def test_type_errors_are_query_errors(entity: str, text: str, says: str) -> None:
    with pytest.raises(StaQueryError) as info:
        compile_filter(ENTITIES[entity], text)
    assert says in info.value.message


# -- properties --------------------------------------------------------------------------------

_QUERY_ALPHABET = st.sampled_from(
    [
        *"abcdefgnorstuxyz0123456789 ()',/;=$@.-+:TZPDHMS",
        *("eq ", " and ", " or ", "not ", "geography'", "duration'", "'POINT(1 2)'"),
    ]
)
_RELATION_NAMES = sorted({r for e in ENTITIES.values() for r in e.relations})


def _outcome(text: str) -> object:
    """Parse ``text`` and compile it for every entity; only StaQueryError may escape."""
    failure: StaQueryError | None = None
    try:
        tree = parse_filter(text)
    except StaQueryError as err:
        failure = err
    if failure is not None:
        assert failure.option == "$filter"
        assert failure.position is None or 0 <= failure.position <= len(text)
        return failure
    for entity in ENTITIES.values():
        try:
            sql, _ = compile_filter(entity, text)
        except StaQueryError:
            continue
        assert "%(" not in sql or ")s::" in sql
    return tree


@given(st.text(max_size=200))
@FUZZ
def test_any_text_parses_or_fails_typed(text: str) -> None:
    _outcome(text)


@given(st.lists(_QUERY_ALPHABET, max_size=60).map("".join))
@FUZZ
def test_query_like_text_parses_or_fails_typed(text: str) -> None:
    _outcome(text)


@given(mutated())
@FUZZ
def test_mutated_filters_parse_or_fail_typed(text: str) -> None:
    _outcome(text)


@given(st.text(max_size=120))
@FUZZ
def test_other_options_and_paths_parse_or_fail_typed(text: str) -> None:
    for parse in (parse_orderby, parse_select, parse_expand, parse_path):
        with contextlib.suppress(StaQueryError):
            parse(text)


@pytest.mark.parametrize("text", VALID_FILTERS)
def test_valid_filters_parse(text: str) -> None:
    assert isinstance(_outcome(text), (BinOp, Not, Call))


_NAMES = st.sampled_from(["name", "result", "phenomenonTime", "properties", "@iot.id", "x"])
_LITERALS = st.one_of(
    st.text(max_size=8).map(lambda s: Literal(LitKind.STRING, s, 0)),
    st.integers(-(2**40), 2**40).map(lambda n: Literal(LitKind.INTEGER, n, 0)),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(
        lambda f: Literal(LitKind.FLOAT, float(f), 0)
    ),
    st.booleans().map(lambda b: Literal(LitKind.BOOLEAN, b, 0)),
    st.just(Literal(LitKind.NULL, None, 0)),
    st.datetimes(
        min_value=datetime(1971, 1, 1),  # noqa: DTZ001
        max_value=datetime(2099, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ).map(lambda d: Literal(LitKind.DATETIME, d, 0)),
    st.timedeltas(min_value=timedelta(days=-999), max_value=timedelta(days=999)).map(
        lambda d: Literal(LitKind.DURATION, d, 0)
    ),
)
_TREES = st.recursive(
    st.one_of(_LITERALS, st.lists(_NAMES, min_size=1, max_size=3).map(lambda s: Path(tuple(s), 0))),
    lambda inner: st.one_of(
        st.builds(
            BinOp,
            st.sampled_from(["eq", "lt", "and", "or", "add", "mod", "div"]),
            inner,
            inner,
            st.just(0),
        ),
        st.builds(Not, inner, st.just(0)),
        st.builds(
            Call,
            st.sampled_from(["length", "startswith", "geo.distance", "now"]),
            st.lists(inner, max_size=2).map(tuple),
            st.just(0),
        ),
    ),
    max_leaves=12,
)


@given(_TREES)
@FUZZ
def test_printed_trees_parse_back_to_themselves(tree: object) -> None:
    text = unparse_expr(tree)  # type: ignore[arg-type]
    assume(len(text) < MAX_LENGTH)
    again = parse_filter(text)
    assert unparse_expr(again) == text


@given(_TREES, st.integers(0, 50), st.sampled_from(_RELATION_NAMES))
@FUZZ
def test_printed_expands_parse_back(tree: object, top: int, relation: str) -> None:
    inner = ExpandItem("Observations", QueryOptions(top=top), 0)
    options = QueryOptions(filter=tree, top=top, expand=(inner,))  # type: ignore[arg-type]
    item = ExpandItem(relation, options, 0)
    text = unparse_expand([item])
    assume(len(text) < MAX_LENGTH)
    assert unparse_expand(parse_expand(text)) == text


@given(st.text(min_size=3, max_size=30).filter(lambda s: any(c in s for c in "'\";%-)")))
@FUZZ
def test_string_values_never_reach_sql_text(value: str) -> None:
    quoted = value.replace("'", "''")
    sql, params = compile_filter(
        ENTITIES["Thing"], f"name eq '{quoted}' or startswith(name, '{quoted}')"
    )
    assert value not in sql
    assert value in params.values()
