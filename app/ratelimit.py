"""Questions per minute per API key: a token bucket, in this process's memory or in Redis.

In memory each replica keeps its own buckets, so N replicas behind a load balancer allow up to
N times the rate. With ``VOUCH_BILLING__RATE_LIMIT_REDIS_URL`` the buckets live in Redis and
every replica takes from the same one (one Lua script per check, timed by Redis's clock). If
Redis cannot be reached the question goes through and the failure is logged: the limiter
protects capacity, and an outage of it should not become an outage of answers.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from app.errors import RateLimited
from core.config import BillingSettings

log = logging.getLogger(__name__)


class Limiter(Protocol):
    def check(self, key: str) -> None: ...

    def close(self) -> None: ...


def _limited(per_minute: float, tokens: float, rate: float) -> RateLimited:
    wait = math.ceil((1 - tokens) / rate)
    return RateLimited(
        f"this API key asked more than {int(per_minute)} questions in a minute; retry in {wait} s",
        retry_after=wait,
    )


class RateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Take one token for ``key``, or raise RateLimited with the seconds to wait."""
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                raise _limited(self.capacity, tokens, self.rate)
            self._buckets[key] = (tokens - 1, now)

    def close(self) -> None:
        pass  # nothing outside this process to let go of


# KEYS[1]: the bucket; ARGV: capacity, tokens per second. Returns {taken (0/1), tokens left}.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(saved[1]) or capacity
local stamp = tonumber(saved[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return {taken, tostring(tokens)}
"""


class RedisRateLimiter:
    """The same token bucket, kept in Redis so that every replica takes from it."""

    def __init__(self, url: str, per_minute: int, *, prefix: str = "vouch:asks:") -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self._take = self._redis.register_script(_TAKE)

    def check(self, key: str) -> None:
        """Take one token for ``key``, or raise RateLimited with the seconds to wait."""
        try:
            taken, tokens = self._take(keys=[self._prefix + key], args=[self.capacity, self.rate])
        except redis.RedisError as exc:
            log.warning("rate limiter: Redis unreachable (%s); the question goes through", exc)
            return
        if not int(taken):
            raise _limited(self.capacity, float(tokens), self.rate)

    def close(self) -> None:
        self._redis.close()


def build_rate_limiter(settings: BillingSettings) -> Limiter:
    if settings.rate_limit_redis_url:
        return RedisRateLimiter(settings.rate_limit_redis_url, settings.asks_per_minute)
    return RateLimiter(settings.asks_per_minute)
