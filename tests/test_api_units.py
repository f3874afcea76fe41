"""Pure pieces of the API: response cache, token buckets, key format, parameters."""

from __future__ import annotations

import asyncio
import time

import pytest

from api import keys as keyfmt
from api.cache import TtlCache
from api.params import parse_interval
from api.problems import ApiProblem
from api.ratelimit import RateLimiter, retry_after


def test_cache_computes_once_for_concurrent_callers_and_serves_stale_while_refreshing() -> None:
    calls: list[int] = []

    async def compute() -> bytes:
        calls.append(1)
        await asyncio.sleep(0.05)
        return str(len(calls)).encode()

    async def scenario() -> None:
        cache: TtlCache[bytes] = TtlCache(ttl=0.1)
        first = await asyncio.gather(*(cache.get_or_compute("k", compute) for _ in range(20)))
        assert first == [b"1"] * 20
        assert len(calls) == 1
        await asyncio.sleep(0.15)  # expired: one refresh, the others get the previous answer
        second = await asyncio.gather(*(cache.get_or_compute("k", compute) for _ in range(20)))
        assert second.count(b"2") >= 1
        assert set(second) <= {b"1", b"2"}
        assert len(calls) == 2

    asyncio.run(scenario())


def test_cache_does_not_keep_failures() -> None:
    attempts: list[int] = []

    async def failing() -> bytes:
        attempts.append(1)
        await asyncio.sleep(0.01)
        raise ApiProblem(404, "not-found", "Not found", "nope")

    async def scenario() -> None:
        cache: TtlCache[bytes] = TtlCache(ttl=10)
        results = await asyncio.gather(
            *(cache.get_or_compute("k", failing) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, ApiProblem) for r in results)
        assert len(attempts) == 3  # each caller answered for itself

    asyncio.run(scenario())


def test_token_bucket() -> None:
    limiter = RateLimiter(max_buckets=2)
    t = time.monotonic()
    assert [limiter.take("a", 1.0, 2, now=t) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert limiter.take("a", 1.0, 2, now=t + 0.5) == pytest.approx(0.5)
    assert limiter.take("a", 1.0, 2, now=t + 1.0) == 0.0
    assert retry_after(0.01) == 1
    assert retry_after(2.2) == 3
    limiter.take("b", 1.0, 1, now=t)
    limiter.take("c", 1.0, 1, now=t)  # evicts "a" (least recently used): it comes back full
    assert limiter.take("a", 1.0, 2, now=t + 1.0) == 0.0


def test_key_format() -> None:
    new = keyfmt.generate()
    assert new.token.startswith(f"dk_{new.key_id}_")
    assert keyfmt.parse(new.token) == (new.key_id, new.secret)
    assert keyfmt.hash_secret(new.secret) == new.secret_hash
    for bad in ("", "dk_", "dk_UPPER123_" + "s" * 43, "xx_abcdef12_" + "s" * 43, "dk_" + "a" * 200):
        assert keyfmt.parse(bad) is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400), ("1w", 604800)]
)
def test_interval(text: str, seconds: int) -> None:
    assert parse_interval(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["0s", "1y", "h", "367d", "-1h", "1.5h"])
def test_bad_interval_names_the_field(text: str) -> None:
    with pytest.raises(ApiProblem) as info:
        parse_interval(text)
    assert info.value.status == 422
    errors = info.value.errors
    assert errors is not None
    assert [(e["location"], e["field"]) for e in errors] == [("query", "interval")]
