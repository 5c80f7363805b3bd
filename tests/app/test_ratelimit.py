"""Questions per minute per API key: in memory each process counts alone; in a real Redis every
replica takes from one allowance (VOUCH_TEST_REDIS_URL, set by .ci/run)."""

import logging
import os
import time
from uuid import uuid4

import pytest

from app.errors import RateLimited
from app.ratelimit import RateLimiter, RedisRateLimiter, build_rate_limiter
from core.config import BillingSettings
from tests.servers import free_port

REDIS_URL = os.environ.get("VOUCH_TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="VOUCH_TEST_REDIS_URL is not set")


def _key() -> str:
    return f"key_{uuid4().hex}"  # a fresh bucket per test, whatever Redis already holds


def test_in_memory_each_replica_counts_alone() -> None:
    """Why Redis: two processes with in-memory limits of 3 let 6 questions through."""
    replicas = [RateLimiter(3), RateLimiter(3)]
    key = _key()
    for i in range(6):
        replicas[i % 2].check(key)
    with pytest.raises(RateLimited):
        replicas[0].check(key)


@needs_redis
def test_in_redis_replicas_share_one_allowance() -> None:
    replicas = [RedisRateLimiter(REDIS_URL, 3), RedisRateLimiter(REDIS_URL, 3)]
    key = _key()
    for i in range(3):
        replicas[i % 2].check(key)
    for replica in replicas:
        with pytest.raises(RateLimited, match="more than 3 questions in a minute") as raised:
            replica.check(key)
        assert 1 <= raised.value.retry_after <= 20
    replicas[1].check(_key())  # another key has its own allowance
    for replica in replicas:
        replica.close()


@needs_redis
def test_in_redis_the_allowance_refills_with_time() -> None:
    limiter = build_rate_limiter(
        BillingSettings(rate_limit_redis_url=REDIS_URL, asks_per_minute=30)
    )
    assert isinstance(limiter, RedisRateLimiter)
    key = _key()
    for _ in range(30):
        limiter.check(key)
    with pytest.raises(RateLimited) as raised:
        limiter.check(key)
    assert raised.value.retry_after in (1, 2)  # a question comes back every 2 s
    time.sleep(2.1)
    limiter.check(key)
    limiter.close()


def test_unreachable_redis_lets_questions_through(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", 1)
    with caplog.at_level(logging.WARNING, logger="app.ratelimit"):
        for _ in range(3):
            limiter.check(_key())
    assert "Redis unreachable" in caplog.text
    limiter.close()


def test_without_a_redis_url_the_limit_is_in_memory() -> None:
    assert isinstance(build_rate_limiter(BillingSettings()), RateLimiter)
