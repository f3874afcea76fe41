"""Entities as SensorThings JSON: ids, self and navigation links, selected properties.

Links are absolute (``http://host/sta/v1.1/Things('aq-1')``); string ids are quoted with
``'`` doubled inside, and percent-encoded where a URL needs it (never ``:``, so
``Datastreams('aq-1:pm25')`` stays readable).
"""

from __future__ import annotations

import re
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


class Renderer:
    """Renders rows of one entity type with one selection, fast: the link prefix, the
    property renderers and the navigation link suffixes are worked out once per response, and
    properties rendered from the same columns the same way (an Observation's
    ``phenomenonTime`` and ``resultTime``) are computed once per row.

    Args:
        entity: the entity type.
        sel: what ``$select`` keeps.
        base: the service root URL.
    """

    def __init__(self, entity: Entity, sel: Selection, base: str) -> None:
        self.entity = entity
        self.sel = sel
        self.prefix = f"{base}/{entity.plural}"
        first: dict[tuple[str, tuple[str, ...]], int] = {}
        self.props: list[tuple[str, Callable[[Row], Any], int]] = []
        for i, prop in enumerate(sel.props):
            shared = first.setdefault((prop.type.value, prop.columns), i)
            # A property is shared only if its renderer is the very same function.
            same = shared != i and sel.props[shared].render is prop.render
            self.props.append((prop.name, prop.render, shared if same else i))
        self.navs = [(f"{r.name}@iot.navigationLink", f"/{r.name}") for r in sel.navs]

    def link(self, ident: str) -> str:
        """The entity's self link."""
        if _PLAIN.fullmatch(ident):
            return f"{self.prefix}('{ident}')"
        return self.prefix + key_segment(ident)

    def __call__(self, row: Row) -> dict[str, Any]:
        """One entity as a JSON object (expanded relations are added by the caller)."""
        sel = self.sel
        ident = self.entity.id_of(row)
        link = self.link(ident)
        out: dict[str, Any] = {}
        if sel.ident:
            out["@iot.id"] = ident
        if sel.self_link:
            out["@iot.selfLink"] = link
        values: list[Any] = []
        for name, fn, shared in self.props:
            value = values[shared] if shared < len(values) else fn(row)
            values.append(value)
            out[name] = value
        for key, suffix in self.navs:
            out[key] = link + suffix
        return out


# Ids made of these characters need no percent-encoding or quote doubling in a URL path.
_PLAIN: Final = re.compile(r"[A-Za-z0-9._:@~!$&*+,;=-]*")


def render(entity: Entity, row: Row, sel: Selection, base: str) -> dict[str, Any]:
    """One entity as a JSON object (see :class:`Renderer` for many rows)."""
    return Renderer(entity, sel, base)(row)


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
