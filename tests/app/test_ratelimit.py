"""Token buckets: in memory each process counts alone; in a real Redis every replica takes from
one allowance (VOUCH_TEST_REDIS_URL, set by .ci/run). Asks per account and wrong passwords per
account and address are built on them."""

import logging
import os
import time
from uuid import uuid4

import pytest

from app.errors import RateLimited
from app.ratelimit import (
    AskLimiter,
    MemoryBuckets,
    RedisBuckets,
    SignInThrottle,
    build_buckets,
)
from core.config import AuthSettings
from tests.servers import free_port

REDIS_URL = os.environ.get("VOUCH_TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="VOUCH_TEST_REDIS_URL is not set")


def _key() -> str:
    return f"acct_{uuid4().hex}"  # a fresh bucket per test, whatever Redis already holds


def test_in_memory_each_replica_counts_alone() -> None:
    """Why Redis: two processes with in-memory limits of 3 let 6 questions through."""
    replicas = [AskLimiter(MemoryBuckets(), 3), AskLimiter(MemoryBuckets(), 3)]
    key = _key()
    for i in range(6):
        replicas[i % 2].check(key)
    with pytest.raises(RateLimited):
        replicas[0].check(key)


@needs_redis
def test_in_redis_replicas_share_one_allowance() -> None:
    stores = [RedisBuckets(REDIS_URL), RedisBuckets(REDIS_URL)]
    replicas = [AskLimiter(store, 3) for store in stores]
    key = _key()
    for i in range(3):
        replicas[i % 2].check(key)
    for replica in replicas:
        with pytest.raises(RateLimited, match="more than 3 questions in a minute") as raised:
            replica.check(key)
        assert 1 <= raised.value.retry_after <= 20
    replicas[1].check(_key())  # another account has its own allowance
    for store in stores:
        store.close()


@needs_redis
def test_in_redis_the_allowance_refills_with_time() -> None:
    store = build_buckets(REDIS_URL)
    assert isinstance(store, RedisBuckets)
    limiter = AskLimiter(store, 30)
    key = _key()
    for _ in range(30):
        limiter.check(key)
    with pytest.raises(RateLimited) as raised:
        limiter.check(key)
    assert raised.value.retry_after in (1, 2)  # a question comes back every 2 s
    time.sleep(2.1)
    limiter.check(key)
    store.close()


def test_unreachable_redis_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisBuckets(f"redis://127.0.0.1:{free_port()}/0")
    limiter = AskLimiter(store, 1)
    throttle = SignInThrottle(store, AuthSettings(failures_per_account=1))
    with caplog.at_level(logging.WARNING, logger="app.ratelimit"):
        for _ in range(3):
            limiter.check(_key())
            throttle.failed(account="a@example.com", address="10.0.0.1")
            throttle.check(account="a@example.com", address="10.0.0.1")
    assert "Redis unreachable" in caplog.text
    store.close()


def test_without_a_redis_url_the_buckets_are_in_memory() -> None:
    assert isinstance(build_buckets(None), MemoryBuckets)


class TestSignInThrottle:
    def _throttle(self, buckets: MemoryBuckets | RedisBuckets) -> SignInThrottle:
        settings = AuthSettings(
            failures_per_account=3, failures_per_address=5, failure_window_seconds=60
        )
        return SignInThrottle(buckets, settings)

    def test_only_wrong_passwords_count_and_a_success_clears_the_account(self) -> None:
        throttle = self._throttle(MemoryBuckets())
        for _ in range(10):  # looking is free: right passwords take nothing
            throttle.check(account="ann@example.com", address="10.0.0.1")
        for _ in range(2):
            throttle.failed(account="ann@example.com", address="10.0.0.1")
        throttle.succeeded(account="ANN@example.com")  # e-mails compare case-insensitively
        for _ in range(2):
            throttle.failed(account="ann@example.com", address="10.0.0.1")
        throttle.check(account="ann@example.com", address="10.0.0.1")

    def test_per_account_whatever_the_address(self) -> None:
        throttle = self._throttle(MemoryBuckets())
        for n in range(3):
            throttle.failed(account="bob@example.com", address=f"10.0.0.{n}")
        with pytest.raises(RateLimited, match="this account") as raised:
            throttle.check(account="Bob@Example.com", address="10.9.9.9")
        assert 1 <= raised.value.retry_after <= 20  # 3 a minute: one back every 20 s
        throttle.check(account="carol@example.com", address="10.9.9.9")

    def test_per_address_whatever_the_account(self) -> None:
        throttle = self._throttle(MemoryBuckets())
        for n in range(5):
            throttle.failed(account=f"user{n}@example.com", address="10.0.0.7")
        with pytest.raises(RateLimited, match="this address"):
            throttle.check(account="new@example.com", address="10.0.0.7")
        throttle.check(account="new@example.com", address="10.0.0.8")

    @needs_redis
    def test_in_redis_replicas_share_the_counts(self) -> None:
        stores = [RedisBuckets(REDIS_URL), RedisBuckets(REDIS_URL)]
        replicas = [self._throttle(store) for store in stores]
        account = f"{uuid4().hex}@example.com"
        for n in range(3):
            replicas[n % 2].failed(account=account, address=f"10.1.{n}.1")
        for replica in replicas:
            with pytest.raises(RateLimited, match="this account"):
                replica.check(account=account, address="10.2.0.1")
        replicas[0].succeeded(account=account)
        replicas[1].check(account=account, address="10.2.0.1")
        for store in stores:
            store.close()
