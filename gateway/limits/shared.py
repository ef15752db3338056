"""Limits shared by every gateway replica through Redis: the same buckets, kept in Redis hashes and
changed atomically by Lua scripts that read the clock from Redis (one clock for all replicas)."""

from __future__ import annotations

import redis.asyncio as aioredis

from modelplex.billing.contracts import PlanLimits
from modelplex.gateway.limits.base import Denial, LimitExceeded, Ticket

# A concurrency lease outlives any sane request; it only matters when a gateway died holding it.
LEASE_SECONDS = 900

_LEVEL = """
local function level(key, per_minute, now)
  local v = redis.call('HMGET', key, 'level', 'stamp')
  local lvl, stamp = tonumber(v[1]), tonumber(v[2])
  if lvl == nil then return per_minute end
  return math.min(per_minute, lvl + (now - stamp) * per_minute / 60)
end
local function wait(missing, per_minute)
  if per_minute <= 0 then return '60' end
  return tostring(missing * 60 / per_minute)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

ADMIT = (
    _LEVEL
    + """
local rpm, tpm, slots = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local estimate, lease = tonumber(ARGV[4]), tonumber(ARGV[6])
local rl, tl
if rpm >= 0 then
  rl = level(KEYS[1], rpm, now)
  if rl < 1 then return {0, 'requests per minute', wait(1 - rl, rpm)} end
end
if tpm >= 0 then
  tl = level(KEYS[2], tpm, now)
  local need = math.min(estimate, tpm)
  if tl < need then return {0, 'tokens per minute', wait(need - tl, tpm)} end
end
if slots >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= slots then return {0, 'concurrent requests', '1'} end
end
if rpm >= 0 then
  redis.call('HSET', KEYS[1], 'level', rl - 1, 'stamp', now)
  redis.call('EXPIRE', KEYS[1], 120)
end
if tpm >= 0 then
  redis.call('HSET', KEYS[2], 'level', tl - estimate, 'stamp', now)
  redis.call('EXPIRE', KEYS[2], 120)
end
if slots >= 0 then
  redis.call('ZADD', KEYS[3], now + lease, ARGV[5])
  redis.call('EXPIRE', KEYS[3], lease)
end
return {1, '', '0'}
"""
)

SETTLE = (
    _LEVEL
    + """
local tpm, correction = tonumber(ARGV[1]), tonumber(ARGV[2])
if tpm >= 0 and correction ~= 0 then
  local lvl = math.max(-tpm, level(KEYS[1], tpm, now) - correction)
  redis.call('HSET', KEYS[1], 'level', lvl, 'stamp', now)
  redis.call('EXPIRE', KEYS[1], 120)
end
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
"""
)


def _keys(tenant_id: str) -> tuple[str, str, str]:
    base = f"modelplex:limits:{{{tenant_id}}}"  # one hash slot per tenant (Redis Cluster)
    return f"{base}:rpm", f"{base}:tpm", f"{base}:slots"


def _arg(value: int | None) -> int:
    return -1 if value is None else value


class RedisLimiter:
    def __init__(self, url: str) -> None:
        self._client = aioredis.from_url(url)
        self._admit = self._client.register_script(ADMIT)
        self._settle = self._client.register_script(SETTLE)

    async def admit(
        self, tenant_id: str, request_id: str, limits: PlanLimits, estimated_tokens: int
    ) -> Ticket:
        rpm, tpm, slots = limits.requests_per_minute, limits.tokens_per_minute, limits.concurrent_requests
        if rpm is None and tpm is None and slots is None:
            return Ticket(tenant_id, request_id, estimated_tokens, None, False)
        args: list[int | str] = [
            _arg(rpm),
            _arg(tpm),
            _arg(slots),
            estimated_tokens,
            request_id,
            LEASE_SECONDS,
        ]
        allowed, limit, retry = await self._admit(keys=list(_keys(tenant_id)), args=args)
        if not int(allowed):
            raise LimitExceeded(Denial(_text(limit), float(retry)))
        return Ticket(tenant_id, request_id, estimated_tokens, tpm, slots is not None)

    async def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        if ticket.tokens_per_minute is None and not ticket.holds_slot:
            return
        _, tpm_key, slots_key = _keys(ticket.tenant_id)
        args: list[int | str] = [
            _arg(ticket.tokens_per_minute),
            actual_tokens - ticket.estimated_tokens,
            ticket.request_id,
        ]
        await self._settle(keys=[tpm_key, slots_key], args=args)

    async def close(self) -> None:
        await self._client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
