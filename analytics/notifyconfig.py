"""The notification channels file (``deploy/notifications.toml``): MQTT and webhooks.

Secrets are best given as ``secret_env`` (the name of an environment variable) so the file can
be committed; ``secret`` holds the value itself. docs/analytics.md describes the format.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, get_args
from urllib.parse import urlsplit

from analytics.alerts import SEVERITIES, SEVERITY_RANK
from analytics.rules import KINDS
from core.errors import DothiError

if TYPE_CHECKING:
    from pathlib import Path

    from analytics.alerts import EventKind, Severity

log = logging.getLogger(__name__)

Template = Literal["json", "sms_vi"]
TEMPLATES: Final[tuple[Template, ...]] = get_args(Template)
EVENTS: Final = (
    "opened",
    "acknowledged",
    "resolved",
    "commented",
    "escalated",
    "deescalated",
    "flapping",
    "stable",
)
_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_TOML_LINE: Final = re.compile(r"at line (\d+)")


class NotifyConfigError(DothiError):
    """The notifications file is not acceptable; the message names the line and the problem."""


@dataclass(frozen=True, slots=True)
class Filters:
    """Which alert events a channel receives. Empty tuples mean "any".

    Attributes:
        events: event kinds (``opened``, ``escalated``, ``resolved`` …).
        min_severity: the least severity sent.
        areas: area ids; an alert matches when its area is one of them or below one.
        rules: rule ids.
        kinds: rule kinds.
    """

    events: tuple[str, ...] = ()
    min_severity: Severity = "info"
    areas: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    def matches(
        self,
        event: EventKind | str,
        severity: str,
        area_path: tuple[str, ...],
        rule: str,
        kind: str,
    ) -> bool:
        """Whether an event passes (``area_path``: the alert's area and its ancestors)."""
        return (
            (not self.events or event in self.events)
            and SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity]
            and (not self.areas or bool(set(self.areas) & set(area_path)))
            and (not self.rules or rule in self.rules)
            and (not self.kinds or kind in self.kinds)
        )


@dataclass(frozen=True, slots=True)
class Retry:
    """Delivery attempts: retry n waits ``backoff_s · 2^(n−1)``, at most ``max_backoff_s``."""

    max_attempts: int = 10
    backoff_s: float = 30.0
    max_backoff_s: float = 3600.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts (1 → backoff_s)."""
        return float(min(self.backoff_s * 2.0 ** max(attempts - 1, 0), self.max_backoff_s))


@dataclass(frozen=True, slots=True)
class MqttChannel:
    """Alert events on ``dothi/v1/alerts/{severity}/{area_id}`` (QoS 1) and the retained state
    of each alert on ``dothi/v1/alerts/state/{alert_id}`` (cleared when it resolves)."""

    enabled: bool = True
    filters: Filters = Filters()
    retry: Retry = Retry(max_attempts=1000, backoff_s=1.0, max_backoff_s=60.0)


@dataclass(frozen=True, slots=True)
class Webhook:
    """An HTTP endpoint receiving signed POSTs.

    Attributes:
        name: short id (``webhook:<name>`` in the delivery log).
        url: http(s) URL.
        secret: HMAC-SHA256 key.
        template: ``json`` (event + alert) or ``sms_vi`` (short Vietnamese text for an SMS
            gateway).
        filters: which events.
        retry: attempts and back-off.
        timeout_s: per request.
        recipients: phone numbers passed to an SMS gateway (``sms_vi``).
    """

    name: str
    url: str
    secret: str
    template: Template = "json"
    filters: Filters = Filters()
    retry: Retry = Retry()
    timeout_s: float = 10.0
    recipients: tuple[str, ...] = ()

    @property
    def channel(self) -> str:
        """The delivery log's channel name."""
        return f"webhook:{self.name}"


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """Every channel."""

    mqtt: MqttChannel = MqttChannel()
    webhooks: tuple[Webhook, ...] = ()
    source: str = ""

    def channel(self, name: str) -> MqttChannel | Webhook | None:
        """A channel by its delivery-log name (``mqtt`` or ``webhook:<name>``)."""
        if name == "mqtt":
            return self.mqtt
        return next((w for w in self.webhooks if w.channel == name), None)


def _strings(
    table: dict[str, Any], key: str, where: str, allowed: tuple[str, ...] = ()
) -> tuple[str, ...]:
    value = table.pop(key, [])
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise NotifyConfigError(f"{where}: '{key}' must be a list of strings")
    bad = sorted(set(items) - set(allowed)) if allowed else []
    if bad:
        raise NotifyConfigError(f"{where}: '{key}' has unknown {bad}; expected some of {allowed}")
    return tuple(items)


