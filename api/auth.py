"""Who is calling: API keys, scopes, the key cache and per-caller rate limits.

A request carries a key as ``Authorization: Bearer dk_<id>_<secret>`` or ``X-API-Key``; without
one it is anonymous and sees what the public portal sees. A malformed, unknown, wrong or revoked
key is refused (401), never downgraded to anonymous, and audited with its id only.

Keys are cached for ``key_cache_s`` seconds (default 5), so most requests cost a dictionary
lookup and one SHA-256, not a database round trip; a revocation therefore takes effect within
that time in every API process.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from api import keys as keyfmt
from api.const import SCOPE_ADMIN, SCOPE_READ_ALL, SCOPE_READ_PUBLIC
from api.problems import forbidden, rate_limited, unauthorized
from api.ratelimit import RateLimiter, retry_after
from store.audit import AuditEvent
from store.visibility import EVERYTHING, PUBLIC_ONLY, Visibility

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from api.audit import AuditWriter
    from api.config import ApiConfig
    from store.keys import ApiKey

ANONYMOUS: Final = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request.

    Attributes:
        key_id: the key's public id; None when anonymous.
        scopes: granted scopes.
        visibility: the devices it may see.
        client: the client's address.
    """

    key_id: str | None
    scopes: frozenset[str]
    visibility: Visibility
    client: str

    @property
    def actor(self) -> str:
        """How the caller is named in alert histories and the audit log."""
        return f"key:{self.key_id}" if self.key_id else ANONYMOUS

    def has(self, scope: str) -> bool:
        """Whether the caller holds ``scope``.

        ``admin`` implies every scope and ``read:all`` implies ``read:public``; every key holds
        ``read:public`` (a key never sees less than an anonymous caller).
        """
        if self.key_id is None:
            return False
        if scope == SCOPE_READ_PUBLIC or SCOPE_ADMIN in self.scopes:
            return True
        return scope in self.scopes


def visibility_of(key: ApiKey) -> Visibility:
    """The devices a key may see."""
    if SCOPE_ADMIN in key.scopes:
        return EVERYTHING
    if SCOPE_READ_ALL in key.scopes:
        if key.visible_areas is None:
            return EVERYTHING
        return Visibility(everything=False, area_ids=key.visible_areas)
    return PUBLIC_ONLY


class KeyCache:
    """Keys by id for ``ttl`` seconds, unknown ids included, LRU-bounded."""

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[ApiKey | None]],
        ttl: float,
        max_entries: int = 10_000,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()

    async def get(self, key_id: str) -> ApiKey | None:
        """The key, from the cache when fresh, else from the database."""
        now = time.monotonic()
        hit = self._entries.get(key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        key = await self._fetch(key_id)
        self._entries[key_id] = (now + self._ttl, key)
        self._entries.move_to_end(key_id)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return key

    def clear(self) -> None:
        """Forget every key (tests)."""
        self._entries.clear()


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the audit log records about a request."""

    client: str
    method: str
    path: str


class Authenticator:
    """Turns a request's credential into a :class:`Principal`, or a problem."""

    def __init__(
        self, config: ApiConfig, cache: KeyCache, limiter: RateLimiter, audit: AuditWriter
    ) -> None:
        self._config = config
        self._cache = cache
        self._limiter = limiter
        self._audit = audit

    async def principal(
        self, token: str | None, info: RequestInfo, required: Sequence[str]
    ) -> Principal:
        """Authenticate, rate-limit and check scopes.

        Args:
            token: the presented key, or None.
            info: the request, for the audit log.
            required: scopes the route needs (empty: anonymous is fine).

        Raises:
            ApiProblem: 401 for a bad key (or none where one is needed), 403 for a missing
                scope, 429 when the caller's bucket is empty.
        """
        cfg = self._config
        if token is None:
            self._charge(f"ip:{info.client}", cfg.anon_rate_per_s, cfg.anon_burst)
            if required:
                raise unauthorized("this route needs an API key (Authorization: Bearer dk_…)")
            return Principal(None, frozenset(), PUBLIC_ONLY, info.client)
        parsed = keyfmt.parse(token)
        key = await self._cache.get(parsed[0]) if parsed else None
        if (
            parsed is None
            or key is None
            or not hmac.compare_digest(keyfmt.hash_secret(parsed[1]), key.secret_hash)
        ):
            # Failures are charged to the address: guessing keys runs into 429s quickly.
            self._charge(f"ip:{info.client}", cfg.anon_rate_per_s, cfg.anon_burst)
            reason = "malformed" if parsed is None else "unknown_or_wrong_secret"
            self._log("authn_login_fail", parsed[0] if parsed else None, info, 401, reason)
            raise unauthorized("the API key is not valid")
        if key.revoked_at is not None:
            self._charge(f"ip:{info.client}", cfg.anon_rate_per_s, cfg.anon_burst)
            self._log("authn_token_revoked", key.id, info, 401, "revoked")
            raise unauthorized("the API key has been revoked")
        self._charge(
            f"key:{key.id}", key.rate_per_s or cfg.key_rate_per_s, key.burst or cfg.key_burst
        )
        principal = Principal(key.id, frozenset(key.scopes), visibility_of(key), info.client)
        for scope in required:
            if not principal.has(scope):
                self._log("authz_fail", key.id, info, 403, f"missing scope {scope}")
                raise forbidden(scope)
        return principal

    def _charge(self, bucket: str, rate: float, burst: int) -> None:
        wait = self._limiter.take(bucket, rate, burst)
        if wait > 0:
            raise rate_limited(
                retry_after(wait), f"rate limit of {rate:g} requests/s (burst {burst}) exceeded"
            )

    def _log(
        self, event: str, key_id: str | None, info: RequestInfo, status: int, why: str
    ) -> None:
        self._audit.emit(
            AuditEvent(
                event,
                key_id=key_id,
                client=info.client,
                method=info.method,
                path=info.path,
                status=status,
                detail={"reason": why},
            )
        )
