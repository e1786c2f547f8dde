"""Server-side scripts of the Redis backend: each runs atomically inside Redis.

They mirror `gcra.py` and `base.admit` exactly (same formulas, same EPS);
the shared backend suite runs the same numbers through both. Numbers cross
the wire as `%.17g` strings: Redis would truncate a Lua number reply to an
integer, and 17 significant digits round-trip a double exactly.

Time is the gateway's wall clock passed in ARGV (not Redis `TIME`), so tests
inject it; replicas' clocks are NTP-synchronised to milliseconds, which moves
a refill by a thousandth of a token per second of skew.
"""

# KEYS: one per rule. ARGV: now, reservation id, lease expiry, lease ttl ms, then one
# "kind capacity rate cost shadow" string per rule (kind 'r' bucket | 'c' slots; shadow
# '1'|'0'): one argument per rule keeps the command small (encoding dominates client CPU).
# Reply: {allowed, level_1, ..., level_n}, levels before the request.
ACQUIRE = """
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local lease = tonumber(ARGV[3])
local lease_ms = tonumber(ARGV[4])
local eps = 1e-6
local n = #KEYS
local levels, allowed = {}, 1
local kinds, caps, rates, costs, oks = {}, {}, {}, {}, {}
for i = 1, n do
  local kind, cap, rate, cost, shadow = string.match(ARGV[4 + i], '^(%a) (%S+) (%S+) (%S+) (%d)$')
  cap, rate, cost, shadow = tonumber(cap), tonumber(rate), tonumber(cost), shadow == '1'
  local level = 0
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    level = redis.call('ZCARD', KEYS[i])
  else
    local s = redis.call('HMGET', KEYS[i], 'l', 't')
    if s[1] then
      level = math.max(0, tonumber(s[1]) - math.max(0, now - tonumber(s[2])) * rate)
    end
  end
  local ok = level + cost <= cap + eps
  if not ok and not shadow then allowed = 0 end
  kinds[i], caps[i], rates[i], costs[i], oks[i], levels[i] = kind, cap, rate, cost, ok, level
end
if allowed == 1 then
  for i = 1, n do
    if oks[i] then
      if kinds[i] == 'c' then
        redis.call('ZADD', KEYS[i], lease, rid)
        redis.call('PEXPIRE', KEYS[i], lease_ms + 1000)
      else
        local new = levels[i] + costs[i]
        local ttl = 60000
        if rates[i] > 0 then ttl = math.ceil(new / rates[i] * 1000) + 1000 end
        redis.call('HSET', KEYS[i], 'l', string.format('%.17g', new), 't', ARGV[1])
        redis.call('PEXPIRE', KEYS[i], ttl)
      end
    end
  end
end
local reply = {allowed}
for i = 1, n do reply[i + 1] = string.format('%.17g', levels[i]) end
return reply
"""

# KEYS: token buckets, then slot sets. ARGV: now, reservation id, number of buckets,
# then per bucket: rate, delta (charge or refund, never below 0). Slots: freed. Idempotent
# for slots; the caller settles a reservation once.
SETTLE = """
local now = tonumber(ARGV[1])
local nb = tonumber(ARGV[3])
for i = nb + 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[2]) end
for i = 1, nb do
  local rate, delta = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local level = 0
  local s = redis.call('HMGET', KEYS[i], 'l', 't')
  if s[1] then
    level = math.max(0, tonumber(s[1]) - math.max(0, now - tonumber(s[2])) * rate)
  end
  local new = math.max(0, level + delta)
  if new <= 0 or rate <= 0 then
    redis.call('DEL', KEYS[i])
  else
    redis.call('HSET', KEYS[i], 'l', string.format('%.17g', new), 't', ARGV[1])
    redis.call('PEXPIRE', KEYS[i], math.ceil(new / rate * 1000) + 1000)
  end
end
return 1
"""

# KEYS[1]: a slot set. ARGV: now. Live slots.
IN_FLIGHT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]))
return redis.call('ZCARD', KEYS[1])
"""
