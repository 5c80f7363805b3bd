"""Token buckets, in this process's memory or in Redis, and the limits built on them:
questions per minute per account, catalog pages with live sample answers per minute per client
address, and wrong passwords per account and per client address.

In memory each replica keeps its own buckets, so N replicas behind a load balancer allow up to
N times the rate. With ``VOUCH_BILLING__RATE_LIMIT_REDIS_URL`` the buckets live in Redis and
every replica takes from the same one (one Lua script per check, timed by Redis's clock). If
Redis cannot be reached the request goes through and the failure is logged: the limits protect
capacity, and an outage of them should not become an outage of the service.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from app.errors import RateLimited
from core.config import AuthSettings

log = logging.getLogger(__name__)


class Buckets(Protocol):
    def take(self, key: str, capacity: float, per_second: float, *, peek: bool = False) -> float:
        """Take a token from ``key``'s bucket (only look, with ``peek``): 0 when there was one,
        else the seconds until there is."""
        ...

    def reset(self, key: str) -> None:
        """Fill ``key``'s bucket again."""
        ...

    def close(self) -> None: ...


def _wait(tokens: float, per_second: float) -> float:
    return 0.0 if tokens >= 1 else (1 - tokens) / per_second


class MemoryBuckets:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, capacity: float, per_second: float, *, peek: bool = False) -> float:
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - stamp) * per_second)
            wait = _wait(tokens, per_second)
            if not wait and not peek:
                tokens -= 1
            self._buckets[key] = (tokens, now)
            return wait

    def reset(self, key: str) -> None:
        with self._lock:
            self._buckets.pop(key, None)

    def close(self) -> None:
        pass  # nothing outside this process to let go of


# KEYS[1]: the bucket; ARGV: capacity, tokens per second, 1 to only look. Returns the tokens
# there were (before taking one), as a string.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(saved[1]) or capacity
local stamp = tonumber(saved[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local left = tokens
if tokens >= 1 and ARGV[3] ~= '1' then
  left = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(left), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(tokens)
"""


class RedisBuckets:
    """The same buckets, kept in Redis so that every replica takes from them."""

    def __init__(self, url: str, *, prefix: str = "vouch:") -> None:
        self._prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self._take = self._redis.register_script(_TAKE)

    def take(self, key: str, capacity: float, per_second: float, *, peek: bool = False) -> float:
        try:
            tokens = self._take(keys=[self._prefix + key], args=[capacity, per_second, int(peek)])
        except redis.RedisError as exc:
            log.warning("rate limit: Redis unreachable (%s); the request goes through", exc)
            return 0.0
        return _wait(float(tokens), per_second)

    def reset(self, key: str) -> None:
        try:
            self._redis.delete(self._prefix + key)
        except redis.RedisError as exc:
            log.warning("rate limit: Redis unreachable (%s); %s not reset", exc, key)

    def close(self) -> None:
        self._redis.close()


def build_buckets(redis_url: str | None) -> Buckets:
    return RedisBuckets(redis_url) if redis_url else MemoryBuckets()


class AskLimiter:
    """Questions per minute per account, whichever way it asks (API, pages, streams)."""

    def __init__(self, buckets: Buckets, per_minute: int) -> None:
        self._buckets = buckets
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0

    def check(self, account_id: str) -> None:
        """Take one question from the account's allowance, or raise RateLimited."""
        wait = self._buckets.take(f"asks:{account_id}", self.capacity, self.rate)
        if wait:
            seconds = math.ceil(wait)
            raise RateLimited(
                f"this account asked more than {int(self.capacity)} questions in a minute; "
                f"retry in {seconds} s",
                retry_after=seconds,
            )


class SampleLimiter:
    """Catalog asset pages per minute per client address: each one answers sample questions
    live, and visitors need no account, so their address is what is counted."""

    def __init__(self, buckets: Buckets, per_minute: int) -> None:
        self._buckets = buckets
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0

    def check(self, address: str) -> None:
        """Take one page from the address's allowance, or raise RateLimited."""
        wait = self._buckets.take(f"samples:{address}", self.capacity, self.rate)
        if wait:
            seconds = math.ceil(wait)
            raise RateLimited(
                f"this address opened more than {int(self.capacity)} asset pages with live "
                f"sample answers in a minute; retry in {seconds} s",
                retry_after=seconds,
            )


class SignInThrottle:
    """Wrong passwords allowed per account and per client address in a window; past either,
    sign-ins are refused (429 with Retry-After) before the password is checked. A success
    clears the account's count, not the address's."""

    def __init__(self, buckets: Buckets, settings: AuthSettings) -> None:
        self._buckets = buckets
        self._limits = {
            "account": float(settings.failures_per_account),
            "address": float(settings.failures_per_address),
        }
        self._window = float(settings.failure_window_seconds)

    def _keys(self, account: str, address: str) -> dict[str, str]:
        return {
            "account": f"signin:account:{account.strip().lower()}",
            "address": f"signin:address:{address}",
        }

    def check(self, *, account: str, address: str) -> None:
        """Refuse a sign-in for ``account`` (an e-mail) from ``address`` that is throttled."""
        for name, key in self._keys(account, address).items():
            capacity = self._limits[name]
            wait = self._buckets.take(key, capacity, capacity / self._window, peek=True)
            if wait:
                seconds = math.ceil(wait)
                raise RateLimited(
                    f"too many wrong passwords for this {name}; try again in {seconds} s",
                    retry_after=seconds,
                )

    def failed(self, *, account: str, address: str) -> None:
        for name, key in self._keys(account, address).items():
            capacity = self._limits[name]
            self._buckets.take(key, capacity, capacity / self._window)

    def succeeded(self, *, account: str) -> None:
        self._buckets.reset(self._keys(account, "")["account"])
