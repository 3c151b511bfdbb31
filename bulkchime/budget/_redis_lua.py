"""The Lua source of the shared budget's script, apart from the code that runs it.

:data:`SOURCE` is a :class:`string.Template`: :func:`~._redis_scripts.script_source`
fills in the constants the script shares with the Python modules (``$window``,
``$lease``...) and its ``clock()`` function (``$clock``; :data:`SERVER_CLOCK` in
production). What each step does, and the keys it keeps, are in :mod:`._redis_scripts`.
"""

from __future__ import annotations

from string import Template

from ._adaptive import (
    _GROWN,
    _MIN_AVERAGED,
    FIRST_DECREASE_FACTOR,
    MAX_HOLD_SECONDS,
    SAME_ESTIMATE_TOLERANCE,
)

__all__ = ["SERVER_CLOCK", "SOURCE"]

#: The script's clock: the Redis server's, the same for every process.
SERVER_CLOCK = """\
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end"""

#: The script, one run per step, with ``$name`` placeholders for the constants (those
#: of the control law that the runner does not pass are filled in here).
_LAW_SOURCE = Template(
    r"""
-- KEYS: state, delivered, ceilings, leases (see bulkchime/budget/_redis_scripts.py)
-- ARGV: step, runner, its ceiling ('' = none), its burst, floor, adaptive ('1'/'0'),
--       decrease factor, regrowth seconds, doubling seconds, starting rate, step args...
if redis.replicate_commands then pcall(redis.replicate_commands) end

local STATE, DELIVERED, CEILINGS, LEASES = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local step, runner = ARGV[1], ARGV[2]
local own_ceiling = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local floor = tonumber(ARGV[5])
local adaptive = ARGV[6] == '1'
local beta = tonumber(ARGV[7])
local regrowth = tonumber(ARGV[8])
local doubling = tonumber(ARGV[9])
local start_rate = tonumber(ARGV[10])

local WINDOW = $window
local MIN_WINDOW = $min_window
local MIN_DELIVERIES = $min_deliveries
local MIN_AVERAGED = $min_averaged
local FIRST_BETA = $first_beta
local TOLERANCE = $tolerance
local MAX_HOLD = $max_hold
local GROWN = $grown
local TOKENS_AFTER_429 = $tokens_after_429
local LEASE = $lease
local IDLE_MS = $idle_ms
local ROUNDING = 1e-9
local NEVER = -math.huge

$clock
local now = clock()

local function fmt(x)
  return string.format('%.17g', x)
end

-- The state hash, read once and written back once (only the fields that changed).
local s, dirty = {}, {}
do
  local raw = redis.call('HGETALL', STATE)
  for i = 1, #raw, 2 do
    s[raw[i]] = tonumber(raw[i + 1])
  end
end

local function get(field, default)
  local value = s[field]
  if value == nil then
    return default
  end
  return value
end

local function put(field, value)
  s[field] = value
  dirty[field] = true
end

-- The lowest ceiling of the runners still around (nil: none has one).
local function lowest_ceiling()
  if step == 'leave' then
    redis.call('ZREM', CEILINGS, runner)
    redis.call('ZREM', LEASES, runner)
  elseif own_ceiling then
    redis.call('ZADD', CEILINGS, fmt(own_ceiling), runner)
    redis.call('ZADD', LEASES, fmt(now + LEASE), runner)
  end
  local lapsed = redis.call('ZRANGEBYSCORE', LEASES, '-inf', '(' .. fmt(now))
  for _, who in ipairs(lapsed) do
    redis.call('ZREM', CEILINGS, who)
    redis.call('ZREM', LEASES, who)
  end
  local lowest = redis.call('ZRANGE', CEILINGS, 0, 0, 'WITHSCORES')
  return tonumber(lowest[2])
end

local ceiling = lowest_ceiling()

-- The bucket (TokenBucket, in GCRA form) -------------------------------------------

local function set_bucket_rate(rate)
  if rate == s.rate then
    return
  end
  local ref = math.max(now, get('paused_until', NEVER))
  local owed = math.max(0, get('tat', NEVER) - ref) * s.rate
  put('rate', rate)
  put('tat', ref + owed / rate)
end

local function delay()
  local free_at = math.max(get('tat', NEVER) - (burst - 1) / s.rate, get('paused_until', NEVER))
  local wait = free_at - now
  if wait > ROUNDING then
    return wait
  end
  return 0
end

local function take()
  put('tat', math.max(get('tat', NEVER), now) + 1 / s.rate)
end

local function empty_to(tokens)
  put('tat', math.max(get('tat', NEVER), now + (burst - tokens) / s.rate))
end

local function pause(seconds)
  put('paused_until', math.max(get('paused_until', NEVER), now + seconds))
  put('tat', math.max(get('tat', NEVER), s.paused_until + (burst - 1) / s.rate))
end

-- The control law (AdaptiveRate) -------------------------------------------------------

local function set_rate(rate)
  if ceiling and rate > ceiling then
    rate = ceiling
  end
  set_bucket_rate(math.max(rate, floor))
end

local function forget_deliveries()
  local horizon = now - WINDOW
  local head = redis.call('LINDEX', DELIVERED, 0)
  while head and tonumber(head) <= horizon do
    redis.call('LPOP', DELIVERED)
    head = redis.call('LINDEX', DELIVERED, 0)
  end
end

local function delivered_rate(since)
  forget_deliveries()
  local window_start = s.window_start
  if window_start == nil then
    return nil
  end
  local start = math.max(window_start, now - WINDOW, since or NEVER)
  local times = redis.call('LRANGE', DELIVERED, 0, -1)
  local count = 0
  for i = #times, 1, -1 do
    if tonumber(times[i]) <= start then
      break
    end
    count = count + 1
  end
  if now - start < MIN_WINDOW or count < MIN_DELIVERIES then
    return nil
  end
  return count / (now - start)
end

-- 'accepted' counts the requests accepted since the last cut; -1: none to count.
local function on_pause(seconds)
  redis.call('DEL', DELIVERED)
  put('window_start', now + seconds)
  put('accepted', -1)
end

local function budget_estimate(new_episode)
  if not new_episode then
    return delivered_rate(get('episode_start', NEVER))
  end
  put('episode_start', now)
  local delivered = delivered_rate(nil)
  local count, last = get('accepted', -1), s.w_max
  if count >= MIN_AVERAGED and last then
    local average = count / (now - get('last_cut', NEVER))
    if get('hold', 0) ~= 0 then
      average = math.max(average, (1 - TOLERANCE) * last)
    end
    if delivered == nil or average < delivered then
      return average
    end
  end
  return delivered
end

local function decrease(retry_after)
  local previous = s.w_max
  local new_episode = now - get('last_cut', NEVER) > WINDOW + get('grace', 0)
  local delivered = budget_estimate(new_episode)
  local w_max = s.rate
  if delivered and delivered < w_max then
    w_max = delivered
  end
  if retry_after then
    w_max = math.min(w_max, 1 / retry_after)
  end
  w_max = math.max(w_max, floor)
  put('w_max', w_max)
  -- burst_cut_rate: the rate a first cut sized by a burst-inflated estimate halved to
  -- (0: none); a next cut that measures the same confirms it.
  local burst_cut_rate = get('burst_cut_rate', 0)
  if previous and math.abs(w_max - previous) <= TOLERANCE * previous then
    if new_episode then
      put('hold', math.min(math.max(2 * get('hold', 0), regrowth), MAX_HOLD))
    end
  elseif new_episode and delivered and burst_cut_rate > 0
      and math.abs(w_max - burst_cut_rate) <= TOLERANCE * burst_cut_rate then
    put('hold', math.min(2 * regrowth, MAX_HOLD))
  else
    put('hold', 0)
  end
  if new_episode and burst_cut_rate ~= 0 then
    put('burst_cut_rate', 0)
  end
  local cut, measure = beta, 0
  local first = previous == nil and not retry_after
  if first and delivered and delivered >= 0.5 * s.rate then
    cut, measure = math.min(beta, FIRST_BETA), WINDOW
    put('burst_cut_rate', math.max(cut * w_max, floor))
  end
  put('grace', math.min(1 / ((1 - cut) * w_max), regrowth / 2))
  put('generation', get('generation', 0) + 1)
  put('last_cut', now)
  put('accepted', 0)
  local depth = (1 - cut) / (1 - beta)
  put('epoch', now + measure + regrowth * (depth ^ (1 / 3) - 1))
  put('last_update', now)
  set_rate(cut * w_max)
end

local function grow()
  local last = s.last_update
  put('last_update', now)
  if last == nil then
    return
  end
  local elapsed = now - last
  if now - get('last_wait', NEVER) > math.max(1, 2 / s.rate) then
    put('epoch', get('epoch', 0) + elapsed)
    put('accepted', -1)
    return
  end
  local target
  if s.w_max == nil then
    if ceiling and s.rate >= ceiling then
      return
    end
    target = s.rate * 2 ^ (elapsed / doubling)
  else
    local t = now - get('epoch', 0)
    if t > regrowth then
      t = math.max(regrowth, t - get('hold', 0))
    end
    local rise = (1 - beta) * ((t - regrowth) / regrowth) ^ 3
    if rise > GROWN then
      put('accepted', -1)
    end
    target = s.w_max * (1 + rise)
  end
  if target > s.rate then
    set_rate(target)
  end
end

-- The step ------------------------------------------------------------------------------

if s.rate == nil then
  put('rate', start_rate)
end
if ceiling and s.rate > ceiling then
  set_bucket_rate(ceiling)
end

local granted, value = 0, 0
if step == 'acquire' then
  local wait = delay()
  if wait > 0 then
    put('last_wait', now)
    value = wait
  else
    take()
    if s.window_start == nil then
      put('window_start', now)
    end
    granted, value = 1, now
  end
elseif step == 'success' then
  redis.call('RPUSH', DELIVERED, fmt(now))
  forget_deliveries()
  if get('accepted', -1) >= 0 then
    put('accepted', s.accepted + 1)
  end
  if adaptive then
    grow()
  end
elseif step == 'throttle' then
  local generation, issued_at = tonumber(ARGV[11]), tonumber(ARGV[12])
  local retry_after = tonumber(ARGV[13])
  if retry_after and retry_after <= 0 then
    retry_after = nil
  end
  empty_to(TOKENS_AFTER_429)
  put('throttles', get('throttles', 0) + 1)
  local news = generation >= get('generation', 0)
    and issued_at > get('last_cut', NEVER) + get('grace', 0)
  if adaptive and news then
    decrease(retry_after)
  end
  if retry_after then
    on_pause(retry_after)
    pause(retry_after)
  end
elseif step == 'give_back' then
  if s.tat then
    put('tat', s.tat - 1 / s.rate)
  end
end

local fields = {}
for field in pairs(dirty) do
  fields[#fields + 1] = field
  fields[#fields + 1] = fmt(s[field])
end
if #fields > 0 then
  redis.call('HSET', STATE, unpack(fields))
end
for _, key in ipairs(KEYS) do
  redis.call('PEXPIRE', key, IDLE_MS)
end

local w_max, paused_for = '', math.max(0, get('paused_until', NEVER) - now)
if s.w_max then
  w_max = fmt(s.w_max)
end
return {
  tostring(granted), fmt(value), fmt(s.rate), fmt(get('generation', 0)),
  fmt(get('throttles', 0)), w_max, ceiling and fmt(ceiling) or '', fmt(paused_for),
}
"""
)

#: The script, with ``$name`` placeholders for what :func:`~._redis_scripts.script_source`
#: fills in (the runner's constants and the clock).
SOURCE = Template(
    _LAW_SOURCE.safe_substitute(
        min_averaged=repr(_MIN_AVERAGED),
        first_beta=repr(FIRST_DECREASE_FACTOR),
        tolerance=repr(SAME_ESTIMATE_TOLERANCE),
        max_hold=repr(MAX_HOLD_SECONDS),
        grown=repr(_GROWN),
    )
)
