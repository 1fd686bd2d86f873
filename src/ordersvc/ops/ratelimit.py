"""Per-API-key rate limit: a token bucket of `burst` requests refilled at `rate` per second.

In-process by default (each server process counts alone); with `REDIS_URL` the buckets live in
Redis and every replica shares them. A bucket is named by a digest of the whole key, so a stranger
who knows a key's (non-secret) prefix cannot spend its owner's requests. A token is taken after the
key is authenticated, except by the one-statement order of a key this process has already seen
authenticated, which takes it before the statement checks the key.

If Redis cannot be reached the request is let through and a warning logged: a rate limit
protects the service, and refusing every customer because a cache is down protects nothing."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request

from ordersvc.errors import ServiceError
from ordersvc.ops import metrics

logger = logging.getLogger(__name__)

MAX_BUCKETS_IN_MEMORY = 100_000
POLICY = "burst"  # the name of the one policy in the RateLimit header fields


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int  # the bucket's size: requests allowed in a burst
    remaining: int  # whole requests left now
    reset_seconds: int  # until the bucket is full again
    retry_after_seconds: int  # until one request is allowed again (0 when allowed)
    window_seconds: int  # the time the bucket takes to fill from empty

    def headers(self) -> dict[str, str]:
        """The IETF `RateLimit` and `RateLimit-Policy` fields (draft-ietf-httpapi-ratelimit-headers,
        structured fields): the policy `"burst"` allows `q` requests per `w` seconds; `r` are left,
        and the bucket is full again in `t` seconds. Retry-After on a refusal."""
        headers = {
            "RateLimit-Policy": f'"{POLICY}";q={self.limit};w={self.window_seconds}',
            "RateLimit": f'"{POLICY}";r={self.remaining};t={self.reset_seconds}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"
    message = "Too many requests."


class RateLimiter(Protocol):
    burst: int

    async def take(self, bucket: str, cost: int = 1) -> Decision | None:
        """The bucket's decision on taking `cost` tokens (all of them, or none); None when it
        cannot be told (the request is let through)."""
        ...

    async def close(self) -> None: ...


def _decide(tokens: float, allowed: bool, burst: int, rate: float, cost: int = 1) -> Decision:
    return Decision(
        allowed=allowed,
        limit=burst,
        remaining=max(0, math.floor(tokens)),
        reset_seconds=math.ceil(max(0.0, burst - tokens) / rate),
        retry_after_seconds=0 if allowed else max(1, math.ceil((cost - tokens) / rate)),
        window_seconds=math.ceil(burst / rate),
    )


class MemoryRateLimiter:
    """Buckets in this process; the least recently used are forgotten beyond MAX_BUCKETS_IN_MEMORY
    (a forgotten bucket is a full one, which only ever errs on the generous side)."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, bucket: str, cost: int = 1) -> Decision:
        # No await between reading and writing the bucket: atomic within the event loop.
        now = time.monotonic()
        tokens, updated = self._buckets.pop(bucket, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[bucket] = (tokens, now)
        if len(self._buckets) > MAX_BUCKETS_IN_MEMORY:
            self._buckets.popitem(last=False)
        return _decide(tokens, allowed, self.burst, self.rate, cost)

    async def close(self) -> None:
        return None


# One atomic step in Redis: refill by the time elapsed (Redis' own clock, the same for every
# replica), take a token if there is one, remember the state for as long as refilling takes.
_TAKE = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    def __init__(self, url: str, *, rate: float, burst: int, prefix: str = "ordersvc:ratelimit:") -> None:
        import redis.asyncio as redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.rate, self.burst, self.prefix = rate, burst, prefix
        # No retries: an unreachable store must cost a request at most one short timeout.
        self._redis = redis.Redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25, retry=Retry(NoBackoff(), 0), retry_on_timeout=False
        )
        self._take = self._redis.register_script(_TAKE)

    async def take(self, bucket: str, cost: int = 1) -> Decision | None:
        from redis.exceptions import RedisError

        try:
            allowed, tokens = await self._take(keys=[self.prefix + bucket], args=[self.burst, self.rate, cost])
        except (RedisError, OSError) as exc:
            logger.warning("rate limit store unreachable, request allowed: %s", exc.__class__.__name__)
            return None
        return _decide(float(tokens), bool(allowed), self.burst, self.rate, cost)

    async def close(self) -> None:
        await self._redis.aclose()


