"""SensorThings "Sensing Core" against a live server and a real database.

Follows the reading tests of the OGC conformance class (ets-sta10 ``sensingCore``): the service
root, every collection with its control information, mandatory properties and navigation
links, entities by id, properties and ``$value``, resource paths through every relation (with
``$ref``), 404s for what does not exist. Then dothi's own mapping (ids, units, positions,
quality flags, phenomenon times), visibility and keys exactly as on ``/api/v1``, the audit log,
and the read-only guarantee.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from api.sta.engine import CONFORMANCE
from api.sta.units import unit_of
from tests.api_support import DISTRICT
from tests.helpers import wait_for
from tests.sta_support import (
    LAMP,
    NOISE,
    STA,
    START,
    TEMPERATURE_AT,
    Service,
    problem,
    service,
    sql_rows,
)

SETS = (
    "Things",
    "Locations",
    "HistoricalLocations",
    "Datastreams",
    "Sensors",
    "ObservedProperties",
    "Observations",
    "FeaturesOfInterest",
)
MANDATORY = {
    "Things": ("name", "description"),
    "Locations": ("name", "description", "encodingType", "location"),
    "HistoricalLocations": ("time",),
    "Datastreams": ("name", "description", "unitOfMeasurement", "observationType"),
    "Sensors": ("name", "description", "encodingType", "metadata"),
    "ObservedProperties": ("name", "definition", "description"),
    "Observations": ("phenomenonTime", "result", "resultTime"),
    "FeaturesOfInterest": ("name", "description", "encodingType", "feature"),
}
RELATIONS = {
    "Things": ("Locations", "HistoricalLocations", "Datastreams"),
    "Locations": ("Things", "HistoricalLocations"),
    "HistoricalLocations": ("Thing", "Locations"),
    "Datastreams": ("Thing", "Sensor", "ObservedProperty", "Observations"),
    "Sensors": ("Datastreams",),
    "ObservedProperties": ("Datastreams",),
    "Observations": ("Datastream", "FeatureOfInterest"),
    "FeaturesOfInterest": ("Observations",),
}
SINGULAR_TO_SET = {
    "Thing": "Things",
    "Sensor": "Sensors",
    "ObservedProperty": "ObservedProperties",
    "Datastream": "Datastreams",
    "FeatureOfInterest": "FeaturesOfInterest",
}
OBJECT_VALUED = {"location", "feature", "unitOfMeasurement"}


@pytest.fixture(scope="module")
def sta(db_url: str) -> Iterator[Service]:
    with service(db_url) as svc:
        yield svc


def quoted(ident: str) -> str:
    return "('" + ident.replace("'", "''") + "')"


def first(sta: Service, entity_set: str) -> dict[str, Any]:
    items = sta.json(f"/{entity_set}", q={"$top": 1})["value"]
    assert items, entity_set
    item: dict[str, Any] = items[0]
    return item


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- service root and collections ---------------------------------------------------------------


def test_service_root_lists_entity_sets_and_conformance(sta: Service) -> None:
    root = sta.json("")
    assert [(e["name"], e["url"]) for e in root["value"]] == [
        (name, f"{sta.root}/{name}") for name in SETS
    ]
    conformance = root["serverSettings"]["conformance"]
    assert conformance == list(CONFORMANCE)
    assert not any("create-update-delete" in c or "mqtt" in c for c in conformance)
    assert sta.json("/") == root


@pytest.mark.parametrize("entity_set", SETS)
def test_collection_entities_carry_control_information(sta: Service, entity_set: str) -> None:
    page = sta.json(f"/{entity_set}")
    assert page["value"], f"{entity_set} should not be empty"
    for entity in page["value"][:3]:
        ident = entity["@iot.id"]
        assert isinstance(ident, str)
        assert entity["@iot.selfLink"] == f"{sta.root}/{entity_set}{quoted(ident)}"
        for prop in MANDATORY[entity_set]:
            assert prop in entity, (entity_set, prop)
        for rel in RELATIONS[entity_set]:
            link = entity[f"{rel}@iot.navigationLink"]
            assert link == f"{entity['@iot.selfLink']}/{rel}"


@pytest.mark.parametrize("entity_set", SETS)
def test_an_entity_is_at_its_self_link(sta: Service, entity_set: str) -> None:
    entity = first(sta, entity_set)
    assert sta.follow(entity["@iot.selfLink"]) == entity
    assert sta.json(f"/{entity_set}{quoted(entity['@iot.id'])}") == entity


@pytest.mark.parametrize("entity_set", SETS)
def test_properties_and_their_raw_values(sta: Service, entity_set: str) -> None:
    entity = first(sta, entity_set)
    path = f"/{entity_set}{quoted(entity['@iot.id'])}"
    for prop in MANDATORY[entity_set]:
        assert sta.json(f"{path}/{prop}") == {prop: entity[prop]}
        raw = sta.get(f"{path}/{prop}/$value")
        assert raw.status_code == 200, raw.text
        if prop in OBJECT_VALUED:
            assert raw.text.startswith("{")
            assert raw.json() == entity[prop]
        else:
            assert raw.headers["content-type"].startswith("text/plain")
            assert "{" not in raw.text
            assert raw.text == str(entity[prop])
    assert sta.json(f"{path}/@iot.id") == {"@iot.id": entity["@iot.id"]}


@pytest.mark.parametrize("entity_set", SETS)
def test_missing_entities_are_404(sta: Service, entity_set: str) -> None:
    for key in ("('nope')", "(9223372036854775807)", "('a:b:c')", "('')"):
        body = problem(sta.get(f"/{entity_set}{key}"), 404)
        assert body["type"] == "urn:dothi:problem:not-found"
    entity = first(sta, entity_set)
    path = f"/{entity_set}{quoted(entity['@iot.id'])}"
    problem(sta.get(f"{path}/nosuchproperty"), 404)
    problem(sta.get(f"{path}/NoSuchRelation('x')"), 404)


def test_unknown_sets_and_malformed_paths(sta: Service) -> None:
    problem(sta.get("/Nothings"), 404)
    problem(sta.get("/Things/Datastreams"), 400)
    problem(sta.get("/Things('aq-pub')/name/nosuch"), 404)
    problem(sta.get("/Things('aq-pub')/$value"), 400)
    problem(sta.get("/Things('aq-pub')/$ref/name"), 400)
    body = problem(sta.get("/Things('aq-pub"), 400)
    assert body["errors"][0]["field"] == "path"


def _walk_paths(sta: Service, path: str, last: str, depth: int, seen: list[str]) -> None:
    """ets-sta10's checkResourcePaths: from a collection to its first entity, then through
    every relation, to ``depth`` levels; collections are non-empty and have a $ref form."""
    page = sta.json(path)
    seen.append(path)
    if "value" not in page:
        entity = page
    else:
        assert page["value"], f"{path} should not be empty"
        refs = sta.json(f"{path}/$ref")
        assert all(list(r) == ["@iot.selfLink"] for r in refs["value"])
        assert refs["value"][0]["@iot.selfLink"] == page["value"][0]["@iot.selfLink"]
        entity = page["value"][0]
        path = f"{path}{quoted(entity['@iot.id'])}"
        assert sta.json(path) == entity
    if depth == 0:
        return
    entity_set = SINGULAR_TO_SET.get(last, last)
    for rel in RELATIONS[entity_set]:
        _walk_paths(sta, f"{path}/{rel}", rel, depth - 1, seen)


@pytest.mark.parametrize("entity_set", SETS)
def test_resource_paths_through_every_relation(sta: Service, entity_set: str) -> None:
    seen: list[str] = []
    _walk_paths(sta, f"/{entity_set}", entity_set, 3, seen)
    assert len(seen) > 4


@pytest.mark.parametrize(
    "path",
    [
        # The child exists; the entity the path goes through does not.
        f"/Locations('{NOISE}')/Things",
        f"/HistoricalLocations('{NOISE}')/Thing",
        f"/HistoricalLocations('{NOISE}')/Thing/Datastreams",
        "/Observations('aq-pub:pm25:1')/Datastream",
        "/Observations('aq-pub:pm25:1')/FeatureOfInterest/Observations",
        "/Things('aq-pub')/Datastreams('meter-pub:energy')",
        "/Things('aq-pub')/Datastreams('meter-pub:energy')/Observations",
        # Nothing there at all, whatever the page asks for.
        "/Things('nope')/Datastreams",
        "/Things('nope')/Datastreams?$top=0",
        "/Things('nope')/Datastreams?$count=true",
        "/Things('nope')/Datastreams/$ref",
        "/Datastreams('nope:pm25')/Observations?$skip=5",
        "/Datastreams('nope:pm25')/Thing/name/$value",
    ],
)
def test_paths_through_missing_entities_are_404(sta: Service, path: str) -> None:
    problem(sta.client.get(STA + path), 404)


def test_empty_collections_of_existing_entities_are_empty(sta: Service) -> None:
    page = sta.json("/Things('aq-pub')/Datastreams", q={"$filter": "name eq 'x'", "$count": "true"})
    assert page == {"@iot.count": 0, "value": []}
    assert sta.json("/Things('aq-pub')/Datastreams", q={"$top": 0})["value"] == []
    assert sta.json("/Datastreams('aq-pub:pm25')/Observations", q={"$skip": 99_999})["value"] == []


def test_a_to_one_relation_and_its_ref(sta: Service) -> None:
    thing = sta.json("/Datastreams('aq-pub:pm25')/Thing")
    assert thing["@iot.id"] == "aq-pub"
    assert sta.json("/Datastreams('aq-pub:pm25')/Thing/$ref") == {
        "@iot.selfLink": f"{sta.root}/Things('aq-pub')"
    }
    problem(sta.get("/Datastreams('aq-pub:pm25')/Thing('aq-pub')"), 400)


# -- the mapping -------------------------------------------------------------------------------


def test_datastreams_are_series_with_canonical_units(sta: Service, db_url: str) -> None:
    streams = {d["@iot.id"]: d for d in sta.walk("/Datastreams")}
    assert set(streams) == {
        "aq-pub:no2",
        "aq-pub:pm10",
        "aq-pub:pm25",
        "aq-pub:temperature",
        "meter-pub:energy",
        f"{LAMP}:lamp_on",
        f"{NOISE}:noise_laeq",
    }
    for ident, ds in streams.items():
        metric = ident.rsplit(":", 1)[1]
        unit = unit_of(metric)
        assert ds["unitOfMeasurement"] == {
            "name": unit.name,
            "symbol": unit.symbol,
            "definition": unit.definition,
        }
        assert ds["observationType"].endswith("OM_Measurement")
    pm25 = streams["aq-pub:pm25"]
    assert pm25["unitOfMeasurement"]["symbol"] == "µg/m³"
    assert pm25["observedArea"] == {"type": "Point", "coordinates": [106.177, 20.428]}
    [(lo, hi)] = sql_rows(
        db_url,
        "SELECT min(ts), max(ts) FROM readings WHERE device_id = 'aq-pub' AND metric = 'pm25'",
    )
    start, end = pm25["phenomenonTime"].split("/")
    assert (ts(start), ts(end)) == (lo, hi)
    assert ts(start) == START
    # A series the rollups have not seen yet: its first reading comes from `readings`.
    only = ts(streams["aq-pub:temperature"]["phenomenonTime"].split("/")[0])
    assert only == TEMPERATURE_AT
    assert streams["aq-pub:temperature"]["unitOfMeasurement"]["symbol"] == "°C"


def test_sensors_are_device_kinds_and_observed_properties_are_metrics(sta: Service) -> None:
    sensors = {s["@iot.id"] for s in sta.walk("/Sensors")}
    assert sensors == {"air_quality", "smart_meter", "street_light", "noise"}
    assert {d["@iot.id"] for d in sta.walk("/Sensors('air_quality')/Datastreams")} == {
        "aq-pub:no2",
        "aq-pub:pm10",
        "aq-pub:pm25",
        "aq-pub:temperature",
    }
    pm25 = sta.json("/ObservedProperties('pm25')")
    assert pm25["name"] == "pm25"
    assert pm25["definition"] == "urn:dothi:metric:pm25"
    assert pm25["description"] == "Fine particulate matter PM2.5"
    assert sta.json("/Datastreams('aq-pub:pm25')/ObservedProperty") == pm25


def test_ids_with_colons_names_and_area_centres(sta: Service) -> None:
    lamp = sta.json(f"/Things('{LAMP}')")
    assert lamp["name"] == LAMP  # no name: the id stands in
    assert lamp["properties"]["kind"] == "street_light"
    [loc] = sta.json(f"/Things('{LAMP}')/Locations")["value"]
    # No coordinates of its own: placed at the centre of its ward.
    assert loc["location"] == {"type": "Point", "coordinates": [106.177, 20.428]}
    assert loc["properties"]["source"] == "area"
    ds = sta.json(f"/Datastreams('{LAMP}:lamp_on')")
    assert ds["@iot.selfLink"].endswith(f"/Datastreams('{LAMP}:lamp_on')")
    obs = sta.json(f"/Datastreams('{LAMP}:lamp_on')/Observations", q={"$top": 1})["value"][0]
    assert obs["@iot.id"].startswith(f"{LAMP}:lamp_on:")
    assert sta.json(f"/Observations('{obs['@iot.id']}')/Datastream")["@iot.id"] == ds["@iot.id"]


def test_a_device_without_any_position(sta: Service) -> None:
    assert sta.json(f"/Things('{NOISE}')/Locations")["value"] == []
    assert sta.json(f"/Things('{NOISE}')/HistoricalLocations")["value"] == []
    problem(sta.get(f"/Locations('{NOISE}')"), 404)
    foi = sta.json(f"/FeaturesOfInterest('{NOISE}')")
    assert foi["feature"] is None
    assert sta.get(f"/FeaturesOfInterest('{NOISE}')/feature/$value").status_code == 204


def test_observations_carry_quality_and_reception(sta: Service, db_url: str) -> None:
    rows = sta.walk(f"/Datastreams('{NOISE}:noise_laeq')/Observations", q={"$top": 500})
    flags = sql_rows(
        db_url,
        "SELECT ts, quality FROM readings WHERE device_id = %s ORDER BY ts",
        NOISE,
    )
    assert [(ts(o["phenomenonTime"]), o["resultQuality"]) for o in rows] == [
        (t, "suspect" if q == 3 else "pass") for t, q in flags
    ]
    assert all(o["resultTime"] == o["phenomenonTime"] for o in rows)
    assert all("received_at" in o["parameters"] for o in rows)
    obs = rows[0]
    assert sta.json(f"/Observations('{obs['@iot.id']}')/FeatureOfInterest")["@iot.id"] == NOISE


def test_historical_locations(sta: Service, db_url: str) -> None:
    [(created,)] = sql_rows(db_url, "SELECT created_at FROM devices WHERE id = 'aq-pub'")
    [hl] = sta.json("/Things('aq-pub')/HistoricalLocations")["value"]
    assert ts(hl["time"]) == created
    assert sta.json(f"/HistoricalLocations('{hl['@iot.id']}')/Thing")["@iot.id"] == "aq-pub"
    [loc] = sta.json(f"/HistoricalLocations('{hl['@iot.id']}')/Locations")["value"]
    assert loc["@iot.id"] == "aq-pub"


# -- visibility and keys, as on /api/v1 --------------------------------------------------------


def _ids(
    sta: Service, path: str, token: str | None = None, q: dict[str, Any] | None = None
) -> set[str]:
    return {e["@iot.id"] for e in sta.walk(path, token, q)}


def test_anonymous_callers_see_public_things_only(sta: Service) -> None:
    public = {"aq-pub", "meter-pub", LAMP, NOISE}
    assert _ids(sta, "/Things") == public
    assert _ids(sta, "/Things", sta.keys.public) == public
    assert _ids(sta, "/Things", sta.keys.all) == public | {"aq-priv", "meter-priv"}
    # A key limited to a district sees the public devices and that district's.
    assert _ids(sta, "/Things", sta.keys.district) == public | {"meter-priv"}
    assert DISTRICT == "hai-hau"


@pytest.mark.parametrize(
    "path",
    [
        "/Things('aq-priv')",
        "/Things('aq-priv')/Datastreams",
        "/Datastreams('aq-priv:pm25')",
        "/Datastreams('aq-priv:pm25')/Observations",
        "/Locations('aq-priv')",
        "/FeaturesOfInterest('aq-priv')/Observations",
    ],
)
def test_private_entities_are_404_without_read_all(sta: Service, path: str) -> None:
    problem(sta.get(path), 404)
    problem(sta.get(path, sta.keys.public), 404)
    assert sta.get(path, sta.keys.all).status_code == 200


def test_private_data_does_not_leak_through_queries(sta: Service, db_url: str) -> None:
    flt = {"$filter": "Datastream/@iot.id eq 'aq-priv:pm25'", "$count": "true"}
    assert sta.json("/Observations", q=flt)["@iot.count"] == 0
    [(n,)] = sql_rows(
        db_url, "SELECT count(*) FROM readings WHERE device_id = 'aq-priv' AND metric = 'pm25'"
    )
    assert sta.json("/Observations", sta.keys.all, flt)["@iot.count"] == n
    assert _ids(sta, "/Datastreams", q={"$filter": "Thing/name eq 'Private station'"}) == set()
    sensors = sta.json("/Sensors", q={"$expand": "Datastreams($select=id)"})["value"]
    expanded = {d["@iot.id"] for s in sensors for d in s["Datastreams"]}
    assert not any(i.startswith(("aq-priv", "meter-priv")) for i in expanded)
    assert _ids(sta, "/ObservedProperties('pm25')/Datastreams") == {"aq-pub:pm25"}
    assert _ids(sta, "/ObservedProperties('pm25')/Datastreams", sta.keys.all) == {
        "aq-pub:pm25",
        "aq-priv:pm25",
    }
    anon = sta.json("/Sensors('air_quality')")["properties"]["devices"]
    assert (anon, sta.json("/Sensors('air_quality')", sta.keys.all)["properties"]["devices"]) == (
        1,
        2,
    )


def test_bad_keys_are_refused_not_downgraded(sta: Service) -> None:
    problem(sta.get("/Things", "dk_nope_nope"), 401)
    problem(sta.get("/Things", sta.keys.revoked), 401)
    resp = sta.client.get(f"{STA}/Things", headers={"Authorization": "Basic abc"})
    problem(resp, 401)
    resp = sta.client.get(f"{STA}/Things('aq-priv')", headers={"X-API-Key": sta.keys.all})
    assert resp.status_code == 200


def test_hidden_devices_are_audited(sta: Service, db_url: str) -> None:
    path = f"{STA}/Things('aq-priv')/HistoricalLocations"
    problem(sta.get("/Things('aq-priv')/HistoricalLocations"), 404)
    problem(sta.get("/Things('no-such-device')"), 404)

    def audited() -> bool:
        rows = sql_rows(
            db_url, "SELECT target FROM audit_log WHERE event = 'authz_fail' AND path = %s", path
        )
        return [r[0] for r in rows] == ["aq-priv"]

    wait_for(audited, what="an authz_fail row for aq-priv")
    # A device that does not exist is a plain 404: nothing to audit.
    assert sql_rows(db_url, "SELECT 1 FROM audit_log WHERE target = 'no-such-device'") == []


# -- read-only ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["", "/Things", "/Things('aq-pub')", "/Observations"])
def test_writes_are_refused(sta: Service, method: str, path: str) -> None:
    resp = sta.client.request(method, f"{STA}{path}", json={"name": "x"})
    body = problem(resp, 405)
    assert resp.headers["allow"] == "GET"
    assert "read-only" in body["detail"]
    assert sta.json("/Things('aq-pub')")["name"] == "Public station"
