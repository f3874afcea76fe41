"""Publish dothi's data source, folder and dashboards to a running Grafana (its HTTP API).

Idempotent: each object is read first and only created or changed when it differs, so a second
run reports everything ``unchanged`` (the data source is always rewritten: Grafana never returns
its password, so whether it changed cannot be known). Failures are one line, saying what to fix:
a URL that is not Grafana, a refused token, a token without the needed role.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from core.errors import DothiError
from dashboards import FOLDER_TITLE, FOLDER_UID

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

# Fields Grafana adds or bumps on save; two dashboards differing only in these are the same.
_VOLATILE: Final = ("id", "version")


class PublishError(DothiError):
    """Grafana could not be reached, refused the token, or refused a change."""


@dataclass
class PublishReport:
    """What publishing did to each object: ``created``, ``updated`` or ``unchanged``."""

    datasource: str = ""
    folder: str = ""
    dashboards: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One human line per object."""
        out = [f"data source: {self.datasource}", f"folder {FOLDER_UID}: {self.folder}"]
        out += [f"dashboard {uid}: {what}" for uid, what in self.dashboards.items()]
        return out


def _comparable(model: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in _VOLATILE}


class _Grafana:
    """The few Grafana API calls publishing needs, with errors turned into one-liners."""

    def __init__(self, url: str, token: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self._api = GrafanaApi.from_url(self.url, credential=token, timeout=timeout)

    def call(self, what: str, method: str, path: str, body: Any = None) -> Any:
        """``method path`` → the decoded JSON, or None for 404 on a GET."""
        runner: Callable[..., Any] = getattr(self._api.client, method)
        try:
            return runner(path) if body is None else runner(path, json=body)
        except GrafanaClientError as exc:
            if exc.status_code == 404 and method == "GET":
                return None
            if exc.status_code == 401:
                raise PublishError(
                    f"Grafana at {self.url} refused the token (401 Unauthorized): check --token"
                ) from None
            if exc.status_code == 403:
                raise PublishError(
                    f"the token may not {what} (403 Forbidden): use a service account token"
                    " with the Admin role"
                ) from None
            raise PublishError(f"Grafana refused to {what}: {exc.message}") from None
        except GrafanaException as exc:
            raise PublishError(f"Grafana failed to {what}: {exc.message}") from None
        except (OSError, ValueError) as exc:  # connection refused, DNS, TLS, not JSON
            raise PublishError(
                f"cannot reach Grafana at {self.url}: {str(exc).splitlines()[0] or exc!r}"
            ) from None

    def close(self) -> None:
        """Release the HTTP connections."""
        self._api.client.s.close()

    def check(self) -> None:
        """Fail fast on a URL that is not Grafana, then on a bad token."""
        health = self.call("answer /api/health", "GET", "/health")
        if not isinstance(health, dict) or "database" not in health:
            raise PublishError(
                f"{self.url} does not look like Grafana (no /api/health): check --url"
            )
        self.call("read its organisation", "GET", "/org")


def publish(
    url: str,
    token: str,
    datasource: Mapping[str, Any],
    dashboards: Mapping[str, Mapping[str, Any]],
    *,
    timeout: float = 10.0,
) -> PublishReport:
    """Create or update the data source, the dothi folder and every dashboard.

    Args:
        url: Grafana's base URL (``http://grafana:3000``, or with a sub-path).
        token: a service account token (Admin role: data sources need it).
        datasource: :func:`dashboards.provision.datasource`.
        dashboards: dashboard JSON by uid (:func:`dashboards.build_all`).
        timeout: seconds per HTTP request.
    """
    g = _Grafana(url, token, timeout)
    try:
        return _publish(g, datasource, dashboards)
    finally:
        g.close()


def _publish(
    g: _Grafana, datasource: Mapping[str, Any], dashboards: Mapping[str, Mapping[str, Any]]
) -> PublishReport:
    g.check()
    report = PublishReport()

    uid = datasource["uid"]
    if g.call("read data sources", "GET", f"/datasources/uid/{uid}") is None:
        g.call("create data sources", "POST", "/datasources", dict(datasource))
        report.datasource = "created"
    else:
        g.call("update data sources", "PUT", f"/datasources/uid/{uid}", dict(datasource))
        report.datasource = "updated"

    folder = g.call("read folders", "GET", f"/folders/{FOLDER_UID}")
    if folder is None:
        g.call("create folders", "POST", "/folders", {"uid": FOLDER_UID, "title": FOLDER_TITLE})
        report.folder = "created"
    elif folder.get("title") != FOLDER_TITLE:
        body = {"title": FOLDER_TITLE, "overwrite": True}
        g.call("update folders", "PUT", f"/folders/{FOLDER_UID}", body)
        report.folder = "updated"
    else:
        report.folder = "unchanged"

    for dash_uid, model in dashboards.items():
        current = g.call("read dashboards", "GET", f"/dashboards/uid/{dash_uid}")
        if current is not None:
            same = _comparable(current.get("dashboard", {})) == _comparable(model)
            if same and current.get("meta", {}).get("folderUid") == FOLDER_UID:
                report.dashboards[dash_uid] = "unchanged"
                continue
        body = {
            "dashboard": {**_comparable(model), "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "dothi dashboards publish",
        }
        saved = g.call("save dashboards", "POST", "/dashboards/db", body)
        version = saved.get("version") if isinstance(saved, dict) else None
        what = "created" if current is None else "updated"
        report.dashboards[dash_uid] = f"{what} (version {version})" if version else what
        log.info("dashboard %s %s", dash_uid, what)
    return report
