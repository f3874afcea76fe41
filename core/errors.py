"""Error types shared by every dothi package.

Errors are classified so each service knows what to do with them: a :class:`TransientError` is
retried (and, in ingest, the MQTT message is not acknowledged); a :class:`PayloadError` is
permanent for that input, which is kept as a dead letter with the error's reason.
"""

from __future__ import annotations


class DothiError(Exception):
    """Base class of dothi's own errors."""


class ConfigError(DothiError):
    """The configuration is invalid; the message names the variable and what is wrong."""


class TransientError(DothiError):
    """A dependency (database, broker) is temporarily unavailable; retry later."""


class PayloadError(DothiError):
    """An input message cannot be accepted as it is.

    Attributes:
        reason: a short stable code (``malformed_json``, ``unknown_metric`` …) used for dead-letter
            grouping and metrics.
        detail: a human-readable sentence naming the offending part.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
