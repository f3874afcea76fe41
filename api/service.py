"""``dothi api``: serve the API with uvicorn."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import uvicorn

from api.app import create_app
from api.config import ApiConfig

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)


def run(settings: Settings) -> int:
    """Serve until interrupted; return the exit code.

    One worker serves from this process; several are started by uvicorn as separate processes
    (each with its own pools, key cache and rate-limit buckets).
    """
    cfg = ApiConfig.from_settings(settings)
    log.info("API on http://%s:%d (workers %d)", settings.api_host, settings.api_port, cfg.workers)
    common = {
        "host": settings.api_host,
        "port": settings.api_port,
        "log_config": None,  # keep dothi's logging setup
        "access_log": cfg.access_log,
        "proxy_headers": False,
        "server_header": False,
    }
    if cfg.workers > 1:
        uvicorn.run("api.app:app_from_env", factory=True, workers=cfg.workers, **common)  # type: ignore[arg-type]
    else:
        uvicorn.run(create_app(settings, config=cfg), **common)  # type: ignore[arg-type]
    return 0
