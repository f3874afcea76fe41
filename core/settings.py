"""dothi's configuration: one pydantic-settings class, environment prefix ``DOTHI_``.

Values come from ``DOTHI_*`` environment variables, then an optional ``dothi.toml`` (path in
``DOTHI_CONFIG``, default ``./dothi.toml``), then the defaults below. With nothing set, every
service uses the embedded local stack under ``DOTHI_HOME`` (default ``./var``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from core.errors import ConfigError

ENV_PREFIX = "DOTHI_"


class Settings(BaseSettings):
    """Every knob of the platform. Field descriptions are the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        extra="ignore",
        validate_default=True,
    )

    # --- where things are -------------------------------------------------------------------
    home: Path = Field(
        default=Path("var"),
        description="Folder of the embedded stack (database cluster, broker data, logs).",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL+TimescaleDB URL of an external database; unset = embedded.",
    )
    mqtt_url: str | None = Field(
        default=None,
        description="mqtt://[user:pass@]host:port of an external broker; unset = embedded.",
    )
    pg_port: int = Field(
        default=25432, ge=1, le=65535, description="Port of the embedded PostgreSQL."
    )
    mqtt_port: int = Field(
        default=21883, ge=1, le=65535, description="Port of the embedded Mosquitto."
    )
    mqtt_tls_port: int = Field(
        default=28883,
        ge=0,
        le=65535,
        description="TLS listener of the embedded Mosquitto, password auth (0 = off).",
    )
    mqtt_mtls_port: int = Field(
        default=28884,
        ge=0,
        le=65535,
        description="TLS listener of the embedded Mosquitto, client-certificate auth (0 = off).",
    )
    mqtt_allow_anonymous: bool = Field(
        default=False,
        description="Let the embedded broker accept clients without credentials (demos only).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every service."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as readable text or one JSON object per line."
    )
    timezone: str = Field(
        default="Asia/Ho_Chi_Minh", description="Time zone of local days in reports."
    )

    # --- ingest -------------------------------------------------------------------------------
    ingest_client_id: str = Field(
        default="dothi-ingest",
        description="Stable MQTT client id prefix of ingest workers (worker n adds '-n').",
    )
    ingest_share_group: str = Field(
        default="ingest", description="MQTT shared-subscription group of the ingest workers."
    )
    ingest_batch_size: int = Field(
        default=1000, ge=1, le=100_000, description="Readings per database batch at most."
    )
    ingest_flush_ms: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="Longest a batch waits to fill up before it is written; 0 writes as soon "
        "as the writer is free (batches then grow by themselves while a commit runs).",
    )
    ingest_mqtt_version: Literal["5", "3.1.1"] = Field(
        default="5",
        description="MQTT version of ingest workers; 3.1.1 has no Receive Maximum and relies "
        "on the broker's max_inflight_messages to bound unacked messages.",
    )
    ingest_receive_maximum: int = Field(
        default=1000,
        ge=1,
        le=65535,
        description="Unacknowledged messages a worker accepts from the broker at once.",
    )
    ingest_session_expiry_s: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        description="How long the broker keeps a stopped worker's session and its queue.",
    )
    ingest_max_payload_bytes: int = Field(
        default=256 * 1024, ge=256, description="Larger payloads go to dead letters."
    )
    ingest_unknown_devices: Literal["register", "reject"] = Field(
        default="register",
        description="What to do with readings from a device not in the registry.",
    )
    ingest_max_future_s: int = Field(
        default=300, ge=0, description="Readings timestamped further in the future are rejected."
    )
    ingest_max_age_days: int = Field(
        default=400,
        ge=1,
        description="Readings older than this are rejected (backfills need a generous value).",
    )

    ingest_workers: int = Field(
        default=1, ge=1, le=64, description="Ingest worker processes started by 'dothi ingest'."
    )
    ingest_metrics_port: int = Field(
        default=9108,
        ge=0,
        le=65535,
        description="Prometheus /metrics port of ingest worker 0 (worker n: +n); 0 = off.",
    )

    grafana_db_password: str | None = Field(
        default=None,
        description="Password of the read-only dothi_grafana role; unset = generated once "
        "into DOTHI_HOME/secrets/grafana-db.pw.",
    )

    # --- storage ---------------------------------------------------------------------------
    retention_raw_days: int = Field(
        default=90, ge=0, description="Days of raw readings kept (0 = forever)."
    )
    retention_minute_days: int = Field(
        default=365, ge=0, description="Days of 1-minute rollups kept (0 = forever)."
    )
    retention_hour_days: int = Field(
        default=5 * 365, ge=0, description="Days of hourly rollups kept (0 = forever)."
    )
    retention_day_days: int = Field(
        default=0, ge=0, description="Days of daily rollups kept (0 = forever)."
    )
    retention_dead_letter_days: int = Field(
        default=30, ge=0, description="Days of dead letters kept (0 = forever)."
    )
    rollup_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between rollup refreshes once caught up."
    )

    # --- api ----------------------------------------------------------------------------------
    api_host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(default=8080, ge=1, le=65535, description="Port the API listens on.")
    api_cors_origins: str = Field(
        default="", description="Comma-separated origins allowed to call the API from a browser."
    )
    api_docs: bool = Field(default=True, description="Serve /docs and /openapi.json.")
    api_workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes.")
    api_pool_max: int = Field(
        default=10, ge=1, le=500, description="Database connections per API process."
    )
    api_pool_timeout_s: float = Field(
        default=5.0, gt=0, description="Longest wait for a connection before a 503."
    )
    api_key_rate_per_s: float = Field(
        default=20.0, gt=0, description="Requests per second per API key (token bucket refill)."
    )
    api_key_burst: int = Field(default=60, ge=1, description="Bucket size per API key.")
    api_anon_rate_per_s: float = Field(
        default=5.0, gt=0, description="Requests per second per address without a key."
    )
    api_anon_burst: int = Field(default=30, ge=1, description="Bucket size per address.")
    api_key_cache_s: float = Field(
        default=5.0, ge=0, description="Key cache lifetime, i.e. the delay of a revocation."
    )
    api_response_cache_s: float = Field(
        default=1.0,
        ge=0,
        description="Reuse of identical /latest and /aggregates answers (0 = off).",
    )
    api_export_max_rows: int = Field(
        default=2_000_000, ge=1, description="Rows of one export at most."
    )
    api_export_max_days: int = Field(default=366, ge=1, description="Longest range of one export.")

    @field_validator("database_url")
    @classmethod
    def _check_db_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        scheme = urlsplit(v).scheme
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(f"must start with postgresql:// (got {scheme or 'no'} scheme)")
        return v

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(
                f"must start with mqtt:// or mqtts:// (got {parts.scheme or 'no'} scheme)"
            )
        if not parts.hostname:
            raise ValueError("has no host")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 (no .env support)
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(f"{ENV_PREFIX}CONFIG", "dothi.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    def db_url(self, dbname: str = "dothi") -> str:
        """The database to use: ``DOTHI_DATABASE_URL`` or the embedded cluster."""
        if self.database_url is not None:
            return self.database_url
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{dbname}"

    def broker_url(self, role: str) -> str:
        """The broker to use as ``role`` (a service's own credential on the embedded broker).

        With ``DOTHI_MQTT_URL`` set, that URL (and its credentials) is used for every role.
        """
        if self.mqtt_url is not None:
            return self.mqtt_url
        secret = self.home / "secrets" / f"mqtt-{role}.pw"
        try:
            password = secret.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ConfigError(
                f"no credential for MQTT role {role!r} at {secret}: start the embedded stack "
                "with 'dothi up' (or 'dothi stack start'), or set DOTHI_MQTT_URL"
            ) from None
        return f"mqtt://dothi-{role}:{password}@127.0.0.1:{self.mqtt_port}"

    @property
    def embedded_db(self) -> bool:
        """True when dothi runs its own PostgreSQL."""
        return self.database_url is None

    @property
    def embedded_broker(self) -> bool:
        """True when dothi runs its own Mosquitto."""
        return self.mqtt_url is None


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one readable :class:`ConfigError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "?"
            value = err.get("input")
            shown = "" if isinstance(value, dict) else f" (got {value!r})"
            problems.append(f"{ENV_PREFIX}{field.upper()}: {err['msg']}{shown}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed dothi.toml
        raise ConfigError(f"invalid configuration file: {exc}") from None