def _number(table: dict[str, Any], key: str, default: float, where: str, low: float) -> float:
    value = table.pop(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise NotifyConfigError(f"{where}: '{key}' must be a number")
    if value < low:
        raise NotifyConfigError(f"{where}: '{key}' must be ≥ {low}")
    return float(value)


def _filters(table: dict[str, Any], where: str) -> Filters:
    severity = table.pop("min_severity", "info")
    if severity not in SEVERITIES:
        raise NotifyConfigError(f"{where}: 'min_severity' must be one of {SEVERITIES}")
    return Filters(
        events=_strings(table, "events", where, EVENTS),
        min_severity=severity,
        areas=_strings(table, "areas", where),
        rules=_strings(table, "rules", where),
        kinds=_strings(table, "kinds", where, KINDS),
    )


def _retry(table: dict[str, Any], where: str, default: Retry) -> Retry:
    attempts = _number(table, "max_attempts", default.max_attempts, where, 1)
    if attempts != int(attempts):
        raise NotifyConfigError(f"{where}: 'max_attempts' must be a whole number")
    return Retry(
        int(attempts),
        _number(table, "backoff_s", default.backoff_s, where, 0.0),
        _number(table, "max_backoff_s", default.max_backoff_s, where, 0.0),
    )


def _finish(table: dict[str, Any], where: str) -> None:
    if table:
        raise NotifyConfigError(f"{where}: unknown key '{min(table)}'")


def parse_notifications(
    text: str, source: str = "notifications.toml", env: dict[str, str] | None = None
) -> NotifyConfig:
    """Parse and validate a notifications file.

    Args:
        text: the file's content.
        source: its name, for messages.
        env: environment for ``secret_env`` (default ``os.environ``).

    Raises:
        NotifyConfigError: with the place and the reason.
    """
    environ = dict(os.environ) if env is None else env
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_LINE.search(str(exc))
        line = f", line {m.group(1)}" if m else ""
        raise NotifyConfigError(f"{source}{line}: not valid TOML: {exc}") from None
    if doc.pop("version", 1) != 1:
        raise NotifyConfigError(f"{source}: version must be 1")
    mqtt_raw = doc.pop("mqtt", {})
    hooks_raw = doc.pop("webhook", [])
    _finish(doc, source)
    if not isinstance(mqtt_raw, dict) or not isinstance(hooks_raw, list):
        raise NotifyConfigError(f"{source}: [mqtt] must be a table and [[webhook]] an array")
    where = f"{source} [mqtt]"
    mqtt_table = dict(mqtt_raw)
    enabled = mqtt_table.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise NotifyConfigError(f"{where}: 'enabled' must be true or false")
    mqtt = MqttChannel(
        enabled, _filters(mqtt_table, where), _retry(mqtt_table, where, MqttChannel().retry)
    )
    _finish(mqtt_table, where)

    hooks: list[Webhook] = []
    for i, raw in enumerate(hooks_raw):
        table = dict(raw) if isinstance(raw, dict) else {}
        name = table.pop("name", None)
        where = f"{source} webhook #{i + 1}" + (f" ({name!r})" if isinstance(name, str) else "")
        if not isinstance(name, str) or not _NAME.match(name):
            raise NotifyConfigError(f"{where}: 'name' must be 1-32 of a-z, 0-9, '_', '-'")
        if any(h.name == name for h in hooks):
            raise NotifyConfigError(f"{where}: duplicate name")
        enabled = table.pop("enabled", True)
        url = table.pop("url", None)
        if (
            not isinstance(url, str)
            or urlsplit(url).scheme not in ("http", "https")
            or not urlsplit(url).hostname
        ):
            raise NotifyConfigError(f"{where}: 'url' must be an http:// or https:// URL")
        secret = table.pop("secret", None)
        secret_env = table.pop("secret_env", None)
        if secret is not None and secret_env is not None:
            raise NotifyConfigError(f"{where}: give 'secret' or 'secret_env', not both")
        if secret_env is not None:
            if not isinstance(secret_env, str) or secret_env not in environ:
                if enabled:
                    raise NotifyConfigError(
                        f"{where}: environment variable {secret_env!r} (secret_env) is not set"
                    )
                secret = ""
            else:
                secret = environ[secret_env]
        if not isinstance(secret, str) or (enabled and len(secret) < 16):
            raise NotifyConfigError(f"{where}: the secret must be at least 16 characters")
        template = table.pop("template", "json")
        if template not in TEMPLATES:
            raise NotifyConfigError(f"{where}: 'template' must be one of {TEMPLATES}")
        hook = Webhook(
            name=name,
            url=url,
            secret=secret,
            template=template,
            filters=_filters(table, where),
            retry=_retry(table, where, Retry()),
            timeout_s=_number(table, "timeout_s", 10.0, where, 0.1),
            recipients=_strings(table, "recipients", where),
        )
        _finish(table, where)
        if enabled:
            hooks.append(hook)
    return NotifyConfig(mqtt, tuple(hooks), source)


def load_notifications(path: Path) -> NotifyConfig:
    """Read and validate a notifications file.

    Raises:
        NotifyConfigError: unreadable or invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotifyConfigError(f"{path}: cannot read: {exc}") from None
    return parse_notifications(text, str(path))


class NotifyConfigWatcher:
    """The current channels of a file, reloaded when it changes; a bad file keeps the old ones.

    Args:
        path: the file, or None for MQTT only with defaults.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.current = load_notifications(path) if path is not None else NotifyConfig()
        self.last_error: str | None = None
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def poll(self) -> NotifyConfig:
        """The channels to use now."""
        stamp = self._stat()
        if self.path is None or stamp == self._stamp:
            return self.current
        self._stamp = stamp
        try:
            self.current = load_notifications(self.path)
        except NotifyConfigError as exc:
            if str(exc) != self.last_error:
                log.error("notifications file refused, keeping the current channels: %s", exc)
            self.last_error = str(exc)
            return self.current
        self.last_error = None
        log.info(
            "reloaded notification channels from %s: %d webhooks",
            self.path,
            len(self.current.webhooks),
        )
        return self.current
