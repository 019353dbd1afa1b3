"""Redis-backed APQ documents and response cache, shared by every worker and instance.

A Redis failure never fails an operation: look-ups count as misses and writes are dropped,
with a warning, so the gateway degrades to what it does without Redis.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

logger = logging.getLogger("gateway.redis")


class RedisDocumentStore:
    def __init__(self, redis: Any, ttl: int, prefix: str = "oms-gateway:apq:") -> None:
        self.redis = redis
        self.ttl = ttl
        self.prefix = prefix

    async def get(self, digest: str) -> str | None:
        try:
            value = await self.redis.get(self.prefix + digest)
        except RedisError as exc:
            logger.warning("redis unavailable for APQ look-up: %s", type(exc).__name__)
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, digest: str, query: str) -> None:
        try:
            await self.redis.set(self.prefix + digest, query, ex=self.ttl)
        except RedisError as exc:
            logger.warning("redis unavailable for APQ registration: %s", type(exc).__name__)


class RedisResponseCache:
    def __init__(self, redis: Any, prefix: str = "oms-gateway:response:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def get(self, key: str) -> bytes | None:
        try:
            value: bytes | None = await self.redis.get(self.prefix + key)
        except RedisError as exc:
            logger.warning("redis unavailable for response cache: %s", type(exc).__name__)
            return None
        return value

    async def put(self, key: str, body: bytes, ttl: float) -> None:
        try:
            await self.redis.set(self.prefix + key, body, px=max(1, int(ttl * 1000)))
        except RedisError as exc:
            logger.warning("redis unavailable for response cache: %s", type(exc).__name__)
