"""Constants of the API: version prefix, scopes, key format, media types."""

from __future__ import annotations

from typing import Final

PREFIX: Final = "/api/v1"

SCOPE_READ_PUBLIC: Final = "read:public"
SCOPE_READ_ALL: Final = "read:all"
SCOPE_ALERTS_WRITE: Final = "alerts:write"
SCOPE_ADMIN: Final = "admin"
SCOPES: Final = {
    SCOPE_READ_PUBLIC: "read public devices, their data and AQI (what anonymous callers get)",
    SCOPE_READ_ALL: "read every device, or those of the key's areas, and their data",
    SCOPE_ALERTS_WRITE: "acknowledge, resolve and comment on alerts",
    SCOPE_ADMIN: "everything, including dead letters and the audit log",
}

# Keys look like dk_<id>_<secret>: the id is public (logs, audit), the secret is only hashed.
KEY_PREFIX: Final = "dk"
KEY_ID_BYTES: Final = 6  # 12 hex characters
KEY_SECRET_BYTES: Final = 32  # 256 bits: a plain SHA-256 is then as good as a slow hash
KEY_MAX_LENGTH: Final = 128  # longer credentials are refused before any work (FROST does too)

PROBLEM_JSON: Final = "application/problem+json"
CSV: Final = "text/csv; charset=utf-8"
NDJSON: Final = "application/x-ndjson"
SSE: Final = "text/event-stream"

# Timestamps the API accepts: anything else is a typo or a probe, refused with 422 rather than
# carried into date arithmetic that could overflow.
MIN_YEAR: Final = 1970
MAX_YEAR: Final = 2100
