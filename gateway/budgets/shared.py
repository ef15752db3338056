"""Budgets shared by every gateway replica through Redis, changed atomically by Lua scripts.

Per tenant and month: a hash with `used` and the sum of open reservations, a hash of each open
reservation's amount, and a sorted set of the same reservations by expiry. A gateway renews the holds
it has while their requests run; a gateway that dies stops renewing, and its holds are released
within one lease (the requests it was serving are billed from its journal when it comes back).
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from modelplex.gateway.budgets.amounts import Amount, Budget
from modelplex.gateway.budgets.keeper import BudgetExceeded, Hold, Refusal

log = logging.getLogger(__name__)

MONTH_SECONDS = 40 * 24 * 3600  # a month's keys outlive the month a little, then go

_CLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
-- Give hold `id` back, if it is still held. (0 - x, not -x: Lua formats a negated zero as '-0',
-- which HINCRBY refuses.)
local function release(id)
  local held = redis.call('HGET', KEYS[2], id)
  if held then
    local tokens, nanos = string.match(held, '(-?%d+) (-?%d+)')
    redis.call('HINCRBY', KEYS[1], 'reserved_tokens', 0 - tonumber(tokens))
    redis.call('HINCRBY', KEYS[1], 'reserved_nanos', 0 - tonumber(nanos))
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREM', KEYS[3], id)
end
local function expire_dead()
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do release(id) end
end
local function field(name) return tonumber(redis.call('HGET', KEYS[1], name) or '0') end
local function keep()
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1])) end
end
"""

# ARGV: ttl, request id, lease, wanted tokens, wanted nanos, ledger tokens, ledger nanos,
# budget tokens, budget nanos (-1: no such budget)
RESERVE = (
    _CLOCK
    + """
expire_dead()
local id, lease = ARGV[2], tonumber(ARGV[3])
local want_t, want_n = tonumber(ARGV[4]), tonumber(ARGV[5])
local used_t = math.max(field('used_tokens'), tonumber(ARGV[6]))
local used_n = math.max(field('used_nanos'), tonumber(ARGV[7]))
redis.call('HSET', KEYS[1], 'used_tokens', used_t, 'used_nanos', used_n)
local res_t, res_n = field('reserved_tokens'), field('reserved_nanos')
local have_t, have_n = used_t + res_t, used_n + res_n
local budget_t, budget_n = tonumber(ARGV[8]), tonumber(ARGV[9])
keep()
local function refuse(which)
  local left_t = budget_t >= 0 and budget_t - have_t or 0
  local left_n = budget_n >= 0 and budget_n - have_n or 0
  return {0, which, tostring(left_t), tostring(left_n), tostring(res_t), tostring(res_n)}
end
if budget_t >= 0 and have_t + want_t > budget_t then return refuse('token') end
if budget_n >= 0 and have_n + want_n > budget_n then return refuse('spend') end
redis.call('HINCRBY', KEYS[1], 'reserved_tokens', want_t)
redis.call('HINCRBY', KEYS[1], 'reserved_nanos', want_n)
redis.call('HSET', KEYS[2], id, ARGV[4] .. ' ' .. ARGV[5])
redis.call('ZADD', KEYS[3], now + lease, id)
return {1, '', '0', '0', '0', '0'}
"""
)

# ARGV: ttl, request id, actual tokens, actual nanos. A hold that already expired (its gateway could
# not renew it) is gone; what the request used is counted all the same.
SETTLE = (
    _CLOCK
    + """
release(ARGV[2])
redis.call('HINCRBY', KEYS[1], 'used_tokens', tonumber(ARGV[3]))
redis.call('HINCRBY', KEYS[1], 'used_nanos', tonumber(ARGV[4]))
keep()
return 1
"""
)

# ARGV: lease, request ids. XX: a hold settled (or expired) meanwhile is not brought back.
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
return 1
"""


def budget_keys(tenant_id: str, month: str) -> list[str]:
    base = f"modelplex:budget:{{{tenant_id}}}:{month}"  # one hash slot per tenant (Redis Cluster)
    return [base, f"{base}:held", f"{base}:expiry"]


class RedisBudgets:
    def __init__(self, url: str, lease_seconds: float = 60.0, timeout_seconds: float = 0.5) -> None:
        self._client = aioredis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        self._reserve = self._client.register_script(RESERVE)
        self._settle = self._client.register_script(SETTLE)
        self._renew = self._client.register_script(RENEW)
        self._lease = lease_seconds
        self._held: dict[tuple[str, str], set[str]] = {}  # (tenant, month) -> request ids held here

    async def reserve(
        self, tenant_id: str, request_id: str, month: str, budget: Budget, ledger_used: Amount, wanted: Amount
    ) -> Hold:
        args: list[int | float | str] = [
            MONTH_SECONDS,
            request_id,
            self._lease,
            wanted.tokens,
            wanted.nanos,
            ledger_used.tokens,
            ledger_used.nanos,
            -1 if budget.tokens is None else budget.tokens,
            -1 if budget.nanos is None else budget.nanos,
        ]
        granted, which, *figures = await self._reserve(keys=budget_keys(tenant_id, month), args=args)
        if not int(granted):
            tokens_left, nanos_left, tokens_reserved, nanos_reserved = (int(f) for f in figures)
            remaining, reserved = Amount(tokens_left, nanos_left), Amount(tokens_reserved, nanos_reserved)
            raise BudgetExceeded(Refusal(_text(which), wanted, remaining, reserved))
        self._held.setdefault((tenant_id, month), set()).add(request_id)
        return Hold(tenant_id, request_id, month, wanted)

    async def settle(self, hold: Hold, actual: Amount) -> None:
        held = self._held.get((hold.tenant_id, hold.month))
        if held is not None:
            held.discard(hold.request_id)
            if not held:
                del self._held[(hold.tenant_id, hold.month)]
        args: list[int | str] = [MONTH_SECONDS, hold.request_id, actual.tokens, actual.nanos]
        await self._settle(keys=budget_keys(hold.tenant_id, hold.month), args=args)

    async def run(self) -> None:
        """Renew the holds of this gateway every third of a lease, until cancelled."""
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                await self.renew()
            except Exception as exc:  # Redis away: try again next time; holds last three periods
                log.error("Failed renewing budget holds error=%s", type(exc).__name__)

    async def renew(self) -> int:
        held = {key: list(ids) for key, ids in self._held.items() if ids}
        if not held:
            return 0
        async with self._client.pipeline(transaction=False) as pipe:
            for (tenant, month), ids in held.items():
                expiry = budget_keys(tenant, month)[2]
                await self._renew(keys=[expiry], args=[self._lease, *ids], client=pipe)
            await pipe.execute()
        return sum(len(ids) for ids in held.values())

    async def close(self) -> None:
        await self._client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
