"""API key format: ``dk_<id>_<secret>``, generated here and parsed on every request.

The secret has 256 bits of entropy, so a plain SHA-256 is enough to store it: a slow password
hash protects low-entropy secrets from guessing, which these are not, and would cost every
request a millisecond.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Final

from api.const import KEY_ID_BYTES, KEY_MAX_LENGTH, KEY_PREFIX, KEY_SECRET_BYTES

_KEY: Final = re.compile(rf"^{KEY_PREFIX}_([a-z0-9]{{8,32}})_([A-Za-z0-9_-]{{16,}})$")


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key; ``token`` is shown once and never stored."""

    key_id: str
    secret: str
    token: str
    secret_hash: bytes


def hash_secret(secret: str) -> bytes:
    """SHA-256 of a key's secret."""
    return hashlib.sha256(secret.encode()).digest()


def generate() -> NewKey:
    """A new random key id and secret."""
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(KEY_SECRET_BYTES)
    return NewKey(key_id, secret, f"{KEY_PREFIX}_{key_id}_{secret}", hash_secret(secret))


def parse(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None (never raises on any input)."""
    if len(token) > KEY_MAX_LENGTH:
        return None
    m = _KEY.match(token)
    return (m.group(1), m.group(2)) if m else None
