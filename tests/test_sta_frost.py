"""A standard third-party client against the service: FROST's ``frost_sta_client``.

The client talks HTTP to a live uvicorn server of the app (in a thread, on a free port) and
walks Things → Datastreams → Observations with filters, following ``@iot.nextLink`` pages the
way it does against FROST-Server. Keys go through its auth hook, so visibility is the same as
for any other caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.sta_support import Service, service, sql_rows

fsc = pytest.importorskip("frost_sta_client")
requests = pytest.importorskip("requests")
auth_handler = pytest.importorskip("frost_sta_client.service.auth_handler")

# frost_sta_client builds every URL with furl's deprecated ``pathstr`` (its own code, not
# ours): that one warning is ignored here, every other warning still fails the test.
pytestmark = pytest.mark.filterwarnings("ignore:furl.pathstr is deprecated:DeprecationWarning")


class _Bearer:
    """requests' auth callable: adds the key to each request."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def bearer_key(token: str) -> Any:
    """frost_sta_client's auth hook, sending a dothi API key instead of basic credentials."""
    handler = auth_handler.AuthHandler()
    handler.add_auth_header = lambda: _Bearer(token)
    return handler


@pytest.fixture(scope="module")
def sta(db_url: str) -> Iterator[Service]:
    with service(db_url) as svc:
        yield svc


def test_frost_client_walks_things_datastreams_observations(sta: Service, db_url: str) -> None:
    client = fsc.SensorThingsService(sta.root)
    things = list(client.things().query().filter("startswith(name, 'Public')").list())
    assert sorted(t.id for t in things) == ["aq-pub", "meter-pub"]
    station = next(t for t in things if t.id == "aq-pub")
    assert station.name == "Public station"
    assert station.properties["kind"] == "air_quality"

    query = station.get_datastreams().query().filter("unitOfMeasurement/symbol eq 'µg/m³'")
    streams = {ds.id: ds for ds in query.list()}
    assert sorted(streams) == ["aq-pub:no2", "aq-pub:pm10", "aq-pub:pm25"]
    pm25 = streams["aq-pub:pm25"]
    assert pm25.unit_of_measurement.symbol == "µg/m³"
    assert pm25.observed_area["coordinates"] == [106.177, 20.428]

    # 25 a page: iterating the list makes the client follow the nextLinks to the end.
    observations = (
        pm25.get_observations()
        .query()
        .filter("result gt 33 and phenomenonTime ge 2000-01-01T00:00:00Z")
        .orderby("phenomenonTime", "ASC")
        .top(25)
        .list()
    )
    got = [(datetime.fromisoformat(o.phenomenon_time), o.result) for o in observations]
    expected = sql_rows(
        db_url,
        "SELECT ts, value FROM readings WHERE device_id = 'aq-pub' AND metric = 'pm25'"
        " AND value > 33 ORDER BY ts",
    )
    assert len(expected) > 50
    assert got == [(t, v) for t, v in expected]

    again = client.datastreams().find("aq-pub:pm25")
    assert again.name == pm25.name


def test_frost_client_sees_what_its_key_allows(sta: Service) -> None:
    anonymous = fsc.SensorThingsService(sta.root)
    keyed = fsc.SensorThingsService(sta.root, auth_handler=bearer_key(sta.keys.all))
    public = {t.id for t in anonymous.things().query().list()}
    everything = {t.id for t in keyed.things().query().list()}
    assert "aq-priv" not in public
    assert everything - public == {"aq-priv", "meter-priv"}
    ds = keyed.datastreams().find("aq-priv:pm25")
    assert ds.id == "aq-priv:pm25"
    with pytest.raises(requests.exceptions.HTTPError) as info:
        anonymous.datastreams().find("aq-priv:pm25")
    assert info.value.response.status_code == 404
