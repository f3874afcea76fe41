"""PostgreSQL panel queries for grafana-foundation-sdk, which ships no SQL data query type.

:class:`SqlQuery` is the target JSON Grafana's PostgreSQL data source stores (``rawSql`` in
code mode); :func:`register` teaches the SDK's runtime to read it back, so a dashboard
round-trips through ``Dashboard.from_json`` with typed targets instead of opaque dictionaries.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as dm

DATASOURCE_TYPE: Final = "grafana-postgresql-datasource"
DATASOURCE_UID: Final = "dothi-timescaledb"
DATASOURCE_NAME: Final = "dothi TimescaleDB (read-only)"

Format = Literal["time_series", "table"]


def datasource_ref() -> dm.DataSourceRef:
    """The reference every panel and variable uses: one provisioned data source, by uid."""
    return dm.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class SqlQuery(cogvariants.Dataquery):
    """One raw SQL target of a panel.

    Attributes:
        sql: the query, with Grafana macros and template variables.
        fmt: ``time_series`` (a ``time`` column, values, optional ``metric``) or ``table``.
        ref_id: the target's id within its panel (A, B …).
    """

    def __init__(self, sql: str, fmt: Format = "table", ref_id: str = "A") -> None:
        self.sql = sql
        self.fmt: Format = fmt
        self.ref_id = ref_id

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": datasource_ref().to_json(),
            "editorMode": "code",
            "format": self.fmt,
            "rawQuery": True,
            "rawSql": self.sql,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        fmt = data.get("format", "table")
        if fmt not in ("time_series", "table"):
            raise ValueError(f"unknown SQL query format {fmt!r}")
        return cls(str(data.get("rawSql", "")), fmt, str(data.get("refId", "A")))


class Sql(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of a :class:`SqlQuery`, for ``panel.with_target(...)``."""

    def __init__(self, sql: str, fmt: Format = "table", ref_id: str = "A") -> None:
        self._query = SqlQuery(sql, fmt, ref_id)

    def build(self) -> SqlQuery:
        return self._query


def register() -> None:
    """Make ``Dashboard.from_json`` decode PostgreSQL targets as :class:`SqlQuery`."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=SqlQuery.from_json)
    )
