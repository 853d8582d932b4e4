"""The Lua scripts RedisState runs: one per rate-limit algorithm, and INCR (budgets).

Each script checks and updates every window of one key in one atomic step, on one
hash (``KEYS[1]``) with a field per window, so it stays within one hash slot.  The
admission test is the one of :mod:`campusgate.state.ratelimit`, written with the same
double operations in the same order (Redis runs Lua 5.1: every number is a double;
integers stay exact below 2^53, i.e. microsecond Unix times until the year 2255).

Arguments: ``ARGV[1]`` the cost, ``ARGV[2]`` the time in microseconds or ``""`` for
the server's clock (``TIME``, so that every gateway node agrees), then three
arguments per window.  The reply is ``{allowed, now, ...}`` with each window's state
*before* the request, from which Python derives remaining/reset/retry-after.  Only an
admitted request writes, and it sets a TTL so that idle keys disappear.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["GCRA", "INCR", "SLIDING_WINDOW", "Script"]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA-1, as EVALSHA wants it."""

    source: bytes
    sha: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source).hexdigest().encode())


_PROLOGUE = """
local cost = tonumber(ARGV[1])
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[2])
end
local n = (#ARGV - 2) / 3
local fields = {}
for i = 1, n do fields[i] = ARGV[i * 3] end
local stored = redis.call('HMGET', KEYS[1], unpack(fields))
local out = {0, now}
local allowed = 1
"""

#: Per window: field, size in microseconds, limit.  Field value: "k current previous".
#: Replies {allowed, now, current_1, previous_1, current_2, previous_2, ...}.
SLIDING_WINDOW = Script(
    (
        _PROLOGUE
        + """
local ks, cs, ps = {}, {}, {}
local longest = 0
for i = 1, n do
  local size = tonumber(ARGV[i * 3 + 1])
  local limit = tonumber(ARGV[i * 3 + 2])
  local e = math.fmod(now, size)
  local k = (now - e) / size
  local c, p = 0, 0
  if stored[i] then
    local sk, sc, sp = string.match(stored[i], '^(%d+) (%d+) (%d+)$')
    sk = tonumber(sk)
    if sk == k then
      c, p = tonumber(sc), tonumber(sp)
    elseif sk == k - 1 then
      p = tonumber(sc)
    end
  end
  if p * ((size - e) / size) + c + cost > limit then allowed = 0 end
  ks[i], cs[i], ps[i] = k, c, p
  out[i * 2 + 1] = c
  out[i * 2 + 2] = p
  if size > longest then longest = size end
end
if allowed == 1 then
  local kv = {}
  for i = 1, n do
    kv[i * 2 - 1] = fields[i]
    kv[i * 2] = string.format('%d %d %d', ks[i], cs[i] + cost, ps[i])
  end
  redis.call('HSET', KEYS[1], unpack(kv))
  redis.call('PEXPIRE', KEYS[1], math.ceil(2 * longest / 1000))
end
out[1] = allowed
return out
"""
    ).encode()
)

#: Per window: field, emission interval in microseconds, limit.  Field value: TAT.
#: Replies {allowed, now, tat_1, tat_2, ...} with tat = max(TAT, now).
GCRA = Script(
    (
        _PROLOGUE
        + """
local tats = {}
for i = 1, n do
  local interval = tonumber(ARGV[i * 3 + 1])
  local limit = tonumber(ARGV[i * 3 + 2])
  local tat = tonumber(stored[i]) or now
  if tat < now then tat = now end
  if tat + (cost - limit) * interval > now then allowed = 0 end
  tats[i] = tat
  out[i + 2] = tat
end
if allowed == 1 then
  local kv = {}
  local last = now
  for i = 1, n do
    local tat = tats[i] + cost * tonumber(ARGV[i * 3 + 1])
    kv[i * 2 - 1] = fields[i]
    kv[i * 2] = string.format('%d', tat)
    if tat > last then last = tat end
  end
  redis.call('HSET', KEYS[1], unpack(kv))
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((last - now) / 1000)))
end
out[1] = allowed
return out
"""
    ).encode()
)


#: ``INCRBYFLOAT`` that sets the TTL (``ARGV[2]`` ms) only on a key without one (new):
#: a counter lives until the end of the period it was made in, however often it is
#: added to.  Replies the new total as a string.
INCR = Script(b"""
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return total
""")
