"""Entities as SensorThings JSON: ids, self and navigation links, selected properties.

Links are absolute (``http://host/sta/v1.1/Things('aq-1')``); string ids are quoted with
``'`` doubled inside, and percent-encoded where a URL needs it (never ``:``, so
``Datastreams('aq-1:pm25')`` stays readable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from api.sta.entities import ID_NAMES, SELF_LINK_NAMES, Entity, Prop, Relation, Row
from api.sta.errors import StaQueryError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_SAFE: Final = "-._~!$&'()*+,;=:@"


def key_segment(ident: str) -> str:
    """``('…')`` for an id in a URL path."""
    return "('" + quote(ident.replace("'", "''"), safe=_SAFE) + "')"


def entity_link(base: str, entity: Entity, ident: str) -> str:
    """The ``@iot.selfLink`` of an entity."""
    return f"{base}/{entity.plural}{key_segment(ident)}"


@dataclass(frozen=True, slots=True)
class Selection:
    """What ``$select`` keeps of an entity (everything by default).

    Attributes:
        props: properties, in the entity's order.
        navs: relations whose navigation links are shown.
        ident: ``@iot.id``.
        self_link: ``@iot.selfLink``.
    """

    props: tuple[Prop, ...]
    navs: tuple[Relation, ...]
    ident: bool = True
    self_link: bool = True

    def columns(self) -> set[str]:
        """View columns the selected properties are rendered from."""
        return {c for p in self.props for c in p.columns}


def selection(entity: Entity, names: Sequence[str] | None) -> Selection:
    """The selection ``$select`` asks for.

    Raises:
        StaQueryError: naming a ``$select`` entry that is neither property nor relation.
    """
    if names is None:
        return Selection(tuple(entity.props.values()), tuple(entity.relations.values()))
    wanted = set(names)
    for name in wanted:
        if (
            name not in entity.props
            and name not in entity.relations
            and name not in ID_NAMES
            and name not in SELF_LINK_NAMES
        ):
            raise StaQueryError(
                f"{entity.name} has no property or relation {name!r}", option="$select", token=name
            )
    return Selection(
        tuple(p for n, p in entity.props.items() if n in wanted),
        tuple(r for n, r in entity.relations.items() if n in wanted),
        ident=bool(wanted & ID_NAMES),
        self_link=bool(wanted & SELF_LINK_NAMES),
    )


def render(entity: Entity, row: Row, sel: Selection, base: str) -> dict[str, Any]:
    """One entity as a JSON object (expanded relations are added by the caller)."""
    ident = entity.id_of(row)
    link = entity_link(base, entity, ident)
    out: dict[str, Any] = {}
    if sel.ident:
        out["@iot.id"] = ident
    if sel.self_link:
        out["@iot.selfLink"] = link
    for prop in sel.props:
        out[prop.name] = prop.render(row)
    for rel in sel.navs:
        out[f"{rel.name}@iot.navigationLink"] = f"{link}/{rel.name}"
    return out


DATA_ARRAY_COMPONENTS: Final = ("id", "phenomenonTime", "resultTime", "result", "resultQuality")


def data_array(
    entity: Entity, rows: Sequence[Row], names: Sequence[str] | None, base: str
) -> list[dict[str, Any]]:
    """Observations in the ``dataArray`` result format: one object per Datastream, with
    the component names once and a row of values per Observation.

    Raises:
        StaQueryError: when ``$select`` names something that is not an Observation property.
    """
    components = list(names) if names is not None else list(DATA_ARRAY_COMPONENTS)
    getters: list[Callable[[Row], Any]] = []
    for name in components:
        if name in ID_NAMES:
            getters.append(entity.id_of)
            continue
        prop = entity.props.get(name)
        if prop is None:
            raise StaQueryError(
                f"dataArray components are Observation properties; {name!r} is not one",
                option="$select",
                token=name,
            )
        getters.append(prop.render)
    groups: dict[tuple[str, str], list[list[Any]]] = {}
    for row in rows:
        groups.setdefault((row["device_id"], row["metric"]), []).append([g(row) for g in getters])
    out = []
    for (device, metric), values in groups.items():
        ds = f"{base}/Datastreams{key_segment(f'{device}:{metric}')}"
        out.append(
            {
                "Datastream@iot.navigationLink": ds,
                "components": components,
                "dataArray@iot.count": len(values),
                "dataArray": values,
            }
        )
    return out
