"""Limits shared by every gateway replica through Redis: the same buckets, kept in Redis hashes and
changed atomically by Lua scripts that read the clock from Redis (one clock for all replicas).

Concurrency slots are leases in a sorted set (score: expiry). The gateway holding a lease renews it
every third of its length for as long as the request runs, so a 20-minute stream keeps its slot, and a
gateway that dies gives its slots back within one lease length.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from modelplex.billing.contracts import PlanLimits
from modelplex.gateway.limits.base import Denial, LimitExceeded, Ticket

log = logging.getLogger(__name__)

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
  redis.call('EXPIRE', KEYS[3], math.ceil(lease))
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


# XX: only leases still held are renewed; one settled meanwhile is not brought back.
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i])
end
redis.call('EXPIRE', KEYS[1], math.ceil(lease))
return 1
"""


def _keys(tenant_id: str) -> tuple[str, str, str]:
    base = f"modelplex:limits:{{{tenant_id}}}"  # one hash slot per tenant (Redis Cluster)
    return f"{base}:rpm", f"{base}:tpm", f"{base}:slots"


def _arg(value: int | None) -> int:
    return -1 if value is None else value


class RedisLimiter:
    def __init__(self, url: str, lease_seconds: float = 60.0, timeout_seconds: float = 0.5) -> None:
        # Without timeouts a Redis that stops answering (not one that refuses) would hang admission.
        self._client = aioredis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        self._admit = self._client.register_script(ADMIT)
        self._settle = self._client.register_script(SETTLE)
        self._renew = self._client.register_script(RENEW)
        self._lease = lease_seconds
        self._held: dict[str, set[str]] = {}  # tenant id -> request ids holding a slot here

    async def admit(
        self, tenant_id: str, request_id: str, limits: PlanLimits, estimated_tokens: int
    ) -> Ticket:
        rpm, tpm, slots = limits.requests_per_minute, limits.tokens_per_minute, limits.concurrent_requests
        if rpm is None and tpm is None and slots is None:
            return Ticket(tenant_id, request_id, estimated_tokens, None, False)
        args: list[int | float | str] = [
            _arg(rpm),
            _arg(tpm),
            _arg(slots),
            estimated_tokens,
            request_id,
            self._lease,
        ]
        allowed, limit, retry = await self._admit(keys=list(_keys(tenant_id)), args=args)
        if not int(allowed):
            raise LimitExceeded(Denial(_text(limit), float(retry)))
        if slots is not None:
            self._held.setdefault(tenant_id, set()).add(request_id)
        return Ticket(tenant_id, request_id, estimated_tokens, tpm, slots is not None)

    async def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        if ticket.holds_slot:
            self._forget(ticket)
        if ticket.tokens_per_minute is None and not ticket.holds_slot:
            return
        _, tpm_key, slots_key = _keys(ticket.tenant_id)
        args: list[int | str] = [
            _arg(ticket.tokens_per_minute),
            actual_tokens - ticket.estimated_tokens,
            ticket.request_id,
        ]
        await self._settle(keys=[tpm_key, slots_key], args=args)

    async def run(self) -> None:
        """Renew the leases held here every third of a lease, until cancelled."""
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                await self.renew()
            except Exception as exc:  # Redis away: try again next time; leases last three periods
                log.error("Failed renewing concurrency leases error=%s", type(exc).__name__)

    async def renew(self) -> int:
        """Renew every lease held by this gateway in one round trip; returns how many."""
        held = {tenant: list(ids) for tenant, ids in self._held.items() if ids}
        if not held:
            return 0
        async with self._client.pipeline(transaction=False) as pipe:
            for tenant, ids in held.items():
                await self._renew(keys=[_keys(tenant)[2]], args=[self._lease, *ids], client=pipe)
            await pipe.execute()
        return sum(len(ids) for ids in held.values())

    async def close(self) -> None:
        await self._client.aclose()

    def _forget(self, ticket: Ticket) -> None:
        ids = self._held.get(ticket.tenant_id)
        if ids is not None:
            ids.discard(ticket.request_id)
            if not ids:
                del self._held[ticket.tenant_id]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