def create_rate_limiter(*, rate: float, burst: int, redis_url: str | None) -> RateLimiter | None:
    """None when the limit is off (rate 0)."""
    if rate <= 0:
        return None
    if redis_url:
        return RedisRateLimiter(redis_url, rate=rate, burst=burst)
    return MemoryRateLimiter(rate=rate, burst=burst)


def key_bucket(api_key: str) -> str:
    """A key's bucket: its 12-character prefix, for the operator, and 64 bits of its SHA-256, so
    that a stranger who knows the prefix cannot name the bucket (no secret reaches the store)."""
    return f"key:{api_key[:12]}.{hashlib.sha256(api_key.encode()).hexdigest()[:16]}"


class _Authenticated:
    """The buckets of keys this process has seen authenticated (least recently used forgotten).
    Only their requests take a token before their key is checked (the one-statement order): a
    stranger's invented keys never create buckets, so they can neither fill the store nor push
    real buckets out of it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._buckets: OrderedDict[str, None] = OrderedDict()

    def add(self, bucket: str) -> None:
        self._buckets[bucket] = None
        self._buckets.move_to_end(bucket)
        if len(self._buckets) > self.size:
            self._buckets.popitem(last=False)

    def __contains__(self, bucket: str) -> bool:
        return bucket in self._buckets


_authenticated = _Authenticated(MAX_BUCKETS_IN_MEMORY // 2)


def may_take_before_check(request: Request, bucket: str) -> bool:
    """Whether a request may take a key bucket's token before its key is checked: the limit is
    off, or this key has authenticated in this process before."""
    return getattr(request.app.state, "rate_limiter", None) is None or bucket in _authenticated


async def enforce_key(request: Request, api_key: str) -> None:
    """For a key just authenticated: take one request from its bucket (RateLimited when empty)."""
    bucket = key_bucket(api_key)
    _authenticated.add(bucket)
    await enforce(request, bucket)


async def enforce_session(request: Request, session_id: int) -> None:
    await enforce(request, f"session:{session_id}")


async def enforce(request: Request, bucket: str) -> None:
    """Take one request from the bucket; raise RateLimited when it is empty. A request takes at
    most one token of a bucket, whichever path it goes down. The decision is left in the
    request's state, where the request middleware turns it into headers."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None or getattr(request.state, "rate_limit_bucket", None) == bucket:
        return
    decision = await limiter.take(bucket)
    if decision is None:
        return
    _decided(request, decision)
    request.state.rate_limit_bucket = bucket


def _decided(request: Request, decision: Decision) -> None:
    """The decision in the request's state, for the headers; RateLimited if it refuses."""
    request.state.rate_limit = decision
    if not decision.allowed:
        metrics.RATE_LIMITED.inc()
        raise RateLimited()


async def take_more(request: Request, count: int) -> None:
    """For a request that does the work of `count` + 1 requests (a mass order's lines): `count`
    more tokens of the bucket its first one came from, all or none (RateLimited), at most the
    bucket's burst, so that a request larger than the burst still passes on a full bucket."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    bucket: str | None = getattr(request.state, "rate_limit_bucket", None)
    if limiter is None or bucket is None or count <= 0:
        return
    extra = min(count, limiter.burst - 1)
    if extra <= 0:
        return
    decision = await limiter.take(bucket, extra)
    if decision is not None:
        _decided(request, decision)
